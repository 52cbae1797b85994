// libFuzzer entry point for job specs through SubmitJob's validation: the input is a serialized
// v1::JobSpec, as a client sends it, and it goes through JobKinds::Prepare — exactly what
// SubmitJob runs before queueing: common fields, every kind's options, examples inline or from a
// dataset file under --data-root, tokenization with the model's own tokenizer, labels, admission
// control, work caps and export paths. The served model is the shared SST-2 classifier
// (ATTATTR_SHARED_DIR, or the path compiled in); --data-root holds a few dataset files, and
// --export-root an empty directory. Prepare must return a prepared job or a Status with a message
// for anything (no crash, exception, UB, unbounded work), and it never runs a model. Set
// ATTATTR_FUZZ_VERBOSE to print each input's outcome. Initialised once; single-threaded.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "attribution_batcher.h"
#include "jobs/job_kinds.h"
#include "metrics/metrics.h"
#include "model_registry.h"
#include "server_config.h"
#include "service_metrics.h"

namespace {

namespace fs = std::filesystem;
namespace server = attattr::server;

struct Served {
  std::string root;
  std::unique_ptr<server::ModelRegistry> models;
  server::ServerConfig config;
  attattr::metrics::Registry registry;
  std::unique_ptr<server::ServiceMetrics> metrics;
  std::unique_ptr<server::AttributionBatcher> batcher;
  std::unique_ptr<server::JobKinds> kinds;
};

std::string SharedDir() {
  const char* env = std::getenv("ATTATTR_SHARED_DIR");
  return env != nullptr && *env != '\0' ? env : ATTATTR_FUZZ_SHARED_DIR;
}

// The first `lines` lines of a shared dataset file, written under the data root.
void CopyHead(const std::string& from, const std::string& to, int lines) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

Served* Serve() {
  const std::string model = SharedDir() + "/models/sst2-bert-l4-h256";
  if (!fs::exists(model + "/config.json")) {
    std::fprintf(stderr, "job_spec_fuzz: skipped: no shared model at %s\n", model.c_str());
    // 77 is CTest's "skipped"; where ATTATTR_REQUIRE_TEST_DEPS=1 (.ci/run) a missing model fails.
    const char* require = std::getenv("ATTATTR_REQUIRE_TEST_DEPS");
    std::exit(require != nullptr && std::string(require) == "1" ? 1 : 77);
  }
  auto* s = new Served;
  s->root = fs::temp_directory_path() / ("attattr-job-spec-fuzz-" + std::to_string(getpid()));
  static std::string root_to_remove;
  root_to_remove = s->root;
  std::atexit([] {
    std::error_code ignored;
    fs::remove_all(root_to_remove, ignored);
  });
  fs::create_directories(s->root + "/models");
  fs::create_directories(s->root + "/data/sst2");
  fs::create_directories(s->root + "/exports");
  fs::create_directory_symlink(model, s->root + "/models/sst2");
  CopyHead(SharedDir() + "/data/sst2/dev.tsv", s->root + "/data/sst2/dev.tsv", 20);
  CopyHead(SharedDir() + "/data/rte/dev.tsv", s->root + "/data/rte.tsv", 5);
  fs::create_directory_symlink("/etc", s->root + "/data/outside");
  auto models = server::ModelRegistry::Load(s->root + "/models");
  if (!models.ok()) {
    std::fprintf(stderr, "job_spec_fuzz: %s\n", std::string(models.status().message()).c_str());
    std::abort();
  }
  s->models = std::move(*models);
  s->config.models_dir = s->root + "/models";
  s->config.data_root = s->root + "/data";
  s->config.export_root = s->root + "/exports";
  s->metrics = std::make_unique<server::ServiceMetrics>(s->registry);
  s->batcher = std::make_unique<server::AttributionBatcher>(server::AttributionBatcher::Options{},
                                                            [](int) {});
  s->kinds = std::make_unique<server::JobKinds>(
      server::JobKindDeps{*s->models, s->config, *s->batcher, *s->metrics});
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Served* served = Serve();  // never freed: libFuzzer exits without unwinding
  attattr::v1::JobSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto prepared = served->kinds->Prepare(spec);
  static const bool verbose = std::getenv("ATTATTR_FUZZ_VERBOSE") != nullptr;
  if (verbose) {
    std::fprintf(stderr, "%s\n",
                 prepared.ok() ? "prepared" : std::string(prepared.status().message()).c_str());
  }
  if (prepared.ok()) {
    if ((*prepared)->items() <= 0) std::abort();
  } else if (prepared.status().message().empty()) {
    std::abort();
  }
  return 0;
}
