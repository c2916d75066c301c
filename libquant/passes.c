/* passes.c — the sequential layer driver of the calibrated passes (see libquant.h).
 *
 * The runtime keeps the model's original norms; transforms that fold a scale s into a norm
 * (SmoothQuant, AWQ's norm groups) are therefore represented in the runtime by handing it the
 * linears as W'·diag(1/s) in F32 (the same function), and the Hessians of those linears are
 * taken in the scaled space (H' = diag(1/s)·H·diag(1/s), since the folded model feeds them x/s).
 * Transforms between two linears (AWQ v→o, up→down) change both weights in the runtime, so the
 * hooks already see the scaled inputs. Weights the runtime reads are F32 copies of what will be
 * written (decoded quantized values once quantized), multiplied with fp32 activations.
 *
 * Layers are evaluated in batches of sequences (~4096 tokens) to bound the runtime's scratch
 * memory; Hessians accumulate batch by batch (fixed order: deterministic). */
#include "device_adapters.h"
#include "passes_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { L_Q, L_K, L_V, L_O, L_GATE, L_UP, L_DOWN, L_COUNT };
/* input kinds: what a linear reads */
enum { IN_ATTN, IN_O, IN_FFN, IN_DOWN, IN_COUNT };
static const char *const k_lin[L_COUNT] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                           "ffn_gate", "ffn_up", "ffn_down"};
static const int k_input_of[L_COUNT] = {IN_ATTN, IN_ATTN, IN_ATTN, IN_O, IN_FFN, IN_FFN, IN_DOWN};
/* the linear whose hook reports each input kind */
static const int k_kind_lin[IN_COUNT] = {L_Q, L_O, L_GATE, L_DOWN};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void lq_passes_opts_default(lq_passes_opts *o) {
    memset(o, 0, sizeof *o);
    o->method = LQ_PASS_GPTQ;
    o->smoothquant_alpha = -1.0;
}

int lq_pass_method_from_name(const char *name) {
    static const char *const names[] = {"none", "rtn", "gptq", "awq", "awq+gptq"};
    for (int i = 0; i < 5; i++)
        if (name && !strcmp(name, names[i])) return i;
    return -1;
}

void lq_passes_report_free(lq_passes_report *r) {
    if (!r) return;
    free(r->tensors);
    free(r->layer_seconds);
    memset(r, 0, sizeof *r);
}

/* ---- state ---------------------------------------------------------------------------------- */

typedef struct layer_state {
    int64_t il;
    char names[L_COUNT][LQ_MAX_NAME];
    char norm_names[2][LQ_MAX_NAME];
    lq_type types[L_COUNT];
    bool codec[L_COUNT];         /* plan type is a block codec type: we quantize it */
    int64_t n_in[L_COUNT], n_out[L_COUNT];
    float *w[L_COUNT];           /* current float weights (after transforms) */
    float *w_ref[L_COUNT];       /* the weights before AWQ's clipping (output-error reference),
                                  * NULL when not clipped */
    bool w_changed[L_COUNT];
    float *norm[2];              /* attn_norm, ffn_norm */
    bool norm_changed[2];
    float *fold[IN_COUNT];       /* norm-folded scale per input kind (IN_ATTN, IN_FFN), or NULL */
    float *in_scale[IN_COUNT];   /* every scale applied to an input kind (norm or linear folds):
                                  * the folded model feeds x / in_scale; NULL = none */
    float *rt_w[L_COUNT];        /* what the runtime reads (F32) */
    void *q[L_COUNT];            /* quantized bytes */
    size_t q_bytes[L_COUNT];
    lq_pass_tensor rep[L_COUNT];
    double sq_alpha[2];
} layer_state;

typedef struct capture {
    char names[IN_COUNT][LQ_MAX_NAME];
    int64_t n_in[IN_COUNT];
    /* statistics mode */
    bool stats;
    double *sum_abs[IN_COUNT];
    float *max_abs[IN_COUNT];
    int64_t n_tok[IN_COUNT];
    float *sample[IN_COUNT];     /* n_sample × n_in */
    int64_t n_sample, stride, row_base, taken[IN_COUNT];
    /* hessian mode */
    lq_hessian *hs[IN_COUNT];
    int n_threads;
    lq_device_ctx *device; /* Hessian sums on the device (NULL: CPU) */
    double hessian_flops, hessian_seconds;
} capture;

typedef struct driver {
    const lq_model *m;
    const lq_plan *plan;
    const lq_passes_opts *o;
    lq_runtime *rt;
    const lq_hparams *hp;
    int64_t n_seq, n_tok, n_rows, n_embd, batch_seq;
    float *hidden, *scratch;
    lq_passes_report *rep;
    lq_tensor_set *out;
    int n_threads;
} driver;

static int kind_of_name(const capture *c, const char *name) {
    for (int k = 0; k < IN_COUNT; k++)
        if (c->names[k][0] && !strcmp(c->names[k], name)) return k;
    return -1;
}

static void capture_hook(void *ctx, const char *name, const float *x, int64_t n_tokens, int64_t n_in) {
    capture *c = (capture *)ctx;
    int k = kind_of_name(c, name);
    if (k < 0 || n_in != c->n_in[k]) return;
    if (c->hs[k]) {
        double t0 = now_s();
        if (c->device) lq_device_hessian_add(c->device, c->hs[k], x, n_tokens);
        else lq_hessian_add(c->hs[k], x, n_tokens, c->n_threads);
        c->hessian_seconds += now_s() - t0;
        /* flops of the half (upper panels) that is actually computed: n_in²·tokens */
        c->hessian_flops += (double)n_in * (double)n_in * (double)n_tokens;
    }
    if (!c->stats) return;
    for (int64_t t = 0; t < n_tokens; t++) {
        const float *xt = x + t * n_in;
        for (int64_t j = 0; j < n_in; j++) {
            float a = fabsf(xt[j]);
            c->sum_abs[k][j] += a;
            if (a > c->max_abs[k][j]) c->max_abs[k][j] = a;
        }
        int64_t row = c->row_base + t;
        if (row % c->stride == 0 && c->taken[k] < c->n_sample)
            memcpy(c->sample[k] + c->taken[k]++ * n_in, xt, (size_t)n_in * sizeof(float));
    }
    c->n_tok[k] += n_tokens;
}

/* Runs layer il over all sequences: in place on d->hidden when propagate, else on a copy. */
static lq_status run_layer(driver *d, int64_t il, bool propagate, capture *c, lq_error *err) {
    double t0 = now_s();
    lq_runtime_set_hook(d->rt, c ? capture_hook : NULL, c);
    lq_status st = LQ_OK;
    size_t seq_floats = (size_t)d->n_tok * (size_t)d->n_embd;
    for (int64_t s0 = 0; s0 < d->n_seq && st == LQ_OK; s0 += d->batch_seq) {
        int64_t ns = d->n_seq - s0 < d->batch_seq ? d->n_seq - s0 : d->batch_seq;
        float *h = d->hidden + (size_t)s0 * seq_floats;
        if (!propagate) {
            memcpy(d->scratch, h, (size_t)ns * seq_floats * sizeof(float));
            h = d->scratch;
        }
        if (c) c->row_base = s0 * d->n_tok;
        if (lq_interrupted) st = lq_fail(err, LQ_ERR_INTERRUPTED, "passes: interrupted in layer %lld", (long long)il);
        else st = lq_runtime_layer(d->rt, il, h, ns, d->n_tok, err);
    }
    lq_runtime_set_hook(d->rt, NULL, NULL);
    d->rep->forward_seconds += now_s() - t0;
    return st;
}

static lq_type plan_type(const lq_plan *plan, const char *name) {
    for (int64_t i = 0; i < plan->n_entries; i++)
        if (!strcmp(plan->entries[i].name, name)) return plan->entries[i].type;
    return LQ_TYPE_F32;
}

static lq_status load_float(const lq_model *m, const char *name, int64_t n_in, int64_t n_out,
                            float **out, lq_error *err) {
    const lq_tensor *t = lq_model_find(m, name);
    if (!t) return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s' is missing", lq_model_path(m), name);
    if (t->ne[0] != n_in || t->ne[1] != n_out)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': unexpected shape", lq_model_path(m), name);
    *out = lq_malloc((size_t)n_in * (size_t)n_out * sizeof(float), err, name);
    if (!*out) return LQ_ERR_NOMEM;
    return lq_dequantize_rows(t->type, t->data, *out, n_out, n_in, err);
}

static void free_layer(driver *d, layer_state *L) {
    for (int l = 0; l < L_COUNT; l++) {
        const lq_tensor *t = lq_model_find(d->m, L->names[l]);
        if (t && L->rt_w[l]) lq_runtime_set_weight(d->rt, L->names[l], t->type, t->data, NULL);
        free(L->w[l]);
        free(L->w_ref[l]);
        free(L->rt_w[l]);
        free(L->q[l]);
    }
    for (int k = 0; k < 2; k++) free(L->norm[k]);
    for (int k = 0; k < IN_COUNT; k++) {
        free(L->fold[k]);
        free(L->in_scale[k]);
    }
}

/* *acc (n values, created as ones when NULL) *= s */
static lq_status mul_scale(float **acc, const float *s, int64_t n, lq_error *err) {
    if (!*acc) {
        *acc = lq_malloc((size_t)n * sizeof(float), err, "passes");
        if (!*acc) return LQ_ERR_NOMEM;
        for (int64_t j = 0; j < n; j++) (*acc)[j] = 1.0f;
    }
    for (int64_t j = 0; j < n; j++) (*acc)[j] *= s[j];
    return LQ_OK;
}

static lq_status load_layer(driver *d, int64_t il, layer_state *L, lq_error *err) {
    memset(L, 0, sizeof *L);
    L->il = il;
    const lq_hparams *hp = d->hp;
    int64_t q_dim = hp->n_head * hp->head_dim, kv_dim = hp->n_head_kv * hp->head_dim;
    int64_t n_in[L_COUNT] = {hp->n_embd, hp->n_embd, hp->n_embd, q_dim, hp->n_embd, hp->n_embd, hp->n_ff};
    int64_t n_out[L_COUNT] = {q_dim, kv_dim, kv_dim, hp->n_embd, hp->n_ff, hp->n_ff, hp->n_embd};
    lq_status st;
    for (int l = 0; l < L_COUNT; l++) {
        snprintf(L->names[l], LQ_MAX_NAME, "blk.%lld.%s.weight", (long long)il, k_lin[l]);
        L->n_in[l] = n_in[l];
        L->n_out[l] = n_out[l];
        L->types[l] = plan_type(d->plan, L->names[l]);
        const lq_type_traits *tr = lq_type_get(L->types[l]);
        L->codec[l] = tr && tr->is_quantized && tr->has_codec && !tr->activation_only &&
                      n_in[l] % tr->block_size == 0;
        if ((st = load_float(d->m, L->names[l], n_in[l], n_out[l], &L->w[l], err))) return st;
        L->rep[l].awq_alpha = L->rep[l].clip_ratio = L->rep[l].sq_alpha = -1.0;
        L->rep[l].err_before = L->rep[l].err_after = -1.0;
        snprintf(L->rep[l].name, LQ_MAX_NAME, "%s", L->names[l]);
    }
    snprintf(L->norm_names[0], LQ_MAX_NAME, "blk.%lld.attn_norm.weight", (long long)il);
    snprintf(L->norm_names[1], LQ_MAX_NAME, "blk.%lld.ffn_norm.weight", (long long)il);
    for (int k = 0; k < 2; k++)
        if ((st = load_float(d->m, L->norm_names[k], hp->n_embd, 1, &L->norm[k], err))) return st;
    L->sq_alpha[0] = L->sq_alpha[1] = -1.0;
    return LQ_OK;
}

/* ---- transforms ----------------------------------------------------------------------------- */

static void fold_hessian(double *h, int64_t n, const float *s);

static void scale_cols(float *w, int64_t n_out, int64_t n_in, const float *s, bool divide) {
    for (int64_t r = 0; r < n_out; r++)
        for (int64_t j = 0; j < n_in; j++) w[r * n_in + j] = divide ? w[r * n_in + j] / s[j] : w[r * n_in + j] * s[j];
}

/* Folds s into the norm feeding input kind k (IN_ATTN or IN_FFN): norm /= s, W[:, j] *= s_j for
 * its linears, captured statistics / samples / fold scale updated. */
static lq_status fold_norm(layer_state *L, capture *c, int kind, const float *s, lq_error *err) {
    int nk = kind == IN_ATTN ? 0 : 1;
    int64_t n = L->n_in[k_kind_lin[kind]];
    for (int64_t j = 0; j < n; j++) L->norm[nk][j] /= s[j];
    L->norm_changed[nk] = true;
    for (int l = 0; l < L_COUNT; l++)
        if (k_input_of[l] == kind) {
            scale_cols(L->w[l], L->n_out[l], n, s, false);
            L->w_changed[l] = true;
        }
    lq_status st = mul_scale(&L->fold[kind], s, n, err);
    if (st == LQ_OK) st = mul_scale(&L->in_scale[kind], s, n, err);
    if (st != LQ_OK) return st;
    if (c->hs[kind]) fold_hessian(c->hs[kind]->h, n, s);
    for (int64_t j = 0; j < n; j++) {
        c->sum_abs[kind][j] /= s[j];
        c->max_abs[kind][j] /= s[j];
    }
    scale_cols(c->sample[kind], c->taken[kind], n, s, true);
    return LQ_OK;
}

/* Scale between two linears: prev rows /= s, next columns *= s (next's input kind). */
static lq_status fold_linear(layer_state *L, capture *c, int prev, int next, const float *s,
                             lq_error *err) {
    int64_t n = L->n_in[next];
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < L->n_in[prev]; j++) L->w[prev][r * L->n_in[prev] + j] /= s[r];
    scale_cols(L->w[next], L->n_out[next], n, s, false);
    L->w_changed[prev] = L->w_changed[next] = true;
    int kind = k_input_of[next];
    if (c->hs[kind]) fold_hessian(c->hs[kind]->h, n, s);
    for (int64_t j = 0; j < n; j++) {
        c->sum_abs[kind][j] /= s[j];
        c->max_abs[kind][j] /= s[j];
    }
    scale_cols(c->sample[kind], c->taken[kind], n, s, true);
    return mul_scale(&L->in_scale[kind], s, n, err);
}

static lq_status smoothquant_layer(driver *d, layer_state *L, capture *c, lq_error *err) {
    const int kinds[2] = {IN_ATTN, IN_FFN};
    for (int g = 0; g < 2; g++) {
        int kind = kinds[g];
        int64_t n = L->n_in[k_kind_lin[kind]];
        const float *ws[3];
        int64_t outs[3];
        int n_lin = 0;
        for (int l = 0; l < L_COUNT; l++)
            if (k_input_of[l] == kind) {
                ws[n_lin] = L->w[l];
                outs[n_lin++] = L->n_out[l];
            }
        float *s = lq_malloc((size_t)n * sizeof(float), err, "smoothquant");
        if (!s) return LQ_ERR_NOMEM;
        double alpha = d->o->smoothquant_alpha;
        lq_status st = LQ_OK;
        if (d->o->smoothquant_auto) {
            double best = INFINITY;
            for (int k = 0; k <= 20 && st == LQ_OK; k++) {
                double a = k / 20.0, mse;
                lq_sq_scales(c->max_abs[kind], ws, outs, n_lin, n, a, s);
                st = lq_sq_w8a8_error(c->sample[kind], c->taken[kind], ws, outs, n_lin, n, s,
                                      d->n_threads, &mse, err);
                if (st == LQ_OK && mse < best) {
                    best = mse;
                    alpha = a;
                }
            }
        }
        if (st == LQ_OK) {
            lq_sq_scales(c->max_abs[kind], ws, outs, n_lin, n, alpha, s);
            st = fold_norm(L, c, kind, s, err);
        }
        free(s);
        if (st != LQ_OK) return st;
        L->sq_alpha[g] = alpha;
        for (int l = 0; l < L_COUNT; l++)
            if (k_input_of[l] == kind) L->rep[l].sq_alpha = alpha;
    }
    return LQ_OK;
}

/* One AWQ group: search, fold, record. lins: the scaled linears; prev: the linear before (or
 * -1 for a norm group); mlp: measure on the MLP output. */
static lq_status awq_group_run(driver *d, layer_state *L, capture *c, const int *lins, int n_lin,
                               int prev, bool mlp, lq_hessian *hs, lq_error *err) {
    awq_group g;
    memset(&g, 0, sizeof g);
    for (int i = 0; i < n_lin; i++) {
        if (!L->codec[lins[i]]) return LQ_OK; /* no block format to search against */
        g.w[i] = L->w[lins[i]];
        g.n_out[i] = L->n_out[lins[i]];
        g.type[i] = L->types[lins[i]];
    }
    g.n_lin = n_lin;
    if (mlp) {
        g.down = L->w[L_DOWN];
        g.n_down_out = L->n_out[L_DOWN];
    }
    int kind = k_input_of[lins[0]];
    int64_t n = L->n_in[lins[0]];
    if (hs) { /* the Hessian in the space the current weights live in (earlier folds) */
        g.h = hs[kind].h;
        g.h_tokens = hs[kind].n_tokens;
        g.gptq.percdamp = d->o->percdamp;
        g.gptq.block_size = d->o->gptq_block;
        g.min_gain = 0.05;
    }
    float *x_mean = lq_malloc((size_t)n * sizeof(float), err, "awq");
    float *s = lq_malloc((size_t)n * sizeof(float), err, "awq");
    lq_status st = LQ_OK;
    if (!x_mean || !s) {
        st = LQ_ERR_NOMEM;
        goto done;
    }
    for (int64_t j = 0; j < n; j++)
        x_mean[j] = (float)(c->sum_abs[kind][j] / (double)(c->n_tok[kind] ? c->n_tok[kind] : 1));
    double alpha = 0, loss0 = 0, loss = 0;
    int grid = d->o->awq_grid > 0 ? d->o->awq_grid : 20;
    st = d->o->device ? lq_device_awq_search_scale(d->o->device, &g, n, c->sample[kind], c->taken[kind], x_mean,
                                                   grid, s, &alpha, &loss0, &loss, err)
                      : LQ_ERR_UNSUPPORTED;
    if (st == LQ_ERR_UNSUPPORTED) /* CPU, or AWQ+GPTQ (GPTQ per candidate stays on the CPU) */
        st = lq_awq_search_scale(&g, n, c->sample[kind], c->taken[kind], x_mean, grid, d->n_threads, s,
                                 &alpha, &loss0, &loss, err);
    if (st != LQ_OK) {
        lq_fail_wrap(err, "%s: awq scale search", L->names[lins[0]]);
        goto done;
    }
    if (prev < 0) st = fold_norm(L, c, kind, s, err);
    else st = fold_linear(L, c, prev, lins[0], s, err);
    for (int i = 0; i < n_lin; i++) {
        L->rep[lins[i]].awq_alpha = alpha;
        L->rep[lins[i]].awq_loss_rtn = loss0;
        L->rep[lins[i]].awq_loss = loss;
    }
done:
    free(x_mean);
    free(s);
    return st;
}

/* The clip search judges gate and up by their own output error, but those outputs feed
 * SiLU(gate)·up: on tinystories-4m Q2_K their clips lowered that error by ~10 % and raised
 * held-out KLD by ~5 % (clipping v, o, down alone lowered it). Keep them only when they also lower
 * the MLP output error on the sample (the loss AWQ's scale search uses for this group), the same
 * kind of in-sample check at the block output that AWQ+GPTQ's scale guard makes. */
static lq_status clip_guard_mlp(driver *d, layer_state *L, capture *c, lq_error *err) {
    awq_group g;
    memset(&g, 0, sizeof g);
    g.n_lin = 2;
    const int lins[2] = {L_GATE, L_UP};
    for (int i = 0; i < 2; i++) {
        g.w[i] = L->w_ref[lins[i]];
        g.n_out[i] = L->n_out[lins[i]];
        g.type[i] = L->types[lins[i]];
    }
    g.down = L->w[L_DOWN];
    g.n_down_out = L->n_out[L_DOWN];
    const float *plain[2] = {L->w_ref[L_GATE], L->w_ref[L_UP]}, *clipped[2] = {L->w[L_GATE], L->w[L_UP]};
    double loss_plain = 0, loss_clip = 0;
    int64_t n = L->n_in[L_GATE];
    lq_status st = lq_awq_group_loss(&g, plain, n, c->sample[IN_FFN], c->taken[IN_FFN], d->n_threads,
                                     &loss_plain, err);
    if (st == LQ_OK)
        st = lq_awq_group_loss(&g, clipped, n, c->sample[IN_FFN], c->taken[IN_FFN], d->n_threads, &loss_clip, err);
    if (st == LQ_OK && !(loss_clip < loss_plain))
        for (int i = 0; i < 2; i++) {
            memcpy(L->w[lins[i]], L->w_ref[lins[i]], (size_t)g.n_out[i] * (size_t)n * sizeof(float));
            L->rep[lins[i]].clip_ratio = 1.0;
        }
    return st;
}

/* hs: FP-layer Hessians per input kind for AWQ+GPTQ (GPTQ in the search loop), else NULL. With
 * GPTQ afterwards no clipping: GPTQ would take the clipped weights as its target, so the clip
 * error could never be compensated. clip_h: the same Hessians (in the current space: the folds
 * keep them up to date) for the clip search, whose error is then summed over every calibration
 * token (dᵀ·H_bb·d) instead of llm-awq's 512-token sample: on tinystories-4m Q2_K the sample's
 * clips lowered the in-sample error but raised held-out KLD. */
static lq_status awq_layer(driver *d, layer_state *L, capture *c, lq_hessian *hs,
                           const lq_hessian *clip_h, lq_error *err) {
    lq_status st;
    const int qkv[3] = {L_Q, L_K, L_V}, o[1] = {L_O}, gu[2] = {L_GATE, L_UP}, down[1] = {L_DOWN};
    if ((st = awq_group_run(d, L, c, qkv, 3, -1, false, hs, err))) return st;
    /* v → o only when the shapes agree (llm-awq: skipped for GQA) */
    if (L->n_out[L_V] == L->n_out[L_O] && L->n_in[L_V] == L->n_in[L_O] &&
        (st = awq_group_run(d, L, c, o, 1, L_V, false, hs, err)))
        return st;
    if ((st = awq_group_run(d, L, c, gu, 2, -1, true, hs, err))) return st;
    if ((st = awq_group_run(d, L, c, down, 1, L_UP, false, hs, err))) return st;
    if (d->o->awq_no_clip || hs || !clip_h) return LQ_OK;
    for (int l = L_V; l < L_COUNT; l++) { /* not q/k */
        if (!L->codec[l]) continue;
        int kind = k_input_of[l];
        if (!clip_h[kind].h) continue;
        /* the unclipped weights: output-error reference, and what the MLP guard restores */
        size_t bytes = (size_t)L->n_out[l] * (size_t)L->n_in[l] * sizeof(float);
        if (!(L->w_ref[l] = lq_malloc(bytes, err, "awq clip reference"))) return LQ_ERR_NOMEM;
        memcpy(L->w_ref[l], L->w[l], bytes);
        st = lq_awq_clip_h(L->types[l], L->w[l], L->n_out[l], L->n_in[l], clip_h[kind].h, d->n_threads,
                           &L->rep[l].clip_ratio, err);
        if (st == LQ_OK && l == L_UP && L->w_ref[L_GATE]) st = clip_guard_mlp(d, L, c, err);
        if (st != LQ_OK) return lq_fail_wrap(err, "%s: awq clip", L->names[l]);
        L->w_changed[l] = true;
    }
    return LQ_OK;
}

/* ---- quantization ---------------------------------------------------------------------------- */

/* What the runtime should read for linear l given float values v (n_out × n_in): v with the
 * norm fold undone (the runtime's norms are the original ones). */
static lq_status set_runtime(driver *d, layer_state *L, int l, const float *v, lq_error *err) {
    size_t n = (size_t)L->n_out[l] * (size_t)L->n_in[l];
    if (!L->rt_w[l] && !(L->rt_w[l] = lq_malloc(n * sizeof(float), err, "passes"))) return LQ_ERR_NOMEM;
    if (v != L->rt_w[l]) memcpy(L->rt_w[l], v, n * sizeof(float));
    const float *fold = L->fold[k_input_of[l]];
    if (fold) scale_cols(L->rt_w[l], L->n_out[l], L->n_in[l], fold, true);
    return lq_runtime_set_weight(d->rt, L->names[l], LQ_TYPE_F32, L->rt_w[l], err);
}

/* Importance for linear l: the imatrix row, in the folded space (x/s: divide by s²) when
 * folded, else as recorded (the original model's inputs); or NULL without an imatrix. */
static lq_status importance_in(driver *d, layer_state *L, int l, bool folded, float **imp,
                               lq_error *err) {
    *imp = NULL;
    if (!d->o->imatrix) return LQ_OK;
    const lq_stats_entry *e = lq_stats_find(d->o->imatrix, L->names[l]);
    if (!e || e->n_in != L->n_in[l]) return LQ_OK;
    *imp = lq_malloc((size_t)L->n_in[l] * sizeof(float), err, "importance");
    if (!*imp) return LQ_ERR_NOMEM;
    lq_status st = lq_stats_importance(e, *imp, err);
    const float *sc = folded ? L->in_scale[k_input_of[l]] : NULL;
    for (int64_t j = 0; st == LQ_OK && sc && j < L->n_in[l]; j++) (*imp)[j] /= sc[j] * sc[j];
    if (st != LQ_OK) {
        free(*imp);
        *imp = NULL;
    }
    return st;
}

static lq_status importance_of(driver *d, layer_state *L, int l, float **imp, lq_error *err) {
    return importance_in(d, L, l, true, imp, err);
}

/* ---- output errors ----------------------------------------------------------------------------
 * ‖W·X − Ŵ·X‖² = Σ_rows Δw·(X·Xᵀ)·Δwᵀ: with the Hessian of the tensor's inputs no activations
 * need to be kept. One sgemm per chunk of rows stacks W, W − Ŵ_before and W − Ŵ_after against H
 * (fp32: the products are O(n_out·n_in²) like the sweep; the dot products with the rows are summed
 * in fp64). Fixed row chunks, per-chunk sums added in chunk order: thread-count independent. */

#define ERR_ROWS 64

typedef struct err_job {
    const float *h; /* n × n */
    int64_t n, n_out;
    const float *w, *before, *after;
    double *sums;   /* 3 per chunk */
    uint8_t *oom;   /* per chunk */
} err_job;

static void err_chunk(const err_job *j, int64_t c, float *dm, float *y) {
    size_t n = (size_t)j->n;
    int64_t r0 = c * ERR_ROWS, nr = j->n_out - r0 < ERR_ROWS ? j->n_out - r0 : ERR_ROWS;
    for (int64_t r = 0; r < nr; r++) {
        const float *w = j->w + (size_t)(r0 + r) * n, *b = j->before + (size_t)(r0 + r) * n;
        const float *a = j->after + (size_t)(r0 + r) * n;
        float *d0 = dm + (size_t)r * n, *d1 = dm + (size_t)(nr + r) * n, *d2 = dm + (size_t)(2 * nr + r) * n;
        for (size_t i = 0; i < n; i++) {
            d0[i] = w[i];
            d1[i] = w[i] - b[i];
            d2[i] = w[i] - a[i];
        }
    }
    lq_la_sgemm(false, false, 3 * nr, j->n, j->n, 1.0f, dm, j->n, j->h, j->n, 0.0f, y, j->n);
    for (int k = 0; k < 3; k++) {
        double sum = 0.0;
        for (size_t i = (size_t)k * nr * n; i < (size_t)(k + 1) * nr * n; i++) sum += (double)dm[i] * y[i];
        j->sums[c * 3 + k] = sum;
    }
}

static void err_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const err_job *j = (const err_job *)ctx;
    size_t m = (size_t)3 * ERR_ROWS * (size_t)j->n;
    float *dm = (float *)malloc(m * sizeof(float)), *y = (float *)malloc(m * sizeof(float));
    for (int64_t c = begin; c < end; c++) {
        if (dm && y) err_chunk(j, c, dm, y);
        else j->oom[c] = 1;
    }
    free(dm);
    free(y);
}

/* rel_before / rel_after = Δ·H·Δᵀ / W·H·Wᵀ summed over rows (0 when W·X = 0). */
static lq_status output_errors(const float *h, int64_t n, int64_t n_out, const float *w,
                               const float *before, const float *after, int n_threads,
                               double *rel_before, double *rel_after, lq_error *err) {
    int64_t n_chunks = (n_out + ERR_ROWS - 1) / ERR_ROWS;
    err_job job = {h, n, n_out, w, before, after, NULL, NULL};
    job.sums = (double *)lq_calloc((size_t)n_chunks * 3, sizeof(double), err, "output error");
    job.oom = (uint8_t *)lq_calloc((size_t)n_chunks, 1, err, "output error");
    lq_status st = job.sums && job.oom ? LQ_OK : LQ_ERR_NOMEM;
    if (st == LQ_OK) lq_parallel_for(n_chunks, n_threads, err_worker, &job);
    double total[3] = {0.0, 0.0, 0.0};
    for (int64_t c = 0; st == LQ_OK && c < n_chunks; c++) {
        if (job.oom[c]) st = lq_fail(err, LQ_ERR_NOMEM, "output error: out of memory");
        for (int k = 0; k < 3; k++) total[k] += job.sums[c * 3 + k];
    }
    if (st == LQ_OK) {
        /* Δ·H·Δᵀ ≥ 0 in exact arithmetic; fp32 rounding can leave a tiny negative */
        *rel_before = total[0] > 0.0 ? fmax(total[1], 0.0) / total[0] : 0.0;
        *rel_after = total[0] > 0.0 ? fmax(total[2], 0.0) / total[0] : 0.0;
    }
    free(job.sums);
    free(job.oom);
    return st;
}

/* fp32 copy of h (n × n) in the folded space diag(1/fold)·H·diag(1/fold) (fold may be NULL). */
static float *hessian_f32(const double *h, int64_t n, const float *fold, lq_error *err) {
    float *hf = lq_malloc((size_t)n * (size_t)n * sizeof(float), err, "hessian (fp32)");
    if (!hf) return NULL;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double v = h[i * n + j];
            if (fold) v /= (double)fold[i] * (double)fold[j];
            hf[i * n + j] = (float)v;
        }
    return hf;
}

/* The plain quantizer's version of wref (n_out × n_in, current space) into out: the input
 * scales of the transforms undone (= the original model's weights up to row scales, which the
 * block formats follow), quantized with the imatrix as recorded, the scales re-applied. */
static lq_status rtn_reference(driver *d, layer_state *L, int l, const float *wref, float *out,
                               lq_error *err) {
    int64_t n_out = L->n_out[l], n_in = L->n_in[l];
    const float *sc = L->in_scale[k_input_of[l]];
    memcpy(out, wref, (size_t)n_out * (size_t)n_in * sizeof(float));
    if (sc) scale_cols(out, n_out, n_in, sc, true);
    float *imp = NULL;
    lq_status st = importance_in(d, L, l, false, &imp, err);
    if (st == LQ_OK) st = lq_pass_fakequant(L->types[l], out, out, n_out, n_in, imp, d->n_threads, err);
    if (st == LQ_OK && sc) scale_cols(out, n_out, n_in, sc, false);
    free(imp);
    return st;
}

/* Records err_before / err_after of linear l whose final values are 'after'. hf: the fp32
 * Hessian of its inputs in the current space (NULL: not measured). */
static lq_status measure_linear(driver *d, layer_state *L, int l, const float *hf, const float *after,
                                lq_error *err) {
    if (d->o->no_error || !hf) return LQ_OK;
    double t0 = now_s();
    int64_t n_out = L->n_out[l], n_in = L->n_in[l];
    const float *w = L->w_ref[l] ? L->w_ref[l] : L->w[l];
    float *before = lq_malloc((size_t)n_out * (size_t)n_in * sizeof(float), err, "output error");
    lq_status st = before ? rtn_reference(d, L, l, w, before, err) : LQ_ERR_NOMEM;
    if (st == LQ_OK)
        st = output_errors(hf, n_in, n_out, w, before, after, d->n_threads, &L->rep[l].err_before,
                           &L->rep[l].err_after, err);
    free(before);
    d->rep->error_seconds += now_s() - t0;
    return st;
}

static lq_status alloc_q(layer_state *L, int l, lq_error *err) {
    L->q_bytes[l] = lq_row_size(L->types[l], L->n_in[l]) * (size_t)L->n_out[l];
    L->q[l] = lq_malloc(L->q_bytes[l], err, "quantized tensor");
    return L->q[l] ? LQ_OK : LQ_ERR_NOMEM;
}

static lq_status rtn_linear(driver *d, layer_state *L, int l, const float *hf, lq_error *err) {
    float *imp = NULL, *deq = NULL;
    lq_status st = importance_of(d, L, l, &imp, err);
    if (st == LQ_OK) st = alloc_q(L, l, err);
    if (st == LQ_OK)
        st = lq_quantize_rows_mt(L->types[l], L->w[l], L->q[l], L->n_out[l], L->n_in[l], imp,
                                 d->n_threads, err);
    if (st == LQ_OK && !(deq = lq_malloc((size_t)L->n_out[l] * (size_t)L->n_in[l] * sizeof(float), err, "passes")))
        st = LQ_ERR_NOMEM;
    if (st == LQ_OK) st = lq_dequantize_rows(L->types[l], L->q[l], deq, L->n_out[l], L->n_in[l], err);
    if (st == LQ_OK) st = measure_linear(d, L, l, hf, deq, err);
    if (st == LQ_OK) st = set_runtime(d, L, l, deq, err);
    free(imp);
    free(deq);
    return st;
}

/* H' = diag(1/s)·H·diag(1/s) in place. */
static void fold_hessian(double *h, int64_t n, const float *s) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) h[i * n + j] /= (double)s[i] * (double)s[j];
}

/* The factorisation for input kind k, in the folded space: H' = diag(1/s)·H·diag(1/s). */
static lq_status gptq_prepare_kind(driver *d, layer_state *L, int k, const lq_hessian *hs,
                                   lq_gptq_prep **prep, lq_error *err) {
    int64_t n = hs->n_in;
    const double *h = hs->h;
    double *folded = NULL;
    if (L->fold[k]) {
        folded = lq_malloc((size_t)n * (size_t)n * sizeof(double), err, "gptq hessian");
        if (!folded) return LQ_ERR_NOMEM;
        memcpy(folded, hs->h, (size_t)n * (size_t)n * sizeof(double));
        fold_hessian(folded, n, L->fold[k]);
        h = folded;
    }
    double t0 = now_s();
    lq_status st = lq_gptq_prepare(L->names[k_kind_lin[k]], n, h, d->o->percdamp, d->n_threads, prep, err);
    d->rep->factor_seconds += now_s() - t0;
    d->rep->factor_flops += lq_gptq_prep_attempts(*prep) * 2.0 / 3.0 * (double)n * (double)n * (double)n;
    free(folded);
    return st;
}

static lq_status gptq_linear(driver *d, layer_state *L, int l, const lq_gptq_prep *prep, const float *hf,
                             lq_error *err) {
    int64_t n = L->n_in[l];
    float *deq = lq_malloc((size_t)L->n_out[l] * (size_t)n * sizeof(float), err, "gptq");
    float *imp = NULL;
    lq_status st = deq ? LQ_OK : LQ_ERR_NOMEM;
    if (st == LQ_OK) st = importance_of(d, L, l, &imp, err);
    if (st == LQ_OK) st = alloc_q(L, l, err);
    if (st == LQ_OK) {
        lq_gptq_opts go = {d->o->percdamp, d->o->gptq_block, d->n_threads, imp, d->o->device};
        double t0 = now_s();
        st = lq_gptq_quantize_prepared(L->types[l], L->names[l], L->w[l], L->n_out[l], prep, &go, L->q[l],
                                       deq, &L->rep[l].report, err);
        d->rep->gptq_seconds += now_s() - t0;
        L->rep[l].gptq = true;
        if (st == LQ_OK && !L->rep[l].report.rtn_fallback)
            d->rep->gptq_flops += 2.0 * (double)L->n_out[l] * (double)n * (double)n;
    }
    if (st == LQ_OK) st = measure_linear(d, L, l, hf, deq, err);
    if (st == LQ_OK) st = set_runtime(d, L, l, deq, err);
    free(deq);
    free(imp);
    return st;
}

/* GPTQ groups: true-sequential {q,k,v} {o} {gate,up} {down}, or all at once. */
static lq_status gptq_layer(driver *d, layer_state *L, lq_error *err) {
    static const int seq_groups[4][IN_COUNT] = {{IN_ATTN, -1}, {IN_O, -1}, {IN_FFN, -1}, {IN_DOWN, -1}};
    static const int one_group[1][IN_COUNT] = {{IN_ATTN, IN_O, IN_FFN, IN_DOWN}};
    int n_groups = d->o->all_at_once ? 1 : 4;
    lq_status st = LQ_OK;
    for (int gi = 0; gi < n_groups && st == LQ_OK; gi++) {
        const int *kinds = d->o->all_at_once ? one_group[0] : seq_groups[gi];
        capture c;
        memset(&c, 0, sizeof c);
        c.n_threads = d->n_threads;
        c.device = d->o->device;
        lq_hessian hs[IN_COUNT];
        memset(hs, 0, sizeof hs);
        bool any = false;
        for (int i = 0; i < IN_COUNT && kinds[i] >= 0 && st == LQ_OK; i++) {
            int k = kinds[i];
            bool needed = false;
            for (int l = 0; l < L_COUNT; l++) needed |= k_input_of[l] == k && L->codec[l];
            if (!needed) continue;
            int lk = k_kind_lin[k];
            snprintf(c.names[k], LQ_MAX_NAME, "%s", L->names[lk]);
            c.n_in[k] = L->n_in[lk];
            st = lq_hessian_init(&hs[k], L->n_in[lk], err);
            c.hs[k] = &hs[k];
            any = true;
        }
        if (st == LQ_OK && any) {
            st = run_layer(d, L->il, false, &c, err);
            d->rep->hessian_flops += c.hessian_flops;
            d->rep->hessian_seconds += c.hessian_seconds;
            d->rep->forward_seconds -= c.hessian_seconds; /* counted apart */
        }
        lq_gptq_prep *prep[IN_COUNT] = {NULL};
        float *hf[IN_COUNT] = {NULL};
        for (int k = 0; k < IN_COUNT && st == LQ_OK; k++)
            if (c.hs[k]) {
                st = lq_device_hessian_collect(d->o->device, c.hs[k], err);
                if (st != LQ_OK) break;
                lq_hessian_finish(c.hs[k]);
                st = gptq_prepare_kind(d, L, k, c.hs[k], &prep[k], err);
                if (st == LQ_OK && !d->o->no_error &&
                    !(hf[k] = hessian_f32(c.hs[k]->h, c.hs[k]->n_in, L->fold[k], err)))
                    st = LQ_ERR_NOMEM;
            }
        for (int l = 0; l < L_COUNT && st == LQ_OK; l++)
            if (prep[k_input_of[l]] && L->codec[l])
                st = gptq_linear(d, L, l, prep[k_input_of[l]], hf[k_input_of[l]], err);
        for (int k = 0; k < IN_COUNT; k++) {
            lq_hessian_free(&hs[k]);
            lq_gptq_prep_free(prep[k]);
            free(hf[k]);
        }
    }
    return st;
}

/* ---- per layer ------------------------------------------------------------------------------- */

static void free_capture(capture *c) {
    for (int k = 0; k < IN_COUNT; k++) {
        free(c->sum_abs[k]);
        free(c->max_abs[k]);
        free(c->sample[k]);
    }
}

static lq_status stats_pass(driver *d, layer_state *L, capture *c, lq_hessian *hs, lq_error *err) {
    memset(c, 0, sizeof *c);
    c->n_threads = d->n_threads;
    c->device = d->o->device;
    int64_t want = d->o->search_tokens > 0 ? d->o->search_tokens : 4096;
    if (want > d->n_rows) want = d->n_rows;
    c->stats = true;
    c->n_sample = want;
    c->stride = d->n_rows / want;
    for (int k = 0; k < IN_COUNT; k++) {
        int lk = k_kind_lin[k];
        int64_t n = L->n_in[lk];
        snprintf(c->names[k], LQ_MAX_NAME, "%s", L->names[lk]);
        c->n_in[k] = n;
        c->sum_abs[k] = lq_calloc((size_t)n, sizeof(double), err, "passes stats");
        c->max_abs[k] = lq_calloc((size_t)n, sizeof(float), err, "passes stats");
        c->sample[k] = lq_malloc((size_t)want * (size_t)n * sizeof(float), err, "passes sample");
        if (!c->sum_abs[k] || !c->max_abs[k] || !c->sample[k]) return LQ_ERR_NOMEM;
        if (hs) {
            lq_status st = lq_hessian_init(&hs[k], n, err);
            if (st != LQ_OK) return st;
            c->hs[k] = &hs[k];
        }
    }
    lq_status st = run_layer(d, L->il, false, c, err);
    for (int k = 0; k < IN_COUNT && hs && st == LQ_OK; k++) st = lq_device_hessian_collect(d->o->device, &hs[k], err);
    for (int k = 0; k < IN_COUNT && hs; k++) lq_hessian_finish(&hs[k]);
    return st;
}

/* Moves the layer's results into the tensor set and the report. */
static lq_status emit_layer(driver *d, layer_state *L, lq_error *err) {
    lq_status st = LQ_OK;
    for (int l = 0; l < L_COUNT && st == LQ_OK; l++) {
        int64_t ne[LQ_MAX_DIMS] = {L->n_in[l], L->n_out[l], 1, 1};
        lq_pass_tensor *r = &d->rep->tensors[d->rep->n_tensors];
        *r = L->rep[l];
        if (L->q[l]) {
            r->type = L->types[l];
            st = lq_tensor_set_put(d->out, L->names[l], L->types[l], ne, L->q[l], L->q_bytes[l], err);
            if (st == LQ_OK) L->q[l] = NULL;
        } else if (L->w_changed[l]) {
            r->type = LQ_TYPE_F32;
            st = lq_tensor_set_put(d->out, L->names[l], LQ_TYPE_F32, ne, L->w[l],
                                   (size_t)L->n_in[l] * (size_t)L->n_out[l] * sizeof(float), err);
            if (st == LQ_OK) L->w[l] = NULL;
        } else {
            continue;
        }
        if (r->gptq && r->report.rtn_fallback) d->rep->n_rtn_fallback++;
        if (r->gptq && r->report.n_retries > 0) d->rep->n_damp_retry++;
        d->rep->n_tensors++;
    }
    for (int k = 0; k < 2 && st == LQ_OK; k++) {
        if (!L->norm_changed[k]) continue;
        int64_t ne[LQ_MAX_DIMS] = {d->n_embd, 1, 1, 1};
        lq_pass_tensor *r = &d->rep->tensors[d->rep->n_tensors];
        memset(r, 0, sizeof *r);
        snprintf(r->name, LQ_MAX_NAME, "%s", L->norm_names[k]);
        r->type = LQ_TYPE_F32;
        r->awq_alpha = r->clip_ratio = -1.0;
        r->sq_alpha = L->sq_alpha[k];
        st = lq_tensor_set_put(d->out, L->norm_names[k], LQ_TYPE_F32, ne, L->norm[k],
                               (size_t)d->n_embd * sizeof(float), err);
        if (st == LQ_OK) {
            L->norm[k] = NULL;
            d->rep->n_tensors++;
        }
    }
    return st;
}

/* RTN / AWQ: every linear rounded after the transforms; output errors on the Hessians of the
 * float (transformed) layer's inputs, hs (NULL: not measured). */
static lq_status rtn_layer(driver *d, layer_state *L, const lq_hessian *hs, lq_error *err) {
    float *hf[IN_COUNT] = {NULL};
    lq_status st = LQ_OK;
    for (int l = 0; l < L_COUNT && st == LQ_OK; l++) {
        if (!L->codec[l]) continue;
        int k = k_input_of[l];
        if (hs && hs[k].h && !hf[k] && !(hf[k] = hessian_f32(hs[k].h, hs[k].n_in, NULL, err)))
            st = LQ_ERR_NOMEM;
        if (st == LQ_OK) st = rtn_linear(d, L, l, hf[k], err);
    }
    for (int k = 0; k < IN_COUNT; k++) free(hf[k]);
    return st;
}

/* Hessians of the layer's four inputs with its current float weights (one forward pass). */
static lq_status hessian_pass(driver *d, layer_state *L, lq_hessian *hs, lq_error *err) {
    capture c;
    memset(&c, 0, sizeof c);
    c.n_threads = d->n_threads;
    c.device = d->o->device;
    lq_status st = LQ_OK;
    for (int k = 0; k < IN_COUNT && st == LQ_OK; k++) {
        int lk = k_kind_lin[k];
        snprintf(c.names[k], LQ_MAX_NAME, "%s", L->names[lk]);
        c.n_in[k] = L->n_in[lk];
        st = lq_hessian_init(&hs[k], L->n_in[lk], err);
        c.hs[k] = &hs[k];
    }
    if (st == LQ_OK) st = run_layer(d, L->il, false, &c, err);
    d->rep->hessian_flops += c.hessian_flops;
    d->rep->hessian_seconds += c.hessian_seconds;
    d->rep->forward_seconds -= c.hessian_seconds;
    for (int k = 0; k < IN_COUNT && st == LQ_OK; k++) st = lq_device_hessian_collect(d->o->device, &hs[k], err);
    for (int k = 0; k < IN_COUNT && st == LQ_OK; k++) lq_hessian_finish(&hs[k]);
    return st;
}

static lq_status process_layer(driver *d, int64_t il, lq_error *err) {
    layer_state L;
    capture c;
    memset(&c, 0, sizeof c);
    lq_status st = load_layer(d, il, &L, err);
    lq_pass_method method = d->o->method;
    bool awq = method == LQ_PASS_AWQ || method == LQ_PASS_AWQ_GPTQ;
    bool sq = d->o->smoothquant_alpha >= 0.0 || d->o->smoothquant_auto;
    bool gptq = method == LQ_PASS_GPTQ || method == LQ_PASS_AWQ_GPTQ;
    /* RTN / AWQ output errors: measured on the Hessians of the transformed float layer */
    bool rtn_measured = !gptq && method != LQ_PASS_NONE && !d->o->no_error;
    bool awq_clip = method == LQ_PASS_AWQ && !d->o->awq_no_clip; /* its search reads them too */
    lq_hessian hs[IN_COUNT];
    memset(hs, 0, sizeof hs);
    if (st == LQ_OK && (awq || sq)) {
        double t0 = now_s();
        st = stats_pass(d, &L, &c, method == LQ_PASS_AWQ_GPTQ || rtn_measured || awq_clip ? hs : NULL, err);
        if (st == LQ_OK && sq) st = smoothquant_layer(d, &L, &c, err);
        if (st == LQ_OK && awq)
            st = awq_layer(d, &L, &c, method == LQ_PASS_AWQ_GPTQ ? hs : NULL, awq_clip ? hs : NULL, err);
        d->rep->search_seconds += now_s() - t0;
    }
    if (!rtn_measured)
        for (int k = 0; k < IN_COUNT; k++) lq_hessian_free(&hs[k]);
    /* the runtime reads the transformed float weights until each is quantized */
    for (int l = 0; l < L_COUNT && st == LQ_OK; l++)
        if (L.w_changed[l]) st = set_runtime(d, &L, l, L.w[l], err);
    if (st == LQ_OK && rtn_measured && !(awq || sq)) st = hessian_pass(d, &L, hs, err);
    if (st == LQ_OK && gptq && d->o->device) /* the layer's final weights: one staged upload */
        st = lq_device_stage_matrices(d->o->device, il, L_COUNT, L.w, L.n_out, L.n_in, err);
    if (st == LQ_OK && gptq) st = gptq_layer(d, &L, err);
    else if (st == LQ_OK && method != LQ_PASS_NONE) st = rtn_layer(d, &L, rtn_measured ? hs : NULL, err);
    if (gptq && d->o->device) lq_device_layer_done(d->o->device, il, NULL); /* after its last sweep */
    for (int k = 0; k < IN_COUNT; k++) lq_hessian_free(&hs[k]);
    if (st == LQ_OK) st = run_layer(d, il, true, NULL, err); /* inputs of the next layer */
    if (st == LQ_OK) st = emit_layer(d, &L, err);
    free_capture(&c);
    free_layer(d, &L);
    return st;
}

/* ---- entry point ----------------------------------------------------------------------------- */

static lq_status check_args(const lq_model *m, const lq_plan *plan, const int32_t *tokens,
                            int64_t n_seq, int64_t n_tok, const lq_passes_opts *o,
                            lq_tensor_set *out, lq_error *err) {
    if (!m || !plan || !tokens || !o || !out)
        return lq_fail(err, LQ_ERR_INVALID, "passes: NULL argument");
    if (n_seq <= 0 || n_tok <= 0 || n_seq > INT64_MAX / n_tok)
        return lq_fail(err, LQ_ERR_INVALID, "passes: %lld sequences of %lld tokens", (long long)n_seq,
                       (long long)n_tok);
    if ((int)o->method < LQ_PASS_NONE || o->method > LQ_PASS_AWQ_GPTQ)
        return lq_fail(err, LQ_ERR_INVALID, "passes: unknown method %d", (int)o->method);
    if (o->smoothquant_alpha > 1.0 || (o->smoothquant_alpha >= 0.0 && o->smoothquant_auto))
        return lq_fail(err, LQ_ERR_INVALID, "passes: smoothquant alpha %g (want 0..1, or auto alone)",
                       o->smoothquant_alpha);
    if (o->percdamp < 0.0 || o->percdamp >= 10.0)
        return lq_fail(err, LQ_ERR_INVALID, "passes: percdamp %g out of range", o->percdamp);
    return LQ_OK;
}

lq_status lq_passes_run(const lq_model *m, const lq_plan *plan, const int32_t *tokens,
                        int64_t n_seq, int64_t n_tok, const lq_passes_opts *o, lq_tensor_set *out,
                        lq_passes_report *report, lq_error *err) {
    lq_passes_report local;
    if (!report) report = &local;
    memset(report, 0, sizeof *report);
    lq_status st = check_args(m, plan, tokens, n_seq, n_tok, o, out, err);
    if (st != LQ_OK) return st;
    lq_la_init();
    double t_start = now_s();
    driver d;
    memset(&d, 0, sizeof d);
    d.m = m;
    d.plan = plan;
    d.o = o;
    d.hp = lq_model_hparams(m);
    d.n_seq = n_seq;
    d.n_tok = n_tok;
    d.n_rows = n_seq * n_tok;
    d.n_embd = d.hp->n_embd;
    d.batch_seq = 4096 / n_tok > 0 ? 4096 / n_tok : 1;
    d.rep = report;
    d.out = out;
    d.n_threads = o->n_threads > 0 ? o->n_threads : lq_n_cpus();
    report->n_threads = d.n_threads;
    if (o->rate_probe) { /* the yardsticks of the per-phase rates, at the same thread count */
        report->sgemm_gflops = lq_la_gemm_rate(false, 2048, d.n_threads);
        report->dgemm_gflops = lq_la_gemm_rate(true, 2048, d.n_threads);
    }

    lq_runtime_opts ro = {d.n_threads, (int)n_tok, (int)n_tok, true, LQ_ACT_INT8_NONE};
    if ((st = lq_runtime_create(m, &ro, &d.rt, err))) return st;
    lq_runtime_set_device(d.rt, o->device);
    size_t hidden_n = (size_t)d.n_rows * (size_t)d.n_embd;
    size_t batch_n = (size_t)d.batch_seq * (size_t)n_tok * (size_t)d.n_embd;
    d.hidden = lq_malloc(hidden_n * sizeof(float), err, "calibration activations");
    d.scratch = lq_malloc(batch_n * sizeof(float), err, "calibration activations");
    report->n_layer = d.hp->n_layer;
    report->layer_seconds = lq_calloc((size_t)d.hp->n_layer, sizeof(double), err, "passes report");
    report->tensors = lq_calloc((size_t)d.hp->n_layer * (L_COUNT + 2), sizeof(lq_pass_tensor), err, "passes report");
    if (!d.hidden || !d.scratch || !report->layer_seconds || !report->tensors) {
        st = LQ_ERR_NOMEM;
        goto done;
    }
    st = lq_runtime_embed(d.rt, tokens, d.n_rows, d.hidden, err);
    for (int64_t il = 0; il < d.hp->n_layer && st == LQ_OK; il++) {
        double t0 = now_s();
        st = process_layer(&d, il, err);
        report->layer_seconds[il] = now_s() - t0;
        if (st == LQ_OK && o->progress) o->progress(o->progress_ctx, report, il + 1);
    }
done:
    report->seconds = now_s() - t_start;
    free(d.hidden);
    free(d.scratch);
    lq_runtime_free(d.rt);
    if (report == &local) lq_passes_report_free(&local);
    return st;
}
