// The one pair of early-return macros for absl::Status / absl::StatusOr, used by every library
// and program of the project (Abseil 20220623 ships none publicly). Only control flow: they never
// rewrite the status; code that adds context to an error spells that out by hand.
//
//   ATTATTR_RETURN_IF_ERROR(store.Put(record));          // returns the non-OK Status
//   ATTATTR_ASSIGN_OR_RETURN(auto model, Model::Load(dir));  // model is the value, not StatusOr
//
// The enclosing function must return absl::Status or an absl::StatusOr<T>.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attattr {

// The status of a call returning either absl::Status or absl::StatusOr<T>, for code generic over
// both (a retry loop, a timing wrapper).
inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& result) {
  return result.status();
}

}  // namespace attattr

#define ATTATTR_STATUS_CONCAT_INNER_(a, b) a##b
#define ATTATTR_STATUS_CONCAT_(a, b) ATTATTR_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) once and returns it from the enclosing function unless OK.
#define ATTATTR_RETURN_IF_ERROR(expr)                                     \
  do {                                                                    \
    if (::absl::Status attattr_status_ = (expr); !attattr_status_.ok()) { \
      return attattr_status_;                                             \
    }                                                                     \
  } while (false)

// Evaluates `rexpr` (an absl::StatusOr<T>) once; returns its status unless OK, otherwise moves
// the value into `lhs` (a declaration such as `auto x` or an existing lvalue). Expands to several
// statements: not for use as the body of an unbraced if/else.
#define ATTATTR_ASSIGN_OR_RETURN(lhs, rexpr) \
  ATTATTR_ASSIGN_OR_RETURN_IMPL_(ATTATTR_STATUS_CONCAT_(attattr_statusor_, __LINE__), lhs, rexpr)

#define ATTATTR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  if (!statusor.ok()) return std::move(statusor).status();   \
  lhs = std::move(statusor).value()
