// Shared parts of the client's commands (see command_support.h).
#include "command_support.h"

#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "job_client.h"

namespace attattr::client {

absl::Status InvalidFlag(const std::string& flag, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(flag, ": ", what));
}

absl::StatusOr<std::vector<engine::Example>> ReadFlagSet(const std::string& path, int limit,
                                                         const std::string& flag) {
  if (path.empty()) return InvalidFlag(flag, "required");
  if (limit < 0) return InvalidFlag(flag, "limit must be >= 0");
  auto ds = engine::ReadDataset(path, limit);
  if (!ds.ok()) return absl::Status(ds.status().code(), absl::StrCat(flag, ": ", ds.status().message()));
  if (ds->examples.empty()) return InvalidFlag(flag, absl::StrCat(path, " has no examples"));
  return std::move(ds->examples);
}

absl::Status AddExampleSource(const std::string& path, int limit, bool server_data,
                              const std::string& flag, v1::ExampleSource* out) {
  if (server_data) {
    if (path.empty()) return InvalidFlag(flag, "required");
    out->mutable_dataset()->set_path(path);
    out->mutable_dataset()->set_limit(limit);
    return absl::OkStatus();
  }
  auto examples = ReadFlagSet(path, limit, flag);
  if (!examples.ok()) return examples.status();
  auto* list = out->mutable_inline_();
  for (const auto& e : *examples) {
    auto* p = list->add_examples();
    p->set_text(e.text);
    if (e.text_pair) p->set_text_pair(*e.text_pair);
    p->set_label(e.label);
  }
  return absl::OkStatus();
}

namespace {

// One line per stage change and one when a stage completes.
class StageLines {
 public:
  explicit StageLines(std::ostream& err) : err_(err) {}
  void Print(const std::string& stage, int64_t done, int64_t total) {
    if (stage != last_ || (total > 0 && done == total)) {
      err_ << stage << ": " << done << "/" << total << "\n";
      last_ = stage;
    }
  }

 private:
  std::ostream& err_;
  std::string last_;
};

}  // namespace

std::function<void(const engine::Progress&)> StageProgressPrinter(std::ostream& err) {
  auto lines = std::make_shared<StageLines>(err);
  return [lines](const engine::Progress& p) { lines->Print(p.stage, p.done, p.total); };
}

absl::StatusOr<v1::JobResult> RunJobToResult(const std::string& server, double deadline_seconds,
                                             const v1::SubmitJobRequest& request, std::ostream& err,
                                             bool* job_failed) {
  JobClient client(server, deadline_seconds);
  auto job = client.Submit(request);
  if (!job.ok()) return job.status();
  err << "submitted " << job->name() << "\n";
  StageLines lines(err);
  auto watched = client.Watch(job->name(), [&lines](const v1::Job& j) {
    lines.Print(j.progress().stage(), j.progress().done(), j.progress().total());
  });
  if (!watched.ok()) return watched;
  auto done = client.Get(job->name());
  if (!done.ok()) return done.status();
  if (done->state() != v1::SUCCEEDED) {
    *job_failed = true;
    return absl::UnknownError(absl::StrCat(done->name(), " ", v1::JobState_Name(done->state()), ": ",
                                           done->error_message()));
  }
  return client.GetResult(job->name());
}

absl::Status WriteFlagFile(const std::string& flag, const std::string& path, const std::string& contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << contents;
  file.close();
  if (!file) return absl::FailedPreconditionError(absl::StrCat(flag, ": cannot write ", path));
  return absl::OkStatus();
}

}  // namespace attattr::client
