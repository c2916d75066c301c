/* runtime.c — a Llama-family forward pass meant to be read top to bottom (llama2.c style).
 *
 *   x = embedding rows of the tokens
 *   for each layer:
 *       h = RMSNorm(x) · attn_norm
 *       q, k, v = h Wq (+bq), h Wk (+bk), h Wv (+bv)      (one threaded loop for the three)
 *       RoPE on q and k (pairs (2i, 2i+1) for GGUF rows, (i, i+hd/2) for HF rows)
 *       append k, v to the KV cache; causal softmax attention, GQA: query head h reads KV head
 *       h / (n_head / n_head_kv)
 *       x += attention Wo
 *       h = RMSNorm(x) · ffn_norm
 *       x += (silu(h Wgate) * (h Wup)) Wdown
 *   logits = (RMSNorm(x) · output_norm) Woutput   (Woutput = token_embd when tied)
 *
 * Activations are fp32; weights stay mmapped as stored and go through the CPU kernels
 * (matmul.c). Every linear input can be observed through a hook; single layers can be run on
 * caller-provided hidden states (calibration and GPTQ build on that). */
#include "../device_adapters.h"
#include "rt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct rt_linear {
    rt_weight w;
    float *bias; /* owned; NULL when the checkpoint has none */
} rt_linear;

typedef struct rt_layer {
    float *attn_norm, *ffn_norm; /* owned fp32 copies */
    rt_linear wq, wk, wv, wo, gate, up, down;
} rt_layer;

struct lq_runtime {
    const lq_model *model;
    lq_hparams hp;
    int n_threads;
    lq_pool *pool;
    int64_t n_ctx, n_batch;
    bool f32_act;
    lq_act_int8 act_int8;
    float *xq;        /* W8A8: the int8-rounded copy of a linear input */
    size_t xq_cap;    /* floats */
    bool attn_avx512; /* head_dim a multiple of 16 on an AVX-512 CPU */
    int64_t n_embd, n_head, n_head_kv, head_dim, q_dim, kv_dim, n_ff, n_vocab, n_layer;
    lq_rope_layout rope_layout;
    double *rope_freq; /* head_dim/2 angular frequencies per position */

    rt_weight embd;    /* token_embd: n_vocab rows of n_embd */
    float *output_norm;
    rt_linear output;
    rt_layer *layers;

    float *k_cache, *v_cache; /* n_layer × n_ctx × kv_dim */
    int64_t n_past;

    lq_linear_hook hook;
    void *hook_ctx;
    lq_device_ctx *device; /* products on the device (lq_runtime_set_device), NULL: CPU */

    /* scratch for scratch_rows tokens (grown on demand) */
    int64_t scratch_rows, scratch_ctx;
    float *x, *h, *q, *k, *v, *att, *gate, *up, *scores;
    rt_act_buf act[4];
};

/* ---------------------------------------------------------------------------------------
 * Loading: weights are views into the model's mapping; only norms and biases are copied
 * (to fp32, whatever they are stored as).
 * ------------------------------------------------------------------------------------- */

static lq_status load_vector(const lq_model *m, const char *name, int64_t n, bool required,
                             float **out, lq_error *err) {
    *out = NULL;
    const lq_tensor *t = lq_model_find(m, name);
    if (!t) {
        if (!required) return LQ_OK;
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s' is missing", lq_model_path(m), name);
    }
    int64_t n_elem = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (n_elem != n || lq_row_size(t->type, n) == 0 || lq_row_size(t->type, n) > t->nbytes)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': expected %lld elements, got %lld of type %d",
                       lq_model_path(m), name, (long long)n, (long long)n_elem, (int)t->type);
    *out = (float *)lq_malloc((size_t)n * sizeof(float), err, name);
    if (!*out) return err ? err->code : LQ_ERR_NOMEM;
    lq_kernel_dequant_row(t->type, t->data, *out, n);
    return LQ_OK;
}

/* Each token streams every weight once: ask for the model's pages as 2 MiB folios (the page
 * cache reads them in as such when they are not cached yet), which spares the TLB a miss every
 * 4 KiB (a streaming read over 4 KiB pages ran 10-15 % slower here). Per file, the span from its
 * first to its last tensor byte is advised in one call, before any tensor is read: a page read
 * without the advice (a norm vector, say) is cached as a small folio, and the readahead that
 * follows it keeps the stream in small folios (measured: 40 scattered 1-byte reads before the
 * advice left 104 of 609 MB of a file on 2 MiB pages, against 608 MB without them), and advice
 * given per weight split the mapping into 68 areas around the unadvised norms. Tools that read
 * headers alone never get here and stay small. Advice only: failure changes nothing. */
static bool same_file(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void advise_span(uintptr_t begin, uintptr_t end) {
#ifdef MADV_HUGEPAGE
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || end <= begin) return;
    begin = begin / (uintptr_t)page * (uintptr_t)page;
    end = (end + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    (void)madvise((void *)begin, end - begin, MADV_HUGEPAGE);
#else
    (void)begin, (void)end;
#endif
}

static void advise_huge_pages(const lq_model *m) {
    int64_t n = lq_model_n_tensors(m);
    for (int64_t i = 0; i < n; i++) {
        const lq_tensor *t = lq_model_tensor(m, i);
        if (!t->file) continue; /* no file behind it */
        bool seen = false;      /* the file's span was advised with an earlier tensor */
        for (int64_t j = 0; j < i && !seen; j++) seen = same_file(lq_model_tensor(m, j)->file, t->file);
        if (seen) continue;
        uintptr_t begin = UINTPTR_MAX, end = 0;
        for (int64_t j = i; j < n; j++) {
            const lq_tensor *u = lq_model_tensor(m, j);
            if (!same_file(u->file, t->file) || u->nbytes == 0) continue;
            uintptr_t a = (uintptr_t)u->data;
            if (a < begin) begin = a;
            if (a + u->nbytes > end) end = a + u->nbytes;
        }
        advise_span(begin, end);
    }
}

static lq_status view_matrix(const lq_tensor *t, const char *path, int64_t n_in, int64_t n_out,
                             rt_weight *w, lq_error *err) {
    const lq_type_traits *tr = lq_type_get(t->type);
    if (!tr || (tr->is_quantized && !tr->has_codec))
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor '%s': type %d has no kernel", path, t->name,
                       (int)t->type);
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': shape [%lld, %lld], expected [%lld, %lld]",
                       path, t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)n_in,
                       (long long)n_out);
    size_t row_bytes = lq_row_size(t->type, n_in);
    uint64_t need;
    if (row_bytes == 0 || !lq_mul_u64(row_bytes, (uint64_t)n_out, &need) || need > t->nbytes)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': %llu bytes do not hold %lld rows of %lld %s",
                       path, t->name, (unsigned long long)t->nbytes, (long long)n_out, (long long)n_in,
                       tr->name);
    snprintf(w->name, sizeof w->name, "%s", t->name);
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = row_bytes;
    w->data = t->data;
    return LQ_OK;
}

/* blk.<layer>.<what>.weight (+ .bias when present); layer < 0 for top-level tensors. */
static lq_status load_linear(const lq_model *m, int64_t layer, const char *what, int64_t n_in,
                             int64_t n_out, rt_linear *lin, lq_error *err) {
    char name[LQ_MAX_NAME], bias_name[LQ_MAX_NAME];
    if (layer >= 0) {
        snprintf(name, sizeof name, "blk.%lld.%s.weight", (long long)layer, what);
        snprintf(bias_name, sizeof bias_name, "blk.%lld.%s.bias", (long long)layer, what);
    } else {
        snprintf(name, sizeof name, "%s.weight", what);
        snprintf(bias_name, sizeof bias_name, "%s.bias", what);
    }
    const lq_tensor *t = lq_model_find(m, name);
    if (!t) return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s' is missing", lq_model_path(m), name);
    lq_status st = view_matrix(t, lq_model_path(m), n_in, n_out, &lin->w, err);
    if (st) return st;
    return load_vector(m, bias_name, n_out, false, &lin->bias, err);
}

static lq_status load_layer(lq_runtime *rt, int64_t il, lq_error *err) {
    const lq_model *m = rt->model;
    rt_layer *L = &rt->layers[il];
    char name[LQ_MAX_NAME];
    lq_status st;
    snprintf(name, sizeof name, "blk.%lld.attn_norm.weight", (long long)il);
    if ((st = load_vector(m, name, rt->n_embd, true, &L->attn_norm, err))) return st;
    snprintf(name, sizeof name, "blk.%lld.ffn_norm.weight", (long long)il);
    if ((st = load_vector(m, name, rt->n_embd, true, &L->ffn_norm, err))) return st;
    if ((st = load_linear(m, il, "attn_q", rt->n_embd, rt->q_dim, &L->wq, err))) return st;
    if ((st = load_linear(m, il, "attn_k", rt->n_embd, rt->kv_dim, &L->wk, err))) return st;
    if ((st = load_linear(m, il, "attn_v", rt->n_embd, rt->kv_dim, &L->wv, err))) return st;
    if ((st = load_linear(m, il, "attn_output", rt->q_dim, rt->n_embd, &L->wo, err))) return st;
    if ((st = load_linear(m, il, "ffn_gate", rt->n_embd, rt->n_ff, &L->gate, err))) return st;
    if ((st = load_linear(m, il, "ffn_up", rt->n_embd, rt->n_ff, &L->up, err))) return st;
    return load_linear(m, il, "ffn_down", rt->n_ff, rt->n_embd, &L->down, err);
}

/* Embedding and output head; a tied model (or an HF file storing only lm_head) uses one
 * matrix for both. */
static lq_status load_ends(lq_runtime *rt, lq_error *err) {
    const lq_model *m = rt->model;
    const char *path = lq_model_path(m);
    const lq_tensor *embd = lq_model_find(m, "token_embd.weight");
    const lq_tensor *out = lq_model_find(m, "output.weight");
    if (!embd) embd = out;
    if (!out) out = embd;
    if (!embd) return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor 'token_embd.weight' is missing", path);
    lq_status st = view_matrix(embd, path, rt->n_embd, rt->n_vocab, &rt->embd, err);
    if (st) return st;
    if ((st = view_matrix(out, path, rt->n_embd, rt->n_vocab, &rt->output.w, err))) return st;
    return load_vector(m, "output_norm.weight", rt->n_embd, true, &rt->output_norm, err);
}

/* theta_i = pos · base^(-2i/hd), with Llama-3 frequency scaling (given as a rope_freqs tensor
 * of divisors in GGUF, or as hparams). */
static lq_status setup_rope(lq_runtime *rt, lq_error *err) {
    int64_t half = rt->head_dim / 2;
    rt->rope_freq = (double *)lq_calloc((size_t)half, sizeof(double), err, "rope frequencies");
    if (!rt->rope_freq) return err ? err->code : LQ_ERR_NOMEM;
    double base = rt->hp.rope_theta > 0 ? rt->hp.rope_theta : 10000.0;
    for (int64_t i = 0; i < half; i++)
        rt->rope_freq[i] = pow(base, -2.0 * (double)i / (double)rt->head_dim);
    float *divisors = NULL;
    lq_status st = load_vector(rt->model, "rope_freqs.weight", half, false, &divisors, err);
    if (st) return st;
    if (divisors) {
        for (int64_t i = 0; i < half; i++) rt->rope_freq[i] /= divisors[i];
        free(divisors);
        return LQ_OK;
    }
    if (rt->hp.rope_scaling != LQ_ROPE_SCALING_LLAMA3) return LQ_OK;
    double factor = rt->hp.rope_factor, lo = rt->hp.rope_low_freq_factor;
    double hi = rt->hp.rope_high_freq_factor, orig = (double)rt->hp.rope_orig_ctx;
    if (!(factor > 0) || !(lo > 0) || !(hi > lo) || !(orig > 0))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: llama3 rope scaling with invalid parameters",
                       lq_model_path(rt->model));
    double lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (int64_t i = 0; i < half; i++) {
        double f = rt->rope_freq[i], wavelen = 2.0 * M_PI / f;
        if (wavelen < hi_wavelen) continue; /* high frequencies are kept */
        if (wavelen > lo_wavelen) {
            rt->rope_freq[i] = f / factor;
        } else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            rt->rope_freq[i] = (1.0 - smooth) * f / factor + smooth * f;
        }
    }
    return LQ_OK;
}

static lq_status check_hparams(const lq_runtime *rt, lq_error *err) {
    const char *path = lq_model_path(rt->model);
    const lq_hparams *hp = &rt->hp;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 ||
        hp->n_ff <= 0 || hp->n_vocab <= 0 || hp->head_dim <= 0 || hp->head_dim % 2 != 0 ||
        hp->n_head % hp->n_head_kv != 0)
        return lq_fail(err, LQ_ERR_FORMAT,
                       "%s: inconsistent hyperparameters (embd %lld, layers %lld, heads %lld/%lld, "
                       "head_dim %lld, ffn %lld, vocab %lld)",
                       path, (long long)hp->n_embd, (long long)hp->n_layer, (long long)hp->n_head,
                       (long long)hp->n_head_kv, (long long)hp->head_dim, (long long)hp->n_ff,
                       (long long)hp->n_vocab);
    if (!(hp->rms_eps > 0) || !isfinite(hp->rms_eps))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: RMS norm epsilon %g is not positive", path, hp->rms_eps);
    return LQ_OK;
}

static void free_scratch(lq_runtime *rt) {
    float **bufs[] = {&rt->x, &rt->h, &rt->q, &rt->k, &rt->v, &rt->att, &rt->gate, &rt->up, &rt->scores};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = NULL;
    }
    rt->scratch_rows = rt->scratch_ctx = 0;
}

/* Buffers for a batch of n_rows tokens attending to up to n_keys positions. */
static lq_status ensure_scratch(lq_runtime *rt, int64_t n_rows, int64_t n_keys, lq_error *err) {
    if (n_rows <= rt->scratch_rows && n_keys <= rt->scratch_ctx) return LQ_OK;
    if (n_rows < rt->scratch_rows) n_rows = rt->scratch_rows;
    if (n_keys < rt->scratch_ctx) n_keys = rt->scratch_ctx;
    free_scratch(rt);
    struct { float **p; int64_t n; } want[] = {
        {&rt->x, rt->n_embd}, {&rt->h, rt->n_embd},  {&rt->q, rt->q_dim},
        {&rt->k, rt->kv_dim}, {&rt->v, rt->kv_dim},  {&rt->att, rt->q_dim},
        {&rt->gate, rt->n_ff}, {&rt->up, rt->n_ff},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        uint64_t bytes;
        if (!lq_mul_u64((uint64_t)n_rows * sizeof(float), (uint64_t)want[i].n, &bytes))
            return lq_fail(err, LQ_ERR_NOMEM, "runtime: scratch for %lld tokens overflows", (long long)n_rows);
        *want[i].p = (float *)lq_malloc((size_t)bytes, err, "runtime scratch");
        if (!*want[i].p) return err ? err->code : LQ_ERR_NOMEM;
    }
    rt->scores = (float *)lq_malloc((size_t)n_keys * (size_t)rt->n_threads * sizeof(float), err,
                                    "attention scores");
    if (!rt->scores) return err ? err->code : LQ_ERR_NOMEM;
    rt->scratch_rows = n_rows;
    rt->scratch_ctx = n_keys;
    return LQ_OK;
}

lq_status lq_runtime_create(const lq_model *m, const lq_runtime_opts *opts, lq_runtime **out,
                            lq_error *err) {
    *out = NULL;
    lq_runtime *rt = (lq_runtime *)lq_calloc(1, sizeof *rt, err, "runtime");
    if (!rt) return err ? err->code : LQ_ERR_NOMEM;
    rt->model = m;
    rt->hp = *lq_model_hparams(m);
    rt->n_threads = opts && opts->n_threads > 0 ? opts->n_threads : lq_n_cpus();
    rt->n_ctx = opts && opts->n_ctx > 0 ? opts->n_ctx : 512;
    rt->n_batch = opts && opts->n_batch > 0 ? opts->n_batch : 512;
    rt->act_int8 = opts ? opts->act_int8 : LQ_ACT_INT8_NONE;
    /* W8A8 values are exact multiples of their scale: multiply them as they are */
    rt->f32_act = opts && (opts->f32_activations || opts->act_int8 != LQ_ACT_INT8_NONE);
    rt->rope_layout = lq_model_rope_layout(m);
    lq_status st = check_hparams(rt, err);
    if (st) goto fail;
    advise_huge_pages(m); /* before the first tensor byte is read */
    rt->n_embd = rt->hp.n_embd;
    rt->n_head = rt->hp.n_head;
    rt->n_head_kv = rt->hp.n_head_kv;
    rt->head_dim = rt->hp.head_dim;
    rt->q_dim = rt->n_head * rt->head_dim;
    rt->kv_dim = rt->n_head_kv * rt->head_dim;
    rt->n_ff = rt->hp.n_ff;
    rt->n_vocab = rt->hp.n_vocab;
    rt->n_layer = rt->hp.n_layer;
    if ((st = setup_rope(rt, err))) goto fail;
    if ((st = load_ends(rt, err))) goto fail;
    rt->layers = (rt_layer *)lq_calloc((size_t)rt->n_layer, sizeof(rt_layer), err, "layers");
    if (!rt->layers) { st = err ? err->code : LQ_ERR_NOMEM; goto fail; }
    for (int64_t il = 0; il < rt->n_layer; il++)
        if ((st = load_layer(rt, il, err))) goto fail;
    size_t cache_floats = (size_t)rt->n_layer * (size_t)rt->n_ctx * (size_t)rt->kv_dim;
    rt->k_cache = (float *)lq_calloc(cache_floats, sizeof(float), err, "KV cache");
    rt->v_cache = rt->k_cache ? (float *)lq_calloc(cache_floats, sizeof(float), err, "KV cache") : NULL;
    if (!rt->v_cache) { st = err ? err->code : LQ_ERR_NOMEM; goto fail; }
    int64_t batch = rt->n_batch < rt->n_ctx ? rt->n_batch : rt->n_ctx;
    if ((st = ensure_scratch(rt, batch, rt->n_ctx, err))) goto fail;
    rt->pool = lq_pool_create(rt->n_threads);
    rt->attn_avx512 = rt->head_dim % 16 == 0 && lq_kernels_simd() == LQ_SIMD_AVX512;
    *out = rt;
    return LQ_OK;
fail:
    lq_runtime_free(rt);
    return st;
}

void lq_runtime_free(lq_runtime *rt) {
    if (!rt) return;
    if (rt->layers) {
        for (int64_t il = 0; il < rt->n_layer; il++) {
            rt_layer *L = &rt->layers[il];
            free(L->attn_norm);
            free(L->ffn_norm);
            rt_linear *lins[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
            for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++) free(lins[i]->bias);
        }
        free(rt->layers);
    }
    free(rt->output.bias);
    free(rt->output_norm);
    free(rt->rope_freq);
    free(rt->k_cache);
    free(rt->v_cache);
    free_scratch(rt);
    free(rt->xq);
    lq_pool_free(rt->pool);
    for (int i = 0; i < 4; i++) free(rt->act[i].data);
    free(rt);
}

void lq_runtime_set_hook(lq_runtime *rt, lq_linear_hook hook, void *ctx) {
    rt->hook = hook;
    rt->hook_ctx = ctx;
}
void lq_runtime_set_device(lq_runtime *rt, lq_device_ctx *d) { rt->device = d; }
void lq_runtime_reset(lq_runtime *rt) { rt->n_past = 0; }
int64_t lq_runtime_n_vocab(const lq_runtime *rt) { return rt->n_vocab; }
int64_t lq_runtime_n_embd(const lq_runtime *rt) { return rt->n_embd; }
int64_t lq_runtime_n_layer(const lq_runtime *rt) { return rt->n_layer; }
int64_t lq_runtime_n_past(const lq_runtime *rt) { return rt->n_past; }

/* What one generated token must read: every linear matrix once, the output head, the norm
 * vectors (as the fp32 copies the runtime reads) and one row of the token embedding. */
uint64_t lq_runtime_weight_bytes(const lq_runtime *rt) {
    uint64_t norm_bytes = (uint64_t)rt->n_embd * sizeof(float);
    uint64_t total = rt->embd.row_bytes + (uint64_t)rt->output.w.row_bytes * (uint64_t)rt->n_vocab + norm_bytes;
    if (rt->output.bias) total += (uint64_t)rt->n_vocab * sizeof(float);
    for (int64_t il = 0; il < rt->n_layer; il++) {
        const rt_layer *L = &rt->layers[il];
        total += 2 * norm_bytes;
        const rt_linear *lins[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++)
            total += (uint64_t)lins[i]->w.row_bytes * (uint64_t)lins[i]->w.n_out +
                     (lins[i]->bias ? (uint64_t)lins[i]->w.n_out * sizeof(float) : 0);
    }
    return total;
}

lq_bench_rate rt_probe_run(lq_runtime *rt, lq_bw_probe *probe, int passes) {
    return lq_bw_probe_run(probe, rt->pool, rt->n_threads, passes);
}

static rt_weight *find_weight(lq_runtime *rt, const char *name) {
    if (!strcmp(rt->output.w.name, name)) return &rt->output.w;
    for (int64_t il = 0; il < rt->n_layer; il++) {
        rt_layer *L = &rt->layers[il];
        rt_linear *lins[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++)
            if (!strcmp(lins[i]->w.name, name)) return &lins[i]->w;
    }
    return NULL;
}

lq_status lq_runtime_set_weight(lq_runtime *rt, const char *name, lq_type type, const void *data,
                                lq_error *err) {
    rt_weight *w = find_weight(rt, name);
    if (!w) return lq_fail(err, LQ_ERR_INVALID, "runtime: no weight matrix named '%s'", name);
    const lq_type_traits *tr = lq_type_get(type);
    size_t row_bytes = lq_row_size(type, w->n_in);
    if (!tr || (tr->is_quantized && !tr->has_codec) || tr->activation_only || row_bytes == 0 || !data)
        return lq_fail(err, LQ_ERR_INVALID, "runtime: weight '%s': type %d cannot hold rows of %lld",
                       name, (int)type, (long long)w->n_in);
    lq_device_weight_changed(rt->device, w->data); /* its device copy is stale */
    lq_device_weight_changed(rt->device, data);
    w->type = type;
    w->data = data;
    w->row_bytes = row_bytes;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * The pieces of a layer
 * ------------------------------------------------------------------------------------- */

static void rms_norm(const float *x, const float *weight, float *y, int64_t n_rows, int64_t n,
                     float eps) {
    for (int64_t r = 0; r < n_rows; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        double sum_sq = 0;
        for (int64_t i = 0; i < n; i++) sum_sq += (double)xr[i] * xr[i];
        float scale = 1.0f / sqrtf((float)(sum_sq / (double)n) + eps);
        for (int64_t i = 0; i < n; i++) yr[i] = xr[i] * scale * weight[i];
    }
}

/* Rotates n_heads heads of one token at position pos. */
static void rope(const lq_runtime *rt, float *vec, int64_t n_heads, int64_t pos) {
    int64_t hd = rt->head_dim, half = hd / 2;
    for (int64_t i = 0; i < half; i++) {
        double angle = (double)pos * rt->rope_freq[i];
        float c = (float)cos(angle), s = (float)sin(angle);
        /* which two dimensions of a head form pair i depends on how Q/K rows are ordered */
        int64_t a = rt->rope_layout == LQ_ROPE_INTERLEAVED ? 2 * i : i;
        int64_t b = rt->rope_layout == LQ_ROPE_INTERLEAVED ? 2 * i + 1 : i + half;
        for (int64_t h = 0; h < n_heads; h++) {
            float *head = vec + h * hd;
            float x0 = head[a], x1 = head[b];
            head[a] = x0 * c - x1 * s;
            head[b] = x0 * s + x1 * c;
        }
    }
}

/* Dot product with 8 independent partial sums in a fixed order: the compiler vectorizes it,
 * and the result does not depend on anything but the inputs. */
static float dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
    float sum = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

/* Attention of n_rows query rows. Row r belongs to sequence r / n_tok, sits at position
 * pos0 + r % n_tok, and attends to that sequence's keys 0..pos (keys of sequence s start
 * at row s * seq_stride of k and v). */
typedef struct attn_job {
    const lq_runtime *rt;
    const float *q, *k, *v;
    float *out;
    int64_t n_tok, pos0, seq_stride;
} attn_job;

static void attn_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    const attn_job *job = (const attn_job *)ctx;
    const lq_runtime *rt = job->rt;
    int64_t hd = rt->head_dim, group = rt->n_head / rt->n_head_kv;
    float *scores = rt->scores + (size_t)thread_index * (size_t)rt->scratch_ctx;
    float inv_sqrt_hd = 1.0f / sqrtf((float)hd);
    for (int64_t u = begin; u < end; u++) { /* unit = (query row, head) */
        int64_t r = u / rt->n_head, head = u % rt->n_head, kv_head = head / group;
        int64_t seq = r / job->n_tok, pos = job->pos0 + r % job->n_tok;
        const float *qh = job->q + r * rt->q_dim + head * hd;
        const float *keys = job->k + seq * job->seq_stride * rt->kv_dim + kv_head * hd;
        const float *vals = job->v + seq * job->seq_stride * rt->kv_dim + kv_head * hd;
        int64_t first = 0;
        if (rt->hp.sliding_window > 0 && pos >= rt->hp.sliding_window)
            first = pos - rt->hp.sliding_window + 1;
        float max_score = -INFINITY;
        if (rt->attn_avx512) {
            rt_attn_scores_avx512(qh, keys, rt->kv_dim, first, pos, hd, inv_sqrt_hd, scores);
        } else {
            for (int64_t j = first; j <= pos; j++) scores[j] = dot_f32(qh, keys + j * rt->kv_dim, hd) * inv_sqrt_hd;
        }
        for (int64_t j = first; j <= pos; j++)
            if (scores[j] > max_score) max_score = scores[j];
        double sum = 0;
        for (int64_t j = first; j <= pos; j++) {
            scores[j] = expf(scores[j] - max_score);
            sum += scores[j];
        }
        float inv_sum = (float)(1.0 / sum);
        float *oh = job->out + r * rt->q_dim + head * hd;
        if (rt->attn_avx512) {
            rt_attn_values_avx512(scores, inv_sum, vals, rt->kv_dim, first, pos, hd, oh);
            continue;
        }
        memset(oh, 0, (size_t)hd * sizeof(float));
        for (int64_t j = first; j <= pos; j++) {
            const float *vj = vals + j * rt->kv_dim;
            float p = scores[j] * inv_sum;
            for (int64_t d = 0; d < hd; d++) oh[d] += p * vj[d];
        }
    }
}

static void attention(lq_runtime *rt, const attn_job *job, int64_t n_rows) {
    int64_t units = n_rows * rt->n_head;
    int threads = units * (job->pos0 + job->n_tok) < 32768 ? 1 : rt->n_threads;
    /* later query rows attend to more keys: chunks to whichever thread is free even the load */
    int64_t grain = (units + (int64_t)threads * 8 - 1) / ((int64_t)threads * 8);
    lq_pool_run_chunks(rt->pool, units, grain, threads, attn_worker, (void *)job);
}

/* gate = silu(gate) * up over rows [begin, end) (SwiGLU) */
static void swiglu_worker(void *ctx, int64_t begin, int64_t end, int thread_index) {
    (void)thread_index;
    lq_runtime *rt = (lq_runtime *)ctx;
    if (rt->attn_avx512) { /* AVX-512 CPU */
        size_t first = (size_t)begin * rt->n_ff;
        rt_swiglu_avx512(rt->gate + first, rt->up + first, (end - begin) * rt->n_ff);
        return;
    }
    for (size_t i = (size_t)begin * rt->n_ff; i < (size_t)end * rt->n_ff; i++) {
        float g = rt->gate[i];
        rt->gate[i] = g / (1.0f + expf(-g)) * rt->up[i];
    }
}

/* Symmetric int8 rounding of n values with one scale (max|x|/127), as W8A8 kernels do. */
static void round_int8(const float *x, float *y, int64_t n, float amax) {
    float scale = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(x[i] * inv);
        y[i] = (q > 127.0f ? 127.0f : q < -127.0f ? -127.0f : q) * scale;
    }
}

static float abs_max(const float *x, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* The W8A8 view of a linear input: x rounded to int8 per token or per tensor. */
static lq_status act_int8_round(lq_runtime *rt, const float *x, int64_t n_rows, int64_t n_in,
                                const float **out, lq_error *err) {
    size_t need = (size_t)n_rows * (size_t)n_in;
    if (need > rt->xq_cap) {
        free(rt->xq);
        rt->xq_cap = 0;
        if (!(rt->xq = (float *)lq_malloc(need * sizeof(float), err, "W8A8 activations"))) return LQ_ERR_NOMEM;
        rt->xq_cap = need;
    }
    if (rt->act_int8 == LQ_ACT_INT8_PER_TENSOR) {
        round_int8(x, rt->xq, (int64_t)need, abs_max(x, (int64_t)need));
    } else {
        for (int64_t r = 0; r < n_rows; r++)
            round_int8(x + r * n_in, rt->xq + r * n_in, n_in, abs_max(x + r * n_in, n_in));
    }
    *out = rt->xq;
    return LQ_OK;
}

static lq_status linear(lq_runtime *rt, const rt_linear *const *lins, float *const *ys, int n,
                        const float *x, int64_t n_rows, lq_error *err) {
    rt_matmul mm[4];
    /* hooks (calibration) see the real activations; W8A8 rounding is for evaluation only */
    for (int i = 0; i < n && rt->hook; i++) rt->hook(rt->hook_ctx, lins[i]->w.name, x, n_rows, lins[i]->w.n_in);
    /* the output head stays in float, as W8A8 deployments keep it (SmoothQuant does) */
    if (rt->act_int8 != LQ_ACT_INT8_NONE && lins[0] != &rt->output) {
        lq_status st = act_int8_round(rt, x, n_rows, lins[0]->w.n_in, &x, err);
        if (st) return st;
    }
    for (int i = 0; i < n; i++) {
        mm[i].w = &lins[i]->w;
        mm[i].bias = lins[i]->bias;
        mm[i].y = ys[i];
    }
    if (rt->device) { /* fp32 activations there; types without a device kernel stay here */
        lq_status st = LQ_OK;
        for (int i = 0; i < n && st == LQ_OK; i++) {
            const rt_weight *w = mm[i].w;
            st = lq_device_matmul(rt->device, w->type, w->data, w->row_bytes, w->n_out, w->n_in, x, n_rows,
                                  mm[i].bias, mm[i].y, err);
            if (st == LQ_ERR_UNSUPPORTED)
                st = rt_matmul_run(&mm[i], 1, x, n_rows, rt->f32_act, rt->pool, rt->n_threads, rt->act, err);
        }
        return st;
    }
    return rt_matmul_run(mm, n, x, n_rows, rt->f32_act, rt->pool, rt->n_threads, rt->act, err);
}

/* One decoder layer over rt->x (n_seq × n_tok rows, in place). With a KV cache (n_seq = 1), the
 * batch's keys and values are appended at pos0 and attention reads the cache; without, each
 * sequence attends within the batch from position 0. */
static lq_status layer_forward(lq_runtime *rt, int64_t il, int64_t n_seq, int64_t n_tok,
                               int64_t pos0, bool use_cache, lq_error *err) {
    const rt_layer *L = &rt->layers[il];
    int64_t n_rows = n_seq * n_tok;
    lq_status st;
    rms_norm(rt->x, L->attn_norm, rt->h, n_rows, rt->n_embd, rt->hp.rms_eps);
    {
        const rt_linear *lins[3] = {&L->wq, &L->wk, &L->wv};
        float *ys[3] = {rt->q, rt->k, rt->v};
        if ((st = linear(rt, lins, ys, 3, rt->h, n_rows, err))) return st;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t pos = pos0 + r % n_tok;
        rope(rt, rt->q + r * rt->q_dim, rt->n_head, pos);
        rope(rt, rt->k + r * rt->kv_dim, rt->n_head_kv, pos);
    }
    attn_job job = {rt, rt->q, rt->k, rt->v, rt->att, n_tok, pos0, n_tok};
    if (use_cache) {
        size_t layer_off = (size_t)il * (size_t)rt->n_ctx * (size_t)rt->kv_dim;
        size_t bytes = (size_t)n_tok * (size_t)rt->kv_dim * sizeof(float);
        memcpy(rt->k_cache + layer_off + (size_t)pos0 * rt->kv_dim, rt->k, bytes);
        memcpy(rt->v_cache + layer_off + (size_t)pos0 * rt->kv_dim, rt->v, bytes);
        job.k = rt->k_cache + layer_off;
        job.v = rt->v_cache + layer_off;
        job.seq_stride = 0;
    }
    attention(rt, &job, n_rows);
    {
        const rt_linear *lins[1] = {&L->wo};
        float *ys[1] = {rt->h};
        if ((st = linear(rt, lins, ys, 1, rt->att, n_rows, err))) return st;
    }
    size_t n_x = (size_t)n_rows * (size_t)rt->n_embd;
    for (size_t i = 0; i < n_x; i++) rt->x[i] += rt->h[i];

    rms_norm(rt->x, L->ffn_norm, rt->h, n_rows, rt->n_embd, rt->hp.rms_eps);
    {
        const rt_linear *lins[2] = {&L->gate, &L->up};
        float *ys[2] = {rt->gate, rt->up};
        if ((st = linear(rt, lins, ys, 2, rt->h, n_rows, err))) return st;
    }
    int swiglu_threads = n_rows * rt->n_ff < 65536 ? 1 : rt->n_threads;
    lq_pool_run(rt->pool, n_rows, swiglu_threads, swiglu_worker, rt);
    {
        const rt_linear *lins[1] = {&L->down};
        float *ys[1] = {rt->h};
        if ((st = linear(rt, lins, ys, 1, rt->gate, n_rows, err))) return st;
    }
    for (size_t i = 0; i < n_x; i++) rt->x[i] += rt->h[i];
    return LQ_OK;
}

static lq_status embed_rows(lq_runtime *rt, const int32_t *tokens, int64_t n, float *x, lq_error *err) {
    for (int64_t t = 0; t < n; t++) {
        if (tokens[t] < 0 || tokens[t] >= rt->n_vocab)
            return lq_fail(err, LQ_ERR_INVALID, "runtime: token %lld: id %d outside the vocabulary (%lld)",
                           (long long)t, (int)tokens[t], (long long)rt->n_vocab);
        const char *row = (const char *)rt->embd.data + (size_t)tokens[t] * rt->embd.row_bytes;
        lq_kernel_dequant_row(rt->embd.type, row, x + t * rt->n_embd, rt->n_embd);
    }
    return LQ_OK;
}

/* logits of n_rows rows of rt->x; clobbers rt->h */
static lq_status output_head(lq_runtime *rt, int64_t n_rows, float *logits, lq_error *err) {
    rms_norm(rt->x, rt->output_norm, rt->h, n_rows, rt->n_embd, rt->hp.rms_eps);
    const rt_linear *lins[1] = {&rt->output};
    float *ys[1] = {logits};
    return linear(rt, lins, ys, 1, rt->h, n_rows, err);
}

/* ---------------------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------------------- */

lq_status lq_runtime_eval(lq_runtime *rt, const int32_t *tokens, int64_t n_tokens, float *logits,
                          lq_error *err) {
    if (n_tokens < 0 || rt->n_past + n_tokens > rt->n_ctx)
        return lq_fail(err, LQ_ERR_INVALID, "runtime: %lld tokens after %lld do not fit the context of %lld",
                       (long long)n_tokens, (long long)rt->n_past, (long long)rt->n_ctx);
    for (int64_t done = 0; done < n_tokens;) {
        if (lq_interrupted) return lq_fail(err, LQ_ERR_INTERRUPTED, "runtime: interrupted");
        int64_t n = n_tokens - done < rt->n_batch ? n_tokens - done : rt->n_batch;
        lq_status st = ensure_scratch(rt, n, rt->n_ctx, err);
        if (st) return st;
        if ((st = embed_rows(rt, tokens + done, n, rt->x, err))) return st;
        for (int64_t il = 0; il < rt->n_layer; il++)
            if ((st = layer_forward(rt, il, 1, n, rt->n_past, true, err))) return st;
        if (logits && (st = output_head(rt, n, logits + (size_t)done * (size_t)rt->n_vocab, err)))
            return st;
        rt->n_past += n;
        done += n;
    }
    return LQ_OK;
}

/* As llama-bench decodes: the batch's tokens, then the logits of its last token only. */
lq_status rt_eval_last_logits(lq_runtime *rt, const int32_t *tokens, int64_t n_tokens, float *logits,
                              lq_error *err) {
    lq_status st = lq_runtime_eval(rt, tokens, n_tokens, NULL, err);
    if (st || n_tokens == 0) return st;
    int64_t last = (n_tokens - 1) % rt->n_batch; /* the last token's row in the last batch */
    memmove(rt->x, rt->x + (size_t)last * (size_t)rt->n_embd, (size_t)rt->n_embd * sizeof(float));
    return output_head(rt, 1, logits, err);
}

lq_status lq_runtime_embed(lq_runtime *rt, const int32_t *tokens, int64_t n_rows, float *hidden,
                           lq_error *err) {
    return embed_rows(rt, tokens, n_rows, hidden, err);
}

lq_status lq_runtime_layer(lq_runtime *rt, int64_t layer, float *hidden, int64_t n_seq,
                           int64_t n_tokens, lq_error *err) {
    if (layer < 0 || layer >= rt->n_layer || n_seq < 0 || n_tokens < 0)
        return lq_fail(err, LQ_ERR_INVALID, "runtime: layer %lld of %lld, %lld sequences of %lld tokens",
                       (long long)layer, (long long)rt->n_layer, (long long)n_seq, (long long)n_tokens);
    int64_t n_rows = n_seq * n_tokens;
    if (n_rows == 0) return LQ_OK;
    lq_status st = ensure_scratch(rt, n_rows, n_tokens, err);
    if (st) return st;
    size_t bytes = (size_t)n_rows * (size_t)rt->n_embd * sizeof(float);
    memcpy(rt->x, hidden, bytes);
    if ((st = layer_forward(rt, layer, n_seq, n_tokens, 0, false, err))) return st;
    memcpy(hidden, rt->x, bytes);
    return LQ_OK;
}

lq_status lq_runtime_logits(lq_runtime *rt, const float *hidden, int64_t n_rows, float *logits,
                            lq_error *err) {
    if (n_rows <= 0) return LQ_OK;
    lq_status st = ensure_scratch(rt, n_rows, 1, err);
    if (st) return st;
    memcpy(rt->x, hidden, (size_t)n_rows * (size_t)rt->n_embd * sizeof(float));
    return output_head(rt, n_rows, logits, err);
}
