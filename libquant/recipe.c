/* recipe.c — the quantization plan: llama-quantize's presets, its per-tensor mixing rules
 * (llama_tensor_get_type as described in the reference notes, section c), the output/token
 * embedding rules, --tensor-type style overrides and the fallback chain for row widths that
 * are not a multiple of the block size. Only the Llama family (llama, mistral, qwen2; dense,
 * no Falcon, no MoE) is modelled, which is what the model view serves. */
#include "internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* llama_ftype ids (general.file_type). */
enum {
    FT_ALL_F32 = 0, FT_F16 = 1, FT_Q4_0 = 2, FT_Q4_1 = 3, FT_Q8_0 = 7, FT_Q5_0 = 8, FT_Q5_1 = 9,
    FT_Q2_K = 10, FT_Q3_K_S = 11, FT_Q3_K_M = 12, FT_Q3_K_L = 13, FT_Q4_K_S = 14, FT_Q4_K_M = 15,
    FT_Q5_K_S = 16, FT_Q5_K_M = 17, FT_Q6_K = 18, FT_IQ4_NL = 25, FT_IQ4_XS = 30, FT_BF16 = 32,
};

typedef struct preset {
    const char *name;
    int ftype;
    lq_type base;
} preset;

/* The first entry of each ftype gives its canonical name. */
static const preset presets[] = {
    {"F32", FT_ALL_F32, LQ_TYPE_F32},    {"F16", FT_F16, LQ_TYPE_F16},
    {"BF16", FT_BF16, LQ_TYPE_BF16},     {"Q4_0", FT_Q4_0, LQ_TYPE_Q4_0},
    {"Q4_1", FT_Q4_1, LQ_TYPE_Q4_1},     {"Q5_0", FT_Q5_0, LQ_TYPE_Q5_0},
    {"Q5_1", FT_Q5_1, LQ_TYPE_Q5_1},     {"Q8_0", FT_Q8_0, LQ_TYPE_Q8_0},
    {"Q2_K", FT_Q2_K, LQ_TYPE_Q2_K},     {"Q3_K_S", FT_Q3_K_S, LQ_TYPE_Q3_K},
    {"Q3_K_M", FT_Q3_K_M, LQ_TYPE_Q3_K}, {"Q3_K", FT_Q3_K_M, LQ_TYPE_Q3_K},
    {"Q3_K_L", FT_Q3_K_L, LQ_TYPE_Q3_K}, {"Q4_K_S", FT_Q4_K_S, LQ_TYPE_Q4_K},
    {"Q4_K_M", FT_Q4_K_M, LQ_TYPE_Q4_K}, {"Q4_K", FT_Q4_K_M, LQ_TYPE_Q4_K},
    {"Q5_K_S", FT_Q5_K_S, LQ_TYPE_Q5_K}, {"Q5_K_M", FT_Q5_K_M, LQ_TYPE_Q5_K},
    {"Q5_K", FT_Q5_K_M, LQ_TYPE_Q5_K},   {"Q6_K", FT_Q6_K, LQ_TYPE_Q6_K},
    {"IQ4_NL", FT_IQ4_NL, LQ_TYPE_IQ4_NL}, {"IQ4_XS", FT_IQ4_XS, LQ_TYPE_IQ4_XS},
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

lq_status lq_preset_lookup(const char *name, int *ftype, lq_type *base, lq_error *err) {
    for (size_t i = 0; name && i < N_PRESETS; i++) {
        if (strcasecmp(name, presets[i].name) != 0) continue;
        if (ftype) *ftype = presets[i].ftype;
        if (base) *base = presets[i].base;
        return LQ_OK;
    }
    return lq_fail(err, LQ_ERR_INVALID,
                   "unknown quantization type '%s' (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K "
                   "Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS)",
                   name ? name : "(null)");
}

const char *lq_ftype_name(int ftype) {
    for (size_t i = 0; i < N_PRESETS; i++)
        if (presets[i].ftype == ftype) return presets[i].name;
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Tensor order and which tensors are quantized                                              */

static int layer_of(const char *name) {
    int layer = -1;
    if (sscanf(name, "blk.%d.", &layer) != 1) return -1;
    return layer;
}

/* llama-quantize's loader order: non-block tensors (layer -1) first, then by layer, by name. */
static int cmp_entries(const void *a, const void *b) {
    const lq_plan_entry *x = a, *y = b;
    int lx = layer_of(x->name), ly = layer_of(y->name);
    if (lx != ly) return lx < ly ? -1 : 1;
    return strcmp(x->name, y->name);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The matrices llama-quantize hands to its type rules: weights with >= 2 dims that are not
 * norms, MoE routers or position embeddings. */
static bool is_quantizable(const lq_tensor *t) {
    int n_dims = 1;
    for (int d = 1; d < LQ_MAX_DIMS; d++)
        if (t->ne[d] > 1) n_dims = d + 1;
    return ends_with(t->name, "weight") && n_dims >= 2 && !strstr(t->name, "_norm.weight") &&
           !strstr(t->name, "ffn_gate_inp.weight") && strcmp(t->name, "position_embd.weight") != 0 &&
           strcmp(t->name, "token_types.weight") != 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Mixing rules                                                                              */

typedef struct rules_ctx {
    int ftype;
    bool has_output, has_imatrix, is_70b;
    int64_t n_gqa, n_layer;
    int64_t i_attention_wv, n_attention_wv, i_ffn_down;
} rules_ctx;

static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static lq_type output_rule(const rules_ctx *c, const lq_tensor *t, lq_type type) {
    if (t->ne[0] % 256 != 0) return LQ_TYPE_Q8_0;
    return type == LQ_TYPE_Q8_0 ? type : LQ_TYPE_Q6_K;
}

static lq_type attn_v_rule(rules_ctx *c, lq_type type) {
    int f = c->ftype;
    int64_t i = c->i_attention_wv++;
    if (f == FT_Q2_K)
        type = c->n_gqa >= 4 ? LQ_TYPE_Q4_K : LQ_TYPE_Q3_K;
    else if (f == FT_Q3_K_M)
        type = i < 2 ? LQ_TYPE_Q5_K : LQ_TYPE_Q4_K;
    else if (f == FT_Q3_K_L)
        type = LQ_TYPE_Q5_K;
    else if ((f == FT_IQ4_NL || f == FT_IQ4_XS) && c->n_gqa >= 4)
        type = LQ_TYPE_Q5_K;
    else if ((f == FT_Q4_K_M || f == FT_Q5_K_M) && use_more_bits(i, c->n_attention_wv))
        type = LQ_TYPE_Q6_K;
    else if (f == FT_Q4_K_S && i < 4)
        type = LQ_TYPE_Q5_K;
    /* 70B: attn_v is 8x smaller than attn_q, more bits cost little */
    if (c->is_70b && (type == LQ_TYPE_Q3_K || type == LQ_TYPE_Q4_K)) type = LQ_TYPE_Q5_K;
    return type;
}

/* i counts ffn_down tensors (= the layer for dense models); n is the layer count. */
static lq_type ffn_down_rule(rules_ctx *c, lq_type type) {
    int f = c->ftype;
    int64_t i = c->i_ffn_down++, n = c->n_layer;
    if (f == FT_Q2_K)
        type = LQ_TYPE_Q3_K;
    else if (f == FT_Q3_K_M)
        type = i < n / 16 ? LQ_TYPE_Q5_K : LQ_TYPE_Q4_K;
    else if (f == FT_Q3_K_L)
        type = LQ_TYPE_Q5_K;
    else if (f == FT_Q4_K_M) {
        if (use_more_bits(i, n)) type = LQ_TYPE_Q6_K;
    } else if (i < n / 8 && (f == FT_IQ4_NL || f == FT_IQ4_XS) && !c->has_imatrix)
        type = LQ_TYPE_Q5_K;
    else if (f == FT_Q5_K_M && use_more_bits(i, n))
        type = LQ_TYPE_Q6_K;
    else if (f == FT_Q4_K_S && i < n / 8)
        type = LQ_TYPE_Q5_K;
    else if ((f == FT_Q4_0 || f == FT_Q5_0) && c->has_imatrix && i < n / 8)
        type = f == FT_Q4_0 ? LQ_TYPE_Q4_1 : LQ_TYPE_Q5_1;
    return type;
}

static lq_type attn_output_rule(const rules_ctx *c, lq_type type) {
    switch (c->ftype) {
    case FT_Q2_K: return LQ_TYPE_Q3_K;
    case FT_Q3_K_M: return LQ_TYPE_Q4_K;
    case FT_Q3_K_L: return LQ_TYPE_Q5_K;
    default: return type;
    }
}

static lq_type attn_qkv_rule(const rules_ctx *c, lq_type type) {
    switch (c->ftype) {
    case FT_Q3_K_M:
    case FT_Q3_K_L: return LQ_TYPE_Q4_K;
    case FT_Q4_K_M: return LQ_TYPE_Q5_K;
    case FT_Q5_K_M: return LQ_TYPE_Q6_K;
    default: return type;
    }
}

/* llama_tensor_get_type without the shape fallback (applied after the overrides). */
static lq_type rule_type(rules_ctx *c, const lq_tensor *t, lq_type base) {
    const char *name = t->name;
    if (!strcmp(name, "output.weight") || (!c->has_output && !strcmp(name, "token_embd.weight")))
        return output_rule(c, t, base);
    if (!strcmp(name, "token_embd.weight")) return base;
    if (strstr(name, "attn_v.weight")) return attn_v_rule(c, base);
    if (strstr(name, "attn_k.weight") || strstr(name, "attn_q.weight")) return base;
    if (strstr(name, "ffn_down")) return ffn_down_rule(c, base);
    if (strstr(name, "attn_output.weight")) return attn_output_rule(c, base);
    if (strstr(name, "attn_qkv.weight")) return attn_qkv_rule(c, base);
    return base;
}

/* The type to use when ne[0] is not a multiple of the block size; F16 when that does not fit
 * either. llama-quantize refuses legacy types and IQ4_NL there; we fall back to F16. */
static lq_type fallback_type(lq_type type, int64_t ne0) {
    lq_type next;
    switch (type) {
    case LQ_TYPE_Q2_K:
    case LQ_TYPE_Q3_K:
    case LQ_TYPE_IQ4_XS: next = LQ_TYPE_IQ4_NL; break;
    case LQ_TYPE_Q4_K: next = LQ_TYPE_Q5_0; break;
    case LQ_TYPE_Q5_K: next = LQ_TYPE_Q5_1; break;
    case LQ_TYPE_Q6_K: next = LQ_TYPE_Q8_0; break;
    default: next = LQ_TYPE_F16; break;
    }
    if (ne0 % lq_type_get(next)->block_size != 0) next = LQ_TYPE_F16;
    return next;
}

/* ---------------------------------------------------------------------------------------- */
/* --tensor-type overrides                                                                   */

typedef struct override {
    pcre2_code *re;
    lq_type type;
} override;

static void free_overrides(override *ov, int n) {
    for (int i = 0; ov && i < n; i++) pcre2_code_free(ov[i].re);
    free(ov);
}

static lq_status compile_overrides(const lq_plan_opts *o, override **out, lq_error *err) {
    *out = NULL;
    if (o->n_tensor_types <= 0) return LQ_OK;
    override *ov = lq_calloc((size_t)o->n_tensor_types, sizeof *ov, err, "tensor type overrides");
    if (!ov) return LQ_ERR_NOMEM;
    for (int i = 0; i < o->n_tensor_types; i++) {
        const char *spec = o->tensor_types[i], *eq = spec ? strrchr(spec, '=') : NULL;
        int type = eq ? lq_type_from_name(eq + 1) : -1;
        const lq_type_traits *tr = lq_type_get(type);
        if (!eq || eq == spec || !tr || !tr->has_codec || tr->activation_only) {
            free_overrides(ov, i);
            return lq_fail(err, LQ_ERR_INVALID, "--tensor-type '%s': expected REGEX=TYPE with a storable type",
                           spec ? spec : "(null)");
        }
        int code;
        PCRE2_SIZE offset;
        ov[i].re = pcre2_compile((PCRE2_SPTR)spec, (PCRE2_SIZE)(eq - spec), 0, &code, &offset, NULL);
        ov[i].type = (lq_type)type;
        if (!ov[i].re) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            free_overrides(ov, i);
            return lq_fail(err, LQ_ERR_INVALID, "--tensor-type '%s': bad regex at offset %zu: %s", spec,
                           (size_t)offset, (const char *)msg);
        }
    }
    *out = ov;
    return LQ_OK;
}

/* The last matching rule wins (llama-quantize's --tensor-type); -1 when none matches. */
static int override_type(const override *ov, int n, const char *name) {
    pcre2_match_data *md = n > 0 ? pcre2_match_data_create(1, NULL) : NULL;
    int found = -1;
    for (int i = 0; md && i < n; i++)
        if (pcre2_match(ov[i].re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL) >= 0) found = (int)ov[i].type;
    pcre2_match_data_free(md);
    return found;
}

/* ---------------------------------------------------------------------------------------- */
/* Plan                                                                                      */

static void init_rules(rules_ctx *c, const lq_model *m, int ftype, bool has_imatrix) {
    const lq_hparams *hp = lq_model_hparams(m);
    memset(c, 0, sizeof *c);
    c->ftype = ftype;
    c->has_imatrix = has_imatrix;
    c->has_output = lq_model_find(m, "output.weight") != NULL;
    c->n_gqa = hp->n_head_kv > 0 ? hp->n_head / hp->n_head_kv : 1;
    c->n_layer = hp->n_layer;
    c->is_70b = hp->n_layer == 80 && (hp->arch == LQ_ARCH_QWEN2 || hp->n_head != hp->n_head_kv);
    for (int64_t i = 0; i < lq_model_n_tensors(m); i++) {
        const char *name = lq_model_tensor(m, i)->name;
        if (strstr(name, "attn_v.weight") || strstr(name, "attn_qkv.weight")) c->n_attention_wv++;
    }
}

/* Type of a tensor the recipe does not touch: F32 for HF input (the converter stores 1-D
 * tensors and norms in F32), the stored type for GGUF input. */
static lq_type kept_type(const lq_model *m, const lq_tensor *t) {
    return lq_model_source_kind(m) == LQ_SOURCE_HF ? LQ_TYPE_F32 : t->type;
}

static void choose(rules_ctx *c, const lq_model *m, const lq_plan_opts *o, const override *ov,
                   lq_type base, lq_plan_entry *e, const lq_tensor *t) {
    e->quantize = is_quantizable(t);
    if (!e->quantize) {
        e->type = kept_type(m, t);
        return;
    }
    lq_type type = base;
    if (!o->pure && lq_type_get(base)->is_quantized) type = rule_type(c, t, base);
    int forced = override_type(ov, o->n_tensor_types, t->name);
    if (!strcmp(t->name, "token_embd.weight") && o->token_embd_type >= 0) forced = o->token_embd_type;
    if (!strcmp(t->name, "output.weight") && o->output_type >= 0) forced = o->output_type;
    if (forced >= 0) {
        type = (lq_type)forced;
        e->overridden = true;
    }
    if (t->ne[0] % lq_type_get(type)->block_size != 0) {
        type = fallback_type(type, t->ne[0]);
        e->fallback = true;
    }
    e->type = type;
}

/* HF checkpoints with Llama-3 RoPE scaling: the converter adds a rope_freqs.weight tensor
 * (F32, head_dim/2 divisors) that lq_quantize_model computes. */
static bool needs_rope_freqs(const lq_model *m) {
    return lq_model_source_kind(m) == LQ_SOURCE_HF && lq_model_hparams(m)->rope_scaling == LQ_ROPE_SCALING_LLAMA3 &&
           !lq_model_find(m, "rope_freqs.weight");
}

static void add_rope_freqs(const lq_model *m, lq_plan_entry *e) {
    snprintf(e->name, sizeof e->name, "rope_freqs.weight");
    e->type = e->src_type = LQ_TYPE_F32;
    e->n_dims = 1;
    e->ne[0] = lq_model_hparams(m)->head_dim / 2;
    e->ne[1] = e->ne[2] = e->ne[3] = 1;
}

static lq_status check_opt_type(int type, const char *what, lq_error *err) {
    if (type < 0) return LQ_OK;
    const lq_type_traits *tr = lq_type_get(type);
    if (!tr || !tr->has_codec || tr->activation_only)
        return lq_fail(err, LQ_ERR_INVALID, "%s: type %d cannot be written", what, type);
    return LQ_OK;
}

lq_status lq_plan_build(const lq_model *m, const lq_plan_opts *o, lq_plan *plan, lq_error *err) {
    memset(plan, 0, sizeof *plan);
    int ftype;
    lq_type base;
    lq_status st = lq_preset_lookup(o->preset, &ftype, &base, err);
    if (!st) st = check_opt_type(o->output_type, "--output-tensor-type", err);
    if (!st) st = check_opt_type(o->token_embd_type, "--token-embedding-type", err);
    if (st) return st;
    override *ov = NULL;
    if ((st = compile_overrides(o, &ov, err))) return st;
    int64_t n = lq_model_n_tensors(m);
    plan->entries = lq_calloc((size_t)n + 1, sizeof *plan->entries, err, "the plan");
    if (!plan->entries) {
        free_overrides(ov, o->n_tensor_types);
        return LQ_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) {
        const lq_tensor *t = lq_model_tensor(m, i);
        lq_plan_entry *e = &plan->entries[i];
        snprintf(e->name, sizeof e->name, "%s", t->name);
        e->src_type = t->type;
        e->n_dims = t->n_dims;
        memcpy(e->ne, t->ne, sizeof e->ne);
    }
    if (needs_rope_freqs(m)) add_rope_freqs(m, &plan->entries[n++]);
    qsort(plan->entries, (size_t)n, sizeof *plan->entries, cmp_entries);
    plan->n_entries = n;
    plan->ftype = ftype;
    /* the counters (attn_v, ffn_down) advance in file order, as in llama-quantize */
    rules_ctx c;
    init_rules(&c, m, ftype, o->has_imatrix);
    for (int64_t i = 0; i < n; i++) {
        const lq_tensor *t = lq_model_find(m, plan->entries[i].name);
        if (t) choose(&c, m, o, ov, base, &plan->entries[i], t);
    }
    free_overrides(ov, o->n_tensor_types);
    return LQ_OK;
}

void lq_plan_free(lq_plan *plan) {
    if (!plan) return;
    free(plan->entries);
    memset(plan, 0, sizeof *plan);
}

const lq_plan_entry *lq_plan_find(const lq_plan *plan, const char *name) {
    for (int64_t i = 0; i < plan->n_entries; i++)
        if (!strcmp(plan->entries[i].name, name)) return &plan->entries[i];
    return NULL;
}
