// PostgreSQL URI helpers (see store_uri.h). Only the parts of RFC 3986 / libpq's URI syntax they
// need: the authority's user info and the query's key=value pairs.
#include "store/store_uri.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace attattr::store {
namespace {

// Where the user info of a URI ends ("postgresql://user:pw@host/db": at '@'), or npos.
size_t UserInfoEnd(const std::string& uri, size_t* start) {
  *start = uri.find("://");
  if (*start == std::string::npos) return std::string::npos;
  *start += 3;
  const size_t authority_end = uri.find_first_of("/?", *start);
  const size_t at = uri.rfind('@', authority_end == std::string::npos ? uri.size() : authority_end);
  return at == std::string::npos || at < *start ? std::string::npos : at;
}

// Where the value of query parameter `key` starts, or npos.
size_t QueryValue(const std::string& uri, const std::string& key) {
  const size_t query = uri.find('?');
  if (query == std::string::npos) return std::string::npos;
  for (size_t at = query + 1; at < uri.size();) {
    const size_t end = std::min(uri.find('&', at), uri.size());
    if (absl::StartsWith(absl::string_view(uri).substr(at, end - at), key + "=")) {
      return at + key.size() + 1;
    }
    at = end + 1;
  }
  return std::string::npos;
}

// RFC 3986 percent-encoding of everything but unreserved characters.
std::string PercentEncode(const std::string& value) {
  std::string out;
  for (unsigned char c : value) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

}  // namespace

bool IsPostgresUri(const std::string& store) {
  return absl::StartsWith(store, "postgresql://") || absl::StartsWith(store, "postgres://");
}

bool UriHasPassword(const std::string& uri) {
  size_t start = 0;
  const size_t at = UserInfoEnd(uri, &start);
  if (at != std::string::npos && uri.substr(start, at - start).find(':') != std::string::npos) {
    return true;
  }
  return QueryValue(uri, "password") != std::string::npos;
}

std::string RedactUri(const std::string& uri) {
  std::string out = uri;
  size_t start = 0;
  const size_t at = UserInfoEnd(out, &start);
  if (at != std::string::npos) {
    const size_t colon = out.substr(start, at - start).find(':');
    if (colon != std::string::npos) out.replace(start + colon + 1, at - start - colon - 1, "***");
  }
  const size_t value = QueryValue(out, "password");
  if (value != std::string::npos) {
    const size_t end = std::min(out.find('&', value), out.size());
    out.replace(value, end - value, "***");
  }
  return out;
}

std::string WithUriDefault(std::string uri, const std::string& key, const std::string& value) {
  if (QueryValue(uri, key) != std::string::npos) return uri;
  absl::StrAppend(&uri, uri.find('?') == std::string::npos ? "?" : "&", key, "=",
                  PercentEncode(value));
  return uri;
}

}  // namespace attattr::store
