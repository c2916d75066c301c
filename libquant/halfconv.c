/* halfconv.c — scalar entry points for fp16/bf16 conversion (bulk SIMD versions live in
 * kernels/cpu and are checked against these). */
#include "codecs/common.h"

uint16_t lq_fp32_to_fp16(float f) { return lq_fp16_from_f32(f); }
float lq_fp16_to_fp32(uint16_t h) { return lq_fp16_to_f32(h); }
uint16_t lq_fp32_to_bf16(float f) { return lq_bf16_from_f32(f); }
float lq_bf16_to_fp32(uint16_t h) { return lq_bf16_to_f32(h); }
