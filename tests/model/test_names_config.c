/* test_names_config.c — HF → GGUF tensor names, and config.json parsing (good configs of each
 * architecture with their defaults, and the errors a bad config must give). */
#include "test.h"

static void expect_name(const char *hf, const char *want) {
    char out[LQ_MAX_NAME];
    lq_error err;
    lq_status rc = lq_hf_to_gguf_name(hf, out, &err);
    CHECKF(rc == LQ_OK && !strcmp(out, want), "%s → '%s' (rc %d), want '%s'", hf, out, rc, want);
}

static void expect_unknown(const char *hf) {
    char out[LQ_MAX_NAME];
    lq_error err;
    lq_status rc = lq_hf_to_gguf_name(hf, out, &err);
    CHECKF(rc == LQ_ERR_UNSUPPORTED, "%s: rc %d", hf, rc);
    CHECKF(rc == LQ_OK || strstr(err.msg, hf) != NULL, "message does not name %s: %s", hf, err.msg);
}

static void test_names(void) {
    /* The mapping table from the reference notes (section g), written out by hand. */
    static const char *const table[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
        {"model.layers.0.self_attn.q_proj.weight", "blk.0.attn_q.weight"},
        {"model.layers.0.self_attn.k_proj.weight", "blk.0.attn_k.weight"},
        {"model.layers.0.self_attn.v_proj.weight", "blk.0.attn_v.weight"},
        {"model.layers.0.self_attn.o_proj.weight", "blk.0.attn_output.weight"},
        {"model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias"},
        {"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"},
        {"model.layers.3.self_attn.v_proj.bias", "blk.3.attn_v.bias"},
        {"model.layers.3.self_attn.o_proj.bias", "blk.3.attn_output.bias"},
        {"model.layers.17.mlp.gate_proj.weight", "blk.17.ffn_gate.weight"},
        {"model.layers.17.mlp.up_proj.weight", "blk.17.ffn_up.weight"},
        {"model.layers.17.mlp.down_proj.weight", "blk.17.ffn_down.weight"},
        {"model.layers.2.mlp.down_proj.bias", "blk.2.ffn_down.bias"},
        {"model.layers.121.input_layernorm.weight", "blk.121.attn_norm.weight"},
        {"model.layers.10.post_attention_layernorm.weight", "blk.10.ffn_norm.weight"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) expect_name(table[i][0], table[i][1]);
    expect_name("model.layers.5.self_attn.rotary_emb.inv_freq", ""); /* skipped, not an error */
    expect_unknown("model.layers.0.self_attn.qkv_proj.weight");
    expect_unknown("model.layers.x.mlp.up_proj.weight");
    expect_unknown("model.layers.01.mlp.up_proj.weight");
    expect_unknown("model.layers..mlp.up_proj.weight");
    expect_unknown("model.layers.1234567890.mlp.up_proj.weight");
    expect_unknown("model.embed_tokens.weight.extra");
    expect_unknown("transformer.h.0.attn.c_attn.weight");
    expect_unknown("");
}

static lq_status parse(const char *json, lq_hparams *hp, lq_error *err) {
    lq_error_clear(err);
    return lq_hparams_from_config_json(json, strlen(json), "cfg/config.json", hp, err);
}

static void expect_cfg_error(const char *json, lq_status code, const char *fragment) {
    lq_hparams hp;
    lq_error err;
    lq_status rc = parse(json, &hp, &err);
    CHECKF(rc == code, "got %s want %s: %s", lq_status_name(rc), lq_status_name(code), err.msg);
    CHECKF(strstr(err.msg, "cfg/config.json") != NULL, "message does not name the file: %s", err.msg);
    CHECKF(strstr(err.msg, fragment) != NULL, "message lacks '%s': %s", fragment, err.msg);
}

#define BASE "\"hidden_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, " \
             "\"intermediate_size\": 96, \"vocab_size\": 100"

static void test_config_good(void) {
    lq_hparams hp;
    lq_error err;
    /* Defaults: kv heads = heads, head_dim = hidden/heads, theta 10000, untied, no biases. */
    CHECK_OK(parse("{\"model_type\": \"llama\", " BASE "}", &hp, &err), &err);
    CHECK(hp.arch == LQ_ARCH_LLAMA && !strcmp(hp.arch_name, "llama"));
    CHECK(hp.n_embd == 64 && hp.n_layer == 2 && hp.n_head == 4 && hp.n_head_kv == 4 && hp.head_dim == 16);
    CHECK(hp.n_ff == 96 && hp.n_vocab == 100 && hp.rope_theta == 10000.0f && hp.n_ctx_train == 2048);
    CHECK(!hp.tie_embeddings && !hp.attn_bias && !hp.mlp_bias && hp.rope_scaling == LQ_ROPE_SCALING_NONE);
    CHECK(hp.bos_token_id == -1 && hp.eos_token_id == -1 && hp.sliding_window == 0);

    /* Llama 3.1 style: explicit head_dim, llama3 rope scaling, eos list, biases. */
    CHECK_OK(parse("{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", " BASE
                   ", \"num_key_value_heads\": 2, \"head_dim\": 32, \"rope_theta\": 500000.0, "
                   "\"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": true, \"attention_bias\": true, \"mlp_bias\": true,"
                   " \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                   "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192}, "
                   "\"bos_token_id\": 128000, \"eos_token_id\": [128001, 128008], \"max_position_embeddings\": 131072}",
                   &hp, &err),
             &err);
    CHECK(hp.n_head_kv == 2 && hp.head_dim == 32 && hp.rope_theta == 500000.0f && fabsf(hp.rms_eps - 1e-5f) < 1e-12f);
    CHECK(hp.tie_embeddings && hp.attn_bias && hp.attn_out_bias && hp.mlp_bias);
    CHECK(hp.rope_scaling == LQ_ROPE_SCALING_LLAMA3 && hp.rope_factor == 8.0f && hp.rope_low_freq_factor == 1.0f);
    CHECK(hp.rope_high_freq_factor == 4.0f && hp.rope_orig_ctx == 8192 && hp.n_ctx_train == 131072);
    CHECK(hp.bos_token_id == 128000 && hp.eos_token_id == 128001);

    /* Qwen2: q/k/v biases without o bias; sliding window only when enabled. */
    CHECK_OK(parse("{\"model_type\": \"qwen2\", \"architectures\": [\"Qwen2ForCausalLM\"], " BASE
                   ", \"sliding_window\": 4096, \"use_sliding_window\": false}",
                   &hp, &err),
             &err);
    CHECK(hp.arch == LQ_ARCH_QWEN2 && hp.attn_bias && !hp.attn_out_bias && hp.sliding_window == 0);
    CHECK(hp.n_ctx_train == 32768);

    /* Mistral: sliding window, no biases. */
    CHECK_OK(parse("{\"model_type\": \"mistral\", " BASE ", \"sliding_window\": 4096, \"attention_bias\": true}", &hp,
                   &err),
             &err);
    CHECK(hp.arch == LQ_ARCH_MISTRAL && hp.sliding_window == 4096 && !hp.attn_bias);

    /* No model_type: the architectures list decides; rope_type "default" is no scaling. */
    CHECK_OK(parse("{\"architectures\": [\"MistralForCausalLM\"], " BASE ", \"rope_scaling\": {\"rope_type\": \"default\"}}",
                   &hp, &err),
             &err);
    CHECK(hp.arch == LQ_ARCH_MISTRAL && hp.rope_scaling == LQ_ROPE_SCALING_NONE);
}

static void test_config_errors(void) {
    expect_cfg_error("{\"model_type\": \"gpt2\", " BASE "}", LQ_ERR_UNSUPPORTED, "gpt2");
    expect_cfg_error("{\"model_type\": \"llama\", \"architectures\": [\"LlamaForSequenceClassification\"], " BASE "}",
                     LQ_ERR_UNSUPPORTED, "LlamaForSequenceClassification");
    expect_cfg_error("{\"architectures\": [\"GPTNeoXForCausalLM\"], " BASE "}", LQ_ERR_UNSUPPORTED,
                     "GPTNeoXForCausalLM");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}",
                     LQ_ERR_UNSUPPORTED, "yarn");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8}}",
                     LQ_ERR_FORMAT, "low_freq_factor");
    expect_cfg_error("{\"model_type\": \"llama\", \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
                     "\"intermediate_size\": 96, \"vocab_size\": 100}",
                     LQ_ERR_FORMAT, "hidden_size");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"hidden_size\": 64", LQ_ERR_FORMAT, "JSON");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"rope_theta\": 1", LQ_ERR_FORMAT, "JSON");
    expect_cfg_error("", LQ_ERR_FORMAT, "JSON");
    expect_cfg_error("[]", LQ_ERR_FORMAT, "object");
    expect_cfg_error("{" BASE "}", LQ_ERR_FORMAT, "model_type");
    expect_cfg_error("{\"model_type\": 3, " BASE "}", LQ_ERR_FORMAT, "model_type");
    expect_cfg_error("{\"model_type\": \"llama\", \"hidden_size\": \"64\", \"num_hidden_layers\": 2, "
                     "\"num_attention_heads\": 4, \"intermediate_size\": 96, \"vocab_size\": 100}",
                     LQ_ERR_FORMAT, "hidden_size");
    expect_cfg_error("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 0, "
                     "\"num_attention_heads\": 4, \"intermediate_size\": 96, \"vocab_size\": 100}",
                     LQ_ERR_FORMAT, "num_hidden_layers");
    expect_cfg_error("{\"model_type\": \"llama\", \"hidden_size\": 65, \"num_hidden_layers\": 2, "
                     "\"num_attention_heads\": 4, \"intermediate_size\": 96, \"vocab_size\": 100}",
                     LQ_ERR_FORMAT, "head_dim");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"num_key_value_heads\": 3}", LQ_ERR_FORMAT,
                     "key/value heads");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"vocab_size\": 100}", LQ_ERR_FORMAT, "duplicate");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"rms_norm_eps\": -1}", LQ_ERR_FORMAT, "rms_norm_eps");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"tie_word_embeddings\": 1}", LQ_ERR_FORMAT,
                     "tie_word_embeddings");
    expect_cfg_error("{\"model_type\": \"llama\", " BASE ", \"num_attention_heads\": 0}", LQ_ERR_FORMAT, "duplicate");
    expect_cfg_error("{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_hidden_layers\": 2, "
                     "\"num_attention_heads\": 0, \"intermediate_size\": 96, \"vocab_size\": 100}",
                     LQ_ERR_FORMAT, "num_attention_heads");
    expect_cfg_error("{\"model_type\": \"llama\", \"hidden_size\": 99999999999, \"num_hidden_layers\": 2, "
                     "\"num_attention_heads\": 4, \"intermediate_size\": 96, \"vocab_size\": 100}",
                     LQ_ERR_FORMAT, "hidden_size");
}

/* The shared configs parse to the facts the shared README states. */
static void test_shared_configs(void) {
    if (!test_shared_dir()) {
        fprintf(stderr, "note: ../shared absent, shared configs not checked\n");
        return;
    }
    const char *paths[2] = {"models/tinystories-4m/config.json", "models/tinystories-656k/config.json"};
    for (int i = 0; i < 2; i++) {
        const char *p = test_shared_path(paths[i]);
        size_t len;
        char *text = test_read_file(p, &len);
        CHECK(text != NULL);
        if (!text) continue;
        lq_hparams hp;
        lq_error err;
        CHECK_OK(lq_hparams_from_config_json(text, len, p, &hp, &err), &err);
        int64_t want_embd = i == 0 ? 256 : 128, want_layers = i == 0 ? 4 : 2, want_ff = i == 0 ? 768 : 384;
        CHECK(hp.n_embd == want_embd && hp.n_layer == want_layers && hp.n_ff == want_ff);
        CHECK(hp.n_head == 8 && hp.n_head_kv == 4 && hp.n_vocab == 2048);
        CHECK(hp.tie_embeddings == (i == 1));
        free(text);
    }
}

int main(void) {
    test_names();
    test_config_good();
    test_config_errors();
    test_shared_configs();
    TEST_DONE();
}
