// Unit tests of the HTML job reports (report/): hand-built Job/JobResult protos of every kind
// rendered to HTML and checked for their sections, escaping of every user string, fp16 decoding,
// the notes shown when matrices were not requested, status pages of unfinished and failed jobs, and
// errors for inconsistent results.
#include "attattr/report/html_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "attattr/convert/attribution_convert.h"
#include "attattr/engine/half_float.h"
#include "attattr/report/attribution_tree_render.h"
#include "heat_map_svg.h"
#include "html_text.h"

namespace {

namespace v1 = attattr::v1;
using attattr::report::RenderJobReport;
using attattr::report::ReportOptions;
using attattr::report::WriteJobReport;

constexpr char kEvil[] = "<script>alert('x')</script>";

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

void SetF32(v1::Tensor* t, const std::vector<int>& shape, const std::vector<float>& values) {
  for (int d : shape) t->add_shape(d);
  for (float v : values) t->mutable_f32()->add_values(v);
}

void SetF16(v1::Tensor* t, const std::vector<int>& shape, const std::vector<float>& values) {
  for (int d : shape) t->add_shape(d);
  std::string bytes;
  for (float v : values) {
    const uint16_t h = attattr::engine::FloatToHalf(v);
    bytes.push_back(static_cast<char>(h & 0xFF));
    bytes.push_back(static_cast<char>(h >> 8));
  }
  t->set_f16(bytes);
}

v1::Job MakeJob(v1::JobKind kind, v1::JobState state) {
  v1::Job job;
  job.set_name("jobs/0123abcd");
  job.set_kind(kind);
  job.set_state(state);
  job.mutable_spec()->set_model("sst2");
  job.set_create_time_ms(1764000000000);
  job.set_start_time_ms(1764000001000);
  if (state == v1::SUCCEEDED) job.set_end_time_ms(1764000002000);
  job.mutable_progress()->set_stage(state == v1::SUCCEEDED ? "done" : "attribution");
  job.mutable_progress()->set_done(1);
  job.mutable_progress()->set_total(2);
  return job;
}

// Two layers, two heads, three tokens (one of them hostile), with the tree.
v1::JobResult AttributionResult(bool fp16, bool full, bool attention) {
  v1::JobResult result;
  auto* e = result.mutable_attribution()->add_examples();
  for (const char* t : {"[CLS]", kEvil, "[SEP]"}) e->add_tokens(t);
  e->mutable_prediction()->set_predicted(1);
  e->mutable_prediction()->set_label("posi<tive>");
  e->mutable_prediction()->add_probabilities(0.25f);
  e->mutable_prediction()->add_probabilities(0.75f);
  e->set_target_class(1);
  std::vector<float> attr, att;
  for (int k = 0; k < 2 * 9; ++k) {
    attr.push_back(k % 3 == 0 ? -0.5f : 0.25f * (k % 4));
    att.push_back(0.125f * (k % 8));
  }
  for (int l = 0; l < 2; ++l) {
    auto* layer = e->add_layers();
    layer->set_layer(l);
    layer->set_num_heads(2);
    layer->set_target_at_full(0.75);
    layer->set_target_at_zero(0.5);
    layer->set_attribution_sum(0.2501);
    layer->set_completeness_gap(0.0004);
    if (full) (fp16 ? SetF16 : SetF32)(layer->mutable_attribution(), {2, 3, 3}, attr);
    if (attention) (fp16 ? SetF16 : SetF32)(layer->mutable_attention(), {2, 3, 3}, att);
    auto* c = layer->add_top_connections();
    c->set_layer(l);
    c->set_head(1);
    c->set_query(1);
    c->set_key(2);
    c->set_score(0.5f);
  }
  auto* tree = e->mutable_tree();
  tree->set_tau(0.4);
  tree->set_root(0);
  tree->set_top(1);
  tree->set_root_edge_score(0.9);
  for (int p = 0; p < 3; ++p) {
    auto* n = tree->add_nodes();
    n->set_position(p);
    n->set_token(e->tokens(p));
    n->set_layer(p == 0 ? -1 : 1);
  }
  auto* edge = tree->add_edges();
  edge->set_parent(1);
  edge->set_child(2);
  edge->set_layer(0);
  edge->set_score(0.6);
  return result;
}

TEST(HtmlTextTest, EscapesTheFiveCharacters) {
  EXPECT_EQ(attattr::report::EscapeHtml("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(attattr::report::FormatUnixMs(0), "\u2014");
  EXPECT_EQ(attattr::report::FormatUnixMs(1764000000000), "2025-11-24 16:00:00 UTC");
}

TEST(HeatMapSvgTest, OneCellPerValueWithEscapedLabels) {
  attattr::report::HeatMapOptions o;
  o.row_labels = {"a", "<b>"};
  o.col_labels = {"c", "d", "e"};
  const std::vector<float> v = {1, -1, 0, 0.5f, -0.5f, 0};
  const std::string svg = attattr::report::HeatMapSvg(v, 2, 3, o);
  EXPECT_EQ(Count(svg, "<rect "), 6);
  EXPECT_EQ(Count(svg, "<b>"), 0);
  EXPECT_GT(Count(svg, "&lt;b&gt;"), 0);
  EXPECT_NE(svg.find(attattr::report::HeatColor(1, 1, attattr::report::ColorScale::kDiverging)),
            std::string::npos);
  EXPECT_EQ(attattr::report::HeatColor(0, 1, attattr::report::ColorScale::kDiverging), "#ffffff");
  EXPECT_NE(attattr::report::HeatColor(1, 1, attattr::report::ColorScale::kDiverging),
            attattr::report::HeatColor(-1, 1, attattr::report::ColorScale::kDiverging));
}

// HeatMapSvgBytes is what page budgets consult: it must hold for any values and labels (hostile
// ones escape to 6x their bytes), and stay close enough to the truth not to leave out maps that
// fit.
TEST(HeatMapSvgTest, BytesBoundEveryMap) {
  namespace r = attattr::report;
  const std::vector<float> odd = {-1.234e-38f,
                                  std::numeric_limits<float>::quiet_NaN(),
                                  -std::numeric_limits<float>::infinity(),
                                  -3.402e38f,
                                  0.0f,
                                  1e-45f,
                                  12345.678f};
  const std::vector<std::string> labels = {
      "",
      "a",
      "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
      std::string(300, '\''),
      "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
      "##ing",
      kEvil};
  for (int rows : {1, 7, 64, 129}) {
    for (int cols : {1, 7, 64}) {
      std::vector<float> values(static_cast<size_t>(rows) * cols);
      for (size_t k = 0; k < values.size(); ++k) values[k] = odd[(k * 7 + rows) % odd.size()];
      for (int variant = 0; variant < 4; ++variant) {
        r::HeatMapOptions o;
        o.cell_px = variant == 3 ? 1 : 18;
        o.cell_titles = variant != 2;
        o.legend = variant != 1;
        o.title = kEvil;
        o.css_class = "attribution-map";
        if (variant != 3) {
          for (int i = 0; i < rows; ++i) o.row_labels.push_back(labels[(i + variant) % 7]);
          for (int j = 0; j < cols; ++j) o.col_labels.push_back(labels[(j * 3) % 7]);
        }
        const int64_t bound = r::HeatMapSvgBytes(rows, cols, o);
        const auto drawn = static_cast<int64_t>(r::HeatMapSvg(values, rows, cols, o).size());
        EXPECT_LE(drawn, bound) << rows << "x" << cols << " variant " << variant;
      }
    }
  }
  // A typical layer map: 64 word pieces with tooltips, attribution values.
  r::HeatMapOptions o;
  o.cell_px = 5;
  std::vector<float> values(64 * 64);
  for (int i = 0; i < 64; ++i) {
    o.row_labels.push_back("word" + std::to_string(i));
    for (int j = 0; j < 64; ++j) values[i * 64 + j] = 0.001f * static_cast<float>(i - j);
  }
  o.col_labels = o.row_labels;
  const auto drawn = static_cast<double>(r::HeatMapSvg(values, 64, 64, o).size());
  EXPECT_LT(static_cast<double>(r::HeatMapSvgBytes(64, 64, o)), 1.5 * drawn);
}

TEST(TreeSvgTest, DrawsEveryNodeAndTheRootEdge) {
  const v1::JobResult r = AttributionResult(false, false, false);
  auto tree = attattr::convert::TreeFromProto(r.attribution().examples(0));
  ASSERT_TRUE(tree.ok()) << tree.status();
  const std::string svg = attattr::report::AttributionTreeSvg(*tree);
  EXPECT_EQ(Count(svg, "class=\"tree-node"), 3);
  EXPECT_EQ(Count(svg, "class=\"tree-edge\""), 2);  // root -> top, top -> [SEP]
  EXPECT_NE(svg.find("data-parent=\"0\" data-child=\"1\""), std::string::npos);
  EXPECT_EQ(svg.find("<script>"), std::string::npos);
  EXPECT_EQ(svg.find("tree-unplaced"), std::string::npos);
}

// A regression head's outputs are shown as its values (no class, no probability), a multi-label
// head's probabilities as sigmoids per label; a single-label one as before.
TEST(HtmlReportTest, PredictionFollowsTheHeadsProblemType) {
  const v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  v1::JobResult result = AttributionResult(false, false, false);
  auto* p = result.mutable_attribution()->mutable_examples(0)->mutable_prediction();
  p->set_problem_type("single_label_classification");
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<th>probability</th><td>0.25</td>"), std::string::npos);
  EXPECT_NE(html->find("class=\"predicted-label\">posi&lt;tive&gt;</b> (class 1)"),
            std::string::npos);

  p->set_problem_type("multi_label_classification");
  html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("<th>sigmoid probability</th><td>0.25</td>"), std::string::npos);

  p->set_problem_type("regression");
  p->clear_probabilities();
  p->set_predicted(0);
  p->add_logits(3.5f);
  html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("Prediction: a regression"), std::string::npos);
  EXPECT_NE(html->find("<th>value (regression)</th><td>3.5</td>"), std::string::npos);
  EXPECT_EQ(html->find("predicted-label"), std::string::npos);
  EXPECT_EQ(html->find("<th>probability</th>"), std::string::npos);
}

TEST(HtmlReportTest, AttributionWithFullMatricesAttentionAndTree) {
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  auto* ro = job.mutable_spec()->mutable_attribution()->mutable_result();
  ro->set_full_matrices(true);
  ro->set_attention(true);
  ro->set_tree(true);
  const v1::JobResult result = AttributionResult(false, true, true);
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(html->rfind("<!DOCTYPE html>", 0), 0u);
  for (const char* hook :
       {"id=\"job-summary\"", "id=\"attribution\"", "id=\"example-0\"", "class=\"prediction\"",
        "class=\"tokens\"", "class=\"completeness-gaps\"", "class=\"attribution-tree\"",
        "id=\"example-0-layer-1\"", "class=\"head-maps\"", "class=\"top-connections\""}) {
    EXPECT_NE(html->find(hook), std::string::npos) << hook;
  }
  EXPECT_EQ(Count(*html, "heat-map attribution-map"), 2);  // one per layer
  EXPECT_EQ(Count(*html, "heat-map attention-map"), 2);
  EXPECT_EQ(Count(*html, "heat-map head-attribution"), 4);  // 2 layers x 2 heads
  EXPECT_EQ(Count(*html, "heat-map head-attention"), 4);
  EXPECT_EQ(html->find("options-note"), std::string::npos);  // everything was asked for
  // No user string injects markup; the only <script would be ours, and there is none.
  EXPECT_EQ(html->find("<script"), std::string::npos);
  EXPECT_EQ(html->find("<tive>"), std::string::npos);
  EXPECT_NE(html->find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(html->find("posi&lt;tive&gt;"), std::string::npos);
  // No network resources.
  EXPECT_EQ(html->find("http://"), html->find("http://www.w3.org/2000/svg"));
  EXPECT_EQ(html->find("https://"), std::string::npos);
  EXPECT_EQ(html->find(" src="), std::string::npos);
}

TEST(HtmlReportTest, Fp16MatricesDrawTheSameAsFp32) {
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  const v1::JobResult f32 = AttributionResult(false, true, true);
  const v1::JobResult f16 = AttributionResult(true, true, true);
  auto a = RenderJobReport(job, &f32);
  auto b = RenderJobReport(job, &f16);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  // The test values are exact in fp16, so the pages are identical.
  EXPECT_EQ(*a, *b);
}

TEST(HtmlReportTest, TopConnectionsOnlyExplainsWhichOptionsShowMore) {
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  job.mutable_spec()->mutable_attribution()->mutable_result()->set_top_k(1);
  v1::JobResult result = AttributionResult(false, false, false);
  result.mutable_attribution()->mutable_examples(0)->clear_tree();
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("class=\"note options-note\""), std::string::npos);
  EXPECT_NE(html->find("full_matrices"), std::string::npos);
  EXPECT_NE(html->find("attention"), std::string::npos);
  EXPECT_EQ(Count(*html, "class=\"top-connections\""), 2);
  EXPECT_EQ(html->find("attribution-map"), std::string::npos);
  EXPECT_EQ(html->find("class=\"attribution-tree\""), std::string::npos);
}

TEST(HtmlReportTest, HeadSummedWithoutAttentionSaysSo) {
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  job.mutable_spec()->mutable_attribution()->mutable_result()->set_head_summed(true);
  v1::JobResult result = AttributionResult(false, false, false);
  for (auto& layer : *result.mutable_attribution()->mutable_examples(0)->mutable_layers()) {
    SetF32(layer.mutable_head_summed(), {3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8});
  }
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_EQ(Count(*html, "heat-map attribution-map"), 2);
  EXPECT_EQ(html->find("heat-map attention-map"), std::string::npos);
  EXPECT_NE(html->find("ResultOptions.attention"), std::string::npos);
  EXPECT_EQ(html->find("head-maps"), std::string::npos);
}

TEST(HtmlReportTest, BertBaseSizedMatricesStayWithinTheCellBudget) {
  constexpr int kN = 128, kH = 12, kL = 3;
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  v1::JobResult result;
  auto* e = result.mutable_attribution()->add_examples();
  for (int i = 0; i < kN; ++i) e->add_tokens("tok" + std::to_string(i));
  std::vector<float> values(static_cast<size_t>(kH) * kN * kN);
  for (size_t k = 0; k < values.size(); ++k) values[k] = static_cast<float>(k % 97) / 97.0f - 0.3f;
  for (int l = 0; l < kL; ++l) {
    auto* layer = e->add_layers();
    layer->set_layer(l);
    layer->set_num_heads(kH);
    SetF32(layer->mutable_attribution(), {kH, kN, kN}, values);
    SetF32(layer->mutable_attention(), {kH, kN, kN}, values);
  }
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  // 2·12·128² = 393k per-head cells per layer exceed the budget: no small multiples, a note.
  EXPECT_EQ(html->find("class=\"head-maps\""), std::string::npos);
  EXPECT_EQ(Count(*html, "Per-head maps left out"), kL);
  EXPECT_EQ(Count(*html, "heat-map attribution-map"), kL);  // 3 · 2 · 128² layer cells fit
  EXPECT_LT(html->size(), size_t{40} << 20);
}

TEST(HtmlReportTest, InconsistentTensorIsInvalidArgument) {
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  v1::JobResult result = AttributionResult(false, true, false);
  result.mutable_attribution()
      ->mutable_examples(0)
      ->mutable_layers(0)
      ->mutable_attribution()
      ->mutable_f32()
      ->add_values(1.0f);
  auto html = RenderJobReport(job, &result);
  EXPECT_EQ(html.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(html.status().message().find("example-0-layer-0.attribution"), std::string::npos);
}

TEST(HtmlReportTest, ResultOfAnotherKindIsInvalidArgument) {
  const v1::Job job = MakeJob(v1::HEAD_IMPORTANCE, v1::SUCCEEDED);
  const v1::JobResult result = AttributionResult(false, false, false);
  EXPECT_EQ(RenderJobReport(job, &result).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HtmlReportTest, UnfinishedJobIsAStatusPage) {
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::RUNNING);
  job.mutable_progress()->set_eta_seconds(3);
  auto html = RenderJobReport(job, nullptr);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("state-RUNNING"), std::string::npos);
  EXPECT_NE(html->find("1/2"), std::string::npos);
  EXPECT_NE(html->find("progress-bar"), std::string::npos);
  EXPECT_NE(html->find("no-result"), std::string::npos);
  EXPECT_EQ(html->find("id=\"attribution\""), std::string::npos);
}

TEST(HtmlReportTest, FailedJobShowsItsEscapedError) {
  v1::Job job = MakeJob(v1::TRIGGER_SEARCH, v1::FAILED);
  job.set_error_code(3);
  job.set_error_message(std::string("bad <input> ") + kEvil);
  job.set_request_id("<req>");
  auto html = RenderJobReport(job, nullptr);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("class=\"error\""), std::string::npos);
  EXPECT_NE(html->find("bad &lt;input&gt;"), std::string::npos);
  EXPECT_NE(html->find("&lt;req&gt;"), std::string::npos);
  EXPECT_EQ(html->find("<script"), std::string::npos);
}

TEST(HtmlReportTest, HeadImportanceMapsCorrelationsAndCurves) {
  const v1::Job job = MakeJob(v1::HEAD_IMPORTANCE, v1::SUCCEEDED);
  v1::JobResult result;
  auto* hi = result.mutable_head_importance();
  hi->set_num_layers(2);
  hi->set_num_heads(3);
  hi->set_export_path("pruned/<x>");
  for (auto method : {v1::IMPORTANCE_METHOD_ATTRIBUTION, v1::IMPORTANCE_METHOD_RANDOM}) {
    auto* m = hi->add_methods();
    m->set_method(method);
    for (int k = 0; k < 6; ++k) m->add_importance(0.1 * k);
    for (double ratio : {0.0, 50.0, 100.0}) {
      auto* p = m->add_curve();
      p->set_ratio(ratio);
      p->set_accuracy(0.9 - ratio / 200);
    }
  }
  auto* c = hi->add_correlations();
  c->set_a(v1::IMPORTANCE_METHOD_ATTRIBUTION);
  c->set_b(v1::IMPORTANCE_METHOD_RANDOM);
  c->set_pearson(0.1);
  c->set_spearman(0.05);
  EXPECT_EQ(RenderJobReport(job, &result)->find("class=\"agreement\""), std::string::npos);
  auto* agreement = hi->mutable_methods(0)->mutable_agreement();
  agreement->set_pearson(0.875);
  agreement->set_spearman(0.625);
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("class=\"agreement\""), std::string::npos);
  EXPECT_NE(html->find("0.875"), std::string::npos);
  EXPECT_NE(html->find("id=\"head-importance\""), std::string::npos);
  EXPECT_EQ(Count(*html, "heat-map importance-map"), 2);
  EXPECT_GE(Count(*html, "<rect "), 12);  // 2 maps x 6 heads
  EXPECT_NE(html->find("class=\"correlations\""), std::string::npos);
  EXPECT_NE(html->find("id=\"pruning-curves\""), std::string::npos);
  EXPECT_NE(html->find("class=\"pruning-curve-table\""), std::string::npos);
  EXPECT_NE(html->find("class=\"pruning-chart\"><svg"), std::string::npos);
  EXPECT_NE(html->find("pruned/&lt;x&gt;"), std::string::npos);
  EXPECT_NE(html->find(">attribution<"), std::string::npos);

  hi->mutable_methods(0)->add_importance(1.0);
  EXPECT_EQ(RenderJobReport(job, &result).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HtmlReportTest, TriggerSearchTablePerPattern) {
  const v1::Job job = MakeJob(v1::TRIGGER_SEARCH, v1::SUCCEEDED);
  v1::JobResult result;
  auto* ts = result.mutable_trigger_search();
  for (int p = 0; p < 2; ++p) {
    auto* pattern = ts->add_patterns();
    pattern->add_tokens("no");
    pattern->add_tokens(kEvil);
    pattern->set_source(7);
    pattern->set_layer(3);
    pattern->set_head(p);
    pattern->set_score(0.05);
    for (const char* label : {"entailment", "not_entailment"}) {
      auto* clean = pattern->add_clean();
      clean->set_label(label);
      clean->set_accuracy(0.8287);
      clean->set_examples(100);
      auto* attacked = pattern->add_attacked();
      attacked->set_label(label);
      attacked->set_accuracy(0.008);
      attacked->set_examples(100);
      auto* control = pattern->add_control();
      control->set_label(label);
      control->set_accuracy(0.8);
      control->set_examples(100);
    }
  }
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("id=\"trigger-search\""), std::string::npos);
  EXPECT_EQ(Count(*html, "class=\"trigger-pattern\""), 2);
  EXPECT_NE(html->find("82.87 %"), std::string::npos);
  EXPECT_NE(html->find("0.80 %"), std::string::npos);
  EXPECT_EQ(Count(*html, "<td>entailment</td>"), 2);
  EXPECT_EQ(html->find("<script"), std::string::npos);
}

}  // namespace

// Many examples, each with its full matrices.
v1::JobResult ManyExamples(int examples) {
  v1::JobResult result;
  const v1::JobResult one = AttributionResult(/*fp16=*/false, /*full=*/true, /*attention=*/true);
  for (int e = 0; e < examples; ++e) {
    *result.mutable_attribution()->add_examples() = one.attribution().examples(0);
  }
  return result;
}

// Regression (hardening review): a result of 10,000 examples drew a page of hundreds of MiB held
// whole in memory. The page now stops at its budget and says which examples it left out.
TEST(HtmlReportTest, APageStopsAtItsBudgetAndNamesWhatItLeftOut) {
  const v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  const v1::JobResult result = ManyExamples(400);
  auto whole = RenderJobReport(job, &result);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(Count(*whole, "class=\"example\""), 400);
  EXPECT_EQ(whole->find("left-out"), std::string::npos);
  const size_t per_example = whole->size() / 400;

  ReportOptions options;
  options.max_page_bytes = 64 * 1024;
  auto cut = RenderJobReport(job, &result, options);
  ASSERT_TRUE(cut.ok()) << cut.status();
  const int drawn = Count(*cut, "class=\"example\"");
  EXPECT_GT(drawn, 0);
  EXPECT_LT(drawn, 400);
  EXPECT_LE(cut->size(), options.max_page_bytes + 2 * per_example);
  EXPECT_NE(cut->find("class=\"note left-out\">Examples " + std::to_string(drawn) +
                      " to 399 are left out: the page has reached its budget of 64 KiB"),
            std::string::npos);
  EXPECT_NE(cut->find("</html>"), std::string::npos);  // still a whole page
}

// Regression (the cell budgets alone allowed it): one example of BERT-base dimensions at n = 64
// with full matrices, attention and head sums drew a page of ~27 MB against a 16 MiB budget. Maps
// are now drawn only where they fit in what is left of the page.
TEST(HtmlReportTest, OneLargeExampleStaysWithinThePageBudget) {
  constexpr int kLayers = 12, kHeads = 12, kTokens = 64;
  v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  auto* ro = job.mutable_spec()->mutable_attribution()->mutable_result();
  ro->set_full_matrices(true);
  ro->set_attention(true);
  ro->set_head_summed(true);
  v1::JobResult result;
  auto* e = result.mutable_attribution()->add_examples();
  for (int t = 0; t < kTokens; ++t) e->add_tokens("tok&<" + std::to_string(t));
  e->mutable_prediction()->set_predicted(0);
  e->mutable_prediction()->add_probabilities(1.0f);
  e->set_target_class(0);
  std::vector<float> full(kHeads * kTokens * kTokens), summed(kTokens * kTokens);
  for (size_t k = 0; k < full.size(); ++k) full[k] = -1.2345e-7f * static_cast<float>(k % 977);
  for (size_t k = 0; k < summed.size(); ++k) summed[k] = -9.8765e-6f * static_cast<float>(k % 113);
  for (int l = 0; l < kLayers; ++l) {
    auto* layer = e->add_layers();
    layer->set_layer(l);
    layer->set_num_heads(kHeads);
    SetF32(layer->mutable_attribution(), {kHeads, kTokens, kTokens}, full);
    SetF32(layer->mutable_attention(), {kHeads, kTokens, kTokens}, full);
    SetF32(layer->mutable_head_summed(), {kTokens, kTokens}, summed);
  }
  const ReportOptions options;  // 16 MiB
  int64_t sent = 0, largest_piece = 0;
  ASSERT_TRUE(WriteJobReport(job, &result, options, [&](absl::string_view piece) {
                sent += static_cast<int64_t>(piece.size());
                largest_piece = std::max<int64_t>(largest_piece, piece.size());
                return true;
              }).ok());
  EXPECT_LE(sent, options.max_page_bytes);
  EXPECT_GT(sent, options.max_page_bytes / 2);  // maps were drawn while they fitted
  EXPECT_LT(largest_piece, options.max_page_bytes / 2);
  auto html = RenderJobReport(job, &result, options);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("left out: they would take the page past its budget of 16384 KiB"),
            std::string::npos);
  EXPECT_EQ(Count(*html, "class=\"layer\""), kLayers);  // every layer's section is still there
}

TEST(HtmlReportTest, ATopConnectionsTableShowsAtMostAHundredRows) {
  const v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  v1::JobResult result = AttributionResult(/*fp16=*/false, /*full=*/false, /*attention=*/false);
  auto before = RenderJobReport(job, &result);  // one connection per layer
  ASSERT_TRUE(before.ok()) << before.status();
  auto* layer = result.mutable_attribution()->mutable_examples(0)->mutable_layers(0);
  for (int i = 0; i < 5000; ++i) *layer->add_top_connections() = layer->top_connections(0);
  auto html = RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  EXPECT_NE(html->find("The strongest 100 of 5001 connections"), std::string::npos);
  // The first layer's table went from 1 row to 100, not 5001.
  EXPECT_EQ(Count(*html, "<tr><td>"), Count(*before, "<tr><td>") + 99);
}

TEST(HtmlReportTest, WritingSendsThePageInPiecesAndStopsWhenTheReaderLeaves) {
  const v1::Job job = MakeJob(v1::ATTRIBUTION, v1::SUCCEEDED);
  const v1::JobResult result = ManyExamples(20);
  std::vector<std::string> pieces;
  ASSERT_TRUE(WriteJobReport(job, &result, ReportOptions{}, [&pieces](absl::string_view piece) {
                pieces.emplace_back(piece);
                return true;
              }).ok());
  EXPECT_GE(pieces.size(), 20u);  // at least one piece per example
  std::string joined;
  for (const auto& p : pieces) joined += p;
  auto whole = RenderJobReport(job, &result);
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(joined, *whole);  // streaming and rendering give the same bytes

  int calls = 0;
  const absl::Status gone = WriteJobReport(job, &result, ReportOptions{},
                                           [&calls](absl::string_view) { return ++calls < 3; });
  EXPECT_EQ(gone.code(), absl::StatusCode::kCancelled) << gone;
  EXPECT_EQ(calls, 3);  // nothing drawn after the reader left
}
