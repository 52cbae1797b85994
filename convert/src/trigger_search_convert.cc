// Trigger search results as proto (see trigger_search_convert.h).
#include "attattr/convert/trigger_search_convert.h"

namespace attattr::convert {
namespace {

void Accuracies(const std::vector<engine::ClassAccuracy>& in,
                google::protobuf::RepeatedPtrField<v1::ClassAccuracy>* out) {
  for (const auto& c : in) {
    auto* a = out->Add();
    a->set_label(c.name.empty() ? std::to_string(c.label) : c.name);
    a->set_accuracy(c.accuracy);
    a->set_examples(c.examples);
  }
}

}  // namespace

void TriggerSearchReportToProto(const engine::TriggerSearchReport& report,
                                v1::TriggerSearchResult* out) {
  out->set_mined_examples(report.mined_examples);
  out->set_patterns_above_threshold(report.patterns_above_threshold);
  for (const auto& e : report.patterns) {
    auto* p = out->add_patterns();
    for (const auto& t : e.pattern.tokens) {
      p->add_tokens(t.token);
      p->add_segments(t.segment);
      p->add_relative_positions(t.relative_position);
    }
    p->set_source(e.pattern.source);
    p->set_layer(e.pattern.layer);
    p->set_head(e.pattern.head);
    p->set_score(e.pattern.score);
    Accuracies(e.clean, p->mutable_clean());
    Accuracies(e.attacked, p->mutable_attacked());
    Accuracies(e.control, p->mutable_control());
    p->set_truncated_examples(e.truncated);
  }
}

}  // namespace attattr::convert
