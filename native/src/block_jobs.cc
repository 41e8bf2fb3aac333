#include "block_jobs.h"

#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "rans_dispatch.h"
#include "thread_pool.h"

namespace qans {

namespace {

constexpr size_t kBlockHeaderSize = 16;

uint32_t load_u32le(const uint8_t* p) {
  uint32_t value;
  std::memcpy(&value, p, 4);
  return value;
}

// a + b <= limit without overflow.
bool fits(size_t a, size_t b, size_t limit) {
  return a <= limit && b <= limit - a;
}

void decode_block(const DecodeJob& job, const DecodeBlock& block, DecodeOutcome* outcome) {
  const uint8_t* header = job.frame + block.header_offset;
  const uint8_t* payload = job.frame + block.payload_offset;
  uint32_t crc = crc32c(header, 12, 0, job.level);
  crc = crc32c(payload, block.payload_length, crc, job.level);
  outcome->crc = crc;
  if (crc != load_u32le(header + 12)) {
    outcome->status = Status::ChecksumMismatch;
    return;
  }
  const DecodeStream& stream = job.streams[block.stream];
  uint8_t* out = stream.out + block.out_offset;
  switch (block.action) {
    case BlockAction::Raw:
      outcome->status = unpack_bits(payload, block.payload_length, block.count, stream.width, out, job.level);
      return;
    case BlockAction::Const:
      std::memset(out, block.header_param, block.count);
      outcome->status = Status::Ok;
      return;
    case BlockAction::Rans: {
      // A code above 5 gives 0 lanes, which the decoders reject (check_decode_job keeps it out).
      const uint32_t lanes = rans_lanes_of_code(block.header_param);
      outcome->status = rans_decoder(job.level)(payload, block.payload_length, block.count, lanes, *stream.table, out);
      return;
    }
    case BlockAction::ChecksumOnly:
      outcome->status = Status::Ok;
      return;
  }
}

void encode_block(const EncodeStream& stream, size_t first, size_t count, SimdLevel level, EncodedBlock* block) {
  const uint8_t* symbols = stream.symbols + first;
  // Spec §15 step 6, as sdk/codec/block-codec.ts encodeBlock: CONST when every symbol is equal.
  bool constant = true;
  for (size_t i = 1; i < count && constant; i++) constant = symbols[i] == symbols[0];
  if (constant) {
    block->mode = BlockAction::Const;
    block->header_param = symbols[0];
    return;
  }
  const size_t raw_length = packed_size(count, stream.width);
  if (stream.has_table) {
    // The reference packs first and so reports a symbol too wide for the stream before any rANS
    // failure; the OR of the symbols gives the same answer without packing.
    uint32_t seen = 0;
    for (size_t i = 0; i < count; i++) seen |= symbols[i];
    if ((seen >> stream.width) != 0) {
      block->failure = EncodeFailure::SymbolTooWide;
      return;
    }
    // Spec §15 step 4: the lanes follow from the block's length.
    const uint32_t lanes = rans_reference_lanes(count);
    uint8_t* rans = static_cast<uint8_t*>(std::malloc(rans_state_bytes(lanes) + 2 * count));
    if (rans == nullptr) {
      block->failure = EncodeFailure::OutOfMemory;
      return;
    }
    size_t length = 0;
    const Status status = rans_encoder(level)(symbols, count, lanes, stream.table, rans, &length);
    if (status != Status::Ok) {
      std::free(rans);
      block->failure = EncodeFailure::Rans;
      block->status = status;
      return;
    }
    if (length < raw_length) {
      if (void* shrunk = std::realloc(rans, length)) rans = static_cast<uint8_t*>(shrunk);
      block->mode = BlockAction::Rans;
      block->header_param = static_cast<uint8_t>(rans_lane_code(lanes));
      block->payload = rans;
      block->length = length;
      return;
    }
    std::free(rans);
  }
  uint8_t* raw = static_cast<uint8_t*>(std::malloc(raw_length));
  if (raw == nullptr) {
    block->failure = EncodeFailure::OutOfMemory;
    return;
  }
  if (pack_bits(symbols, count, stream.width, raw, level) != Status::Ok) {
    std::free(raw);
    block->failure = EncodeFailure::SymbolTooWide;
    return;
  }
  block->mode = BlockAction::Raw;
  block->payload = raw;
  block->length = raw_length;
}

}  // namespace

std::string check_decode_job(const DecodeJob& job) {
  for (size_t i = 0; i < job.blocks.size(); i++) {
    const DecodeBlock& block = job.blocks[i];
    const std::string where = "block " + std::to_string(i) + ": ";
    if (block.stream >= job.streams.size()) return where + "stream " + std::to_string(block.stream) + " does not exist";
    if (!fits(block.header_offset, kBlockHeaderSize, job.frame_length)) return where + "the block header is outside the frame";
    if (!fits(block.payload_offset, block.payload_length, job.frame_length)) return where + "the payload is outside the frame";
    if (block.action == BlockAction::ChecksumOnly) continue;
    const DecodeStream& stream = job.streams[block.stream];
    if (!fits(block.out_offset, block.count, stream.out_length)) return where + "the symbols do not fit the stream's output";
    if (block.action == BlockAction::Rans && stream.table == nullptr) return where + "a RANS block needs a stream with a table";
    if (block.action == BlockAction::Rans && block.header_param > kRansMaxLaneCode) {
      return where + "lane code " + std::to_string(block.header_param) + " is above " + std::to_string(kRansMaxLaneCode);
    }
  }
  return std::string();
}

void decode_blocks(const DecodeJob& job, DecodeOutcome* outcomes) {
  parallel_for(job.blocks.size(), [&](size_t i) { decode_block(job, job.blocks[i], &outcomes[i]); });
}

void histogram_parallel(const uint8_t* symbols, size_t count, uint64_t* counts, SimdLevel level) {
  // Chunks big enough that the per-chunk counts cost nothing, small enough to balance.
  constexpr size_t kChunk = size_t{1} << 20;
  const size_t chunks = (count + kChunk - 1) / kChunk;
  if (chunks <= 1 || thread_count() == 1) return histogram(symbols, count, counts, level);
  std::vector<uint64_t> partial(chunks * 256, 0);
  parallel_for(chunks, [&](size_t c) {
    const size_t first = c * kChunk;
    histogram(symbols + first, count - first < kChunk ? count - first : kChunk, &partial[c * 256], level);
  });
  for (size_t c = 0; c < chunks; c++) {
    for (size_t s = 0; s < 256; s++) counts[s] += partial[c * 256 + s];
  }
}

size_t encode_block_count(const EncodeJob& job) {
  if (job.streams.empty()) return 0;
  const size_t size = size_t{1} << job.log2_block;
  return (job.streams[0].count + size - 1) / size * job.streams.size();
}

void encode_blocks(const EncodeJob& job, EncodedBlock* out) {
  const size_t streams = job.streams.size();
  const size_t size = size_t{1} << job.log2_block;
  parallel_for(encode_block_count(job), [&](size_t i) {
    const EncodeStream& stream = job.streams[i % streams];
    const size_t first = i / streams * size;
    const size_t count = stream.count - first < size ? stream.count - first : size;
    encode_block(stream, first, count, job.level, &out[i]);
  });
}

}  // namespace qans
