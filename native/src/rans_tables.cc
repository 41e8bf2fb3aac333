#include <cstring>

#include "rans.h"

namespace qans {

namespace {

Status check_freqs(const uint32_t* freqs, uint32_t alphabet, uint32_t k) {
  if (k < 10 || k > 15 || alphabet == 0 || alphabet > 256) return Status::BadFreqTable;
  uint64_t sum = 0;
  for (uint32_t s = 0; s < alphabet; s++) {
    if (freqs[s] >= (1u << k)) return Status::BadFreqTable;
    sum += freqs[s];
  }
  return sum == (1u << k) ? Status::Ok : Status::BadFreqTable;
}

}  // namespace

Status build_decode_table(const uint32_t* freqs, uint32_t alphabet, uint32_t k, DecodeTable* table) {
  Status status = check_freqs(freqs, alphabet, k);
  if (status != Status::Ok) return status;
  const uint32_t m = 1u << k;
  table->k = k;
  table->symbols.assign(m, 0);
  table->freq_cum.assign(256, RansFreqCum{0, 0});
  table->freq_cum_symbol.assign(256, 0);
  table->packed12.clear();
  if (k <= 12) table->packed12.assign(m, 0);
  table->freq_bias.clear();
  table->freq_bias.shrink_to_fit();
  uint32_t cum = 0;
  for (uint32_t s = 0; s < alphabet; s++) {
    const uint32_t f = freqs[s];
    if (f != 0) {
      table->freq_cum[s] = RansFreqCum{f, cum};
      table->freq_cum_symbol[s] = f | uint64_t{cum} << 32 | uint64_t{s} << 48;
    }
    std::memset(table->symbols.data() + cum, static_cast<int>(s), f);
    if (k <= 12) {
      for (uint32_t slot = cum; slot < cum + f; slot++) table->packed12[slot] = f | ((slot - cum) << 12) | (s << 24);
    }
    cum += f;
  }
  return Status::Ok;
}

Status build_encode_table(const uint32_t* freqs, uint32_t alphabet, uint32_t k, EncodeTable* table) {
  Status status = check_freqs(freqs, alphabet, k);
  if (status != Status::Ok) return status;
  table->k = k;
  uint32_t cum = 0;
  for (uint32_t s = 0; s < 256; s++) {
    table->freq[s] = s < alphabet ? freqs[s] : 0;
    table->cum[s] = cum;
    cum += table->freq[s];
  }
  return Status::Ok;
}

const char* status_code(Status status) {
  switch (status) {
    case Status::Ok: return "OK";
    case Status::BadFinalState: return "BAD_FINAL_STATE";
    case Status::BlockOverrun: return "BLOCK_OVERRUN";
    case Status::TrailingData: return "TRAILING_DATA";
    case Status::BadBlock: return "BAD_BLOCK";
    case Status::NonzeroPadding: return "NONZERO_PADDING";
    case Status::ChecksumMismatch: return "CHECKSUM_MISMATCH";
    case Status::InvalidArgument: return "INVALID_ARGUMENT";
    case Status::BadFreqTable: return "BAD_FREQ_TABLE";
  }
  return "INVALID_ARGUMENT";
}

}  // namespace qans
