/* test_model_gguf.c — the model view over generated GGUF files (written with the GGUF writer):
 * any tensor type passes through with its bytes, qwen2/mistral keys, RoPE layout per
 * architecture, tied output, extra non-block tensors, and the errors of missing keys, unsupported
 * architectures/rope scaling and wrong shapes. Also HF qwen2 and mistral directories. */
#include "st_build.h"

static const char *tmp;

typedef struct gguf_spec {
    const char *arch;
    int n_layer, e, h, kv, ff, v;
    bool tied, qkv_bias, with_rope_freqs;
    lq_type weight_type;      /* for 2-D weights whose row length allows it */
    const char *drop_key;     /* a key left out */
    const char *rope_scaling; /* <arch>.rope.scaling.type, or NULL */
    const char *bad_shape;    /* tensor written with one row too many */
} gguf_spec;

static void set_u32(lq_gguf_writer *w, const gguf_spec *s, const char *suffix, uint32_t v, lq_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    if (!s->drop_key || strcmp(s->drop_key, key) != 0) CHECK_OK(lq_gguf_writer_set_u32(w, key, v, err), err);
}

typedef struct planned {
    char name[LQ_MAX_NAME];
    int64_t ne[2];
    uint32_t n_dims;
    lq_type type;
} planned;

static int plan(const gguf_spec *s, planned *p) {
    int n = 0, hd = s->e / s->h;
#define ADD(nm, nd, a, b, t)                                         \
    do {                                                            \
        snprintf(p[n].name, sizeof p[n].name, "%s", nm);            \
        p[n].n_dims = nd;                                           \
        p[n].ne[0] = a;                                             \
        p[n].ne[1] = b;                                             \
        p[n].type = t;                                              \
        if (s->bad_shape && !strcmp(s->bad_shape, nm)) p[n].ne[1]++; \
        n++;                                                        \
    } while (0)
    lq_type wt = s->weight_type;
    ADD("token_embd.weight", 2, s->e, s->v, LQ_TYPE_Q8_0);
    if (s->with_rope_freqs) ADD("rope_freqs.weight", 1, hd / 2, 1, LQ_TYPE_F32);
    char name[LQ_MAX_NAME];
    for (int i = 0; i < s->n_layer; i++) {
#define L(suffix, nd, a, b, t)                                \
    snprintf(name, sizeof name, "blk.%d.%s", i, suffix);      \
    ADD(name, nd, a, b, t)
        L("attn_norm.weight", 1, s->e, 1, LQ_TYPE_F32);
        L("attn_q.weight", 2, s->e, s->h * hd, wt);
        L("attn_k.weight", 2, s->e, s->kv * hd, wt);
        L("attn_v.weight", 2, s->e, s->kv * hd, LQ_TYPE_F16);
        if (s->qkv_bias) {
            L("attn_q.bias", 1, s->h * hd, 1, LQ_TYPE_F32);
            L("attn_k.bias", 1, s->kv * hd, 1, LQ_TYPE_F32);
            L("attn_v.bias", 1, s->kv * hd, 1, LQ_TYPE_F32);
        }
        L("attn_output.weight", 2, s->h * hd, s->e, LQ_TYPE_BF16);
        L("ffn_norm.weight", 1, s->e, 1, LQ_TYPE_F32);
        L("ffn_gate.weight", 2, s->e, s->ff, wt);
        L("ffn_up.weight", 2, s->e, s->ff, LQ_TYPE_Q4_1);
        L("ffn_down.weight", 2, s->ff, s->e, LQ_TYPE_Q4_K);
#undef L
    }
    ADD("output_norm.weight", 1, s->e, 1, LQ_TYPE_F32);
    if (!s->tied) ADD("output.weight", 2, s->e, s->v, LQ_TYPE_Q5_0);
#undef ADD
    return n;
}

/* Writes the GGUF; tensor bytes are a counter pattern so every tensor's bytes are distinct. */
static void write_gguf(const char *path, const gguf_spec *s) {
    lq_error err;
    lq_gguf_writer *w = NULL;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    if (!w) return;
    CHECK_OK(lq_gguf_writer_set_str(w, "general.architecture", s->arch, strlen(s->arch), &err), &err);
    set_u32(w, s, "context_length", 256, &err);
    set_u32(w, s, "embedding_length", (uint32_t)s->e, &err);
    set_u32(w, s, "block_count", (uint32_t)s->n_layer, &err);
    set_u32(w, s, "feed_forward_length", (uint32_t)s->ff, &err);
    set_u32(w, s, "attention.head_count", (uint32_t)s->h, &err);
    set_u32(w, s, "attention.head_count_kv", (uint32_t)s->kv, &err);
    set_u32(w, s, "vocab_size", (uint32_t)s->v, &err);
    char key[128];
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", s->arch);
    if (!s->drop_key || strcmp(s->drop_key, key)) CHECK_OK(lq_gguf_writer_set_f32(w, key, 1e-6f, &err), &err);
    snprintf(key, sizeof key, "%s.rope.freq_base", s->arch);
    CHECK_OK(lq_gguf_writer_set_f32(w, key, 1000000.0f, &err), &err);
    if (s->rope_scaling) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", s->arch);
        CHECK_OK(lq_gguf_writer_set_str(w, key, s->rope_scaling, strlen(s->rope_scaling), &err), &err);
    }
    planned p[256];
    int n = plan(s, p);
    for (int i = 0; i < n; i++) {
        int64_t ne[2] = {p[i].ne[0], p[i].ne[1]};
        CHECK_OK(lq_gguf_writer_add_tensor(w, p[i].name, p[i].n_dims, ne, p[i].type, &err), &err);
    }
    for (int i = 0; i < n; i++) {
        size_t bytes = lq_row_size(p[i].type, p[i].ne[0]) * (size_t)p[i].ne[1];
        unsigned char *buf = calloc(1, bytes);
        for (size_t b = 0; b < bytes; b++) buf[b] = (unsigned char)(b * 7 + (size_t)i);
        CHECK_OK(lq_gguf_writer_write(w, buf, bytes, &err), &err);
        free(buf);
    }
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
}

static const gguf_spec base = {.arch = "llama", .n_layer = 2, .e = 64, .h = 4, .kv = 2, .ff = 256, .v = 40,
                               .weight_type = LQ_TYPE_Q4_0};

static lq_status open_spec(const char *name, const gguf_spec *s, lq_model **m, lq_error *err, char *path,
                           size_t path_size) {
    snprintf(path, path_size, "%s/%s.gguf", tmp, name);
    write_gguf(path, s);
    lq_error_clear(err);
    return lq_model_open(path, m, err);
}

static void test_types_pass_through(void) {
    char path[4096];
    lq_model *m = NULL;
    lq_error err;
    gguf_spec s = base;
    s.with_rope_freqs = true;
    CHECK_OK(open_spec("llama_mixed", &s, &m, &err, path, sizeof path), &err);
    if (!m) return;
    const lq_hparams *hp = lq_model_hparams(m);
    CHECK(hp->arch == LQ_ARCH_LLAMA && hp->n_layer == 2 && hp->n_embd == 64 && hp->n_head_kv == 2);
    CHECK(hp->head_dim == 16 && hp->n_ff == 256 && hp->n_vocab == 40 && hp->rope_theta == 1000000.0f);
    CHECK(!hp->tie_embeddings && !hp->attn_bias && hp->n_ctx_train == 256);
    CHECK(lq_model_rope_layout(m) == LQ_ROPE_INTERLEAVED && lq_model_source_kind(m) == LQ_SOURCE_GGUF);
    planned p[256];
    int n = plan(&s, p);
    CHECK(lq_model_n_tensors(m) == n);
    const lq_gguf *g = lq_model_gguf(m);
    for (int i = 0; i < n; i++) {
        const lq_tensor *t = lq_model_find(m, p[i].name);
        CHECKF(t != NULL, "%s missing", p[i].name);
        if (!t) continue;
        CHECK(t->type == p[i].type && t->ne[0] == p[i].ne[0] && t->ne[1] == p[i].ne[1] && t->n_dims == p[i].n_dims);
        CHECK(t->nbytes == lq_row_size(p[i].type, p[i].ne[0]) * (uint64_t)p[i].ne[1]);
        const unsigned char *d = t->data;
        CHECK(d[0] == (unsigned char)i && d[t->nbytes - 1] == (unsigned char)((t->nbytes - 1) * 7 + (size_t)i));
        CHECK(t->data == lq_gguf_tensor(g, lq_gguf_find_tensor(g, t->name))->data);
        CHECK(!strcmp(t->source_name, t->name) && !strcmp(t->file, path));
    }
    CHECK(lq_model_find(m, "rope_freqs.weight")->layer == -1);
    CHECK(lq_model_find(m, "blk.1.ffn_down.weight")->type == LQ_TYPE_Q4_K);
    lq_model_close(m);
}

static void test_archs(void) {
    char path[4096];
    lq_model *m = NULL;
    lq_error err;
    /* qwen2: q/k/v biases found from the tensors, NEOX rope keeps rows in halves order; tied. */
    gguf_spec s = base;
    s.arch = "qwen2";
    s.qkv_bias = true;
    s.tied = true;
    CHECK_OK(open_spec("qwen2", &s, &m, &err, path, sizeof path), &err);
    if (m) {
        const lq_hparams *hp = lq_model_hparams(m);
        CHECK(hp->arch == LQ_ARCH_QWEN2 && hp->attn_bias && !hp->attn_out_bias && hp->tie_embeddings);
        CHECK(lq_model_rope_layout(m) == LQ_ROPE_HALVES && lq_model_find(m, "blk.1.attn_k.bias") != NULL);
        lq_model_close(m);
    }
    s = base;
    s.arch = "mistral";
    CHECK_OK(open_spec("mistral", &s, &m, &err, path, sizeof path), &err);
    CHECK(m && lq_model_hparams(m)->arch == LQ_ARCH_MISTRAL && lq_model_rope_layout(m) == LQ_ROPE_INTERLEAVED);
    lq_model_close(m);
}

static void expect_error(lq_status rc, const lq_error *err, lq_status code, const char *f1, const char *f2) {
    CHECKF(rc == code, "got %s want %s: %s", lq_status_name(rc), lq_status_name(code), err->msg);
    CHECKF(strstr(err->msg, f1) != NULL, "message lacks '%s': %s", f1, err->msg);
    CHECKF(!f2 || strstr(err->msg, f2) != NULL, "message lacks '%s': %s", f2, err->msg);
}

static void test_gguf_errors(void) {
    char path[4096];
    lq_model *m = NULL;
    lq_error err;
    gguf_spec s = base;
    s.drop_key = "llama.embedding_length";
    lq_status rc = open_spec("no_embd", &s, &m, &err, path, sizeof path);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "llama.embedding_length");
    s = base;
    s.drop_key = "llama.attention.layer_norm_rms_epsilon";
    rc = open_spec("no_eps", &s, &m, &err, path, sizeof path);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "layer_norm_rms_epsilon");
    s = base;
    s.arch = "phi3";
    rc = open_spec("phi3", &s, &m, &err, path, sizeof path);
    expect_error(rc, &err, LQ_ERR_UNSUPPORTED, path, "phi3");
    s = base;
    s.rope_scaling = "yarn";
    rc = open_spec("yarn", &s, &m, &err, path, sizeof path);
    expect_error(rc, &err, LQ_ERR_UNSUPPORTED, path, "yarn");
    s = base;
    s.bad_shape = "blk.1.attn_v.weight";
    rc = open_spec("bad_shape", &s, &m, &err, path, sizeof path);
    expect_error(rc, &err, LQ_ERR_FORMAT, "blk.1.attn_v.weight", "[64, 33] but the hyperparameters imply [64, 32]");
    CHECK(m == NULL);
    /* A GGUF cut short is the reader's format error, passed up unchanged. */
    size_t size;
    snprintf(path, sizeof path, "%s/llama_mixed.gguf", tmp);
    unsigned char *bytes = test_read_file(path, &size);
    char cut[4096];
    snprintf(cut, sizeof cut, "%s/cut.gguf", tmp);
    if (bytes) stb_write_bytes(cut, bytes, size - 100);
    free(bytes);
    expect_error(lq_model_open(cut, &m, &err), &err, LQ_ERR_FORMAT, cut, NULL);
}

/* HF qwen2 and mistral directories: biases per architecture, names mapped. */
static void test_hf_archs(void) {
    uint64_t seed = 3;
    stb_file f = {0};
    stb_llama c = {.n_layer = 1, .e = 32, .h = 4, .kv = 2, .ff = 64, .v = 16, .with_lm_head = true, .with_embed = true,
                   .dtype = "BF16"};
    stb_llama_tensors(&f, &c, &seed);
    stb_add(&f, "model.layers.0.self_attn.q_proj.bias", "BF16", 1, (int64_t[]){32}, &seed);
    stb_add(&f, "model.layers.0.self_attn.k_proj.bias", "BF16", 1, (int64_t[]){16}, &seed);
    stb_add(&f, "model.layers.0.self_attn.v_proj.bias", "BF16", 1, (int64_t[]){16}, &seed);
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/qwen2_hf", tmp);
    CHECK(stb_write_model_dir(dir, &f, &c) == 0);
    stb_write_text(stb_path(path, sizeof path, dir, "config.json"),
                   "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", \"hidden_size\": 32, "
                   "\"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
                   "\"intermediate_size\": 64, \"vocab_size\": 16, \"rope_theta\": 1000000.0, "
                   "\"tie_word_embeddings\": false, \"sliding_window\": 131072, \"use_sliding_window\": false}");
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(dir, &m, &err), &err);
    if (m) {
        const lq_tensor *b = lq_model_find(m, "blk.0.attn_k.bias");
        CHECK(b && b->ne[0] == 16 && b->n_dims == 1 && b->type == LQ_TYPE_BF16);
        CHECK(lq_model_hparams(m)->arch == LQ_ARCH_QWEN2 && lq_model_rope_layout(m) == LQ_ROPE_HALVES);
        CHECK(lq_model_n_tensors(m) == 9 + 3 + 3);
        lq_model_close(m);
    }
    /* The same weights as mistral have no biases: the bias tensors are unexpected. */
    stb_write_text(path, "{\"model_type\": \"mistral\", \"hidden_size\": 32, \"num_hidden_layers\": 1, "
                         "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"intermediate_size\": 64, "
                         "\"vocab_size\": 16, \"sliding_window\": 4096}");
    expect_error(lq_model_open(dir, &m, &err), &err, LQ_ERR_FORMAT, "unexpected tensor blk.0.attn_q.bias", NULL);
    stb_free(&f);
}

int main(void) {
    tmp = test_tmpdir("model-gguf");
    test_types_pass_through();
    test_archs();
    test_gguf_errors();
    test_hf_archs();
    stb_rmtree(tmp);
    TEST_DONE();
}
