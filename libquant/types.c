/* types.c — ggml type ids with block sizes and bytes (GGUF's type table). */
#include "internal.h"

#include <string.h>
#include <strings.h>

#define T(id_, name_, bs_, bytes_, q_, codec_, act_) \
    [id_] = {name_, id_, bs_, bytes_, 8.0 * (bytes_) / (bs_), q_, codec_, act_}

static const lq_type_traits traits[LQ_TYPE_COUNT] = {
    T(LQ_TYPE_F32, "f32", 1, 4, false, true, false),
    T(LQ_TYPE_F16, "f16", 1, 2, false, true, false),
    T(LQ_TYPE_Q4_0, "q4_0", 32, 18, true, true, false),
    T(LQ_TYPE_Q4_1, "q4_1", 32, 20, true, true, false),
    T(LQ_TYPE_Q5_0, "q5_0", 32, 22, true, true, false),
    T(LQ_TYPE_Q5_1, "q5_1", 32, 24, true, true, false),
    T(LQ_TYPE_Q8_0, "q8_0", 32, 34, true, true, false),
    T(LQ_TYPE_Q8_1, "q8_1", 32, 36, true, false, true),
    T(LQ_TYPE_Q2_K, "q2_K", 256, 84, true, true, false),
    T(LQ_TYPE_Q3_K, "q3_K", 256, 110, true, true, false),
    T(LQ_TYPE_Q4_K, "q4_K", 256, 144, true, true, false),
    T(LQ_TYPE_Q5_K, "q5_K", 256, 176, true, true, false),
    T(LQ_TYPE_Q6_K, "q6_K", 256, 210, true, true, false),
    T(LQ_TYPE_Q8_K, "q8_K", 256, 292, true, true, true),
    T(LQ_TYPE_IQ2_XXS, "iq2_xxs", 256, 66, true, false, false),
    T(LQ_TYPE_IQ2_XS, "iq2_xs", 256, 74, true, false, false),
    T(LQ_TYPE_IQ3_XXS, "iq3_xxs", 256, 98, true, false, false),
    T(LQ_TYPE_IQ1_S, "iq1_s", 256, 50, true, false, false),
    T(LQ_TYPE_IQ4_NL, "iq4_nl", 32, 18, true, true, false),
    T(LQ_TYPE_IQ3_S, "iq3_s", 256, 110, true, false, false),
    T(LQ_TYPE_IQ2_S, "iq2_s", 256, 82, true, false, false),
    T(LQ_TYPE_IQ4_XS, "iq4_xs", 256, 136, true, true, false),
    T(LQ_TYPE_I8, "i8", 1, 1, false, false, false),
    T(LQ_TYPE_I16, "i16", 1, 2, false, false, false),
    T(LQ_TYPE_I32, "i32", 1, 4, false, false, false),
    T(LQ_TYPE_I64, "i64", 1, 8, false, false, false),
    T(LQ_TYPE_F64, "f64", 1, 8, false, false, false),
    T(LQ_TYPE_IQ1_M, "iq1_m", 256, 56, true, false, false),
    T(LQ_TYPE_BF16, "bf16", 1, 2, false, true, false),
    T(LQ_TYPE_TQ1_0, "tq1_0", 256, 54, true, false, false),
    T(LQ_TYPE_TQ2_0, "tq2_0", 256, 66, true, false, false),
};

const lq_type_traits *lq_type_get(int type_id) {
    if (type_id < 0 || type_id >= LQ_TYPE_COUNT) return NULL;
    if (!traits[type_id].name) return NULL; /* removed ids 4, 5, 31-33, 36-38 */
    return &traits[type_id];
}

int lq_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < LQ_TYPE_COUNT; i++)
        if (traits[i].name && strcasecmp(traits[i].name, name) == 0) return i;
    return -1;
}

size_t lq_row_size(lq_type type, int64_t n_per_row) {
    const lq_type_traits *t = lq_type_get(type);
    if (!t || n_per_row < 0 || n_per_row % t->block_size != 0) return 0;
    return (size_t)(n_per_row / t->block_size) * t->block_bytes;
}
