// Unit tests of IsLoopbackAddress: listen addresses and gRPC targets on this machine only, and the
// look-alikes that are not (a DNS name starting "127.", an address in another network).
#include "attattr/base/loopback_address.h"

#include <gtest/gtest.h>

namespace {

using attattr::IsLoopbackAddress;

TEST(LoopbackAddressTest, ThisMachineOnly) {
  for (const char* yes : {"localhost:50051", "LocalHost:1", "127.0.0.1:50051", "127.1.2.3:9",
                          "[::1]:50051", "::1", "[::1]", "localhost", "dns:///localhost:50051",
                          "dns://8.8.8.8/127.0.0.1:1", "ipv4:127.0.0.1:50051", "ipv6:[::1]:50051",
                          "unix:/run/attattr.sock", "unix-abstract:attattr"}) {
    EXPECT_TRUE(IsLoopbackAddress(yes)) << yes;
  }
  for (const char* no :
       {"attattr.prod:50051", "0.0.0.0:50051", "[::]:50051", "10.0.0.1:50051", "128.0.0.1:1",
        "127.evil.example:50051", "localhost.evil.example:1", "[::2]:1", "::ffff:10.0.0.1",
        "dns:///attattr:50051", "ipv4:10.1.1.1:1", "", ":50051", "[",
        // Address lists: the channel moves on to the next entry when the first refuses
        // (regression, security review: only the first entry was checked).
        "ipv4:127.0.0.1:50051,10.0.0.5", "ipv4:127.0.0.1:1,127.0.0.1:2",
        "ipv6:[::1]:1,[2001:db8::5]:50051"}) {
    EXPECT_FALSE(IsLoopbackAddress(no)) << no;
  }
}

}  // namespace
