// The JavaScript binding (nan). Every function takes TypedArrays, checks every argument before
// touching memory, and reports failures as an Error whose `code` is the QANS error code
// (status_code() of the kernel's status). All are synchronous except the *Async block jobs, which
// run on the thread pool and call back on the JavaScript thread. sdk/native/addon.ts loads it;
// sdk/codec/kernels.ts wraps it in the SDK's Kernels interface, sdk/codec/block-jobs.ts the jobs.
#include <nan.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "binding_common.h"
#include "block_jobs.h"
#include "cpu.h"
#include "kernels.h"
#include "memory.h"
#include "rans.h"
#include "rans_dispatch.h"
#include "thread_pool.h"
#include "weight_binding.h"

namespace qans {
namespace {

// Bumped whenever the functions below change shape; sdk/native/addon.ts refuses another value.
constexpr int kAbiVersion = 5;

// ---- Arguments ----------------------------------------------------------------------------------

template <typename T>
struct Array {
  T* data = nullptr;
  size_t length = 0;  // elements
};

void* view_data(v8::Local<v8::ArrayBufferView> view) {
  v8::Local<v8::ArrayBuffer> buffer = view->Buffer();
#if NODE_MAJOR_VERSION >= 20
  char* base = static_cast<char*>(buffer->Data());
#else
  char* base = static_cast<char*>(buffer->GetBackingStore()->Data());
#endif
  // A detached or empty buffer may have no memory; kernels never dereference zero-length arrays,
  // but give them a valid address all the same.
  static uint64_t empty = 0;
  if (base == nullptr) return &empty;
  return base + view->ByteOffset();
}

bool as_uint8(v8::Local<v8::Value> value, Array<uint8_t>* out) {
  if (!value->IsUint8Array()) return false;
  v8::Local<v8::Uint8Array> view = value.As<v8::Uint8Array>();
  out->length = view->Length();
  out->data = static_cast<uint8_t*>(view_data(view));
  return true;
}

bool as_uint32(v8::Local<v8::Value> value, Array<uint32_t>* out) {
  if (!value->IsUint32Array()) return false;
  v8::Local<v8::Uint32Array> view = value.As<v8::Uint32Array>();
  out->length = view->Length();
  out->data = static_cast<uint32_t*>(view_data(view));
  return true;
}

bool as_float32(v8::Local<v8::Value> value, Array<float>* out) {
  if (!value->IsFloat32Array()) return false;
  v8::Local<v8::Float32Array> view = value.As<v8::Float32Array>();
  out->length = view->Length();
  out->data = static_cast<float*>(view_data(view));
  return true;
}

std::string to_string(v8::Local<v8::Value> value) {
  Nan::Utf8String text(value);
  return *text ? std::string(*text, static_cast<size_t>(text.length())) : std::string();
}

// An ArrayBuffer whose memory is not zeroed, for results the kernels overwrite completely: zeroing
// (and faulting in) fresh memory first would cost as much as the kernels themselves.
void free_memory(void* memory, size_t, void*) {
  std::free(memory);
}

// False, with a RangeError thrown, when the memory is not there.
bool new_buffer(size_t length, v8::Local<v8::ArrayBuffer>* buffer) {
  void* data = std::malloc(length > 0 ? length : 1);
  if (data == nullptr) {
    Nan::ThrowRangeError("qans native: out of memory");
    return false;
  }
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(data, length, free_memory, nullptr);
  *buffer = v8::ArrayBuffer::New(v8::Isolate::GetCurrent(), std::move(store));
  return true;
}

bool new_uint8(size_t length, v8::Local<v8::Uint8Array>* array) {
  v8::Local<v8::ArrayBuffer> buffer;
  if (!new_buffer(length, &buffer)) return false;
  *array = v8::Uint8Array::New(buffer, 0, length);
  return true;
}

uint8_t* uint8_data(v8::Local<v8::Uint8Array> array) {
  return static_cast<uint8_t*>(view_data(array));
}

#define REQUIRE_ARGS(n, usage)                                                     \
  do {                                                                             \
    if (info.Length() < (n)) return throw_invalid(std::string("usage: ") + usage); \
  } while (0)

// ---- rANS ---------------------------------------------------------------------------------------

const char* rans_message(Status status) {
  switch (status) {
    case Status::BadBlock: return "RANS payload length is not an even number from 4 x lanes to 4 x lanes + 2 x count";
    case Status::BadFinalState: return "a rANS state is outside [2^15, 2^31) or a lane does not end at 2^15";
    case Status::BlockOverrun: return "a renormalisation word is needed past the end of the RANS payload";
    case Status::TrailingData: return "RANS payload bytes remain after the last symbol";
    case Status::BadFreqTable: return "frequency table does not sum to 2^k with every frequency below 2^k";
    case Status::InvalidArgument: return "a symbol has frequency 0 in the table";
    default: return "rANS kernel failed";
  }
}

// The decoding lookups of one stream's table, built once and used for each of its blocks.
class DecodeTableWrap : public Nan::ObjectWrap {
 public:
  DecodeTable table;

  static void Init(v8::Isolate* isolate) {
    v8::Local<v8::FunctionTemplate> tpl = Nan::New<v8::FunctionTemplate>(New);
    tpl->SetClassName(Nan::New("RansDecodeTable").ToLocalChecked());
    tpl->InstanceTemplate()->SetInternalFieldCount(1);
    template_ = new Nan::Persistent<v8::FunctionTemplate>(tpl);
    node::AddEnvironmentCleanupHook(isolate, Cleanup, nullptr);
  }

  static bool IsInstance(v8::Local<v8::Value> value) {
    return template_ != nullptr && value->IsObject() && Nan::New(*template_)->HasInstance(value);
  }

  static v8::MaybeLocal<v8::Object> Create(int argc, v8::Local<v8::Value>* argv) {
    v8::Local<v8::Function> constructor;
    if (!Nan::GetFunction(Nan::New(*template_)).ToLocal(&constructor)) return v8::MaybeLocal<v8::Object>();
    return Nan::NewInstance(constructor, argc, argv);
  }

  ~DecodeTableWrap() override {
    Nan::AdjustExternalMemory(-static_cast<int>(external_bytes_));
  }

 private:
  // One template per thread: each worker thread has its own isolate and loads its own instance.
  static thread_local Nan::Persistent<v8::FunctionTemplate>* template_;
  size_t external_bytes_ = 0;

  static void Cleanup(void*) {
    if (template_ != nullptr) {
      template_->Reset();
      delete template_;
      template_ = nullptr;
    }
  }

  // new RansDecodeTable(freqs: Uint32Array, k: number)
  static NAN_METHOD(New) {
    if (!info.IsConstructCall()) return throw_invalid("RansDecodeTable must be called with new");
    REQUIRE_ARGS(2, "new RansDecodeTable(freqs: Uint32Array, k: number)");
    Array<uint32_t> freqs;
    uint64_t k;
    if (!as_uint32(info[0], &freqs) || freqs.length < 1 || freqs.length > 256) {
      return throw_invalid("decode table: freqs must be a Uint32Array of 1 to 256 frequencies");
    }
    if (!as_count(info[1], 64, &k)) return throw_invalid("decode table: k must be an integer");
    auto* wrap = new DecodeTableWrap();
    const Status status = build_decode_table(freqs.data, static_cast<uint32_t>(freqs.length), static_cast<uint32_t>(k), &wrap->table);
    if (status != Status::Ok) {
      delete wrap;
      return throw_status(status, std::string("decode table: ") + rans_message(status));
    }
    wrap->external_bytes_ = wrap->table.freq_bias.size() * 4 + wrap->table.symbols.size() + wrap->table.packed12.size() * 4;
    Nan::AdjustExternalMemory(static_cast<int>(wrap->external_bytes_));
    wrap->Wrap(info.This());
    info.GetReturnValue().Set(info.This());
  }
};

thread_local Nan::Persistent<v8::FunctionTemplate>* DecodeTableWrap::template_ = nullptr;

// makeDecodeTable(freqs: Uint32Array, k: number): RansDecodeTable
NAN_METHOD(MakeDecodeTable) {
  v8::Local<v8::Value> argv[2] = {info.Length() > 0 ? info[0] : Nan::Undefined().As<v8::Value>(),
                                  info.Length() > 1 ? info[1] : Nan::Undefined().As<v8::Value>()};
  v8::Local<v8::Object> table;
  if (DecodeTableWrap::Create(2, argv).ToLocal(&table)) info.GetReturnValue().Set(table);
}

// A rANS lane count: 32, 16, 8, 4, 2 or 1 (spec §10.1).
bool as_lanes(v8::Local<v8::Value> value, uint32_t* lanes) {
  uint64_t n;
  if (!as_count(value, kRansLanes, &n) || !rans_lanes_valid(static_cast<uint32_t>(n))) return false;
  *lanes = static_cast<uint32_t>(n);
  return true;
}

// ransDecode(table: RansDecodeTable, payload: Uint8Array, count: number, lanes: number, out: Uint8Array): void
NAN_METHOD(RansDecode) {
  REQUIRE_ARGS(5, "ransDecode(table, payload: Uint8Array, count: number, lanes: number, out: Uint8Array)");
  if (!DecodeTableWrap::IsInstance(info[0])) return throw_invalid("ransDecode: table must come from makeDecodeTable");
  Array<uint8_t> payload, out;
  uint64_t count;
  uint32_t lanes;
  if (!as_uint8(info[1], &payload)) return throw_invalid("ransDecode: payload must be a Uint8Array");
  if (!as_count(info[2], kMaxSafeInteger, &count)) return throw_invalid("ransDecode: count must be a non-negative integer");
  if (!as_lanes(info[3], &lanes)) return throw_invalid("ransDecode: lanes must be 32, 16, 8, 4, 2 or 1");
  if (!as_uint8(info[4], &out)) return throw_invalid("ransDecode: out must be a Uint8Array");
  if (out.length < count) return throw_invalid("ransDecode: out holds fewer than count symbols");
  const DecodeTableWrap* wrap = Nan::ObjectWrap::Unwrap<DecodeTableWrap>(info[0].As<v8::Object>());
  const Status status =
      rans_decoder(current_simd_level())(payload.data, payload.length, static_cast<size_t>(count), lanes, wrap->table, out.data);
  if (status != Status::Ok) return throw_status(status, rans_message(status));
}

// ransEncode(symbols: Uint8Array, freqs: Uint32Array, k: number, lanes: number): Uint8Array
NAN_METHOD(RansEncode) {
  REQUIRE_ARGS(4, "ransEncode(symbols: Uint8Array, freqs: Uint32Array, k: number, lanes: number)");
  Array<uint8_t> symbols;
  Array<uint32_t> freqs;
  uint64_t k;
  uint32_t lanes;
  if (!as_uint8(info[0], &symbols)) return throw_invalid("ransEncode: symbols must be a Uint8Array");
  if (!as_uint32(info[1], &freqs) || freqs.length < 1 || freqs.length > 256) {
    return throw_invalid("ransEncode: freqs must be a Uint32Array of 1 to 256 frequencies");
  }
  if (!as_count(info[2], 64, &k)) return throw_invalid("ransEncode: k must be an integer");
  if (!as_lanes(info[3], &lanes)) return throw_invalid("ransEncode: lanes must be 32, 16, 8, 4, 2 or 1");
  EncodeTable table;
  Status status = build_encode_table(freqs.data, static_cast<uint32_t>(freqs.length), static_cast<uint32_t>(k), &table);
  if (status != Status::Ok) return throw_status(status, std::string("ransEncode: ") + rans_message(status));
  // Encoded into the worst-case size, then shrunk in place to the payload's length.
  const size_t worst = rans_state_bytes(lanes) + 2 * symbols.length;
  uint8_t* data = static_cast<uint8_t*>(std::malloc(worst));
  if (data == nullptr) return Nan::ThrowRangeError("ransEncode: out of memory");
  size_t length = 0;
  status = rans_encoder(current_simd_level())(symbols.data, symbols.length, lanes, table, data, &length);
  if (status != Status::Ok) {
    std::free(data);
    return throw_status(status, std::string("ransEncode: ") + rans_message(status));
  }
  if (void* shrunk = std::realloc(data, length)) data = static_cast<uint8_t*>(shrunk);
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(data, length, free_memory, nullptr);
  info.GetReturnValue().Set(v8::Uint8Array::New(v8::ArrayBuffer::New(v8::Isolate::GetCurrent(), std::move(store)), 0, length));
}

// ---- CRC32C, histogram, bit packing -------------------------------------------------------------

// crc32c(data: Uint8Array, previous: number): number
NAN_METHOD(Crc32c) {
  Array<uint8_t> data;
  if (info.Length() < 1 || !as_uint8(info[0], &data)) return throw_invalid("crc32c: data must be a Uint8Array");
  uint32_t previous = 0;
  if (info.Length() > 1 && !info[1]->IsUndefined()) {
    if (!info[1]->IsNumber()) return throw_invalid("crc32c: previous must be a number");
    previous = Nan::To<uint32_t>(info[1]).FromJust();
  }
  info.GetReturnValue().Set(crc32c(data.data, data.length, previous, current_simd_level()));
}

// histogram(symbols: Uint8Array, alphabet: number): Float64Array
NAN_METHOD(Histogram) {
  REQUIRE_ARGS(2, "histogram(symbols: Uint8Array, alphabet: number)");
  Array<uint8_t> symbols;
  uint64_t alphabet;
  if (!as_uint8(info[0], &symbols)) return throw_invalid("histogram: symbols must be a Uint8Array");
  if (!as_count(info[1], 256, &alphabet) || alphabet < 1) return throw_invalid("histogram: alphabet size must be an integer from 1 to 256");
  uint64_t counts[256] = {};
  histogram_parallel(symbols.data, symbols.length, counts, current_simd_level());
  for (uint32_t s = static_cast<uint32_t>(alphabet); s < 256; s++) {
    if (counts[s] != 0) {
      return throw_invalid("histogram: symbol " + std::to_string(s) + " is outside the alphabet of " + std::to_string(alphabet) + " symbols");
    }
  }
  v8::Local<v8::ArrayBuffer> buffer;
  if (!new_buffer(alphabet * sizeof(double), &buffer)) return;
  v8::Local<v8::Float64Array> result = v8::Float64Array::New(buffer, 0, alphabet);
  double* out = static_cast<double*>(view_data(result));
  for (uint32_t s = 0; s < alphabet; s++) out[s] = static_cast<double>(counts[s]);
  info.GetReturnValue().Set(result);
}

bool as_width(v8::Local<v8::Value> value, uint32_t* width) {
  uint64_t w;
  if (!as_count(value, 8, &w) || w < 1) return false;
  *width = static_cast<uint32_t>(w);
  return true;
}

// packBits(symbols: Uint8Array, width: number): Uint8Array
NAN_METHOD(PackBits) {
  REQUIRE_ARGS(2, "packBits(symbols: Uint8Array, width: number)");
  Array<uint8_t> symbols;
  uint32_t width;
  if (!as_uint8(info[0], &symbols)) return throw_invalid("packBits: symbols must be a Uint8Array");
  if (!as_width(info[1], &width)) return throw_invalid("packBits: symbol width must be an integer from 1 to 8");
  v8::Local<v8::Uint8Array> result;
  if (!new_uint8(packed_size(symbols.length, width), &result)) return;
  const Status status = pack_bits(symbols.data, symbols.length, width, uint8_data(result), current_simd_level());
  if (status != Status::Ok) return throw_status(status, "a symbol does not fit in " + std::to_string(width) + " bits");
  info.GetReturnValue().Set(result);
}

std::string unpack_message(Status status, size_t length, size_t count, uint32_t width) {
  switch (status) {
    case Status::BadBlock:
      return "RAW payload is " + std::to_string(length) + " bytes, expected " + std::to_string(packed_size(count, width)) + " for " +
             std::to_string(count) + " symbols of " + std::to_string(width) + " bits";
    case Status::NonzeroPadding: return "unused bits after the last RAW symbol are not zero";
    default: return "unpackBits failed";
  }
}

// unpackBits(payload: Uint8Array, count: number, width: number, out: Uint8Array): void
NAN_METHOD(UnpackBits) {
  REQUIRE_ARGS(4, "unpackBits(payload: Uint8Array, count: number, width: number, out: Uint8Array)");
  Array<uint8_t> payload, out;
  uint64_t count;
  uint32_t width;
  if (!as_uint8(info[0], &payload)) return throw_invalid("unpackBits: payload must be a Uint8Array");
  if (!as_count(info[1], kMaxSafeInteger, &count)) return throw_invalid("unpackBits: count must be a non-negative integer");
  if (!as_width(info[2], &width)) return throw_invalid("unpackBits: symbol width must be an integer from 1 to 8");
  if (!as_uint8(info[3], &out)) return throw_invalid("unpackBits: out must be a Uint8Array");
  if (out.length < count) return throw_invalid("unpackBits: out holds fewer than count symbols");
  const Status status = unpack_bits(payload.data, payload.length, static_cast<size_t>(count), width, out.data, current_simd_level());
  if (status != Status::Ok) return throw_status(status, unpack_message(status, payload.length, static_cast<size_t>(count), width));
}

// ---- Float planes -------------------------------------------------------------------------------

bool as_plane_type(v8::Local<v8::Value> value, PlaneType* type) {
  if (!value->IsString()) return false;
  const std::string name = to_string(value);
  if (name == "F32") *type = PlaneType::F32;
  else if (name == "F16") *type = PlaneType::F16;
  else if (name == "BF16") *type = PlaneType::BF16;
  else return false;
  return true;
}

// splitFloatPlanes(dtype: "F32" | "F16" | "BF16", bytes: Uint8Array): Uint8Array[]
NAN_METHOD(SplitFloatPlanes) {
  REQUIRE_ARGS(2, "splitFloatPlanes(dtype: string, bytes: Uint8Array)");
  PlaneType type;
  Array<uint8_t> bytes;
  if (!as_plane_type(info[0], &type)) return throw_code("BAD_DTYPE", "float-planes: dtype must be F32, F16 or BF16");
  if (!as_uint8(info[1], &bytes)) return throw_invalid("float-planes: bytes must be a Uint8Array");
  const uint32_t size = plane_element_size(type);
  if (bytes.length % size != 0) {
    return throw_invalid("float-planes: " + std::to_string(bytes.length) + " bytes is not a whole number of " + to_string(info[0]) + " values");
  }
  const size_t n = bytes.length / size;
  const uint32_t count = plane_count(type);
  // One allocation for all planes, each a view of its own n bytes.
  v8::Local<v8::ArrayBuffer> buffer;
  if (!new_buffer(n * count, &buffer)) return;
  v8::Local<v8::Array> result = Nan::New<v8::Array>(count);
  uint8_t* planes[4] = {};
  for (uint32_t p = 0; p < count; p++) {
    v8::Local<v8::Uint8Array> plane = v8::Uint8Array::New(buffer, p * n, n);
    planes[p] = uint8_data(plane);
    Nan::Set(result, p, plane);
  }
  // Taking the input's address moved it off the V8 heap, so the allocations above cannot move it.
  split_planes(type, bytes.data, n, planes, current_simd_level());
  info.GetReturnValue().Set(result);
}

// mergeFloatPlanes(dtype: "F32" | "F16" | "BF16", planes: Uint8Array[], out: Uint8Array): void
NAN_METHOD(MergeFloatPlanes) {
  REQUIRE_ARGS(3, "mergeFloatPlanes(dtype: string, planes: Uint8Array[], out: Uint8Array)");
  PlaneType type;
  if (!as_plane_type(info[0], &type)) return throw_code("BAD_DTYPE", "float-planes: dtype must be F32, F16 or BF16");
  if (!info[1]->IsArray()) return throw_invalid("float-planes: planes must be an array of Uint8Array");
  v8::Local<v8::Array> list = info[1].As<v8::Array>();
  const uint32_t count = plane_count(type);
  if (list->Length() != count) {
    return throw_invalid("float-planes: " + to_string(info[0]) + " needs " + std::to_string(count) + " planes, got " + std::to_string(list->Length()));
  }
  // Fetch every element first (a getter could run script), then take addresses.
  v8::Local<v8::Value> items[4];
  for (uint32_t p = 0; p < count; p++) {
    if (!Nan::Get(list, p).ToLocal(&items[p])) return;
  }
  Array<uint8_t> planes[4], out;
  for (uint32_t p = 0; p < count; p++) {
    if (!as_uint8(items[p], &planes[p])) return throw_invalid("float-planes: plane " + std::to_string(p) + " is not a Uint8Array");
  }
  if (!as_uint8(info[2], &out)) return throw_invalid("float-planes: out must be a Uint8Array");
  const size_t n = planes[0].length;
  for (uint32_t p = 1; p < count; p++) {
    if (planes[p].length != n) {
      return throw_invalid("float-planes: plane " + std::to_string(p) + " has " + std::to_string(planes[p].length) + " symbols, plane 0 has " +
                           std::to_string(n));
    }
  }
  if (out.length != n * plane_element_size(type)) {
    return throw_invalid("float-planes: output has " + std::to_string(out.length) + " bytes, " + std::to_string(n) + " values need " +
                         std::to_string(n * plane_element_size(type)));
  }
  const uint8_t* pointers[4] = {};
  for (uint32_t p = 0; p < count; p++) pointers[p] = planes[p].data;
  merge_planes(type, pointers, n, out.data, current_simd_level());
}

// ---- Dequantisation -----------------------------------------------------------------------------

// dequantize(symbols: Uint8Array, rows, cols, firstElement, bits, groupSize, deltas: Float32Array,
//            zeroPoints: Uint8Array | null, inputScale: Float32Array | null, out: Float32Array): void
NAN_METHOD(Dequantize) {
  REQUIRE_ARGS(10, "dequantize(symbols, rows, cols, firstElement, bits, groupSize, deltas, zeroPoints, inputScale, out)");
  Array<uint8_t> symbols, zero_points;
  Array<float> deltas, input_scale, out;
  uint64_t rows, cols, first, bits, group_size;
  if (!as_uint8(info[0], &symbols)) return throw_invalid("dequantize: symbols must be a Uint8Array");
  if (!as_count(info[1], kMaxSafeInteger, &rows) || !as_count(info[2], kMaxSafeInteger, &cols)) {
    return throw_invalid("dequantize: rows and cols must be non-negative integers");
  }
  if (!as_count(info[3], kMaxSafeInteger, &first)) return throw_invalid("dequantize: firstElement must be a non-negative integer");
  if (!as_count(info[4], 8, &bits) || bits < 2) return throw_invalid("dequantize: bits must be an integer from 2 to 8");
  if (!as_count(info[5], 1 << 24, &group_size)) return throw_invalid("dequantize: group size must be 0 or an integer from 1 to 2^24");
  if (!as_float32(info[6], &deltas)) return throw_invalid("dequantize: deltas must be a Float32Array");
  const bool asymmetric = !is_absent(info[7]);
  if (asymmetric && !as_uint8(info[7], &zero_points)) return throw_invalid("dequantize: zeroPoints must be a Uint8Array or null");
  const bool scaled = !is_absent(info[8]);
  if (scaled && !as_float32(info[8], &input_scale)) return throw_invalid("dequantize: inputScale must be a Float32Array or null");
  if (!as_float32(info[9], &out)) return throw_invalid("dequantize: out must be a Float32Array");

  const size_t count = symbols.length;
  if (out.length != count) {
    return throw_invalid("dequantize: output has " + std::to_string(out.length) + " elements, symbols has " + std::to_string(count));
  }
  // rows * cols within 2^53 (checked in doubles, exact since both are integers below 2^53).
  const double elements = static_cast<double>(rows) * static_cast<double>(cols);
  if (elements > kMaxSafeInteger || static_cast<double>(first) + static_cast<double>(count) > elements) {
    return throw_invalid("dequantize: elements [" + std::to_string(first) + ", " + std::to_string(first + count) + ") are outside the " +
                         std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
  }
  if (count == 0) return;
  const uint64_t groups = group_size == 0 ? 1 : (cols + group_size - 1) / group_size;
  const uint64_t params = rows * groups;
  if (deltas.length != params) return throw_invalid("dequantize: " + std::to_string(deltas.length) + " deltas, expected " + std::to_string(params));
  if (asymmetric && zero_points.length != params) {
    return throw_invalid("dequantize: asymmetric parameters need " + std::to_string(params) + " zero points");
  }
  if (scaled && input_scale.length != cols) {
    return throw_invalid("dequantize: " + std::to_string(input_scale.length) + " input scales, expected " + std::to_string(cols));
  }
  DequantParams q;
  q.bits = static_cast<uint32_t>(bits);
  q.group_size = group_size;
  q.rows = rows;
  q.cols = cols;
  q.deltas = deltas.data;
  q.zero_points = asymmetric ? zero_points.data : nullptr;
  q.input_scale = scaled ? input_scale.data : nullptr;
  dequantize(q, symbols.data, first, count, out.data, current_simd_level());
}

// ---- Block jobs ---------------------------------------------------------------------------------

// False with an exception pending when a getter threw.
bool get_property(v8::Local<v8::Object> object, const char* key, v8::Local<v8::Value>* value) {
  return Nan::Get(object, Nan::New(key).ToLocalChecked()).ToLocal(value);
}

// Throws INVALID_ARGUMENT; false, for the parsers below.
bool invalid(const std::string& message) {
  throw_invalid(message);
  return false;
}

// The elements of an array of 1 to `max` items, all fetched before any memory is taken (a getter
// could run script). False with an exception pending, or with `*bad` set when it is not such an array.
bool get_elements(v8::Local<v8::Value> value, std::vector<v8::Local<v8::Value>>* items, size_t max, bool* bad) {
  *bad = !value->IsArray() || value.As<v8::Array>()->Length() < 1 || value.As<v8::Array>()->Length() > max;
  if (*bad) return false;
  v8::Local<v8::Array> list = value.As<v8::Array>();
  items->resize(list->Length());
  for (uint32_t i = 0; i < list->Length(); i++) {
    if (!Nan::Get(list, i).ToLocal(&(*items)[i])) return false;
  }
  return true;
}

// ---- Decoding

// Fields per block in the job's `blocks` array, in this order: stream, header offset, payload
// offset, payload length, action, header byte 1 (CONST symbol or RANS lane code), symbol count,
// output offset (the fields of DecodeBlock).
constexpr size_t kDecodeFields = 8;

// What a decode job holds on to: the memory it reads and writes, and the tables' JS objects (which
// own the DecodeTables) for an asynchronous job.
struct DecodeArgs {
  DecodeJob job;
  std::vector<Pinned> pins;
  std::vector<v8::Local<v8::Object>> tables;
};

// job: { frame: Uint8Array, streams: { table: RansDecodeTable | null, width: number, out: Uint8Array }[],
//        blocks: Float64Array (kDecodeFields per block) }. False with an exception thrown.
bool parse_decode_job(v8::Local<v8::Value> value, const char* name, DecodeArgs* args) {
  const std::string usage = std::string(name) + ": ";
  if (!value->IsObject()) return invalid(usage + "job must be an object");
  v8::Local<v8::Object> job = value.As<v8::Object>();
  v8::Local<v8::Value> frame, streams_value, blocks_value;
  if (!get_property(job, "frame", &frame) || !get_property(job, "streams", &streams_value) || !get_property(job, "blocks", &blocks_value)) return false;
  std::vector<v8::Local<v8::Value>> streams;
  bool bad;
  if (!get_elements(streams_value, &streams, 256, &bad)) {
    return bad ? invalid(usage + "streams must be an array of 1 to 256 streams") : false;
  }
  const size_t stream_count = streams.size();
  std::vector<v8::Local<v8::Value>> tables(stream_count), widths(stream_count), outs(stream_count);
  for (size_t s = 0; s < stream_count; s++) {
    if (!streams[s]->IsObject()) return invalid(usage + "stream " + std::to_string(s) + " is not an object");
    v8::Local<v8::Object> stream = streams[s].As<v8::Object>();
    if (!get_property(stream, "table", &tables[s]) || !get_property(stream, "width", &widths[s]) || !get_property(stream, "out", &outs[s])) return false;
  }
  if (!blocks_value->IsFloat64Array()) return invalid(usage + "blocks must be a Float64Array");
  // Every value is read now: from here on no script runs.
  Pinned pinned;
  if (!pin(frame, frame->IsUint8Array(), &pinned)) return invalid(usage + "frame must be a Uint8Array");
  args->job.frame = pinned.bytes();
  args->job.frame_length = pinned.length;
  args->pins.push_back(std::move(pinned));
  args->job.streams.resize(stream_count);
  for (size_t s = 0; s < stream_count; s++) {
    DecodeStream& stream = args->job.streams[s];
    const std::string where = usage + "stream " + std::to_string(s) + ": ";
    if (!is_absent(tables[s])) {
      if (!DecodeTableWrap::IsInstance(tables[s])) return invalid(where + "table must come from makeDecodeTable");
      v8::Local<v8::Object> table = tables[s].As<v8::Object>();
      stream.table = &Nan::ObjectWrap::Unwrap<DecodeTableWrap>(table)->table;
      args->tables.push_back(table);
    }
    if (!as_width(widths[s], &stream.width)) return invalid(where + "symbol width must be an integer from 1 to 8");
    if (!pin(outs[s], outs[s]->IsUint8Array(), &pinned)) return invalid(where + "out must be a Uint8Array");
    stream.out = pinned.bytes();
    stream.out_length = pinned.length;
    args->pins.push_back(std::move(pinned));
  }
  Array<double> fields;
  v8::Local<v8::Float64Array> view = blocks_value.As<v8::Float64Array>();
  fields.length = view->Length();
  fields.data = static_cast<double*>(view_data(view));
  if (fields.length % kDecodeFields != 0) return invalid(usage + "blocks must hold " + std::to_string(kDecodeFields) + " numbers per block");
  const size_t block_count = fields.length / kDecodeFields;
  args->job.blocks.resize(block_count);
  for (size_t i = 0; i < block_count; i++) {
    const double* f = fields.data + i * kDecodeFields;
    uint64_t v[kDecodeFields];
    for (size_t k = 0; k < kDecodeFields; k++) {
      const double d = f[k];
      if (!(d >= 0) || d > kMaxSafeInteger || std::floor(d) != d) {
        return invalid(usage + "block " + std::to_string(i) + " field " + std::to_string(k) + " is not a non-negative integer");
      }
      v[k] = static_cast<uint64_t>(d);
    }
    if (v[4] > 3 || v[5] > 255 || v[0] >= stream_count) {
      return invalid(usage + "block " + std::to_string(i) + " has an unknown stream, action or header byte 1");
    }
    DecodeBlock& block = args->job.blocks[i];
    block.stream = static_cast<uint32_t>(v[0]);
    block.header_offset = static_cast<size_t>(v[1]);
    block.payload_offset = static_cast<size_t>(v[2]);
    block.payload_length = static_cast<size_t>(v[3]);
    block.action = static_cast<BlockAction>(v[4]);
    block.header_param = static_cast<uint8_t>(v[5]);
    block.count = static_cast<size_t>(v[6]);
    block.out_offset = static_cast<size_t>(v[7]);
  }
  const std::string problem = check_decode_job(args->job);
  if (!problem.empty()) return invalid(usage + problem);
  args->job.level = current_simd_level();
  return true;
}

// { crcs: Uint32Array, failures: { block: number, error: Error }[] }: each block's CRC32C (header
// bytes 0..11, then payload), and the blocks whose checksum matched but whose decode failed, in
// block order, each with the error ransDecode or unpackBits would have thrown.
v8::MaybeLocal<v8::Object> decode_result(const DecodeJob& job, const std::vector<DecodeOutcome>& outcomes) {
  const size_t n = outcomes.size();
  v8::Local<v8::ArrayBuffer> buffer;
  if (!new_buffer(n * 4, &buffer)) return v8::MaybeLocal<v8::Object>();
  v8::Local<v8::Uint32Array> crcs = v8::Uint32Array::New(buffer, 0, n);
  uint32_t* crc_data = static_cast<uint32_t*>(view_data(crcs));
  v8::Local<v8::Array> failures = Nan::New<v8::Array>();
  uint32_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    crc_data[i] = outcomes[i].crc;
    const Status status = outcomes[i].status;
    if (status == Status::Ok || status == Status::ChecksumMismatch) continue;
    const DecodeBlock& block = job.blocks[i];
    const std::string message = block.action == BlockAction::Rans
                                    ? std::string(rans_message(status))
                                    : unpack_message(status, block.payload_length, block.count, job.streams[block.stream].width);
    v8::Local<v8::Object> failure = Nan::New<v8::Object>();
    Nan::Set(failure, Nan::New("block").ToLocalChecked(), Nan::New(static_cast<double>(i)));
    Nan::Set(failure, Nan::New("error").ToLocalChecked(), coded_error(status_code(status), message));
    Nan::Set(failures, failed++, failure);
  }
  v8::Local<v8::Object> result = Nan::New<v8::Object>();
  Nan::Set(result, Nan::New("crcs").ToLocalChecked(), crcs);
  Nan::Set(result, Nan::New("failures").ToLocalChecked(), failures);
  return result;
}

// decodeBlocks(job): the result of decode_result, on this thread and the pool's.
NAN_METHOD(DecodeBlocks) {
  REQUIRE_ARGS(1, "decodeBlocks(job)");
  DecodeArgs args;
  if (!parse_decode_job(info[0], "decodeBlocks", &args)) return;
  std::vector<DecodeOutcome> outcomes(args.job.blocks.size());
  decode_blocks(args.job, outcomes.data());
  v8::Local<v8::Object> result;
  if (decode_result(args.job, outcomes).ToLocal(&result)) info.GetReturnValue().Set(result);
}

class DecodeWorker : public Nan::AsyncWorker {
 public:
  DecodeWorker(Nan::Callback* callback, DecodeArgs&& args) : Nan::AsyncWorker(callback, "qans:decodeBlocks"), job_(std::move(args.job)), pins_(std::move(args.pins)) {
    for (size_t t = 0; t < args.tables.size(); t++) SaveToPersistent(static_cast<uint32_t>(t), args.tables[t]);
  }

  void Execute() override {
    try {
      outcomes_.resize(job_.blocks.size());
    } catch (const std::bad_alloc&) {
      return SetErrorMessage("qans native: out of memory");
    }
    decode_blocks(job_, outcomes_.data());
  }

  void HandleOKCallback() override {
    Nan::HandleScope scope;
    v8::Local<v8::Value> argv[] = {Nan::Null(), Nan::Undefined()};
    {
      // Only building the result may throw (out of memory); the callback runs outside the TryCatch.
      Nan::TryCatch try_catch;
      v8::Local<v8::Object> result;
      if (decode_result(job_, outcomes_).ToLocal(&result)) {
        argv[1] = result;
      } else {
        argv[0] = try_catch.Exception();
      }
    }
    callback->Call(2, argv, async_resource);
  }

 private:
  DecodeJob job_;
  std::vector<Pinned> pins_;
  std::vector<DecodeOutcome> outcomes_;
};

// decodeBlocksAsync(job, callback: (error, result) => void): as decodeBlocks, off this thread.
NAN_METHOD(DecodeBlocksAsync) {
  REQUIRE_ARGS(2, "decodeBlocksAsync(job, callback)");
  if (!info[1]->IsFunction()) return throw_invalid("decodeBlocksAsync: callback must be a function");
  DecodeArgs args;
  if (!parse_decode_job(info[0], "decodeBlocksAsync", &args)) return;
  Nan::AsyncQueueWorker(new DecodeWorker(new Nan::Callback(info[1].As<v8::Function>()), std::move(args)));
}

// ---- Encoding

// The blocks of an encode job, whose payloads are freed unless handed to JavaScript.
struct EncodedBlocks {
  std::vector<EncodedBlock> blocks;
  EncodedBlocks() = default;
  EncodedBlocks(const EncodedBlocks&) = delete;
  EncodedBlocks& operator=(const EncodedBlocks&) = delete;
  ~EncodedBlocks() {
    for (EncodedBlock& block : blocks) std::free(block.payload);
  }
};

struct EncodeArgs {
  EncodeJob job;
  std::vector<Pinned> pins;
};

// job: { log2Block: number, streams: { symbols: Uint8Array, width: number, freqs: Uint32Array | null,
//        k: number }[] }, every stream with the same number of symbols. False with an exception thrown.
bool parse_encode_job(v8::Local<v8::Value> value, const char* name, EncodeArgs* args) {
  const std::string usage = std::string(name) + ": ";
  if (!value->IsObject()) return invalid(usage + "job must be an object");
  v8::Local<v8::Object> job = value.As<v8::Object>();
  v8::Local<v8::Value> log2_value, streams_value;
  if (!get_property(job, "log2Block", &log2_value) || !get_property(job, "streams", &streams_value)) return false;
  std::vector<v8::Local<v8::Value>> streams;
  bool bad;
  if (!get_elements(streams_value, &streams, 256, &bad)) {
    return bad ? invalid(usage + "streams must be an array of 1 to 256 streams") : false;
  }
  const size_t stream_count = streams.size();
  std::vector<v8::Local<v8::Value>> symbols(stream_count), widths(stream_count), freqs(stream_count), ks(stream_count);
  for (size_t s = 0; s < stream_count; s++) {
    if (!streams[s]->IsObject()) return invalid(usage + "stream " + std::to_string(s) + " is not an object");
    v8::Local<v8::Object> stream = streams[s].As<v8::Object>();
    if (!get_property(stream, "symbols", &symbols[s]) || !get_property(stream, "width", &widths[s]) || !get_property(stream, "freqs", &freqs[s]) ||
        !get_property(stream, "k", &ks[s])) {
      return false;
    }
  }
  uint64_t log2_block;
  if (!as_count(log2_value, 20, &log2_block) || log2_block < 12) return invalid(usage + "log2Block must be an integer from 12 to 20");
  args->job.log2_block = static_cast<uint32_t>(log2_block);
  args->job.streams.resize(stream_count);
  for (size_t s = 0; s < stream_count; s++) {
    EncodeStream& stream = args->job.streams[s];
    const std::string where = usage + "stream " + std::to_string(s) + ": ";
    Pinned pinned;
    if (!pin(symbols[s], symbols[s]->IsUint8Array(), &pinned)) return invalid(where + "symbols must be a Uint8Array");
    stream.symbols = pinned.bytes();
    stream.count = pinned.length;
    args->pins.push_back(std::move(pinned));
    if (stream.count != args->job.streams[0].count) return invalid(where + "streams must hold the same number of symbols");
    if (!as_width(widths[s], &stream.width)) return invalid(where + "symbol width must be an integer from 1 to 8");
    if (is_absent(freqs[s])) continue;
    Array<uint32_t> table_freqs;
    uint64_t k;
    if (!as_uint32(freqs[s], &table_freqs) || table_freqs.length < 1 || table_freqs.length > 256) {
      return invalid(where + "freqs must be a Uint32Array of 1 to 256 frequencies or null");
    }
    if (!as_count(ks[s], 64, &k)) return invalid(where + "k must be an integer");
    const Status status = build_encode_table(table_freqs.data, static_cast<uint32_t>(table_freqs.length), static_cast<uint32_t>(k), &stream.table);
    if (status != Status::Ok) {
      throw_status(status, std::string("ransEncode: ") + rans_message(status));
      return false;
    }
    stream.has_table = true;
  }
  args->job.level = current_simd_level();
  return true;
}

// { modes: Uint8Array, headerParams: Uint8Array, payloads: Uint8Array[], failures: { block, error }[] },
// block-major; headerParams holds byte 1 of each block's header (the CONST symbol, the RANS lane code,
// 0 for RAW). Failed blocks have an empty payload and an error as packBits or ransEncode would
// have thrown. Hands the payloads' memory to JavaScript.
v8::MaybeLocal<v8::Object> encode_result(const EncodeJob& job, EncodedBlocks* encoded) {
  const size_t n = encoded->blocks.size();
  v8::Local<v8::Uint8Array> modes, header_params;
  if (!new_uint8(n, &modes) || !new_uint8(n, &header_params)) return v8::MaybeLocal<v8::Object>();
  uint8_t* mode_data = uint8_data(modes);
  uint8_t* param_data = uint8_data(header_params);
  v8::Local<v8::Array> payloads = Nan::New<v8::Array>(static_cast<int>(n));
  v8::Local<v8::Array> failures = Nan::New<v8::Array>();
  uint32_t failed = 0;
  for (size_t i = 0; i < n; i++) {
    EncodedBlock& block = encoded->blocks[i];
    mode_data[i] = static_cast<uint8_t>(block.mode);
    param_data[i] = block.header_param;
    v8::Local<v8::Uint8Array> payload;
    if (block.payload != nullptr) {
      std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(block.payload, block.length, free_memory, nullptr);
      block.payload = nullptr;
      payload = v8::Uint8Array::New(v8::ArrayBuffer::New(v8::Isolate::GetCurrent(), std::move(store)), 0, block.length);
    } else if (!new_uint8(0, &payload)) {
      return v8::MaybeLocal<v8::Object>();
    }
    Nan::Set(payloads, static_cast<uint32_t>(i), payload);
    if (block.failure == EncodeFailure::None) continue;
    v8::Local<v8::Value> error;
    switch (block.failure) {
      case EncodeFailure::SymbolTooWide:
        error = coded_error(status_code(Status::InvalidArgument),
                            "a symbol does not fit in " + std::to_string(job.streams[i % job.streams.size()].width) + " bits");
        break;
      case EncodeFailure::Rans:
        error = coded_error(status_code(block.status), std::string("ransEncode: ") + rans_message(block.status));
        break;
      default:
        error = Nan::RangeError("qans native: out of memory");
        break;
    }
    v8::Local<v8::Object> failure = Nan::New<v8::Object>();
    Nan::Set(failure, Nan::New("block").ToLocalChecked(), Nan::New(static_cast<double>(i)));
    Nan::Set(failure, Nan::New("error").ToLocalChecked(), error);
    Nan::Set(failures, failed++, failure);
  }
  v8::Local<v8::Object> result = Nan::New<v8::Object>();
  Nan::Set(result, Nan::New("modes").ToLocalChecked(), modes);
  Nan::Set(result, Nan::New("headerParams").ToLocalChecked(), header_params);
  Nan::Set(result, Nan::New("payloads").ToLocalChecked(), payloads);
  Nan::Set(result, Nan::New("failures").ToLocalChecked(), failures);
  return result;
}

// encodeBlocks(job): the result of encode_result, on this thread and the pool's.
NAN_METHOD(EncodeBlocks) {
  REQUIRE_ARGS(1, "encodeBlocks(job)");
  EncodeArgs args;
  if (!parse_encode_job(info[0], "encodeBlocks", &args)) return;
  EncodedBlocks encoded;
  encoded.blocks.resize(encode_block_count(args.job));
  encode_blocks(args.job, encoded.blocks.data());
  v8::Local<v8::Object> result;
  if (encode_result(args.job, &encoded).ToLocal(&result)) info.GetReturnValue().Set(result);
}

class EncodeWorker : public Nan::AsyncWorker {
 public:
  EncodeWorker(Nan::Callback* callback, EncodeArgs&& args) : Nan::AsyncWorker(callback, "qans:encodeBlocks"), job_(std::move(args.job)), pins_(std::move(args.pins)) {}

  void Execute() override {
    try {
      encoded_.blocks.resize(encode_block_count(job_));
    } catch (const std::bad_alloc&) {
      return SetErrorMessage("qans native: out of memory");
    }
    encode_blocks(job_, encoded_.blocks.data());
  }

  void HandleOKCallback() override {
    Nan::HandleScope scope;
    v8::Local<v8::Value> argv[] = {Nan::Null(), Nan::Undefined()};
    {
      // Only building the result may throw (out of memory); the callback runs outside the TryCatch.
      Nan::TryCatch try_catch;
      v8::Local<v8::Object> result;
      if (encode_result(job_, &encoded_).ToLocal(&result)) {
        argv[1] = result;
      } else {
        argv[0] = try_catch.Exception();
      }
    }
    callback->Call(2, argv, async_resource);
  }

 private:
  EncodeJob job_;
  std::vector<Pinned> pins_;
  EncodedBlocks encoded_;
};

// encodeBlocksAsync(job, callback: (error, result) => void): as encodeBlocks, off this thread.
NAN_METHOD(EncodeBlocksAsync) {
  REQUIRE_ARGS(2, "encodeBlocksAsync(job, callback)");
  if (!info[1]->IsFunction()) return throw_invalid("encodeBlocksAsync: callback must be a function");
  EncodeArgs args;
  if (!parse_encode_job(info[0], "encodeBlocksAsync", &args)) return;
  Nan::AsyncQueueWorker(new EncodeWorker(new Nan::Callback(info[1].As<v8::Function>()), std::move(args)));
}

// newSymbolBuffer(length: number): Uint8Array — for a decode job's output (memory.h). Its contents
// are unspecified until a job writes it.
NAN_METHOD(NewSymbolBuffer) {
  uint64_t length;
  if (info.Length() < 1 || !as_count(info[0], kMaxSafeInteger, &length)) return throw_invalid("newSymbolBuffer: length must be a non-negative integer");
  size_t capacity = 0;
  void* data = allocate_pages(static_cast<size_t>(length), &capacity);
  if (data == nullptr) return Nan::ThrowRangeError("qans native: out of memory");
  // The capacity travels in the deleter's data pointer.
  std::unique_ptr<v8::BackingStore> store = v8::ArrayBuffer::NewBackingStore(
      data, static_cast<size_t>(length), [](void* memory, size_t, void* held) { free_pages(memory, reinterpret_cast<uintptr_t>(held)); },
      reinterpret_cast<void*>(static_cast<uintptr_t>(capacity)));
  info.GetReturnValue().Set(v8::Uint8Array::New(v8::ArrayBuffer::New(v8::Isolate::GetCurrent(), std::move(store)), 0, static_cast<size_t>(length)));
}

// ---- Threads

// threadCount(): number — threads a block job uses, counting the thread that runs it.
NAN_METHOD(ThreadCount) {
  info.GetReturnValue().Set(thread_count());
}

// setThreadCount(count: number): number — the count now in use (clamped to 1..64).
NAN_METHOD(SetThreadCount) {
  uint64_t count;
  if (info.Length() < 1 || !as_count(info[0], kMaxSafeInteger, &count) || count < 1) {
    return throw_invalid("setThreadCount: count must be a positive integer");
  }
  info.GetReturnValue().Set(set_thread_count(static_cast<unsigned>(std::min<uint64_t>(count, kMaxThreads))));
}

// ---- Memory policy ------------------------------------------------------------------------------

// setMmapThreshold(bytes: number): boolean — whether the C library took it (glibc only).
// glibc raises its mmap threshold each time a large block is freed, up to 32 MiB, after which
// window-sized buffers come from its heaps and stay resident once freed: a process that streams a
// model window by window then holds some hundred MB it no longer uses. A fixed threshold keeps
// such buffers in their own mappings, returned to the system when freed.
NAN_METHOD(SetMmapThreshold) {
  uint64_t bytes;
  if (info.Length() < 1 || !as_count(info[0], static_cast<double>(1 << 30), &bytes)) {
    return throw_invalid("setMmapThreshold: bytes must be an integer from 0 to 2^30");
  }
#if defined(__GLIBC__)
  info.GetReturnValue().Set(Nan::New(mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1));
#else
  info.GetReturnValue().Set(Nan::New(false));
#endif
}

// ---- Dispatch level -----------------------------------------------------------------------------

v8::Local<v8::Array> level_names(SimdLevel highest) {
  const int n = static_cast<int>(highest) + 1;
  v8::Local<v8::Array> names = Nan::New<v8::Array>(n);
  for (int i = 0; i < n; i++) Nan::Set(names, static_cast<uint32_t>(i), Nan::New(simd_level_name(static_cast<SimdLevel>(i))).ToLocalChecked());
  return names;
}

// setSimdLevel(name: string): string — the effective level, min(name, the CPU's best).
NAN_METHOD(SetSimdLevel) {
  SimdLevel requested;
  if (info.Length() < 1 || !info[0]->IsString() || !parse_simd_level(to_string(info[0]).c_str(), &requested)) {
    return throw_invalid("setSimdLevel: level must be scalar, sse41, avx2 or avx512");
  }
  info.GetReturnValue().Set(Nan::New(simd_level_name(set_simd_level(requested))).ToLocalChecked());
}

// simdInfo(): { level, available, compiled }
NAN_METHOD(SimdInfo) {
  v8::Local<v8::Object> result = Nan::New<v8::Object>();
  Nan::Set(result, Nan::New("level").ToLocalChecked(), Nan::New(simd_level_name(current_simd_level())).ToLocalChecked());
  Nan::Set(result, Nan::New("available").ToLocalChecked(), level_names(detected_simd_level()));
  Nan::Set(result, Nan::New("compiled").ToLocalChecked(), level_names(compiled_simd_level()));
  info.GetReturnValue().Set(result);
}

void set_function(v8::Local<v8::Object> target, const char* name, Nan::FunctionCallback callback) {
  Nan::Set(target, Nan::New(name).ToLocalChecked(), Nan::GetFunction(Nan::New<v8::FunctionTemplate>(callback)).ToLocalChecked());
}

NAN_MODULE_INIT(Init) {
  DecodeTableWrap::Init(v8::Isolate::GetCurrent());
  const bool environment_ok = apply_simd_environment();
  Nan::Set(target, Nan::New("abiVersion").ToLocalChecked(), Nan::New(kAbiVersion));
  // Set when QANS_SIMD holds something other than a level name, so the loader can say so.
  Nan::Set(target, Nan::New("simdEnvironmentIgnored").ToLocalChecked(), Nan::New(!environment_ok));
  // Likewise when QANS_THREADS is not an integer from 1 to 64.
  Nan::Set(target, Nan::New("threadEnvironmentIgnored").ToLocalChecked(), Nan::New(!apply_thread_environment()));
  set_function(target, "makeDecodeTable", MakeDecodeTable);
  set_function(target, "ransDecode", RansDecode);
  set_function(target, "ransEncode", RansEncode);
  set_function(target, "crc32c", Crc32c);
  set_function(target, "histogram", Histogram);
  set_function(target, "packBits", PackBits);
  set_function(target, "unpackBits", UnpackBits);
  set_function(target, "splitFloatPlanes", SplitFloatPlanes);
  set_function(target, "mergeFloatPlanes", MergeFloatPlanes);
  set_function(target, "dequantize", Dequantize);
  set_function(target, "setSimdLevel", SetSimdLevel);
  set_function(target, "simdInfo", SimdInfo);
  set_function(target, "decodeBlocks", DecodeBlocks);
  set_function(target, "decodeBlocksAsync", DecodeBlocksAsync);
  set_function(target, "encodeBlocks", EncodeBlocks);
  set_function(target, "encodeBlocksAsync", EncodeBlocksAsync);
  set_function(target, "newSymbolBuffer", NewSymbolBuffer);
  set_function(target, "threadCount", ThreadCount);
  set_function(target, "setThreadCount", SetThreadCount);
  set_function(target, "setMmapThreshold", SetMmapThreshold);
  register_weight_functions(target);
}

}  // namespace
}  // namespace qans

NAN_MODULE_WORKER_ENABLED(qans_native, qans::Init)
