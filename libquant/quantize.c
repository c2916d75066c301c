/* quantize.c — the quantization pipeline: model view → plan (recipe.c) → metadata → tensors
 * quantized one chunk of rows at a time on all cores → GGUF writer (streamed, atomic).
 *
 * Memory stays bounded by one chunk (at most CHUNK_ELEMS fp32 values plus its encoded bytes),
 * whatever the model's size. HF llama/mistral checkpoints store Q/K rows in rotate-half order;
 * llama.cpp's converter reorders them to interleaved pairs. Quantization works row by row, so
 * the rows are quantized in source order and the encoded rows are moved afterwards (chunks of
 * those tensors hold whole heads). */
#include "internal.h"

#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_ELEMS ((int64_t)1 << 24) /* 64 MiB of fp32 per chunk */

typedef struct qctx {
    const lq_quantize_opts *o;
    lq_model *model;
    const lq_hparams *hp;
    lq_plan plan;
    lq_stats *stats;
    bool permute_qk; /* HF llama/mistral input: apply the converter's Q/K row order */
    lq_tensor rope_freqs; /* generated for HF input with Llama-3 RoPE scaling (data: malloc'd) */
    int64_t total_elems, done_elems;
    /* scratch, sized for the largest chunk */
    float *f32, *decoded, *importance;
    uint8_t *enc, *perm;
    size_t f32_cap, enc_cap;
} qctx;

/* ---------------------------------------------------------------------------------------- */
/* Small helpers                                                                             */

static int64_t n_rows_of(const int64_t *ne) { return ne[1] * ne[2] * ne[3]; }

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bool is_q_or_k(const char *name, bool *is_k) {
    const char *dot = strchr(name + 4, '.');
    if (strncmp(name, "blk.", 4) != 0 || !dot) return false;
    *is_k = !strncmp(dot + 1, "attn_k.", 7);
    return *is_k || !strncmp(dot + 1, "attn_q.", 7);
}

/* Heads of a Q/K tensor that the converter permutes, 0 for any other tensor. */
static int64_t permute_heads(const qctx *q, const char *name) {
    bool is_k;
    if (!q->permute_qk || !is_q_or_k(name, &is_k)) return 0;
    return is_k ? q->hp->n_head_kv : q->hp->n_head;
}

/* Reorders units (rows, or elements of a bias) of whole heads from rotate-half to interleaved:
 * per head, new[2i] = old[i], new[2i+1] = old[hd/2 + i]. */
static void permute_units(uint8_t *buf, uint8_t *tmp, int64_t n_units, int64_t head_dim,
                          size_t unit_bytes) {
    int64_t half = head_dim / 2;
    for (int64_t h = 0; h + head_dim <= n_units; h += head_dim) {
        uint8_t *head = buf + (size_t)h * unit_bytes;
        for (int64_t i = 0; i < half; i++) {
            memcpy(tmp + (size_t)(2 * i) * unit_bytes, head + (size_t)i * unit_bytes, unit_bytes);
            memcpy(tmp + (size_t)(2 * i + 1) * unit_bytes, head + (size_t)(half + i) * unit_bytes, unit_bytes);
        }
        memcpy(head, tmp, (size_t)head_dim * unit_bytes);
    }
}

/* Rows [row0, row0 + n) of a tensor in float. */
static lq_status rows_to_f32(const lq_tensor *t, int64_t row0, int64_t n, float *out, lq_error *err) {
    int64_t ne0 = t->ne[0];
    size_t row_bytes = lq_row_size(t->type, ne0);
    const uint8_t *src = (const uint8_t *)t->data + (size_t)row0 * row_bytes;
    size_t count = (size_t)n * (size_t)ne0;
    switch (t->type) {
    case LQ_TYPE_F32: memcpy(out, src, count * sizeof(float)); return LQ_OK;
    case LQ_TYPE_F16: lq_convert_fp16_to_fp32((const uint16_t *)src, out, count); return LQ_OK;
    case LQ_TYPE_BF16: lq_convert_bf16_to_fp32((const uint16_t *)src, out, count); return LQ_OK;
    default: return lq_dequantize_rows(t->type, src, out, n, ne0, err);
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Metadata                                                                                  */

static const char *gguf_arch_name(const lq_hparams *hp) {
    /* convert_hf_to_gguf writes Mistral checkpoints as "llama" */
    return hp->arch == LQ_ARCH_QWEN2 ? "qwen2" : "llama";
}

static lq_status set_u32(lq_gguf_writer *w, const char *arch, const char *key, int64_t v, lq_error *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (v < 0 || v > (int64_t)UINT32_MAX) return lq_fail(err, LQ_ERR_INVALID, "%s = %lld does not fit u32", full, (long long)v);
    return lq_gguf_writer_set_u32(w, full, (uint32_t)v, err);
}

static lq_status set_f32(lq_gguf_writer *w, const char *arch, const char *key, float v, lq_error *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    return lq_gguf_writer_set_f32(w, full, v, err);
}

static lq_status write_hparams(lq_gguf_writer *w, const lq_hparams *hp, lq_error *err) {
    const char *a = gguf_arch_name(hp);
    lq_status st;
    if ((st = set_u32(w, a, "context_length", hp->n_ctx_train, err)) ||
        (st = set_u32(w, a, "embedding_length", hp->n_embd, err)) ||
        (st = set_u32(w, a, "block_count", hp->n_layer, err)) ||
        (st = set_u32(w, a, "feed_forward_length", hp->n_ff, err)) ||
        (st = set_u32(w, a, "attention.head_count", hp->n_head, err)) ||
        (st = set_u32(w, a, "attention.head_count_kv", hp->n_head_kv, err)) ||
        (st = set_f32(w, a, "rope.freq_base", hp->rope_theta, err)) ||
        (st = set_f32(w, a, "attention.layer_norm_rms_epsilon", hp->rms_eps, err)) ||
        (st = set_u32(w, a, "vocab_size", hp->n_vocab, err)) ||
        (st = set_u32(w, a, "rope.dimension_count", hp->head_dim, err)))
        return st;
    if (hp->head_dim != hp->n_embd / hp->n_head &&
        ((st = set_u32(w, a, "attention.key_length", hp->head_dim, err)) ||
         (st = set_u32(w, a, "attention.value_length", hp->head_dim, err))))
        return st;
    return LQ_OK;
}

/* tokenizer_config.json's chat_template string, when there is one. */
static lq_status write_chat_template(lq_gguf_writer *w, const char *tokenizer_json, lq_error *err) {
    const char *slash = strrchr(tokenizer_json, '/');
    size_t dir = slash ? (size_t)(slash - tokenizer_json + 1) : 0;
    char path[4096];
    snprintf(path, sizeof path, "%.*stokenizer_config.json", (int)dir, tokenizer_json);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return LQ_OK; /* absent: nothing to copy (a malformed one was reported by the tokenizer) */
    json_t *tmpl = json_object_get(root, "chat_template");
    lq_status st = LQ_OK;
    if (json_is_string(tmpl))
        st = lq_gguf_writer_set_str(w, "tokenizer.chat_template", json_string_value(tmpl),
                                    json_string_length(tmpl), err);
    json_decref(root);
    return st;
}

static lq_status write_tokenizer(lq_gguf_writer *w, const lq_model *m, lq_error *err) {
    const char *path = lq_model_tokenizer_json(m);
    if (!path) return LQ_OK;
    lq_tokenizer *tok = NULL;
    lq_status st = lq_tokenizer_from_json(path, &tok, err);
    if (!st) st = lq_tokenizer_write_gguf(tok, w, err);
    lq_tokenizer_free(tok);
    if (!st) st = write_chat_template(w, path, err);
    return st;
}

static void base_name(const char *path, char *out, size_t size) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t start = n;
    while (start > 0 && path[start - 1] != '/') start--;
    const char *dot = NULL;
    for (size_t i = start; i < n; i++)
        if (path[i] == '.') dot = path + i;
    if (dot && !strncmp(dot, ".gguf", 5)) n = (size_t)(dot - path);
    snprintf(out, size, "%.*s", (int)(n - start), path + start);
}

static lq_status write_hf_metadata(lq_gguf_writer *w, const qctx *q, lq_error *err) {
    const char *arch = gguf_arch_name(q->hp);
    char name[256];
    base_name(lq_model_path(q->model), name, sizeof name);
    lq_status st;
    if ((st = lq_gguf_writer_set_str(w, "general.architecture", arch, strlen(arch), err)) ||
        (st = lq_gguf_writer_set_str(w, "general.name", name, strlen(name), err)) ||
        (st = write_hparams(w, q->hp, err)))
        return st;
    return write_tokenizer(w, q->model, err);
}

static lq_status write_gguf_metadata(lq_gguf_writer *w, const qctx *q, lq_error *err) {
    const lq_gguf *g = lq_model_gguf(q->model);
    for (int64_t i = 0; i < lq_gguf_n_kv(g); i++) {
        lq_status st = lq_gguf_writer_copy_kv(w, g, i, err);
        if (st) return st;
    }
    /* the output is one file */
    lq_gguf_writer_remove_key(w, "split.no");
    lq_gguf_writer_remove_key(w, "split.count");
    lq_gguf_writer_remove_key(w, "split.tensors.count");
    return LQ_OK;
}

/* quantize.imatrix.* as llama-quantize records them (counts as i32); dataset and chunk count
 * from the statistics file's metadata when it has them. */
static lq_status write_imatrix_keys(lq_gguf_writer *w, const qctx *q, lq_error *err) {
    const char *path = q->o->imatrix_path;
    const lq_stats_meta *meta = lq_stats_get_meta(q->stats);
    lq_status st = lq_gguf_writer_set_str(w, "quantize.imatrix.file", path, strlen(path), err);
    if (!st && meta && meta->n_datasets > 0 && meta->datasets[0])
        st = lq_gguf_writer_set_str(w, "quantize.imatrix.dataset", meta->datasets[0], strlen(meta->datasets[0]), err);
    int32_t entries = (int32_t)lq_stats_n_entries(q->stats);
    if (!st) st = lq_gguf_writer_set_scalar(w, "quantize.imatrix.entries_count", LQ_GGUF_INT32, &entries, err);
    if (!st && meta && meta->chunk_count >= 0 && meta->chunk_count <= INT32_MAX) {
        int32_t chunks = (int32_t)meta->chunk_count;
        st = lq_gguf_writer_set_scalar(w, "quantize.imatrix.chunks_count", LQ_GGUF_INT32, &chunks, err);
    }
    return st;
}

static lq_status write_metadata(lq_gguf_writer *w, const qctx *q, lq_error *err) {
    lq_status st = lq_model_source_kind(q->model) == LQ_SOURCE_HF ? write_hf_metadata(w, q, err)
                                                                  : write_gguf_metadata(w, q, err);
    if (!st) st = lq_gguf_writer_set_u32(w, "general.quantization_version", 2, err);
    if (!st) st = lq_gguf_writer_set_u32(w, "general.file_type", (uint32_t)q->plan.ftype, err);
    if (!st && q->stats) st = write_imatrix_keys(w, q, err);
    return st;
}

/* ---------------------------------------------------------------------------------------- */
/* Checks before anything is written                                                         */

/* The tensor whose values are written: a replacement from a calibrated pass, else the model's. */
static const lq_tensor *source_of(const qctx *q, const lq_plan_entry *e, bool *replaced) {
    const lq_tensor *r = lq_tensor_set_find(q->o->replacements, e->name);
    *replaced = r != NULL;
    if (r) return r;
    const lq_tensor *t = lq_model_find(q->model, e->name);
    return t ? t : &q->rope_freqs;
}

/* The converter's Llama-3 divisors, in float32 as it computes them (torch float32 tensors):
 * freq = 1 / base^(2i/d); wavelength 2π/freq; kept (1) above the high-frequency wavelength,
 * the full factor below the low one, a smooth blend between. */
static lq_status make_rope_freqs(qctx *q, lq_error *err) {
    const lq_hparams *hp = q->hp;
    int64_t half = hp->head_dim / 2;
    float *d = lq_malloc((size_t)half * sizeof(float), err, "rope_freqs");
    if (!d) return LQ_ERR_NOMEM;
    float factor = hp->rope_factor, lo = hp->rope_low_freq_factor, hi = hp->rope_high_freq_factor;
    double orig = (double)hp->rope_orig_ctx, lo_wavelen = orig / lo, hi_wavelen = orig / hi;
    for (int64_t i = 0; i < half; i++) {
        float freq = 1.0f / powf(hp->rope_theta, (float)(2 * i) / (float)hp->head_dim);
        float wavelen = (float)(2.0 * M_PI) / freq;
        if (wavelen < hi_wavelen) {
            d[i] = 1.0f;
        } else if (wavelen > lo_wavelen) {
            d[i] = factor;
        } else {
            float smooth = ((float)orig / wavelen - lo) / (hi - lo);
            d[i] = 1.0f / ((1.0f - smooth) / factor + smooth);
        }
    }
    lq_tensor *t = &q->rope_freqs;
    snprintf(t->name, sizeof t->name, "rope_freqs.weight");
    t->source_name = "(rope_scaling in config.json)";
    t->file = lq_model_path(q->model);
    t->type = LQ_TYPE_F32;
    t->n_dims = 1;
    t->ne[0] = half;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    t->nbytes = (uint64_t)half * sizeof(float);
    t->data = d;
    t->layer = -1;
    return LQ_OK;
}

static lq_status check_entry(const qctx *q, const lq_plan_entry *e, lq_error *err) {
    bool replaced;
    const lq_tensor *t = source_of(q, e, &replaced), *orig = lq_model_find(q->model, e->name);
    const char *path = lq_model_path(q->model);
    if (!orig) orig = &q->rope_freqs;
    if (replaced) {
        if (memcmp(t->ne, orig->ne, sizeof t->ne) != 0)
            return lq_fail(err, LQ_ERR_INVALID, "%s: replacement for %s has another shape", path, e->name);
        if (t->type != e->type && t->type != LQ_TYPE_F32)
            return lq_fail(err, LQ_ERR_INVALID, "%s: replacement for %s is %s; the plan wants %s (or F32 to quantize)",
                           path, e->name, lq_type_get(t->type)->name, lq_type_get(e->type)->name);
        return LQ_OK;
    }
    const lq_type_traits *tr = lq_type_get(t->type);
    if (tr->is_quantized && t->type != e->type && e->quantize)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor %s is already quantized (%s); give an unquantized model",
                       path, e->name, tr->name);
    if (tr->is_quantized && !tr->has_codec && t->type != e->type)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: tensor %s has type %s, which cannot be converted", path, e->name,
                       tr->name);
    bool is_k;
    if (q->permute_qk && is_q_or_k(e->name, &is_k) && t->n_dims == 1 && lq_type_get(e->type)->block_size != 1)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: %s: cannot reorder a bias stored as %s", path, e->name,
                       lq_type_get(e->type)->name);
    return LQ_OK;
}

/* The importance row for a tensor (NULL when none applies), as llama-quantize picks it: the
 * entry of the same name; a width mismatch is an error except for token_embd. */
static lq_status importance_for(qctx *q, const lq_plan_entry *e, const float **imp, lq_error *err) {
    *imp = NULL;
    const lq_type_traits *tr = lq_type_get(e->type);
    if (!q->stats || !e->quantize || !tr->is_quantized || e->type == LQ_TYPE_Q8_0) return LQ_OK;
    const lq_stats_entry *s = lq_stats_find(q->stats, e->name);
    if (!s) return LQ_OK;
    if (s->n_in != e->ne[0] || s->n_experts != e->ne[2]) {
        if (!strcmp(e->name, "token_embd.weight")) return LQ_OK;
        return lq_fail(err, LQ_ERR_FORMAT, "%s: entry %s has %lld x %lld values; the tensor needs %lld x %lld",
                       q->o->imatrix_path, e->name, (long long)s->n_experts, (long long)s->n_in,
                       (long long)e->ne[2], (long long)e->ne[0]);
    }
    lq_status st = lq_stats_importance(s, q->importance, err);
    if (st) return lq_fail_wrap(err, "%s", q->o->imatrix_path);
    *imp = q->importance;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* One tensor                                                                                */

typedef struct err_acc {
    double sum_d2, sum_w2;
    int64_t n;
} err_acc;

static lq_status measure(qctx *q, lq_type type, const float *ref, const uint8_t *enc, int64_t n_rows,
                         int64_t ne0, err_acc *acc, lq_error *err) {
    lq_status st = lq_dequantize_rows(type, enc, q->decoded, n_rows, ne0, err);
    if (st) return st;
    size_t n = (size_t)n_rows * (size_t)ne0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)ref[i] - (double)q->decoded[i];
        acc->sum_d2 += d * d;
        acc->sum_w2 += (double)ref[i] * ref[i];
    }
    acc->n += (int64_t)n;
    return LQ_OK;
}

/* Rows per chunk: bounded by CHUNK_ELEMS and, for permuted tensors, whole heads. */
static int64_t chunk_rows(int64_t ne0, int64_t n_rows, int64_t head_dim) {
    int64_t rows = CHUNK_ELEMS / ne0;
    if (rows < 1) rows = 1;
    if (head_dim > 0) rows = rows < head_dim ? head_dim : rows / head_dim * head_dim;
    return rows < n_rows ? rows : n_rows;
}

/* NaN/Inf in the weights: named by tensor (and source name), flat index, row and column. */
static lq_status check_finite(const lq_tensor *t, const float *x, int64_t r0, int64_t n, lq_error *err) {
    int64_t ne0 = t->ne[0], count = n * ne0;
    for (int64_t i = 0; i < count; i++) {
        if (isfinite(x[i])) continue;
        int64_t row = r0 + i / ne0, col = i % ne0;
        bool renamed = strcmp(t->name, t->source_name) != 0;
        return lq_fail(err, LQ_ERR_NUMERIC, "%s: tensor %s%s%s%s: element %lld (row %lld, column %lld) is %s", t->file,
                       t->name, renamed ? " (" : "", renamed ? t->source_name : "", renamed ? ")" : "",
                       (long long)(row * ne0 + col), (long long)row, (long long)col, isnan(x[i]) ? "NaN" : "Inf");
    }
    return LQ_OK;
}

/* Encodes rows [r0, r0+n) of the tensor into q->enc (bytes of type e->type). */
static lq_status encode_chunk(qctx *q, const lq_plan_entry *e, const lq_tensor *t, const float *imp,
                              int64_t r0, int64_t n, err_acc *acc, lq_error *err) {
    int64_t ne0 = t->ne[0];
    size_t row_bytes = lq_row_size(e->type, ne0);
    if (t->type == e->type && lq_type_get(t->type)->is_quantized) { /* already in its type */
        memcpy(q->enc, (const uint8_t *)t->data + (size_t)r0 * row_bytes, (size_t)n * row_bytes);
        if (!acc) return LQ_OK;
    }
    lq_status st = rows_to_f32(t, r0, n, q->f32, err);
    if (st) return lq_fail_wrap(err, "%s: tensor %s", t->file, t->name);
    if ((st = check_finite(t, q->f32, r0, n, err))) return st;
    if (!(t->type == e->type && lq_type_get(t->type)->is_quantized)) {
        st = lq_quantize_rows_mt(e->type, q->f32, q->enc, n, ne0, imp, q->o->n_threads, err);
        if (st) {
            /* rows are counted within the chunk: make them tensor rows */
            lq_error inner = *err;
            return lq_fail(err, st, "%s: tensor %s (rows from %lld): %s", t->file, t->name, (long long)r0, inner.msg);
        }
    }
    if (acc && (st = measure(q, e->type, q->f32, q->enc, n, ne0, acc, err)))
        return lq_fail_wrap(err, "%s: tensor %s", t->file, t->name);
    return LQ_OK;
}

/* A Q/K bias: the elements move, not rows. */
static void permute_bias(qctx *q, const lq_plan_entry *e, int64_t heads) {
    int64_t hd = e->ne[0] / heads;
    permute_units(q->enc, q->perm, e->ne[0], hd, lq_type_get(e->type)->block_bytes);
}

/* Drops the mapped source pages of rows [r0, r0+n) once they are written: the kernel would
 * otherwise keep every page of the input resident, so peak memory would grow to the model's
 * size. Only for tensors mapped from the model's files (dropped pages fault back in from the
 * file if read again); never for heap data such as the generated rope_freqs. */
static void release_source_rows(const lq_tensor *src, int64_t r0, int64_t n) {
    size_t row_bytes = lq_row_size(src->type, src->ne[0]);
    if (!row_bytes) return;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t begin = (uintptr_t)src->data + (uintptr_t)r0 * row_bytes;
    uintptr_t end = begin + (uintptr_t)n * row_bytes;
    begin = begin / page * page;
    end = (end + page - 1) / page * page;
    (void)madvise((void *)begin, end - begin, MADV_DONTNEED); /* advice only: failure is harmless */
}

static lq_status write_tensor(qctx *q, lq_gguf_writer *w, const lq_plan_entry *e, lq_tensor_report *r,
                              lq_error *err) {
    bool replaced;
    const lq_tensor *t = source_of(q, e, &replaced);
    const lq_tensor *orig = lq_model_find(q->model, e->name);
    if (!orig) orig = &q->rope_freqs;
    const float *imp = NULL;
    lq_status st = importance_for(q, e, &imp, err);
    if (st) return st;
    int64_t ne0 = t->ne[0], rows = n_rows_of(t->ne), heads = permute_heads(q, e->name);
    int64_t hd = heads && t->n_dims >= 2 ? rows / heads : 0;
    size_t row_bytes = lq_row_size(e->type, ne0);
    err_acc acc = {0, 0, 0};
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows(ne0, rows, hd)) {
        int64_t n = chunk_rows(ne0, rows, hd);
        if (r0 + n > rows) n = rows - r0;
        if (lq_interrupted) return lq_fail(err, LQ_ERR_INTERRUPTED, "interrupted while writing %s", e->name);
        if (replaced && t->type == e->type) { /* a calibrated pass's bytes, as they are */
            memcpy(q->enc, (const uint8_t *)t->data + (size_t)r0 * row_bytes, (size_t)n * row_bytes);
            if (q->o->measure_error) {
                if ((st = rows_to_f32(orig, r0, n, q->f32, err))) return st;
                if ((st = measure(q, e->type, q->f32, q->enc, n, ne0, &acc, err))) return st;
            }
        } else if ((st = encode_chunk(q, e, t, imp, r0, n, q->o->measure_error ? &acc : NULL, err))) {
            return st;
        }
        if (hd) permute_units(q->enc, q->perm, n, hd, row_bytes);
        else if (heads) permute_bias(q, e, heads);
        if ((st = lq_gguf_writer_write(w, q->enc, (size_t)n * row_bytes, err))) return st;
        if (orig != &q->rope_freqs) release_source_rows(orig, r0, n);
    }
    snprintf(r->name, sizeof r->name, "%s", e->name);
    r->type = e->type;
    r->src_type = orig->type;
    r->n_dims = e->n_dims;
    memcpy(r->ne, e->ne, sizeof r->ne);
    r->nbytes = (uint64_t)rows * row_bytes;
    r->fallback = e->fallback;
    r->imatrix = imp != NULL;
    r->replaced = replaced;
    r->quantized = e->quantize;
    r->rmse = acc.n ? sqrt(acc.sum_d2 / (double)acc.n) : -1;
    r->rel_rmse = acc.n && acc.sum_w2 > 0 ? sqrt(acc.sum_d2 / acc.sum_w2) : -1;
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Pipeline                                                                                  */

static lq_status alloc_scratch(qctx *q, lq_error *err) {
    int64_t max_f32 = 1, max_enc = 1, max_ne0 = 1;
    for (int64_t i = 0; i < q->plan.n_entries; i++) {
        const lq_plan_entry *e = &q->plan.entries[i];
        int64_t rows = n_rows_of(e->ne), heads = permute_heads(q, e->name);
        int64_t n = chunk_rows(e->ne[0], rows, heads && e->n_dims >= 2 ? rows / heads : 0);
        if (n * e->ne[0] > max_f32) max_f32 = n * e->ne[0];
        size_t rb = lq_row_size(e->type, e->ne[0]);
        if ((int64_t)rb * n > max_enc) max_enc = (int64_t)rb * n;
        if (e->ne[0] > max_ne0) max_ne0 = e->ne[0];
        q->total_elems += e->ne[0] * rows;
    }
    q->f32 = lq_malloc((size_t)max_f32 * sizeof(float), err, "a chunk of rows");
    q->decoded = q->o->measure_error ? lq_malloc((size_t)max_f32 * sizeof(float), err, "a chunk of rows") : NULL;
    q->enc = lq_malloc((size_t)max_enc, err, "encoded rows");
    q->perm = lq_malloc((size_t)max_enc, err, "encoded rows");
    q->importance = lq_malloc((size_t)max_ne0 * sizeof(float), err, "an importance row");
    if (!q->f32 || !q->enc || !q->perm || !q->importance || (q->o->measure_error && !q->decoded)) return LQ_ERR_NOMEM;
    return LQ_OK;
}

static void free_ctx(qctx *q) {
    lq_plan_free(&q->plan);
    if (q->stats) lq_stats_free(q->stats);
    lq_model_close(q->model);
    free((void *)q->rope_freqs.data);
    free(q->f32);
    free(q->decoded);
    free(q->enc);
    free(q->perm);
    free(q->importance);
}

static lq_status open_inputs(qctx *q, lq_error *err) {
    const lq_quantize_opts *o = q->o;
    lq_status st = lq_model_open(o->model_path, &q->model, err);
    if (st) return st;
    q->hp = lq_model_hparams(q->model);
    if (lq_model_source_kind(q->model) == LQ_SOURCE_HF && q->hp->rope_scaling == LQ_ROPE_SCALING_LLAMA3 &&
        !lq_model_find(q->model, "rope_freqs.weight") && (st = make_rope_freqs(q, err)))
        return st;
    q->permute_qk = lq_model_rope_layout(q->model) == LQ_ROPE_HALVES && q->hp->arch != LQ_ARCH_QWEN2;
    if (o->imatrix_path && (st = lq_stats_read(o->imatrix_path, &q->stats, err))) return st;
    lq_plan_opts po = o->plan;
    po.has_imatrix = q->stats != NULL;
    if ((st = lq_plan_build(q->model, &po, &q->plan, err))) return st;
    for (int64_t i = 0; i < q->plan.n_entries; i++)
        if ((st = check_entry(q, &q->plan.entries[i], err))) return st;
    return alloc_scratch(q, err);
}

static lq_status declare_tensors(lq_gguf_writer *w, const qctx *q, lq_error *err) {
    for (int64_t i = 0; i < q->plan.n_entries; i++) {
        const lq_plan_entry *e = &q->plan.entries[i];
        lq_status st = lq_gguf_writer_add_tensor(w, e->name, e->n_dims, e->ne, e->type, err);
        if (st) return st;
    }
    return LQ_OK;
}

static lq_status run(qctx *q, lq_quantize_report *rep, lq_error *err) {
    lq_gguf_writer *w = NULL;
    lq_status st = lq_gguf_writer_open(q->o->out_path, &w, err);
    if (st) return st;
    if ((st = write_metadata(w, q, err)) || (st = declare_tensors(w, q, err))) goto fail;
    for (int64_t i = 0; i < q->plan.n_entries; i++) {
        const lq_plan_entry *e = &q->plan.entries[i];
        if ((st = write_tensor(q, w, e, &rep->tensors[i], err))) goto fail;
        q->done_elems += e->ne[0] * n_rows_of(e->ne);
        if (rep->tensors[i].imatrix) rep->n_imatrix_used++;
        rep->tensor_bytes += rep->tensors[i].nbytes;
        if (q->o->progress) q->o->progress(q->o->progress_ctx, q->done_elems, q->total_elems, e->name);
    }
    rep->n_elements = (uint64_t)q->total_elems;
    return lq_gguf_writer_finish(w, err);
fail:
    lq_gguf_writer_abort(w);
    return st;
}

lq_status lq_quantize_model(const lq_quantize_opts *o, lq_quantize_report *report, lq_error *err) {
    if (!o || !o->model_path || !o->out_path)
        return lq_fail(err, LQ_ERR_INVALID, "lq_quantize_model: model and output paths are required");
    double t0 = now_seconds();
    qctx q;
    memset(&q, 0, sizeof q);
    q.o = o;
    lq_quantize_report rep;
    memset(&rep, 0, sizeof rep);
    lq_status st = open_inputs(&q, err);
    if (!st) {
        rep.tensors = lq_calloc((size_t)(q.plan.n_entries + 1), sizeof *rep.tensors, err, "the report");
        st = rep.tensors ? LQ_OK : LQ_ERR_NOMEM;
    }
    if (!st) {
        rep.ftype = q.plan.ftype;
        rep.n_tensors = q.plan.n_entries;
        st = run(&q, &rep, err);
    }
    free_ctx(&q);
    struct stat sb;
    if (!st && stat(o->out_path, &sb) == 0) rep.file_bytes = (uint64_t)sb.st_size;
    rep.seconds = now_seconds() - t0;
    if (st || !report)
        lq_quantize_report_free(&rep);
    else
        *report = rep;
    return st;
}

void lq_quantize_report_free(lq_quantize_report *r) {
    if (!r) return;
    free(r->tensors);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------------------------------- */
/* File hash                                                                                 */

static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

#define H_P1 0x9E3779B185EBCA87ull
#define H_P2 0xC2B2AE3D27D4EB4Full
#define H_P3 0x165667B19E3779F9ull

static uint64_t hash_lane(uint64_t acc, uint64_t v) { return rotl64(acc + v * H_P2, 31) * H_P1; }

static uint64_t hash_bytes(const uint8_t *p, uint64_t n) {
    uint64_t lane[4] = {H_P1 + H_P2, H_P2, 0, (uint64_t)0 - H_P1};
    uint64_t i = 0, v;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            memcpy(&v, p + i + 8 * k, 8);
            lane[k] = hash_lane(lane[k], v);
        }
    uint64_t h = rotl64(lane[0], 1) + rotl64(lane[1], 7) + rotl64(lane[2], 12) + rotl64(lane[3], 18);
    h ^= n * H_P3;
    for (; i < n; i++) h = rotl64(h ^ (p[i] * H_P1), 11) * H_P2;
    h ^= h >> 33;
    h *= H_P2;
    h ^= h >> 29;
    h *= H_P3;
    return h ^ (h >> 32);
}

lq_status lq_file_hash64(const char *path, uint64_t *hash, uint64_t *size, lq_error *err) {
    void *map = NULL;
    size_t n = 0;
    lq_status st = lq_map_file(path, &map, &n, err);
    if (st) return st;
    *hash = hash_bytes(map ? (const uint8_t *)map : (const uint8_t *)"", (uint64_t)n);
    if (size) *size = n;
    if (map) munmap(map, n);
    return LQ_OK;
}
