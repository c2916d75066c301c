/* hfconfig.c — model description (lq_hparams) from a Hugging Face config.json or from the
 * <arch>.* keys of a GGUF file. Defaults follow transformers' config classes for the fields a
 * config may leave out. */
#include "internal.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Upper bounds that keep every shape product far from overflow and reject lying configs. */
#define MAX_EMBD ((int64_t)1 << 20)
#define MAX_LAYERS 4096
#define MAX_HEADS 16384
#define MAX_FF ((int64_t)1 << 22)
#define MAX_VOCAB ((int64_t)1 << 24)
#define MAX_CTX ((int64_t)1 << 32)

typedef struct arch_info {
    const char *model_type;   /* config.json model_type and GGUF general.architecture */
    const char *hf_class;     /* architectures[0] */
    lq_arch arch;
    int64_t default_ctx;      /* transformers' max_position_embeddings default */
} arch_info;

static const arch_info archs[] = {
    {"llama", "LlamaForCausalLM", LQ_ARCH_LLAMA, 2048},
    {"mistral", "MistralForCausalLM", LQ_ARCH_MISTRAL, 4096 * 32},
    {"qwen2", "Qwen2ForCausalLM", LQ_ARCH_QWEN2, 32768},
};
#define N_ARCHS (sizeof archs / sizeof archs[0])

static const arch_info *arch_by_type(const char *model_type) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (!strcmp(archs[i].model_type, model_type)) return &archs[i];
    return NULL;
}

static const arch_info *arch_by_class(const char *hf_class) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (!strcmp(archs[i].hf_class, hf_class)) return &archs[i];
    return NULL;
}

static void set_defaults(lq_hparams *hp, const arch_info *a) {
    memset(hp, 0, sizeof *hp);
    hp->arch = a->arch;
    snprintf(hp->arch_name, sizeof hp->arch_name, "%s", a->model_type);
    hp->n_ctx_train = a->default_ctx;
    hp->rope_theta = 10000.0f;
    hp->rms_eps = 1e-6f;
    hp->bos_token_id = -1;
    hp->eos_token_id = -1;
}

/* Checks the fields every architecture needs, wherever they came from; messages name the
 * config.json field or, for GGUF, the key. */
static lq_status check_hparams(lq_hparams *hp, const char *name, bool gguf, lq_error *err) {
    struct {
        const char *field, *key;
        int64_t value, max;
    } ranges[] = {
        {"hidden_size", "embedding_length", hp->n_embd, MAX_EMBD},
        {"num_hidden_layers", "block_count", hp->n_layer, MAX_LAYERS},
        {"num_attention_heads", "attention.head_count", hp->n_head, MAX_HEADS},
        {"num_key_value_heads", "attention.head_count_kv", hp->n_head_kv, MAX_HEADS},
        {"head_dim", "rope.dimension_count", hp->head_dim, MAX_EMBD},
        {"intermediate_size", "feed_forward_length", hp->n_ff, MAX_FF},
        {"vocab_size", "vocab_size", hp->n_vocab, MAX_VOCAB},
        {"max_position_embeddings", "context_length", hp->n_ctx_train, MAX_CTX},
    };
    const char *prefix = gguf ? hp->arch_name : "", *dot = gguf ? "." : "";
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
        if (ranges[i].value < 1 || ranges[i].value > ranges[i].max)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: %s%s%s = %lld is out of range (1..%lld)", name, prefix, dot,
                           gguf ? ranges[i].key : ranges[i].field, (long long)ranges[i].value,
                           (long long)ranges[i].max);
    if (hp->n_head % hp->n_head_kv != 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: %lld attention heads is not a multiple of %lld key/value heads", name,
                       (long long)hp->n_head, (long long)hp->n_head_kv);
    if (hp->head_dim % 2 != 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: head_dim %lld is odd (RoPE rotates pairs)", name,
                       (long long)hp->head_dim);
    if (!(hp->rope_theta > 0.0f) || !isfinite(hp->rope_theta))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: rope_theta %g is not a positive number", name, hp->rope_theta);
    if (!(hp->rms_eps > 0.0f) || !isfinite(hp->rms_eps))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: rms_norm_eps %g is not a positive number", name, hp->rms_eps);
    if (hp->sliding_window < 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: sliding_window %lld is negative", name,
                       (long long)hp->sliding_window);
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* config.json                                                                                */

typedef struct cfg {
    json_t *root;
    const char *name; /* for messages */
} cfg;

/* Integer field: required fields fail when absent; optional ones keep *out. JSON null counts as
 * absent. */
static lq_status get_int(const cfg *c, const char *field, bool required, int64_t *out, lq_error *err) {
    json_t *v = json_object_get(c->root, field);
    if (!v || json_is_null(v)) {
        if (required) return lq_fail(err, LQ_ERR_FORMAT, "%s: missing required field %s", c->name, field);
        return LQ_OK;
    }
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 9e15) {
        *out = (int64_t)json_real_value(v); /* 256.0 written by some exporters */
        return LQ_OK;
    }
    if (!json_is_integer(v)) return lq_fail(err, LQ_ERR_FORMAT, "%s: field %s is not an integer", c->name, field);
    *out = json_integer_value(v);
    return LQ_OK;
}

static lq_status get_float(const cfg *c, json_t *obj, const char *field, bool required, float *out,
                           lq_error *err) {
    json_t *v = json_object_get(obj, field);
    if (!v || json_is_null(v)) {
        if (required) return lq_fail(err, LQ_ERR_FORMAT, "%s: missing required field %s", c->name, field);
        return LQ_OK;
    }
    if (!json_is_number(v)) return lq_fail(err, LQ_ERR_FORMAT, "%s: field %s is not a number", c->name, field);
    *out = (float)json_number_value(v);
    return LQ_OK;
}

static lq_status get_bool(const cfg *c, const char *field, bool *out, lq_error *err) {
    json_t *v = json_object_get(c->root, field);
    if (!v || json_is_null(v)) return LQ_OK;
    if (!json_is_boolean(v)) return lq_fail(err, LQ_ERR_FORMAT, "%s: field %s is not true/false", c->name, field);
    *out = json_is_true(v);
    return LQ_OK;
}

/* bos/eos: an integer, null, or (Llama 3.1 eos) a list of which the first is taken. */
static lq_status get_token_id(const cfg *c, const char *field, int64_t *out, lq_error *err) {
    json_t *v = json_object_get(c->root, field);
    if (json_is_array(v)) v = json_array_size(v) > 0 ? json_array_get(v, 0) : NULL;
    if (!v || json_is_null(v)) return LQ_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: field %s is not a token id", c->name, field);
    *out = json_integer_value(v);
    return LQ_OK;
}

/* model_type and architectures[] must agree on an architecture we implement. */
static lq_status find_arch(const cfg *c, const arch_info **out, lq_error *err) {
    json_t *type = json_object_get(c->root, "model_type");
    json_t *classes = json_object_get(c->root, "architectures");
    const arch_info *a = NULL;
    if (type && !json_is_null(type)) {
        if (!json_is_string(type)) return lq_fail(err, LQ_ERR_FORMAT, "%s: model_type is not a string", c->name);
        a = arch_by_type(json_string_value(type));
        if (!a)
            return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported model_type '%s' (supported: llama, mistral, qwen2)",
                           c->name, json_string_value(type));
    }
    if (classes && !json_is_null(classes)) {
        if (!json_is_array(classes)) return lq_fail(err, LQ_ERR_FORMAT, "%s: architectures is not a list", c->name);
        for (size_t i = 0; i < json_array_size(classes); i++) {
            json_t *cls = json_array_get(classes, i);
            if (!json_is_string(cls))
                return lq_fail(err, LQ_ERR_FORMAT, "%s: architectures[%zu] is not a string", c->name, i);
            const arch_info *ca = arch_by_class(json_string_value(cls));
            if (!ca || (a && ca != a))
                return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported architecture '%s'%s%s", c->name,
                               json_string_value(cls), a ? " for model_type " : "", a ? a->model_type : "");
            a = ca;
        }
    }
    if (!a) return lq_fail(err, LQ_ERR_FORMAT, "%s: missing required field model_type", c->name);
    *out = a;
    return LQ_OK;
}

static lq_status parse_rope_scaling(const cfg *c, lq_hparams *hp, lq_error *err) {
    json_t *rs = json_object_get(c->root, "rope_scaling");
    if (!rs || json_is_null(rs)) return LQ_OK;
    if (!json_is_object(rs)) return lq_fail(err, LQ_ERR_FORMAT, "%s: rope_scaling is not an object", c->name);
    json_t *type = json_object_get(rs, "rope_type");
    if (!type) type = json_object_get(rs, "type");
    if (!json_is_string(type))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: rope_scaling has no rope_type/type string", c->name);
    const char *name = json_string_value(type);
    if (!strcmp(name, "default")) return LQ_OK;
    if (strcmp(name, "llama3") != 0)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: rope_scaling type '%s' is not supported (only llama3)", c->name,
                       name);
    hp->rope_scaling = LQ_ROPE_SCALING_LLAMA3;
    lq_status rc;
    if ((rc = get_float(c, rs, "factor", true, &hp->rope_factor, err)) ||
        (rc = get_float(c, rs, "low_freq_factor", true, &hp->rope_low_freq_factor, err)) ||
        (rc = get_float(c, rs, "high_freq_factor", true, &hp->rope_high_freq_factor, err)))
        return rc;
    json_t *orig = json_object_get(rs, "original_max_position_embeddings");
    if (!json_is_integer(orig) || json_integer_value(orig) < 1)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: rope_scaling.original_max_position_embeddings missing or invalid",
                       c->name);
    hp->rope_orig_ctx = json_integer_value(orig);
    if (!(hp->rope_factor >= 1.0f) || !(hp->rope_low_freq_factor > 0.0f) ||
        !(hp->rope_high_freq_factor > hp->rope_low_freq_factor))
        return lq_fail(err, LQ_ERR_FORMAT, "%s: rope_scaling factors are inconsistent (factor %g, low %g, high %g)",
                       c->name, hp->rope_factor, hp->rope_low_freq_factor, hp->rope_high_freq_factor);
    return LQ_OK;
}

/* Biases: llama's attention_bias covers q/k/v/o; qwen2 always has q/k/v biases and no o bias;
 * mistral has none. */
static lq_status parse_biases(const cfg *c, lq_hparams *hp, lq_error *err) {
    bool attention_bias = false, mlp_bias = false;
    lq_status rc;
    if ((rc = get_bool(c, "attention_bias", &attention_bias, err)) || (rc = get_bool(c, "mlp_bias", &mlp_bias, err)))
        return rc;
    if (hp->arch == LQ_ARCH_QWEN2) {
        hp->attn_bias = true;
    } else if (hp->arch == LQ_ARCH_LLAMA) {
        hp->attn_bias = hp->attn_out_bias = attention_bias;
        hp->mlp_bias = mlp_bias;
    }
    return LQ_OK;
}

/* Mistral: sliding_window (int or null). Qwen2: only when use_sliding_window is true. */
static lq_status parse_sliding_window(const cfg *c, lq_hparams *hp, lq_error *err) {
    if (hp->arch == LQ_ARCH_LLAMA) return LQ_OK;
    if (hp->arch == LQ_ARCH_QWEN2) {
        bool use = false;
        lq_status rc = get_bool(c, "use_sliding_window", &use, err);
        if (rc != LQ_OK || !use) return rc;
    }
    return get_int(c, "sliding_window", false, &hp->sliding_window, err);
}

static lq_status parse_sizes(const cfg *c, lq_hparams *hp, lq_error *err) {
    lq_status rc;
    if ((rc = get_int(c, "hidden_size", true, &hp->n_embd, err)) ||
        (rc = get_int(c, "num_hidden_layers", true, &hp->n_layer, err)) ||
        (rc = get_int(c, "num_attention_heads", true, &hp->n_head, err)) ||
        (rc = get_int(c, "intermediate_size", true, &hp->n_ff, err)) ||
        (rc = get_int(c, "vocab_size", true, &hp->n_vocab, err)) ||
        (rc = get_int(c, "max_position_embeddings", false, &hp->n_ctx_train, err)))
        return rc;
    if (hp->n_head < 1 || hp->n_head > MAX_HEADS)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: num_attention_heads = %lld is out of range (1..%d)", c->name,
                       (long long)hp->n_head, MAX_HEADS);
    hp->n_head_kv = hp->n_head;
    hp->head_dim = 0;
    if ((rc = get_int(c, "num_key_value_heads", false, &hp->n_head_kv, err)) ||
        (rc = get_int(c, "head_dim", false, &hp->head_dim, err)))
        return rc;
    if (hp->head_dim == 0) {
        if (hp->n_embd % hp->n_head != 0)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: hidden_size %lld is not a multiple of num_attention_heads %lld "
                           "and head_dim is not given", c->name, (long long)hp->n_embd, (long long)hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    return LQ_OK;
}

static lq_status parse_config(const cfg *c, lq_hparams *hp, lq_error *err) {
    if (!json_is_object(c->root)) return lq_fail(err, LQ_ERR_FORMAT, "%s: not a JSON object", c->name);
    const arch_info *a = NULL;
    lq_status rc = find_arch(c, &a, err);
    if (rc != LQ_OK) return rc;
    set_defaults(hp, a);
    if ((rc = parse_sizes(c, hp, err)) ||
        (rc = get_float(c, c->root, "rope_theta", false, &hp->rope_theta, err)) ||
        (rc = get_float(c, c->root, "rms_norm_eps", false, &hp->rms_eps, err)) ||
        (rc = parse_rope_scaling(c, hp, err)) || (rc = get_bool(c, "tie_word_embeddings", &hp->tie_embeddings, err)) ||
        (rc = parse_biases(c, hp, err)) || (rc = parse_sliding_window(c, hp, err)) ||
        (rc = get_token_id(c, "bos_token_id", &hp->bos_token_id, err)) ||
        (rc = get_token_id(c, "eos_token_id", &hp->eos_token_id, err)))
        return rc;
    return check_hparams(hp, c->name, false, err);
}

lq_status lq_hparams_from_config_json(const char *json, size_t len, const char *name, lq_hparams *hp,
                                      lq_error *err) {
    if (!name) name = "config.json";
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d)", name, jerr.text, jerr.line,
                       jerr.column);
    cfg c = {root, name};
    lq_hparams parsed;
    lq_status rc = parse_config(&c, &parsed, err);
    json_decref(root);
    if (rc == LQ_OK) *hp = parsed;
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* GGUF keys                                                                                  */

typedef struct gguf_src {
    const lq_gguf *g;
    const char *arch; /* key prefix */
    const char *name; /* file, for messages */
} gguf_src;

/* <arch>.<suffix> as an integer; optional keys keep *out when absent. */
static lq_status gguf_int(const gguf_src *s, const char *suffix, bool required, int64_t *out, lq_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    int64_t i = lq_gguf_find_key(s->g, key);
    if (i < 0) {
        if (required) return lq_fail(err, LQ_ERR_FORMAT, "%s: missing required key %s", s->name, key);
        return LQ_OK;
    }
    uint64_t v;
    lq_status rc = lq_gguf_get_u64(s->g, i, &v, err);
    if (rc != LQ_OK) return rc;
    if (v > (uint64_t)INT64_MAX) return lq_fail(err, LQ_ERR_FORMAT, "%s: key %s is out of range", s->name, key);
    *out = (int64_t)v;
    return LQ_OK;
}

static lq_status gguf_float(const gguf_src *s, const char *suffix, bool required, float *out, lq_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    int64_t i = lq_gguf_find_key(s->g, key);
    if (i < 0) {
        if (required) return lq_fail(err, LQ_ERR_FORMAT, "%s: missing required key %s", s->name, key);
        return LQ_OK;
    }
    double v;
    lq_status rc = lq_gguf_get_f64(s->g, i, &v, err);
    if (rc == LQ_OK) *out = (float)v;
    return rc;
}

/* A plain (non-prefixed) token id key; -1 stays when absent. */
static lq_status gguf_token_id(const gguf_src *s, const char *key, int64_t *out, lq_error *err) {
    int64_t i = lq_gguf_find_key(s->g, key);
    if (i < 0) return LQ_OK;
    uint64_t v;
    lq_status rc = lq_gguf_get_u64(s->g, i, &v, err);
    if (rc == LQ_OK) *out = v > (uint64_t)INT64_MAX ? -1 : (int64_t)v;
    return rc;
}

/* n_vocab: <arch>.vocab_size, else the token list, else token_embd's rows. */
static lq_status gguf_vocab(const gguf_src *s, lq_hparams *hp, lq_error *err) {
    lq_status rc = gguf_int(s, "vocab_size", false, &hp->n_vocab, err);
    if (rc != LQ_OK || hp->n_vocab > 0) return rc;
    int64_t tokens = lq_gguf_find_key(s->g, "tokenizer.ggml.tokens");
    if (tokens >= 0 && lq_gguf_kv_type(s->g, tokens) == LQ_GGUF_ARRAY) {
        hp->n_vocab = (int64_t)lq_gguf_arr_n(s->g, tokens);
        return LQ_OK;
    }
    int64_t embd = lq_gguf_find_tensor(s->g, "token_embd.weight");
    if (embd >= 0) hp->n_vocab = lq_gguf_tensor(s->g, embd)->ne[1];
    return LQ_OK;
}

/* Linear/YaRN scaling would change the runtime's RoPE; Llama-3 scaling lives in a
 * rope_freqs.weight tensor that the model view passes through. */
static lq_status gguf_rope_scaling(const gguf_src *s, lq_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", s->arch);
    int64_t i = lq_gguf_find_key(s->g, key);
    if (i < 0 || lq_gguf_kv_type(s->g, i) != LQ_GGUF_STRING) return LQ_OK;
    lq_str v = lq_gguf_get_str(s->g, i);
    if (v.len == 4 && !memcmp(v.ptr, "none", 4)) return LQ_OK;
    int n = v.len > 32 ? 32 : (int)v.len;
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: %s '%.*s' is not supported", s->name, key, n, v.ptr);
}

static lq_status gguf_arch(const lq_gguf *g, const char *name, const arch_info **out, char *arch_name,
                           size_t arch_name_size, lq_error *err) {
    int64_t i = lq_gguf_find_key(g, "general.architecture");
    if (i < 0 || lq_gguf_kv_type(g, i) != LQ_GGUF_STRING)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: missing string key general.architecture", name);
    lq_str s = lq_gguf_get_str(g, i);
    int n = s.len > 31 ? 31 : (int)s.len;
    snprintf(arch_name, arch_name_size, "%.*s", n, s.ptr);
    for (int k = 0; k < n; k++)
        if ((unsigned char)arch_name[k] < 0x20 || (unsigned char)arch_name[k] >= 0x7f) arch_name[k] = '?';
    *out = s.len <= 31 ? arch_by_type(arch_name) : NULL;
    if (!*out)
        return lq_fail(err, LQ_ERR_UNSUPPORTED, "%s: unsupported architecture '%s' (supported: llama, mistral, qwen2)",
                       name, arch_name);
    return LQ_OK;
}

lq_status lq_hparams_from_gguf(const lq_gguf *g, lq_hparams *hp, lq_error *err) {
    const char *name = lq_gguf_path(g);
    const arch_info *a = NULL;
    char arch_name[32];
    lq_status rc = gguf_arch(g, name, &a, arch_name, sizeof arch_name, err);
    if (rc != LQ_OK) return rc;
    lq_hparams p;
    set_defaults(&p, a);
    gguf_src s = {g, a->model_type, name};
    p.n_ctx_train = 0;
    if ((rc = gguf_int(&s, "context_length", true, &p.n_ctx_train, err)) ||
        (rc = gguf_int(&s, "embedding_length", true, &p.n_embd, err)) ||
        (rc = gguf_int(&s, "block_count", true, &p.n_layer, err)) ||
        (rc = gguf_int(&s, "feed_forward_length", true, &p.n_ff, err)) ||
        (rc = gguf_int(&s, "attention.head_count", true, &p.n_head, err)))
        return rc;
    if (p.n_head < 1 || p.n_head > MAX_HEADS)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: %s.attention.head_count = %lld is out of range", name, a->model_type,
                       (long long)p.n_head);
    p.n_head_kv = p.n_head;
    p.head_dim = p.n_embd / p.n_head;
    p.rms_eps = 0.0f;
    if ((rc = gguf_int(&s, "attention.head_count_kv", false, &p.n_head_kv, err)) ||
        (rc = gguf_int(&s, "rope.dimension_count", false, &p.head_dim, err)) ||
        (rc = gguf_int(&s, "attention.key_length", false, &p.head_dim, err)) ||
        (rc = gguf_float(&s, "rope.freq_base", false, &p.rope_theta, err)) ||
        (rc = gguf_float(&s, "attention.layer_norm_rms_epsilon", true, &p.rms_eps, err)) ||
        (rc = gguf_int(&s, "attention.sliding_window", false, &p.sliding_window, err)) || (rc = gguf_vocab(&s, &p, err)) ||
        (rc = gguf_token_id(&s, "tokenizer.ggml.bos_token_id", &p.bos_token_id, err)) ||
        (rc = gguf_token_id(&s, "tokenizer.ggml.eos_token_id", &p.eos_token_id, err)))
        return rc;
    if ((rc = gguf_rope_scaling(&s, err))) return rc;
    /* Which optional tensors exist says what the config would have said. */
    p.tie_embeddings = lq_gguf_find_tensor(g, "output.weight") < 0;
    p.attn_bias = lq_gguf_find_tensor(g, "blk.0.attn_q.bias") >= 0;
    p.attn_out_bias = lq_gguf_find_tensor(g, "blk.0.attn_output.bias") >= 0;
    p.mlp_bias = lq_gguf_find_tensor(g, "blk.0.ffn_up.bias") >= 0;
    snprintf(p.arch_name, sizeof p.arch_name, "%s", arch_name);
    rc = check_hparams(&p, name, true, err);
    if (rc == LQ_OK) *hp = p;
    return rc;
}
