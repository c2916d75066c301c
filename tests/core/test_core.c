/* test_core.c — type traits, error records, fp16/bf16 scalar conversion, parallel_for. */
#include "test.h"

#include "codecs/common.h"

static void test_traits(void) {
    const lq_type_traits *t = lq_type_get(LQ_TYPE_Q4_K);
    CHECK(t && t->block_size == 256 && t->block_bytes == 144 && fabs(t->bpw - 4.5) < 1e-12);
    CHECK(lq_type_get(4) == NULL && lq_type_get(5) == NULL && lq_type_get(31) == NULL);
    CHECK(lq_type_get(-1) == NULL && lq_type_get(LQ_TYPE_COUNT) == NULL);
    CHECK(lq_type_from_name("Q6_K") == LQ_TYPE_Q6_K);
    CHECK(lq_type_from_name("iq4_xs") == LQ_TYPE_IQ4_XS);
    CHECK(lq_type_from_name("nope") == -1);
    CHECK(lq_row_size(LQ_TYPE_Q4_0, 4096) == 128 * 18);
    CHECK(lq_row_size(LQ_TYPE_Q4_0, 100) == 0);
    CHECK(lq_row_size(LQ_TYPE_F16, 7) == 14);
    /* every known type's bpw matches its block geometry */
    for (int i = 0; i < LQ_TYPE_COUNT; i++) {
        const lq_type_traits *ti = lq_type_get(i);
        if (!ti) continue;
        CHECK(ti->id == i);
        CHECK(fabs(ti->bpw - 8.0 * (double)ti->block_bytes / ti->block_size) < 1e-12);
    }
}

/* fp16 conversion checked exhaustively against an independent double-based reference. */
static uint16_t ref_fp16(float f) {
    if (isnan(f)) return 0x7E00;
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7C00;
    /* candidates: enumerate the two neighbouring halfs by scanning (slow but obviously right) */
    uint16_t lo = 0, hi = 0x7BFF;
    while (lo < hi) { /* largest h with value(h) <= a */
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if ((double)lq_fp16_to_f32(mid) <= a) lo = mid; else hi = (uint16_t)(mid - 1);
    }
    double vlo = lq_fp16_to_f32(lo);
    if (vlo == a) return sign | lo;
    double vhi = lq_fp16_to_f32((uint16_t)(lo + 1));
    double dlo = a - vlo, dhi = vhi - a;
    uint16_t r = (dlo < dhi) ? lo : (dhi < dlo) ? (uint16_t)(lo + 1) : ((lo & 1) ? (uint16_t)(lo + 1) : lo);
    return sign | r;
}

static void test_fp16(void) {
    /* decode: every half value round-trips through float */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = lq_fp16_to_f32((uint16_t)h);
        uint16_t back = lq_fp16_from_f32(f);
        bool is_nan = ((h & 0x7C00) == 0x7C00) && (h & 0x3FF);
        if (!is_nan && back != h) bad++;
    }
    CHECKF(bad == 0, "%d half values do not round-trip", bad);
    /* encode: random floats across the whole range, plus halfway cases */
    uint64_t s = 0x9E3779B97F4A7C15ull;
    bad = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)test_rand_u64(&s);
        /* concentrate on the fp16 exponent range */
        bits = (bits & 0x807FFFFFu) | ((uint32_t)(96 + (test_rand_u64(&s) % 50)) << 23);
        float f = lq_bits_f32(bits);
        if (lq_fp16_from_f32(f) != ref_fp16(f)) bad++;
    }
    for (uint32_t h = 0; h < 0x7BFF; h += 7) { /* exact midpoints between neighbours */
        double mid = 0.5 * ((double)lq_fp16_to_f32((uint16_t)h) + (double)lq_fp16_to_f32((uint16_t)(h + 1)));
        float f = (float)mid;
        if ((double)f == mid && lq_fp16_from_f32(f) != ref_fp16(f)) bad++;
    }
    CHECKF(bad == 0, "%d fp16 encodings differ from the reference", bad);
    CHECK(lq_fp16_from_f32(NAN) == 0x7E00);
    CHECK(lq_fp16_from_f32(INFINITY) == 0x7C00);
    CHECK(lq_fp16_from_f32(-1e9f) == 0xFC00);
    CHECK(lq_fp16_from_f32(65519.0f) == 0x7BFF);
    CHECK(lq_fp16_from_f32(65520.0f) == 0x7C00);
    CHECK(lq_fp32_to_fp16(1.0f) == 0x3C00 && lq_fp16_to_fp32(0x3C00) == 1.0f);
}

static void test_bf16(void) {
    CHECK(lq_fp32_to_bf16(1.0f) == 0x3F80);
    CHECK(lq_bf16_to_fp32(0x3F80) == 1.0f);
    /* 1 + 2^-8 is a tie between 1 and 1+2^-7: rounds to even (1.0) */
    CHECK(lq_fp32_to_bf16(1.00390625f) == 0x3F80);
    CHECK(lq_fp32_to_bf16(1.01171875f) == 0x3F82); /* 1+3*2^-8: tie → even (1+2^-6) */
    CHECK((lq_fp32_to_bf16(NAN) & 0x7FC0) == 0x7FC0);
}

static void test_errors(void) {
    lq_error err;
    lq_error_clear(&err);
    CHECK(err.code == LQ_OK && err.msg[0] == 0);
    CHECK(strcmp(lq_status_name(LQ_ERR_FORMAT), "format error") == 0);
}

typedef struct { int64_t *out; } par_ctx;
static void par_fill(void *ctx, int64_t b, int64_t e, int t) {
    (void)t;
    par_ctx *c = (par_ctx *)ctx;
    for (int64_t i = b; i < e; i++) c->out[i] += i * 3 + 1;
}

static void test_parallel(void) {
    enum { N = 1001 };
    int64_t out[N];
    for (int threads = 1; threads <= 7; threads++) {
        memset(out, 0, sizeof out);
        par_ctx c = {out};
        lq_parallel_for(N, threads, par_fill, &c);
        int bad = 0;
        for (int i = 0; i < N; i++) bad += out[i] != i * 3 + 1; /* each index exactly once */
        CHECKF(bad == 0, "threads=%d: %d indices wrong", threads, bad);
    }
}

/* The persistent pool splits work exactly like lq_parallel_for and is reusable. */
static void test_pool(void) {
    enum { N = 777 };
    int64_t out[N];
    for (int threads = 1; threads <= 4; threads++) {
        lq_pool *pool = lq_pool_create(threads);
        CHECK(pool != NULL);
        for (int round = 0; round < 50; round++) { /* many loops on the same workers */
            memset(out, 0, sizeof out);
            par_ctx c = {out};
            lq_pool_run(pool, N - round, threads, par_fill, &c);
            int bad = 0;
            for (int i = 0; i < N - round; i++) bad += out[i] != i * 3 + 1;
            for (int i = N - round; i < N; i++) bad += out[i] != 0;
            CHECKF(bad == 0, "pool threads=%d round=%d: %d indices wrong", threads, round, bad);
        }
        lq_pool_free(pool);
    }
    memset(out, 0, sizeof out);
    par_ctx c = {out};
    lq_pool_run(NULL, N, 4, par_fill, &c); /* no pool: runs on the caller */
    CHECK(out[N - 1] == (N - 1) * 3 + 1);
}

int main(void) {
    test_traits();
    test_fp16();
    test_bf16();
    test_errors();
    test_parallel();
    test_pool();
    TEST_DONE();
}
