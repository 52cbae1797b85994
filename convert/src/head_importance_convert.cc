// Head importance conversions (see head_importance_convert.h).
#include "attattr/convert/head_importance_convert.h"

#include "absl/strings/str_cat.h"

namespace attattr::convert {

std::optional<engine::HeadRanking> HeadRankingFromProto(v1::ImportanceMethod method) {
  switch (method) {
    case v1::IMPORTANCE_METHOD_ATTRIBUTION:
      return engine::HeadRanking::kAttribution;
    case v1::IMPORTANCE_METHOD_ATTENTION:
      return engine::HeadRanking::kAttention;
    case v1::IMPORTANCE_METHOD_TAYLOR:
      return engine::HeadRanking::kTaylor;
    case v1::IMPORTANCE_METHOD_RANDOM:
      return engine::HeadRanking::kRandom;
    default:
      return std::nullopt;
  }
}

v1::ImportanceMethod HeadRankingToProto(engine::HeadRanking ranking) {
  switch (ranking) {
    case engine::HeadRanking::kAttribution:
      return v1::IMPORTANCE_METHOD_ATTRIBUTION;
    case engine::HeadRanking::kAttention:
      return v1::IMPORTANCE_METHOD_ATTENTION;
    case engine::HeadRanking::kTaylor:
      return v1::IMPORTANCE_METHOD_TAYLOR;
    case engine::HeadRanking::kRandom:
      return v1::IMPORTANCE_METHOD_RANDOM;
  }
  return v1::IMPORTANCE_METHOD_UNSPECIFIED;
}

absl::Status CheckHeadImportanceShape(const v1::HeadImportanceResult& result) {
  const int64_t layers = result.num_layers(), heads = result.num_heads();
  if (layers < 0 || heads < 0 || layers > 100000 || heads > 100000 || layers * heads > 1000000) {
    return absl::InvalidArgumentError(absl::StrCat("head importance: ", layers, " layers x ", heads,
                                                   " heads is not a model's shape"));
  }
  for (int m = 0; m < result.methods_size(); ++m) {
    if (result.methods(m).importance_size() != layers * heads) {
      return absl::InvalidArgumentError(
          absl::StrCat("head importance: methods[", m, "].importance holds ",
                       result.methods(m).importance_size(), " values, not ", layers * heads));
    }
  }
  return absl::OkStatus();
}

void HeadImportanceStudyToProto(const engine::HeadImportanceStudy& study,
                                const std::string& export_path, v1::HeadImportanceResult* out) {
  out->set_num_layers(study.num_layers);
  out->set_num_heads(study.num_heads);
  for (const auto& m : study.methods) {
    auto* method = out->add_methods();
    method->set_method(HeadRankingToProto(m.method));
    for (const auto& row : m.importance) {
      for (double v : row) method->add_importance(v);
    }
    for (const auto& p : m.curve) {
      auto* point = method->add_curve();
      point->set_ratio(p.ratio_percent);
      point->set_accuracy(p.accuracy);
      point->set_mean_gold_probability(p.mean_gold_probability);
      point->set_heads_pruned(p.heads_pruned);
    }
    if (m.agreement) {
      auto* a = method->mutable_agreement();
      a->set_a(method->method());
      a->set_b(method->method());
      a->set_pearson(m.agreement->pearson);
      a->set_spearman(m.agreement->spearman);
    }
  }
  for (const auto& c : study.correlations) {
    auto* r = out->add_correlations();
    r->set_a(HeadRankingToProto(c.a));
    r->set_b(HeadRankingToProto(c.b));
    r->set_pearson(c.pearson);
    r->set_spearman(c.spearman);
  }
  if (study.exported) {
    out->set_export_path(export_path);
    out->set_export_heads_removed(study.exported->heads_removed);
    out->set_export_weights_bytes(study.exported->weights_bytes);
    out->set_export_parameter_count(study.exported->parameter_count);
  }
}

}  // namespace attattr::convert
