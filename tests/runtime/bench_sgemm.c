/* bench_sgemm.c — the runtime's batched product of F16 weights, dot path vs sgemm path (not a
 * test; built beside the tests, run by hand).
 *
 *   bench_sgemm [n_in n_out n_tok threads [model_dir text chunks]]
 *
 * Times rt_matmul_run on a random F16 matrix (default 2048 × 8192, 512 tokens, 2 threads: a
 * 1.1B checkpoint's MLP shape) with the sgemm path off and on, in GFLOP/s, and the same for Q4_K
 * weights with f32 activations (sgemm only where RT_SGEMM_QUANTIZED enables it); with a model and a
 * text, also times lq_ppl_run (512-token chunks) both ways and prints both perplexities. */
#include "test.h"

#include "runtime/rt_internal.h"

#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_product(lq_type type, bool f32_act, int64_t n_in, int64_t n_out, int64_t n_tok, int threads) {
    uint64_t seed = 1;
    size_t n_w = (size_t)(n_in * n_out);
    float *wf = malloc(n_w * sizeof(float)), *x = malloc((size_t)(n_in * n_tok) * sizeof(float));
    size_t row_bytes = lq_row_size(type, n_in);
    char *wq = malloc(row_bytes * (size_t)n_out);
    float *y = malloc((size_t)(n_out * n_tok) * sizeof(float));
    for (size_t i = 0; i < n_w; i++) wf[i] = test_rand_normal(&seed) * 0.02f;
    for (int64_t i = 0; i < n_in * n_tok; i++) x[i] = test_rand_normal(&seed);
    lq_error err;
    CHECK_OK(lq_quantize_rows_mt(type, wf, wq, n_out, n_in, NULL, threads, &err), &err);
    rt_weight w;
    memset(&w, 0, sizeof w);
    w.type = type, w.n_in = n_in, w.n_out = n_out, w.row_bytes = row_bytes, w.data = wq;
    rt_matmul mm = {&w, NULL, y};
    lq_pool *pool = lq_pool_create(threads);
    rt_act_buf act[4];
    memset(act, 0, sizeof act);
    double flop = 2.0 * (double)n_in * (double)n_out * (double)n_tok;
    for (int on = 0; on < 2; on++) {
        rt_matmul_set_sgemm(on);
        CHECK_OK(rt_matmul_run(&mm, 1, x, n_tok, f32_act, pool, threads, act, &err), &err); /* warm-up */
        double best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            CHECK_OK(rt_matmul_run(&mm, 1, x, n_tok, f32_act, pool, threads, act, &err), &err);
            double dt = now_s() - t0;
            if (dt < best) best = dt;
        }
        printf("%s%s %lld x %lld, %lld tokens, %d threads, %s path: %.3f s, %.1f GFLOP/s\n", lq_type_get(type)->name,
               f32_act ? " (f32 act)" : "", (long long)n_in, (long long)n_out, (long long)n_tok, threads,
               rt_matmul_uses_sgemm(&w, f32_act, n_tok) ? "sgemm" : "dot", best, flop / best * 1e-9);
    }
    rt_matmul_set_sgemm(true);
    for (int k = 0; k < 4; k++) free(act[k].data);
    lq_pool_free(pool);
    free(wf), free(x), free(wq), free(y);
}

static void bench_ppl(const char *model, const char *text, int chunks, int threads) {
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(model, &m, &err), &err);
    if (!m) return;
    lq_ppl_tokens toks;
    CHECK_OK(lq_ppl_tokens_from_text(m, text, &toks, &err), &err);
    double ppl[2];
    for (int on = 0; on < 2; on++) {
        rt_matmul_set_sgemm(on);
        lq_runtime_opts o = {threads, 512, 512, false, LQ_ACT_INT8_NONE};
        lq_runtime *rt = NULL;
        CHECK_OK(lq_runtime_create(m, &o, &rt, &err), &err);
        lq_ppl_opts po = {512, chunks, NULL, NULL};
        lq_ppl_result res;
        memset(&res, 0, sizeof res);
        double t0 = now_s();
        CHECK_OK(lq_ppl_run(m, rt, &toks, &po, NULL, NULL, &res, &err), &err);
        double dt = now_s() - t0;
        ppl[on] = res.ppl;
        printf("ppl %s, %d chunks, %d threads, %s path: PPL %.6f, %.2f s\n", model, chunks, threads,
               on ? "sgemm" : "dot", res.ppl, dt);
        lq_ppl_result_free(&res);
        lq_runtime_free(rt);
    }
    printf("PPL relative change: %.3g\n", (ppl[1] - ppl[0]) / ppl[0]);
    rt_matmul_set_sgemm(true);
    lq_ppl_tokens_free(&toks);
    lq_model_close(m);
}

int main(int argc, char **argv) {
    int64_t n_in = argc > 1 ? atoll(argv[1]) : 2048, n_out = argc > 2 ? atoll(argv[2]) : 8192;
    int64_t n_tok = argc > 3 ? atoll(argv[3]) : 512;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    bench_product(LQ_TYPE_F16, false, n_in, n_out, n_tok, threads);
    bench_product(LQ_TYPE_Q4_K, true, n_in, n_out, n_tok, threads);
    if (argc > 7) bench_ppl(argv[5], argv[6], atoi(argv[7]), threads);
    TEST_DONE();
}
