// The ATTRIBUTION section of a job report: per example the prediction, the tokens, completeness
// gaps per layer, the attribution tree, and per layer the head-summed attribution map beside the
// head-summed attention map (the paper's point: they differ), per-head small multiples when full
// matrices are present, the strongest connections, and a note naming the result options that would
// show more. Pure, thread-safe.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "attattr/base/status_macros.h"
#include "attattr/convert/attribution_convert.h"
#include "attattr/convert/tensor_convert.h"
#include "attattr/report/attribution_tree_render.h"
#include "heat_map_svg.h"
#include "html_text.h"
#include "report_sections.h"

namespace attattr::report::internal {
namespace {

// Heat-map cells one report draws at most (each is an SVG <rect>): layer maps (attribution and
// attention, n² each) and per-head small multiples (2·H·n² per layer), so a browser draws a page
// (BERT-base at n = 128 is 393k per-head cells per layer). A map is also drawn only where it fits
// in what is left of the page's byte budget (HeatMapSvgBytes). Beyond either, maps are left out
// with a note.
constexpr int64_t kLayerCellBudget = 350000;
constexpr int64_t kHeadCellBudget = 250000;
// Token labels and per-cell tooltips on the layer maps up to this many tokens.
constexpr int kLabelledTokens = 64;
// Rows a top-connections table shows (top_k may ask for 10,000 per layer and example).
constexpr int kTopConnectionRows = 100;

struct Budget {
  int64_t layer_cells_left = kLayerCellBudget;
  int64_t head_cells_left = kHeadCellBudget;
};

// Σ_h of an [H, n, n] tensor: [n, n].
std::vector<float> SumHeads(const std::vector<float>& values, int heads, int n) {
  std::vector<float> sum(static_cast<size_t>(n) * n, 0.0f);
  for (int h = 0; h < heads; ++h) {
    for (size_t k = 0; k < sum.size(); ++k) sum[k] += values[h * sum.size() + k];
  }
  return sum;
}

std::string Note(const std::string& text) {
  return absl::StrCat("<p class=\"note\">", EscapeHtml(text), "</p>");
}

void AppendPrediction(const v1::ExampleAttribution& example, std::string* html) {
  const auto& p = example.prediction();
  absl::StrAppend(html, "<div class=\"prediction\">");
  if (p.predicted() < 0 && p.probabilities_size() == 0) {
    absl::StrAppend(html, "<p>Encoder-only model: no prediction.</p>");
  } else {
    // A language model's classes are token ids.
    const char* unit = p.top_tokens_size() > 0 ? "token" : "class";
    absl::StrAppend(
        html,
        p.problem_type() == "regression"
            ? std::string("<p>Prediction: a regression (its values below)")
            : absl::StrCat("<p>Prediction: <b class=\"predicted-label\">", EscapeHtml(p.label()),
                           "</b> (", unit, " ", p.predicted(), ")"),
        example.target_class() >= 0 ? absl::StrCat("; target ", unit, " ", example.target_class())
        : example.continuation_start() > 0
            ? absl::StrCat("; target: log-probability of the continuation from position ",
                           example.continuation_start())
            : std::string("; target: similarity"),
        "</p>");
    if (p.top_tokens_size() > 0) {
      absl::StrAppend(html, "<table class=\"top-tokens\"><tr><th>next token</th>");
      for (const auto& t : p.top_tokens()) {
        absl::StrAppend(html, "<th>", EscapeHtml(t.token()), " <sub>#", t.id(), "</sub></th>");
      }
      absl::StrAppend(html, "</tr><tr><th>probability</th>");
      for (const auto& t : p.top_tokens()) {
        absl::StrAppend(html, "<td>", FormatNumber(t.probability()), "</td>");
      }
      absl::StrAppend(html, "</tr></table>");
    }
    // A regression's outputs are its values; a multi-label head's probabilities are per label.
    const bool regression = p.problem_type() == "regression";
    const auto& values = regression ? p.logits() : p.probabilities();
    if (!values.empty()) {
      absl::StrAppend(html, "<table class=\"probabilities\"><tr><th>",
                      regression ? "output" : "class", "</th>");
      for (int c = 0; c < values.size(); ++c) absl::StrAppend(html, "<th>", c, "</th>");
      absl::StrAppend(html, "</tr><tr><th>",
                      regression                                         ? "value (regression)"
                      : p.problem_type() == "multi_label_classification" ? "sigmoid probability"
                                                                         : "probability",
                      "</th>");
      for (float v : values) absl::StrAppend(html, "<td>", FormatNumber(v), "</td>");
      absl::StrAppend(html, "</tr></table>");
    }
  }
  absl::StrAppend(html, "</div>");
}

void AppendTokens(const std::vector<std::string>& tokens, std::string* html) {
  absl::StrAppend(html, "<p class=\"tokens\">");
  for (size_t i = 0; i < tokens.size(); ++i) {
    absl::StrAppend(html, "<span class=\"token\" title=\"position ", i, "\"><sub>", i, "</sub>",
                    EscapeHtml(tokens[i]), "</span> ");
  }
  absl::StrAppend(html, "</p>");
}

void AppendGaps(const v1::ExampleAttribution& example, std::string* html) {
  absl::StrAppend(
      html,
      "<table class=\"completeness-gaps\"><caption>Completeness per layer: gap = |\u03a3 "
      "Attr \u2212 (F(A) \u2212 F(0))| / |F(A) \u2212 F(0)|</caption><tr><th>layer</th>"
      "<th>F(A)</th><th>F(0)</th><th>\u03a3 Attr</th><th>gap</th></tr>");
  for (const auto& l : example.layers()) {
    absl::StrAppend(html, "<tr><td>", l.layer(), "</td><td>", FormatNumber(l.target_at_full()),
                    "</td><td>", FormatNumber(l.target_at_zero()), "</td><td>",
                    FormatNumber(l.attribution_sum()), "</td><td class=\"gap\">",
                    FormatPercent(l.completeness_gap()), "</td></tr>");
  }
  absl::StrAppend(html, "</table>");
}

void AppendTopConnections(const v1::LayerAttribution& layer, const std::vector<std::string>& tokens,
                          std::string* html) {
  if (layer.top_connections_size() == 0) return;
  auto token = [&](int i) {
    return i >= 0 && i < static_cast<int>(tokens.size()) ? EscapeHtml(tokens[i]) : std::string("?");
  };
  absl::StrAppend(html,
                  "<table class=\"top-connections\"><caption>Strongest connections</caption><tr>"
                  "<th>head</th><th>query</th><th>\u2190 key</th><th>score</th></tr>");
  const int shown = std::min(layer.top_connections_size(), kTopConnectionRows);
  for (int i = 0; i < shown; ++i) {
    const auto& c = layer.top_connections(i);
    absl::StrAppend(html, "<tr><td>", c.head() < 0 ? std::string("\u03a3") : absl::StrCat(c.head()),
                    "</td><td>", c.query(), " ", token(c.query()), "</td><td>", c.key(), " ",
                    token(c.key()), "</td><td>", FormatNumber(c.score()), "</td></tr>");
  }
  absl::StrAppend(html, "</table>");
  if (shown < layer.top_connections_size()) {
    absl::StrAppend(html,
                    Note(absl::StrCat("The strongest ", shown, " of ", layer.top_connections_size(),
                                      " connections (`attattr get` has them all).")));
  }
}

// At most the bytes of one of a layer's two maps drawn with `map` (title and class as set below).
int64_t LayerMapBytes(HeatMapOptions map, int layer, int n) {
  map.css_class = "attribution-map";
  map.title = absl::StrCat("layer ", layer, " head-summed attribution");
  return HeatMapSvgBytes(n, n, map);
}

// Whether maps of `bytes` at most still fit in the page's budget.
bool Fits(const PageWriter& page, int64_t bytes) { return page.size() + bytes <= page.max_bytes(); }

std::string PageFullNote(const char* what, const PageWriter& page) {
  return Note(absl::StrCat(what, " left out: they would take the page past its budget of ",
                           page.max_bytes() >> 10, " KiB (use `attattr get` for the matrices)."));
}

absl::Status AppendLayer(const v1::ExampleAttribution& example, const v1::LayerAttribution& layer,
                         const std::string& id, Budget& budget, PageWriter& page) {
  std::string* html = page.html();
  const int n = example.tokens_size();
  const int heads = layer.num_heads();
  const std::vector<std::string> tokens(example.tokens().begin(), example.tokens().end());
  absl::StrAppend(html, "<section class=\"layer\" id=\"", id, "\" data-layer=\"", layer.layer(),
                  "\"><h4>Layer ", layer.layer(), "</h4>");
  std::vector<float> full, attention, summed;
  if (convert::HasValues(layer.attribution())) {
    auto v = convert::TensorValues(layer.attribution(), {heads, n, n});
    if (!v.ok())
      return absl::InvalidArgumentError(absl::StrCat(id, ".attribution: ", v.status().message()));
    full = std::move(*v);
  }
  if (convert::HasValues(layer.attention())) {
    auto v = convert::TensorValues(layer.attention(), {heads, n, n});
    if (!v.ok())
      return absl::InvalidArgumentError(absl::StrCat(id, ".attention: ", v.status().message()));
    attention = std::move(*v);
  }
  if (convert::HasValues(layer.head_summed())) {
    auto v = convert::TensorValues(layer.head_summed(), {n, n});
    if (!v.ok())
      return absl::InvalidArgumentError(absl::StrCat(id, ".head_summed: ", v.status().message()));
    summed = std::move(*v);
  } else if (!full.empty()) {
    summed = SumHeads(full, heads, n);
  }

  const bool labelled = n <= kLabelledTokens;
  HeatMapOptions map;
  map.cell_px = std::clamp(360 / std::max(n, 1), 3, 18);
  if (labelled) {
    map.row_labels = tokens;
    map.col_labels = tokens;
  }
  map.cell_titles = labelled;
  const int64_t layer_cells = int64_t{2} * n * n;
  const bool layer_maps = !summed.empty() || !attention.empty();
  if (layer_maps && layer_cells > budget.layer_cells_left) {
    absl::StrAppend(
        html, Note(absl::StrCat("Layer maps left out: the report draws at most ", kLayerCellBudget,
                                " layer-map cells (use `attattr get` for the "
                                "matrices).")));
  } else if (layer_maps && !Fits(page, 2 * LayerMapBytes(map, layer.layer(), n))) {
    absl::StrAppend(html, PageFullNote("Layer maps", page));
  } else if (layer_maps) {
    budget.layer_cells_left -= layer_cells;
    absl::StrAppend(html, "<div class=\"map-pair\">");
    absl::StrAppend(html,
                    "<figure class=\"attribution-summed\"><figcaption>Attribution \u03a3<sub>h"
                    "</sub> Attr (row: query i, column: key j)</figcaption>");
    if (!summed.empty()) {
      map.scale = ColorScale::kDiverging;
      map.css_class = "attribution-map";
      map.title = absl::StrCat("layer ", layer.layer(), " head-summed attribution");
      absl::StrAppend(html, HeatMapSvg(summed, n, n, map));
    } else {
      absl::StrAppend(html, Note("Not in the result: submit with ResultOptions.head_summed or "
                                 "full_matrices (--head-summed / --full-matrices)."));
    }
    absl::StrAppend(html,
                    "</figure><figure class=\"attention-summed\"><figcaption>Attention "
                    "\u03a3<sub>h</sub> A</figcaption>");
    if (!attention.empty()) {
      map.scale = ColorScale::kSequential;
      map.css_class = "attention-map";
      map.title = absl::StrCat("layer ", layer.layer(), " head-summed attention");
      absl::StrAppend(html, HeatMapSvg(SumHeads(attention, heads, n), n, n, map));
    } else {
      absl::StrAppend(html, Note("Not in the result: submit with ResultOptions.attention "
                                 "(--attention) to compare with the raw attention."));
    }
    absl::StrAppend(html, "</figure></div>");
  }

  if (!full.empty()) {
    const int64_t cells = int64_t{2} * heads * n * n;
    HeatMapOptions small;
    small.cell_px = std::clamp(96 / std::max(n, 1), 1, 8);
    small.cell_titles = false;
    small.legend = false;
    // Each head's pair in a <figure>, its maps titled "layer L head H attribution" at most.
    HeatMapOptions longest = small;
    longest.css_class = "head-attribution";
    longest.title = absl::StrCat("layer ", layer.layer(), " head ", heads, " attribution");
    const int64_t head_bytes = 256 + heads * (128 + int64_t{2} * HeatMapSvgBytes(n, n, longest));
    if (cells <= budget.head_cells_left && Fits(page, head_bytes)) {
      budget.head_cells_left -= cells;
      const size_t per_head = static_cast<size_t>(n) * n;
      absl::StrAppend(html,
                      "<details class=\"head-maps\" open><summary>Per head: attribution "
                      "(left) and attention (right)</summary><div class=\"head-grid\">");
      for (int h = 0; h < heads; ++h) {
        absl::StrAppend(html, "<figure class=\"head-pair\" data-head=\"", h, "\"><figcaption>head ",
                        h, "</figcaption>");
        small.scale = ColorScale::kDiverging;
        small.css_class = "head-attribution";
        small.title = absl::StrCat("layer ", layer.layer(), " head ", h, " attribution");
        absl::StrAppend(html, HeatMapSvg(absl::MakeConstSpan(full).subspan(h * per_head, per_head),
                                         n, n, small));
        if (!attention.empty()) {
          small.scale = ColorScale::kSequential;
          small.css_class = "head-attention";
          small.title = absl::StrCat("layer ", layer.layer(), " head ", h, " attention");
          absl::StrAppend(
              html, HeatMapSvg(absl::MakeConstSpan(attention).subspan(h * per_head, per_head), n, n,
                               small));
        }
        absl::StrAppend(html, "</figure>");
      }
      absl::StrAppend(html, "</div></details>");
    } else if (cells > budget.head_cells_left) {
      absl::StrAppend(html, Note(absl::StrCat("Per-head maps left out: the report draws at most ",
                                              kHeadCellBudget,
                                              " per-head cells (use `attattr get` for the "
                                              "matrices).")));
    } else {
      absl::StrAppend(html, PageFullNote("Per-head maps", page));
    }
  }
  AppendTopConnections(layer, tokens, html);
  if (summed.empty() && layer.top_connections_size() == 0) {
    absl::StrAppend(html, Note("This result holds no matrices or connections for this layer."));
  }
  absl::StrAppend(html, "</section>");
  return absl::OkStatus();
}

std::string OptionsNote(const v1::ResultOptions& o) {
  std::vector<std::string> missing;
  if (!o.full_matrices()) missing.push_back("full_matrices (--full-matrices: per-head maps)");
  if (!o.full_matrices() && !o.head_summed()) {
    missing.push_back("head_summed (--head-summed: one map per layer)");
  }
  if (!o.attention()) missing.push_back("attention (--attention: the raw attention beside it)");
  if (!o.tree()) missing.push_back("tree (the attribution tree)");
  if (missing.empty()) return "";
  return absl::StrCat("This job did not ask for ResultOptions.", absl::StrJoin(missing, ", "),
                      "; submit again with them to see more.");
}

}  // namespace

absl::Status AppendAttributionSection(const v1::ResultOptions& options,
                                      const v1::AttributionResult& result, PageWriter& page) {
  std::string* html = page.html();
  absl::StrAppend(html,
                  "<section id=\"attribution\" class=\"result attribution-result\"><h2>"
                  "Attribution</h2>");
  if (const std::string note = OptionsNote(options); !note.empty()) {
    absl::StrAppend(html, "<p class=\"note options-note\">", EscapeHtml(note), "</p>");
  }
  Budget budget;
  for (int e = 0; e < result.examples_size(); ++e) {
    if (page.OverBudget()) {
      absl::StrAppend(html, "<p class=\"note left-out\">",
                      EscapeHtml(absl::StrCat("Examples ", e, " to ", result.examples_size() - 1,
                                              " are left out: the page has reached its budget of ",
                                              page.max_bytes() >> 10,
                                              " KiB (`attattr get` has every example).")),
                      "</p>");
      break;
    }
    const auto& example = result.examples(e);
    const std::string id = absl::StrCat("example-", e);
    absl::StrAppend(html, "<section class=\"example\" id=\"", id, "\"><h3>Example ", e, "</h3>");
    AppendPrediction(example, html);
    AppendTokens({example.tokens().begin(), example.tokens().end()}, html);
    AppendGaps(example, html);
    if (example.has_tree()) {
      auto tree = convert::TreeFromProto(example);
      if (!tree.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("examples[", e, "].", tree.status().message()));
      }
      absl::StrAppend(html, "<section class=\"attribution-tree\" id=\"", id,
                      "-tree\"><h4>"
                      "Attribution tree</h4><div class=\"scroll\">",
                      AttributionTreeSvg(*tree), "</div></section>");
    }
    for (const auto& layer : example.layers()) {
      ATTATTR_RETURN_IF_ERROR(
          AppendLayer(example, layer, absl::StrCat(id, "-layer-", layer.layer()), budget, page));
      ATTATTR_RETURN_IF_ERROR(page.Flush());  // held: one layer's maps, not a whole example's
    }
    absl::StrAppend(html, "</section>");
    ATTATTR_RETURN_IF_ERROR(page.Flush());
  }
  absl::StrAppend(html, "</section>");
  return absl::OkStatus();
}

}  // namespace attattr::report::internal
