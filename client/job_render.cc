// JSON and text renderings of jobs and job results (see job_render.h).
#include "job_render.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/convert/head_importance_convert.h"
#include "attattr/convert/tensor_convert.h"
#include "attribution_request.h"
#include "heads_render.h"
#include "render.h"
#include "triggers_command.h"

namespace attattr::client {
namespace {

std::string StateName(v1::JobState s) { return v1::JobState_Name(s); }
std::string KindName(v1::JobKind k) { return v1::JobKind_Name(k); }

std::string ErrorCodeName(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

nlohmann::json TimeMs(int64_t ms) { return ms > 0 ? nlohmann::json(ms) : nlohmann::json(nullptr); }

// "2024-05-01 12:03:04" (UTC), "-" when unset.
std::string TimeText(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// "0:07", "12:30", "1:02:03".
std::string Duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "--";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

// "attribution 1/2", "queued", "" when nothing is known.
std::string StageText(const v1::Progress& p) {
  std::string out = p.stage();
  if (p.total() > 0) {
    absl::StrAppend(&out, out.empty() ? "" : " ", p.done(), "/", p.total());
  }
  return out;
}

nlohmann::json Matrix(const std::vector<float>& v, size_t rows, size_t cols, size_t offset = 0) {
  nlohmann::json m = nlohmann::json::array();
  for (size_t i = 0; i < rows; ++i) {
    const float* row = v.data() + offset + i * cols;
    m.push_back(std::vector<float>(row, row + cols));
  }
  return m;
}

// The RenderContext `attattr explain` would have used for this job's spec.
RenderContext ContextFor(const v1::Job& job, const v1::ExampleAttribution& a) {
  const auto& options = job.spec().attribution().options();
  RenderContext ctx;
  ctx.model = job.spec().model();
  ctx.target = TargetSpec(options.target());
  ctx.rule = convert::RuleName(options.rule());
  ctx.steps = options.steps() > 0 ? options.steps() : 8;  // the server's default m
  // Only labels[predicted] is read; take it from the server's reply (a class index, or a token
  // id of a language model's vocabulary: beyond 2^20 no model has one).
  const int p = a.prediction().predicted();
  if (p >= 0 && p < (1 << 20) && !a.prediction().label().empty()) {
    ctx.labels.resize(static_cast<size_t>(p) + 1);
    for (int i = 0; i < p; ++i) ctx.labels[i] = std::to_string(i);
    ctx.labels[p] = a.prediction().label();
  }
  return ctx;
}

absl::StatusOr<nlohmann::json> ExampleToJson(const v1::Job& job, const v1::ExampleAttribution& a,
                                             size_t index) {
  auto r = convert::AttributionFromProto(a);
  if (!r.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("examples[", index, "].", r.status().message()));
  }
  engine::AttributionTree tree;
  if (a.has_tree()) {
    auto read = convert::TreeFromProto(a);
    if (!read.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("examples[", index, "].", read.status().message()));
    }
    tree = *std::move(read);
  }
  nlohmann::json j = AttributionToJson(*r, ContextFor(job, a), a.has_tree() ? &tree : nullptr);
  const size_t n = static_cast<size_t>(a.tokens_size());
  auto token = [&](int i) {
    return i >= 0 && i < a.tokens_size() ? a.tokens(i) : std::string("?");
  };
  for (int li = 0; li < a.layers_size(); ++li) {
    const auto& pl = a.layers(li);
    auto& l = j["layers"][li];
    if (pl.has_head_summed()) {
      auto v = convert::TensorValues(pl.head_summed());
      if (!v.ok() || v->size() != n * n) {
        return absl::InvalidArgumentError(absl::StrCat(
            "examples[", index, "].layers[", li, "].head_summed: expected ", n, "x", n, " values"));
      }
      l["head_summed"] = Matrix(*v, n, n);
    }
    if (pl.has_attention()) {
      const auto& att = r->layers[li].attention;
      nlohmann::json heads = nlohmann::json::array();
      for (int h = 0; h < pl.num_heads(); ++h) heads.push_back(Matrix(att, n, n, h * n * n));
      l["attention"] = std::move(heads);
    }
    if (pl.top_connections_size() > 0) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& c : pl.top_connections()) {
        top.push_back({{"head", c.head()},
                       {"query", c.query()},
                       {"key", c.key()},
                       {"query_token", token(c.query())},
                       {"key_token", token(c.key())},
                       {"score", c.score()}});
      }
      l["top_connections"] = std::move(top);
    }
  }
  return j;
}

}  // namespace

bool IsFinished(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

nlohmann::json JobToJson(const v1::Job& job) {
  const auto& p = job.progress();
  nlohmann::json j = {{"name", job.name()},
                      {"request_id", job.request_id()},
                      {"kind", KindName(job.kind())},
                      {"state", StateName(job.state())},
                      {"model", job.spec().model()},
                      {"priority", job.spec().priority()},
                      {"progress",
                       {{"stage", p.stage()},
                        {"done", p.done()},
                        {"total", p.total()},
                        {"eta_seconds", p.eta_seconds()}}},
                      {"create_time_ms", TimeMs(job.create_time_ms())},
                      {"start_time_ms", TimeMs(job.start_time_ms())},
                      {"end_time_ms", TimeMs(job.end_time_ms())},
                      {"result_size_bytes", job.result_size_bytes()}};
  if (job.error_code() != 0 || !job.error_message().empty()) {
    j["error"] = {{"code", ErrorCodeName(job.error_code())}, {"message", job.error_message()}};
  }
  return j;
}

std::string JobToLine(const v1::Job& job) {
  std::string line = absl::StrCat(job.name(), " ", StateName(job.state()));
  if (const std::string stage = StageText(job.progress()); !stage.empty()) {
    absl::StrAppend(&line, "  ", stage);
  }
  if (job.error_code() != 0 || !job.error_message().empty()) {
    absl::StrAppend(&line, "  error ", ErrorCodeName(job.error_code()), ": ", job.error_message());
  }
  return line;
}

std::string JobTable(const std::vector<v1::Job>& jobs) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "STATE", "KIND", "PROGRESS", "CREATED (UTC)", "MODEL", "REQUEST_ID"}};
  for (const auto& job : jobs) {
    const auto& p = job.progress();
    std::string progress = p.total() > 0 ? absl::StrCat(p.done(), "/", p.total()) : "-";
    rows.push_back({job.name(), StateName(job.state()), KindName(job.kind()), progress,
                    TimeText(job.create_time_ms()), job.spec().model(),
                    job.request_id().empty() ? "-" : job.request_id()});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c + 1 == row.size()) {
        line += row[c];
      } else {
        line += row[c] + std::string(width[c] - row[c].size() + 2, ' ');
      }
    }
    out += line + "\n";
  }
  return out;
}

std::string ProgressLine(const v1::Job& job) {
  std::string line = job.name();
  if (const std::string stage = StageText(job.progress()); !stage.empty()) {
    absl::StrAppend(&line, "  ", stage);
  }
  if (!IsFinished(job.state()) && job.progress().eta_seconds() >= 0 && job.progress().total() > 0) {
    absl::StrAppend(&line, "  eta ", Duration(job.progress().eta_seconds()));
  }
  if (job.error_code() != 0 || !job.error_message().empty()) {
    absl::StrAppend(&line, "  error ", ErrorCodeName(job.error_code()), ": ", job.error_message());
  }
  absl::StrAppend(&line, "  ", StateName(job.state()));
  return line;
}

std::string ProgressBar(const v1::Job& job, int width) {
  const auto& p = job.progress();
  double fraction = p.total() > 0 ? static_cast<double>(p.done()) / p.total() : 0.0;
  if (job.state() == v1::SUCCEEDED) fraction = 1.0;
  fraction = std::clamp(fraction, 0.0, 1.0);
  const int filled = static_cast<int>(std::floor(fraction * width));
  std::string line = absl::StrCat("[", std::string(filled, '#'), std::string(width - filled, '-'),
                                  "] ", absl::StrFormat("%3d%%", static_cast<int>(fraction * 100)));
  if (const std::string stage = StageText(p); !stage.empty()) absl::StrAppend(&line, "  ", stage);
  if (!IsFinished(job.state())) {
    absl::StrAppend(&line, "  ETA ", p.eta_seconds() >= 0 ? Duration(p.eta_seconds()) : "--");
  }
  absl::StrAppend(&line, "  ", StateName(job.state()));
  return line;
}

absl::Status WriteJobResultJson(const v1::Job& job, const v1::JobResult& result,
                                std::ostream& out) {
  // The document's keys in nlohmann's (sorted) order, each value dumped as JsonText would, so the
  // bytes equal JsonText of the whole object.
  const std::string job_json = JsonText(JobToJson(job));
  nlohmann::json value;
  if (result.kind_case() == v1::JobResult::kHeadImportance) {
    ATTATTR_RETURN_IF_ERROR(convert::CheckHeadImportanceShape(result.head_importance()));
    value = HeadImportanceToJson(result.head_importance());
  } else if (result.kind_case() == v1::JobResult::kTriggerSearch) {
    value = TriggerSearchToJson(result.trigger_search());
  } else if (result.kind_case() != v1::JobResult::kAttribution) {
    std::string text;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (!google::protobuf::util::MessageToJsonString(result, &text, options).ok()) {
      return absl::InternalError("cannot print the job result as JSON");
    }
    value = nlohmann::json::parse(text);
  }
  if (result.kind_case() != v1::JobResult::kAttribution) {
    out << "{\"job\":" << job_json << ",\"result\":" << JsonText(value) << "}";
    return absl::OkStatus();
  }
  out << "{\"examples\":[";
  const auto& a = result.attribution();
  for (int i = 0; i < a.examples_size(); ++i) {
    ATTATTR_ASSIGN_OR_RETURN(auto e, ExampleToJson(job, a.examples(i), static_cast<size_t>(i)));
    if (i > 0) out << ",";
    out << JsonText(e);
  }
  out << "],\"job\":" << job_json << "}";
  return absl::OkStatus();
}

absl::Status WriteJobResultText(const v1::Job& job, const v1::JobResult& result, int top_k,
                                std::ostream& out) {
  out << JobToLine(job) << "\n";
  if (result.kind_case() == v1::JobResult::kHeadImportance) {
    ATTATTR_RETURN_IF_ERROR(convert::CheckHeadImportanceShape(result.head_importance()));
    out << "\n" << HeadImportanceToText(result.head_importance());
    return absl::OkStatus();
  }
  if (result.kind_case() == v1::JobResult::kTriggerSearch) {
    out << "\n" << TriggerSearchToText(result.trigger_search());
    return absl::OkStatus();
  }
  if (result.kind_case() != v1::JobResult::kAttribution) {
    out << "(a " << KindName(job.kind()) << " result; use --format json)\n";
    return absl::OkStatus();
  }
  const auto& a = result.attribution();
  for (int i = 0; i < a.examples_size(); ++i) {
    auto r = convert::AttributionFromProto(a.examples(i));
    if (!r.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("examples[", i, "].", r.status().message()));
    }
    out << "\nexample " << i + 1 << " of " << a.examples_size() << "\n"
        << AttributionToText(*r, ContextFor(job, a.examples(i)), top_k);
    // Without full matrices the strongest connections come from the server's top-k.
    for (const auto& pl : a.examples(i).layers()) {
      if (pl.has_attribution() || pl.top_connections_size() == 0) continue;
      out << "layer " << pl.layer() << " top connections:\n";
      for (const auto& c : pl.top_connections()) {
        auto tok = [&](int t) {
          return t >= 0 && t < a.examples(i).tokens_size() ? a.examples(i).tokens(t) : "?";
        };
        out << absl::StrFormat("  head %2d  %-14s <- %-14s %+.5f\n", c.head(), tok(c.query()),
                               tok(c.key()), c.score());
      }
    }
    if (a.examples(i).has_tree()) {
      auto tree = convert::TreeFromProto(a.examples(i));
      if (!tree.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("examples[", i, "].", tree.status().message()));
      }
      out << "\n" << TreeToText(*tree);
    }
  }
  return absl::OkStatus();
}

}  // namespace attattr::client
