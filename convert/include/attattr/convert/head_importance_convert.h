// Head importance between the engine and the public contract: the ImportanceMethod enum both ways
// and an engine HeadImportanceStudy as a v1::HeadImportanceResult. Shared by the server's job
// executor and the CLI's local mode, so both print from the same message. Pure functions.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "attattr/engine/head_importance.h"
#include "attattr/engine/head_importance_study.h"
#include "attattr/v1/head_importance.pb.h"

namespace attattr::convert {

std::optional<engine::HeadRanking> HeadRankingFromProto(v1::ImportanceMethod method);
v1::ImportanceMethod HeadRankingToProto(engine::HeadRanking ranking);

// InvalidArgument unless num_layers and num_heads are in [0, 100000], their product at most
// 1,000,000, and every method's importance holds exactly L·H values: a result from a server or a
// file is checked before renderers index and loop over it.
absl::Status CheckHeadImportanceShape(const v1::HeadImportanceResult& result);

// `export_path` is what the result reports as the export location (the caller's relative path).
void HeadImportanceStudyToProto(const engine::HeadImportanceStudy& study,
                                const std::string& export_path, v1::HeadImportanceResult* out);

}  // namespace attattr::convert
