/* model.c — the model view: an HF directory (config.json + safetensors) or a GGUF file seen as
 * canonical GGUF-named tensors in GGUF ne order. Tensor bytes stay in the source mappings. */
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_CONFIG_BYTES (16u << 20)

struct lq_model {
    lq_model_source source;
    char *path;
    lq_hparams hp;
    lq_rope_layout rope;
    lq_tensor *tensors;
    int64_t n_tensors;
    int64_t *by_name; /* indices sorted by canonical name */
    lq_gguf *gguf;
    lq_safetensors *st;
    char *tokenizer_json;
};

/* ---------------------------------------------------------------------------------------- */
/* Helpers                                                                                    */

static char *dup_str(const char *s, lq_error *err) {
    size_t n = strlen(s) + 1;
    char *d = lq_malloc(n, err, "a string");
    if (d) memcpy(d, s, n);
    return d;
}

static char *join_path(const char *dir, const char *name, lq_error *err) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = lq_malloc(n, err, "a path");
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *dir_of(const char *path, lq_error *err) {
    const char *slash = strrchr(path, '/');
    if (!slash) return dup_str(".", err);
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = lq_malloc(n + 1, err, "a path");
    if (!d) return NULL;
    memcpy(d, path, n);
    d[n] = '\0';
    return d;
}

static bool is_regular_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Reads a small text file whole (config.json). */
static lq_status read_small_file(const char *path, char **out, size_t *len, lq_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = lq_malloc(MAX_CONFIG_BYTES + 1, err, "config.json");
    if (!buf) {
        fclose(f);
        return LQ_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, MAX_CONFIG_BYTES + 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed || n > MAX_CONFIG_BYTES) {
        free(buf);
        return failed ? lq_fail(err, LQ_ERR_IO, "%s: read error", path)
                      : lq_fail(err, LQ_ERR_FORMAT, "%s: larger than %u bytes", path, MAX_CONFIG_BYTES);
    }
    *out = buf;
    *len = n;
    return LQ_OK;
}

/* Layer index of "blk.N.…", else -1. */
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    long v = 0;
    const char *p = name + 4;
    if (*p < '0' || *p > '9') return -1;
    while (*p >= '0' && *p <= '9' && v < 1000000) v = v * 10 + (*p++ - '0');
    return *p == '.' ? (int)v : -1;
}

static void format_shape(const int64_t *ne, char *buf, size_t size) {
    int n_dims = LQ_MAX_DIMS;
    while (n_dims > 1 && ne[n_dims - 1] == 1) n_dims--;
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)ne[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

void lq_model_close(lq_model *m) {
    if (!m) return;
    lq_gguf_close(m->gguf);
    lq_safetensors_close(m->st);
    free(m->tensors);
    free(m->by_name);
    free(m->tokenizer_json);
    free(m->path);
    free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Expected tensors and their shapes (GGUF ne order)                                         */

typedef struct expected {
    char name[LQ_MAX_NAME];
    int64_t ne[LQ_MAX_DIMS];
} expected;

typedef struct expected_list {
    expected *items;
    int64_t n;
} expected_list;

static void expect(expected_list *l, const char *name, int64_t ne0, int64_t ne1) {
    expected *e = &l->items[l->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ne[0] = ne0;
    e->ne[1] = ne1;
    e->ne[2] = e->ne[3] = 1;
}

static void expect_layer(expected_list *l, int64_t layer, const char *suffix, int64_t ne0, int64_t ne1) {
    char name[LQ_MAX_NAME];
    snprintf(name, sizeof name, "blk.%lld.%s", (long long)layer, suffix);
    expect(l, name, ne0, ne1);
}

#define MAX_PER_LAYER 16
static lq_status expected_tensors(const lq_hparams *hp, expected_list *l, lq_error *err) {
    l->n = 0;
    l->items = lq_calloc((size_t)(hp->n_layer * MAX_PER_LAYER + 3), sizeof *l->items, err, "expected tensors");
    if (!l->items) return LQ_ERR_NOMEM;
    int64_t q = hp->n_head * hp->head_dim, kv = hp->n_head_kv * hp->head_dim, e = hp->n_embd, ff = hp->n_ff;
    expect(l, "token_embd.weight", e, hp->n_vocab);
    for (int64_t i = 0; i < hp->n_layer; i++) {
        expect_layer(l, i, "attn_norm.weight", e, 1);
        expect_layer(l, i, "attn_q.weight", e, q);
        expect_layer(l, i, "attn_k.weight", e, kv);
        expect_layer(l, i, "attn_v.weight", e, kv);
        expect_layer(l, i, "attn_output.weight", q, e);
        expect_layer(l, i, "ffn_norm.weight", e, 1);
        expect_layer(l, i, "ffn_gate.weight", e, ff);
        expect_layer(l, i, "ffn_up.weight", e, ff);
        expect_layer(l, i, "ffn_down.weight", ff, e);
        if (hp->attn_bias) {
            expect_layer(l, i, "attn_q.bias", q, 1);
            expect_layer(l, i, "attn_k.bias", kv, 1);
            expect_layer(l, i, "attn_v.bias", kv, 1);
        }
        if (hp->attn_out_bias) expect_layer(l, i, "attn_output.bias", e, 1);
        if (hp->mlp_bias) {
            expect_layer(l, i, "ffn_gate.bias", ff, 1);
            expect_layer(l, i, "ffn_up.bias", ff, 1);
            expect_layer(l, i, "ffn_down.bias", e, 1);
        }
    }
    expect(l, "output_norm.weight", e, 1);
    if (!hp->tie_embeddings) expect(l, "output.weight", e, hp->n_vocab);
    return LQ_OK;
}

static bool is_expected(const expected_list *l, const char *name) {
    for (int64_t i = 0; i < l->n; i++)
        if (!strcmp(l->items[i].name, name)) return true;
    return false;
}

/* Every expected tensor exists with the implied shape; for HF sources nothing else exists. */
static lq_status check_tensors(const lq_model *m, lq_error *err) {
    expected_list l;
    lq_status rc = expected_tensors(&m->hp, &l, err);
    if (rc != LQ_OK) return rc;
    char want[96], have[96];
    for (int64_t i = 0; i < l.n && rc == LQ_OK; i++) {
        const lq_tensor *t = lq_model_find(m, l.items[i].name);
        format_shape(l.items[i].ne, want, sizeof want);
        if (!t) {
            rc = lq_fail(err, LQ_ERR_FORMAT, "%s: missing tensor %s (expected shape %s)", m->path, l.items[i].name,
                         want);
            break;
        }
        if (memcmp(t->ne, l.items[i].ne, sizeof t->ne) != 0) {
            format_shape(t->ne, have, sizeof have);
            bool renamed = strcmp(t->name, t->source_name) != 0;
            rc = lq_fail(err, LQ_ERR_FORMAT, "%s: tensor %s%s%s%s has shape %s but the hyperparameters imply %s",
                         t->file, t->name, renamed ? " (" : "", renamed ? t->source_name : "", renamed ? ")" : "",
                         have, want);
        }
    }
    for (int64_t i = 0; i < m->n_tensors && rc == LQ_OK; i++) {
        const lq_tensor *t = &m->tensors[i];
        bool extra_ok = m->source == LQ_SOURCE_GGUF && t->layer < 0; /* rope_freqs.weight etc. */
        if (!extra_ok && !is_expected(&l, t->name))
            rc = lq_fail(err, LQ_ERR_FORMAT, "%s: unexpected tensor %s (%s) for this configuration (%lld layers%s%s)",
                         t->file, t->name, t->source_name, (long long)m->hp.n_layer,
                         m->hp.attn_bias ? "" : ", no attention bias", m->hp.mlp_bias ? "" : ", no MLP bias");
    }
    free(l.items);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Name index                                                                                 */

static const char *model_name_of(const void *ctx, int64_t i) {
    return ((const lq_model *)ctx)->tensors[i].name;
}

static lq_status index_names(lq_model *m, lq_error *err) {
    int64_t dup[2];
    lq_status rc = lq_name_index_build(m->n_tensors, model_name_of, m, &m->by_name, dup, err);
    if (rc != LQ_OK) return rc;
    if (dup[0] >= 0) {
        const lq_tensor *a = &m->tensors[dup[0]], *b = &m->tensors[dup[1]];
        return lq_fail(err, LQ_ERR_FORMAT, "%s: tensors %s and %s both map to %s", b->file, a->source_name,
                       b->source_name, b->name);
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Hugging Face directories                                                                   */

/* Order of the tensors inside a block, as llama.cpp's converter emits them. */
static const char *const block_order[] = {
    "attn_norm.weight", "attn_q.weight", "attn_q.bias", "attn_k.weight", "attn_k.bias", "attn_v.weight",
    "attn_v.bias", "attn_output.weight", "attn_output.bias", "ffn_norm.weight", "ffn_gate.weight",
    "ffn_gate.bias", "ffn_up.weight", "ffn_up.bias", "ffn_down.weight", "ffn_down.bias",
};

/* Sort key: token_embd, blocks in order, output_norm, output. */
static int64_t tensor_rank(const lq_tensor *t) {
    if (!strcmp(t->name, "token_embd.weight")) return -1;
    if (t->layer >= 0) {
        const char *suffix = strchr(t->name + 4, '.') + 1;
        for (size_t k = 0; k < sizeof block_order / sizeof block_order[0]; k++)
            if (!strcmp(suffix, block_order[k])) return (int64_t)t->layer * 64 + (int64_t)k;
        return (int64_t)t->layer * 64 + 63;
    }
    return !strcmp(t->name, "output_norm.weight") ? INT64_MAX - 1 : INT64_MAX;
}

static int cmp_rank(const void *a, const void *b) {
    const lq_tensor *x = a, *y = b;
    int64_t rx = tensor_rank(x), ry = tensor_rank(y);
    if (rx != ry) return rx < ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void fill_from_st(lq_tensor *t, const lq_st_tensor *s, const char *gguf_name) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", gguf_name);
    t->source_name = s->name;
    t->file = s->file;
    t->type = s->type;
    t->n_dims = s->n_dims ? s->n_dims : 1;
    for (int d = 0; d < LQ_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < s->n_dims; d++) t->ne[d] = s->shape[s->n_dims - 1 - d]; /* reverse */
    t->nbytes = s->nbytes;
    t->data = s->data;
    t->layer = layer_of(t->name);
}

static lq_tensor *find_mut(lq_model *m, const char *name) {
    for (int64_t i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static void remove_tensor(lq_model *m, lq_tensor *t) {
    int64_t i = t - m->tensors;
    memmove(t, t + 1, (size_t)(m->n_tensors - i - 1) * sizeof *t);
    m->n_tensors--;
}

/* Tied embeddings: a checkpoint that stores only lm_head (safetensors drops the shared copy and
 * records the alias in __metadata__) serves it as token_embd; a tied checkpoint that stores both
 * keeps token_embd only, as the converter does. */
static void resolve_tied(lq_model *m) {
    lq_tensor *embd = find_mut(m, "token_embd.weight"), *out = find_mut(m, "output.weight");
    if (!embd && out) {
        snprintf(out->name, sizeof out->name, "token_embd.weight");
        m->hp.tie_embeddings = true;
    } else if (embd && out && m->hp.tie_embeddings) {
        remove_tensor(m, out);
    }
}

static lq_status map_hf_tensors(lq_model *m, lq_error *err) {
    int64_t n = lq_safetensors_n_tensors(m->st);
    m->tensors = lq_calloc((size_t)n, sizeof *m->tensors, err, "model tensors");
    if (!m->tensors) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const lq_st_tensor *s = lq_safetensors_tensor(m->st, i);
        char gguf_name[LQ_MAX_NAME];
        lq_status rc = lq_hf_to_gguf_name(s->name, gguf_name, err);
        if (rc != LQ_OK) return lq_fail_wrap(err, "%s", s->file);
        if (gguf_name[0] == '\0') continue; /* no weights in it */
        fill_from_st(&m->tensors[m->n_tensors++], s, gguf_name);
    }
    resolve_tied(m);
    qsort(m->tensors, (size_t)m->n_tensors, sizeof *m->tensors, cmp_rank);
    return LQ_OK;
}

static lq_status load_config(const char *dir, lq_hparams *hp, lq_error *err) {
    char *config_path = join_path(dir, "config.json", err);
    if (!config_path) return LQ_ERR_NOMEM;
    char *text = NULL;
    size_t len = 0;
    lq_status rc;
    if (!is_regular_file(config_path))
        rc = lq_fail(err, LQ_ERR_IO, "%s: no config.json (a Hugging Face model directory needs one)", dir);
    else
        rc = read_small_file(config_path, &text, &len, err);
    if (rc == LQ_OK) rc = lq_hparams_from_config_json(text, len, config_path, hp, err);
    free(text);
    free(config_path);
    return rc;
}

/* dir: the model directory; weights: a .safetensors/.index.json file in it, or NULL. */
static lq_status open_hf(lq_model *m, const char *dir, const char *weights, lq_error *err) {
    m->source = LQ_SOURCE_HF;
    m->rope = LQ_ROPE_HALVES;
    lq_status rc = load_config(dir, &m->hp, err);
    if (rc == LQ_OK) rc = lq_safetensors_open(weights ? weights : dir, &m->st, err);
    if (rc == LQ_OK) rc = map_hf_tensors(m, err);
    if (rc == LQ_OK) rc = index_names(m, err);
    if (rc == LQ_OK) rc = check_tensors(m, err);
    if (rc != LQ_OK) return rc;
    char *tok = join_path(dir, "tokenizer.json", err);
    if (!tok) return LQ_ERR_NOMEM;
    if (is_regular_file(tok))
        m->tokenizer_json = tok;
    else
        free(tok);
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* GGUF files                                                                                 */

static lq_status map_gguf_tensors(lq_model *m, lq_error *err) {
    int64_t n = lq_gguf_n_tensors(m->gguf);
    m->tensors = lq_calloc((size_t)n, sizeof *m->tensors, err, "model tensors");
    if (!m->tensors) return LQ_ERR_NOMEM;
    for (int64_t i = 0; i < n; i++) {
        const lq_gguf_tensor_info *g = lq_gguf_tensor(m->gguf, i);
        lq_tensor *t = &m->tensors[m->n_tensors++];
        snprintf(t->name, sizeof t->name, "%s", g->name);
        t->source_name = g->name;
        t->file = lq_gguf_path(m->gguf);
        t->type = g->type;
        t->n_dims = g->n_dims;
        memcpy(t->ne, g->ne, sizeof t->ne);
        t->nbytes = g->nbytes;
        t->data = g->data;
        t->layer = layer_of(t->name);
    }
    return LQ_OK;
}

static lq_status open_gguf(lq_model *m, const char *path, lq_error *err) {
    m->source = LQ_SOURCE_GGUF;
    lq_status rc = lq_gguf_open(path, &m->gguf, err);
    if (rc == LQ_OK) rc = lq_hparams_from_gguf(m->gguf, &m->hp, err);
    if (rc != LQ_OK) return rc;
    /* llama/mistral rows were permuted by the converter; qwen2 (NEOX RoPE) keeps HF order. */
    m->rope = m->hp.arch == LQ_ARCH_QWEN2 ? LQ_ROPE_HALVES : LQ_ROPE_INTERLEAVED;
    if ((rc = map_gguf_tensors(m, err)) || (rc = index_names(m, err))) return rc;
    return check_tensors(m, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Public API                                                                                 */

static bool has_gguf_magic(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char magic[4];
    bool yes = fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    fclose(f);
    return yes;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static lq_status open_path(lq_model *m, const char *path, lq_error *err) {
    struct stat sb;
    if (stat(path, &sb) != 0) return lq_fail(err, LQ_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return open_hf(m, path, NULL, err);
    if (!S_ISREG(sb.st_mode)) return lq_fail(err, LQ_ERR_IO, "%s: not a file or directory", path);
    if (has_gguf_magic(path) || ends_with(path, ".gguf")) return open_gguf(m, path, err);
    if (!ends_with(path, ".safetensors") && !ends_with(path, ".json"))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: neither a GGUF file, a safetensors file nor a model directory", path);
    char *dir = dir_of(path, err);
    if (!dir) return LQ_ERR_NOMEM;
    lq_status rc = open_hf(m, dir, path, err);
    free(dir);
    return rc;
}

lq_status lq_model_open(const char *path, lq_model **out, lq_error *err) {
    *out = NULL;
    lq_model *m = lq_calloc(1, sizeof *m, err, "a model");
    if (!m) return LQ_ERR_NOMEM;
    m->path = dup_str(path, err);
    lq_status rc = m->path ? open_path(m, path, err) : LQ_ERR_NOMEM;
    if (rc != LQ_OK) {
        lq_model_close(m);
        return rc;
    }
    *out = m;
    return LQ_OK;
}

lq_model_source lq_model_source_kind(const lq_model *m) { return m->source; }
const char *lq_model_path(const lq_model *m) { return m->path; }
const lq_hparams *lq_model_hparams(const lq_model *m) { return &m->hp; }
lq_rope_layout lq_model_rope_layout(const lq_model *m) { return m->rope; }
int64_t lq_model_n_tensors(const lq_model *m) { return m->n_tensors; }

const lq_tensor *lq_model_tensor(const lq_model *m, int64_t i) {
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}

const lq_tensor *lq_model_find(const lq_model *m, const char *name) {
    int64_t i = lq_name_index_find(m->by_name, m->n_tensors, model_name_of, m, name);
    return i < 0 ? NULL : &m->tensors[i];
}

const lq_gguf *lq_model_gguf(const lq_model *m) { return m->gguf; }
const lq_safetensors *lq_model_safetensors(const lq_model *m) { return m->st; }
const char *lq_model_tokenizer_json(const lq_model *m) { return m->tokenizer_json; }

/* ---- diagnosis of non-finite weights ------------------------------------------------- */

static lq_status check_tensor_finite(const lq_tensor *t, float *buf, int64_t ne0, lq_error *err) {
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    size_t row_bytes = lq_row_size(t->type, ne0);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *src = (const uint8_t *)t->data + (size_t)r * row_bytes;
        lq_status st = lq_dequantize_rows(t->type, src, buf, 1, ne0, err);
        if (st) return lq_fail_wrap(err, "%s: tensor %s", t->file, t->name);
        for (int64_t c = 0; c < ne0; c++)
            if (!isfinite(buf[c]))
                return lq_fail(err, LQ_ERR_NUMERIC,
                               "%s: tensor %s has a non-finite value (%g) at element %lld (row %lld, column %lld)",
                               t->file, t->name, (double)buf[c], (long long)(r * ne0 + c), (long long)r, (long long)c);
    }
    return LQ_OK;
}

lq_status lq_model_check_finite(const lq_model *m, lq_error *err) {
    for (int64_t i = 0; i < lq_model_n_tensors(m); i++) {
        const lq_tensor *t = lq_model_tensor(m, i);
        if (!lq_row_size(t->type, t->ne[0])) continue; /* types without a decoder */
        float *buf = (float *)lq_malloc((size_t)t->ne[0] * sizeof(float), err, "a row of a tensor");
        if (!buf) return LQ_ERR_NOMEM;
        lq_status st = check_tensor_finite(t, buf, t->ne[0], err);
        free(buf);
        if (st) return st;
    }
    return LQ_OK;
}
