// Unit tests of the server's pure parts: the one absl→gRPC status mapping (every code), fp16
// packing, the bounded worker pool, and ServerConfig validation naming the option.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <mutex>

#include "server/proto_convert.h"
#include "server/server_config.h"
#include "server/status_convert.h"
#include "server/worker_pool.h"

namespace attattr::server {
namespace {

TEST(StatusConvertTest, EveryCanonicalCodeMapsToTheSameGrpcCode) {
  const std::pair<absl::StatusCode, grpc::StatusCode> pairs[] = {
      {absl::StatusCode::kOk, grpc::StatusCode::OK},
      {absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED},
      {absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN},
      {absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND},
      {absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS},
      {absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED},
      {absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION},
      {absl::StatusCode::kAborted, grpc::StatusCode::ABORTED},
      {absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE},
      {absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED},
      {absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL},
      {absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
      {absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS},
      {absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED},
  };
  for (const auto& [absl_code, grpc_code] : pairs) {
    EXPECT_EQ(ToGrpcCode(absl_code), grpc_code) << static_cast<int>(absl_code);
    const auto s = ToGrpcStatus(absl::Status(absl_code, "field: why"));
    EXPECT_EQ(s.error_code(), grpc_code);
    if (absl_code != absl::StatusCode::kOk) EXPECT_EQ(s.error_message(), "field: why");
  }
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(GrpcCodeName(grpc::StatusCode::OK), "OK");
}

TEST(HalfPrecisionTest, ExactValuesAndRounding) {
  EXPECT_EQ(FloatToHalf(0.0f), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);        // largest half
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);            // overflow -> inf
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -26)), 0x0000);  // rounds to zero
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie to even (down)
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie to even (up)
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  for (float v : {0.1f, -3.14159f, 1e-5f, 123.456f, 6.1e-5f}) {
    // Relative 2^-11 for normal halves; absolute 2^-25 (half the subnormal step) below 2^-14.
    const double tol = std::max(std::fabs(v) * std::ldexp(1.0, -11), std::ldexp(1.0, -25));
    EXPECT_NEAR(HalfToFloat(FloatToHalf(v)), v, tol) << v;
  }
  for (uint32_t h = 0; h < 0x7c00; ++h) {  // every finite positive half round-trips
    EXPECT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h);
  }
}

TEST(WorkerPoolTest, RunsEveryTaskAndRefusesBeyondCapacity) {
  std::atomic<int> done{0};
  std::mutex gate;
  {
    WorkerPool pool(1, 2);
    gate.lock();  // hold the single worker inside the first task
    ASSERT_TRUE(pool.TrySubmit([&] {
      std::lock_guard<std::mutex> l(gate);
      ++done;
    }));
    // Wait until the worker has taken the first task off the queue.
    while (pool.Pending() != 0) std::this_thread::yield();
    EXPECT_TRUE(pool.TrySubmit([&] { ++done; }));
    EXPECT_TRUE(pool.TrySubmit([&] { ++done; }));
    EXPECT_FALSE(pool.TrySubmit([&] { ++done; }));  // capacity 2 reached
    EXPECT_EQ(pool.Pending(), 2);
    gate.unlock();
  }  // the destructor drains the queue
  EXPECT_EQ(done.load(), 3);
}

TEST(ServerConfigTest, ValidateNamesTheOption) {
  ServerConfig c;
  EXPECT_NE(std::string(c.Validate().message()).find("--models"), std::string::npos);
  c.models_dir = "/models";
  EXPECT_TRUE(c.Validate().ok());
  auto expect = [&](ServerConfig bad, const std::string& option) {
    auto s = bad.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(s.message()).find(option), std::string::npos) << s.message();
  };
  ServerConfig b = c;
  b.listen = "localhost";
  expect(b, "--listen");
  b = c;
  b.metrics_listen = "x:99999";
  expect(b, "--metrics-listen");
  b = c;
  b.workers = 0;
  expect(b, "--workers");
  b = c;
  b.max_steps = 2000;
  expect(b, "--max-steps");
  b = c;
  b.log_format = "xml";
  expect(b, "--log-format");
  b = c;
  b.metrics_listen = "";
  EXPECT_TRUE(b.Validate().ok());
}

}  // namespace
}  // namespace attattr::server
