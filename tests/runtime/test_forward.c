/* test_forward.c — the runtime's logits against an independent, naive scalar forward pass
 * (plain loops over dequantized fp32 weights in HF row order, rotate-half RoPE, double sums),
 * on the 656K HF checkpoint and on synthetic GGUF models of every weight type; plus the
 * layer-at-a-time API, hooks, weight replacement and thread-count determinism. */
#include "test.h"

#include "linalg.h"
#include "runtime/rt_internal.h" /* the tiled and sgemm products are checked directly */

#include <math.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------
 * Naive model: every matrix as fp32 in HF order (rows = outputs), written for clarity
 * ------------------------------------------------------------------------------------- */
typedef struct naive_layer {
    float *attn_norm, *ffn_norm, *wq, *wk, *wv, *wo, *wg, *wu, *wd, *bq, *bk, *bv, *bo;
} naive_layer;

typedef struct naive_model {
    lq_hparams hp;
    float *embd, *out, *out_norm;
    double *inv_freq; /* head_dim/2 RoPE frequencies */
    naive_layer *layers;
} naive_model;

/* Any stored tensor to fp32 (all elements). */
static float *tensor_to_f32(const lq_tensor *t) {
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    float *y = malloc((size_t)n * sizeof(float));
    if (t->type == LQ_TYPE_F32) {
        memcpy(y, t->data, (size_t)n * sizeof(float));
    } else if (t->type == LQ_TYPE_F16) {
        for (int64_t i = 0; i < n; i++) y[i] = lq_fp16_to_fp32(((const uint16_t *)t->data)[i]);
    } else if (t->type == LQ_TYPE_BF16) {
        for (int64_t i = 0; i < n; i++) y[i] = lq_bf16_to_fp32(((const uint16_t *)t->data)[i]);
    } else {
        lq_error err;
        if (lq_dequantize_rows(t->type, t->data, y, n / t->ne[0], t->ne[0], &err) != LQ_OK) {
            fprintf(stderr, "dequantize %s: %s\n", t->name, err.msg);
            exit(1);
        }
    }
    return y;
}

static float *get(const lq_model *m, const char *fmt, int layer, bool required) {
    char name[LQ_MAX_NAME];
    snprintf(name, sizeof name, fmt, layer);
    const lq_tensor *t = lq_model_find(m, name);
    if (!t) {
        if (required) {
            fprintf(stderr, "missing %s\n", name);
            exit(1);
        }
        return NULL;
    }
    return tensor_to_f32(t);
}

/* GGUF stores Q/K rows in interleaved-RoPE order: row h*hd + 2i holds HF row h*hd + i and row
 * h*hd + 2i + 1 holds HF row h*hd + hd/2 + i. Undo that. */
static void unpermute_rows(float *w, int64_t n_rows, int64_t row_len, int64_t hd) {
    float *copy = malloc((size_t)(n_rows * row_len) * sizeof(float));
    memcpy(copy, w, (size_t)(n_rows * row_len) * sizeof(float));
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t h = r / hd, j = r % hd;
        int64_t hf = h * hd + (j % 2 == 0 ? j / 2 : hd / 2 + j / 2);
        memcpy(w + hf * row_len, copy + r * row_len, (size_t)row_len * sizeof(float));
    }
    free(copy);
}

/* HF's default inverse frequencies, with Llama-3 scaling as transformers computes it from the
 * config, or divided by a GGUF rope_freqs tensor. */
static double *naive_rope_freqs(const lq_model *m, const lq_hparams *hp) {
    int64_t hd = hp->head_dim;
    double *f = malloc((size_t)(hd / 2) * sizeof(double));
    for (int64_t i = 0; i < hd / 2; i++) f[i] = 1.0 / pow(hp->rope_theta, (double)(2 * i) / hd);
    float *div = get(m, "rope_freqs.weight", 0, false);
    if (div) {
        for (int64_t i = 0; i < hd / 2; i++) f[i] /= div[i];
        free(div);
    } else if (hp->rope_scaling == LQ_ROPE_SCALING_LLAMA3) {
        double factor = hp->rope_factor, lo = hp->rope_low_freq_factor, hi = hp->rope_high_freq_factor;
        double old_ctx = (double)hp->rope_orig_ctx;
        for (int64_t i = 0; i < hd / 2; i++) {
            double wavelen = 2 * M_PI / f[i];
            double scaled = wavelen > old_ctx / lo ? f[i] / factor : f[i];
            double smooth = (old_ctx / wavelen - lo) / (hi - lo);
            bool medium = !(wavelen < old_ctx / hi) && !(wavelen > old_ctx / lo);
            f[i] = medium ? (1 - smooth) * scaled / factor + smooth * scaled : scaled;
        }
    }
    return f;
}

static naive_model naive_load(const lq_model *m) {
    naive_model nm;
    nm.hp = *lq_model_hparams(m);
    nm.embd = get(m, "token_embd.weight", 0, false);
    nm.out = get(m, "output.weight", 0, false);
    if (!nm.embd) nm.embd = get(m, "output.weight", 0, true);
    if (!nm.out) nm.out = get(m, "token_embd.weight", 0, true);
    nm.out_norm = get(m, "output_norm.weight", 0, true);
    nm.layers = calloc((size_t)nm.hp.n_layer, sizeof(naive_layer));
    nm.inv_freq = naive_rope_freqs(m, &nm.hp);
    bool interleaved = lq_model_rope_layout(m) == LQ_ROPE_INTERLEAVED;
    for (int l = 0; l < nm.hp.n_layer; l++) {
        naive_layer *L = &nm.layers[l];
        L->attn_norm = get(m, "blk.%d.attn_norm.weight", l, true);
        L->ffn_norm = get(m, "blk.%d.ffn_norm.weight", l, true);
        L->wq = get(m, "blk.%d.attn_q.weight", l, true);
        L->wk = get(m, "blk.%d.attn_k.weight", l, true);
        L->wv = get(m, "blk.%d.attn_v.weight", l, true);
        L->wo = get(m, "blk.%d.attn_output.weight", l, true);
        L->wg = get(m, "blk.%d.ffn_gate.weight", l, true);
        L->wu = get(m, "blk.%d.ffn_up.weight", l, true);
        L->wd = get(m, "blk.%d.ffn_down.weight", l, true);
        L->bq = get(m, "blk.%d.attn_q.bias", l, false);
        L->bk = get(m, "blk.%d.attn_k.bias", l, false);
        L->bv = get(m, "blk.%d.attn_v.bias", l, false);
        L->bo = get(m, "blk.%d.attn_output.bias", l, false);
        if (interleaved) {
            int64_t hd = nm.hp.head_dim;
            unpermute_rows(L->wq, nm.hp.n_head * hd, nm.hp.n_embd, hd);
            unpermute_rows(L->wk, nm.hp.n_head_kv * hd, nm.hp.n_embd, hd);
            if (L->bq) unpermute_rows(L->bq, nm.hp.n_head * hd, 1, hd);
            if (L->bk) unpermute_rows(L->bk, nm.hp.n_head_kv * hd, 1, hd);
        }
    }
    return nm;
}

static void naive_free(naive_model *nm) {
    if (nm->out != nm->embd) free(nm->out);
    free(nm->embd);
    free(nm->out_norm);
    free(nm->inv_freq);
    for (int l = 0; l < nm->hp.n_layer; l++) {
        naive_layer *L = &nm->layers[l];
        float *ps[] = {L->attn_norm, L->ffn_norm, L->wq, L->wk, L->wv, L->wo, L->wg, L->wu, L->wd, L->bq, L->bk, L->bv, L->bo};
        for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) free(ps[i]);
    }
    free(nm->layers);
}

static void naive_matvec(const float *w, const float *bias, const float *x, float *y, int64_t n_out, int64_t n_in) {
    for (int64_t o = 0; o < n_out; o++) {
        double s = bias ? bias[o] : 0;
        for (int64_t i = 0; i < n_in; i++) s += (double)w[o * n_in + i] * x[i];
        y[o] = (float)s;
    }
}

static void naive_rmsnorm(const float *x, const float *w, float *y, int64_t n, float eps) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double scale = 1.0 / sqrt(s / n + eps);
    for (int64_t i = 0; i < n; i++) y[i] = (float)(x[i] * scale * w[i]);
}

/* HF apply_rotary_pos_emb: x*cos + rotate_half(x)*sin, pairs (i, i + hd/2). */
static void naive_rope(float *v, int64_t n_heads, int64_t hd, int64_t pos, const double *inv_freq) {
    for (int64_t h = 0; h < n_heads; h++)
        for (int64_t i = 0; i < hd / 2; i++) {
            double angle = pos * inv_freq[i];
            float *a = v + h * hd + i, *b = v + h * hd + i + hd / 2;
            double x0 = *a, x1 = *b;
            *a = (float)(x0 * cos(angle) - x1 * sin(angle));
            *b = (float)(x1 * cos(angle) + x0 * sin(angle));
        }
}

/* logits: n × n_vocab */
static void naive_forward(const naive_model *nm, const int32_t *tokens, int64_t n, float *logits) {
    const lq_hparams *hp = &nm->hp;
    int64_t E = hp->n_embd, hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd, F = hp->n_ff;
    float *kc = calloc((size_t)(hp->n_layer * n * kvd), sizeof(float));
    float *vc = calloc((size_t)(hp->n_layer * n * kvd), sizeof(float));
    float *x = malloc(E * sizeof(float)), *h = malloc(E * sizeof(float)), *tmp = malloc(E * sizeof(float));
    float *q = malloc(qd * sizeof(float)), *att = malloc(qd * sizeof(float));
    float *g = malloc(F * sizeof(float)), *u = malloc(F * sizeof(float));
    double *sc = malloc((size_t)n * sizeof(double));
    for (int64_t t = 0; t < n; t++) {
        memcpy(x, nm->embd + (int64_t)tokens[t] * E, E * sizeof(float));
        for (int l = 0; l < hp->n_layer; l++) {
            const naive_layer *L = &nm->layers[l];
            float *kt = kc + (l * n + t) * kvd, *vt = vc + (l * n + t) * kvd;
            naive_rmsnorm(x, L->attn_norm, h, E, hp->rms_eps);
            naive_matvec(L->wq, L->bq, h, q, qd, E);
            naive_matvec(L->wk, L->bk, h, kt, kvd, E);
            naive_matvec(L->wv, L->bv, h, vt, kvd, E);
            naive_rope(q, hp->n_head, hd, t, nm->inv_freq);
            naive_rope(kt, hp->n_head_kv, hd, t, nm->inv_freq);
            for (int64_t hh = 0; hh < hp->n_head; hh++) {
                int64_t kvh = hh / (hp->n_head / hp->n_head_kv);
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j <= t; j++) {
                    const float *kj = kc + (l * n + j) * kvd + kvh * hd;
                    double d = 0;
                    for (int64_t i = 0; i < hd; i++) d += (double)q[hh * hd + i] * kj[i];
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t i = 0; i < hd; i++) {
                    double o = 0;
                    for (int64_t j = 0; j <= t; j++) o += sc[j] / sum * vc[(l * n + j) * kvd + kvh * hd + i];
                    att[hh * hd + i] = (float)o;
                }
            }
            naive_matvec(L->wo, L->bo, att, tmp, E, qd);
            for (int64_t i = 0; i < E; i++) x[i] += tmp[i];
            naive_rmsnorm(x, L->ffn_norm, h, E, hp->rms_eps);
            naive_matvec(L->wg, NULL, h, g, F, E);
            naive_matvec(L->wu, NULL, h, u, F, E);
            for (int64_t i = 0; i < F; i++) g[i] = (float)(g[i] / (1.0 + exp(-(double)g[i])) * u[i]);
            naive_matvec(L->wd, NULL, g, tmp, E, F);
            for (int64_t i = 0; i < E; i++) x[i] += tmp[i];
        }
        naive_rmsnorm(x, nm->out_norm, h, E, hp->rms_eps);
        naive_matvec(nm->out, NULL, h, logits + t * hp->n_vocab, hp->n_vocab, E);
    }
    free(kc), free(vc), free(x), free(h), free(tmp), free(q), free(att), free(g), free(u), free(sc);
}

/* ---------------------------------------------------------------------------------------
 * Comparisons
 * ------------------------------------------------------------------------------------- */

/* max over rows of max|a-b| / max|b| */
static double max_rel_err(const float *a, const float *b, int64_t n_rows, int64_t n) {
    double worst = 0;
    for (int64_t r = 0; r < n_rows; r++) {
        double mx = 1e-30, d = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fabs(b[r * n + i]) > mx) mx = fabs(b[r * n + i]);
            double e = fabs((double)a[r * n + i] - b[r * n + i]);
            if (!(e <= d)) d = e; /* NaN propagates as a failure */
        }
        if (!(d / mx <= worst)) worst = d / mx;
    }
    return worst;
}

static void make_tokens(int32_t *tok, int64_t n, int64_t n_vocab, uint64_t seed) {
    for (int64_t i = 0; i < n; i++) tok[i] = (int32_t)(test_rand_u64(&seed) % (uint64_t)n_vocab);
}

/* Runtime logits for tok[0..n) evaluated in two calls (exercises the KV cache and batching). */
static float *runtime_logits(const lq_model *m, const int32_t *tok, int64_t n, bool f32_act, int threads) {
    lq_error err;
    lq_runtime *rt = NULL;
    lq_runtime_opts o = {threads, 64, 7, f32_act, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &o, &rt, &err), &err);
    if (!rt) return NULL;
    int64_t nv = lq_runtime_n_vocab(rt);
    float *logits = calloc((size_t)(n * nv), sizeof(float));
    int64_t first = n / 3;
    CHECK_OK(lq_runtime_eval(rt, tok, first, logits, &err), &err);
    CHECK_OK(lq_runtime_eval(rt, tok + first, n - first, logits + first * nv, &err), &err);
    CHECK(lq_runtime_n_past(rt) == n);
    lq_runtime_free(rt);
    return logits;
}

/* The same logits with every token evaluated alone (token generation's path). */
static float *runtime_logits_stepwise(const lq_model *m, const int32_t *tok, int64_t n, int threads) {
    lq_error err;
    lq_runtime *rt = NULL;
    lq_runtime_opts o = {threads, 64, 7, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &o, &rt, &err), &err);
    if (!rt) return NULL;
    int64_t nv = lq_runtime_n_vocab(rt);
    float *logits = calloc((size_t)(n * nv), sizeof(float));
    for (int64_t i = 0; i < n; i++) CHECK_OK(lq_runtime_eval(rt, tok + i, 1, logits + i * nv, &err), &err);
    lq_runtime_free(rt);
    return logits;
}

#define N_TOK 20

/* The runtime (fp32 activations) against the naive pass; with quantized activations the
 * result must stay close (llama.cpp's own approximation). */
static void compare_model(const char *path, const char *label, double tol_exact, double tol_qact,
                          bool float_weights) {
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    if (!m) return;
    naive_model nm = naive_load(m);
    int64_t nv = nm.hp.n_vocab;
    int32_t tok[N_TOK];
    make_tokens(tok, N_TOK, nv, 42);
    float *ref = malloc((size_t)(N_TOK * nv) * sizeof(float));
    naive_forward(&nm, tok, N_TOK, ref);
    float *got = runtime_logits(m, tok, N_TOK, true, 2);
    double e = got ? max_rel_err(got, ref, N_TOK, nv) : 1;
    CHECKF(e <= tol_exact, "%s: fp32-activation logits differ from the naive pass by %.3g (relative)", label, e);
    float *got_q = runtime_logits(m, tok, N_TOK, false, 2);
    double eq = got_q ? max_rel_err(got_q, ref, N_TOK, nv) : 1;
    CHECKF(eq <= tol_qact, "%s: quantized-activation logits differ by %.3g (relative)", label, eq);
    /* one token at a time (the single-token kernels) must give the batch's bits: every
     * product on the dot path keeps its per-row arithmetic whatever the batch size. Float
     * weights (F32/F16/BF16) in batches of RT_SGEMM_MIN_TOKENS or more go through sgemm
     * instead, whose sums run in another order: for models with float matrices the claim is a
     * tight tolerance (1e-5 of the largest logit) rather than bits. */
    float *got_1 = runtime_logits_stepwise(m, tok, N_TOK, 2);
    if (!float_weights) {
        CHECKF(got_1 && got_q && memcmp(got_1, got_q, (size_t)(N_TOK * nv) * sizeof(float)) == 0,
               "%s: logits of tokens evaluated one at a time differ from the batch's (max rel %.3g)", label,
               got_1 && got_q ? max_rel_err(got_1, got_q, N_TOK, nv) : 1.0);
    } else {
        double e1 = got_1 && got_q ? max_rel_err(got_1, got_q, N_TOK, nv) : 1.0;
        CHECKF(e1 <= 1e-5, "%s: logits of tokens evaluated one at a time differ from the batch's by %.3g", label, e1);
    }
    free(got_1);
    fprintf(stderr, "%-28s fp32 act: %.2e   quantized act: %.2e\n", label, e, eq);
    free(got), free(got_q), free(ref);
    naive_free(&nm);
    lq_model_close(m);
}

/* The runtime's tiled Q4_0/Q8_0 products (AVX-512 VNNI) against the kernels' per-pair vec-dot
 * on the same quantized activations, for every tile shape (edge tiles included) and a bias. */
static void test_tiled_products(void) {
    static const lq_type types[] = {LQ_TYPE_Q4_0, LQ_TYPE_Q8_0};
    const int64_t n_in = 1408, max_rows = 11, max_tok = 11; /* 11 superchunks (4+4+3) / 22 chunks (8+8+6) */
    uint64_t seed = 99;
    float *w = malloc((size_t)(n_in * max_rows) * sizeof(float));
    float *x = malloc((size_t)(n_in * max_tok) * sizeof(float));
    float bias[11];
    for (int64_t i = 0; i < n_in * max_rows; i++) w[i] = test_rand_normal(&seed);
    for (int64_t i = 0; i < n_in * max_tok; i++) x[i] = test_rand_normal(&seed) * (i % 97 == 0 ? 20.0f : 1.0f);
    for (int i = 0; i < 11; i++) bias[i] = test_rand_normal(&seed);
    for (int k = 0; k < 2; k++) {
        lq_type t = types[k];
        if (!rt_gemm_usable(t, n_in)) {
            fprintf(stderr, "tiled %s products not available on this CPU: not tested\n", lq_type_get(t)->name);
            continue;
        }
        lq_error err;
        size_t rb = lq_row_size(t, n_in), q8b = lq_row_size(LQ_TYPE_Q8_0, n_in), stride = rt_gemm_act_stride(t, n_in);
        char *wq = malloc(rb * max_rows), *q8 = malloc(q8b * max_tok), *packed = malloc(stride * max_tok);
        CHECK_OK(lq_quantize_rows(t, w, wq, max_rows, n_in, NULL, &err), &err);
        for (int64_t j = 0; j < max_tok; j++) {
            lq_kernel_quantize_act(LQ_TYPE_Q8_0, x + j * n_in, q8 + j * q8b, n_in);
            rt_gemm_pack_act(t, q8 + j * q8b, n_in, packed + j * stride);
        }
        float y[11 * 11];
        double worst = 0;
        for (int64_t rows = 1; rows <= max_rows; rows++)
            for (int64_t toks = 1; toks <= max_tok; toks++) {
                int64_t r0 = max_rows - rows; /* also an offset start row */
                for (int i = 0; i < 11 * 11; i++) y[i] = NAN;
                rt_gemm_rows_avx512(t, wq, rb, r0, max_rows, packed, stride, toks, n_in, y, max_rows, bias);
                for (int64_t j = 0; j < toks; j++)
                    for (int64_t r = r0; r < max_rows; r++) {
                        double want = lq_kernel_dot_q(t, wq + r * rb, q8 + j * q8b, n_in) + bias[r];
                        double e = fabs(y[j * max_rows + r] - want) / (fabs(want) + 1.0);
                        if (!(e <= worst)) worst = e;
                    }
            }
        /* single tokens: the streaming kernel gives the tiles' bits, for every start row (groups
         * of 8 or 4 rows and the single rows after them) */
        int gemv_mismatch = 0;
        for (int vbmi = 0; vbmi < 2; vbmi++) { /* both copies of the Q4_0 kernel */
            rt_gemv_use_vbmi(vbmi);
            for (int64_t r0 = 0; r0 < max_rows; r0++)
                for (int64_t j = 0; j < max_tok; j++) {
                    float one[11], tiled[11];
                    rt_gemm_rows_avx512(t, wq, rb, r0, max_rows, packed + j * stride, stride, 1, n_in, tiled,
                                        max_rows, bias);
                    rt_gemv_rows_avx512(t, wq, rb, r0, max_rows, packed + j * stride, n_in, one, bias);
                    for (int64_t r = r0; r < max_rows; r++)
                        gemv_mismatch += memcmp(&one[r], &tiled[r], sizeof(float)) != 0;
                }
        }
        CHECKF(gemv_mismatch == 0, "single-token %s products differ from the tiles' in %d places", lq_type_get(t)->name,
               gemv_mismatch);
        fprintf(stderr, "tiled %s products vs vec-dot kernel: max rel diff %.2e\n", lq_type_get(t)->name, worst);
        CHECKF(worst < 1e-5, "tiled %s products differ from the vec-dot kernel by %.3g", lq_type_get(t)->name, worst);
        free(wq), free(q8), free(packed);
    }
    free(w), free(x);
}

/* Float weights in batches take the sgemm path (OpenBLAS builds), which must agree with the dot
 * path within float rounding, give the same bytes at any thread count, and add the bias. Two
 * products in one call (F32 and F16, n_out not a multiple of the chunk) share the input. */
static void test_sgemm_products(void) {
    const int64_t n_in = 320, n_out[2] = {200, 131};
    static const lq_type types[2] = {LQ_TYPE_F32, LQ_TYPE_F16};
    static const int64_t toks[] = {1, 7, 64};
    uint64_t seed = 123;
    rt_weight w[2];
    float *bias[2], *wf = malloc((size_t)(n_in * 200) * sizeof(float));
    for (int k = 0; k < 2; k++) {
        memset(&w[k], 0, sizeof w[k]);
        w[k].type = types[k], w[k].n_in = n_in, w[k].n_out = n_out[k];
        w[k].row_bytes = lq_row_size(types[k], n_in);
        void *data = malloc(w[k].row_bytes * (size_t)n_out[k]);
        for (int64_t i = 0; i < n_in * n_out[k]; i++) wf[i] = test_rand_normal(&seed);
        if (types[k] == LQ_TYPE_F32)
            memcpy(data, wf, (size_t)(n_in * n_out[k]) * sizeof(float));
        else
            lq_convert_fp32_to_fp16(wf, (uint16_t *)data, (size_t)(n_in * n_out[k]));
        w[k].data = data;
        bias[k] = malloc((size_t)n_out[k] * sizeof(float));
        for (int64_t r = 0; r < n_out[k]; r++) bias[k][r] = test_rand_normal(&seed);
    }
    float *x = malloc((size_t)(64 * n_in) * sizeof(float));
    for (int64_t i = 0; i < 64 * n_in; i++) x[i] = test_rand_normal(&seed);
    lq_pool *pool1 = lq_pool_create(1), *pool3 = lq_pool_create(3);
    rt_act_buf act[4];
    memset(act, 0, sizeof act);
    lq_error err;
    for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
        int64_t nt = toks[ti];
        float *y[3][2]; /* [dot path, sgemm 1 thread, sgemm 3 threads][product] */
        for (int v = 0; v < 3; v++)
            for (int k = 0; k < 2; k++) y[v][k] = malloc((size_t)(nt * n_out[k]) * sizeof(float));
        for (int v = 0; v < 3; v++) {
            rt_matmul mm[2] = {{&w[0], bias[0], y[v][0]}, {&w[1], bias[1], y[v][1]}};
            rt_matmul_set_sgemm(v > 0);
            CHECK_OK(rt_matmul_run(mm, 2, x, nt, false, v == 2 ? pool3 : pool1, v == 2 ? 3 : 1, act, &err), &err);
        }
        rt_matmul_set_sgemm(true);
        for (int k = 0; k < 2; k++) {
            bool sg = rt_matmul_uses_sgemm(&w[k], false, nt);
            CHECKF(sg == (lq_la_backend()[0] == 'o' && nt >= RT_SGEMM_MIN_TOKENS),
                   "%s, %lld tokens: sgemm path %s", lq_type_get(types[k])->name, (long long)nt, sg ? "taken" : "not taken");
            double mx = 0, worst = 0;
            for (int64_t i = 0; i < nt * n_out[k]; i++) mx = fmax(mx, fabs(y[0][k][i]));
            for (int64_t i = 0; i < nt * n_out[k]; i++) worst = fmax(worst, fabs(y[1][k][i] - y[0][k][i]) / mx);
            CHECKF(worst <= 1e-5, "%s, %lld tokens: sgemm path differs from the dot path by %.3g (relative)",
                   lq_type_get(types[k])->name, (long long)nt, worst);
            CHECKF(memcmp(y[1][k], y[2][k], (size_t)(nt * n_out[k]) * sizeof(float)) == 0,
                   "%s, %lld tokens: 1 and 3 threads give different bytes", lq_type_get(types[k])->name, (long long)nt);
            if (nt == 64) fprintf(stderr, "sgemm %s products vs dot path: max rel diff %.2e\n", lq_type_get(types[k])->name, worst);
        }
        for (int v = 0; v < 3; v++)
            for (int k = 0; k < 2; k++) free(y[v][k]);
    }
    for (int k = 0; k < 4; k++) free(act[k].data);
    for (int k = 0; k < 2; k++) free((void *)w[k].data), free(bias[k]);
    lq_pool_free(pool1), lq_pool_free(pool3);
    free(wf), free(x);
}

/* lq_pool_run_chunks and lq_pool_run_guided (the runtime's loops): every index exactly once
 * for any thread count and chunk size, mixed with static lq_pool_run loops on the same
 * workers; guided chunks start and end on multiples of the grain (but the last) and never grow. */
typedef struct chunk_ctx {
    int *hits;
    int bad_thread;
    int n_threads;
    int64_t grain, n;
    int64_t sizes[2048]; /* guided: the size of the chunk starting at each index */
    int bad_bounds;
} chunk_ctx;
static void count_hits(void *ctx, int64_t begin, int64_t end, int thread_index) {
    chunk_ctx *c = (chunk_ctx *)ctx;
    if (thread_index < 0 || thread_index >= c->n_threads) __atomic_store_n(&c->bad_thread, 1, __ATOMIC_RELAXED);
    for (int64_t i = begin; i < end; i++) __atomic_add_fetch(&c->hits[i], 1, __ATOMIC_RELAXED);
    if (c->grain > 0) {
        if (begin % c->grain != 0 || (end != c->n && end % c->grain != 0)) __atomic_store_n(&c->bad_bounds, 1, __ATOMIC_RELAXED);
        if (begin < 2048) c->sizes[begin] = end - begin;
    }
}
static void test_pool_chunks(void) {
    enum { N = 1001 };
    static const int64_t grains[] = {1, 7, 64, 5000};
    int hits[N];
    for (int guided = 0; guided < 2; guided++)
        for (int threads = 1; threads <= 4; threads++) {
            lq_pool *pool = lq_pool_create(threads);
            int wrong = 0, bad_thread = 0, bad_bounds = 0, grew = 0;
            for (int round = 0; round < 40; round++) {
                int64_t n = N - round * 13, grain = grains[round % 4];
                memset(hits, 0, sizeof hits);
                chunk_ctx c = {hits, 0, threads, guided ? grain : 0, n, {0}, 0};
                if (guided) lq_pool_run_guided(pool, n, grain, threads, count_hits, &c);
                else lq_pool_run_chunks(pool, n, grain, threads, count_hits, &c);
                int64_t prev = INT64_MAX;
                for (int64_t b = 0; guided && b < n; b += c.sizes[b]) {
                    if (c.sizes[b] <= 0) break; /* a gap: counted through hits below */
                    grew += b + c.sizes[b] < n && c.sizes[b] > prev; /* the last chunk may be cut short */
                    prev = c.sizes[b];
                }
                c.grain = 0; /* the static loop's ranges are not chunks */
                if (round % 3 == 0) lq_pool_run(pool, n, threads, count_hits, &c); /* a static loop between */
                int want = round % 3 == 0 ? 2 : 1;
                for (int64_t i = 0; i < N; i++) wrong += hits[i] != (i < n ? want : 0);
                bad_thread |= c.bad_thread;
                bad_bounds |= c.bad_bounds;
            }
            CHECKF(wrong == 0, "pool %s, %d threads: %d indices run the wrong number of times",
                   guided ? "guided" : "chunks", threads, wrong);
            CHECK(!bad_thread);
            CHECKF(!bad_bounds && grew == 0, "guided chunks, %d threads: off the grain (%d) or growing (%d)", threads,
                   bad_bounds, grew);
            lq_pool_free(pool);
        }
}

/* The vectorized SwiGLU against expf, over the whole float range (saturation included). */
static void test_swiglu(void) {
    if (lq_kernels_simd() != LQ_SIMD_AVX512) {
        fprintf(stderr, "AVX-512 SwiGLU not available on this CPU: not tested\n");
        return;
    }
    enum { N = 4099 };
    float *g = malloc(N * sizeof(float)), *up = malloc(N * sizeof(float)), *want = malloc(N * sizeof(float));
    uint64_t seed = 5;
    for (int i = 0; i < N; i++) {
        g[i] = i < 8 ? (float[]){0.0f, -0.0f, 1e30f, -1e30f, 88.0f, -88.0f, 104.0f, -104.0f}[i]
                     : (float)(test_rand_normal(&seed) * (i % 3 == 0 ? 30.0 : 3.0));
        up[i] = (float)test_rand_normal(&seed);
        want[i] = g[i] / (1.0f + expf(-g[i])) * up[i];
    }
    rt_swiglu_avx512(g, up, N);
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double e = fabs((double)g[i] - want[i]) / (fabs(want[i]) + 1e-30);
        if (!(e <= worst)) worst = e;
    }
    fprintf(stderr, "AVX-512 SwiGLU vs expf: max rel diff %.2e\n", worst);
    CHECKF(worst < 1e-6, "AVX-512 SwiGLU differs from expf's by %.3g (relative)", worst);
    free(g), free(up), free(want);
}

static void test_656k(void) {
    const char *dir = test_shared_path("models/tinystories-656k");
    compare_model(dir, "tinystories-656k (HF f32)", 1e-4, 1e-4, true);
}

static void test_synthetic_types(const char *tmp) {
    static const lq_type types[] = {LQ_TYPE_F32,  LQ_TYPE_F16,  LQ_TYPE_BF16, LQ_TYPE_Q4_0,   LQ_TYPE_Q4_1,
                                    LQ_TYPE_Q5_0, LQ_TYPE_Q5_1, LQ_TYPE_Q8_0, LQ_TYPE_Q2_K,   LQ_TYPE_Q3_K,
                                    LQ_TYPE_Q4_K, LQ_TYPE_Q5_K, LQ_TYPE_Q6_K, LQ_TYPE_IQ4_NL, LQ_TYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        lq_error err;
        lq_synth_opts o;
        CHECK_OK(lq_synth_shape("tiny", &o, &err), &err);
        o.type = types[i];
        o.seed = 7 + i;
        char path[4200];
        snprintf(path, sizeof path, "%s/synth-%s.gguf", tmp, lq_type_get(types[i])->name);
        lq_status st = lq_synth_write(path, &o, &err);
        CHECKF(st == LQ_OK, "synth %s: %s", lq_type_get(types[i])->name, err.msg);
        if (st) continue;
        char label[64];
        snprintf(label, sizeof label, "synthetic tiny %s (GGUF)", lq_type_get(types[i])->name);
        /* quantized activations (Q8_0/Q8_K) cost up to about a percent of the logit range */
        bool quantized = lq_type_get(types[i])->is_quantized;
        compare_model(path, label, 1e-4, quantized ? 3e-2 : 1e-4, !quantized);
        remove(path);
    }
}

/* q/k/v/o biases and Llama-3 RoPE scaling, in both layouts, against the naive pass. */
static void test_bias_and_llama3_rope(const char *tmp) {
    lq_error err;
    lq_synth_opts o;
    CHECK_OK(lq_synth_shape("tiny", &o, &err), &err);
    o.qkv_bias = true;
    o.rope_llama3 = true;
    o.rope_factor = 8, o.rope_low_freq_factor = 1, o.rope_high_freq_factor = 4, o.rope_orig_ctx = 8192;
    o.seed = 5;
    char dir[4200], gguf[4200];
    snprintf(dir, sizeof dir, "%s/synth-bias-hf", tmp);
    snprintf(gguf, sizeof gguf, "%s/synth-bias.gguf", tmp);
    CHECK_OK(lq_synth_write(dir, &o, &err), &err);
    CHECK_OK(lq_synth_write(gguf, &o, &err), &err);
    compare_model(dir, "biases + llama3 rope (HF)", 1e-4, 1e-4, true);
    compare_model(gguf, "biases + llama3 rope (GGUF)", 1e-4, 1e-4, true);
    /* and the scaling matters: the same weights without it give other logits */
    lq_model *a = NULL, *b = NULL;
    CHECK_OK(lq_model_open(dir, &a, &err), &err);
    o.rope_llama3 = false;
    snprintf(dir, sizeof dir, "%s/synth-bias-noscale", tmp);
    CHECK_OK(lq_synth_write(dir, &o, &err), &err);
    CHECK_OK(lq_model_open(dir, &b, &err), &err);
    if (a && b) {
        CHECK(lq_model_hparams(a)->rope_scaling == LQ_ROPE_SCALING_LLAMA3);
        int32_t tok[N_TOK];
        make_tokens(tok, N_TOK, o.n_vocab, 8);
        float *la = runtime_logits(a, tok, N_TOK, true, 1), *lb = runtime_logits(b, tok, N_TOK, true, 1);
        CHECK(la && lb && max_rel_err(la, lb, N_TOK, o.n_vocab) > 1e-3);
        free(la), free(lb);
    }
    lq_model_close(a);
    lq_model_close(b);
}

/* The same seed written as an HF directory and as GGUF (rows permuted for interleaved RoPE)
 * is the same model: logits agree. */
static void test_hf_vs_gguf(const char *tmp) {
    lq_error err;
    lq_synth_opts o;
    CHECK_OK(lq_synth_shape("tiny", &o, &err), &err);
    o.tie_embeddings = true;
    char dir[4200], gguf[4200];
    snprintf(dir, sizeof dir, "%s/synth-hf", tmp);
    snprintf(gguf, sizeof gguf, "%s/synth-tied.gguf", tmp);
    CHECK_OK(lq_synth_write(dir, &o, &err), &err);
    CHECK_OK(lq_synth_write(gguf, &o, &err), &err);
    lq_model *a = NULL, *b = NULL;
    CHECK_OK(lq_model_open(dir, &a, &err), &err);
    CHECK_OK(lq_model_open(gguf, &b, &err), &err);
    if (!a || !b) return;
    CHECK(lq_model_rope_layout(a) == LQ_ROPE_HALVES);
    CHECK(lq_model_rope_layout(b) == LQ_ROPE_INTERLEAVED);
    int32_t tok[N_TOK];
    make_tokens(tok, N_TOK, o.n_vocab, 3);
    float *la = runtime_logits(a, tok, N_TOK, true, 1);
    float *lb = runtime_logits(b, tok, N_TOK, true, 1);
    double e = la && lb ? max_rel_err(la, lb, N_TOK, o.n_vocab) : 1;
    CHECKF(e <= 1e-5, "HF and GGUF layouts of one synthetic model differ by %.3g", e);
    free(la), free(lb);
    lq_model_close(a);
    lq_model_close(b);
}

/* ---------------------------------------------------------------------------------------
 * Layer-at-a-time API, hooks, weight replacement, determinism
 * ------------------------------------------------------------------------------------- */

typedef struct hook_log {
    int calls;
    int q_calls;
    int64_t rows_seen;
    bool bad_width;
    const lq_hparams *hp;
} hook_log;

static void count_hook(void *ctx, const char *name, const float *x, int64_t n_tokens, int64_t n_in) {
    hook_log *h = (hook_log *)ctx;
    h->calls++;
    if (strstr(name, "attn_q")) h->q_calls++;
    h->rows_seen += n_tokens;
    int64_t want = strstr(name, "ffn_down") ? h->hp->n_ff : h->hp->n_embd;
    if (n_in != want || !isfinite(x[0]) || !isfinite(x[(n_tokens - 1) * n_in + n_in - 1])) h->bad_width = true;
}

/* Whether the mapping holding p carries VmFlag `flag` (/proc/self/smaps); -1: unknown. */
/* The mapping holding p: its VmFlags carry `flag` (1) or not (0), and [*lo, *hi); -1 when
 * /proc/self/smaps cannot tell. */
static int vma_has_flag(const void *p, const char *flag, uintptr_t *lo_out, uintptr_t *hi_out) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int found = -1;
    bool inside = false;
    uintptr_t a = (uintptr_t)p;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a >= lo && a < hi;
            if (inside) *lo_out = lo, *hi_out = hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            char want[8];
            snprintf(want, sizeof want, " %s", flag);
            found = strstr(line, want) != NULL;
            break;
        }
    }
    fclose(f);
    return found;
}

/* The runtime asks for the model's mapped pages as huge pages ("hg" in the mapping's flags),
 * the whole span of tensors in one call before any is read: norms included, so they neither
 * split the area nor get read into small pages first. 2048-wide norms fill whole 4 KiB pages,
 * which advice given per weight matrix would leave out. */
static void test_huge_page_advice(const char *tmp) {
    lq_error err;
    lq_synth_opts o;
    CHECK_OK(lq_synth_shape("tiny", &o, &err), &err);
    o.n_embd = 2048, o.n_head = 16, o.n_head_kv = 4, o.n_ff = 64, o.n_layer = 2, o.n_vocab = 64;
    o.type = LQ_TYPE_Q8_0;
    char path[4200];
    snprintf(path, sizeof path, "%s/synth-wide.gguf", tmp);
    CHECK_OK(lq_synth_write(path, &o, &err), &err);
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    if (!m) return;
    lq_runtime *rt = NULL;
    lq_runtime_opts ro = {2, 8, 4, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &ro, &rt, &err), &err);
    uintptr_t lo = 0, hi = 0;
    const lq_tensor *first = lq_model_tensor(m, 0);
    int hg = rt && first ? vma_has_flag(first->data, "hg", &lo, &hi) : -1;
    if (hg < 0 || access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) != 0) {
        fprintf(stderr, "no /proc/self/smaps or no transparent huge pages: huge-page advice not checked\n");
    } else {
        CHECKF(hg == 1, "%s: tensors not advised as huge pages", path);
        for (int64_t i = 0; i < lq_model_n_tensors(m); i++) {
            const lq_tensor *t = lq_model_tensor(m, i);
            uintptr_t a = (uintptr_t)t->data;
            CHECKF(a >= lo && a + t->nbytes <= hi, "%s: tensor %s outside the advised area", path, t->name);
        }
    }
    lq_runtime_free(rt);
    lq_model_close(m);
    remove(path);
}

static void test_layer_api(const char *tmp) {
    lq_error err;
    lq_synth_opts o;
    CHECK_OK(lq_synth_shape("tiny", &o, &err), &err);
    o.type = LQ_TYPE_Q8_0;
    char path[4200];
    snprintf(path, sizeof path, "%s/synth-layers.gguf", tmp);
    CHECK_OK(lq_synth_write(path, &o, &err), &err);
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    if (!m) return;
    const int64_t n_seq = 2, n = 9, nv = o.n_vocab, E = o.n_embd;
    int32_t tok[2 * 9];
    make_tokens(tok, n_seq * n, nv, 11);

    /* reference: each sequence through eval from an empty cache */
    lq_runtime *rt = NULL;
    lq_runtime_opts ro = {2, 32, 4, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(m, &ro, &rt, &err), &err);
    if (!rt) return;
    float *ref = malloc((size_t)(n_seq * n * nv) * sizeof(float));
    for (int s = 0; s < n_seq; s++) {
        lq_runtime_reset(rt);
        CHECK_OK(lq_runtime_eval(rt, tok + s * n, n, ref + s * n * nv, &err), &err);
    }

    /* lq bench's decode: the last token's logits alone, the bits of eval's last row */
    float *last = malloc((size_t)nv * sizeof(float));
    lq_runtime_reset(rt);
    CHECK_OK(rt_eval_last_logits(rt, tok, n, last, &err), &err);
    CHECK(memcmp(last, ref + (size_t)(n - 1) * (size_t)nv, (size_t)nv * sizeof(float)) == 0);
    free(last);

    /* the same through embed → layer × n_layer → logits, both sequences in one batch */
    hook_log log = {0, 0, 0, false, lq_model_hparams(m)};
    lq_runtime_set_hook(rt, count_hook, &log);
    float *hidden = malloc((size_t)(n_seq * n * E) * sizeof(float));
    float *got = malloc((size_t)(n_seq * n * nv) * sizeof(float));
    CHECK_OK(lq_runtime_embed(rt, tok, n_seq * n, hidden, &err), &err);
    for (int64_t l = 0; l < lq_runtime_n_layer(rt); l++)
        CHECK_OK(lq_runtime_layer(rt, l, hidden, n_seq, n, &err), &err);
    CHECK_OK(lq_runtime_logits(rt, hidden, n_seq * n, got, &err), &err);
    double e = max_rel_err(got, ref, n_seq * n, nv);
    CHECKF(e <= 1e-5, "layer-at-a-time logits differ from eval by %.3g", e);
    /* 7 linear inputs per layer + the output head */
    CHECK(log.calls == 7 * o.n_layer + 1);
    CHECK(log.q_calls == o.n_layer);
    CHECK(log.rows_seen == (7 * o.n_layer + 1) * n_seq * n);
    CHECK(!log.bad_width);
    CHECK(lq_runtime_layer(rt, o.n_layer, hidden, n_seq, n, &err) == LQ_ERR_INVALID);

    /* replacing a weight by its own dequantized copy (F32) keeps the logits close; replacing
     * it by zeros changes them */
    lq_runtime_set_hook(rt, NULL, NULL);
    const lq_tensor *wq = lq_model_find(m, "blk.0.attn_q.weight");
    float *wq_f32 = tensor_to_f32(wq);
    CHECK_OK(lq_runtime_set_weight(rt, "blk.0.attn_q.weight", LQ_TYPE_F32, wq_f32, &err), &err);
    float *got2 = malloc((size_t)(n * nv) * sizeof(float));
    lq_runtime_reset(rt);
    CHECK_OK(lq_runtime_eval(rt, tok, n, got2, &err), &err);
    double e2 = max_rel_err(got2, ref, n, nv);
    CHECKF(e2 <= 3e-2, "F32 copy of attn_q changes logits by %.3g", e2);
    memset(wq_f32, 0, (size_t)(wq->ne[0] * wq->ne[1]) * sizeof(float));
    lq_runtime_reset(rt);
    CHECK_OK(lq_runtime_eval(rt, tok, n, got2, &err), &err);
    CHECK(max_rel_err(got2, ref, n, nv) > 1e-3);
    CHECK(lq_runtime_set_weight(rt, "blk.0.no_such.weight", LQ_TYPE_F32, wq_f32, &err) == LQ_ERR_INVALID);
    CHECK(lq_runtime_set_weight(rt, "blk.0.attn_q.weight", LQ_TYPE_Q4_K, wq_f32, &err) == LQ_OK); /* 256 wide */

    /* bad input: token out of range, context overflow */
    int32_t bad = (int32_t)nv;
    lq_runtime_reset(rt);
    CHECK(lq_runtime_eval(rt, &bad, 1, NULL, &err) == LQ_ERR_INVALID);
    CHECK(strstr(err.msg, "vocabulary") != NULL);
    int32_t many[40] = {0};
    CHECK(lq_runtime_eval(rt, many, 40, NULL, &err) == LQ_ERR_INVALID);

    free(ref), free(hidden), free(got), free(got2), free(wq_f32);
    lq_runtime_free(rt);

    /* determinism: 1 and 2 threads give identical bytes */
    float *l1 = runtime_logits(m, tok, n, false, 1);
    float *l2 = runtime_logits(m, tok, n, false, 2);
    CHECK(l1 && l2 && memcmp(l1, l2, (size_t)(n * nv) * sizeof(float)) == 0);
    free(l1), free(l2);
    lq_model_close(m);
    remove(path);
}

int main(void) {
    const char *tmp = test_tmpdir("runtime-forward");
    test_pool_chunks();
    test_swiglu();
    test_tiled_products();
    test_sgemm_products();
    test_synthetic_types(tmp);
    test_hf_vs_gguf(tmp);
    test_bias_and_llama3_rope(tmp);
    test_layer_api(tmp);
    test_huge_page_advice(tmp);
    test_656k();
    TEST_DONE();
}
