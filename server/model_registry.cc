// Loading the served models (see model_registry.h).
#include "model_registry.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "attattr/base/quote.h"

namespace attattr::server {

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Load(
    const std::string& models_dir, const engine::LoadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(models_dir, ec)) {
    return absl::NotFoundError(absl::StrCat("--models: ", models_dir, " is not a directory"));
  }
  auto registry = std::unique_ptr<ModelRegistry>(new ModelRegistry());
  for (const auto& entry : fs::directory_iterator(models_dir, ec)) {
    if (!entry.is_directory() || !fs::exists(entry.path() / "config.json")) continue;
    const std::string name = entry.path().filename().string();
    auto model = engine::Model::Load(entry.path().string(), options);
    if (!model.ok()) {
      return absl::Status(model.status().code(),
                          absl::StrCat("model '", name, "': ", model.status().message()));
    }
    registry->models_[name] = std::move(*model);
  }
  if (registry->models_.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "--models: ", models_dir, " holds no model directory (a subdirectory with config.json)"));
  }
  return registry;
}

absl::StatusOr<const engine::Model*> ModelRegistry::Find(const std::string& name) const {
  auto it = models_.find(name);
  if (it == models_.end()) {
    return absl::NotFoundError(
        absl::StrCat("model: ", QuoteInput(name), " is not served (ListModels)"));
  }
  return it->second.get();
}

std::vector<std::string> ModelRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, m] : models_) names.push_back(name);
  return names;
}

}  // namespace attattr::server
