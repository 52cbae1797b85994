// The HTML job report in a real browser, end to end: the real attattr-server on the shared SST-2
// model runs an ATTRIBUTION job with full matrices, attention and the attribution tree; the report
// is fetched from GET /jobs/{id}/report on the server's HTTP port (cpp-httplib) and written by
// `attattr report`, which must give the same bytes; Debian's headless Chromium then parses it
// (--dump-dom: the expected sections, maps, tree and tables are in the rendered DOM) and draws it
// (--screenshot: decoded with libpng, it must hold many colours, including the attribution reds
// and blues and the attention greens). The screenshot is kept under the build directory and its
// path printed. Skips when chromium or ../shared is missing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <png.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "attattr/report/html_report.h"
#include "support/job_rpc.h"
#include "support/server_process.h"
#include "support/test_paths.h"

namespace {

namespace v1 = attattr::v1;
namespace fs = std::filesystem;
using ::attattr::testing::BinDir;
using ::attattr::testing::FreeLoopbackPort;
using ::attattr::testing::ReadFile;
using ::attattr::testing::RunCommand;
using ::attattr::testing::ServerProcess;
using ::attattr::testing::Sst2ModelDir;

constexpr int kLayers = 4;  // the shared model: 4 layers x 8 heads
constexpr int kHeads = 8;

// Debian's chromium (or $ATTATTR_CHROMIUM); empty when not installed.
std::string FindChromium() {
  if (const char* env = std::getenv("ATTATTR_CHROMIUM"); env != nullptr && *env != '\0') {
    return env;
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    for (const char* name : {"chromium", "chromium-browser"}) {
      const fs::path candidate = fs::path(dir) / name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "";
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

struct Pixels {
  bool ok = false;
  std::string error;
  int width = 0;
  int height = 0;
  std::vector<uint8_t> rgba;
};

// Decodes a PNG with libpng's simplified API.
Pixels DecodePng(const std::string& path) {
  Pixels out;
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    out.error = image.message;
    return out;
  }
  image.format = PNG_FORMAT_RGBA;
  out.rgba.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgba.data(), 0, nullptr)) {
    out.error = image.message;
    png_image_free(&image);
    return out;
  }
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.ok = true;
  return out;
}

// Runs headless Chromium on `html_path`: the rendered DOM (--dump-dom) and a 1280x2000 screenshot
// saved at `png_path`. Failures are test failures.
struct Rendered {
  std::string dom;
  Pixels pixels;
};
Rendered RenderInChromium(const std::string& chromium, const std::string& html_path,
                          const std::string& png_path) {
  Rendered out;
  const std::string profile = attattr::testing::MakeTempDir("attattr-chromium");
  const std::string browser = "timeout 120 " + Quote(chromium) +
                              " --headless --no-sandbox --disable-gpu --hide-scrollbars "
                              "--user-data-dir=" +
                              Quote(profile) + " ";
  const std::string url = "file://" + html_path;
  const auto dom = RunCommand(browser + "--dump-dom " + Quote(url) + " 2>/dev/null");
  EXPECT_EQ(dom.exit_code, 0);
  out.dom = dom.out;
  fs::remove(png_path);
  const auto shot = RunCommand(browser + "--window-size=1280,2000 --screenshot=" + Quote(png_path) +
                               " " + Quote(url) + " 2>&1");
  EXPECT_EQ(shot.exit_code, 0) << shot.out;
  out.pixels = DecodePng(png_path);
  EXPECT_TRUE(out.pixels.ok) << png_path << ": " << out.pixels.error;
  std::error_code ec;
  fs::remove_all(profile, ec);
  return out;
}

struct PixelStats {
  size_t colours = 0;
  int64_t total = 0;
  int64_t ink = 0;    // darker than the background
  int64_t red = 0;    // positive attribution
  int64_t blue = 0;   // negative attribution
  int64_t green = 0;  // attention, importance
};

PixelStats Measure(const Pixels& pixels) {
  PixelStats s;
  std::set<uint32_t> colours;
  for (size_t k = 0; k + 3 < pixels.rgba.size(); k += 4) {
    const int r = pixels.rgba[k], g = pixels.rgba[k + 1], b = pixels.rgba[k + 2];
    colours.insert((r << 16) | (g << 8) | b);
    if (r + g + b < 3 * 235) ++s.ink;
    if (r > g + 60 && r > b + 40) ++s.red;
    if (b > r + 60 && b > g + 20) ++s.blue;
    if (g > r + 40 && g > b + 20) ++s.green;
  }
  s.colours = colours.size();
  s.total = static_cast<int64_t>(pixels.width) * pixels.height;
  return s;
}

fs::path ArtifactDir() {
  const fs::path dir = fs::path(BinDir()).parent_path() / "test-artifacts" / "report_browser";
  fs::create_directories(dir);
  return dir;
}

TEST(ReportBrowserTest, AttributionReportRendersInHeadlessChromium) {
  ATTATTR_SKIP_IF_MISSING(Sst2ModelDir());
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    ATTATTR_MISSING_DEPENDENCY(
        "chromium not installed (Debian package `chromium`, in scripts/packages.txt; or set "
        "ATTATTR_CHROMIUM)");
  }
  const int http_port = FreeLoopbackPort();
  ASSERT_GT(http_port, 0);
  ServerProcess server({{"sst2", Sst2ModelDir()}},
                       {"--metrics-listen=127.0.0.1:" + std::to_string(http_port)});
  ASSERT_TRUE(server.ok());
  auto stub = attattr::testing::Connect(server.address());

  v1::JobSpec spec;
  spec.set_model("sst2");
  auto* a = spec.mutable_attribution();
  for (const char* text : {"a gorgeous , witty , seductive movie .",
                           "the plot is <b>thin</b> & the acting is dull ."}) {
    a->mutable_examples()->mutable_inline_()->add_examples()->set_text(text);
  }
  a->mutable_options()->set_steps(4);
  a->mutable_result()->set_full_matrices(true);
  a->mutable_result()->set_attention(true);
  a->mutable_result()->set_top_k(5);
  a->mutable_result()->set_tree(true);
  v1::Job job;
  auto submitted = attattr::testing::Submit(*stub, spec, &job);
  ASSERT_TRUE(submitted.ok()) << submitted.error_message();
  job = attattr::testing::WaitDone(*stub, job.name());
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.error_message();
  const auto result = attattr::testing::ReadResult(*stub, job.name());
  ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  const int examples = result.result.attribution().examples_size();
  ASSERT_EQ(examples, 2);
  // ResultOptions.tree: every example comes with its attribution tree, drawn in the report.
  int trees = 0;
  for (const auto& e : result.result.attribution().examples()) trees += e.has_tree() ? 1 : 0;
  EXPECT_EQ(trees, examples);

  // The server's HTTP port: the report, and a plain 404 for an unknown job.
  httplib::Client http("127.0.0.1", http_port);
  http.set_read_timeout(60, 0);
  auto got = http.Get(("/" + job.name() + "/report").c_str());
  ASSERT_TRUE(got) << "GET /" << job.name()
                   << "/report failed: " << httplib::to_string(got.error());
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->get_header_value("Content-Type"), "text/html; charset=utf-8");
  const std::string html = got->body;
  EXPECT_NE(html.find("id=\"attribution\""), std::string::npos);
  auto missing = http.Get("/jobs/0000000000000000/report");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_NE(missing->body.find("job 'jobs/0000000000000000' not found"), std::string::npos);
  EXPECT_EQ(missing->get_header_value("Content-Type").rfind("text/plain", 0), 0u);

  // A job that has not finished (or only just has) gets its status page; unknown jobs exit 5.
  v1::Job second;
  ASSERT_TRUE(attattr::testing::Submit(*stub, spec, &second).ok());
  auto status_page = http.Get(("/" + second.name() + "/report").c_str());
  ASSERT_TRUE(status_page);
  EXPECT_EQ(status_page->status, 200);
  EXPECT_NE(status_page->body.find("id=\"job-summary\""), std::string::npos);
  EXPECT_NE(status_page->body.find(second.name()), std::string::npos);
  const auto unknown = RunCommand(BinDir() +
                                  "/attattr report jobs/0000000000000000 -o /dev/null "
                                  "--server " +
                                  server.address() + " 2>&1");
  EXPECT_EQ(unknown.exit_code, 5) << unknown.out;

  // The client writes the same page.
  const fs::path out_dir = ArtifactDir();
  const std::string html_path = (out_dir / "report.html").string();
  const auto cli = RunCommand(BinDir() + "/attattr report " + job.name() + " -o " +
                              Quote(html_path) + " --server " + server.address() + " 2>&1");
  ASSERT_EQ(cli.exit_code, 0) << cli.out;
  EXPECT_EQ(ReadFile(html_path), html) << "attattr report and /jobs/{id}/report differ";

  // Chromium parses it (the rendered DOM shows the parser's own additions, e.g. <tbody>, so this
  // is not the file read back) and draws it.
  const std::string png_path = (out_dir / "report.png").string();
  const Rendered rendered = RenderInChromium(chromium, html_path, png_path);
  const std::string& d = rendered.dom;
  ASSERT_NE(d.find("<body>"), std::string::npos) << d.substr(0, 500);
  EXPECT_NE(d.find("<tbody>"), std::string::npos);
  for (const char* hook :
       {"id=\"job-summary\"", "id=\"attribution\"", "id=\"example-0\"", "id=\"example-1\"",
        "class=\"prediction\"", "class=\"tokens\"", "class=\"completeness-gaps\"",
        "class=\"top-connections\"", "class=\"head-maps\" open=\"\""}) {
    EXPECT_NE(d.find(hook), std::string::npos) << hook;
  }
  EXPECT_EQ(Count(d, "class=\"layer\""), examples * kLayers);
  EXPECT_EQ(Count(d, "class=\"heat-map attribution-map\""), examples * kLayers);
  EXPECT_EQ(Count(d, "class=\"heat-map attention-map\""), examples * kLayers);
  EXPECT_EQ(Count(d, "class=\"heat-map head-attribution\""), examples * kLayers * kHeads);
  EXPECT_EQ(Count(d, "class=\"heat-map head-attention\""), examples * kLayers * kHeads);
  EXPECT_EQ(Count(d, "class=\"attribution-tree-svg\""), trees);
  // The example's "<b>" reached the page as text, never as markup.
  EXPECT_EQ(d.find("<b>thin"), std::string::npos);
  EXPECT_NE(d.find("&lt;"), std::string::npos);
  EXPECT_EQ(d.find("<script"), std::string::npos);

  // The screenshot is far from blank: many colours, the attribution reds and blues, the
  // attention greens.
  ASSERT_TRUE(rendered.pixels.ok);
  EXPECT_EQ(rendered.pixels.width, 1280);
  EXPECT_EQ(rendered.pixels.height, 2000);
  const PixelStats px = Measure(rendered.pixels);
  std::cout << "screenshot: " << png_path << " (" << px.colours << " colours, "
            << (100.0 * px.ink / px.total) << " % non-background)\n";
  EXPECT_GE(px.colours, 200u);
  EXPECT_GE(px.ink, px.total / 20);
  EXPECT_GT(px.red, 100);
  EXPECT_GT(px.blue, 100);
  EXPECT_GT(px.green, 100);
}

// Head-importance and trigger-search reports (hand-built results; no server or model needed): the
// importance maps, correlations, pruning-curve chart and trigger tables render.
TEST(ReportBrowserTest, HeadImportanceAndTriggerReportsRender) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    ATTATTR_MISSING_DEPENDENCY(
        "chromium not installed (Debian package `chromium`, in scripts/packages.txt; or set "
        "ATTATTR_CHROMIUM)");
  }
  v1::Job job;
  job.set_name("jobs/heads");
  job.set_kind(v1::HEAD_IMPORTANCE);
  job.set_state(v1::SUCCEEDED);
  v1::JobResult result;
  auto* hi = result.mutable_head_importance();
  hi->set_num_layers(kLayers);
  hi->set_num_heads(kHeads);
  uint32_t seed = 7;  // a small LCG: varied, reproducible scores
  for (auto method : {v1::IMPORTANCE_METHOD_ATTRIBUTION, v1::IMPORTANCE_METHOD_ATTENTION,
                      v1::IMPORTANCE_METHOD_TAYLOR, v1::IMPORTANCE_METHOD_RANDOM}) {
    auto* m = hi->add_methods();
    m->set_method(method);
    for (int k = 0; k < kLayers * kHeads; ++k) {
      seed = seed * 1103515245u + 12345u;
      m->add_importance(((seed >> 8) % 1000) / 1000.0);
    }
    for (int r = 0; r <= 100; r += 10) {
      auto* p = m->add_curve();
      p->set_ratio(r);
      p->set_accuracy(0.85 - (0.35 * r / 100.0) * (1.0 + 0.2 * static_cast<int>(method)) / 2);
    }
  }
  auto* c = hi->add_correlations();
  c->set_a(v1::IMPORTANCE_METHOD_ATTRIBUTION);
  c->set_b(v1::IMPORTANCE_METHOD_TAYLOR);
  c->set_pearson(0.6);
  c->set_spearman(0.55);
  auto html = attattr::report::RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  const fs::path out_dir = ArtifactDir();
  const std::string html_path = (out_dir / "heads_report.html").string();
  std::ofstream(html_path, std::ios::binary) << *html;
  const Rendered heads =
      RenderInChromium(chromium, html_path, (out_dir / "heads_report.png").string());
  EXPECT_EQ(Count(heads.dom, "class=\"heat-map importance-map\""), 4);
  EXPECT_NE(heads.dom.find("class=\"correlations\""), std::string::npos);
  EXPECT_NE(heads.dom.find("id=\"pruning-curves\""), std::string::npos);
  EXPECT_NE(heads.dom.find("class=\"pruning-chart\""), std::string::npos);
  EXPECT_NE(heads.dom.find("<polyline"), std::string::npos);
  ASSERT_TRUE(heads.pixels.ok);
  const PixelStats hp = Measure(heads.pixels);
  EXPECT_GE(hp.colours, 50u);
  EXPECT_GT(hp.green, 100);

  job.set_name("jobs/triggers");
  job.set_kind(v1::TRIGGER_SEARCH);
  result.Clear();
  auto* pattern = result.mutable_trigger_search()->add_patterns();
  for (const char* t : {"no", "<img src=x>"}) pattern->add_tokens(t);
  pattern->set_layer(2);
  pattern->set_head(5);
  pattern->set_score(0.07);
  for (const char* label : {"negative", "positive"}) {
    for (auto* list :
         {pattern->mutable_clean(), pattern->mutable_attacked(), pattern->mutable_control()}) {
      auto* a = list->Add();
      a->set_label(label);
      a->set_accuracy(list == pattern->mutable_attacked() ? 0.1 : 0.85);
      a->set_examples(50);
    }
  }
  html = attattr::report::RenderJobReport(job, &result);
  ASSERT_TRUE(html.ok()) << html.status();
  const std::string trigger_path = (out_dir / "triggers_report.html").string();
  std::ofstream(trigger_path, std::ios::binary) << *html;
  const Rendered triggers =
      RenderInChromium(chromium, trigger_path, (out_dir / "triggers_report.png").string());
  EXPECT_EQ(Count(triggers.dom, "class=\"trigger-pattern\""), 1);
  EXPECT_EQ(triggers.dom.find("<img"), std::string::npos);
  EXPECT_NE(triggers.dom.find("&lt;img src=x&gt;"), std::string::npos);
  ASSERT_TRUE(triggers.pixels.ok);
  EXPECT_GT(Measure(triggers.pixels).ink, 1000);
}

}  // namespace
