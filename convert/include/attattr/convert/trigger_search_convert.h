// Trigger search between the engine and the public contract: an engine TriggerSearchReport as a
// v1::TriggerSearchResult. Shared by the server's job executor and the CLI's local mode, so both
// print from the same message. Pure functions.
#pragma once

#include "attattr/engine/trigger_search.h"
#include "attattr/v1/trigger_search.pb.h"

namespace attattr::convert {

void TriggerSearchReportToProto(const engine::TriggerSearchReport& report,
                                v1::TriggerSearchResult* out);

}  // namespace attattr::convert
