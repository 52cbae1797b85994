// Tests of the job stores through the JobStore interface. The contract suite (JobStoreTest) runs
// every operation and state transition, idempotent create, pagination under inserts, chunked
// results, persistence across reopen, expiry and concurrent use against both SqliteJobStore and
// PostgresJobStore (a real PostgreSQL server the suite starts; those cases skip with a message
// where none can be started). SqliteJobStoreTest adds what only the file store has: paths, WAL,
// schema migration of old files, SIGKILL of a writing process (fork). Each test owns its store
// (a temporary file, or a fresh database).
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/job_store_rules.h"
#include "store/pg_connection_pool.h"
#include "store/postgres_job_store.h"
#include "store/shard_store.h"
#include "store/sqlite_job_store.h"
#include "support/postgres_server.h"
#include "support/test_paths.h"

namespace attattr::store {
namespace {

// The ids of `records`, in their order.
std::vector<std::string> Ids(const std::vector<JobRecord>& records) {
  std::vector<std::string> ids;
  for (const JobRecord& record : records) ids.push_back(record.id);
  return ids;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

// Deterministic pseudo-random bytes, so a forked child and the parent agree on a result's content.
std::string RandomBytes(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string bytes(size, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  return bytes;
}

// Runs `sql` on a raw SQLite connection (fixtures and integrity checks); returns the first column
// of the first row, or "" when there is none.
std::string RawSql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  std::string out;
  sqlite3_exec(
      db, sql.c_str(),
      [](void* p, int, char** values, char**) {
        auto* s = static_cast<std::string*>(p);
        if (s->empty() && values[0] != nullptr) *s = values[0];
        return 0;
      },
      &out, nullptr);
  sqlite3_close(db);
  return out;
}

class JobStoreTestBase : public ::testing::Test {
 protected:
  explicit JobStoreTestBase(std::string backend = "sqlite") : backend_(std::move(backend)) {}

  void SetUp() override {
    dir_ = tmp_.path();
    path_ = dir_ + "/jobs.db";
    if (backend_ != "postgresql") return;
    ATTATTR_SHARED_POSTGRES_OR_SKIP(pg_);
    absl::StatusOr<std::string> uri = pg_->CreateDatabase();
    ASSERT_TRUE(uri.ok()) << uri.status();
    uri_ = *uri;
    database_ = uri_.substr(uri_.rfind('/') + 1);
  }

  SqliteJobStoreOptions Options() {
    SqliteJobStoreOptions options;
    options.path = path_;
    options.clock = [this] { return now_ms_.load(); };
    return options;
  }

  // The store under test; chunk and batch sizes 0 keep the defaults.
  std::unique_ptr<JobStore> OpenStore(int64_t chunk_bytes = 0, int64_t batch_bytes = 0) {
    if (backend_ == "postgresql") {
      PostgresJobStoreOptions options;
      options.uri = uri_;
      options.clock = [this] { return now_ms_.load(); };
      if (chunk_bytes > 0) options.result_chunk_bytes = chunk_bytes;
      if (batch_bytes > 0) options.result_write_batch_bytes = batch_bytes;
      auto store = PostgresJobStore::Open(options);
      EXPECT_TRUE(store.ok()) << store.status();
      return store.ok() ? std::move(*store) : nullptr;
    }
    SqliteJobStoreOptions options = Options();
    if (chunk_bytes > 0) options.result_chunk_bytes = chunk_bytes;
    if (batch_bytes > 0) options.result_write_batch_bytes = batch_bytes;
    absl::StatusOr<std::unique_ptr<SqliteJobStore>> store = SqliteJobStore::Open(options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // A second replica's store: another store on the PostgreSQL database. A SQLite file is opened by
  // one store at a time (FileLock): nullptr, and the test's threads share the first store.
  std::unique_ptr<JobStore> SecondReplica() {
    return backend_ == "postgresql" ? OpenStore() : nullptr;
  }

  // Stored result chunks (of job `id` when given), counted on the database itself.
  std::string ResultRows(const std::string& id = "") {
    const std::string table = backend_ == "postgresql" ? "attattr_results" : "results";
    std::string sql = "SELECT COUNT(*) FROM " + table;
    if (!id.empty()) sql += " WHERE job_id = '" + id + "'";
    if (backend_ != "postgresql") return RawSql(path_, sql);
    absl::StatusOr<std::string> count = pg_->Query(database_, sql);
    EXPECT_TRUE(count.ok()) << count.status();
    return count.value_or("");
  }

  static JobRecord NewJob(const std::string& kind = "ATTRIBUTION", int32_t priority = 0,
                          const std::string& request_id = "") {
    JobRecord job;
    job.kind = kind;
    job.model = "sst2";
    job.priority = priority;
    job.request_id = request_id;
    job.spec = std::string("spec\0bytes", 10);
    return job;
  }

  // Creates a job and returns its id (failing the test on error).
  static std::string MustCreate(JobStore& store, const JobRecord& job) {
    absl::StatusOr<CreateResult> created = store.Create(job);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? created->record.id : "";
  }

  std::string ReadAll(JobStore& store, const std::string& id) {
    std::string all;
    absl::Status status = store.ReadResult(id, [&](const std::string& chunk) {
      all += chunk;
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
    return all;
  }

  const std::string backend_;
  ::attattr::testing::TempDir tmp_{"attattr-store"};
  std::string dir_;
  std::string path_;
  testing::PostgresServer* pg_ = nullptr;  // postgresql only
  std::string uri_;                        // postgresql only
  std::string database_;                   // postgresql only
  std::atomic<int64_t> now_ms_{1'000'000};
};

// The contract, for each store.
class JobStoreTest : public JobStoreTestBase, public ::testing::WithParamInterface<std::string> {
 protected:
  JobStoreTest() : JobStoreTestBase(GetParam()) {}
};
INSTANTIATE_TEST_SUITE_P(Stores, JobStoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// What only the SQLite file store has.
class SqliteJobStoreTest : public JobStoreTestBase {};

TEST_P(JobStoreTest, JobStateNames) {
  for (int i = 0; i < kJobStateCount; ++i) {
    const auto state = static_cast<JobState>(i);
    EXPECT_EQ(JobStateFromName(JobStateName(state)), state);
  }
  EXPECT_STREQ(JobStateName(JobState::kCancelled), "CANCELLED");
  EXPECT_FALSE(JobStateFromName("DONE").has_value());
  EXPECT_FALSE(IsTerminal(JobState::kRunning));
  EXPECT_TRUE(IsTerminal(JobState::kFailed));
}

TEST_F(SqliteJobStoreTest, OptionsAreValidated) {
  SqliteJobStoreOptions options;
  EXPECT_TRUE(absl::IsInvalidArgument(SqliteJobStore::Open(options).status()));
  options.path = path_;
  options.result_chunk_bytes = 10;
  absl::Status status = SqliteJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(Message(status).find("result_chunk_bytes"), std::string::npos) << status;
}

TEST_F(SqliteJobStoreTest, OpenErrorsNameThePath) {
  SqliteJobStoreOptions options = Options();
  options.path = dir_ + "/no/such/dir/jobs.db";
  absl::Status status = SqliteJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsNotFound(status)) << status;
  EXPECT_NE(Message(status).find(options.path), std::string::npos) << status;

  options.path = dir_;
  status = SqliteJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find("directory"), std::string::npos) << status;

  options.path = dir_ + "/garbage.db";
  std::ofstream(options.path) << std::string(8192, 'x');
  status = SqliteJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find(options.path), std::string::npos) << status;
  EXPECT_NE(Message(status).find("not an SQLite database"), std::string::npos) << status;

  options.path = dir_ + "/other.db";
  RawSql(options.path, "CREATE TABLE people (name TEXT)");
  status = SqliteJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find("not an attattr job store"), std::string::npos) << status;

  options.path = dir_ + "/newer.db";
  RawSql(options.path, "PRAGMA user_version = 99");
  status = SqliteJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find("schema_version 99"), std::string::npos) << status;
}

TEST_F(SqliteJobStoreTest, OpenUsesWalAndSetsSchemaVersion) {
  { auto store = OpenStore(); }
  EXPECT_EQ(RawSql(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawSql(path_, "PRAGMA user_version"), std::to_string(SqliteJobStore::kSchemaVersion));
}

TEST_P(JobStoreTest, CreateFillsDefaults) {
  auto store = OpenStore();
  JobRecord job = NewJob("HEAD_IMPORTANCE", 3);
  job.state = JobState::kSucceeded;  // ignored
  job.attempts = 7;                  // ignored
  absl::StatusOr<CreateResult> created = store->Create(job);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  const JobRecord& r = created->record;
  EXPECT_EQ(r.id.rfind("jobs/", 0), 0u) << r.id;
  EXPECT_EQ(r.id.size(), 5u + 32u) << r.id;
  EXPECT_EQ(r.kind, "HEAD_IMPORTANCE");
  EXPECT_EQ(r.model, "sst2");
  EXPECT_EQ(r.priority, 3);
  EXPECT_EQ(r.state, JobState::kQueued);
  EXPECT_EQ(r.spec, job.spec);
  EXPECT_EQ(r.create_time_ms, now_ms_.load());
  EXPECT_EQ(r.update_time_ms, now_ms_.load());
  EXPECT_EQ(r.start_time_ms, 0);
  EXPECT_EQ(r.end_time_ms, 0);
  EXPECT_EQ(r.attempts, 0);
  EXPECT_EQ(r.error_code, 0);
  EXPECT_FALSE(r.has_result);

  absl::StatusOr<JobRecord> got = store->Get(r.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->spec, job.spec);
  EXPECT_NE(MustCreate(*store, NewJob()), r.id);
}

// Regression (hardening review): ids came from a seeded mt19937_64, so one id predicted the next.
// They are 128 bits from the kernel's CSPRNG: distinct, and every bit as likely 0 as 1.
TEST(NewJobIdTest, IdsAre128RandomBitsInHex) {
  std::set<std::string> seen;
  int64_t ones = 0;
  constexpr int kIds = 2000;
  for (int i = 0; i < kIds; ++i) {
    absl::StatusOr<std::string> id = NewJobId();
    ASSERT_TRUE(id.ok()) << id.status();
    ASSERT_EQ(id->size(), 5u + 32u) << *id;
    ASSERT_EQ(id->substr(0, 5), "jobs/");
    for (char c : id->substr(5)) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << *id;
      const int nibble = c <= '9' ? c - '0' : c - 'a' + 10;
      ones += __builtin_popcount(nibble);
    }
    seen.insert(*id);
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kIds));
  // 256,000 fair bits: 128,000 ones, standard deviation 253; 8 deviations is a broken generator.
  EXPECT_NEAR(static_cast<double>(ones), kIds * 64.0, 8 * 253.0);
}

TEST_P(JobStoreTest, GetWithoutTheSpec) {
  auto store = OpenStore();
  JobRecord job = NewJob("ATTRIBUTION", 4, "req");
  job.owner = "alice";
  const std::string id = MustCreate(*store, job);
  absl::StatusOr<JobRecord> whole = store->Get(id);
  absl::StatusOr<JobRecord> lean = store->Get(id, /*include_spec=*/false);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_TRUE(lean.ok()) << lean.status();
  EXPECT_EQ(whole->spec, job.spec);
  EXPECT_TRUE(lean->spec.empty());
  EXPECT_EQ(lean->id, whole->id);  // everything else as stored
  EXPECT_EQ(lean->request_id, "req");
  EXPECT_EQ(lean->owner, "alice");
  EXPECT_EQ(lean->priority, 4);
  EXPECT_EQ(lean->state, JobState::kQueued);
  EXPECT_EQ(lean->create_time_ms, whole->create_time_ms);
  EXPECT_EQ(lean->lease_token, whole->lease_token);
  EXPECT_TRUE(absl::IsNotFound(store->Get("jobs/none", false).status()));
}

TEST_P(JobStoreTest, CreateIsIdempotentOnRequestId) {
  auto store = OpenStore();
  absl::StatusOr<CreateResult> first = store->Create(NewJob("ATTRIBUTION", 0, "req-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  JobRecord again = NewJob("TRIGGER_SEARCH", 5, "req-1");
  absl::StatusOr<CreateResult> second = store->Create(again);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->record.id, first->record.id);
  EXPECT_EQ(second->record.kind, "ATTRIBUTION");  // the stored job, unchanged
  EXPECT_EQ(second->record.request_id, "req-1");

  absl::StatusOr<CreateResult> other = store->Create(NewJob("ATTRIBUTION", 0, "req-2"));
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->created);
  EXPECT_NE(other->record.id, first->record.id);
  // Empty request ids never deduplicate.
  EXPECT_NE(MustCreate(*store, NewJob()), MustCreate(*store, NewJob()));
  absl::StatusOr<StoreStats> stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->Count(JobState::kQueued), 4);
}

// Admission limits are checked where the job is stored: a refused job is never stored, a retry of
// a stored submission is answered whatever the limits say.
TEST_P(JobStoreTest, CreateStoresNothingALimitRefuses) {
  auto store = OpenStore();
  JobRecord alice = NewJob("ATTRIBUTION", 0, "a-1");
  alice.owner = "alice";
  AdmissionLimits limits;
  limits.max_queued = 3;
  limits.max_queued_per_owner = 2;
  absl::StatusOr<CreateResult> first = store->Create(alice, limits);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->refused, Refusal::kNone);
  EXPECT_EQ(first->counts.queued, 0);
  alice.request_id = "a-2";
  ASSERT_TRUE(store->Create(alice, limits).ok());
  // Alice's third waits past her limit; the store holds two jobs, and a-3 was never stored.
  alice.request_id = "a-3";
  absl::StatusOr<CreateResult> third = store->Create(alice, limits);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_FALSE(third->created);
  EXPECT_EQ(third->refused, Refusal::kOwnerQueueFull);
  EXPECT_EQ(third->counts.owner_queued, 2);
  EXPECT_TRUE(third->record.id.empty());
  EXPECT_EQ(store->Stats()->Count(JobState::kQueued), 2);
  // Bob fills the queue; then the queue refuses him.
  JobRecord bob = NewJob();
  bob.owner = "bob";
  ASSERT_TRUE(store->Create(bob, limits)->created);
  absl::StatusOr<CreateResult> full = store->Create(bob, limits);
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_EQ(full->refused, Refusal::kQueueFull);
  EXPECT_EQ(full->counts.queued, 3);
  EXPECT_EQ(store->Stats()->Count(JobState::kQueued), 3);
  // A retry of a stored submission is answered whatever the limits.
  alice.request_id = "a-1";
  absl::StatusOr<CreateResult> retry = store->Create(alice, limits);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->created);
  EXPECT_EQ(retry->refused, Refusal::kNone);
  EXPECT_EQ(retry->record.id, first->record.id);
  // The refused request id is free: once there is room, it creates.
  ASSERT_TRUE(store->Cancel(first->record.id).ok());
  alice.request_id = "a-3";
  absl::StatusOr<CreateResult> later = store->Create(alice, limits);
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_TRUE(later->created);

  // Stored bytes count the new spec: 10 bytes per job here.
  JobRecord carol = NewJob();
  carol.owner = "carol";
  AdmissionLimits bytes;
  bytes.max_stored_bytes_per_owner = 25;
  ASSERT_TRUE(store->Create(carol, bytes)->created);
  absl::StatusOr<CreateResult> second = store->Create(carol, bytes);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->created);
  EXPECT_EQ(second->owner_stored_bytes, 20);
  absl::StatusOr<CreateResult> over = store->Create(carol, bytes);
  ASSERT_TRUE(over.ok()) << over.status();
  EXPECT_EQ(over->refused, Refusal::kOwnerStorageFull);
  EXPECT_EQ(over->owner_stored_bytes, 30);
  EXPECT_EQ(*store->StoredBytes("carol"), 20);

  AdmissionLimits negative;
  negative.max_queued_per_owner = -1;
  absl::Status bad = store->Create(carol, negative).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_NE(bad.message().find("max_queued_per_owner"), std::string::npos) << bad;
}

// Two stores on one database (two replicas; on SQLite, two threads on its one store) creating at
// once never overshoot a limit together: the counts and the insert are one step.
TEST_P(JobStoreTest, ConcurrentCreatesOnTwoReplicasNeverOvershootTheLimits) {
  auto a = OpenStore();
  auto second = SecondReplica();
  JobStore* b = second != nullptr ? second.get() : a.get();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  AdmissionLimits limits;
  limits.max_queued = 9;
  limits.max_queued_per_owner = 5;
  std::atomic<int> created{0};
  std::atomic<int> refused{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      JobStore& store = t % 2 == 0 ? *a : *b;
      JobRecord job = NewJob();
      job.owner = t < 4 ? "alice" : "bob";
      for (int i = 0; i < 6; ++i) {
        job.request_id = absl::StrCat("t", t, "-", i);
        absl::StatusOr<CreateResult> result = store.Create(job, limits);
        if (!result.ok()) {
          if (!absl::IsUnavailable(result.status())) ++errors;  // SQLite's lock timeout may say so
          continue;
        }
        ++(result->created ? created : refused);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(created.load(), 9);
  EXPECT_EQ(a->Stats()->Count(JobState::kQueued), 9);
  const int64_t alices = a->CountQueued("alice")->owner_queued;
  const int64_t bobs = a->CountQueued("bob")->owner_queued;
  EXPECT_LE(alices, 5);
  EXPECT_LE(bobs, 5);
  EXPECT_EQ(alices + bobs, 9);
  EXPECT_GE(refused.load(), 30);
}

TEST_P(JobStoreTest, CreateWithCallerIdAndBadArguments) {
  auto store = OpenStore();
  JobRecord job = NewJob();
  job.id = "jobs/mine";
  EXPECT_EQ(MustCreate(*store, job), "jobs/mine");
  absl::Status status = store->Create(job).status();
  EXPECT_TRUE(absl::IsAlreadyExists(status)) << status;
  EXPECT_NE(Message(status).find("jobs/mine"), std::string::npos);

  JobRecord bad = NewJob("");
  status = store->Create(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(Message(status).find("kind"), std::string::npos);
  bad = NewJob();
  bad.id = "jobs/with\nnewline";
  status = store->Create(bad).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(Message(status).find("id"), std::string::npos);
  bad = NewJob();
  bad.create_time_ms = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(store->Create(bad).status()));
}

TEST_P(JobStoreTest, GetMissingIsNotFoundNamingTheId) {
  auto store = OpenStore();
  absl::Status status = store->Get("jobs/nope").status();
  EXPECT_TRUE(absl::IsNotFound(status));
  EXPECT_NE(Message(status).find("jobs/nope"), std::string::npos) << status;
  EXPECT_TRUE(absl::IsNotFound(store->MarkRunning("jobs/nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store->UpdateProgress("jobs/nope", {})));
  EXPECT_TRUE(absl::IsNotFound(store->Finish("jobs/nope", JobState::kSucceeded, 0, "").status()));
  EXPECT_TRUE(absl::IsNotFound(store->Cancel("jobs/nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store->PutResult("jobs/nope", "x")));
  EXPECT_TRUE(absl::IsNotFound(store->GetResultInfo("jobs/nope").status()));
  EXPECT_TRUE(absl::IsNotFound(store->GetResultChunk("jobs/nope", 0).status()));
  EXPECT_TRUE(absl::IsNotFound(store->Delete("jobs/nope")));
}

TEST_P(JobStoreTest, RunAndSucceed) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  now_ms_ += 10;
  absl::StatusOr<JobRecord> running = store->MarkRunning(id);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->state, JobState::kRunning);
  EXPECT_EQ(running->attempts, 1);
  EXPECT_EQ(running->start_time_ms, now_ms_.load());

  absl::Status status = store->MarkRunning(id).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find("RUNNING"), std::string::npos) << status;

  now_ms_ += 5;
  ASSERT_TRUE(store->UpdateProgress(id, {"integrating", 3, 8}).ok());
  absl::StatusOr<JobRecord> got = store->Get(id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->progress.stage, "integrating");
  EXPECT_EQ(got->progress.done, 3);
  EXPECT_EQ(got->progress.total, 8);
  EXPECT_EQ(got->update_time_ms, now_ms_.load());
  EXPECT_TRUE(absl::IsInvalidArgument(store->UpdateProgress(id, {"x", -1, 2})));

  now_ms_ += 5;
  absl::StatusOr<JobRecord> done = store->Finish(id, JobState::kSucceeded, 0, "");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, JobState::kSucceeded);
  EXPECT_EQ(done->end_time_ms, now_ms_.load());
  EXPECT_EQ(done->progress.done, 3);

  // Terminal is final.
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Finish(id, JobState::kFailed, 13, "x").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Finish(id, JobState::kSucceeded, 0, "").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Cancel(id).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->MarkRunning(id).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->UpdateProgress(id, {"late", 1, 1})));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->PutResult(id, "late")));
}

TEST_P(JobStoreTest, FailAndCancelTransitions) {
  auto store = OpenStore();
  // QUEUED -> FAILED (e.g. refused before it ran).
  const std::string a = MustCreate(*store, NewJob());
  absl::StatusOr<JobRecord> failed = store->Finish(a, JobState::kFailed, 8, "too big");
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state, JobState::kFailed);
  EXPECT_EQ(failed->error_code, 8);
  EXPECT_EQ(failed->error_message, "too big");

  // QUEUED -> CANCELLED and RUNNING -> CANCELLED.
  const std::string b = MustCreate(*store, NewJob());
  absl::StatusOr<JobRecord> cancelled = store->Cancel(b);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  EXPECT_EQ(cancelled->error_code, 1);
  EXPECT_GT(cancelled->end_time_ms, 0);
  absl::Status status = store->Cancel(b).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status));
  EXPECT_NE(Message(status).find("CANCELLED"), std::string::npos) << status;

  const std::string c = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(c).ok());
  ASSERT_TRUE(store->PutResult(c, "partial").ok());
  cancelled = store->Cancel(c);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->state, JobState::kCancelled);
  EXPECT_FALSE(cancelled->has_result);  // dropped with the cancel
  EXPECT_TRUE(absl::IsNotFound(store->GetResultInfo(c).status()));

  // Finish(CANCELLED) with code 0 records CANCELLED; bad arguments.
  const std::string d = MustCreate(*store, NewJob());
  EXPECT_EQ(store->Finish(d, JobState::kCancelled, 0, "deadline")->error_code, 1);
  const std::string e = MustCreate(*store, NewJob());
  EXPECT_TRUE(absl::IsInvalidArgument(store->Finish(e, JobState::kRunning, 0, "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Finish(e, JobState::kQueued, 0, "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Finish(e, JobState::kFailed, 0, "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Finish(e, JobState::kSucceeded, 2, "").status()));
  EXPECT_TRUE(absl::IsInvalidArgument(store->Finish(e, JobState::kFailed, 99, "").status()));
  EXPECT_EQ(store->Get(e)->state, JobState::kQueued);  // untouched by refused calls

  // Progress on a queued job is allowed.
  EXPECT_TRUE(store->UpdateProgress(e, {"waiting", 0, 10}).ok());
}

TEST_P(JobStoreTest, LargeResultRoundTripsInChunks) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  EXPECT_TRUE(absl::IsFailedPrecondition(store->PutResult(id, "queued")));  // not RUNNING
  ASSERT_TRUE(store->MarkRunning(id).ok());
  const std::string blob = RandomBytes((20u << 20) + 12345, 7);
  ASSERT_TRUE(store->PutResult(id, blob).ok());
  ASSERT_TRUE(store->Finish(id, JobState::kSucceeded, 0, "").ok());

  absl::StatusOr<ResultInfo> info = store->GetResultInfo(id);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size_bytes, static_cast<int64_t>(blob.size()));
  EXPECT_EQ(info->chunk_count, 21);
  absl::StatusOr<JobRecord> job = store->Get(id);
  EXPECT_TRUE(job->has_result);
  EXPECT_EQ(job->result_size_bytes, static_cast<int64_t>(blob.size()));

  int visits = 0;
  std::string all;
  ASSERT_TRUE(store
                  ->ReadResult(id,
                               [&](const std::string& chunk) {
                                 EXPECT_LE(chunk.size(), 1u << 20);
                                 ++visits;
                                 all += chunk;
                                 return absl::OkStatus();
                               })
                  .ok());
  EXPECT_EQ(visits, 21);
  EXPECT_TRUE(all == blob);

  absl::StatusOr<std::string> last = store->GetResultChunk(id, 20);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(*last, blob.substr(20u << 20));
  absl::Status status = store->GetResultChunk(id, 21).status();
  EXPECT_TRUE(absl::IsNotFound(status));
  EXPECT_NE(Message(status).find("chunk 21"), std::string::npos) << status;
  EXPECT_TRUE(absl::IsInvalidArgument(store->GetResultChunk(id, -1).status()));

  // A visitor error stops the read and is returned.
  visits = 0;
  status = store->ReadResult(id, [&](const std::string&) {
    ++visits;
    return absl::CancelledError("client went away");
  });
  EXPECT_TRUE(absl::IsCancelled(status));
  EXPECT_EQ(visits, 1);

  absl::StatusOr<StoreStats> stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->result_bytes, static_cast<int64_t>(blob.size()));
}

// Regression (hardening review): a result was written in one transaction under the store's lock,
// so a 1 GiB result held every other call (GetJob, ListJobs, health of the queue) for the whole
// write. It is now written a batch per transaction: other calls run between batches, see no
// result until it is whole, and a cancel part-way leaves no chunk behind.
TEST_P(JobStoreTest, BatchedResultWritesAreInvisibleUntilWholeAndStopOnCancel) {
  std::unique_ptr<JobStore> opened = OpenStore(4096, 4096);  // one chunk per transaction
  ASSERT_NE(opened, nullptr);
  JobStore& store = *opened;
  const std::string blob = RandomBytes(4u << 20, 11);  // 1024 transactions

  const std::string whole = MustCreate(store, NewJob());
  ASSERT_TRUE(store.MarkRunning(whole).ok());
  std::atomic<bool> done{false};
  absl::Status written;
  std::thread writer([&] {
    written = store.PutResult(whole, blob);
    done = true;
  });
  int reads = 0;
  while (!done) {
    absl::StatusOr<ResultInfo> info = store.GetResultInfo(whole);
    if (info.ok()) {
      EXPECT_EQ(info->size_bytes, static_cast<int64_t>(blob.size()));  // never a partial result
    } else {
      EXPECT_TRUE(absl::IsNotFound(info.status())) << info.status();
    }
    ++reads;
  }
  writer.join();
  ASSERT_TRUE(written.ok()) << written;
  EXPECT_GT(reads, 0);
  EXPECT_EQ(ReadAll(store, whole), blob);

  const std::string cancelled = MustCreate(store, NewJob());
  ASSERT_TRUE(store.MarkRunning(cancelled).ok());
  std::atomic<bool> interrupted_done{false};
  std::thread interrupted([&] {
    written = store.PutResult(cancelled, blob);
    interrupted_done = true;
  });
  while (!interrupted_done && ResultRows(cancelled) == "0") {
    std::this_thread::yield();  // until the first batches are in
  }
  ASSERT_TRUE(store.Cancel(cancelled).ok());
  interrupted.join();
  // Either the write finished before the cancel (which then dropped the result) or it stopped
  // at the next batch: no chunk of the cancelled job is left either way.
  EXPECT_TRUE(written.ok() || absl::IsFailedPrecondition(written)) << written;
  EXPECT_EQ(ResultRows(cancelled), "0");
  EXPECT_TRUE(absl::IsNotFound(store.GetResultInfo(cancelled).status()));
}

// Regression (security review): the stored-bytes quota counted only results already written, so
// many jobs admitted together could each write up to --max-result-mib past it. A job's reserved
// result estimate counts while it is QUEUED or RUNNING and gives way to its real result.
TEST_P(JobStoreTest, ReservedResultBytesCountUntilTheJobEnds) {
  auto store = OpenStore();
  JobRecord a = NewJob();
  a.owner = "dave";
  a.reserved_result_bytes = 1000;
  const int64_t spec = static_cast<int64_t>(a.spec.size());
  AdmissionLimits limits;
  limits.max_stored_bytes_per_owner = 2 * spec + 1500;
  absl::StatusOr<CreateResult> first = store->Create(a, limits);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->created);
  EXPECT_EQ(first->owner_stored_bytes, spec + 1000);
  EXPECT_EQ(first->record.reserved_result_bytes, 1000);
  EXPECT_EQ(*store->StoredBytes("dave"), spec + 1000);
  // A second job of the same estimate does not fit beside the first's reservation.
  absl::StatusOr<CreateResult> second = store->Create(a, limits);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->refused, Refusal::kOwnerStorageFull);
  EXPECT_EQ(second->owner_stored_bytes, 2 * spec + 2000);
  // Running, it still holds its reservation (and whatever result it wrote so far).
  ASSERT_TRUE(store->MarkRunning(first->record.id).ok());
  EXPECT_EQ(*store->StoredBytes("dave"), spec + 1000);
  ASSERT_TRUE(store->PutResult(first->record.id, std::string(300, 'r')).ok());
  ASSERT_TRUE(store->Finish(first->record.id, JobState::kSucceeded, 0, "").ok());
  EXPECT_EQ(*store->StoredBytes("dave"), spec + 300);
  // A job that ends without a result releases its reservation too.
  a.reserved_result_bytes = 1100;
  absl::StatusOr<CreateResult> third = store->Create(a, limits);
  ASSERT_TRUE(third.ok() && third->created) << third.status();
  EXPECT_EQ(*store->StoredBytes("dave"), 2 * spec + 1400);
  ASSERT_TRUE(store->Cancel(third->record.id).ok());
  EXPECT_EQ(*store->StoredBytes("dave"), 2 * spec + 300);
  // A negative estimate reserves nothing.
  a.reserved_result_bytes = -5;
  absl::StatusOr<CreateResult> fourth = store->Create(a);
  ASSERT_TRUE(fourth.ok() && fourth->created) << fourth.status();
  EXPECT_EQ(*store->StoredBytes("dave"), 3 * spec + 300);
}

TEST_P(JobStoreTest, OwnersAndTheBytesTheirJobsOccupy) {
  auto store = OpenStore();
  JobRecord a = NewJob();
  a.owner = "alice";
  const std::string id = MustCreate(*store, a);
  EXPECT_EQ(store->Get(id)->owner, "alice");
  EXPECT_EQ(*store->StoredBytes("alice"), static_cast<int64_t>(a.spec.size()));
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->PutResult(id, std::string(5000, 'r')).ok());
  EXPECT_EQ(*store->StoredBytes("alice"), static_cast<int64_t>(a.spec.size()) + 5000);
  EXPECT_EQ(*store->StoredBytes("bob"), 0);
  ASSERT_TRUE(store->Delete(id).ok());
  EXPECT_EQ(*store->StoredBytes("alice"), 0);
}

// The jobs and results tables as schema versions 1 and 2 wrote them (1: no owner column; 2:
// request_id unique across owners).
std::string OldSchema(int version) {
  return std::string(
             "CREATE TABLE jobs (id TEXT PRIMARY KEY NOT NULL, request_id TEXT UNIQUE, "
             "kind TEXT NOT NULL, model TEXT NOT NULL, priority INTEGER NOT NULL, "
             "state TEXT NOT NULL, spec BLOB NOT NULL, error_code INTEGER NOT NULL "
             "DEFAULT 0, error_message TEXT NOT NULL DEFAULT '', progress_stage TEXT NOT "
             "NULL DEFAULT '', progress_done INTEGER NOT NULL DEFAULT 0, progress_total "
             "INTEGER NOT NULL DEFAULT 0, create_time_ms INTEGER NOT NULL, start_time_ms "
             "INTEGER NOT NULL DEFAULT 0, end_time_ms INTEGER NOT NULL DEFAULT 0, "
             "update_time_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
             "has_result INTEGER NOT NULL DEFAULT 0, result_size_bytes INTEGER NOT NULL "
             "DEFAULT 0, result_chunk_count INTEGER NOT NULL DEFAULT 0") +
         (version >= 2 ? ", owner TEXT NOT NULL DEFAULT ''" : "") +
         "); CREATE TABLE results (job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, "
         "seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (job_id, seq)); "
         "INSERT INTO jobs (id, request_id, kind, model, priority, state, spec, create_time_ms, "
         "update_time_ms, has_result, result_size_bytes, result_chunk_count) VALUES ('jobs/old', "
         "'req', 'ATTRIBUTION', 'm', 0, 'SUCCEEDED', X'0102', 1, 1, 1, 3, 1); "
         "INSERT INTO results VALUES ('jobs/old', 0, 'abc'); PRAGMA user_version = " +
         std::to_string(version) + ";";
}

// Stores written by schema versions 1 and 2 are migrated in place when opened: every job and result
// kept, owners recorded from then on, request ids unique per owner. Version 4 (no reservations)
// gains its column in place.
TEST_F(SqliteJobStoreTest, OlderStoresAreMigratedWhenOpened) {
  for (int version : {1, 2}) {
    SCOPED_TRACE(version);
    std::filesystem::remove(path_);
    RawSql(path_, OldSchema(version));
    ASSERT_EQ(RawSql(path_, "PRAGMA user_version"), std::to_string(version));
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(RawSql(path_, "PRAGMA user_version"), std::to_string(SqliteJobStore::kSchemaVersion));
    absl::StatusOr<JobRecord> old = store->Get("jobs/old");
    ASSERT_TRUE(old.ok()) << old.status();
    EXPECT_EQ(old->owner, "");
    EXPECT_EQ(ReadAll(*store, "jobs/old"), "abc");
    // The old job's request id belongs to the owner "" only: bob may use it too.
    JobRecord b = NewJob();
    b.owner = "bob";
    b.request_id = "req";
    absl::StatusOr<CreateResult> created = store->Create(b);
    ASSERT_TRUE(created.ok()) << created.status();
    EXPECT_TRUE(created->created);
    EXPECT_EQ(created->record.owner, "bob");
    // Deleting the old job still cascades to its result.
    ASSERT_TRUE(store->Delete("jobs/old").ok());
    EXPECT_EQ(ResultRows(), "0");
  }
  std::filesystem::remove(path_);
  std::string id;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    id = MustCreate(*store, NewJob());
  }
  RawSql(path_, "ALTER TABLE jobs DROP COLUMN reserved_bytes; PRAGMA user_version = 4;");
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(RawSql(path_, "PRAGMA user_version"), std::to_string(SqliteJobStore::kSchemaVersion));
  absl::StatusOr<JobRecord> kept = store->Get(id);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->reserved_result_bytes, 0);
  JobRecord reserved = NewJob();
  reserved.reserved_result_bytes = 7;
  absl::StatusOr<CreateResult> created = store->Create(reserved);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->record.reserved_result_bytes, 7);
}

TEST_P(JobStoreTest, RequestIdsArePerOwner) {
  auto store = OpenStore();
  JobRecord a = NewJob();
  a.owner = "alice";
  a.request_id = "same";
  JobRecord b = a;
  b.owner = "bob";
  auto first = store->Create(a);
  auto other = store->Create(b);
  auto again = store->Create(a);
  ASSERT_TRUE(first.ok() && other.ok() && again.ok());
  EXPECT_TRUE(other->created);
  EXPECT_NE(other->record.id, first->record.id);
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->record.id, first->record.id);
  ListFilter mine;
  mine.owner = "bob";
  auto page = store->List(mine);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->records.size(), 1u);
  EXPECT_EQ(page->records[0].id, other->record.id);
}

TEST_P(JobStoreTest, EmptyAndReplacedResults) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(id).ok());
  EXPECT_TRUE(absl::IsNotFound(store->GetResultInfo(id).status()));  // none yet
  ASSERT_TRUE(store->PutResult(id, "").ok());
  absl::StatusOr<ResultInfo> info = store->GetResultInfo(id);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size_bytes, 0);
  EXPECT_EQ(info->chunk_count, 0);
  EXPECT_EQ(ReadAll(*store, id), "");

  const std::string big = RandomBytes(3u << 20, 1);
  ASSERT_TRUE(store->PutResult(id, big).ok());
  ASSERT_TRUE(store->PutResult(id, "small").ok());  // replaces, dropping the old chunks
  EXPECT_EQ(store->GetResultInfo(id)->chunk_count, 1);
  EXPECT_EQ(ReadAll(*store, id), "small");
  EXPECT_TRUE(absl::IsNotFound(store->GetResultChunk(id, 1).status()));
}

TEST_P(JobStoreTest, FailedJobDropsItsResult) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->PutResult(id, "half").ok());
  absl::StatusOr<JobRecord> failed = store->Finish(id, JobState::kFailed, 13, "boom");
  ASSERT_TRUE(failed.ok());
  EXPECT_FALSE(failed->has_result);
  EXPECT_EQ(failed->result_size_bytes, 0);
  EXPECT_EQ(store->Stats()->result_bytes, 0);
}

TEST_P(JobStoreTest, DeleteRemovesJobAndResult) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->PutResult(id, RandomBytes(3u << 20, 2)).ok());
  ASSERT_TRUE(store->Finish(id, JobState::kSucceeded, 0, "").ok());
  const std::string keep = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->Delete(id).ok());
  EXPECT_TRUE(absl::IsNotFound(store->Get(id).status()));
  EXPECT_TRUE(absl::IsNotFound(store->GetResultChunk(id, 0).status()));
  absl::Status status = store->Delete(id);
  EXPECT_TRUE(absl::IsNotFound(status));
  EXPECT_NE(Message(status).find(id), std::string::npos);
  EXPECT_TRUE(store->Get(keep).ok());
  store.reset();
  EXPECT_EQ(ResultRows(), "0");
}

TEST_P(JobStoreTest, ListPagesAreStableUnderInserts) {
  auto store = OpenStore();
  std::vector<std::string> original;
  for (int i = 0; i < 23; ++i) {
    now_ms_ += (i % 3 == 0) ? 0 : 1;  // some share a create time: ties break by id
    original.push_back(MustCreate(*store, NewJob()));
  }
  ListFilter filter;
  filter.page_size = 5;
  std::vector<std::string> seen;
  int pages = 0;
  for (;;) {
    absl::StatusOr<ListPage> page = store->List(filter);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_LE(page->records.size(), 5u);
    for (const JobRecord& r : page->records) seen.push_back(r.id);
    // Inserts between pages: one later than everything, one with an early create time.
    now_ms_ += 1;
    MustCreate(*store, NewJob());
    JobRecord early = NewJob();
    early.create_time_ms = 1;
    MustCreate(*store, early);
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
    ASSERT_LT(pages, 50);
  }
  // Every original job exactly once, in (create time, id) order; no duplicates at all.
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size());
  for (const std::string& id : original) EXPECT_EQ(unique.count(id), 1u) << id;
  std::vector<std::pair<int64_t, std::string>> keys;
  for (const std::string& id : seen) keys.emplace_back(store->Get(id)->create_time_ms, id);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_GE(pages, 5);

  // Default page size and bad tokens.
  for (int i = 0; i < kDefaultListPageSize; ++i) MustCreate(*store, NewJob());
  ListFilter all;
  all.page_size = 0;
  absl::StatusOr<ListPage> first = store->List(all);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->records.size(), static_cast<size_t>(kDefaultListPageSize));
  ASSERT_FALSE(first->next_page_token.empty());
  all.page_token = "garbage!";
  absl::Status status = store->List(all).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(Message(status).find("page_token"), std::string::npos) << status;
  all.page_token = first->next_page_token;
  all.kind = "ATTRIBUTION";  // a token from another filter
  status = store->List(all).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status));
  EXPECT_NE(Message(status).find("page_token"), std::string::npos) << status;
  ListFilter negative;
  negative.page_size = -1;
  EXPECT_TRUE(absl::IsInvalidArgument(store->List(negative).status()));
}

TEST_P(JobStoreTest, ListFilters) {
  auto store = OpenStore();
  std::map<std::string, std::string> kind_of;
  for (int i = 0; i < 12; ++i) {
    now_ms_ += 1;
    const std::string kind = i % 3 == 0 ? "TRIGGER_SEARCH" : "ATTRIBUTION";
    const std::string id = MustCreate(*store, NewJob(kind));
    kind_of[id] = kind;
    if (i % 2 == 0) {
      ASSERT_TRUE(store->MarkRunning(id).ok());
    }
  }
  ListFilter filter;
  filter.state = JobState::kRunning;
  filter.kind = "ATTRIBUTION";
  filter.page_size = 2;
  int count = 0;
  for (;;) {
    absl::StatusOr<ListPage> page = store->List(filter);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const JobRecord& r : page->records) {
      EXPECT_EQ(r.state, JobState::kRunning);
      EXPECT_EQ(r.kind, "ATTRIBUTION");
      ++count;
    }
    if (page->next_page_token.empty()) break;
    filter.page_token = page->next_page_token;
  }
  EXPECT_EQ(count, 4);  // i in {2, 4, 8, 10}
  ListFilter queued;
  queued.state = JobState::kQueued;
  EXPECT_EQ(store->List(queued)->records.size(), 6u);
  ListFilter triggers;
  triggers.kind = "TRIGGER_SEARCH";
  EXPECT_EQ(store->List(triggers)->records.size(), 4u);
  ListFilter none;
  none.kind = "NOPE";
  absl::StatusOr<ListPage> empty = store->List(none);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->records.empty());
  EXPECT_TRUE(empty->next_page_token.empty());
}

TEST_P(JobStoreTest, ClaimTakesByPriorityThenOwnersInTurnsThenSubmissionOrder) {
  auto store = OpenStore();
  // One create time for all: the order comes from submission, not the clock or the random ids.
  const auto owned = [&](const std::string& owner, int priority) {
    JobRecord job = NewJob("ATTRIBUTION", priority);
    job.owner = owner;
    return MustCreate(*store, job);
  };
  const std::string a1 = owned("alice", 0);
  const std::string a2 = owned("alice", 0);
  const std::string a3 = owned("alice", 0);
  const std::string b1 = owned("bob", 0);
  const std::string b2 = owned("bob", 0);
  const std::string c1 = owned("carol", 0);
  const std::string high = owned("alice", 5);
  const std::string low = owned("dave", -2);
  std::vector<std::string> order;
  for (;;) {
    absl::StatusOr<std::optional<JobRecord>> claimed = store->Claim({"replica-a", 60000, 0});
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    if (!claimed->has_value()) break;
    const JobRecord& job = **claimed;
    order.push_back(job.id);
    EXPECT_EQ(job.state, JobState::kRunning);
    EXPECT_EQ(job.attempts, 1);
    EXPECT_EQ(job.lease_holder, "replica-a");
    EXPECT_GT(job.lease_token, 0);
    EXPECT_GT(job.lease_expiry_ms, 0);
  }
  // alice's high-priority job starts first; then, among priority 0, owners who have started
  // nothing (bob, carol) before alice, and after that whoever started least recently.
  EXPECT_EQ(order, (std::vector<std::string>{high, b1, c1, a1, b2, a2, a3, low}));
  EXPECT_EQ(store->CountQueued("alice")->queued, 0);
  absl::Status bad = store->Claim({"", 1000, 0}).status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad)) << bad;
  EXPECT_NE(Message(bad).find("holder"), std::string::npos) << bad;
}

TEST_P(JobStoreTest, ClaimPassesOverOwnersAtTheirRunningLimit) {
  auto store = OpenStore();
  JobRecord alices = NewJob();
  alices.owner = "alice";
  JobRecord bobs = NewJob();
  bobs.owner = "bob";
  const std::string a1 = MustCreate(*store, alices);
  const std::string a2 = MustCreate(*store, alices);
  const std::string b1 = MustCreate(*store, bobs);
  const ClaimRequest one_each{"r", 60000, 1};
  EXPECT_EQ((*store->Claim(one_each))->id, a1);
  EXPECT_EQ((*store->Claim(one_each))->id, b1);  // a2 waits: alice runs one already
  EXPECT_FALSE(store->Claim(one_each)->has_value());
  const QueueCounts counts = *store->CountQueued("alice");
  EXPECT_EQ(counts.queued, 1);
  EXPECT_EQ(counts.owner_queued, 1);
  ASSERT_TRUE(store->Finish(a1, JobState::kSucceeded, 0, "").ok());
  EXPECT_EQ((*store->Claim(one_each))->id, a2);
}

// A run that lost its lease (its replica froze past the lease, another took the job over) has
// every later write refused, and the new run's are kept.
TEST_P(JobStoreTest, LeasesFenceTheWritesOfARunThatLostItsJob) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  const JobRecord first = **store->Claim({"replica-a", 10, 0});
  // The lease lapses: the SQLite store's clock is the test's, PostgreSQL's the database's.
  now_ms_ += 1000;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  absl::StatusOr<std::vector<JobRecord>> recovered = store->RecoverExpiredLeases(3);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].state, JobState::kQueued);
  EXPECT_EQ((*recovered)[0].lease_holder, "");
  const JobRecord second = **store->Claim({"replica-b", 60000, 0});
  ASSERT_EQ(second.id, id);
  EXPECT_EQ(second.attempts, 2);
  EXPECT_GT(second.lease_token, first.lease_token);

  const int64_t stale = first.lease_token;
  absl::Status late = store->UpdateProgress(id, {"late", 1, 2}, stale);
  EXPECT_TRUE(absl::IsFailedPrecondition(late)) << late;
  EXPECT_NE(Message(late).find("no longer held by this run"), std::string::npos) << late;
  EXPECT_TRUE(absl::IsFailedPrecondition(store->PutResult(id, "late result", stale)));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(store->Finish(id, JobState::kSucceeded, 0, "", stale).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Requeue(id, stale).status()));
  EXPECT_EQ(*store->RenewLeases("replica-a", {{id, stale}}, 60000), std::vector<std::string>{id});
  EXPECT_TRUE(store->RenewLeases("replica-b", {{id, second.lease_token}}, 60000)->empty());

  ASSERT_TRUE(store->UpdateProgress(id, {"work", 2, 2}, second.lease_token).ok());
  ASSERT_TRUE(store->PutResult(id, "the new run's result", second.lease_token).ok());
  ASSERT_TRUE(store->Finish(id, JobState::kSucceeded, 0, "", second.lease_token).ok());
  EXPECT_EQ(ReadAll(*store, id), "the new run's result");
  // Finished: the lease is no longer anyone's to renew.
  EXPECT_EQ(*store->RenewLeases("replica-b", {{id, second.lease_token}}, 60000),
            std::vector<std::string>{id});
}

// Regression (review): a run that lost its lease while the job waits in the queue again, not yet
// claimed by anyone, could still finish it (SUCCEEDED with no result, never run again): every
// re-queue advances the token, so the old run's writes are refused. A drain's hand-back fences
// the same way and does not count the start it hands back.
TEST_P(JobStoreTest, ARequeuedJobFencesTheRunThatHeldItBeforeAnyNewClaim) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  const JobRecord first = **store->Claim({"replica-a", 10, 0});
  now_ms_ += 1000;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(store->RecoverExpiredLeases(3)->size(), 1u);
  const JobRecord queued = *store->Get(id);
  EXPECT_EQ(queued.state, JobState::kQueued);
  EXPECT_GT(queued.lease_token, first.lease_token);
  EXPECT_EQ(queued.attempts, 1);  // the start a lapsed lease ended counts
  const int64_t stale = first.lease_token;
  EXPECT_TRUE(absl::IsFailedPrecondition(store->UpdateProgress(id, {"late", 1, 2}, stale)));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->PutResult(id, "late result", stale)));
  EXPECT_TRUE(
      absl::IsFailedPrecondition(store->Finish(id, JobState::kSucceeded, 0, "", stale).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store->Finish(id, JobState::kFailed, 13, "late failure", stale).status()));
  EXPECT_EQ(store->Get(id)->state, JobState::kQueued);

  const JobRecord second = **store->Claim({"replica-b", 60000, 0});
  EXPECT_EQ(second.attempts, 2);
  const JobRecord released = *store->Requeue(id, second.lease_token);
  EXPECT_EQ(released.attempts, 1);
  EXPECT_GT(released.lease_token, second.lease_token);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store->Finish(id, JobState::kSucceeded, 0, "", second.lease_token).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Requeue(id, second.lease_token).status()));
  EXPECT_EQ(store->Get(id)->state, JobState::kQueued);
  EXPECT_EQ((**store->Claim({"replica-c", 60000, 0})).attempts, 2);
}

TEST_P(JobStoreTest, LapsedLeasesRequeueUntilMaxAttemptsThenFail) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  const std::string live = MustCreate(*store, NewJob());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    absl::StatusOr<std::optional<JobRecord>> claimed = store->Claim({"r", 10, 0});
    ASSERT_TRUE(claimed.ok() && claimed->has_value());
    ASSERT_EQ((*claimed)->id, id);
    if (attempt == 1) {
      ASSERT_TRUE(store->Claim({"r", 600000, 0})->has_value());  // `live`
    }
    ASSERT_TRUE(store->PutResult(id, "partial", (*claimed)->lease_token).ok());
    now_ms_ += 1000;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    absl::StatusOr<std::vector<JobRecord>> recovered = store->RecoverExpiredLeases(2);
    ASSERT_TRUE(recovered.ok()) << recovered.status();
    ASSERT_EQ(recovered->size(), 1u);  // not `live`: its lease holds
    EXPECT_FALSE((*recovered)[0].has_result);
    if (attempt == 1) {
      EXPECT_EQ((*recovered)[0].state, JobState::kQueued);
    } else {
      EXPECT_EQ((*recovered)[0].state, JobState::kFailed);
      EXPECT_EQ((*recovered)[0].error_code, static_cast<int32_t>(absl::StatusCode::kInternal));
      EXPECT_NE((*recovered)[0].error_message.find("2 times"), std::string::npos);
    }
  }
  EXPECT_EQ(store->Get(live)->state, JobState::kRunning);
  EXPECT_EQ(ResultRows(id), "0");
}

// A lease that lapsed (its holder was cut off from the store) but that no recovery has taken yet
// is still its holder's: renewing it keeps the run going. Once a recovery has taken it, the
// renewal reports it lost (the new token fences the old run).
TEST_P(JobStoreTest, ALapsedLeaseNobodyTookIsRenewedByItsHolder) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  const std::string other = MustCreate(*store, NewJob());
  const JobRecord held = **store->Claim({"replica-a", 10, 0});
  const JobRecord lost = **store->Claim({"replica-b", 10, 0});
  now_ms_ += 1000;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  absl::StatusOr<std::vector<std::string>> renewed =
      store->RenewLeases("replica-a", {{id, held.lease_token}}, 600000);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_TRUE(renewed->empty());
  absl::StatusOr<std::vector<JobRecord>> recovered = store->RecoverExpiredLeases(3);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ASSERT_EQ(recovered->size(), 1u);  // only replica-b's, which nobody renewed
  EXPECT_EQ((*recovered)[0].id, other);
  EXPECT_EQ(store->Get(id)->state, JobState::kRunning);
  EXPECT_TRUE(store->PutResult(id, "still the first run's", held.lease_token).ok());
  EXPECT_EQ(*store->RenewLeases("replica-b", {{other, lost.lease_token}}, 600000),
            std::vector<std::string>{other});
}

// A drain hands its running job back at once: the next claim (any replica's) takes it without
// waiting for the lease to lapse.
TEST_P(JobStoreTest, RequeueReleasesTheLeaseAtOnce) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  const JobRecord held = **store->Claim({"replica-a", 600000, 0});
  ASSERT_TRUE(store->UpdateProgress(id, {"work", 1, 4}, held.lease_token).ok());
  absl::StatusOr<JobRecord> released = store->Requeue(id, held.lease_token);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->state, JobState::kQueued);
  EXPECT_EQ(released->lease_holder, "");
  EXPECT_EQ(released->progress.done, 0);
  const JobRecord again = **store->Claim({"replica-b", 600000, 0});
  EXPECT_EQ(again.id, id);
  EXPECT_EQ(again.lease_holder, "replica-b");
}

// Replicas (stores on one database; on SQLite, threads on its one store) claiming at once each get
// different jobs, and every job is claimed exactly once.
TEST_P(JobStoreTest, ConcurrentClaimsTakeEachJobOnce) {
  auto a = OpenStore();
  auto second = SecondReplica();
  JobStore* b = second != nullptr ? second.get() : a.get();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) MustCreate(*a, NewJob("ATTRIBUTION", i % 3));
  std::mutex mu;
  std::vector<std::string> claimed;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      JobStore& store = t % 2 == 0 ? *a : *b;
      const std::string holder = t % 2 == 0 ? "a" : "b";
      for (;;) {
        absl::StatusOr<std::optional<JobRecord>> job = store.Claim({holder, 60000, 0});
        if (!job.ok()) {
          if (!absl::IsUnavailable(job.status())) ++errors;  // SQLite's lock timeout may say so
          continue;
        }
        if (!job->has_value()) return;
        std::lock_guard<std::mutex> lock(mu);
        claimed.push_back((*job)->id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(claimed.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(),
            static_cast<size_t>(kJobs));
  EXPECT_EQ(a->Stats()->Count(JobState::kRunning), kJobs);
}

// Claims on two replicas at once never start more of one owner's jobs than its running limit.
TEST_P(JobStoreTest, ConcurrentClaimsOnTwoReplicasKeepTheRunningLimit) {
  auto a = OpenStore();
  auto second = SecondReplica();
  JobStore* b = second != nullptr ? second.get() : a.get();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (const char* owner : {"alice", "bob"}) {
    for (int i = 0; i < 10; ++i) {
      JobRecord job = NewJob();
      job.owner = owner;
      MustCreate(*a, job);
    }
  }
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      JobStore& store = t % 2 == 0 ? *a : *b;
      for (int i = 0; i < 3; ++i) {
        absl::StatusOr<std::optional<JobRecord>> job =
            store.Claim({t % 2 == 0 ? "a" : "b", 60000, 3});
        if (!job.ok() && !absl::IsUnavailable(job.status())) {
          ADD_FAILURE() << job.status();
          ++errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  ListFilter running;
  running.state = JobState::kRunning;
  running.include_spec = false;
  std::map<std::string, int> per_owner;
  absl::StatusOr<ListPage> page = a->List(running);
  ASSERT_TRUE(page.ok()) << page.status();
  for (const JobRecord& job : page->records) ++per_owner[job.owner];
  EXPECT_EQ(per_owner["alice"], 3);
  EXPECT_EQ(per_owner["bob"], 3);
}

TEST_P(JobStoreTest, PersistsAcrossReopenAndRequeuesInterrupted) {
  std::string queued, running, running2, done;
  const std::string blob = RandomBytes(2u << 20, 3);
  {
    auto store = OpenStore();
    queued = MustCreate(*store, NewJob("ATTRIBUTION", 0, "req-q"));
    running = MustCreate(*store, NewJob());
    running2 = MustCreate(*store, NewJob());
    done = MustCreate(*store, NewJob());
    ASSERT_TRUE(store->MarkRunning(running).ok());
    ASSERT_TRUE(store->UpdateProgress(running, {"integrating", 1, 4}).ok());
    ASSERT_TRUE(store->MarkRunning(running2).ok());
    ASSERT_TRUE(store->MarkRunning(done).ok());
    ASSERT_TRUE(store->PutResult(done, blob).ok());
    ASSERT_TRUE(store->Finish(done, JobState::kSucceeded, 0, "").ok());
  }
  auto store = OpenStore();
  EXPECT_EQ(store->Get(running)->state, JobState::kRunning);
  absl::StatusOr<std::vector<JobRecord>> requeued = store->RequeueInterrupted(3);
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  std::vector<std::string> expected = {running, running2};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(Ids(*requeued), expected);
  for (const JobRecord& job : *requeued) EXPECT_EQ(job.state, JobState::kQueued);
  absl::StatusOr<JobRecord> again = store->Get(running);
  EXPECT_EQ(again->state, JobState::kQueued);
  EXPECT_EQ(again->attempts, 1);
  EXPECT_EQ(again->progress.stage, "");  // the dead run's progress is no longer the job's
  EXPECT_EQ(store->MarkRunning(running)->attempts, 2);
  EXPECT_EQ(store->Get(queued)->state, JobState::kQueued);
  EXPECT_FALSE(store->Create(NewJob("ATTRIBUTION", 0, "req-q"))->created);  // idempotency persists
  EXPECT_EQ(store->Get(done)->state, JobState::kSucceeded);
  EXPECT_TRUE(ReadAll(*store, done) == blob);
  EXPECT_TRUE(store->RequeueInterrupted(3)->size() == 1u);  // only `running`, started again
  EXPECT_EQ(store->CountQueued("")->queued, 3);
}

TEST_P(JobStoreTest, RestartedRunDropsStaleResult) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->PutResult(id, "from the interrupted run").ok());
  // The process dies before Finish; on restart the job is re-queued and run again.
  ASSERT_EQ(store->RequeueInterrupted(3)->size(), 1u);
  absl::StatusOr<JobRecord> rerun = store->MarkRunning(id);
  ASSERT_TRUE(rerun.ok());
  EXPECT_FALSE(rerun->has_result);
  EXPECT_TRUE(absl::IsNotFound(store->GetResultInfo(id).status()));
}

// Regression (durability review): the poison-job check ran after RequeueInterrupted had committed,
// so a crash (or a failed write) in between left a job started max_attempts times QUEUED, to be
// run — and die under — once more. The check is now in the same transaction.
TEST_P(JobStoreTest, RequeueInterruptedFailsAJobStartedMaxAttemptsTimesInOneStep) {
  auto store = OpenStore();
  const std::string poison = MustCreate(*store, NewJob());
  const std::string young = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(poison).ok());         // its first start
  ASSERT_EQ(store->RequeueInterrupted(2)->size(), 1u);  // died under once: again
  ASSERT_TRUE(store->MarkRunning(poison).ok());         // its second start
  ASSERT_TRUE(store->MarkRunning(young).ok());
  absl::StatusOr<std::vector<JobRecord>> changed = store->RequeueInterrupted(2);
  ASSERT_TRUE(changed.ok()) << changed.status();
  ASSERT_EQ(changed->size(), 2u);
  for (const JobRecord& job : *changed) {
    if (job.id == poison) {
      EXPECT_EQ(job.state, JobState::kFailed);
      EXPECT_EQ(job.error_code, static_cast<int32_t>(absl::StatusCode::kInternal));
      EXPECT_EQ(job.error_message, TooManyAttemptsMessage(2, 2));
    } else {
      EXPECT_EQ(job.state, JobState::kQueued);
      EXPECT_EQ(job.attempts, 1);
    }
  }
  EXPECT_EQ(store->Get(poison)->state, JobState::kFailed);  // as committed, not just returned
  EXPECT_EQ(store->Get(young)->state, JobState::kQueued);
  EXPECT_TRUE(store->RequeueInterrupted(2)->empty());
}

// Regression (review): RequeueInterrupted re-queued a job the process died under between
// PutResult and Finish with has_result set, its size counted against its owner's stored bytes,
// its chunks kept and the dead run's progress shown. It resets the job as a recovered lease does.
TEST_P(JobStoreTest, RequeueInterruptedDropsTheDeadRunsResultAndProgress) {
  auto store = OpenStore();
  JobRecord job = NewJob();
  job.owner = "alice";
  const std::string id = MustCreate(*store, job);
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->UpdateProgress(id, {"storing result", 4, 4}).ok());
  ASSERT_TRUE(store->PutResult(id, RandomBytes(10000, 7)).ok());
  ASSERT_EQ(*store->StoredBytes("alice"), 10 + 10000);
  // The process dies before Finish; the next start re-queues the job.
  ASSERT_EQ(Ids(*store->RequeueInterrupted(3)), std::vector<std::string>{id});
  const JobRecord queued = *store->Get(id);
  EXPECT_EQ(queued.state, JobState::kQueued);
  EXPECT_FALSE(queued.has_result);
  EXPECT_EQ(queued.result_size_bytes, 0);
  EXPECT_EQ(queued.result_chunk_count, 0);
  EXPECT_EQ(queued.progress.stage, "");
  EXPECT_EQ(queued.progress.done, 0);
  EXPECT_EQ(queued.progress.total, 0);
  EXPECT_EQ(queued.attempts, 1);  // the start it died under counts
  EXPECT_EQ(ResultRows(id), "0");
  EXPECT_EQ(*store->StoredBytes("alice"), 10);
  EXPECT_TRUE(absl::IsNotFound(store->GetResultInfo(id).status()));
}

TEST_P(JobStoreTest, RequeueOneRunningJobDropsItsProgressAndPartialResult) {
  auto store = OpenStore();
  const std::string id = MustCreate(*store, NewJob());
  const std::string other = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->MarkRunning(other).ok());
  ASSERT_TRUE(store->UpdateProgress(id, {"attribution", 3, 9}).ok());
  ASSERT_TRUE(store->PutResult(id, "partial").ok());
  absl::StatusOr<JobRecord> requeued = store->Requeue(id);
  ASSERT_TRUE(requeued.ok()) << requeued.status();
  EXPECT_EQ(requeued->state, JobState::kQueued);
  EXPECT_EQ(requeued->progress.done, 0);
  EXPECT_EQ(requeued->progress.stage, "");
  EXPECT_FALSE(requeued->has_result);
  EXPECT_EQ(requeued->attempts, 0);  // a hand-back does not count the start
  EXPECT_TRUE(absl::IsNotFound(store->GetResultInfo(id).status()));
  EXPECT_EQ(store->Get(other)->state, JobState::kRunning);  // only the one named
  // Only a RUNNING job can be re-queued; the message names the job and its state.
  absl::StatusOr<JobRecord> again = store->Requeue(id);
  EXPECT_TRUE(absl::IsFailedPrecondition(again.status())) << again.status();
  EXPECT_NE(std::string(again.status().message()).find(id), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(store->Requeue("jobs/missing").status()));
}

TEST_P(JobStoreTest, ExpireResultsDeletesOldFinishedJobs) {
  auto store = OpenStore();
  now_ms_ = 1000;
  const std::string old_done = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(old_done).ok());
  ASSERT_TRUE(store->PutResult(old_done, "old").ok());
  ASSERT_TRUE(store->Finish(old_done, JobState::kSucceeded, 0, "").ok());  // ends at 1000
  const std::string old_failed = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->Finish(old_failed, JobState::kFailed, 13, "x").ok());  // ends at 1000
  const std::string old_running = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(old_running).ok());
  const std::string old_queued = MustCreate(*store, NewJob());
  now_ms_ = 2000;
  const std::string recent = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->Cancel(recent).ok());  // ends at 2000

  // Finished more than 1000 ms before 2500 means end < 1500.
  absl::StatusOr<int64_t> expired = store->ExpireResults(2500, 1000);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 2);
  EXPECT_TRUE(absl::IsNotFound(store->Get(old_done).status()));
  EXPECT_TRUE(absl::IsNotFound(store->Get(old_failed).status()));
  EXPECT_TRUE(store->Get(old_running).ok());
  EXPECT_TRUE(store->Get(old_queued).ok());
  EXPECT_TRUE(store->Get(recent).ok());
  EXPECT_EQ(*store->ExpireResults(2500, 1000), 0);
  EXPECT_EQ(*store->ExpireResults(3000, 999), 1);  // recent: 2000 < 2001
  EXPECT_TRUE(absl::IsInvalidArgument(store->ExpireResults(3000, -1).status()));
  store.reset();
  EXPECT_EQ(ResultRows(), "0");
}

// A backlog larger than one batch (the sweep deletes kExpireBatch jobs per statement) is
// cleared in one call, batch after batch; unfinished jobs stay.
TEST_P(JobStoreTest, ExpireResultsClearsABacklogBatchByBatch) {
  auto store = OpenStore();
  now_ms_ = 1000;
  const int64_t backlog = kExpireBatch + 3;
  for (int64_t i = 0; i < backlog; ++i) {
    ASSERT_TRUE(store->Cancel(MustCreate(*store, NewJob())).ok());  // ends at 1000
  }
  const std::string queued = MustCreate(*store, NewJob());
  absl::StatusOr<int64_t> expired = store->ExpireResults(5000, 1000);
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, backlog);
  EXPECT_EQ(store->Stats()->Count(JobState::kCancelled), 0);
  EXPECT_EQ(store->Stats()->Count(JobState::kQueued), 1);
  EXPECT_TRUE(store->Get(queued).ok());
}

TEST_P(JobStoreTest, StatsCountByState) {
  auto store = OpenStore();
  for (int i = 0; i < 3; ++i) MustCreate(*store, NewJob());
  const std::string r = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(r).ok());
  ASSERT_TRUE(store->PutResult(r, "12345").ok());
  const std::string s = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(s).ok());
  ASSERT_TRUE(store->PutResult(s, "123").ok());
  ASSERT_TRUE(store->Finish(s, JobState::kSucceeded, 0, "").ok());
  ASSERT_TRUE(store->Cancel(MustCreate(*store, NewJob())).ok());
  ASSERT_TRUE(store->Finish(MustCreate(*store, NewJob()), JobState::kFailed, 4, "late").ok());
  absl::StatusOr<StoreStats> stats = store->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->Count(JobState::kQueued), 3);
  EXPECT_EQ(stats->Count(JobState::kRunning), 1);
  EXPECT_EQ(stats->Count(JobState::kSucceeded), 1);
  EXPECT_EQ(stats->Count(JobState::kFailed), 1);
  EXPECT_EQ(stats->Count(JobState::kCancelled), 1);
  EXPECT_EQ(stats->result_bytes, 8);
}

TEST_P(JobStoreTest, ConcurrentWritersAndReaders) {
  auto store = OpenStore();
  constexpr int kThreads = 6;
  constexpr int kJobsPerThread = 25;
  std::atomic<int> errors{0};
  std::atomic<bool> writers_done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kJobsPerThread; ++i) {
        absl::StatusOr<CreateResult> created =
            store->Create(NewJob("ATTRIBUTION", i % 4, absl::StrCat("req-", t, "-", i)));
        if (!created.ok()) {
          ++errors;
          continue;
        }
        const std::string& id = created->record.id;
        bool ok = store->MarkRunning(id).ok() && store->UpdateProgress(id, {"x", 1, 2}).ok() &&
                  store->PutResult(id, RandomBytes(10000 + i, t * 100 + i)).ok();
        ok = ok && (i % 5 == 0 ? store->Cancel(id).ok()
                               : store->Finish(id, JobState::kSucceeded, 0, "").ok());
        if (!ok) ++errors;
      }
    });
  }
  // The same request id submitted from several threads at once creates exactly one job.
  std::atomic<int> created_count{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      absl::StatusOr<CreateResult> created = store->Create(NewJob("ATTRIBUTION", 0, "shared"));
      if (!created.ok()) ++errors;
      if (created.ok() && created->created) ++created_count;
    });
  }
  std::thread reader([&] {
    while (!writers_done.load()) {
      ListFilter filter;
      filter.page_size = 7;
      if (!store->List(filter).ok() || !store->Stats().ok() || !store->CountQueued("x").ok())
        ++errors;
    }
  });
  for (std::thread& thread : threads) thread.join();
  writers_done = true;
  reader.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(created_count.load(), 1);
  absl::StatusOr<StoreStats> stats = store->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->Count(JobState::kSucceeded), kThreads * kJobsPerThread * 4 / 5);
  EXPECT_EQ(stats->Count(JobState::kCancelled), kThreads * kJobsPerThread / 5);
  EXPECT_EQ(stats->Count(JobState::kQueued), 1);
}

// Reads newline-separated lines from `fd` until `last` arrives or the pipe closes.
std::vector<std::string> ReadLines(int fd, const std::string& last) {
  std::vector<std::string> lines;
  std::string buffer;
  char c;
  while (read(fd, &c, 1) == 1) {
    if (c != '\n') {
      buffer += c;
      continue;
    }
    lines.push_back(buffer);
    if (buffer == last) break;
    buffer.clear();
  }
  return lines;
}

void WriteLine(int fd, const std::string& line) {
  const std::string data = line + "\n";
  if (write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) _exit(3);
}

// A child process writes to the store and is killed with SIGKILL right after reporting: everything
// it reported must be in the file, the running job re-queued, the finished result intact.
TEST_F(SqliteJobStoreTest, SurvivesSigkillOfTheWritingProcess) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const std::string blob = RandomBytes((5u << 20) + 7, 42);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    SqliteJobStoreOptions options;
    options.path = path_;
    absl::StatusOr<std::unique_ptr<SqliteJobStore>> opened = SqliteJobStore::Open(options);
    if (!opened.ok()) _exit(2);
    JobStore& store = **opened;
    for (int i = 0; i < 5; ++i) {
      absl::StatusOr<CreateResult> created = store.Create(NewJob());
      if (!created.ok()) _exit(2);
      WriteLine(fds[1], "queued " + created->record.id);
    }
    absl::StatusOr<CreateResult> running = store.Create(NewJob());
    if (!running.ok() || !store.MarkRunning(running->record.id).ok()) _exit(2);
    WriteLine(fds[1], "running " + running->record.id);
    absl::StatusOr<CreateResult> done = store.Create(NewJob());
    if (!done.ok() || !store.MarkRunning(done->record.id).ok() ||
        !store.PutResult(done->record.id, blob).ok() ||
        !store.Finish(done->record.id, JobState::kSucceeded, 0, "").ok()) {
      _exit(2);
    }
    WriteLine(fds[1], "done " + done->record.id);
    WriteLine(fds[1], "end");
    for (;;) pause();  // killed here, store still open, WAL not checkpointed
  }
  close(fds[1]);
  std::vector<std::string> lines = ReadLines(fds[0], "end");
  kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
      << "child exited with " << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
  ASSERT_EQ(lines.size(), 8u);

  std::vector<std::string> queued;
  std::string running, done;
  for (const std::string& line : lines) {
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    const std::string what = line.substr(0, space), id = line.substr(space + 1);
    if (what == "queued") queued.push_back(id);
    if (what == "running") running = id;
    if (what == "done") done = id;
  }
  auto store = OpenStore();
  for (const std::string& id : queued) EXPECT_EQ(store->Get(id)->state, JobState::kQueued) << id;
  EXPECT_EQ(store->Get(running)->state, JobState::kRunning);
  absl::StatusOr<std::vector<JobRecord>> requeued = store->RequeueInterrupted(3);
  ASSERT_TRUE(requeued.ok());
  EXPECT_EQ(Ids(*requeued), std::vector<std::string>{running});
  EXPECT_EQ(store->CountQueued("")->queued, 6);
  absl::StatusOr<JobRecord> finished = store->Get(done);
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->state, JobState::kSucceeded);
  EXPECT_TRUE(ReadAll(*store, done) == blob);
  store.reset();
  EXPECT_EQ(RawSql(path_, "PRAGMA integrity_check"), "ok");
}

// Regression (store review): nothing kept two servers off one SQLite file; the second re-queued
// the first's running jobs as interrupted and ran them twice. Open now locks "<path>.lock": a
// second store on the file is refused, in this process or another (naming the holder's pid), and
// the file is free again once the holder closes it or dies.
TEST_F(SqliteJobStoreTest, OneStoreAtATimeOpensAFile) {
  {
    auto first = OpenStore();
    ASSERT_NE(first, nullptr);
    absl::Status second = SqliteJobStore::Open(Options()).status();
    EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
    EXPECT_NE(Message(second).find("already open in this process"), std::string::npos) << second;
    EXPECT_NE(Message(second).find("one server per SQLite file"), std::string::npos) << second;
  }
  EXPECT_NE(OpenStore(), nullptr);  // closed: free again

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    absl::StatusOr<std::unique_ptr<SqliteJobStore>> opened = SqliteJobStore::Open(Options());
    if (!opened.ok()) _exit(2);
    WriteLine(fds[1], "end");
    for (;;) pause();  // killed here, store open
  }
  close(fds[1]);
  ASSERT_EQ(ReadLines(fds[0], "end").size(), 1u);
  absl::Status held = SqliteJobStore::Open(Options()).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(held)) << held;
  EXPECT_NE(Message(held).find(absl::StrCat("(pid ", pid, ")")), std::string::npos) << held;
  kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  close(fds[0]);
  EXPECT_NE(OpenStore(), nullptr);  // the kernel let go with the process
}

// The child writes results in a loop and is killed at an arbitrary moment (possibly
// mid-transaction): the file stays consistent and every job it reported finished keeps its exact
// result.
TEST_F(SqliteJobStoreTest, SigkillMidWriteKeepsReportedResults) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    SqliteJobStoreOptions options;
    options.path = path_;
    options.result_chunk_bytes = 64 << 10;
    absl::StatusOr<std::unique_ptr<SqliteJobStore>> opened = SqliteJobStore::Open(options);
    if (!opened.ok()) _exit(2);
    JobStore& store = **opened;
    for (uint32_t i = 0;; ++i) {
      absl::StatusOr<CreateResult> job = store.Create(NewJob());
      if (!job.ok() || !store.MarkRunning(job->record.id).ok() ||
          !store.PutResult(job->record.id, RandomBytes((1u << 20) + i, i)).ok() ||
          !store.Finish(job->record.id, JobState::kSucceeded, 0, "").ok()) {
        _exit(2);
      }
      WriteLine(fds[1], absl::StrCat(i, " ", job->record.id));
    }
  }
  close(fds[1]);
  std::vector<std::string> lines;
  std::string buffer;
  char c;
  while (lines.size() < 6 && read(fds[0], &c, 1) == 1) {
    if (c == '\n') {
      lines.push_back(buffer);
      buffer.clear();
    } else {
      buffer += c;
    }
  }
  kill(pid, SIGKILL);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited early";
  ASSERT_EQ(lines.size(), 6u);

  auto store = OpenStore();
  for (const std::string& line : lines) {
    const size_t space = line.find(' ');
    const uint32_t i = static_cast<uint32_t>(std::stoul(line.substr(0, space)));
    const std::string id = line.substr(space + 1);
    absl::StatusOr<JobRecord> job = store->Get(id);
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->state, JobState::kSucceeded);
    EXPECT_TRUE(ReadAll(*store, id) == RandomBytes((1u << 20) + i, i)) << id;
  }
  ASSERT_TRUE(store->RequeueInterrupted(3).ok());  // the job it was writing, if any
  ListFilter only_queued;
  only_queued.state = JobState::kQueued;
  only_queued.page_size = kMaxListPageSize;
  absl::StatusOr<ListPage> queued = store->List(only_queued);
  ASSERT_TRUE(queued.ok()) << queued.status();
  for (const JobRecord& job : queued->records) {
    // A kill between PutResult and Finish leaves a whole result (MarkRunning drops it), never half.
    if (job.has_result) {
      EXPECT_EQ(ReadAll(*store, job.id).size(), job.result_size_bytes) << job.id;
    }
  }
  store.reset();
  EXPECT_EQ(RawSql(path_, "PRAGMA integrity_check"), "ok");
}

// What only the PostgreSQL store has: URIs and passwords, the versioned schema shared by
// replicas, reconnecting after the database restarts.
class PostgresJobStoreTest : public JobStoreTestBase {
 protected:
  PostgresJobStoreTest() : JobStoreTestBase("postgresql") {}

  // Options whose host clock is the system's plus `skew` (a replica whose clock is wrong), the
  // offset measured again every 50 ms.
  PostgresJobStoreOptions SkewedOptions(const std::atomic<int64_t>& skew) const {
    PostgresJobStoreOptions options;
    options.uri = uri_;
    options.clock_refresh_ms = 50;
    options.host_clock = [&skew] {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count() +
             skew.load();
    };
    return options;
  }
  // The database server's clock, unix ms.
  int64_t DatabaseNowMs() {
    return std::stoll(
        *pg_->Query(database_, "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"));
  }
  // Whether store.NowMs() comes within 2 s of the database's clock in 20 s.
  bool NowMsReachesTheDatabase(const JobStore& store) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < give_up) {
      if (std::abs(store.NowMs() - DatabaseNowMs()) <= 2000) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
};

TEST(PostgresUriTest, PasswordsAreFoundAndRedacted) {
  EXPECT_TRUE(IsPostgresUri("postgresql://h/db"));
  EXPECT_TRUE(IsPostgresUri("postgres://h/db"));
  EXPECT_FALSE(IsPostgresUri("/var/lib/attattr/jobs.db"));
  EXPECT_FALSE(UriHasPassword("postgresql://attattr@db.example:5432/jobs?sslmode=require"));
  EXPECT_TRUE(UriHasPassword("postgresql://attattr:s3cret@db.example/jobs"));
  EXPECT_TRUE(UriHasPassword("postgresql://db.example/jobs?user=a&password=s3cret"));
  EXPECT_EQ(RedactUri("postgresql://attattr:s3cret@db.example/jobs"),
            "postgresql://attattr:***@db.example/jobs");
  EXPECT_EQ(RedactUri("postgresql://h/jobs?password=s3cret&sslmode=require"),
            "postgresql://h/jobs?password=***&sslmode=require");
  // An '@' in the path or query is not user info.
  EXPECT_EQ(RedactUri("postgresql://h/jobs?application_name=a@b"),
            "postgresql://h/jobs?application_name=a@b");
}

TEST(PostgresUriTest, OptionsAreValidated) {
  PostgresJobStoreOptions options;
  options.uri = "/var/lib/attattr/jobs.db";
  absl::Status status = PostgresJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(Message(status).find("uri"), std::string::npos) << status;
  options.uri = "postgresql://127.0.0.1:1/none";
  options.result_chunk_bytes = 2 << 20;  // results are stored in chunks of at most 1 MiB
  status = PostgresJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(Message(status).find("result_chunk_bytes"), std::string::npos) << status;
}

TEST(PostgresUriTest, UnreachableDatabaseIsUnavailableWithoutThePassword) {
  PostgresJobStoreOptions options;
  options.uri = "postgresql://attattr:s3cret@127.0.0.1:1/none";  // nothing listens on port 1
  options.connect_timeout_s = 1;
  absl::Status status = PostgresJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(Message(status).find("postgresql://attattr:***@127.0.0.1:1/none"), std::string::npos)
      << status;
  EXPECT_EQ(Message(status).find("s3cret"), std::string::npos) << status;
}

// Regression (durability review): jobs were stamped with the creating or claiming replica's clock
// and their deadlines checked against the running replica's, so a replica whose clock was an hour
// ahead failed every job with a timeout at once. The store stamps and answers NowMs on the
// database's clock, measured from the host's at Open and then every clock_refresh_ms.
TEST_F(PostgresJobStoreTest, JobsAreStampedOnTheDatabaseClockWhateverTheHostsClockSays) {
  constexpr int64_t kHour = 3600 * 1000;
  std::atomic<int64_t> skew{kHour};
  auto opened = PostgresJobStore::Open(SkewedOptions(skew));
  ASSERT_TRUE(opened.ok()) << opened.status();
  PostgresJobStore& store = **opened;
  EXPECT_NEAR(static_cast<double>(store.NowMs()), static_cast<double>(DatabaseNowMs()), 2000);
  const std::string id = MustCreate(store, NewJob());
  EXPECT_NEAR(static_cast<double>(store.Get(id)->create_time_ms),
              static_cast<double>(DatabaseNowMs()), 2000);
  // The host's clock jumps back by two hours: the store measures the offset again on its own.
  skew = -kHour;
  EXPECT_TRUE(NowMsReachesTheDatabase(store)) << store.NowMs() - DatabaseNowMs();
  ASSERT_TRUE(store.MarkRunning(id).ok());
  EXPECT_NEAR(static_cast<double>(store.Get(id)->start_time_ms),
              static_cast<double>(DatabaseNowMs()), 2000);
}

// Regression (store review): the offset was measured again only by Stats, which the server never
// calls. A host clock stepped three hours forward after Open made NowMs three hours ahead, and the
// retention sweep (ExpireResults(NowMs(), retention)) deleted every replica's results that much
// early. The store now measures the offset every clock_refresh_ms on its own.
TEST_F(PostgresJobStoreTest, AHostClockSteppedForwardAfterOpenDoesNotExpireResultsEarly) {
  constexpr int64_t kHour = 3600 * 1000;
  std::atomic<int64_t> skew{0};
  auto opened = PostgresJobStore::Open(SkewedOptions(skew));
  ASSERT_TRUE(opened.ok()) << opened.status();
  PostgresJobStore& store = **opened;
  const std::string id = MustCreate(store, NewJob());
  ASSERT_TRUE(store.Finish(id, JobState::kCancelled, 0, "", kNoLease).ok());
  skew = 3 * kHour;
  EXPECT_TRUE(NowMsReachesTheDatabase(store)) << store.NowMs() - DatabaseNowMs();
  auto expired = store.ExpireResults(store.NowMs(), kHour);  // keeps an hour
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 0);
  EXPECT_TRUE(store.Get(id).ok());
}

TEST_F(PostgresJobStoreTest, ReplicasOpeningAnEmptyDatabaseAtOnceCreateTheSchemaOnce) {
  constexpr int kReplicas = 4;
  std::vector<std::unique_ptr<JobStore>> stores(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] { stores[i] = OpenStore(); });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  for (const auto& store : stores) {
    ASSERT_NE(store, nullptr);
    const std::string& change = static_cast<PostgresJobStore&>(*store).schema_change();
    if (!change.empty()) {
      EXPECT_EQ(change, absl::StrCat("created version ", PostgresJobStore::kSchemaVersion));
      ++created;
    }
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(*pg_->Query(database_, "SELECT COUNT(*) FROM attattr_schema"), "1");
  // Every replica serves: a job created through one is read through the others.
  const std::string id = MustCreate(*stores[0], NewJob());
  for (const auto& store : stores) EXPECT_TRUE(store->Get(id).ok());
}

TEST_F(PostgresJobStoreTest, NewerSchemasAndForeignTablesAreRefused) {
  { ASSERT_NE(OpenStore(), nullptr); }
  ASSERT_TRUE(pg_->Query(database_, "UPDATE attattr_schema SET version = 99").ok());
  PostgresJobStoreOptions options;
  options.uri = uri_;
  absl::Status status = PostgresJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find("schema version 99 is newer"), std::string::npos) << status;
  EXPECT_NE(Message(status).find(uri_), std::string::npos) << status;

  ASSERT_TRUE(pg_->Query(database_, "DROP TABLE attattr_schema").ok());
  status = PostgresJobStore::Open(options).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_NE(Message(status).find("not an attattr job store"), std::string::npos) << status;
}

// Two replicas (two stores on one database) receive the same request_id at once: the unique
// constraint makes one job, and both answer with it.
TEST_F(PostgresJobStoreTest, ConcurrentIdempotentCreatesOnTwoReplicasYieldOneJob) {
  auto a = OpenStore();
  auto b = OpenStore();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  for (int round = 0; round < 20; ++round) {
    const std::string request_id = absl::StrCat("req-", round);
    std::vector<absl::StatusOr<CreateResult>> results(8, absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back([&, i] {
        results[i] = (i % 2 == 0 ? *a : *b).Create(NewJob("ATTRIBUTION", 0, request_id));
      });
    }
    for (auto& t : threads) t.join();
    int created = 0;
    std::set<std::string> ids;
    for (const auto& r : results) {
      ASSERT_TRUE(r.ok()) << r.status();
      created += r->created ? 1 : 0;
      ids.insert(r->record.id);
    }
    EXPECT_EQ(created, 1) << request_id;
    EXPECT_EQ(ids.size(), 1u) << request_id;
  }
}

TEST_F(PostgresJobStoreTest, TextThatIsNotUtf8IsRefusedOrEscaped) {
  auto store = OpenStore();
  JobRecord job = NewJob();
  job.model = std::string("m\xff", 2);
  absl::Status status = store->Create(job).status();
  EXPECT_TRUE(absl::IsInvalidArgument(status)) << status;
  EXPECT_NE(Message(status).find("model"), std::string::npos) << status;
  const std::string id = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->UpdateProgress(id, {std::string("st\0ge", 5), 1, 2}).ok());
  EXPECT_EQ(store->Get(id)->progress.stage, "st\\x00ge");
  ASSERT_TRUE(store->Finish(id, JobState::kFailed, 3, "bad \xc3(").ok());
  EXPECT_EQ(store->Get(id)->error_message, "bad \\xc3(");
}

// The database restarts under an open store: calls fail with Unavailable while it is down, and
// the store reconnects by itself when it is back; nothing stored is lost.
TEST_F(PostgresJobStoreTest, ReconnectsAfterTheDatabaseRestarts) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  const std::string id = MustCreate(*store, NewJob());
  ASSERT_TRUE(store->MarkRunning(id).ok());
  ASSERT_TRUE(store->PutResult(id, RandomBytes(3u << 20, 5)).ok());
  ASSERT_TRUE(store->Finish(id, JobState::kSucceeded, 0, "").ok());
  testing::PostgresServer& pg = *pg_;
  ASSERT_TRUE(pg.Stop().ok());
  absl::Status down = store->Get(id).status();
  EXPECT_TRUE(absl::IsUnavailable(down)) << down;
  EXPECT_FALSE(static_cast<PostgresJobStore&>(*store).connected());
  ASSERT_TRUE(pg.Restart().ok()) << pg.Log();
  absl::StatusOr<JobRecord> back = store->Get(id);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->state, JobState::kSucceeded);
  EXPECT_EQ(ReadAll(*store, id), RandomBytes(3u << 20, 5));
  EXPECT_TRUE(static_cast<PostgresJobStore&>(*store).connected());
}

// Regression (durability review): a pooled connection kept its backend pid listed as the pool's
// own until it was next used, so after a database restart, notifications from another replica's
// backend that drew the same pid were dropped as this replica's. CloseIdle (run when the change
// listener reconnects) forgets the idle connections; connections in use are forgotten as they
// break.
TEST_F(PostgresJobStoreTest, ClosingIdleConnectionsForgetsTheirBackends) {
  PgPoolOptions options;
  options.conninfo = uri_;
  options.size = 2;
  PgConnectionPool pool(options);
  int pid = 0;
  ASSERT_TRUE(pool.Run("reading the backend",
                       [&](pqxx::connection& c) {
                         pid = c.backendpid();
                         return absl::OkStatus();
                       })
                  .ok());
  ASSERT_NE(pid, 0);
  EXPECT_TRUE(pool.IsOwnBackend(pid));  // idle now, still the pool's
  pool.CloseIdle();
  EXPECT_FALSE(pool.IsOwnBackend(pid));
  EXPECT_EQ(*pg_->Query(database_,
                        absl::StrCat("SELECT count(*) FROM pg_stat_activity WHERE pid = ", pid)),
            "0");  // closed, not just forgotten
  int again = 0;
  ASSERT_TRUE(pool.Run("reconnecting",
                       [&](pqxx::connection& c) {
                         again = c.backendpid();
                         return absl::OkStatus();
                       })
                  .ok());  // a new connection, counted within size
  EXPECT_TRUE(pool.IsOwnBackend(again));
}

// Shards of a split job: claimed in order by replicas, fenced by their lease tokens; the last
// completion hands the job to its runner with a fresh lease; a failing shard is retried, then
// fails the job; a lapsed shard lease is recovered; finishing the job keeps the finished shards
// (without results) as the record of who ran what.
TEST_F(PostgresJobStoreTest, ShardsOfASplitJob) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ShardStore* shards = store->shards();
  ASSERT_NE(shards, nullptr);
  const std::string id = MustCreate(*store, NewJob());
  const JobRecord job = **store->Claim({"splitter", 10, 0});
  EXPECT_TRUE(absl::IsInvalidArgument(
      shards->SplitJob(id, job.lease_token, {0, "", {{0, 5}, {6, 9}}, ""}).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      shards->SplitJob(id, job.lease_token + 1, {0, "", {{0, 9}}, ""}).status()));
  auto split = shards->SplitJob(id, job.lease_token, {0, "mining", {{0, 4}, {4, 8}, {8, 9}}, ""});
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->size(), 3u);
  // Split again (a later run of the job): the same shards.
  EXPECT_EQ(shards->SplitJob(id, job.lease_token, {0, "mining", {{0, 9}}, ""})->size(), 3u);
  // The job's own lease no longer lapses: its shards carry it.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(store->RecoverExpiredLeases(3)->empty());
  EXPECT_EQ(store->Get(id)->progress.total, 9);
  EXPECT_EQ(store->Get(id)->progress.stage, "mining");

  const ShardRecord s0 = **shards->ClaimShard({"a", 60000, 0});
  const ShardRecord s1 = **shards->ClaimShard({"b", 10, 0});
  const ShardRecord s2 = **shards->ClaimShard({"a", 60000, 0});
  EXPECT_EQ(s0.index, 0);
  EXPECT_EQ(s1.index, 1);
  EXPECT_EQ(s2.index, 2);
  EXPECT_EQ(s1.items.begin, 4);
  EXPECT_FALSE(shards->ClaimShard({"c", 60000, 0})->has_value());

  // s1's lease lapses: recovered, claimed again; the old run's writes are refused.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto recovered = shards->RecoverExpiredShardLeases(3);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ASSERT_EQ(recovered->size(), 1u);
  EXPECT_EQ((*recovered)[0].state, ShardState::kQueued);
  const ShardRecord s1b = **shards->ClaimShard({"c", 60000, 0});
  EXPECT_EQ(s1b.index, 1);
  EXPECT_EQ(s1b.attempts, 2);
  const HeldShard stale{id, 1, s1.lease_token};
  EXPECT_TRUE(
      absl::IsFailedPrecondition(shards->CompleteShard(stale, "late", "b", 60000).status()));
  EXPECT_EQ(shards->RenewShardLeases("b", {stale}, 60000)->size(), 1u);
  EXPECT_TRUE(shards->RenewShardLeases("c", {{id, 1, s1b.lease_token}}, 60000)->empty());

  // s2 fails once (retried), then completes; s0 completes; s1 is last and takes the job.
  auto failed = shards->FailShard({id, 2, s2.lease_token}, 14, "flaky", 3);
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state, ShardState::kQueued);
  const ShardRecord s2b = **shards->ClaimShard({"a", 60000, 0});
  EXPECT_EQ(s2b.index, 2);
  ASSERT_FALSE(shards->CompleteShard({id, 2, s2b.lease_token}, "C", "a", 60000)->job_complete);
  ASSERT_FALSE(shards->CompleteShard({id, 0, s0.lease_token}, "A", "a", 60000)->job_complete);
  EXPECT_EQ(store->Get(id)->progress.done, 5);
  auto last = shards->CompleteShard({id, 1, s1b.lease_token}, "B", "c", 60000);
  ASSERT_TRUE(last.ok()) << last.status();
  ASSERT_TRUE(last->job_complete);
  EXPECT_EQ(last->job.lease_holder, "c");
  EXPECT_GT(last->job.lease_token, job.lease_token);
  EXPECT_EQ(*shards->GetShardResult(id, 0) + *shards->GetShardResult(id, 1) +
                *shards->GetShardResult(id, 2),
            "ABC");
  // The splitter's token is stale now.
  EXPECT_TRUE(absl::IsFailedPrecondition(store->PutResult(id, "ABC", job.lease_token)));

  // The merger starts the job's second stage with what the first decided: new indexes, the
  // input on every shard, progress counted on the stage; the first stage cannot come back.
  const int64_t merger = last->job.lease_token;
  auto second = shards->SplitJob(id, merger, {1, "evaluating", {{0, 3}, {3, 5}}, "ABC"});
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->size(), 2u);
  EXPECT_TRUE(absl::IsInvalidArgument(
      shards->SplitJob(id, merger, {0, "", {{0, 9}}, ""}).status()));  // before the latest
  EXPECT_EQ((*second)[0].index, 3);
  EXPECT_EQ((*second)[1].stage, 1);
  EXPECT_EQ((*second)[1].input, "ABC");
  EXPECT_EQ(store->Get(id)->progress.stage, "evaluating");
  EXPECT_EQ(store->Get(id)->progress.total, 5);
  EXPECT_EQ(store->Get(id)->progress.done, 0);
  const ShardRecord t0 = **shards->ClaimShard({"a", 60000, 0});
  const ShardRecord t1 = **shards->ClaimShard({"b", 60000, 0});
  EXPECT_EQ(t0.input, "ABC");
  EXPECT_EQ(t1.items.begin, 3);
  ASSERT_FALSE(shards->CompleteShard({id, 4, t1.lease_token}, "E", "b", 60000)->job_complete);
  EXPECT_EQ(store->Get(id)->progress.done, 2);
  auto done = shards->CompleteShard({id, 3, t0.lease_token}, "D", "a", 60000);
  ASSERT_TRUE(done.ok() && done->job_complete) << done.status();
  EXPECT_TRUE(absl::IsFailedPrecondition(store->PutResult(id, "DE", merger)));
  ASSERT_TRUE(store->PutResult(id, "DE", done->job.lease_token).ok());
  ASSERT_TRUE(store->Finish(id, JobState::kSucceeded, 0, "", done->job.lease_token).ok());
  auto kept = shards->ListShards(id);
  ASSERT_EQ(kept->size(), 5u);
  EXPECT_EQ((*kept)[1].attempts, 2);
  EXPECT_EQ((*kept)[1].lease_holder, "c");
  EXPECT_EQ((*kept)[4].stage, 1);
  EXPECT_TRUE(absl::IsNotFound(shards->GetShardResult(id, 0).status()));  // merged, gone
}

// Regression (review): runners asked for shards only when no job could be claimed, so a split
// job's shards waited behind every queued job. A shard is claimed unless a queued job that a
// claim could take ranks before it (higher priority; at equal priority the shard goes first).
TEST_F(PostgresJobStoreTest, AShardWaitsOnlyForQueuedJobsThatRankBeforeIt) {
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  ShardStore* shards = store->shards();
  JobRecord split_job = NewJob("ATTRIBUTION", 5);
  split_job.owner = "alice";
  const std::string split = MustCreate(*store, split_job);
  const JobRecord held = **store->Claim({"splitter", 60000, 0});
  ASSERT_EQ(held.id, split);
  ASSERT_TRUE(shards->SplitJob(split, held.lease_token, {0, "", {{0, 2}, {2, 4}}, ""}).ok());
  JobRecord low = NewJob("ATTRIBUTION", 1);
  low.owner = "bob";
  MustCreate(*store, low);
  JobRecord equal = NewJob("ATTRIBUTION", 5);
  equal.owner = "bob";
  MustCreate(*store, equal);
  // Queued jobs of lower or equal priority: the shard first.
  absl::StatusOr<std::optional<ShardRecord>> first = shards->ClaimShard({"a", 60000, 0});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->job_id, split);
  // A job of higher priority ranks first...
  JobRecord urgent = NewJob("ATTRIBUTION", 9);
  urgent.owner = "alice";
  const std::string urgent_id = MustCreate(*store, urgent);
  EXPECT_FALSE(shards->ClaimShard({"a", 60000, 0})->has_value());
  // ...unless its owner is at its running limit, so no claim could take it now (alice runs the
  // split job): then the shard.
  absl::StatusOr<std::optional<ShardRecord>> second = shards->ClaimShard({"a", 60000, 1});
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->index, 1);
  ASSERT_TRUE(store->Cancel(split).ok());  // its shards go, alice runs nothing
  EXPECT_EQ((**store->Claim({"a", 60000, 1})).id, urgent_id);
}

// A database of schema version 1 (shards without stages, jobs without reservations) is migrated
// in place at start: its shards are kept, as stage 0.
TEST_F(PostgresJobStoreTest, VersionOneDatabasesAreMigrated) {
  std::string id;
  {
    auto store = OpenStore();
    ASSERT_NE(store, nullptr);
    id = MustCreate(*store, NewJob());
    const JobRecord job = **store->Claim({"r", 60000, 0});
    ASSERT_TRUE(store->shards()->SplitJob(id, job.lease_token, {0, "", {{0, 2}, {2, 4}}, ""}).ok());
  }
  ASSERT_TRUE(pg_->Query(database_,
                         "ALTER TABLE attattr_shards DROP COLUMN stage, DROP COLUMN input; "
                         "ALTER TABLE attattr_jobs DROP COLUMN reserved_bytes; "
                         "UPDATE attattr_schema SET version = 1")
                  .ok());
  auto store = OpenStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(static_cast<PostgresJobStore&>(*store).schema_change(), "migrated from version 1 to 3");
  EXPECT_EQ(*pg_->Query(database_, "SELECT version FROM attattr_schema"), "3");
  EXPECT_EQ(store->Get(id)->reserved_result_bytes, 0);
  auto shards = store->shards()->ListShards(id);
  ASSERT_TRUE(shards.ok()) << shards.status();
  ASSERT_EQ(shards->size(), 2u);
  EXPECT_EQ((*shards)[1].stage, 0);
  EXPECT_EQ((*shards)[1].items.end, 4);
}

TEST_F(PostgresJobStoreTest, AShardFailingEveryAttemptFailsItsJobAndACancelDropsShards) {
  auto store = OpenStore();
  ShardStore* shards = store->shards();
  const std::string doomed = MustCreate(*store, NewJob());
  const JobRecord job = **store->Claim({"r", 60000, 0});
  ASSERT_TRUE(shards->SplitJob(doomed, job.lease_token, {0, "", {{0, 2}, {2, 4}}, ""}).ok());
  for (int attempt = 1; attempt <= 2; ++attempt) {
    const ShardRecord shard = **shards->ClaimShard({"r", 60000, 0});
    ASSERT_EQ(shard.index, 0);
    auto failed = shards->FailShard({doomed, 0, shard.lease_token}, 3, "bad example", 2);
    ASSERT_TRUE(failed.ok()) << failed.status();
    EXPECT_EQ(failed->state, attempt == 1 ? ShardState::kQueued : ShardState::kFailed);
  }
  const JobRecord after = *store->Get(doomed);
  EXPECT_EQ(after.state, JobState::kFailed);
  EXPECT_EQ(after.error_code, 3);
  EXPECT_EQ(after.error_message, "shard 0 (items 0..1): bad example");
  EXPECT_FALSE(shards->ClaimShard({"r", 60000, 0})->has_value());  // shard 1 went with the job

  const std::string cancelled = MustCreate(*store, NewJob());
  const JobRecord held = **store->Claim({"r", 60000, 0});
  ASSERT_TRUE(shards->SplitJob(cancelled, held.lease_token, {0, "", {{0, 2}, {2, 4}}, ""}).ok());
  const ShardRecord running = **shards->ClaimShard({"r", 60000, 0});
  ASSERT_TRUE(store->Cancel(cancelled).ok());
  EXPECT_TRUE(shards->ListShards(cancelled)->empty());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      shards->CompleteShard({cancelled, running.index, running.lease_token}, "x", "r", 60000)
          .status()));
  EXPECT_EQ(shards->RenewShardLeases("r", {{cancelled, running.index, running.lease_token}}, 1000)
                ->size(),
            1u);
}

}  // namespace
}  // namespace attattr::store
