// Whole-tensor block jobs: every block of one tensor frame checked and decoded, or encoded, on the
// thread pool (thread_pool.h). Blocks are independent (spec §9), so the result is the same however
// the blocks are spread over threads; the binding turns per-block results into the error the
// sequential path reports (the first failing block wins, sdk/tensor/frame-decode.ts).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rans.h"
#include "simd_level.h"
#include "status.h"

namespace qans {

// ---- Decoding -----------------------------------------------------------------------------------

// What to do with a block once its checksum matches. Checksum-only blocks are those whose header
// fails a field check: their checksum is still needed, since a mismatch is reported first.
enum class BlockAction : uint8_t { Raw = 0, Const = 1, Rans = 2, ChecksumOnly = 3 };

struct DecodeStream {
  // Null for a stream without a table (no RANS block may then refer to it).
  const DecodeTable* table = nullptr;
  uint32_t width = 8;
  uint8_t* out = nullptr;
  size_t out_length = 0;
};

struct DecodeBlock {
  uint32_t stream = 0;
  // Within the frame bytes: the 16-byte block header and the payload.
  size_t header_offset = 0;
  size_t payload_offset = 0;
  size_t payload_length = 0;
  BlockAction action = BlockAction::ChecksumOnly;
  // Byte 1 of the block header (spec §9): the symbol of a CONST block, the lane code of a RANS
  // block (check_decode_job rejects a code above 5).
  uint8_t header_param = 0;
  size_t count = 0;
  // Where the block's symbols go in its stream's output.
  size_t out_offset = 0;
};

struct DecodeJob {
  const uint8_t* frame = nullptr;
  size_t frame_length = 0;
  std::vector<DecodeStream> streams;
  std::vector<DecodeBlock> blocks;
  SimdLevel level = SimdLevel::Scalar;
};

// Per block: the CRC32C of header bytes 0..11 then the payload (spec §9), and the status: Ok,
// ChecksumMismatch when that CRC is not the stored one (the block is then not decoded), or the
// decoder's failure.
struct DecodeOutcome {
  uint32_t crc = 0;
  Status status = Status::Ok;
};

// Empty when every block lies within the frame, refers to a stream, has its output within that
// stream's buffer and (for RANS) a table and a lane code from 0 to 5; otherwise what is wrong. Run
// before decode_blocks.
std::string check_decode_job(const DecodeJob& job);

// Checks and decodes every block on the pool; outcomes[i] is block i's.
void decode_blocks(const DecodeJob& job, DecodeOutcome* outcomes);

// ---- Histogram ----------------------------------------------------------------------------------

// Adds the count of each byte value to counts[0, 256), as histogram() does, in chunks on the pool.
void histogram_parallel(const uint8_t* symbols, size_t count, uint64_t* counts, SimdLevel level);

// ---- Encoding -----------------------------------------------------------------------------------

struct EncodeStream {
  const uint8_t* symbols = nullptr;
  // Every stream of a job has the same number of symbols.
  size_t count = 0;
  uint32_t width = 8;
  bool has_table = false;
  EncodeTable table;
};

enum class EncodeFailure : uint8_t { None = 0, SymbolTooWide = 1, Rans = 2, OutOfMemory = 3 };

// One block, in the mode and (for RANS) with the lanes spec §15 steps 4 and 6 pick. `payload` is
// malloc'd and owned by the caller afterwards (null for CONST and failed blocks).
struct EncodedBlock {
  BlockAction mode = BlockAction::Raw;
  // Byte 1 of the block header (spec §9): the CONST symbol, the RANS lane code, 0 for RAW.
  uint8_t header_param = 0;
  uint8_t* payload = nullptr;
  size_t length = 0;
  EncodeFailure failure = EncodeFailure::None;
  // The rANS encoder's status when failure is Rans.
  Status status = Status::Ok;
};

struct EncodeJob {
  std::vector<EncodeStream> streams;
  uint32_t log2_block = 17;
  SimdLevel level = SimdLevel::Scalar;
};

// Blocks of the job in block-major order (block j of stream s at j * streams + s).
size_t encode_block_count(const EncodeJob& job);

// Encodes every block on the pool; out has encode_block_count(job) entries.
void encode_blocks(const EncodeJob& job, EncodedBlock* out);

}  // namespace qans
