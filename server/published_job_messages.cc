// PublishedJobMessages (see published_job_messages.h).
#include "published_job_messages.h"

#include "jobs/job_convert.h"

namespace attattr::server {

std::shared_ptr<const v1::Job> ConvertJob(const store::JobRecord& record, bool full,
                                          int64_t now_ms) {
  auto job = std::make_shared<v1::Job>();
  if (full) {
    JobToProto(record, now_ms, job.get());
  } else {
    JobSummaryToProto(record, now_ms, job.get());
  }
  return job;
}

std::shared_ptr<const v1::Job> PublishedJobMessages::Get(uint64_t publication,
                                                         const store::JobRecord& record, bool full,
                                                         int64_t now_ms) {
  // Converted under mu_: only the publishing thread asks (JobEvents serializes publications), so
  // nobody waits here but a publication's own later subscribers, who want this very message.
  absl::MutexLock lock(&mu_);
  Converted& converted = by_view_[full ? 1 : 0];
  if (converted.publication != publication || converted.job_id != record.id || !converted.job) {
    converted.job = ConvertJob(record, full, now_ms);
    converted.publication = publication;
    converted.job_id = record.id;
  }
  return converted.job;
}

}  // namespace attattr::server
