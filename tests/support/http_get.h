// A tiny blocking HTTP/1.0 GET over POSIX sockets for the metrics tests (no libcurl dependency).
// Not a general client: no chunked encoding, no redirects, loopback IPv4 only.
// Thread-safety: stateless free function.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

namespace attattr::testing {

struct HttpResult {
  bool ok = false;  // false when the connection failed
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

inline HttpResult HttpGet(int port, const std::string& path, const std::string& method = "GET") {
  HttpResult result;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return result;
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return result;
  }
  const std::string request =
      method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (send(fd, request.data(), request.size(), 0) != static_cast<ssize_t>(request.size())) {
    close(fd);
    return result;
  }
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, n);
  close(fd);
  const size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos || raw.compare(0, 5, "HTTP/") != 0) return result;
  result.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
  size_t line = raw.find("\r\n") + 2;
  while (line < header_end) {
    const size_t eol = raw.find("\r\n", line);
    const std::string header = raw.substr(line, eol - line);
    const size_t colon = header.find(':');
    if (colon != std::string::npos) {
      std::string name = header.substr(0, colon);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      size_t value = colon + 1;
      while (value < header.size() && header[value] == ' ') ++value;
      result.headers[name] = header.substr(value);
    }
    line = eol + 2;
  }
  result.body = raw.substr(header_end + 4);
  result.ok = true;
  return result;
}

}  // namespace attattr::testing
