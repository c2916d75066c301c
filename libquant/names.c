/* names.c — Hugging Face (Llama/Mistral/Qwen2) tensor names → canonical GGUF names, as
 * llama.cpp's converter names them. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

typedef struct name_pair {
    const char *hf, *gguf;
} name_pair;

/* Whole-model tensors. */
static const name_pair global_names[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

/* Per-layer tensors: model.layers.N.<hf> → blk.N.<gguf>. */
static const name_pair layer_names[] = {
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_proj.bias", "ffn_gate.bias"},
    {"mlp.up_proj.bias", "ffn_up.bias"},
    {"mlp.down_proj.bias", "ffn_down.bias"},
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
};

/* Buffers some checkpoints save that carry no weights (recomputed from the config). */
static const char *const ignored_layer_suffixes[] = {
    "self_attn.rotary_emb.inv_freq",
};

#define LAYER_PREFIX "model.layers."
#define MAX_LAYER_DIGITS 6

/* Parses "N." after the layer prefix; returns the rest of the name or NULL. Rejects leading
 * zeros so each layer has exactly one spelling. */
static const char *parse_layer(const char *p, long *layer) {
    long v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        if (++digits > MAX_LAYER_DIGITS) return NULL;
        v = v * 10 + (*p++ - '0');
    }
    if (digits == 0 || *p != '.' || (digits > 1 && p[-digits] == '0')) return NULL;
    *layer = v;
    return p + 1;
}

lq_status lq_hf_to_gguf_name(const char *hf_name, char out[LQ_MAX_NAME], lq_error *err) {
    out[0] = '\0';
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (!strcmp(hf_name, global_names[i].hf)) {
            snprintf(out, LQ_MAX_NAME, "%s", global_names[i].gguf);
            return LQ_OK;
        }
    long layer;
    const char *rest = strncmp(hf_name, LAYER_PREFIX, strlen(LAYER_PREFIX)) == 0
                           ? parse_layer(hf_name + strlen(LAYER_PREFIX), &layer)
                           : NULL;
    if (rest) {
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
            if (!strcmp(rest, layer_names[i].hf)) {
                snprintf(out, LQ_MAX_NAME, "blk.%ld.%s", layer, layer_names[i].gguf);
                return LQ_OK;
            }
        for (size_t i = 0; i < sizeof ignored_layer_suffixes / sizeof ignored_layer_suffixes[0]; i++)
            if (!strcmp(rest, ignored_layer_suffixes[i])) return LQ_OK; /* out stays "" */
    }
    return lq_fail(err, LQ_ERR_UNSUPPORTED, "tensor '%s' has no GGUF name (not a Llama/Mistral/Qwen2 weight)",
                   hf_name);
}
