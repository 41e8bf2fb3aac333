// Error statuses shared by every kernel. Each maps to the QansError code of the same name
// (spec/qans-v1.md §12); the binding turns them into exceptions with that code.
#pragma once

namespace qans {

enum class Status : int {
  Ok = 0,
  BadFinalState = 1,
  BlockOverrun = 2,
  TrailingData = 3,
  BadBlock = 4,
  NonzeroPadding = 5,
  ChecksumMismatch = 6,
  InvalidArgument = 7,
  BadFreqTable = 8,
};

const char* status_code(Status status);

}  // namespace qans
