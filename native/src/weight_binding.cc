#include "weight_binding.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "binding_common.h"
#include "cpu.h"
#include "rans.h"
#include "weight_matrix.h"

namespace qans {
namespace {

// Numbers per block in a spec's `blocks`: payload offset, payload length, mode (0 RAW, 1 CONST,
// 2 RANS), header byte 1, symbol count.
constexpr size_t kBlockFields = 5;

class WeightMatrixWrap : public Nan::ObjectWrap {
 public:
  WeightMatrix matrix;

  static void Init(v8::Isolate* isolate) {
    v8::Local<v8::FunctionTemplate> tpl = Nan::New<v8::FunctionTemplate>(New);
    tpl->SetClassName(Nan::New("WeightMatrix").ToLocalChecked());
    tpl->InstanceTemplate()->SetInternalFieldCount(1);
    template_ = new Nan::Persistent<v8::FunctionTemplate>(tpl);
    node::AddEnvironmentCleanupHook(isolate, Cleanup, nullptr);
  }

  static bool IsInstance(v8::Local<v8::Value> value) {
    return template_ != nullptr && value->IsObject() && Nan::New(*template_)->HasInstance(value);
  }

  static v8::MaybeLocal<v8::Object> Create(v8::Local<v8::Value> spec) {
    v8::Local<v8::Function> constructor;
    if (!Nan::GetFunction(Nan::New(*template_)).ToLocal(&constructor)) return v8::MaybeLocal<v8::Object>();
    v8::Local<v8::Value> argv[1] = {spec};
    return Nan::NewInstance(constructor, 1, argv);
  }

 private:
  // One template per thread: each worker thread has its own isolate and loads its own instance.
  static thread_local Nan::Persistent<v8::FunctionTemplate>* template_;
  std::vector<Pinned> pins_;
  DecodeTable table_;

  static void Cleanup(void*) {
    if (template_ != nullptr) {
      template_->Reset();
      delete template_;
      template_ = nullptr;
    }
  }

  // Reads the spec's fields into the matrix; false with an exception pending.
  bool Parse(v8::Local<v8::Object> spec) {
    v8::Local<v8::Value> kind, rows, cols, values, symbols, bits, group_size, deltas, zero_points, input_scale, frame, log2_block, blocks, freqs, k;
    const std::pair<const char*, v8::Local<v8::Value>*> fields[] = {
        {"kind", &kind},           {"rows", &rows},           {"cols", &cols},       {"values", &values},        {"symbols", &symbols},
        {"bits", &bits},           {"groupSize", &group_size}, {"deltas", &deltas},   {"zeroPoints", &zero_points}, {"inputScale", &input_scale},
        {"frame", &frame},         {"log2Block", &log2_block}, {"blocks", &blocks},   {"freqs", &freqs},          {"k", &k},
    };
    // Every value is read before any memory is taken: a getter could run script.
    for (const auto& field : fields) {
      if (!Nan::Get(spec, Nan::New(field.first).ToLocalChecked()).ToLocal(field.second)) return false;
    }
    const auto invalid = [](const std::string& message) {
      throw_invalid("newWeightMatrix: " + message);
      return false;
    };
    uint64_t kind_code, row_count, col_count;
    if (!as_count(kind, 2, &kind_code)) return invalid("kind must be 0 (F32), 1 (symbols) or 2 (compressed)");
    if (!as_count(rows, kMaxSafeInteger, &row_count) || !as_count(cols, kMaxSafeInteger, &col_count)) return invalid("rows and cols must be non-negative integers");
    matrix.kind = static_cast<WeightKind>(kind_code);
    matrix.rows = static_cast<size_t>(row_count);
    matrix.cols = static_cast<size_t>(col_count);
    if (matrix.cols != 0 && matrix.rows > (size_t{1} << 53) / matrix.cols) return invalid("rows x cols is beyond 2^53");
    const size_t elements = matrix.rows * matrix.cols;
    Pinned pinned;
    if (matrix.kind == WeightKind::F32) {
      if (!pin(values, values->IsFloat32Array(), &pinned) || pinned.length != elements) return invalid("values must be a Float32Array of rows x cols");
      matrix.values = static_cast<const float*>(pinned.data);
      pins_.push_back(std::move(pinned));
      return true;
    }
    uint64_t bit_count, group;
    if (!as_count(bits, 8, &bit_count) || bit_count < 2) return invalid("bits must be an integer from 2 to 8");
    if (!as_count(group_size, 1 << 24, &group)) return invalid("groupSize must be 0 or an integer up to 2^24");
    DequantParams& q = matrix.quant;
    q.bits = static_cast<uint32_t>(bit_count);
    q.group_size = group;
    q.rows = matrix.rows;
    q.cols = matrix.cols;
    const size_t groups = group == 0 ? 1 : static_cast<size_t>((matrix.cols + group - 1) / group);
    const size_t params = matrix.rows * groups;
    if (!pin(deltas, deltas->IsFloat32Array(), &pinned) || pinned.length != params) return invalid("deltas must be a Float32Array of rows x groups");
    q.deltas = static_cast<const float*>(pinned.data);
    pins_.push_back(std::move(pinned));
    if (!is_absent(zero_points)) {
      if (!pin(zero_points, zero_points->IsUint8Array(), &pinned) || pinned.length != params) return invalid("zeroPoints must be null or a Uint8Array of rows x groups");
      q.zero_points = static_cast<const uint8_t*>(pinned.data);
      pins_.push_back(std::move(pinned));
    }
    if (!is_absent(input_scale)) {
      if (!pin(input_scale, input_scale->IsFloat32Array(), &pinned) || pinned.length != matrix.cols) return invalid("inputScale must be null or a Float32Array of cols");
      q.input_scale = static_cast<const float*>(pinned.data);
      pins_.push_back(std::move(pinned));
    }
    if (matrix.kind == WeightKind::Symbols) {
      if (!pin(symbols, symbols->IsUint8Array(), &pinned) || pinned.length != elements) return invalid("symbols must be a Uint8Array of rows x cols");
      matrix.symbols = static_cast<const uint8_t*>(pinned.data);
      pins_.push_back(std::move(pinned));
      return true;
    }
    uint64_t log2;
    if (!as_count(log2_block, 20, &log2) || log2 < 12) return invalid("log2Block must be an integer from 12 to 20");
    matrix.log2_block = static_cast<uint32_t>(log2);
    if (!pin(frame, frame->IsUint8Array(), &pinned)) return invalid("frame must be a Uint8Array");
    matrix.frame = static_cast<const uint8_t*>(pinned.data);
    matrix.frame_length = pinned.length;
    pins_.push_back(std::move(pinned));
    if (!blocks->IsFloat64Array()) return invalid("blocks must be a Float64Array");
    Pinned block_fields;
    pin(blocks, true, &block_fields);
    if (block_fields.length % kBlockFields != 0) return invalid("blocks must hold 5 numbers per block");
    const double* f = static_cast<const double*>(block_fields.data);
    matrix.blocks.resize(block_fields.length / kBlockFields);
    bool rans = false;
    for (size_t b = 0; b < matrix.blocks.size(); b++, f += kBlockFields) {
      for (size_t i = 0; i < kBlockFields; i++) {
        if (!(f[i] >= 0) || f[i] > kMaxSafeInteger || std::floor(f[i]) != f[i]) return invalid("block " + std::to_string(b) + " has a field that is not a non-negative integer");
      }
      if (f[2] > 2 || f[3] > 255) return invalid("block " + std::to_string(b) + " has an unknown mode or header byte 1");
      WeightBlock& block = matrix.blocks[b];
      block.payload_offset = static_cast<size_t>(f[0]);
      block.payload_length = static_cast<size_t>(f[1]);
      block.mode = static_cast<BlockAction>(static_cast<uint8_t>(f[2]));
      block.header_param = static_cast<uint8_t>(f[3]);
      block.count = static_cast<size_t>(f[4]);
      rans = rans || block.mode == BlockAction::Rans;
    }
    if (rans) {
      Pinned table_freqs;
      uint64_t precision;
      if (!pin(freqs, freqs->IsUint32Array(), &table_freqs) || table_freqs.length != (size_t{1} << q.bits)) return invalid("freqs must be a Uint32Array of 2^bits frequencies");
      if (!as_count(k, 15, &precision)) return invalid("k must be an integer");
      if (build_decode_table(static_cast<const uint32_t*>(table_freqs.data), static_cast<uint32_t>(table_freqs.length), static_cast<uint32_t>(precision), &table_) != Status::Ok) {
        return invalid("the frequency table does not sum to 2^k with every frequency below 2^k");
      }
      matrix.table = &table_;
    }
    return true;
  }

  // new WeightMatrix(spec)
  static NAN_METHOD(New) {
    if (!info.IsConstructCall()) return throw_invalid("WeightMatrix must be called with new");
    if (info.Length() < 1 || !info[0]->IsObject()) return throw_invalid("newWeightMatrix: spec must be an object");
    auto wrap = std::make_unique<WeightMatrixWrap>();
    if (!wrap->Parse(info[0].As<v8::Object>())) return;
    const std::string problem = check_weight_matrix(wrap->matrix);
    if (!problem.empty()) return throw_invalid("newWeightMatrix: " + problem);
    wrap.release()->Wrap(info.This());
    info.GetReturnValue().Set(info.This());
  }
};

thread_local Nan::Persistent<v8::FunctionTemplate>* WeightMatrixWrap::template_ = nullptr;

// newWeightMatrix(spec): WeightMatrix
NAN_METHOD(NewWeightMatrix) {
  v8::Local<v8::Object> matrix;
  if (WeightMatrixWrap::Create(info.Length() > 0 ? info[0] : Nan::Undefined().As<v8::Value>()).ToLocal(&matrix)) info.GetReturnValue().Set(matrix);
}

// weightProduct(matrix, xs: Float32Array, n: number, out: Float32Array): void
NAN_METHOD(WeightProduct) {
  if (info.Length() < 4) return throw_invalid("usage: weightProduct(matrix, xs: Float32Array, n: number, out: Float32Array)");
  if (!WeightMatrixWrap::IsInstance(info[0])) return throw_invalid("weightProduct: matrix must come from newWeightMatrix");
  const WeightMatrix& matrix = Nan::ObjectWrap::Unwrap<WeightMatrixWrap>(info[0].As<v8::Object>())->matrix;
  uint64_t n;
  Pinned xs, out;
  if (!pin(info[1], info[1]->IsFloat32Array(), &xs)) return throw_invalid("weightProduct: xs must be a Float32Array");
  if (!as_count(info[2], kMaxSafeInteger, &n)) return throw_invalid("weightProduct: n must be a non-negative integer");
  if (!pin(info[3], info[3]->IsFloat32Array(), &out)) return throw_invalid("weightProduct: out must be a Float32Array");
  if (matrix.cols != 0 && n > xs.length / matrix.cols) return throw_invalid("weightProduct: xs holds fewer than n inputs");
  if (xs.length < n * matrix.cols || (matrix.rows != 0 && n > out.length / matrix.rows)) return throw_invalid("weightProduct: xs or out is too short for n products");
  const ProductFailure failure = weight_product(matrix, static_cast<const float*>(xs.data), static_cast<size_t>(n), static_cast<float*>(out.data), current_simd_level());
  if (failure.status != Status::Ok) {
    throw_status(failure.status, "block " + std::to_string(failure.block) + " of the weight matrix failed to decode");
  }
}

void set_function(v8::Local<v8::Object> target, const char* name, Nan::FunctionCallback callback) {
  Nan::Set(target, Nan::New(name).ToLocalChecked(), Nan::GetFunction(Nan::New<v8::FunctionTemplate>(callback)).ToLocalChecked());
}

}  // namespace

void register_weight_functions(v8::Local<v8::Object> target) {
  WeightMatrixWrap::Init(v8::Isolate::GetCurrent());
  set_function(target, "newWeightMatrix", NewWeightMatrix);
  set_function(target, "weightProduct", WeightProduct);
}

}  // namespace qans
