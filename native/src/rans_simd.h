// The SIMD rANS kernels, one decoder and one encoder per instruction-set level. Each is defined in
// rans_<level>.cc, compiled with that level's flags, and may only be called on a CPU that has the
// level (rans_dispatch.cc hands them out). Their results are exactly those of the scalar kernels.
// Each has its own code for 32 lanes and calls the scalar kernel for fewer.
#pragma once

#include "rans.h"

namespace qans {

Status rans_decode_sse41(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out);
Status rans_encode_sse41(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length);

Status rans_decode_avx2(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out);
Status rans_encode_avx2(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length);

Status rans_decode_avx512(const uint8_t* payload, size_t length, size_t count, uint32_t lanes, const DecodeTable& table, uint8_t* out);
Status rans_encode_avx512(const uint8_t* symbols, size_t count, uint32_t lanes, const EncodeTable& table, uint8_t* out, size_t* length);

}  // namespace qans
