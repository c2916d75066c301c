/* gemm_avx512.c — register-tiled Q4_0 / Q8_0 weight × Q8_0 activation products (AVX-512 VNNI).
 *
 * The per-pair vec-dot kernels unpack a weight block once per token; in prompt processing a
 * tile of 4 weight rows × 4 tokens shares every unpacked block, which is what makes batches
 * fast. The arithmetic of one (row, token) pair is the same whatever tile it falls in (edge
 * tiles included), and the single-token kernels below repeat it exactly, so results do not
 * depend on batch or thread splits.
 *
 * Weights become unsigned codes u = w + offset (Q4_0: the nibble, offset 8; Q8_0: w ^ 0x80,
 * offset 128); vpdpbusd starts from -offset·Σx per lane, so it yields Σ w·x exactly; each lane
 * is then converted and scaled by d_w·d_x of its block, in a fused multiply-add into the
 * pair's accumulator.
 *
 *  - Q8_0, per chunk of 64 elements (two blocks): one vpdpbusd; lanes 0-7 block 0, 8-15 block 1.
 *  - Q4_0, per superchunk of 128 elements (four blocks): two vpdpbusd into the same lanes, one
 *    over the low nibbles (elements 0-15 of each block), one over the high (16-31); lanes 4k to
 *    4k+3 belong to block k. Pairing the halves in one lane halves the conversions, scalings and
 *    accumulations per weight byte, and four 16-byte nibble runs fill a vector with one
 *    byte permute.
 *
 * Activations are the kernels' Q8_0 blocks repacked (rt_gemm_pack_act) into those lane orders:
 * per chunk or superchunk the codes, the -offset·Σx lanes and the lane scales d_x. */
#include "rt_internal.h"

#include <immintrin.h>
#include <string.h>

#define TILE_R 4
#define TILE_T 4

static inline __attribute__((always_inline)) float half_to_float(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* A tile's accumulators, and their sums (+ bias) stored as y[t·y_stride + r]. */
static inline __attribute__((always_inline)) void zero_tile(__m512 acc[TILE_R][TILE_T], int nr, int nt) {
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) acc[r][t] = _mm512_setzero_ps();
}
static inline __attribute__((always_inline)) void store_tile(__m512 acc[TILE_R][TILE_T], int nr, int nt, float *y,
                                                            int64_t y_stride, const float *bias) {
    for (int r = 0; r < nr; r++)
        for (int t = 0; t < nt; t++) {
            float v = _mm512_reduce_add_ps(acc[r][t]);
            y[t * y_stride + r] = bias ? v + bias[r] : v;
        }
}

/* ---------------------------------------------------------------------------------------
 * Q8_0 tiles
 * ------------------------------------------------------------------------------------- */

#define Q8_0_B1_LANES 0xFF00

/* Unsigned codes and lane scales of two consecutive blocks of one weight row. */
static inline __attribute__((always_inline)) __m512i unpack_q8_0(const uint8_t *blk, __m512 *scale) {
    __m256i q0 = _mm256_loadu_si256((const __m256i *)(blk + 2));
    __m256i q1 = _mm256_loadu_si256((const __m256i *)(blk + 34 + 2));
    *scale = _mm512_mask_blend_ps(Q8_0_B1_LANES, _mm512_set1_ps(half_to_float(blk)),
                                  _mm512_set1_ps(half_to_float(blk + 34)));
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1);
    return _mm512_xor_si512(w, _mm512_set1_epi8((char)0x80));
}

/* Row tiles are unpacked once per token block into this layout, chunk-major: for each chunk of
 * 64 elements, for each row: 64 unsigned codes, then 16 lane scales (d_w of the lane's block). */
#define ROW_CHUNK_BYTES 128

static void unpack_rows_q8(const uint8_t *w, size_t row_bytes, int nr, int64_t n_chunks, uint8_t *out) {
    for (int64_t c = 0; c < n_chunks; c++)
        for (int r = 0; r < nr; r++) {
            __m512 scale;
            __m512i codes = unpack_q8_0(w + (size_t)r * row_bytes + (size_t)c * 68, &scale);
            uint8_t *dst = out + ((size_t)c * TILE_R + (size_t)r) * ROW_CHUNK_BYTES;
            _mm512_storeu_si512((void *)dst, codes);
            _mm512_storeu_ps((float *)(dst + 64), scale);
        }
}

/* One tile of nr ≤ 4 unpacked rows × nt ≤ 4 tokens (constants after inlining). */
static inline __attribute__((always_inline)) void tile_q8(const uint8_t *rows, const uint8_t *act, size_t act_stride,
                                                         int64_t n_chunks, int nr, int nt, float *y, int64_t y_stride,
                                                         const float *bias) {
    __m512 acc[TILE_R][TILE_T];
    zero_tile(acc, nr, nt);
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
    store_tile(acc, nr, nt, y, y_stride, bias);
}

/* ---------------------------------------------------------------------------------------
 * Q4_0 tiles (superchunks of four blocks)
 * ------------------------------------------------------------------------------------- */

#define Q4_SC_BYTES 72 /* four 18-byte blocks */

/* The four 16-byte nibble runs of a superchunk in one vector: [qs0 | qs1 | qs2 | qs3]. */
static inline __attribute__((always_inline)) __m512i nibbles_q4_sc(const uint8_t *blk) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 2)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(blk + 20)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(blk + 38)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(blk + 56)), 3);
}

/* The same with one byte permute (AVX-512 VBMI): bytes 2-17, 20-35, 38-53 of the superchunk
 * from its first 64 bytes, qs3 from bytes 56-71. */
static inline __attribute__((always_inline, target("avx512vbmi"))) __m512i nibbles_q4_sc_vbmi(const uint8_t *blk) {
    const __m512i idx = _mm512_set_epi8(79, 78, 77, 76, 75, 74, 73, 72, 71, 70, 69, 68, 67, 66, 65, 64,  /* */
                                        53, 52, 51, 50, 49, 48, 47, 46, 45, 44, 43, 42, 41, 40, 39, 38,  /* */
                                        35, 34, 33, 32, 31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20,  /* */
                                        17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2);
    __m512i head = _mm512_loadu_si512((const void *)blk);
    __m512i tail = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(blk + 56)));
    return _mm512_permutex2var_epi8(head, idx, tail);
}

static inline __attribute__((always_inline)) __m512i low_nibbles(__m512i v) {
    return _mm512_and_si512(v, _mm512_set1_epi8(0x0F));
}
static inline __attribute__((always_inline)) __m512i high_nibbles(__m512i v) {
    return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
}
/* The same in one operation instead of two (GFNI): each output byte's bit i is the input
 * byte's bit i+4 (the affine matrix's byte 7-i selects it), bits 4-7 zero. */
static inline __attribute__((always_inline, target("gfni,avx512bw"))) __m512i high_nibbles_gfni(__m512i v) {
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(0x1020408000000000LL), 0);
}

/* Unpacked rows, superchunk-major: for each superchunk, for each row: 64 low codes, 64 high
 * codes, 16 lane scales. */
#define ROW_SC_BYTES 192

static void unpack_rows_q4(const uint8_t *w, size_t row_bytes, int nr, int64_t n_sc, uint8_t *out) {
    for (int64_t s = 0; s < n_sc; s++)
        for (int r = 0; r < nr; r++) {
            const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)s * Q4_SC_BYTES;
            __m512i v = nibbles_q4_sc(blk);
            float d[16];
            for (int l = 0; l < 16; l++) d[l] = half_to_float(blk + 18 * (l / 4));
            uint8_t *dst = out + ((size_t)s * TILE_R + (size_t)r) * ROW_SC_BYTES;
            _mm512_storeu_si512((void *)dst, low_nibbles(v));
            _mm512_storeu_si512((void *)(dst + 64), high_nibbles(v));
            memcpy(dst + 128, d, sizeof d);
        }
}

static inline __attribute__((always_inline)) void tile_q4(const uint8_t *rows, const uint8_t *act, size_t act_stride,
                                                         int64_t n_sc, int nr, int nt, float *y, int64_t y_stride,
                                                         const float *bias) {
    __m512 acc[TILE_R][TILE_T];
    zero_tile(acc, nr, nt);
    for (int64_t s = 0; s < n_sc; s++) {
        __m512i lo[TILE_R], hi[TILE_R];
        __m512 wd[TILE_R];
        const uint8_t *rs = rows + (size_t)s * TILE_R * ROW_SC_BYTES;
        for (int r = 0; r < nr; r++) {
            lo[r] = _mm512_loadu_si512((const void *)(rs + r * ROW_SC_BYTES));
            hi[r] = _mm512_loadu_si512((const void *)(rs + r * ROW_SC_BYTES + 64));
            wd[r] = _mm512_loadu_ps((const float *)(rs + r * ROW_SC_BYTES + 128));
        }
        for (int t = 0; t < nt; t++) {
            const uint8_t *a = act + (size_t)t * act_stride + (size_t)s * RT_GEMM_ACT_SC;
            __m512i xlo = _mm512_loadu_si512((const void *)a);
            __m512i xhi = _mm512_loadu_si512((const void *)(a + 64));
            __m512i base = _mm512_loadu_si512((const void *)(a + 128));
            __m512 xd = _mm512_loadu_ps((const float *)(a + 192));
            for (int r = 0; r < nr; r++) {
                __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(base, lo[r], xlo), hi[r], xhi);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(wd[r], xd), acc[r][t]);
            }
        }
    }
    store_tile(acc, nr, nt, y, y_stride, bias);
}

/* ---------------------------------------------------------------------------------------
 * Tiles of any shape
 * ------------------------------------------------------------------------------------- */

#define TILE_CASE(R, T)                                                                          \
    (is_q4 ? tile_q4(rows, act, act_stride, n_steps, R, T, y, y_stride, bias)                    \
           : tile_q8(rows, act, act_stride, n_steps, R, T, y, y_stride, bias))

/* Dispatch to a fully specialized tile for every (rows, tokens) shape; n_steps counts
 * superchunks (Q4_0) or chunks (Q8_0). */
static void tile_any(bool is_q4, const uint8_t *rows, const uint8_t *act, size_t act_stride, int64_t n_steps,
                     int nr, int nt, float *y, int64_t y_stride, const float *bias) {
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
    int64_t n_steps = is_q4 ? n_in / 128 : n_in / 64;
    _Alignas(64) uint8_t rows[RT_GEMM_MAX_IN / 64 * TILE_R * ROW_CHUNK_BYTES]; /* ≥ the Q4_0 layout */
    for (int64_t tb = 0; tb < n_tok; tb += TOKEN_BLOCK) {
        int64_t te = tb + TOKEN_BLOCK < n_tok ? tb + TOKEN_BLOCK : n_tok;
        for (int64_t r = r0; r < r1; r += TILE_R) {
            int nr = (int)(r1 - r < TILE_R ? r1 - r : TILE_R);
            if (is_q4) unpack_rows_q4(wb + (size_t)r * row_bytes, row_bytes, nr, n_steps, rows);
            else unpack_rows_q8(wb + (size_t)r * row_bytes, row_bytes, nr, n_steps, rows);
            for (int64_t t = tb; t < te; t += TILE_T) {
                int nt = (int)(te - t < TILE_T ? te - t : TILE_T);
                tile_any(is_q4, rows, ab + (size_t)t * act_stride, act_stride, n_steps, nr, nt,
                         y + t * y_stride + r, y_stride, bias ? bias + r : NULL);
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------
 * One token (token generation): weight rows streamed straight from memory, 8 (Q4_0) or 4
 * (Q8_0) at a time
 *
 * The arithmetic of each row is the tiles' for nt = 1 (same lane scales d_w·d_x, same vpdpbusd
 * from the -offset·Σx lanes, same accumulation and reduction), so a generated token gets the
 * bits a prompt batch gives that token. What changes is the work per weight byte: no unpacked
 * copy of the rows, the fp16 block scales of 16 blocks gathered, converted and multiplied by
 * the activation scales at once per row (one permute per step then picks a lane's d_w·d_x),
 * the activations loaded once per group of rows, and the next group of rows prefetched in
 * address order while this one is multiplied (one core alone keeps too few lines in flight
 * to reach its share of the bandwidth otherwise).
 * ------------------------------------------------------------------------------------- */

#define GEMV_ROWS 8 /* most rows per group (Q4_0; Q8_0 takes 4) */

/* Prefetches the next group's bytes in address order, spread evenly over this group's steps
 * (a burst of prefetches would wait for free line-fill buffers). */
typedef struct gemv_prefetch {
    const char *p, *end;
    size_t step;
} gemv_prefetch;

static inline __attribute__((always_inline)) gemv_prefetch prefetch_start(const uint8_t *w, size_t row_bytes, int nr,
                                                                          int group_rows, int64_t n_steps) {
    gemv_prefetch pf;
    pf.p = (const char *)w + (size_t)group_rows * row_bytes;
    pf.end = pf.p + (size_t)nr * row_bytes;
    pf.step = ((size_t)nr * row_bytes + (size_t)n_steps - 1) / (size_t)n_steps;
    return pf;
}

static inline __attribute__((always_inline)) void prefetch_step(gemv_prefetch *pf) {
    for (const char *p = pf->p; p < pf->p + pf->step && p < pf->end; p += 64) _mm_prefetch(p, _MM_HINT_T0);
    pf->p += pf->step;
}

/* The rows' sums (+ bias) stored as y[r]. */
static inline __attribute__((always_inline)) void store_rows(const __m512 *acc, int nr, float *y, const float *bias) {
    for (int r = 0; r < nr; r++) {
        float v = _mm512_reduce_add_ps(acc[r]);
        y[r] = bias ? v + bias[r] : v;
    }
}

/* d_w·d_x of the 16 blocks starting at blk (blocks blk_bytes apart), `present` of them. */
static inline __attribute__((always_inline)) __m512 block_scales16(const uint8_t *blk, int blk_bytes, __mmask16 present,
                                                                   __m512 xs) {
    const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32(blk_bytes));
    __m512i h = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), present, offsets, blk, 1);
    return _mm512_mul_ps(_mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)), xs);
}

static inline __attribute__((always_inline)) void gemv_group_q8(const uint8_t *w, size_t row_bytes, int nr,
                                                               const uint8_t *act, const float *act_scales,
                                                               int64_t n_chunks, float *y, const float *bias) {
    gemv_prefetch pf = prefetch_start(w, row_bytes, nr, 4, n_chunks);
    __m512 acc[GEMV_ROWS];
    for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < n_chunks; c0 += 8) {
        int nc = n_chunks - c0 < 8 ? (int)(n_chunks - c0) : 8;
        __mmask16 present = (__mmask16)((1u << (2 * nc)) - 1);
        __m512 xs = _mm512_maskz_loadu_ps(present, act_scales + 2 * c0);
        __m512 d[GEMV_ROWS];
        for (int r = 0; r < nr; r++) d[r] = block_scales16(w + (size_t)r * row_bytes + (size_t)c0 * 68, 34, present, xs);
        /* lane -> block of chunk c: [2c ×8, 2c+1 ×8] */
        __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
        for (int c = 0; c < nc; c++) {
            prefetch_step(&pf);
            const uint8_t *a = act + (size_t)(c0 + c) * RT_GEMM_ACT_CHUNK;
            __m512i x = _mm512_loadu_si512((const void *)a);
            __m512i base = _mm512_loadu_si512((const void *)(a + 64));
            for (int r = 0; r < nr; r++) {
                const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)(c0 + c) * 68;
                __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + 2))),
                                               _mm256_loadu_si256((const __m256i *)(blk + 36)), 1);
                u = _mm512_xor_si512(u, _mm512_set1_epi8((char)0x80));
                __m512i dot = _mm512_dpbusd_epi32(base, u, x);
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(lanes, d[r]), acc[r]);
            }
            lanes = _mm512_add_epi32(lanes, _mm512_set1_epi32(2));
        }
    }
    store_rows(acc, nr, y, bias);
}

/* Groups of nr Q4_0 rows; defined twice, the nibbles gathered by NIBBLES and the high ones
 * taken by HIGH, for CPUs with and without AVX-512 VBMI and GFNI (ATTR: the target of the copy
 * that may use them). */
#define GEMV_Q4(NAME, NIBBLES, HIGH, ATTR)                                                                       \
    static inline __attribute__((always_inline)) ATTR void NAME##_group(const uint8_t *w, size_t row_bytes,      \
                                                                        int nr, const uint8_t *act,             \
                                                                        const float *act_scales, int64_t n_sc,  \
                                                                        float *y, const float *bias) {          \
        gemv_prefetch pf = prefetch_start(w, row_bytes, nr, 8, n_sc);                                           \
        __m512 acc[GEMV_ROWS];                                                                                   \
        for (int r = 0; r < nr; r++) acc[r] = _mm512_setzero_ps();                                               \
        for (int64_t s0 = 0; s0 < n_sc; s0 += 4) {                                                               \
            int ns = n_sc - s0 < 4 ? (int)(n_sc - s0) : 4;                                                       \
            __mmask16 present = (__mmask16)((1u << (4 * ns)) - 1);                                               \
            __m512 xs = _mm512_maskz_loadu_ps(present, act_scales + 4 * s0);                                     \
            __m512 d[GEMV_ROWS];                                                                                 \
            for (int r = 0; r < nr; r++)                                                                         \
                d[r] = block_scales16(w + (size_t)r * row_bytes + (size_t)s0 * Q4_SC_BYTES, 18, present, xs);    \
            /* lane -> block of superchunk s: [4s ×4, 4s+1 ×4, 4s+2 ×4, 4s+3 ×4] */                           \
            __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);                   \
            for (int s = 0; s < ns; s++) {                                                                       \
                prefetch_step(&pf);                                                                              \
                const uint8_t *a = act + (size_t)(s0 + s) * RT_GEMM_ACT_SC;                                      \
                __m512i xlo = _mm512_loadu_si512((const void *)a);                                               \
                __m512i xhi = _mm512_loadu_si512((const void *)(a + 64));                                        \
                __m512i base = _mm512_loadu_si512((const void *)(a + 128));                                      \
                for (int r = 0; r < nr; r++) {                                                                   \
                    __m512i v = NIBBLES(w + (size_t)r * row_bytes + (size_t)(s0 + s) * Q4_SC_BYTES);             \
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(base, low_nibbles(v), xlo),            \
                                                      HIGH(v), xhi);                                             \
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_permutexvar_ps(lanes, d[r]), acc[r]); \
                }                                                                                                \
                lanes = _mm512_add_epi32(lanes, _mm512_set1_epi32(4));                                           \
            }                                                                                                    \
        }                                                                                                        \
        store_rows(acc, nr, y, bias);                                                                            \
    }                                                                                                            \
    static ATTR void NAME(const uint8_t *wb, size_t row_bytes, int64_t r0, int64_t r1, const uint8_t *ab,       \
                          const float *xs, int64_t n_sc, float *y, const float *bias) {                          \
        int64_t r = r0;                                                                                          \
        for (; r + 8 <= r1; r += 8)                                                                              \
            NAME##_group(wb + (size_t)r * row_bytes, row_bytes, 8, ab, xs, n_sc, y + r, bias ? bias + r : NULL); \
        for (; r < r1; r++)                                                                                      \
            NAME##_group(wb + (size_t)r * row_bytes, row_bytes, 1, ab, xs, n_sc, y + r, bias ? bias + r : NULL); \
    }

GEMV_Q4(gemv_rows_q4, nibbles_q4_sc, high_nibbles, )
GEMV_Q4(gemv_rows_q4_vbmi, nibbles_q4_sc_vbmi, high_nibbles_gfni, __attribute__((target("avx512vbmi,gfni"))))

static int gemv_vbmi = -1; /* the VBMI+GFNI copy is used: CPU support, probed once */

void rt_gemv_use_vbmi(bool enabled) {
    bool cpu = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
    __atomic_store_n(&gemv_vbmi, enabled && cpu ? 1 : 0, __ATOMIC_RELAXED);
}

void rt_gemv_rows_avx512(lq_type type, const void *weights, size_t row_bytes, int64_t r0, int64_t r1,
                         const void *act, int64_t n_in, float *y, const float *bias) {
    int vbmi = __atomic_load_n(&gemv_vbmi, __ATOMIC_RELAXED);
    if (vbmi < 0) rt_gemv_use_vbmi(true), vbmi = __atomic_load_n(&gemv_vbmi, __ATOMIC_RELAXED);
    const uint8_t *wb = (const uint8_t *)weights;
    const uint8_t *ab = (const uint8_t *)act;
    /* the activations' block scales d_x, back out of the packed lane scales (the first lane
     * of each block) */
    float xs[RT_GEMM_MAX_IN / 32];
    if (type == LQ_TYPE_Q4_0) {
        int64_t n_sc = n_in / 128;
        for (int64_t s = 0; s < n_sc; s++)
            for (int k = 0; k < 4; k++) memcpy(&xs[4 * s + k], ab + (size_t)s * RT_GEMM_ACT_SC + 192 + 16 * k, 4);
        if (vbmi) gemv_rows_q4_vbmi(wb, row_bytes, r0, r1, ab, xs, n_sc, y, bias);
        else gemv_rows_q4(wb, row_bytes, r0, r1, ab, xs, n_sc, y, bias);
        return;
    }
    int64_t n_chunks = n_in / 64;
    for (int64_t c = 0; c < n_chunks; c++) {
        memcpy(&xs[2 * c], ab + (size_t)c * RT_GEMM_ACT_CHUNK + 128, 4);
        memcpy(&xs[2 * c + 1], ab + (size_t)c * RT_GEMM_ACT_CHUNK + 128 + 32, 4);
    }
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        gemv_group_q8(wb + (size_t)r * row_bytes, row_bytes, 4, ab, xs, n_chunks, y + r, bias ? bias + r : NULL);
    for (; r < r1; r++)
        gemv_group_q8(wb + (size_t)r * row_bytes, row_bytes, 1, ab, xs, n_chunks, y + r, bias ? bias + r : NULL);
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
