// Job records (server/store, plain C++) <-> the public Job proto: kind and state enums by name,
// the stored spec bytes parsed back into JobSpec, and the progress with an ETA estimated from the
// rate so far. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "attattr/v1/job.pb.h"
#include "store/job_store.h"

namespace attattr::server {

// "ATTRIBUTION", "HEAD_IMPORTANCE", "TRIGGER_SEARCH" (the enum value names, stored as the kind).
std::string JobKindName(v1::JobKind kind);
// The kind a spec asks for (JOB_KIND_UNSPECIFIED when none is set).
v1::JobKind JobKindOf(const v1::JobSpec& spec);
// Store state for a proto filter; nullopt for JOB_STATE_UNSPECIFIED (= any).
std::optional<store::JobState> StateFromProto(v1::JobState state);

// `now_ms` (unix ms on the store's clock, store::JobStore::NowMs, which stamped start_time_ms) is
// used for the ETA: (elapsed since start) · (total − done) / done.
void JobToProto(const store::JobRecord& record, int64_t now_ms, v1::Job* out);
// The BASIC view (attattr_service.proto JobView): the job with a spec of only model, priority and
// the kind's (empty) case; `record` may come without its spec.
void JobSummaryToProto(const store::JobRecord& record, int64_t now_ms, v1::Job* out);

// InvalidArgument naming `name` unless it looks like a job name the store hands out ("jobs/<id>").
absl::Status CheckJobName(const std::string& name);

}  // namespace attattr::server
