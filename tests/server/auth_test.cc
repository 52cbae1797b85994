// Unit tests of the authentication pieces: the token file (parsing, refusals naming the line,
// re-reading on change and keeping the old table when the new one is broken), the Authenticator
// (the Bearer scheme, certificate identities, roles) and the per-principal token bucket.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "auth/authenticator.h"
#include "auth/rate_limiter.h"
#include "auth/token_table.h"
#include "support/test_certs.h"
#include "support/test_paths.h"

namespace attattr::server {
namespace {

using ::attattr::testing::Sha256Hex;

class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("attattr-auth"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& text, const std::string& name = "tokens") {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

TEST_F(TokenFileTest, LooksUpPrincipalsByTheirTokensHash) {
  auto table = TokenTable::Open(Write("# comment\n\nalice\t" + Sha256Hex("s3cret-a") + "\nbob\t" +
                                      Sha256Hex("s3cret-b") + "\n"));
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ((*table)->Lookup("s3cret-a").value_or(""), "alice");
  EXPECT_EQ((*table)->Lookup("s3cret-b").value_or(""), "bob");
  EXPECT_FALSE((*table)->Lookup("s3cret-c").has_value());
  EXPECT_FALSE((*table)->Lookup("").has_value());
  EXPECT_FALSE((*table)->Lookup(std::string(100000, 'x')).has_value());
}

TEST_F(TokenFileTest, RefusesMalformedFilesNamingTheLine) {
  const std::string digest = Sha256Hex("t");
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"alice " + digest + "\n", "line 1: no tab"},
           {"alice\tabc\n", "not 64 hex digits"},
           {"\nal ice\t" + digest + "\n", "line 2: principal"},
           {"a\t" + digest + "\nb\t" + digest + "\n", "line 2: this digest is already listed"}}) {
    auto table = TokenTable::Open(Write(text));
    ASSERT_FALSE(table.ok()) << text;
    EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(table.status().message().find("--auth-tokens"), std::string::npos);
    EXPECT_NE(table.status().message().find(why), std::string::npos) << table.status();
  }
  EXPECT_FALSE(TokenTable::Open(dir_ + "/missing").ok());
}

TEST_F(TokenFileTest, RereadsOnChangeAndKeepsTheOldTableWhenTheNewOneIsBroken) {
  const std::string path = Write("alice\t" + Sha256Hex("one") + "\n");
  std::vector<absl::Status> reloads;
  auto table = TokenTable::Open(path, [&](const absl::Status& s, size_t) { reloads.push_back(s); });
  ASSERT_TRUE(table.ok());
  EXPECT_EQ((*table)->Lookup("one").value_or(""), "alice");
  // A new version, swapped in by rename (as Secret volumes do).
  const std::string next = Write("alice\t" + Sha256Hex("two") + "\n", "tokens.new");
  std::filesystem::rename(next, path);
  EXPECT_EQ((*table)->Lookup("one").value_or(""), "alice");  // lookups never read the file
  (*table)->ReloadIfChanged();
  EXPECT_EQ((*table)->Lookup("two").value_or(""), "alice");
  EXPECT_FALSE((*table)->Lookup("one").has_value());
  ASSERT_EQ(reloads.size(), 1u);
  EXPECT_TRUE(reloads[0].ok());
  // A broken version: refused, the previous tokens still work.
  std::filesystem::rename(Write("garbage\n", "tokens.bad"), path);
  (*table)->ReloadIfChanged();
  EXPECT_EQ((*table)->Lookup("two").value_or(""), "alice");
  ASSERT_EQ(reloads.size(), 2u);
  EXPECT_FALSE(reloads[1].ok());
}

TEST_F(TokenFileTest, AuthenticatorSchemesIdentitiesAndRoles) {
  AuthOptions options;
  options.tokens_path =
      Write("alice\t" + Sha256Hex("tok-a") + "\nroot\t" + Sha256Hex("tok-r") + "\n");
  options.client_certificates = true;
  options.admins = {"root"};
  options.exporters = {"alice"};
  options.dataset_readers = {"alice"};
  options.max_user_priority = 3;
  auto auth = Authenticator::Create(options);
  ASSERT_TRUE(auth.ok());
  ASSERT_TRUE((*auth)->enabled());
  auto alice = (*auth)->Authenticate({"Bearer tok-a", ""});
  ASSERT_TRUE(alice.ok());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_FALSE(alice->admin);
  EXPECT_TRUE(alice->may_export);
  EXPECT_EQ(alice->max_priority, 3);
  EXPECT_TRUE((*auth)->Authenticate({"bearer   tok-r", ""})->admin);
  // The token wins over a certificate; a certificate alone names its principal without roles.
  EXPECT_EQ((*auth)->Authenticate({"Bearer tok-a", "spiffe://x"})->name, "alice");
  auto cert = (*auth)->Authenticate({"", "spiffe://x"});
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(cert->name, "spiffe://x");
  EXPECT_FALSE(cert->may_export);
  EXPECT_FALSE(cert->may_read_datasets);
  for (const Credentials& bad : {Credentials{"", ""}, Credentials{"Basic YWxpY2U6eA==", ""},
                                 Credentials{"Bearer tok-z", ""}}) {
    auto refused = (*auth)->Authenticate(bad);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(refused.status().message().find("tok-z"), std::string::npos);
  }
  // Without tokens or certificates: everyone is the anonymous administrator.
  auto open = Authenticator::Create(AuthOptions{});
  ASSERT_TRUE(open.ok());
  EXPECT_FALSE((*open)->enabled());
  auto anonymous = (*open)->Authenticate({"", ""});
  EXPECT_EQ(anonymous->name, kAnonymousPrincipal);
  EXPECT_TRUE(anonymous->admin);
}

TEST(RateLimiterTest, TokenBucketPerPrincipal) {
  PrincipalRateLimiter limiter(2.0, 3);  // 2 calls/s, bursts of 3
  const auto t0 = PrincipalRateLimiter::Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.TryAcquire("a", t0), 0);
  const int64_t wait = limiter.TryAcquire("a", t0);
  EXPECT_GT(wait, 0);
  EXPECT_LE(wait, 500);
  EXPECT_EQ(limiter.TryAcquire("b", t0), 0);  // another principal is not affected
  EXPECT_EQ(limiter.TryAcquire("a", t0 + std::chrono::milliseconds(600)), 0);
  PrincipalRateLimiter unlimited(0, 1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(unlimited.TryAcquire("a", t0), 0);
  // Many principals: the map stays bounded.
  for (int i = 0; i < 10000; ++i)
    limiter.TryAcquire("p" + std::to_string(i), t0 + std::chrono::hours(1));
}

}  // namespace
}  // namespace attattr::server
