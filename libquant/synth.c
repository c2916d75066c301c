/* synth.c — random Llama-shaped checkpoints for reproducible benchmarks and tests.
 *
 * Every tensor's values come from its own counter-based random stream (seed, tensor index),
 * so a tensor can be generated alone, and the HF and GGUF layouts of one seed hold the same
 * model: GGUF Q/K rows are the HF rows in llama.cpp's interleaved RoPE order. */
#include "internal.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

lq_status lq_synth_shape(const char *name, lq_synth_opts *o, lq_error *err) {
    memset(o, 0, sizeof *o);
    o->rope_theta = 10000.0f;
    o->rms_eps = 1e-5f;
    o->type = LQ_TYPE_F32;
    o->seed = 1;
    if (!strcmp(name, "tiny")) { /* every width a multiple of 256: all K-quants apply */
        o->n_vocab = 512, o->n_embd = 256, o->n_layer = 2, o->n_head = 4, o->n_head_kv = 2;
        o->n_ff = 512, o->n_ctx_train = 512;
    } else if (!strcmp(name, "1.1b")) { /* TinyLlama-1.1B widths, 16 layers */
        o->n_vocab = 32000, o->n_embd = 2048, o->n_layer = 16, o->n_head = 32, o->n_head_kv = 8;
        o->n_ff = 8192, o->n_ctx_train = 2048;
    } else {
        return lq_fail(err, LQ_ERR_INVALID, "synth: unknown shape '%s' (tiny, 1.1b)", name);
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * Tensors and their values
 * ------------------------------------------------------------------------------------- */

enum { K_EMBD, K_NORM, K_Q, K_K, K_V, K_O, K_GATE, K_UP, K_DOWN, K_OUT, K_QB, K_KB, K_VB, K_OB, K_ROPE };

typedef struct synth_tensor {
    char gguf_name[LQ_MAX_NAME];
    char hf_name[96];
    int kind;
    int layer;
    int64_t n_in, n_out; /* n_out = 1 for vectors */
    lq_type type;        /* as stored in the GGUF file */
    uint64_t index;      /* random stream id */
} synth_tensor;

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Row r (HF order) of a tensor: approximately normal values (sum of four uniforms), scaled so
 * products keep unit-ish variance; norm weights around 1. */
static void synth_row(const lq_synth_opts *o, const synth_tensor *t, int64_t r, float *out) {
    uint64_t state = o->seed * 0x2545F4914F6CDD1Dull ^ (t->index << 40) ^ (uint64_t)r;
    splitmix64(&state);
    bool is_bias = t->kind == K_QB || t->kind == K_KB || t->kind == K_VB || t->kind == K_OB;
    float std = t->kind == K_NORM ? 0.1f : t->kind == K_EMBD ? 1.0f : is_bias ? 0.5f : 1.0f / sqrtf((float)t->n_in);
    float mean = t->kind == K_NORM ? 1.0f : 0.0f;
    for (int64_t i = 0; i < t->n_in; i++) {
        uint64_t u = splitmix64(&state);
        float sum = (float)(u & 0xFFFF) + (float)((u >> 16) & 0xFFFF) + (float)((u >> 32) & 0xFFFF) +
                    (float)(u >> 48);
        float z = (sum / 65536.0f - 2.0f) * 1.7320508f; /* mean 0, variance 1 */
        out[i] = mean + std * z;
    }
}

/* The HF row stored at GGUF row r of a Q or K matrix with n_heads heads. */
static int64_t hf_row_of_gguf_row(int64_t r, int64_t head_dim) {
    int64_t h = r / head_dim, j = r % head_dim, half = head_dim / 2;
    return h * head_dim + (j % 2 == 0 ? j / 2 : half + j / 2);
}

static bool use_more_bits(int64_t i, int64_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* llama-quantize's choice for a tensor under a base type (output head and the _M rules). */
static lq_type choose_type(const lq_synth_opts *o, const synth_tensor *t) {
    if (t->n_out == 1) return LQ_TYPE_F32; /* norms, biases, rope factors */
    lq_type type = o->type;
    const lq_type_traits *base = lq_type_get(o->type);
    if (o->llama_mix && base->is_quantized) {
        bool is_out = t->kind == K_OUT || (t->kind == K_EMBD && o->tie_embeddings);
        if (is_out && o->type != LQ_TYPE_Q8_0) type = LQ_TYPE_Q6_K;
        bool k_m = o->type == LQ_TYPE_Q4_K || o->type == LQ_TYPE_Q5_K;
        if (k_m && (t->kind == K_V || t->kind == K_DOWN) && use_more_bits(t->layer, o->n_layer))
            type = LQ_TYPE_Q6_K;
    }
    if (t->n_in % lq_type_get(type)->block_size != 0) type = LQ_TYPE_F16;
    return type;
}

static int list_tensors(const lq_synth_opts *o, bool gguf, synth_tensor *ts) {
    int n = 0;
    int64_t hd = o->n_embd / o->n_head, q_dim = o->n_head * hd, kv_dim = o->n_head_kv * hd;
#define ADD(kind_, layer_, gg_, hf_, n_in_, n_out_)                                             \
    do {                                                                                        \
        synth_tensor *t_ = &ts[n];                                                              \
        memset(t_, 0, sizeof *t_);                                                              \
        t_->kind = kind_, t_->layer = layer_, t_->n_in = n_in_, t_->n_out = n_out_;             \
        t_->index = (uint64_t)n;                                                                \
        /* top-level names use "%.0d" with 0, which prints nothing */                          \
        snprintf(t_->gguf_name, sizeof t_->gguf_name, gg_, layer_ < 0 ? 0 : layer_);            \
        snprintf(t_->hf_name, sizeof t_->hf_name, hf_, layer_ < 0 ? 0 : layer_);                \
        t_->type = choose_type(o, t_);                                                          \
        n++;                                                                                    \
    } while (0)
    ADD(K_EMBD, -1, "token_embd.weight%.0d", "model.embed_tokens.weight%.0d", o->n_embd, o->n_vocab);
    for (int l = 0; l < o->n_layer; l++) {
        ADD(K_NORM, l, "blk.%d.attn_norm.weight", "model.layers.%d.input_layernorm.weight", o->n_embd, 1);
        ADD(K_Q, l, "blk.%d.attn_q.weight", "model.layers.%d.self_attn.q_proj.weight", o->n_embd, q_dim);
        ADD(K_K, l, "blk.%d.attn_k.weight", "model.layers.%d.self_attn.k_proj.weight", o->n_embd, kv_dim);
        ADD(K_V, l, "blk.%d.attn_v.weight", "model.layers.%d.self_attn.v_proj.weight", o->n_embd, kv_dim);
        if (o->qkv_bias) {
            ADD(K_QB, l, "blk.%d.attn_q.bias", "model.layers.%d.self_attn.q_proj.bias", q_dim, 1);
            ADD(K_KB, l, "blk.%d.attn_k.bias", "model.layers.%d.self_attn.k_proj.bias", kv_dim, 1);
            ADD(K_VB, l, "blk.%d.attn_v.bias", "model.layers.%d.self_attn.v_proj.bias", kv_dim, 1);
        }
        ADD(K_O, l, "blk.%d.attn_output.weight", "model.layers.%d.self_attn.o_proj.weight", q_dim, o->n_embd);
        if (o->qkv_bias) /* HF's attention_bias covers o_proj too */
            ADD(K_OB, l, "blk.%d.attn_output.bias", "model.layers.%d.self_attn.o_proj.bias", o->n_embd, 1);
        ADD(K_NORM, l, "blk.%d.ffn_norm.weight", "model.layers.%d.post_attention_layernorm.weight", o->n_embd, 1);
        ADD(K_GATE, l, "blk.%d.ffn_gate.weight", "model.layers.%d.mlp.gate_proj.weight", o->n_embd, o->n_ff);
        ADD(K_UP, l, "blk.%d.ffn_up.weight", "model.layers.%d.mlp.up_proj.weight", o->n_embd, o->n_ff);
        ADD(K_DOWN, l, "blk.%d.ffn_down.weight", "model.layers.%d.mlp.down_proj.weight", o->n_ff, o->n_embd);
    }
    ADD(K_NORM, -1, "output_norm.weight%.0d", "model.norm.weight%.0d", o->n_embd, 1);
    if (o->rope_llama3 && gguf) /* GGUF carries Llama-3 scaling as this tensor; HF in config.json */
        ADD(K_ROPE, -1, "rope_freqs.weight%.0d", "rope_freqs%.0d", o->n_embd / o->n_head / 2, 1);
    if (!o->tie_embeddings) ADD(K_OUT, -1, "output.weight%.0d", "lm_head.weight%.0d", o->n_embd, o->n_vocab);
#undef ADD
    return n;
}

/* All rows of a tensor in float, in the requested row order (GGUF permutes Q and K). */
/* llama.cpp's rope_freqs: per frequency pair, the divisor Llama-3 scaling applies. */
static void llama3_rope_divisors(const lq_synth_opts *o, int64_t hd, float *out) {
    double factor = o->rope_factor, lo = o->rope_low_freq_factor, hi = o->rope_high_freq_factor;
    double orig = (double)o->rope_orig_ctx;
    for (int64_t i = 0; i < hd / 2; i++) {
        double wavelen = 2.0 * M_PI / pow(o->rope_theta, -2.0 * (double)i / (double)hd);
        if (wavelen < orig / hi) {
            out[i] = 1.0f;
        } else if (wavelen > orig / lo) {
            out[i] = (float)factor;
        } else {
            double smooth = (orig / wavelen - lo) / (hi - lo);
            out[i] = (float)(1.0 / ((1.0 - smooth) / factor + smooth));
        }
    }
}

static void synth_matrix(const lq_synth_opts *o, const synth_tensor *t, bool gguf_order, float *out) {
    int64_t hd = o->n_embd / o->n_head;
    if (t->kind == K_ROPE) {
        llama3_rope_divisors(o, hd, out);
        return;
    }
    if ((t->kind == K_QB || t->kind == K_KB) && gguf_order) { /* bias elements follow Q/K rows */
        float *hf = (float *)malloc((size_t)t->n_in * sizeof(float));
        if (!hf) return;
        synth_row(o, t, 0, hf);
        for (int64_t r = 0; r < t->n_in; r++) out[r] = hf[hf_row_of_gguf_row(r, hd)];
        free(hf);
        return;
    }
    for (int64_t r = 0; r < t->n_out; r++) {
        int64_t src = r;
        if (gguf_order && (t->kind == K_Q || t->kind == K_K)) src = hf_row_of_gguf_row(r, hd);
        synth_row(o, t, src, out + r * t->n_in);
    }
}

static lq_status check_opts(const lq_synth_opts *o, lq_error *err) {
    const lq_type_traits *tr = lq_type_get(o->type);
    if (o->n_vocab <= 0 || o->n_embd <= 0 || o->n_layer <= 0 || o->n_head <= 0 || o->n_head_kv <= 0 ||
        o->n_ff <= 0 || o->n_embd % o->n_head != 0 || (o->n_embd / o->n_head) % 2 != 0 ||
        o->n_head % o->n_head_kv != 0 || o->n_layer > 100000)
        return lq_fail(err, LQ_ERR_INVALID,
                       "synth: inconsistent shape (vocab %lld, embd %lld, layers %lld, heads %lld/%lld, ffn %lld)",
                       (long long)o->n_vocab, (long long)o->n_embd, (long long)o->n_layer,
                       (long long)o->n_head, (long long)o->n_head_kv, (long long)o->n_ff);
    if (!tr || !tr->has_codec || tr->activation_only)
        return lq_fail(err, LQ_ERR_INVALID, "synth: type %d cannot be written", (int)o->type);
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * GGUF
 * ------------------------------------------------------------------------------------- */

static int ftype_of(const lq_synth_opts *o) {
    switch (o->type) {
    case LQ_TYPE_F32: return 0;
    case LQ_TYPE_F16: return 1;
    case LQ_TYPE_Q4_0: return 2;
    case LQ_TYPE_Q4_1: return 3;
    case LQ_TYPE_Q8_0: return 7;
    case LQ_TYPE_Q5_0: return 8;
    case LQ_TYPE_Q5_1: return 9;
    case LQ_TYPE_Q2_K: return 10;
    case LQ_TYPE_Q3_K: return 12;
    case LQ_TYPE_Q4_K: return o->llama_mix ? 15 : 14;
    case LQ_TYPE_Q5_K: return o->llama_mix ? 17 : 16;
    case LQ_TYPE_Q6_K: return 18;
    case LQ_TYPE_IQ4_NL: return 25;
    case LQ_TYPE_IQ4_XS: return 30;
    case LQ_TYPE_BF16: return 32;
    default: return 0;
    }
}

/* A SentencePiece-shaped vocabulary (<unk>, <s>, </s>, byte tokens, then filler) so tools that
 * expect a tokenizer can load the file. */
static lq_status write_vocab(lq_gguf_writer *w, const lq_synth_opts *o, lq_error *err) {
    int64_t n = o->n_vocab;
    lq_str *strs = (lq_str *)lq_calloc((size_t)n, sizeof *strs, err, "synthetic vocabulary");
    char *text = (char *)lq_malloc((size_t)n * 16, err, "synthetic vocabulary");
    float *scores = (float *)lq_malloc((size_t)n * sizeof(float), err, "synthetic vocabulary");
    int32_t *types = (int32_t *)lq_malloc((size_t)n * sizeof(int32_t), err, "synthetic vocabulary");
    lq_status st = LQ_ERR_NOMEM;
    if (!strs || !text || !scores || !types) goto done;
    for (int64_t i = 0; i < n; i++) {
        char *p = text + i * 16;
        if (i == 0) snprintf(p, 16, "<unk>");
        else if (i == 1) snprintf(p, 16, "<s>");
        else if (i == 2) snprintf(p, 16, "</s>");
        else if (i < 3 + 256 && n >= 3 + 256) snprintf(p, 16, "<0x%02X>", (unsigned)(i - 3));
        else snprintf(p, 16, "tok%lld", (long long)i);
        strs[i].ptr = p;
        strs[i].len = strlen(p);
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : (i < 259 && n >= 259) ? 6 : 1;
    }
    if ((st = lq_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama", 5, err))) goto done;
    if ((st = lq_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, (uint64_t)n, err))) goto done;
    if ((st = lq_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LQ_GGUF_FLOAT32, scores, (uint64_t)n, err))) goto done;
    if ((st = lq_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LQ_GGUF_INT32, types, (uint64_t)n, err))) goto done;
    if ((st = lq_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1, err))) goto done;
    if ((st = lq_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2, err))) goto done;
    if ((st = lq_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0, err))) goto done;
    if ((st = lq_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true, err))) goto done;
    st = lq_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false, err);
done:
    free(strs);
    free(text);
    free(scores);
    free(types);
    return st;
}

static lq_status write_gguf_keys(lq_gguf_writer *w, const lq_synth_opts *o, lq_error *err) {
    lq_status st;
    uint32_t hd = (uint32_t)(o->n_embd / o->n_head);
    if ((st = lq_gguf_writer_set_str(w, "general.architecture", "llama", 5, err))) return st;
    if ((st = lq_gguf_writer_set_str(w, "general.name", "synthetic", 9, err))) return st;
    if ((st = lq_gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype_of(o), err))) return st;
    if ((st = lq_gguf_writer_set_u32(w, "general.quantization_version", 2, err))) return st;
    struct { const char *key; uint32_t v; } u32s[] = {
        {"llama.context_length", (uint32_t)o->n_ctx_train},
        {"llama.embedding_length", (uint32_t)o->n_embd},
        {"llama.block_count", (uint32_t)o->n_layer},
        {"llama.feed_forward_length", (uint32_t)o->n_ff},
        {"llama.attention.head_count", (uint32_t)o->n_head},
        {"llama.attention.head_count_kv", (uint32_t)o->n_head_kv},
        {"llama.rope.dimension_count", hd},
        {"llama.vocab_size", (uint32_t)o->n_vocab},
    };
    for (size_t i = 0; i < sizeof u32s / sizeof u32s[0]; i++)
        if ((st = lq_gguf_writer_set_u32(w, u32s[i].key, u32s[i].v, err))) return st;
    if ((st = lq_gguf_writer_set_f32(w, "llama.rope.freq_base", o->rope_theta, err))) return st;
    if ((st = lq_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", o->rms_eps, err))) return st;
    return write_vocab(w, o, err);
}

static lq_status encode_rows(const lq_synth_opts *o, lq_type type, const float *src, void *dst,
                             int64_t n_rows, int64_t n_in, lq_error *err) {
    size_t n = (size_t)n_rows * (size_t)n_in;
    switch (type) {
    case LQ_TYPE_F32: memcpy(dst, src, n * sizeof(float)); return LQ_OK;
    case LQ_TYPE_F16: lq_convert_fp32_to_fp16(src, (uint16_t *)dst, n); return LQ_OK;
    case LQ_TYPE_BF16: lq_convert_fp32_to_bf16(src, (uint16_t *)dst, n); return LQ_OK;
    default: return lq_quantize_rows_mt(type, src, dst, n_rows, n_in, NULL, o->n_threads, err);
    }
}

static lq_status write_gguf(const char *path, const lq_synth_opts *o, synth_tensor *ts, int n,
                            lq_error *err) {
    lq_gguf_writer *w = NULL;
    float *vals = NULL;
    void *enc = NULL;
    lq_status st = lq_gguf_writer_open(path, &w, err);
    if (st) return st;
    if ((st = write_gguf_keys(w, o, err))) goto fail;
    int64_t max_elems = 0;
    for (int i = 0; i < n; i++) {
        int64_t ne[2] = {ts[i].n_in, ts[i].n_out};
        if ((st = lq_gguf_writer_add_tensor(w, ts[i].gguf_name, ts[i].n_out > 1 ? 2 : 1, ne, ts[i].type, err)))
            goto fail;
        if (ts[i].n_in * ts[i].n_out > max_elems) max_elems = ts[i].n_in * ts[i].n_out;
    }
    vals = (float *)lq_malloc((size_t)max_elems * sizeof(float), err, "synthetic tensor");
    enc = lq_malloc((size_t)max_elems * sizeof(float), err, "synthetic tensor");
    if (!vals || !enc) { st = LQ_ERR_NOMEM; goto fail; }
    for (int i = 0; i < n; i++) {
        if (lq_interrupted) { st = lq_fail(err, LQ_ERR_INTERRUPTED, "%s: interrupted", path); goto fail; }
        synth_matrix(o, &ts[i], true, vals);
        if ((st = encode_rows(o, ts[i].type, vals, enc, ts[i].n_out, ts[i].n_in, err))) goto fail;
        if ((st = lq_gguf_writer_write(w, enc, lq_row_size(ts[i].type, ts[i].n_in) * (size_t)ts[i].n_out, err)))
            goto fail;
    }
    free(vals);
    free(enc);
    return lq_gguf_writer_finish(w, err);
fail:
    free(vals);
    free(enc);
    lq_gguf_writer_abort(w);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Hugging Face directory: config.json + model.safetensors
 * ------------------------------------------------------------------------------------- */

static lq_status write_config(const char *dir, const lq_synth_opts *o, lq_error *err) {
    json_t *c = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string("LlamaForCausalLM"));
    json_object_set_new(c, "architectures", arch);
    json_object_set_new(c, "model_type", json_string("llama"));
    json_object_set_new(c, "vocab_size", json_integer(o->n_vocab));
    json_object_set_new(c, "hidden_size", json_integer(o->n_embd));
    json_object_set_new(c, "intermediate_size", json_integer(o->n_ff));
    json_object_set_new(c, "num_hidden_layers", json_integer(o->n_layer));
    json_object_set_new(c, "num_attention_heads", json_integer(o->n_head));
    json_object_set_new(c, "num_key_value_heads", json_integer(o->n_head_kv));
    json_object_set_new(c, "max_position_embeddings", json_integer(o->n_ctx_train));
    json_object_set_new(c, "rms_norm_eps", json_real(o->rms_eps));
    json_object_set_new(c, "rope_theta", json_real(o->rope_theta));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(o->tie_embeddings));
    json_object_set_new(c, "attention_bias", json_boolean(o->qkv_bias));
    if (o->rope_llama3)
        json_object_set_new(c, "rope_scaling",
                            json_pack("{s:s,s:f,s:f,s:f,s:I}", "rope_type", "llama3", "factor", (double)o->rope_factor,
                                      "low_freq_factor", (double)o->rope_low_freq_factor, "high_freq_factor",
                                      (double)o->rope_high_freq_factor, "original_max_position_embeddings",
                                      (json_int_t)o->rope_orig_ctx));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "bos_token_id", json_integer(1));
    json_object_set_new(c, "eos_token_id", json_integer(2));
    json_object_set_new(c, "torch_dtype", json_string(o->type == LQ_TYPE_F32 ? "float32"
                                                      : o->type == LQ_TYPE_F16 ? "float16" : "bfloat16"));
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    int rc = json_dump_file(c, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(c);
    if (rc != 0) return lq_fail(err, LQ_ERR_IO, "%s: cannot write", path);
    return LQ_OK;
}

static const char *st_dtype(lq_type t) {
    return t == LQ_TYPE_F32 ? "F32" : t == LQ_TYPE_F16 ? "F16" : "BF16";
}

/* The safetensors header: 8-byte length, then JSON padded with spaces to 8 bytes. */
static char *st_header(const lq_synth_opts *o, const synth_tensor *ts, int n, size_t *len,
                       lq_error *err) {
    json_t *h = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        lq_type type = ts[i].n_out == 1 ? LQ_TYPE_F32 : o->type;
        uint64_t bytes = (uint64_t)ts[i].n_in * (uint64_t)ts[i].n_out * (type == LQ_TYPE_F32 ? 4 : 2);
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(st_dtype(type)));
        json_t *shape = json_array();
        if (ts[i].n_out > 1) json_array_append_new(shape, json_integer(ts[i].n_out));
        json_array_append_new(shape, json_integer(ts[i].n_in));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)at));
        json_array_append_new(offs, json_integer((json_int_t)(at + bytes)));
        json_object_set_new(e, "data_offsets", offs);
        json_object_set_new(h, ts[i].hf_name, e);
        at += bytes;
    }
    char *text = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!text) {
        lq_fail(err, LQ_ERR_NOMEM, "synth: cannot build the safetensors header");
        return NULL;
    }
    size_t n_text = strlen(text), padded = (n_text + 7) / 8 * 8;
    char *buf = (char *)lq_malloc(8 + padded, err, "safetensors header");
    if (buf) {
        uint64_t le = padded; /* little-endian host (x86-64) */
        memcpy(buf, &le, 8);
        memcpy(buf + 8, text, n_text);
        memset(buf + 8 + n_text, ' ', padded - n_text);
        *len = 8 + padded;
    }
    free(text);
    return buf;
}

static lq_status write_safetensors(const char *dir, const lq_synth_opts *o, synth_tensor *ts, int n,
                                   lq_error *err) {
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    size_t header_len = 0;
    char *header = st_header(o, ts, n, &header_len, err);
    if (!header) return err ? err->code : LQ_ERR_NOMEM;
    FILE *f = fopen(tmp, "wb");
    lq_status st = LQ_OK;
    float *vals = NULL;
    if (!f) {
        free(header);
        return lq_fail(err, LQ_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    }
    bool ok = fwrite(header, 1, header_len, f) == header_len;
    free(header);
    int64_t max_elems = 0;
    for (int i = 0; i < n; i++)
        if (ts[i].n_in * ts[i].n_out > max_elems) max_elems = ts[i].n_in * ts[i].n_out;
    vals = (float *)lq_malloc((size_t)max_elems * sizeof(float) * 2, err, "synthetic tensor");
    if (!vals) { st = LQ_ERR_NOMEM; goto done; }
    for (int i = 0; ok && i < n; i++) {
        size_t count = (size_t)(ts[i].n_in * ts[i].n_out);
        lq_type type = ts[i].n_out == 1 ? LQ_TYPE_F32 : o->type;
        synth_matrix(o, &ts[i], false, vals);
        void *enc = vals + max_elems;
        if ((st = encode_rows(o, type, vals, enc, ts[i].n_out, ts[i].n_in, err))) goto done;
        size_t bytes = count * (type == LQ_TYPE_F32 ? 4 : 2);
        ok = fwrite(enc, 1, bytes, f) == bytes;
    }
    if (!ok) st = lq_fail(err, LQ_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
done:
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        if (!st) st = lq_fail(err, LQ_ERR_IO, "%s: cannot flush: %s", tmp, strerror(errno));
    }
    fclose(f);
    free(vals);
    if (!st && rename(tmp, path) != 0) st = lq_fail(err, LQ_ERR_IO, "%s: cannot rename: %s", tmp, strerror(errno));
    if (st) unlink(tmp);
    return st;
}

lq_status lq_synth_write(const char *path, const lq_synth_opts *o, lq_error *err) {
    lq_status st = check_opts(o, err);
    if (st) return st;
    int max_tensors = 4 + 13 * (int)o->n_layer; /* 9 per layer, 4 more with biases */
    synth_tensor *ts = (synth_tensor *)lq_calloc((size_t)max_tensors, sizeof *ts, err, "tensor list");
    if (!ts) return err ? err->code : LQ_ERR_NOMEM;
    size_t len = strlen(path);
    bool gguf = len >= 5 && !strcmp(path + len - 5, ".gguf");
    int n = list_tensors(o, gguf, ts);
    if (gguf) {
        st = write_gguf(path, o, ts, n, err);
    } else if (o->type != LQ_TYPE_F32 && o->type != LQ_TYPE_F16 && o->type != LQ_TYPE_BF16) {
        st = lq_fail(err, LQ_ERR_INVALID, "%s: a safetensors checkpoint holds f32, f16 or bf16 only "
                     "(write a .gguf for %s)", path, lq_type_get(o->type)->name);
    } else if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        st = lq_fail(err, LQ_ERR_IO, "%s: cannot create directory: %s", path, strerror(errno));
    } else if (!(st = write_config(path, o, err))) {
        st = write_safetensors(path, o, ts, n, err);
    }
    free(ts);
    return st;
}
