// The models a server serves: every subdirectory of the models root that holds a config.json is
// loaded at start-up and named by its directory name. Immutable after Load(); safe to read from
// any thread. Does not reload or unload models.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attattr/engine/model.h"

namespace attattr::server {

class ModelRegistry {
 public:
  // Loads every model under `models_dir` with `options` (the device). Fails when the directory is
  // missing, holds no model, or a model fails to load (the message names the model).
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Load(
      const std::string& models_dir, const engine::LoadOptions& options = {});

  // NotFound naming the model when it is not served.
  absl::StatusOr<const engine::Model*> Find(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  ModelRegistry() = default;
  std::map<std::string, std::unique_ptr<engine::Model>> models_;
};

}  // namespace attattr::server
