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
 * One token (token generation): weight rows streamed straight from memory, 8 (Q4_0) or 4
 * (Q8_0) at a time
 *
 * The arithmetic of each row is tile()'s for nt = 1 (same lane scales d_w·d_x, same vpdpbusd
 * from the -offset·Σx lanes, same accumulation and reduction), so a generated token gets the
 * bits a prompt batch gives that token. What changes is the work per weight byte: no unpacked
 * copy of the rows, the fp16 block scales of 8 chunks gathered, converted and multiplied by
 * the activation scales at once per row (one permute per chunk then picks a lane's d_w·d_x),
 * the activation chunk loaded once per group, and the next group of rows prefetched in
 * address order while this one is multiplied (one core alone keeps too few lines in flight
 * to reach its share of the bandwidth otherwise). Measured on one core of a 2-core AVX-512
 * VM, weights in cache: Q4_0 17.6 GB/s against 14.4 for the two-row vec-dot kernel, Q8_0
 * 35 against 29 — two cores need ~16.5 GB/s each to stream at 33 GB/s.
 * ------------------------------------------------------------------------------------- */

#define GEMV_ROWS 8 /* most rows per group (Q4_0; Q8_0 takes 4) */
#define GEMV_CHUNKS 8 /* chunks per gather of block scales (16 blocks) */

/* lane -> block index (within 8 chunks) for chunk c: Q4_0 [2c ×4, 2c+1 ×4, 2c ×4, 2c+1 ×4],
 * Q8_0 [2c ×8, 2c+1 ×8] (the lane orders of the packed activations) */
static inline __attribute__((always_inline)) __m512i lane_blocks(bool is_q4) {
    return is_q4 ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)
                 : _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
}

static inline __attribute__((always_inline)) __m512i codes_q4_0(const uint8_t *blk) {
    __m256i v = _mm256_loadu2_m128i((const __m128i *)(blk + 18 + 2), (const __m128i *)(blk + 2));
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(both, _mm512_set1_epi8(0x0F));
}

static inline __attribute__((always_inline)) __m512i codes_q8_0(const uint8_t *blk) {
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2))),
                                   _mm256_loadu_si256((const __m256i *)(blk + 34 + 2)), 1);
    return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
}

static inline __attribute__((always_inline)) void gemv_group(bool is_q4, const uint8_t *w, size_t row_bytes, int nr,
                                                            const uint8_t *act, const float *act_scales,
                                                            int64_t n_chunks, float *y, const float *bias) {
    const int blk_bytes = is_q4 ? 18 : 34, chunk_bytes = 2 * blk_bytes;
    const __m512i scale_offsets = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(blk_bytes));
    const size_t ahead = (size_t)(is_q4 ? 8 : 4) * row_bytes; /* the next group of rows */
    /* the next group's bytes, in address order, spread evenly over this group's chunks (a
     * burst of prefetches would wait for free line-fill buffers) */
    const char *pf = (const char *)w + ahead;
    const char *pf_end = pf + (size_t)nr * row_bytes;
    size_t pf_step = ((size_t)nr * row_bytes + (size_t)n_chunks - 1) / (size_t)n_chunks;
    __m512 acc[GEMV_ROWS];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < n_chunks; c0 += GEMV_CHUNKS) {
        int nc = n_chunks - c0 < GEMV_CHUNKS ? (int)(n_chunks - c0) : GEMV_CHUNKS;
        __mmask16 present = nc == GEMV_CHUNKS ? (__mmask16)0xFFFF : (__mmask16)((1u << (2 * nc)) - 1);
        /* d_w·d_x of the 16 blocks, the very products tile() forms lane by lane */
        __m512 xs = _mm512_maskz_loadu_ps(present, act_scales + 2 * c0);
        __m512 d[GEMV_ROWS];
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)c0 * chunk_bytes;
            __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), present, scale_offsets, blk, 1);
            d[r] = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)), xs);
        }
        __m512i lanes = lane_blocks(is_q4);
        for (int c = 0; c < nc; c++) {
            {
                for (const char *p = pf; p < pf + pf_step && p < pf_end; p += 64) _mm_prefetch(p, _MM_HINT_T0);
                pf += pf_step;
            }
            const uint8_t *a = act + (size_t)(c0 + c) * RT_GEMM_ACT_CHUNK;
            __m512i x = _mm512_loadu_si512((const void *)a);
            __m512i base = _mm512_loadu_si512((const void *)(a + 64));
            for (int r = 0; r < nr; r++) {
                const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)(c0 + c) * chunk_bytes;
                __m512i u = is_q4 ? codes_q4_0(blk) : codes_q8_0(blk);
                __m512i dot = _mm512_dpbusd_epi32(base, u, x);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(lanes, d[r]), acc[r]);
            }
            lanes = _mm512_add_epi32(lanes, _mm512_set1_epi32(2));
        }
    }
    for (int r = 0; r < nr; r++) {
        float v = _mm512_reduce_add_ps(acc[r]);
        y[r] = bias ? v + bias[r] : v;
    }
}

#define GEMV_CASE(Q4, R) \
    gemv_group(Q4, wb + (size_t)r * row_bytes, row_bytes, R, ab, act_scales, n_chunks, y + r, bias ? bias + r : NULL)

void rt_gemv_rows_avx512(lq_type type, const void *weights, size_t row_bytes, int64_t r0, int64_t r1,
                         const void *act, int64_t n_in, float *y, const float *bias) {
    const uint8_t *wb = (const uint8_t *)weights;
    const uint8_t *ab = (const uint8_t *)act;
    int64_t n_chunks = n_in / 64;
    /* the activations' block scales d_x back out of the packed lane scales (lane 0 holds the
     * first block of a chunk; lane 4 (Q4_0) or 8 (Q8_0) the second) */
    float act_scales[RT_GEMM_MAX_IN / 32];
    int second_lane = type == LQ_TYPE_Q4_0 ? 4 : 8;
    for (int64_t c = 0; c < n_chunks; c++) {
        const float *lane_scale = (const float *)(ab + (size_t)c * RT_GEMM_ACT_CHUNK + 128);
        act_scales[2 * c] = lane_scale[0];
        act_scales[2 * c + 1] = lane_scale[second_lane];
    }
    int64_t r = r0;
    /* rows per group: as many as the registers hold (Q8_0's codes take more of them) */
    if (type == LQ_TYPE_Q4_0) {
        for (; r + 8 <= r1; r += 8) GEMV_CASE(true, 8);
        for (; r < r1; r++) GEMV_CASE(true, 1);
    } else {
        for (; r + 4 <= r1; r += 4) GEMV_CASE(false, 4);
        for (; r < r1; r++) GEMV_CASE(false, 1);
    }
}

/* ---------------------------------------------------------------------------------------
 * Attention of one head: 16 dimensions per vector
 * ------------------------------------------------------------------------------------- */

/* Sixteen 16-lane partial sums → one vector whose lane k is the full sum of acc[k]: pairs of
 * vectors are interleaved and added level by level (about 3 operations per key instead of a
 * full horizontal reduction each). */
static inline __attribute__((always_inline)) __m512 reduce16x16(const __m512 acc[16]) {
    __m512 s[8], u[4];
    for (int i = 0; i < 8; i++) /* per 128-bit block: [a 0+2, b 0+2, a 1+3, b 1+3] */
        s[i] = _mm512_add_ps(_mm512_unpacklo_ps(acc[2 * i], acc[2 * i + 1]),
                             _mm512_unpackhi_ps(acc[2 * i], acc[2 * i + 1]));
    for (int i = 0; i < 4; i++) /* per 128-bit block: one partial sum for each of 4 keys */
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(s[2 * i], s[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(s[2 * i], s[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 x01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 x23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(x01, x23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Keys 16 at a time, each with its own accumulator (independent chains), reduced together;
 * the last < 16 keys one by one. A key's score depends only on its place among the keys
 * first..last, so a token gets the same scores in a batch and alone. */
void rt_attn_scores_avx512(const float *q, const float *keys, int64_t kv_stride, int64_t first, int64_t last,
                           int64_t hd, float scale, float *scores) {
    int64_t j = first;
    for (; j + 16 <= last + 1; j += 16) {
        __m512 acc[16];
        for (int k = 0; k < 16; k++) acc[k] = _mm512_setzero_ps();
        for (int64_t d = 0; d < hd; d += 16) {
            __m512 qv = _mm512_loadu_ps(q + d);
            for (int k = 0; k < 16; k++)
                acc[k] = _mm512_fmadd_ps(qv, _mm512_loadu_ps(keys + (j + k) * kv_stride + d), acc[k]);
        }
        _mm512_storeu_ps(scores + j, _mm512_mul_ps(reduce16x16(acc), _mm512_set1_ps(scale)));
    }
    for (; j <= last; j++) {
        const float *k = keys + j * kv_stride;
        __m512 acc = _mm512_setzero_ps();
        for (int64_t d = 0; d < hd; d += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + d), _mm512_loadu_ps(k + d), acc);
        scores[j] = _mm512_reduce_add_ps(acc) * scale;
    }
}

/* Up to 64 dimensions at a time, even and odd keys into separate accumulators (two chains per
 * vector instead of one long one), added at the end. */
void rt_attn_values_avx512(const float *scores, float inv_sum, const float *vals, int64_t kv_stride,
                           int64_t first, int64_t last, int64_t hd, float *out) {
    for (int64_t d0 = 0; d0 < hd; d0 += 64) {
        int nb = hd - d0 >= 64 ? 4 : (int)((hd - d0) / 16);
        __m512 even[4], odd[4];
        for (int b = 0; b < 4; b++) even[b] = odd[b] = _mm512_setzero_ps();
        int64_t j = first;
        for (; j + 2 <= last + 1; j += 2) {
            __m512 p0 = _mm512_set1_ps(scores[j] * inv_sum), p1 = _mm512_set1_ps(scores[j + 1] * inv_sum);
            const float *v0 = vals + j * kv_stride + d0, *v1 = v0 + kv_stride;
            for (int b = 0; b < nb; b++) {
                even[b] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(v0 + 16 * b), even[b]);
                odd[b] = _mm512_fmadd_ps(p1, _mm512_loadu_ps(v1 + 16 * b), odd[b]);
            }
        }
        if (j <= last) {
            __m512 p0 = _mm512_set1_ps(scores[j] * inv_sum);
            for (int b = 0; b < nb; b++)
                even[b] = _mm512_fmadd_ps(p0, _mm512_loadu_ps(vals + j * kv_stride + d0 + 16 * b), even[b]);
        }
        for (int b = 0; b < nb; b++) _mm512_storeu_ps(out + d0 + 16 * b, _mm512_add_ps(even[b], odd[b]));
    }
}

/* ---------------------------------------------------------------------------------------
 * SwiGLU: gate[i] = silu(gate[i]) · up[i], 16 at a time
 * ------------------------------------------------------------------------------------- */

/* e^x for |x| ≤ 100 (callers clamp): x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor
 * polynomial to degree 7 (relative error ~2e-8, below float rounding), times 2^n by scalef
 * (which gives 0 and inf where the float range ends). */
static inline __attribute__((always_inline)) __m512 exp16(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693145752f), ln2_lo = _mm512_set1_ps(1.42860677e-6f);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

void rt_swiglu_avx512(float *gate, const float *up, int64_t n) {
    const __m512 lo = _mm512_set1_ps(-100.0f), hi = _mm512_set1_ps(100.0f), one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        __m512 neg = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), g), lo), hi);
        __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, exp16(neg)));
        _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(m, up + i)));
    }
}
