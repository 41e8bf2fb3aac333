// The JavaScript binding of weight_matrix.h: newWeightMatrix and weightProduct (see
// sdk/native/addon.ts for their shapes). binding.cc registers them on the module.
#pragma once

#include <nan.h>

namespace qans {

void register_weight_functions(v8::Local<v8::Object> target);

}  // namespace qans
