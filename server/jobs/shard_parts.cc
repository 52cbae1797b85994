// Shard parts to and from protobuf bytes (see shard_parts.h).
#include "jobs/shard_parts.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "jobs/shard_parts.pb.h"

namespace attattr::server {
namespace {

namespace pb = ::attattr::server::parts;

void ToProto(const engine::HeadTable& table, pb::HeadTable* out) {
  out->set_layers(static_cast<int32_t>(table.size()));
  out->set_heads(table.empty() ? 0 : static_cast<int32_t>(table.front().size()));
  for (const auto& row : table) {
    for (double v : row) out->add_values(v);
  }
}

absl::StatusOr<engine::HeadTable> FromProto(const pb::HeadTable& in) {
  if (in.layers() < 0 || in.heads() < 0 ||
      static_cast<int64_t>(in.layers()) * in.heads() != in.values_size()) {
    return absl::DataLossError(absl::StrCat("a head table of ", in.layers(), "x", in.heads(),
                                            " holds ", in.values_size(), " values"));
  }
  engine::HeadTable table(in.layers(), std::vector<double>(in.heads()));
  int k = 0;
  for (auto& row : table) {
    for (double& v : row) v = in.values(k++);
  }
  return table;
}

void ToProto(const engine::HeadImportanceSums& sums, pb::HeadSums* out) {
  ToProto(sums.sums, out->mutable_sums());
  out->set_examples(sums.examples);
}

absl::StatusOr<engine::HeadImportanceSums> FromProto(const pb::HeadSums& in) {
  absl::StatusOr<engine::HeadTable> table = FromProto(in.sums());
  if (!table.ok()) return table.status();
  return engine::HeadImportanceSums{*std::move(table), in.examples()};
}

void ToProto(const engine::TriggerPattern& p, pb::TriggerPattern* out) {
  for (const auto& t : p.tokens) {
    pb::TriggerToken* token = out->add_tokens();
    token->set_token(t.token);
    token->set_id(t.id);
    token->set_segment(t.segment);
    token->set_source_position(t.source_position);
    token->set_relative_position(t.relative_position);
  }
  out->set_source(p.source);
  out->set_layer(p.layer);
  out->set_head(p.head);
  out->set_score(p.score);
  for (const auto& [query, key] : p.connections) {
    pb::Connection* c = out->add_connections();
    c->set_query(query);
    c->set_key(key);
  }
}

engine::TriggerPattern FromProto(const pb::TriggerPattern& in) {
  engine::TriggerPattern p;
  for (const auto& t : in.tokens()) {
    p.tokens.push_back(
        {t.token(), t.id(), t.segment(), t.source_position(), t.relative_position()});
  }
  p.source = in.source();
  p.layer = in.layer();
  p.head = in.head();
  p.score = in.score();
  for (const auto& c : in.connections()) p.connections.emplace_back(c.query(), c.key());
  return p;
}

void ToProto(const engine::ClassTally& tally, pb::ClassTally* out) {
  for (const auto& [label, total] : tally.total) {
    pb::ClassCount* c = out->add_classes();
    c->set_label(label);
    const auto it = tally.correct.find(label);
    c->set_correct(it == tally.correct.end() ? 0 : it->second);
    c->set_total(total);
  }
}

engine::ClassTally FromProto(const pb::ClassTally& in) {
  engine::ClassTally tally;
  for (const auto& c : in.classes()) {
    tally.correct[c.label()] += c.correct();
    tally.total[c.label()] += c.total();
  }
  return tally;
}

template <typename Message>
std::string Serialize(const Message& message) {
  std::string bytes;
  message.SerializeToString(&bytes);
  return bytes;
}

template <typename Message>
absl::StatusOr<Message> Parse(const std::string& bytes, const char* what) {
  Message message;
  if (!message.ParseFromString(bytes)) {
    return absl::DataLossError(absl::StrCat("a shard's part is not ", what));
  }
  return message;
}

}  // namespace

std::string EncodeStudyImportanceSums(const engine::StudyImportanceSums& sums) {
  pb::StudyImportanceSums out;
  for (const auto& s : sums.importance) ToProto(s, out.add_importance());
  for (const auto& s : sums.agreement) ToProto(s, out.add_agreement());
  return Serialize(out);
}

absl::StatusOr<engine::StudyImportanceSums> DecodeStudyImportanceSums(const std::string& bytes) {
  absl::StatusOr<pb::StudyImportanceSums> in =
      Parse<pb::StudyImportanceSums>(bytes, "a study's importance sums");
  if (!in.ok()) return in.status();
  engine::StudyImportanceSums sums;
  for (const auto& s : in->importance()) {
    absl::StatusOr<engine::HeadImportanceSums> one = FromProto(s);
    if (!one.ok()) return one.status();
    sums.importance.push_back(*std::move(one));
  }
  for (const auto& s : in->agreement()) {
    absl::StatusOr<engine::HeadImportanceSums> one = FromProto(s);
    if (!one.ok()) return one.status();
    sums.agreement.push_back(*std::move(one));
  }
  return sums;
}

std::string EncodeStudyRankings(const engine::StudyRankings& rankings) {
  pb::StudyRankings out;
  for (size_t m = 0; m < rankings.importance.size(); ++m) {
    pb::MethodRanking* method = out.add_methods();
    ToProto(rankings.importance[m], method->mutable_importance());
    if (m < rankings.agreement.size() && rankings.agreement[m].has_value()) {
      method->mutable_agreement()->set_pearson(rankings.agreement[m]->pearson);
      method->mutable_agreement()->set_spearman(rankings.agreement[m]->spearman);
    }
  }
  return Serialize(out);
}

absl::StatusOr<engine::StudyRankings> DecodeStudyRankings(const std::string& bytes) {
  absl::StatusOr<pb::StudyRankings> in = Parse<pb::StudyRankings>(bytes, "a study's rankings");
  if (!in.ok()) return in.status();
  engine::StudyRankings rankings;
  for (const auto& method : in->methods()) {
    absl::StatusOr<engine::HeadTable> table = FromProto(method.importance());
    if (!table.ok()) return table.status();
    rankings.importance.push_back(*std::move(table));
    std::optional<engine::Correlation> agreement;
    if (method.has_agreement()) {
      agreement = engine::Correlation{method.agreement().pearson(), method.agreement().spearman()};
    }
    rankings.agreement.push_back(agreement);
  }
  return rankings;
}

std::string EncodeStudyPruningTallies(const engine::StudyPruningTallies& tallies) {
  pb::StudyPruningTallies out;
  for (const auto& method : tallies) {
    pb::MethodPruningTallies* m = out.add_methods();
    for (const auto& t : method) {
      pb::PruningTally* r = m->add_ratios();
      r->set_correct(t.correct);
      r->set_gold_probability(t.gold_probability);
      r->set_examples(t.examples);
    }
  }
  return Serialize(out);
}

absl::StatusOr<engine::StudyPruningTallies> DecodeStudyPruningTallies(const std::string& bytes) {
  absl::StatusOr<pb::StudyPruningTallies> in =
      Parse<pb::StudyPruningTallies>(bytes, "a study's pruning tallies");
  if (!in.ok()) return in.status();
  engine::StudyPruningTallies tallies;
  for (const auto& method : in->methods()) {
    std::vector<engine::PruningTally> m;
    for (const auto& r : method.ratios()) {
      m.push_back({r.correct(), r.gold_probability(), r.examples()});
    }
    tallies.push_back(std::move(m));
  }
  return tallies;
}

std::string EncodeMinedPatterns(const std::vector<engine::TriggerPattern>& patterns) {
  pb::MinedPatterns out;
  for (const auto& p : patterns) ToProto(p, out.add_patterns());
  return Serialize(out);
}

absl::StatusOr<std::vector<engine::TriggerPattern>> DecodeMinedPatterns(const std::string& bytes) {
  absl::StatusOr<pb::MinedPatterns> in = Parse<pb::MinedPatterns>(bytes, "mined trigger patterns");
  if (!in.ok()) return in.status();
  std::vector<engine::TriggerPattern> patterns;
  for (const auto& p : in->patterns()) patterns.push_back(FromProto(p));
  return patterns;
}

std::string EncodeRankedPatterns(const std::vector<engine::TriggerPattern>& patterns,
                                 const engine::TriggerSearchReport& counts) {
  pb::RankedPatterns out;
  for (const auto& p : patterns) ToProto(p, out.add_patterns());
  out.set_mined_examples(counts.mined_examples);
  out.set_patterns_above_threshold(counts.patterns_above_threshold);
  return Serialize(out);
}

absl::StatusOr<RankedPatterns> DecodeRankedPatterns(const std::string& bytes) {
  absl::StatusOr<pb::RankedPatterns> in =
      Parse<pb::RankedPatterns>(bytes, "ranked trigger patterns");
  if (!in.ok()) return in.status();
  RankedPatterns ranked;
  for (const auto& p : in->patterns()) ranked.patterns.push_back(FromProto(p));
  ranked.mined_examples = in->mined_examples();
  ranked.patterns_above_threshold = in->patterns_above_threshold();
  return ranked;
}

std::string EncodeTriggerTallies(const engine::TriggerTallies& tallies) {
  pb::TriggerTallies out;
  ToProto(tallies.clean, out.mutable_clean());
  for (const auto& t : tallies.attacked) ToProto(t, out.add_attacked());
  for (const auto& t : tallies.control) ToProto(t, out.add_control());
  for (int64_t n : tallies.truncated) out.add_truncated(n);
  return Serialize(out);
}

absl::StatusOr<engine::TriggerTallies> DecodeTriggerTallies(const std::string& bytes) {
  absl::StatusOr<pb::TriggerTallies> in = Parse<pb::TriggerTallies>(bytes, "trigger tallies");
  if (!in.ok()) return in.status();
  engine::TriggerTallies tallies;
  tallies.clean = FromProto(in->clean());
  for (const auto& t : in->attacked()) tallies.attacked.push_back(FromProto(t));
  for (const auto& t : in->control()) tallies.control.push_back(FromProto(t));
  tallies.truncated.assign(in->truncated().begin(), in->truncated().end());
  return tallies;
}

}  // namespace attattr::server
