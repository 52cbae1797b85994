// `attattr explain`: attributes one example (--text/--text-pair) or every line of a dataset file
// (--input) with an in-process engine or, with --server, an attattr-server; prints JSON (one object
// per example and line) or text, the same bytes either way. With --tree, each result also carries
// its attribution tree (DESIGN.md §1), optionally written as DOT/SVG files (--tree-dot/--tree-svg).
// Parsing of --target/--layers is shared with `submit` (attribution_request.h). Single-threaded.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "attattr/engine/attention_attribution.h"
#include "attattr/engine/attribution_tree.h"
#include "attattr/engine/quadrature.h"
#include "attribution_request.h"  // ParseTarget, ParseLayers
#include "grpc_call.h"

namespace attattr::client {

struct ExplainFlags {
  std::string model;  // model directory
  std::string text;
  std::string text_pair;  // empty = single sentence
  std::string input;      // dataset file instead of --text
  int steps = engine::kDefaultQuadratureSteps;
  std::string rule = std::string(engine::QuadratureRuleName(engine::kDefaultQuadratureRule));
  std::string target = "predicted";
  std::string precision;         // "" = fp32 in-process, the server's default with --server
  std::string weights = "fp32";  // the in-process model's weight storage: fp32 or bf16
  std::string layers;            // "0,3"; empty = all
  std::string format = "json";   // json | text
  int batch = 4;                 // examples per engine batch
  int top_k = 5;                 // connections per layer in text output
  int threads = 0;               // intra-op threads, 0 = all cores
  std::string server;        // HOST:PORT of an attattr-server; empty = run the engine in-process
  ChannelSecurity security;  // how to reach `server` (the global TLS and token flags)
  double deadline = 300;     // --deadline-seconds: each call to the server
  bool tree = false;         // add each example's attribution tree to the output
  double tau = engine::kDefaultTreeTau;  // the tree's threshold τ, in (0, 1]
  std::string tree_dot;  // write the tree as Graphviz DOT to this file (implies --tree)
  std::string tree_svg;  // write the tree as SVG to this file (implies --tree)
};

// Where the tree of example `index` (0-based) of `count` goes: `path` itself for one example,
// else `path` with ".<index+1>" before its extension (tree.svg -> tree.1.svg, tree.2.svg, ...).
std::string NumberedTreePath(const std::string& path, size_t index, size_t count);

// Runs the command. InvalidArgument for bad flag values (the caller prints usage and exits 2);
// other errors (model cannot be loaded, input unreadable) exit 1.
absl::Status RunExplain(const ExplainFlags& flags, std::ostream& out, std::ostream& err);

}  // namespace attattr::client
