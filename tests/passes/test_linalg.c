/* test_linalg: the linear-algebra backend (linalg.h) against naive loops. */
#include "test.h"

#include "linalg.h"

static void fill(float *a, int64_t n, uint64_t *s) {
    for (int64_t i = 0; i < n; i++) a[i] = test_rand_normal(s);
}

/* op(A)[i][p] of a row-major matrix stored with leading dimension ld */
static double op_at(const float *a, int64_t ld, bool t, int64_t i, int64_t p) {
    return t ? a[p * ld + i] : a[i * ld + p];
}

static void test_sgemm(void) {
    uint64_t s = 7;
    const int64_t m = 37, n = 29, k = 53, pad = 3;
    float *a = malloc(sizeof(float) * (m + pad) * (k + pad)), *b = malloc(sizeof(float) * (k + pad) * (n + pad));
    float *c = malloc(sizeof(float) * m * (n + pad)), *c0 = malloc(sizeof(float) * m * (n + pad));
    fill(a, (m + pad) * (k + pad), &s);
    fill(b, (k + pad) * (n + pad), &s);
    fill(c0, m * (n + pad), &s);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
            memcpy(c, c0, sizeof(float) * m * (n + pad));
            lq_la_sgemm(ta, tb, m, n, k, 0.5f, a, lda, b, ldb, -2.0f, c, ldc);
            double max_err = 0;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) {
                    double ref = -2.0 * c0[i * ldc + j];
                    for (int64_t p = 0; p < k; p++) ref += 0.5 * op_at(a, lda, ta, i, p) * op_at(b, ldb, tb, p, j);
                    double e = fabs(ref - c[i * ldc + j]);
                    if (e > max_err) max_err = e;
                }
            CHECKF(max_err < 1e-4, "ta=%d tb=%d max err %g", ta, tb, max_err);
            /* the padding columns of C are untouched */
            bool pad_ok = true;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = n; j < ldc; j++) pad_ok &= c[i * ldc + j] == c0[i * ldc + j];
            CHECK(pad_ok);
        }
    free(a), free(b), free(c), free(c0);
}

static void test_syrk(void) {
    uint64_t s = 11;
    const int64_t n = 300, k = 77; /* n spans 3 panels, the last one partial */
    float *x = malloc(sizeof(float) * n * k), *scratch = malloc(sizeof(float) * n * n);
    double *h1 = calloc((size_t)(n * n), sizeof(double)), *h3 = calloc((size_t)(n * n), sizeof(double));
    fill(x, n * k, &s);
    for (int64_t i = 0; i < n * n; i++) h1[i] = h3[i] = (double)((i / n + i % n) % 7); /* it accumulates (symmetric start) */
    lq_la_syrk_acc(n, k, x, n, h1, scratch, 1);
    lq_la_syrk_acc(n, k, x, n, h3, scratch, 3);
    CHECK(memcmp(h1, h3, sizeof(double) * n * n) == 0); /* same bits at any thread count */
    double max_err = 0;
    bool sym = true;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double ref = (double)((i + j) % 7);
            for (int64_t p = 0; p < k; p++) ref += (double)x[p * n + i] * x[p * n + j];
            double e = fabs(ref - h1[i * n + j]);
            if (e > max_err) max_err = e;
            sym &= h1[i * n + j] == h1[j * n + i];
        }
    CHECKF(max_err < 1e-3, "syrk max err %g", max_err);
    CHECK(sym);
    free(x), free(scratch), free(h1), free(h3);
}

static void test_cholesky(void) {
    uint64_t s = 5;
    const int64_t n = 150, k = 200;
    float *b = malloc(sizeof(float) * n * k);
    fill(b, n * k, &s);
    double *a = calloc((size_t)(n * n), sizeof(double)), *l = malloc(sizeof(double) * n * n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = i == j ? 1.0 : 0.0;
            for (int64_t p = 0; p < k; p++) v += (double)b[i * k + p] * b[j * k + p] / k;
            a[i * n + j] = v;
        }
    memcpy(l, a, sizeof(double) * n * n);
    CHECK(lq_la_potrf_lower(n, l, n) == 0);
    double max_err = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0;
            for (int64_t p = 0; p <= j; p++) v += l[i * n + p] * l[j * n + p];
            if (fabs(v - a[i * n + j]) > max_err) max_err = fabs(v - a[i * n + j]);
        }
    CHECKF(max_err < 1e-10, "L·Lᵀ - A: %g", max_err);
    CHECK(lq_la_potri_lower(n, l, n) == 0);
    max_err = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = 0;
            for (int64_t p = 0; p < n; p++) v += a[i * n + p] * l[p * n + j];
            double e = fabs(v - (i == j ? 1.0 : 0.0));
            if (e > max_err) max_err = e;
        }
    CHECKF(max_err < 1e-9, "A·A⁻¹ - I: %g", max_err);
    /* indefinite: the 3rd leading minor fails */
    double ind[16] = {4, 1, 0, 0, 1, 3, 0, 0, 0, 0, -1, 0, 0, 0, 0, 2};
    CHECK(lq_la_potrf_lower(4, ind, 4) == 3);
    double sing[4] = {1, 1, 1, 1};
    CHECK(lq_la_potrf_lower(2, sing, 2) == 2);
    free(b), free(a), free(l);
}

/* The blocked, threaded Cholesky and triangular inverse GPTQ uses (tiles of 256: n = 600 spans
 * three tile rows with a partial one): same factor as LAPACK's, L·L⁻¹ = I, identical bytes at 1
 * and 3 threads, failures reported at the right minor. */
static void test_blocked(void) {
    uint64_t s = 9;
    const int64_t n = 600, k = 700;
    float *b = malloc(sizeof(float) * n * k);
    fill(b, n * k, &s);
    double *a = malloc(sizeof(double) * n * n), *l1 = malloc(sizeof(double) * n * n);
    double *l3 = malloc(sizeof(double) * n * n), *ref = malloc(sizeof(double) * n * n);
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = i == j ? 0.5 : 0.0;
            for (int64_t p = 0; p < k; p++) v += (double)b[i * k + p] * b[j * k + p] / k;
            a[i * n + j] = v;
        }
    memcpy(ref, a, sizeof(double) * n * n);
    memcpy(l1, a, sizeof(double) * n * n);
    memcpy(l3, a, sizeof(double) * n * n);
    CHECK(lq_la_potrf_lower(n, ref, n) == 0);
    CHECK(lq_la_potrf_lower_mt(n, l1, n, 1) == 0 && lq_la_potrf_lower_mt(n, l3, n, 3) == 0);
    double max_err = 0;
    bool same = true;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            max_err = fmax(max_err, fabs(l1[i * n + j] - ref[i * n + j]));
            same &= l1[i * n + j] == l3[i * n + j];
        }
    CHECKF(max_err < 1e-10, "blocked Cholesky vs LAPACK: %g", max_err);
    CHECK(same);
    memcpy(ref, l1, sizeof(double) * n * n); /* L */
    CHECK(lq_la_trtri_lower(n, l1, n, 1) == 0 && lq_la_trtri_lower(n, l3, n, 3) == 0);
    max_err = 0;
    same = true;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j <= i; j++) {
            double v = 0;
            for (int64_t p = j; p <= i; p++) v += ref[i * n + p] * l1[p * n + j];
            max_err = fmax(max_err, fabs(v - (i == j ? 1.0 : 0.0)));
            same &= l1[i * n + j] == l3[i * n + j];
        }
    CHECKF(max_err < 1e-9, "L·L⁻¹ - I: %g", max_err);
    CHECK(same);
    /* not positive definite in the third tile: the failing minor's order comes back */
    memcpy(l1, a, sizeof(double) * n * n);
    l1[530 * n + 530] = -1.0;
    int64_t bad = lq_la_potrf_lower_mt(n, l1, n, 2);
    CHECKF(bad >= 512 && bad <= 531, "failed minor %lld", (long long)bad);
    double zero[4] = {1, 0, 2, 0};
    CHECK(lq_la_trtri_lower(2, zero, 2, 2) == 2);
    free(b), free(a), free(l1), free(l3), free(ref);
}

int main(void) {
    fprintf(stderr, "linalg backend: %s\n", lq_la_backend());
    test_sgemm();
    test_syrk();
    test_cholesky();
    test_blocked();
    TEST_DONE();
}
