// Job record <-> proto conversion (see job_convert.h).
#include "jobs/job_convert.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attattr/base/quote.h"

namespace attattr::server {

std::string JobKindName(v1::JobKind kind) { return v1::JobKind_Name(kind); }

v1::JobKind JobKindOf(const v1::JobSpec& spec) {
  switch (spec.kind_case()) {
    case v1::JobSpec::kAttribution:
      return v1::ATTRIBUTION;
    case v1::JobSpec::kHeadImportance:
      return v1::HEAD_IMPORTANCE;
    case v1::JobSpec::kTriggerSearch:
      return v1::TRIGGER_SEARCH;
    default:
      return v1::JOB_KIND_UNSPECIFIED;
  }
}

std::optional<store::JobState> StateFromProto(v1::JobState state) {
  switch (state) {
    case v1::QUEUED:
      return store::JobState::kQueued;
    case v1::RUNNING:
      return store::JobState::kRunning;
    case v1::SUCCEEDED:
      return store::JobState::kSucceeded;
    case v1::FAILED:
      return store::JobState::kFailed;
    case v1::CANCELLED:
      return store::JobState::kCancelled;
    default:
      return std::nullopt;
  }
}

namespace {

v1::JobState StateToProto(store::JobState state) {
  switch (state) {
    case store::JobState::kQueued:
      return v1::QUEUED;
    case store::JobState::kRunning:
      return v1::RUNNING;
    case store::JobState::kSucceeded:
      return v1::SUCCEEDED;
    case store::JobState::kFailed:
      return v1::FAILED;
    case store::JobState::kCancelled:
      return v1::CANCELLED;
  }
  return v1::JOB_STATE_UNSPECIFIED;
}

}  // namespace

absl::Status CheckJobName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name: required (\"jobs/<id>\")");
  if (!absl::StartsWith(name, "jobs/") || name.size() > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: ", QuoteInput(name), " is not a job name (\"jobs/<id>\")"));
  }
  return absl::OkStatus();
}

void JobToProto(const store::JobRecord& r, int64_t now_ms, v1::Job* out) {
  out->set_name(r.id);
  out->set_request_id(r.request_id);
  out->set_owner(r.owner);
  v1::JobKind kind = v1::JOB_KIND_UNSPECIFIED;
  v1::JobKind_Parse(r.kind, &kind);
  out->set_kind(kind);
  out->set_state(StateToProto(r.state));
  out->mutable_spec()->ParseFromString(r.spec);
  auto* progress = out->mutable_progress();
  progress->set_stage(r.state == store::JobState::kQueued && r.progress.stage.empty()
                          ? "queued"
                          : (store::IsTerminal(r.state) ? "done" : r.progress.stage));
  progress->set_done(r.progress.done);
  progress->set_total(r.progress.total);
  double eta = -1;
  if (store::IsTerminal(r.state)) {
    eta = 0;
  } else if (r.state == store::JobState::kRunning && r.progress.done > 0 && r.start_time_ms > 0 &&
             r.progress.total >= r.progress.done) {
    const double elapsed = (now_ms - r.start_time_ms) / 1000.0;
    eta = elapsed * static_cast<double>(r.progress.total - r.progress.done) / r.progress.done;
  }
  progress->set_eta_seconds(eta);
  out->set_error_code(r.error_code);
  out->set_error_message(r.error_message);
  out->set_create_time_ms(r.create_time_ms);
  out->set_start_time_ms(r.start_time_ms);
  out->set_end_time_ms(r.end_time_ms);
  out->set_result_size_bytes(r.result_size_bytes);
}

void JobSummaryToProto(const store::JobRecord& r, int64_t now_ms, v1::Job* out) {
  store::JobRecord without_spec = r;
  without_spec.spec.clear();
  JobToProto(without_spec, now_ms, out);
  v1::JobSpec* spec = out->mutable_spec();
  spec->set_model(r.model);
  spec->set_priority(r.priority);
  switch (out->kind()) {
    case v1::ATTRIBUTION:
      spec->mutable_attribution();
      break;
    case v1::HEAD_IMPORTANCE:
      spec->mutable_head_importance();
      break;
    case v1::TRIGGER_SEARCH:
      spec->mutable_trigger_search();
      break;
    default:
      break;
  }
}

}  // namespace attattr::server
