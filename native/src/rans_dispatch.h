// The rANS kernels for each instruction-set level. Levels without a kernel of their own use the
// best kernel of a lower level, so every level always has a decoder and an encoder.
#pragma once

#include "rans.h"
#include "simd_level.h"

namespace qans {

RansDecodeFn rans_decoder(SimdLevel level);
RansEncodeFn rans_encoder(SimdLevel level);

}  // namespace qans
