// Node-API bindings of the fused decoder step (decode/decoder-step.h); called from addon.cc.
#pragma once
#include <napi.h>

#include "dispatch.h"

namespace bitmar {

// createDecoder(spec): checks every array and matrix of the spec against its dimensions, keeps the
// spec alive, returns a handle. Throws TypeError/RangeError (code BITMAR_ERR_NATIVE_ARGUMENT).
Napi::Value decoder_create(const Napi::CallbackInfo& info);
// decodeStep(isa, handle, token, xRows, logits): one token; returns the arg-max of its logits.
Napi::Value decoder_step(const Napi::CallbackInfo& info, const isa_kernels& t);

}  // namespace bitmar
