/* gemm_avx512.c — register-tiled Q4_0 / Q8_0 weight × Q8_0 activation products (AVX-512 VNNI).
 *
 * The per-pair vec-dot kernels unpack a weight block once per token; in prompt processing a
 * tile of 4 weight rows × 4 tokens shares every unpacked block, which is what makes batches
 * fast. The arithmetic of one (row, token) pair is the same whatever tile it falls in (edge
 * tiles included), so results do not depend on batch or thread splits.
 *
 * Per 64 elements (two blocks b0, b1): weights become unsigned codes u = w + offset (Q4_0:
 * the nibble, offset 8; Q8_0: w ^ 0x80, offset 128); vpdpbusd starts from -offset·Σx per lane
 * so it yields Σ w·x per group of 4; each lane is then scaled by d_w·d_x of its block.
 * Activations are the kernels' Q8_0 blocks repacked (rt_gemm_pack_act): per chunk the codes, the
 * -offset·Σx lanes and the lane scales, so a tile only loads them. */
#include "rt_internal.h"

#include <immintrin.h>
#include <string.h>

#define TILE_R 4
#define TILE_T 4

/* Q4_0 lanes 0-3 and 8-11 belong to b0, 4-7 and 12-15 to b1 (codes are stored as
 * [b0 0:16, b1 0:16, b0 16:32, b1 16:32] to match the nibble order); Q8_0: 0-7 b0, 8-15 b1. */
#define Q4_0_B1_LANES 0xF0F0
#define Q8_0_B1_LANES 0xFF00

static inline __attribute__((always_inline)) __m512 two_scales(float d0, float d1, __mmask16 b1_lanes) {
    return _mm512_mask_blend_ps(b1_lanes, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
}

static inline __attribute__((always_inline)) float half_to_float(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Unsigned codes and scales of two consecutive blocks of one weight row. */
static inline __attribute__((always_inline)) __m512i unpack_q4_0(const uint8_t *blk, __m512 *scale) {
    __m128i q0 = _mm_loadu_si128((const __m128i *)(blk + 2));
    __m128i q1 = _mm_loadu_si128((const __m128i *)(blk + 18 + 2));
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(q0), q1, 1);
    __m256i mask = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(v, mask);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    *scale = two_scales(half_to_float(blk), half_to_float(blk + 18), Q4_0_B1_LANES);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

static inline __attribute__((always_inline)) __m512i unpack_q8_0(const uint8_t *blk, __m512 *scale) {
    __m256i q0 = _mm256_loadu_si256((const __m256i *)(blk + 2));
    __m256i q1 = _mm256_loadu_si256((const __m256i *)(blk + 34 + 2));
    *scale = two_scales(half_to_float(blk), half_to_float(blk + 34), Q8_0_B1_LANES);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
}

/* Row tiles are unpacked once per token block into this layout, chunk-major: for each chunk of
 * 64 elements, for each row: 64 unsigned codes, then 16 lane scales (d_w of the lane's block). */
#define ROW_CHUNK_BYTES 128

static void unpack_rows(bool is_q4, const uint8_t *w, size_t row_bytes, int nr, int64_t n_chunks, uint8_t *out) {
    const size_t blk_bytes = is_q4 ? 18 : 34;
    for (int64_t c = 0; c < n_chunks; c++)
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)c * 2 * blk_bytes;
            __m512 scale;
            __m512i codes = is_q4 ? unpack_q4_0(blk, &scale) : unpack_q8_0(blk, &scale);
            uint8_t *dst = out + ((size_t)c * TILE_R + (size_t)r) * ROW_CHUNK_BYTES;
            _mm512_storeu_si512((void *)dst, codes);
            _mm512_storeu_ps((float *)(dst + 64), scale);
        }
}

/* One tile of nr ≤ 4 unpacked rows × nt ≤ 4 tokens (constants after inlining). Per chunk and
 * pair: one vpdpbusd (started from the token's -offset·Σx lanes), the lane scales
 * d_w·d_x, and one fused multiply-add into the pair's accumulator. */
static inline __attribute__((always_inline)) void tile(const uint8_t *rows, const uint8_t *act, size_t act_stride,
                                                      int64_t n_chunks, int nr, int nt, float *y,
                                                      int64_t y_stride, const float *bias) {
    __m512 acc[TILE_R][TILE_T];
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc[r][t] = _mm512_setzero_ps();
    for (int64_t c = 0; c < n_chunks; c++) {
        __m512i wq[TILE_R];
        __m512 wd[TILE_R];
        const uint8_t *rc = rows + (size_t)c * TILE_R * ROW_CHUNK_BYTES;
        for (int r = 0; r < nr; r++) {
            wq[r] = _mm512_loadu_si512((const void *)(rc + r * ROW_CHUNK_BYTES));
            wd[r] = _mm512_loadu_ps((const float *)(rc + r * ROW_CHUNK_BYTES + 64));
        }
        for (int t = 0; t < nt; t++) {
            const uint8_t *a = act + (size_t)t * act_stride + (size_t)c * RT_GEMM_ACT_CHUNK;
            __m512i x = _mm512_loadu_si512((const void *)a);
            __m512i base = _mm512_loadu_si512((const void *)(a + 64));
            __m512 xd = _mm512_loadu_ps((const float *)(a + 128));
            for (int r = 0; r < nr; r++) {
                __m512i dot = _mm512_dpbusd_epi32(base, wq[r], x);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd[r], xd), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) {
            float v = _mm512_reduce_add_ps(acc[r][t]);
            y[t * y_stride + r] = bias ? v + bias[r] : v;
        }
}

#define TILE_CASE(R, T) tile(rows, act, act_stride, n_chunks, R, T, y, y_stride, bias)

/* Dispatch to a fully specialized tile for every (rows, tokens) shape. */
static void tile_any(const uint8_t *rows, const uint8_t *act, size_t act_stride, int64_t n_chunks, int nr, int nt,
                     float *y, int64_t y_stride, const float *bias) {
#define ROWS(R)                          \
    switch (nt) {                        \
    case 1: TILE_CASE(R, 1); break;      \
    case 2: TILE_CASE(R, 2); break;      \
    case 3: TILE_CASE(R, 3); break;      \
    default: TILE_CASE(R, 4); break;     \
    }
    switch (nr) {
    case 1: ROWS(1); break;
    case 2: ROWS(2); break;
    case 3: ROWS(3); break;
    default: ROWS(4); break;
    }
#undef ROWS
}

#define TOKEN_BLOCK 64 /* activations of this many tokens stay in L2 while rows stream past */

void rt_gemm_rows_avx512(lq_type type, const void *weights, size_t row_bytes, int64_t r0, int64_t r1,
                         const void *act, size_t act_stride, int64_t n_tok, int64_t n_in, float *y,
                         int64_t y_stride, const float *bias) {
    bool is_q4 = type == LQ_TYPE_Q4_0;
    const uint8_t *wb = (const uint8_t *)weights;
    const uint8_t *ab = (const uint8_t *)act;
    int64_t n_chunks = n_in / 64;
    _Alignas(64) uint8_t rows[RT_GEMM_MAX_IN / 64 * TILE_R * ROW_CHUNK_BYTES];
    for (int64_t tb = 0; tb < n_tok; tb += TOKEN_BLOCK) {
        int64_t te = tb + TOKEN_BLOCK < n_tok ? tb + TOKEN_BLOCK : n_tok;
        for (int64_t r = r0; r < r1; r += TILE_R) {
            int nr = (int)(r1 - r < TILE_R ? r1 - r : TILE_R);
            unpack_rows(is_q4, wb + (size_t)r * row_bytes, row_bytes, nr, n_chunks, rows);
            for (int64_t t = tb; t < te; t += TILE_T) {
                int nt = (int)(te - t < TILE_T ? te - t : TILE_T);
                tile_any(rows, ab + (size_t)t * act_stride, act_stride, n_chunks, nr, nt, y + t * y_stride + r,
                         y_stride, bias ? bias + r : NULL);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * Attention of one head: 16 dimensions per vector
 * ------------------------------------------------------------------------------------- */

void rt_attn_scores_avx512(const float *q, const float *keys, int64_t kv_stride, int64_t first, int64_t last,
                           int64_t hd, float scale, float *scores) {
    for (int64_t j = first; j <= last; j++) {
        const float *k = keys + j * kv_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t d = 0; d < hd; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(k + d), acc);
        scores[j] = _mm512_reduce_add_ps(acc) * scale;
    }
}

void rt_attn_values_avx512(const float *scores, float inv_sum, const float *vals, int64_t kv_stride,
                           int64_t first, int64_t last, int64_t hd, float *out) {
    for (int64_t d = 0; d < hd; d += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t j = first; j <= last; j++)
            acc = _mm512_fmadd_ps(_mm512_set1_ps(scores[j] * inv_sum), _mm512_loadu_ps(vals + j * kv_stride + d), acc);
        _mm512_storeu_ps(out + d, acc);
    }
}
