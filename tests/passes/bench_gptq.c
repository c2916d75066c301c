/* bench_gptq: GPTQ's work on the linears of one decoder layer of a Llama shape (default
 * TinyLlama-1.1B: hidden 2048, 32 heads / 4 KV heads, ffn 5632) with T calibration tokens,
 * against the OpenBLAS sgemm rate measured in the same run (not a unit test; run by
 * scripts/bench_gptq.sh).
 *
 *   bench_gptq [T=16384] [n_threads=0] [type=q4_K] [n_embd=2048] [n_ff=5632] [n_kv=256]
 *
 * Reported per linear input / weight:
 *   hessian   Σ x·xᵀ over T tokens: n²·T multiply-adds computed (upper panels), GFLOP/s = 2·n²·T/t
 *   cholesky  Cholesky → inverse → Cholesky of the inverse (fp64): n³ flops (n³/3 + 2n³/3... as
 *             LAPACK counts: potrf n³/3, potri 2n³/3, potrf n³/3 → 4n³/3)
 *   sweep     the column sweep with lazy updates: 2·n_out·n_in² flops (every weight's error is
 *             propagated to all later columns of its row) + the grid fits
 * and a sgemm of the same thread count on a (T × n_embd)·(n_embd × n_embd) product as the
 * reference rate. Inputs are random (correlated through a shared latent factor). */
#include "test.h"

#include "passes_internal.h"

#include <time.h>

/* The machine is shared: rates are given per core of process CPU time (flops / CPU seconds),
 * which stays meaningful under time slicing, next to wall-clock seconds. */
static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
typedef struct timer {
    double wall, cpu;
} timer;
static timer start(void) { return (timer){wall_s(), cpu_s()}; }
static timer stop(timer t0) { return (timer){wall_s() - t0.wall, cpu_s() - t0.cpu}; }

static void unused_counters(void) { (void)test_checks, (void)test_failures; }


static float *randn(int64_t n, uint64_t seed) {
    float *a = malloc(sizeof(float) * n);
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) a[i] = test_rand_normal(&s);
    return a;
}

typedef struct shape {
    const char *name;
    int64_t n_in, n_out;
} shape;

int main(int argc, char **argv) {
    (void)unused_counters;
    int64_t t = argc > 1 ? atoll(argv[1]) : 16384;
    int n_threads = argc > 2 ? atoi(argv[2]) : 0;
    int type = argc > 3 ? lq_type_from_name(argv[3]) : LQ_TYPE_Q4_K;
    int64_t n_embd = argc > 4 ? atoll(argv[4]) : 2048, n_ff = argc > 5 ? atoll(argv[5]) : 5632;
    int64_t n_kv = argc > 6 ? atoll(argv[6]) : 256;
    if (n_threads <= 0) n_threads = lq_n_cpus();
    if (type < 0) return 2;
    double gemm_rate = 0;
    printf("bench_gptq: T=%lld tokens, %d threads, type %s, n_embd %lld, n_ff %lld, kv %lld\n", (long long)t,
           n_threads, lq_type_get(type)->name, (long long)n_embd, (long long)n_ff, (long long)n_kv);

    /* reference: sgemm rate */
    {
        int64_t m = t < 4096 ? t : 4096;
        float *x = randn(m * n_embd, 1), *w = randn(n_embd * n_embd, 2), *y = malloc(sizeof(float) * m * n_embd);
        lq_pass_matmul(x, m, w, n_embd, n_embd, y, n_threads); /* warm-up */
        timer t0 = start();
        lq_pass_matmul(x, m, w, n_embd, n_embd, y, n_threads);
        timer dt = stop(t0);
        gemm_rate = 2.0 * m * n_embd * n_embd / dt.cpu / 1e9;
        printf("sgemm reference: %lld x %lld x %lld: %.3f s wall, %.1f GFLOP/s per core (CPU time)\n", (long long)m,
               (long long)n_embd, (long long)n_embd, dt.wall, gemm_rate);
        free(x), free(w), free(y);
    }
    const shape inputs[] = {{"attn_norm→q,k,v", n_embd, 0}, {"ffn_norm→gate,up", n_embd, 0}, {"down input", n_ff, 0}};
    const shape weights[] = {{"attn_q", n_embd, n_embd}, {"attn_k", n_embd, n_kv}, {"attn_v", n_embd, n_kv},
                             {"attn_output", n_embd, n_embd}, {"ffn_gate", n_embd, n_ff},
                             {"ffn_up", n_embd, n_ff}, {"ffn_down", n_ff, n_embd}};
    double total_h = 0, total_c = 0, total_s = 0;
    double *hess[3];
    for (int k = 0; k < 3; k++) {
        int64_t n = inputs[k].n_in;
        /* x = z·A + noise, z of 64 latent dims: correlated channels like real activations */
        float *z = randn(t * 64, 10 + k), *a = randn(64 * n, 20 + k), *x = randn(t * n, 30 + k);
        lq_la_sgemm(false, false, t, n, 64, 1.0f, z, 64, a, n, 0.3f, x, n);
        free(z), free(a);
        lq_hessian hs;
        lq_error err;
        if (lq_hessian_init(&hs, n, &err)) return 1;
        timer t0 = start();
        for (int64_t r = 0; r < t; r += 4096) lq_hessian_add(&hs, x + r * n, t - r < 4096 ? t - r : 4096, n_threads);
        timer dt = stop(t0);
        lq_hessian_finish(&hs);
        double rate = (double)n * n * t / dt.cpu / 1e9;
        printf("hessian  %-18s n=%-5lld %7.3f s wall  %6.1f GFLOP/s per core = %3.0f %% of sgemm\n", inputs[k].name,
               (long long)n, dt.wall, rate, 100 * rate / gemm_rate);
        total_h += dt.wall;
        hess[k] = hs.h;
        free(hs.scratch);
        free(x);
        /* factorisation (as lq_gptq_quantize does it) */
        double *f = malloc(sizeof(double) * n * n);
        memcpy(f, hess[k], sizeof(double) * n * n);
        double mean = 0;
        for (int64_t i = 0; i < n; i++) mean += f[i * n + i];
        for (int64_t i = 0; i < n; i++) f[i * n + i] += 0.01 * mean / n;
        t0 = start();
        int64_t bad = lq_la_potrf_lower(n, f, n);
        bad |= lq_la_potri_lower(n, f, n);
        bad |= lq_la_potrf_lower(n, f, n);
        dt = stop(t0);
        rate = 4.0 * n * n * n / 3 / dt.cpu / 1e9;
        printf("cholesky %-18s n=%-5lld %7.3f s wall  %6.1f GFLOP/s per core = %3.0f %% of sgemm (fp64, 1 thread)%s\n",
               inputs[k].name, (long long)n, dt.wall, rate, 100 * rate / gemm_rate, bad ? " FAILED" : "");
        total_c += dt.wall;
        free(f);
    }
    for (size_t wi = 0; wi < sizeof weights / sizeof weights[0]; wi++) {
        const shape *s = &weights[wi];
        const double *h = s->n_in == n_ff ? hess[2] : (wi >= 4 ? hess[1] : hess[0]);
        float *w = randn(s->n_out * s->n_in, 100 + wi);
        for (int64_t i = 0; i < s->n_out * s->n_in; i++) w[i] *= 0.02f;
        void *q = malloc(lq_row_size(type, s->n_in) * s->n_out);
        lq_gptq_opts o = {0.01, 128, n_threads, NULL};
        lq_gptq_report rep;
        lq_error err;
        timer t0 = start();
        if (lq_gptq_quantize(type, s->name, w, s->n_out, s->n_in, h, &o, q, NULL, &rep, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        timer dt = stop(t0);
        double n = (double)s->n_in, rate = 2.0 * s->n_out * n * n / dt.cpu / 1e9;
        printf("gptq     %-18s %5lld x %-5lld %7.3f s wall; update work 2·n_out·n_in² at %6.1f GFLOP/s per core = "
               "%3.0f %% of sgemm (incl. factorisation and grid fits)%s\n",
               s->name, (long long)s->n_out, (long long)s->n_in, dt.wall, rate, 100 * rate / gemm_rate,
               rep.note[0] ? " (note)" : "");
        total_s += dt.wall;
        free(w), free(q);
    }
    printf("layer total (wall): hessian %.2f s, factorisation %.2f s (per input width; lq_gptq_quantize repeats it "
           "per weight), gptq of the 7 weights incl. their factorisations %.2f s\n", total_h, total_c, total_s);
    for (int k = 0; k < 3; k++) free(hess[k]);
    return 0;
}
