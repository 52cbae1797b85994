// PublishedJobMessages: the v1::Job message of the job change being published, converted once per
// view (FULL, BASIC) and shared by every WatchJob stream of that job. Without it each watcher
// converted — and kept its own copy of — the record, whose FULL view carries the spec (up to
// megabytes), once per subscriber on the publishing thread. JobEvents numbers its publications and
// delivers one publication's callbacks one after another, so keeping the last publication's
// messages is exact: a later number replaces them (the key holds the job id too, so a publication
// of several jobs, StopAll's, could never hand one job's message to another's watchers).
// Thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "attattr/v1/attattr_service.pb.h"
#include "store/job_store.h"

namespace attattr::server {

class PublishedJobMessages {
 public:
  // `record` as a message in the FULL (`full`) or BASIC view, converted at its first request for
  // `publication` (JobEvents' number of the publication delivering it) and shared after that;
  // `now_ms` (the store's clock, which stamped the record) dates its progress estimate.
  std::shared_ptr<const v1::Job> Get(uint64_t publication, const store::JobRecord& record,
                                     bool full, int64_t now_ms);

 private:
  struct Converted {
    uint64_t publication = 0;  // 0: none yet (JobEvents numbers from 1)
    std::string job_id;
    std::shared_ptr<const v1::Job> job;
  };
  absl::Mutex mu_;
  Converted by_view_[2] ABSL_GUARDED_BY(mu_);  // [0] BASIC, [1] FULL
};

// `record` as a v1::Job in the FULL view (JobToProto) or the BASIC one (JobSummaryToProto), its
// ETA computed at `now_ms` on the store's clock (store::JobStore::NowMs).
std::shared_ptr<const v1::Job> ConvertJob(const store::JobRecord& record, bool full,
                                          int64_t now_ms);

}  // namespace attattr::server
