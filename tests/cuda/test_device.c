/* test_device: the on-demand CUDA module and the library's device paths, without a GPU.
 *
 * One scenario per process (the loader decides once per process), chosen by argv[1]:
 *   none      no module usable here (no driver / CPU build): --device cuda fails with
 *             LQ_ERR_UNSUPPORTED and one line, auto picks the CPU and says why, nothing opens
 *             (skipped where a real device is present).
 *   missing   LQ_CUDA_MODULE names a file that does not exist: the reason names it.
 *   abi       LQ_CUDA_MODULE is a module of ABI 999: refused as "ABI 999, expected N".
 *   emulated  LQ_CUDA_MODULE is tests/cuda/fake_module.c's emulated device (host memory, CPU
 *             kernels): selection, contexts and every adapter of device_adapters.h must give
 *             exactly the CPU library's results through the module's table — statistics sums
 *             (bit for bit), codec bytes, runtime products (vs the f32 path), Hessian sums,
 *             AWQ clip and scale search, staged layers read by the GPTQ sweep. */
#include "test.h"

#include "kernels/cuda/lq_cuda.h"
#include "kernels/cuda/lq_cuda_module.h"
#include "libquant/device_adapters.h"
#include "libquant/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void random_rows(float *x, int64_t n, uint64_t seed) {
    uint64_t rng = seed;
    for (int64_t i = 0; i < n; i++)
        x[i] = test_rand_normal(&rng) * (test_rand_uniform(&rng) < 0.01f ? 0.5f : 0.03f);
}

static bool one_line(const char *s) { return s[0] && !strchr(s, '\n'); }

/* ---- without a usable module ---------------------------------------------------------------- */

static void check_unavailable(const char *expect_in_reason) {
    lq_device dev;
    lq_error err;
    lq_error_clear(&err);
    lq_status st = lq_device_select("cuda", &dev, &err);
    CHECKF(st == LQ_ERR_UNSUPPORTED, "--device cuda: status %d", (int)st);
    CHECKF(one_line(err.msg) && strstr(err.msg, "--device cuda: "), "message: %s", err.msg);
    if (expect_in_reason) CHECKF(strstr(err.msg, expect_in_reason), "'%s' not in: %s", expect_in_reason, err.msg);
    CHECK(lq_device_select("cuda:1", &dev, &err) == LQ_ERR_UNSUPPORTED);

    CHECK_OK(lq_device_select("auto", &dev, &err), &err);
    CHECK(dev.kind == LQ_DEVICE_CPU && dev.index == -1);
    CHECKF(!strncmp(dev.note, "device: cpu (auto: ", 19) && one_line(dev.note), "note: %s", dev.note);
    if (expect_in_reason) CHECKF(strstr(dev.note, expect_in_reason), "'%s' not in: %s", expect_in_reason, dev.note);
    lq_device_ctx *ctx = (lq_device_ctx *)&dev; /* must be overwritten */
    CHECK_OK(lq_device_open(&dev, &ctx, &err), &err);
    CHECK(ctx == NULL);
    CHECK(lq_cuda_device_count() == 0 && lq_cuda_device_name(0) == NULL);
    CHECK(lq_device_select("bogus", &dev, &err) == LQ_ERR_INVALID && strstr(err.msg, "'bogus'"));
    CHECK(lq_device_select("cuda:x", &dev, &err) == LQ_ERR_INVALID);
    CHECK_OK(lq_device_select("cpu", &dev, &err), &err);
    CHECK(dev.kind == LQ_DEVICE_CPU && !strcmp(dev.note, "device: cpu (requested)"));

    /* every backend entry point fails cleanly with the reason */
    lq_cuda_ctx *c = NULL;
    CHECK(lq_cuda_ctx_create(0, 0, &c, &err) == LQ_ERR_UNSUPPORTED && c == NULL && one_line(err.msg));
    float x[4] = {0};
    double s2[4] = {0};
    CHECK(lq_cuda_stats_accumulate(NULL, x, 1, 4, s2, NULL, NULL, &err) == LQ_ERR_UNSUPPORTED);
    /* adapters without a context */
    CHECK(lq_device_matmul(NULL, LQ_TYPE_F32, x, 16, 1, 4, x, 1, NULL, x, &err) == LQ_ERR_UNSUPPORTED);
    CHECK(lq_device_la_ops(NULL) == lq_la_ops_cpu());
    CHECK(lq_device_hessian_collect(NULL, NULL, &err) == LQ_OK);
}

/* ---- the emulated device -------------------------------------------------------------------- */

static void check_stats(lq_device_ctx *d) {
    const int64_t tok = 37, n = 96;
    float *x = malloc(tok * n * 4);
    random_rows(x, tok * n, 5);
    lq_stats_acc *cpu, *dev;
    lq_error err;
    CHECK_OK(lq_stats_acc_new(1, false, &cpu, &err), &err);
    CHECK_OK(lq_stats_acc_new(1, false, &dev, &err), &err);
    lq_stats_acc_set_device(dev, d);
    for (int rep = 0; rep < 3; rep++) {
        CHECK_OK(lq_stats_acc_add(cpu, "blk.0.attn_q.weight", x + rep, tok - 3, n, &err), &err);
        CHECK_OK(lq_stats_acc_add(dev, "blk.0.attn_q.weight", x + rep, tok - 3, n, &err), &err);
    }
    /* non-finite input: refused before anything reaches the device, naming row and channel */
    x[5 * n + 7] = NAN;
    CHECK(lq_stats_acc_add(dev, "blk.0.attn_q.weight", x, tok, n, &err) == LQ_ERR_NUMERIC &&
          strstr(err.msg, "token row 5, channel 7"));
    /* precomputed sums: the same as adding the rows */
    x[5 * n + 7] = 0.5f;
    double sx2[96] = {0}, sab[96] = {0};
    float mx[96] = {0};
    CHECK_OK(lq_cuda_stats_accumulate(lq_device_cuda(d), x, tok, n, sx2, sab, mx, &err), &err);
    CHECK_OK(lq_stats_acc_add(cpu, "blk.1.ffn_up.weight", x, tok, n, &err), &err);
    CHECK_OK(lq_stats_acc_add_sums(dev, "blk.1.ffn_up.weight", n, tok, sx2, sab, mx, &err), &err);
    CHECK(lq_stats_acc_add_sums(dev, "blk.1.ffn_up.weight", n + 1, 1, sx2, NULL, NULL, &err) == LQ_ERR_INVALID);
    CHECK_OK(lq_stats_acc_add_sums(dev, "token_embd.weight", n, tok, sx2, sab, mx, &err), &err); /* not collected */
    lq_stats *a, *b;
    CHECK_OK(lq_stats_from_acc(cpu, NULL, &a, &err), &err);
    CHECK_OK(lq_stats_from_acc(dev, NULL, &b, &err), &err);
    CHECK(lq_stats_n_entries(a) == 2 && lq_stats_n_entries(b) == 2);
    for (int64_t i = 0; i < lq_stats_n_entries(a) && i < lq_stats_n_entries(b); i++) {
        const lq_stats_entry *ea = lq_stats_entry_at(a, i), *eb = lq_stats_entry_at(b, i);
        CHECK(!strcmp(ea->name, eb->name) && ea->n_in == eb->n_in && ea->counts[0] == eb->counts[0]);
        CHECKF(!memcmp(ea->sum_x2, eb->sum_x2, n * 4) && !memcmp(ea->sum_abs, eb->sum_abs, n * 4) &&
               !memcmp(ea->max_abs, eb->max_abs, n * 4), "%s: device sums differ", ea->name);
    }
    lq_stats_free(a);
    lq_stats_free(b);
    lq_stats_acc_free(cpu);
    lq_stats_acc_free(dev);
    free(x);
}

static void check_matmul(lq_device_ctx *d) {
    const lq_type types[] = {LQ_TYPE_Q4_K, LQ_TYPE_Q8_0, LQ_TYPE_F16, LQ_TYPE_F32};
    const int64_t n_out = 48, n_in = 512, tok = 5;
    float *w = malloc(n_out * n_in * 4), *x = malloc(tok * n_in * 4), *bias = malloc(n_out * 4);
    float *y_cpu = malloc(tok * n_out * 4), *y_dev = malloc(tok * n_out * 4);
    random_rows(w, n_out * n_in, 21);
    random_rows(x, tok * n_in, 22);
    random_rows(bias, n_out, 23);
    lq_error err;
    size_t before = lq_device_weights_bytes(d);
    for (int k = 0; k < 4; k++) {
        lq_type t = types[k];
        size_t rb = lq_row_size(t, n_in);
        void *q = malloc(rb * n_out);
        CHECK_OK(lq_quantize_rows(t, w, q, n_out, n_in, NULL, &err), &err);
        for (int64_t nt = 1; nt <= tok; nt += tok - 1) { /* GEMV and GEMM */
            for (int64_t i = 0; i < nt; i++)
                for (int64_t r = 0; r < n_out; r++)
                    y_cpu[i * n_out + r] = lq_kernel_dot_f32(t, (char *)q + r * rb, x + i * n_in, n_in) + bias[r];
            CHECK_OK(lq_device_matmul(d, t, q, rb, n_out, n_in, x, nt, bias, y_dev, &err), &err);
            CHECKF(!memcmp(y_cpu, y_dev, nt * n_out * 4), "%s, %lld tokens: products differ",
                   lq_type_get(t)->name, (long long)nt);
        }
        free(q);
    }
    /* each weight uploaded once: 4 weights cached, whatever the number of calls */
    size_t expect = 0;
    for (int k = 0; k < 4; k++) expect += lq_row_size(types[k], n_in) * n_out;
    CHECKF(lq_device_weights_bytes(d) - before == expect, "%zu bytes cached, expected %zu",
           lq_device_weights_bytes(d) - before, expect);
    CHECK(lq_device_matmul(d, LQ_TYPE_Q8_K, w, 4, 1, 256, x, 1, NULL, y_dev, &err) == LQ_ERR_UNSUPPORTED);
    /* a weight changed in place: forgotten, then uploaded again with its new values */
    size_t cached = lq_device_weights_bytes(d);
    CHECK_OK(lq_device_matmul(d, LQ_TYPE_F32, w, n_in * 4, n_out, n_in, x, 1, NULL, y_dev, &err), &err);
    CHECK(lq_device_weights_bytes(d) == cached + n_out * n_in * 4);
    for (int64_t i = 0; i < n_out * n_in; i++) w[i] *= 2.0f;
    lq_device_weight_changed(d, w);
    CHECK(lq_device_weights_bytes(d) == cached);
    CHECK_OK(lq_device_matmul(d, LQ_TYPE_F32, w, n_in * 4, n_out, n_in, x, 1, NULL, y_dev, &err), &err);
    for (int64_t r = 0; r < n_out; r++) y_cpu[r] = lq_kernel_dot_f32(LQ_TYPE_F32, w + r * n_in, x, n_in);
    CHECK(!memcmp(y_cpu, y_dev, n_out * 4));
    free(w), free(x), free(bias), free(y_cpu), free(y_dev);
}

static void check_hessian(lq_device_ctx *d) {
    const int64_t n = 64, tok = 40;
    float *x = malloc(tok * n * 4);
    random_rows(x, tok * n, 31);
    lq_hessian cpu, dev;
    lq_error err;
    CHECK_OK(lq_hessian_init(&cpu, n, &err), &err);
    CHECK_OK(lq_hessian_init(&dev, n, &err), &err);
    for (int64_t t0 = 0; t0 < tok; t0 += 16) {
        int64_t nt = tok - t0 < 16 ? tok - t0 : 16;
        lq_hessian_add(&cpu, x + t0 * n, nt, 1);
        lq_device_hessian_add(d, &dev, x + t0 * n, nt);
    }
    CHECK(dev.n_tokens == tok);
    CHECK_OK(lq_device_hessian_collect(d, &dev, &err), &err);
    lq_hessian_finish(&cpu);
    lq_hessian_finish(&dev);
    CHECK(!memcmp(cpu.h, dev.h, n * n * 8));
    /* collecting twice adds nothing */
    CHECK_OK(lq_device_hessian_collect(d, &dev, &err), &err);
    CHECK(!memcmp(cpu.h, dev.h, n * n * 8));
    /* a new accumulation at the same address starts from zero */
    lq_hessian_free(&dev);
    CHECK_OK(lq_hessian_init(&dev, n, &err), &err);
    lq_device_hessian_add(d, &dev, x, 8);
    CHECK_OK(lq_device_hessian_collect(d, &dev, &err), &err);
    lq_hessian ref;
    CHECK_OK(lq_hessian_init(&ref, n, &err), &err);
    lq_hessian_add(&ref, x, 8, 1);
    CHECK(!memcmp(ref.h, dev.h, n * n * 8));
    lq_hessian_free(&ref);
    lq_hessian_free(&cpu);
    lq_hessian_free(&dev);
    free(x);
}

static void check_awq(lq_device_ctx *d) {
    const int64_t n_in = 256, n_ff = 64, n_down = 32, t = 24;
    float *x = malloc(t * n_in * 4), *gate = malloc(n_ff * n_in * 4), *up = malloc(n_ff * n_in * 4);
    float *down = malloc(n_down * n_ff * 4), *x_mean = malloc(n_in * 4);
    float *s_cpu = malloc(n_in * 4), *s_dev = malloc(n_in * 4);
    random_rows(x, t * n_in, 41);
    random_rows(gate, n_ff * n_in, 42);
    random_rows(up, n_ff * n_in, 43);
    random_rows(down, n_down * n_ff, 44);
    for (int64_t j = 0; j < n_in; j++) { /* outlier channels, as AWQ expects */
        x_mean[j] = 0.0f;
        for (int64_t i = 0; i < t; i++) {
            if (j % 37 == 0) x[i * n_in + j] *= 20.0f;
            x_mean[j] += fabsf(x[i * n_in + j]) / t;
        }
    }
    lq_error err;
    for (int mlp = 0; mlp < 2; mlp++) {
        awq_group g;
        memset(&g, 0, sizeof g);
        g.n_lin = 2;
        g.w[0] = gate, g.w[1] = up;
        g.n_out[0] = g.n_out[1] = n_ff;
        g.type[0] = LQ_TYPE_Q4_K, g.type[1] = LQ_TYPE_Q4_0;
        if (mlp) g.down = down, g.n_down_out = n_down;
        double a_cpu, a_dev, lp_cpu, lp_dev, lb_cpu, lb_dev;
        CHECK_OK(lq_awq_search_scale(&g, n_in, x, t, x_mean, 10, 1, s_cpu, &a_cpu, &lp_cpu, &lb_cpu, &err), &err);
        CHECK_OK(lq_device_awq_search_scale(d, &g, n_in, x, t, x_mean, 10, s_dev, &a_dev, &lp_dev, &lb_dev, &err), &err);
        CHECKF(a_cpu == a_dev && !memcmp(s_cpu, s_dev, n_in * 4), "mlp %d: alpha %g vs %g", mlp, a_cpu, a_dev);
        CHECKF(fabs(lp_cpu - lp_dev) <= 1e-6 * lp_cpu && fabs(lb_cpu - lb_dev) <= 1e-6 * lb_cpu,
               "mlp %d: losses %g/%g vs %g/%g", mlp, lp_cpu, lb_cpu, lp_dev, lb_dev);
        CHECK(lb_dev < lp_dev); /* the outliers make scaling pay */
        g.h = (const double *)x; /* AWQ+GPTQ: stays on the CPU */
        CHECK(lq_device_awq_search_scale(d, &g, n_in, x, t, x_mean, 10, s_dev, &a_dev, &lp_dev, &lb_dev, &err) ==
              LQ_ERR_UNSUPPORTED);
    }
    float *w_cpu = malloc(n_ff * n_in * 4), *w_dev = malloc(n_ff * n_in * 4);
    memcpy(w_cpu, gate, n_ff * n_in * 4);
    memcpy(w_dev, gate, n_ff * n_in * 4);
    double r_cpu, r_dev;
    CHECK_OK(lq_awq_clip(LQ_TYPE_Q4_K, w_cpu, n_ff, n_in, x, t, 1, &r_cpu, &err), &err);
    CHECK_OK(lq_device_awq_clip(d, LQ_TYPE_Q4_K, w_dev, n_ff, n_in, x, t, &r_dev, &err), &err);
    CHECK(r_cpu == r_dev && !memcmp(w_cpu, w_dev, n_ff * n_in * 4));
    free(w_cpu), free(w_dev), free(x), free(gate), free(up), free(down), free(x_mean), free(s_cpu), free(s_dev);
}

static void check_layers(lq_device_ctx *d) {
    lq_error err;
    float a[64], b[64], back[64];
    for (int i = 0; i < 64; i++) a[i] = (float)i, b[i] = (float)-i;
    const float *w[2] = {a, b};
    size_t bytes[2] = {sizeof a, sizeof b};
    CHECK(lq_device_layer_stage(d, 0, 2, w, bytes, &err) == LQ_ERR_INVALID); /* not reserved */
    CHECK_OK(lq_device_layers_reserve(d, 1024, &err), &err);
    for (int64_t layer = 0; layer < 3; layer++) {
        CHECK_OK(lq_device_layer_stage(d, layer, 2, w, bytes, &err), &err);
        CHECK_OK(lq_device_layer_done(d, layer, &err), &err);
    }
    size_t big[2] = {1024, 1024};
    CHECK(lq_device_layer_stage(d, 3, 2, w, big, &err) == LQ_ERR_INVALID && one_line(err.msg));
    (void)back;
}

/* The GPTQ adapter: the staged copy of a layer is what the sweep reads (the host copy is
 * changed after staging to tell them apart), and a blown-up row is LQ_ERR_NUMERIC as on the CPU. */
static void check_gptq(lq_device_ctx *d) {
    const int64_t n = 256, m = 8;
    float *w = malloc(m * n * 4), *w2 = malloc(m * n * 4), *u = calloc(n * n, 4), *imp = malloc(n * 4);
    uint8_t *dead = calloc(n, 1), *q1 = malloc(m * 256), *q2 = malloc(m * 256);
    random_rows(w, m * n, 51);
    for (int64_t i = 0; i < n; i++) {
        imp[i] = 1.0f;
        for (int64_t j = i; j < n; j++) u[i * n + j] = i == j ? 1.0f : 0.02f / (float)(j - i);
    }
    lq_error err;
    double l1 = 0, l2 = 0;
    CHECK_OK(lq_device_gptq_sweep(d, LQ_TYPE_Q4_K, "w", w, m, n, u, imp, dead, 256, q1, NULL, &l1, &err), &err);
    memcpy(w2, w, m * n * 4);
    CHECK_OK(lq_device_layers_reserve(d, m * n * 4, &err), &err);
    const float *wl[1] = {w2};
    size_t wb[1] = {m * n * 4};
    CHECK_OK(lq_device_layer_stage(d, 4, 1, wl, wb, &err), &err);
    for (int64_t i = 0; i < m * n; i++) w2[i] = 0.0f; /* after staging: the slot keeps the old values */
    CHECK_OK(lq_device_gptq_sweep(d, LQ_TYPE_Q4_K, "w", w2, m, n, u, imp, dead, 256, q2, NULL, &l2, &err), &err);
    CHECK(!memcmp(q1, q2, m * lq_row_size(LQ_TYPE_Q4_K, n)) && l1 == l2 && l1 > 0);
    CHECK_OK(lq_device_layer_done(d, 4, &err), &err);
    CHECK_OK(lq_device_gptq_sweep(d, LQ_TYPE_Q4_K, "w", w2, m, n, u, imp, dead, 256, q2, NULL, &l2, &err), &err);
    CHECK(l2 == 0.0); /* forgotten after done: the zeros were read */
    /* by shape, growing the arenas (two matrices, one NULL entry skipped) */
    memcpy(w2, w, m * n * 4);
    float *ws[3] = {w2, NULL, w};
    int64_t no[3] = {m, 1, m}, ni[3] = {n, 1, n};
    CHECK_OK(lq_device_stage_matrices(d, 5, 3, ws, no, ni, &err), &err);
    for (int64_t i = 0; i < m * n; i++) w2[i] = 0.0f;
    CHECK_OK(lq_device_gptq_sweep(d, LQ_TYPE_Q4_K, "w", w2, m, n, u, imp, dead, 256, q2, NULL, &l2, &err), &err);
    CHECK(!memcmp(q1, q2, m * lq_row_size(LQ_TYPE_Q4_K, n)) && l2 == l1);
    CHECK_OK(lq_device_layer_done(d, 5, &err), &err);
    w[3 * n + 5] = 1e30f; /* overflows the fp16 block scale */
    CHECK(lq_device_gptq_sweep(d, LQ_TYPE_Q4_K, "w", w, m, n, u, imp, dead, 256, q1, NULL, &l1, &err) ==
              LQ_ERR_NUMERIC && strstr(err.msg, "row 3"));
    free(w), free(w2), free(u), free(imp), free(dead), free(q1), free(q2);
}

static void check_emulated(void) {
    lq_device dev;
    lq_error err;
    CHECK(lq_cuda_device_count() == 1 && lq_cuda_backend_path() != NULL);
    CHECK_OK(lq_device_select("auto", &dev, &err), &err);
    CHECKF(dev.kind == LQ_DEVICE_CUDA && dev.index == 0 && strstr(dev.note, "device: cuda:0 (emulated device") &&
           strstr(dev.note, "auto-selected"), "note: %s", dev.note);
    CHECK_OK(lq_device_select("cuda:0", &dev, &err), &err);
    CHECK(strstr(dev.note, "requested"));
    CHECK(lq_device_select("cuda:1", &dev, &err) == LQ_ERR_INVALID && strstr(err.msg, "only 1 CUDA device"));
    CHECK_OK(lq_device_select("cuda", &dev, &err), &err);
    lq_device_ctx *d = NULL;
    CHECK_OK(lq_device_open(&dev, &d, &err), &err);
    CHECK(d != NULL && lq_device_cuda(d) != NULL);
    if (!d) return;
    check_stats(d);
    check_matmul(d);
    check_hessian(d);
    check_awq(d);
    check_layers(d);
    check_gptq(d);
    /* not emulated: a clean error through the table, not a crash */
    lq_cuda_ctx *c = lq_device_cuda(d);
    CHECK(lq_cuda_gemm_q(c, LQ_TYPE_Q4_0, NULL, 1, 32, NULL, 1, NULL, &err) == LQ_ERR_UNSUPPORTED &&
          strstr(err.msg, "not emulated"));
    CHECK(lq_device_la_ops(d) == lq_la_ops_cpu()); /* the module gave no linear algebra */
    lq_device_close(d);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "none";
    if (!strcmp(mode, "none")) {
        unsetenv("LQ_CUDA_MODULE"); /* before the loader's first (and only) look */
        if (lq_cuda_device_count() > 0) TEST_SKIP("a CUDA device is present (test_cuda_gpu covers it)");
        check_unavailable(lq_cuda_compiled() ? NULL : "built without CUDA");
    } else if (!strcmp(mode, "missing")) {
        setenv("LQ_CUDA_MODULE", "/nonexistent/liblq_cuda.so", 1);
        check_unavailable("CUDA backend: /nonexistent/liblq_cuda.so: cannot open shared object file");
    } else if (!strcmp(mode, "abi")) {
        char want[64];
        snprintf(want, sizeof want, "ABI 999, expected %d", LQ_CUDA_MODULE_ABI);
        check_unavailable(want);
    } else if (!strcmp(mode, "emulated")) {
        check_emulated();
    } else {
        fprintf(stderr, "unknown scenario %s\n", mode);
        return 2;
    }
    TEST_DONE();
}
