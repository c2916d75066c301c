/* bench_gptq: GPTQ's work on the linears of one decoder layer of a Llama shape (default: the
 * synthetic 1.1B of `lq synth --shape 1.1b`: hidden 2048, 32 heads / 8 KV heads of 64, ffn 8192)
 * with T calibration tokens, each phase as GFLOP/s against the OpenBLAS GEMM rate of the same
 * precision measured in the same run (not a unit test; run by scripts/bench_gptq.sh).
 *
 *   bench_gptq [T=16384] [n_threads=0] [type=q4_K] [n_embd=2048] [n_ff=8192] [n_kv=512]
 *
 * Phases and the flops counted (what the code computes):
 *   hessian   fp32 products of the upper panels of Σ x·xᵀ: n²·T (the mirror half is copied)
 *             → compared with sgemm
 *   factor    fp64: Cholesky of J·(H + damp·I)·J (n³/3) + triangular inverse (n³/3) → dgemm
 *   sweep     GPTQ's column sweep: error propagation 2·n_out·n², fp32 (lazy sgemm + in-block
 *             updates; the grid fits are extra work not counted) → sgemm. The grid fits are the
 *             codec's own (the same fits RTN makes, once per block): "sweep - RTN" subtracts the
 *             time of RTN quantizing the same matrix to show the propagation work alone.
 * Both references run at the same thread count, split into fixed row chunks like the passes.
 * The machine is shared: rates are given per core of process CPU time (flops / CPU seconds),
 * which stays meaningful under time slicing, next to wall-clock seconds. Inputs are random
 * (channels correlated through a shared latent factor). */
#include "test.h"

#include "passes_internal.h"

#include <time.h>

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

/* ---- GEMM references: row chunks of 64 over the threads, per-core CPU-time rate ---------- */

typedef struct gemm_job {
    int64_t n;
    bool fp64;
    const void *a, *b;
    void *c;
} gemm_job;

static void gemm_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const gemm_job *j = ctx;
    int64_t n = j->n;
    for (int64_t ch = begin; ch < end; ch++) {
        int64_t r0 = ch * 64, nr = n - r0 < 64 ? n - r0 : 64;
        if (j->fp64)
            lq_la_dgemm(false, nr, n, n, 1.0, (const double *)j->a + r0 * n, n, j->b, n, 0.0, (double *)j->c + r0 * n, n);
        else
            lq_la_sgemm(false, false, nr, n, n, 1.0f, (const float *)j->a + r0 * n, n, j->b, n, 0.0f,
                        (float *)j->c + r0 * n, n);
    }
}

static double gemm_rate(bool fp64, int64_t n, int n_threads) {
    size_t es = fp64 ? sizeof(double) : sizeof(float);
    void *a = calloc(n * n, es), *b = calloc(n * n, es), *c = calloc(n * n, es);
    for (int64_t i = 0; i < n * n; i++) {
        double v = (double)(i % 17) / 17.0 - 0.5;
        if (fp64) ((double *)a)[i] = ((double *)b)[i] = v;
        else ((float *)a)[i] = ((float *)b)[i] = (float)v;
    }
    gemm_job job = {n, fp64, a, b, c};
    lq_parallel_for((n + 63) / 64, n_threads, gemm_worker, &job); /* warm-up */
    double best = 0;
    for (int r = 0; r < 3; r++) {
        timer t0 = start();
        lq_parallel_for((n + 63) / 64, n_threads, gemm_worker, &job);
        timer dt = stop(t0);
        double rate = 2.0 * n * n * n / dt.cpu / 1e9;
        if (rate > best) best = rate;
    }
    free(a), free(b), free(c);
    printf("%s reference: %lld^3, %d threads: %6.1f GFLOP/s per core (CPU time)\n", fp64 ? "dgemm" : "sgemm",
           (long long)n, n_threads, best);
    return best;
}

typedef struct phase {
    double flops, cpu, wall;
} phase;

static void add(phase *p, double flops, timer dt) {
    p->flops += flops, p->cpu += dt.cpu, p->wall += dt.wall;
}

static void row(const char *what, const char *detail, double flops, timer dt, double ref, const char *ref_name) {
    double rate = flops / dt.cpu / 1e9;
    printf("%-8s %-28s %8.3f s wall %8.3f s CPU %7.1f GFLOP/s per core = %3.0f %% of %s\n", what, detail, dt.wall,
           dt.cpu, rate, 100 * rate / ref, ref_name);
}

typedef struct shape {
    const char *name;
    int64_t n_in, n_out;
    int input; /* index into the inputs */
} shape;

int main(int argc, char **argv) {
    (void)unused_counters;
    int64_t t = argc > 1 ? atoll(argv[1]) : 16384;
    int n_threads = argc > 2 ? atoi(argv[2]) : 0;
    int type = argc > 3 ? lq_type_from_name(argv[3]) : LQ_TYPE_Q4_K;
    int64_t n_embd = argc > 4 ? atoll(argv[4]) : 2048, n_ff = argc > 5 ? atoll(argv[5]) : 8192;
    int64_t n_kv = argc > 6 ? atoll(argv[6]) : 512;
    if (n_threads <= 0) n_threads = lq_n_cpus();
    if (type < 0) return 2;
    printf("bench_gptq: T=%lld tokens, %d threads, type %s, n_embd %lld, n_ff %lld, kv %lld, backend %s (core %s)\n",
           (long long)t, n_threads, lq_type_get(type)->name, (long long)n_embd, (long long)n_ff, (long long)n_kv,
           lq_la_backend(), lq_passes_blas_core());
    double sgemm = gemm_rate(false, 2048, n_threads), dgemm = gemm_rate(true, 2048, n_threads);

    /* the 4 inputs of a layer: attn_norm→q,k,v; attention→o; ffn_norm→gate,up; down */
    const shape inputs[] = {{"q,k,v input", n_embd, 0, 0}, {"o input", n_embd, 0, 1}, {"gate,up input", n_embd, 0, 2},
                            {"down input", n_ff, 0, 3}};
    const shape weights[] = {{"attn_q", n_embd, n_embd, 0}, {"attn_k", n_embd, n_kv, 0}, {"attn_v", n_embd, n_kv, 0},
                             {"attn_output", n_embd, n_embd, 1}, {"ffn_gate", n_embd, n_ff, 2},
                             {"ffn_up", n_embd, n_ff, 2}, {"ffn_down", n_ff, n_embd, 3}};
    phase ph_h = {0}, ph_c = {0}, ph_s = {0}, ph_r = {0};
    lq_gptq_prep *prep[4] = {NULL};
    for (int k = 0; k < 4; k++) {
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
        free(x);
        lq_hessian_finish(&hs);
        double flops = (double)n * n * t;
        row("hessian", inputs[k].name, flops, dt, sgemm, "sgemm");
        add(&ph_h, flops, dt);
        t0 = start();
        if (lq_gptq_prepare(inputs[k].name, n, hs.h, 0.01, n_threads, &prep[k], &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        dt = stop(t0);
        flops = lq_gptq_prep_attempts(prep[k]) * 2.0 / 3.0 * n * n * n;
        row("factor", inputs[k].name, flops, dt, dgemm, "dgemm");
        add(&ph_c, flops, dt);
        lq_hessian_free(&hs);
    }
    for (size_t wi = 0; wi < sizeof weights / sizeof weights[0]; wi++) {
        const shape *s = &weights[wi];
        float *w = randn(s->n_out * s->n_in, 100 + wi);
        for (int64_t i = 0; i < s->n_out * s->n_in; i++) w[i] *= 0.02f;
        void *q = malloc(lq_row_size(type, s->n_in) * s->n_out);
        lq_gptq_opts o = {0.01, 128, n_threads, NULL, NULL};
        lq_gptq_report rep;
        lq_error err;
        timer t0 = start();
        if (lq_gptq_quantize_prepared(type, s->name, w, s->n_out, prep[s->input], &o, q, NULL, &rep, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        timer dt = stop(t0);
        char detail[64];
        snprintf(detail, sizeof detail, "%s %lld x %lld%s", s->name, (long long)s->n_out, (long long)s->n_in,
                 rep.rtn_fallback ? " RTN!" : "");
        double flops = 2.0 * s->n_out * (double)s->n_in * s->n_in;
        row("sweep", detail, flops, dt, sgemm, "sgemm");
        add(&ph_s, flops, dt);
        t0 = start();
        if (lq_quantize_rows_mt(type, w, q, s->n_out, s->n_in, NULL, n_threads, &err)) return 1;
        timer rt = stop(t0);
        add(&ph_r, 0, rt);
        free(w), free(q);
    }
    printf("\nlayer totals (%d threads; references: sgemm %.1f, dgemm %.1f GFLOP/s per core)\n", n_threads, sgemm, dgemm);
    printf("phase                      precision  wall s    CPU s   GFLOP   GFLOP/s/core  of GEMM\n");
    const char *names[3] = {"hessian (upper panels)", "factorisation", "gptq sweep"};
    const char *prec[3] = {"fp32", "fp64", "fp32"};
    phase *all[3] = {&ph_h, &ph_c, &ph_s};
    double refs[3] = {sgemm, dgemm, sgemm};
    for (int i = 0; i < 3; i++) {
        double rate = all[i]->flops / all[i]->cpu / 1e9;
        printf("%-26s %-9s %7.2f %8.2f %8.1f %12.1f %6.0f %% %s\n", names[i], prec[i], all[i]->wall, all[i]->cpu,
               all[i]->flops / 1e9, rate, 100 * rate / refs[i], i == 1 ? "dgemm" : "sgemm");
    }
    double rate = ph_s.flops / (ph_s.cpu - ph_r.cpu) / 1e9;
    printf("%-26s %-9s %7.2f %8.2f %8.1f %12.1f %6.0f %% sgemm (RTN of the same matrices: %.2f s CPU)\n",
           "gptq sweep - RTN", "fp32", ph_s.wall - ph_r.wall, ph_s.cpu - ph_r.cpu, ph_s.flops / 1e9, rate,
           100 * rate / sgemm, ph_r.cpu);
    for (int k = 0; k < 4; k++) lq_gptq_prep_free(prep[k]);
    return 0;
}
