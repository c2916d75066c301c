/* test_model.c — the model view over generated HF directories (single file vs sharded, tied
 * embeddings, shape and name errors) and over the shared checkpoints (tinystories-4m,
 * tinystories-656k, stories260K.gguf), checked against the files' own bytes. */
#include "st_build.h"

#include <jansson.h>

static const char *tmp;

static void expect_error(lq_status rc, const lq_error *err, lq_status code, const char *fragment1,
                         const char *fragment2) {
    CHECKF(rc == code, "got %s want %s: %s", lq_status_name(rc), lq_status_name(code), err->msg);
    CHECKF(strstr(err->msg, fragment1) != NULL, "message lacks '%s': %s", fragment1, err->msg);
    CHECKF(!fragment2 || strstr(err->msg, fragment2) != NULL, "message lacks '%s': %s", fragment2, err->msg);
}

static const stb_llama tiny = {.n_layer = 2, .e = 32, .h = 4, .kv = 2, .ff = 64, .v = 48, .tied = false,
                               .with_lm_head = true, .with_embed = true, .dtype = "F32"};

static int find_stb(const stb_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return i;
    return -1;
}

static void remove_stb(stb_file *f, const char *name) {
    int i = find_stb(f, name);
    if (i < 0) return;
    free(f->t[i].data);
    memmove(&f->t[i], &f->t[i + 1], (size_t)(f->n - i - 1) * sizeof f->t[0]);
    f->n--;
}

static lq_status open_dir(const char *name, const stb_file *f, const stb_llama *c, lq_model **m, lq_error *err) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    CHECK(stb_write_model_dir(dir, f, c) == 0);
    lq_error_clear(err);
    return lq_model_open(dir, m, err);
}

/* Single file and two shards give the same view; shapes are reversed, data is not copied. */
static void test_sharded_equals_single(void) {
    stb_file f = {0};
    uint64_t seed = 11;
    stb_llama_tensors(&f, &tiny, &seed);
    char dir_a[4096], dir_b[4096];
    snprintf(dir_a, sizeof dir_a, "%s/single", tmp);
    snprintf(dir_b, sizeof dir_b, "%s/sharded", tmp);
    CHECK(stb_write_model_dir(dir_a, &f, &tiny) == 0);
    CHECK(stb_write_sharded_dir(dir_b, &f, 10, &tiny) == 0);
    lq_model *a = NULL, *b = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(dir_a, &a, &err), &err);
    CHECK_OK(lq_model_open(dir_b, &b, &err), &err);
    if (!a || !b) goto done;
    CHECK(lq_model_n_tensors(a) == 2 * 9 + 3 && lq_model_n_tensors(b) == lq_model_n_tensors(a));
    CHECK(lq_model_source_kind(a) == LQ_SOURCE_HF && lq_model_rope_layout(a) == LQ_ROPE_HALVES);
    CHECK(lq_model_gguf(a) == NULL && lq_model_safetensors(a) != NULL && lq_model_tokenizer_json(a) == NULL);
    const lq_hparams *hp = lq_model_hparams(a);
    CHECK(hp->n_layer == 2 && hp->n_embd == 32 && hp->n_head_kv == 2 && hp->head_dim == 8 && !hp->tie_embeddings);
    int from_second_shard = 0;
    for (int64_t i = 0; i < lq_model_n_tensors(a); i++) {
        const lq_tensor *ta = lq_model_tensor(a, i), *tb = lq_model_tensor(b, i);
        CHECK(!strcmp(ta->name, tb->name) && !strcmp(ta->source_name, tb->source_name));
        CHECK(ta->type == tb->type && ta->n_dims == tb->n_dims && ta->nbytes == tb->nbytes && ta->layer == tb->layer);
        CHECK(memcmp(ta->ne, tb->ne, sizeof ta->ne) == 0);
        CHECK(memcmp(ta->data, tb->data, ta->nbytes) == 0);
        from_second_shard += strstr(tb->file, "00002-of") != NULL;
        /* Against the generator: HF shape reversed, same bytes. */
        int k = find_stb(&f, ta->source_name);
        CHECK(k >= 0);
        if (k < 0) continue;
        CHECK(ta->n_dims == (uint32_t)f.t[k].n_dims);
        for (int d = 0; d < f.t[k].n_dims; d++) CHECK(ta->ne[d] == f.t[k].shape[f.t[k].n_dims - 1 - d]);
        CHECK(memcmp(ta->data, f.t[k].data, ta->nbytes) == 0);
        CHECK(ta->data == lq_safetensors_find(lq_model_safetensors(a), ta->source_name)->data);
    }
    CHECK(from_second_shard == 21 - 10);
    /* Order: token_embd, blocks in layer order, output_norm, output. */
    CHECK(!strcmp(lq_model_tensor(a, 0)->name, "token_embd.weight"));
    CHECK(!strcmp(lq_model_tensor(a, 1)->name, "blk.0.attn_norm.weight"));
    CHECK(lq_model_tensor(a, 10)->layer == 1);
    CHECK(!strcmp(lq_model_tensor(a, 19)->name, "output_norm.weight"));
    CHECK(!strcmp(lq_model_tensor(a, 20)->name, "output.weight"));
    const lq_tensor *k1 = lq_model_find(a, "blk.1.attn_k.weight");
    CHECK(k1 && k1->ne[0] == 32 && k1->ne[1] == 16 && k1->ne[2] == 1 && k1->layer == 1 && k1->type == LQ_TYPE_F32);
    CHECK(lq_model_find(a, "blk.2.attn_k.weight") == NULL);
done:
    lq_model_close(a);
    lq_model_close(b);
    stb_free(&f);
}

static void test_tied(void) {
    lq_model *m = NULL;
    lq_error err;
    uint64_t seed = 5;
    /* Only lm_head stored (as tinystories-656k): it becomes token_embd. */
    stb_llama c = tiny;
    c.tied = true;
    c.with_embed = false;
    stb_file f = {0};
    stb_llama_tensors(&f, &c, &seed);
    CHECK_OK(open_dir("only_lm_head", &f, &c, &m, &err), &err);
    if (m) {
        const lq_tensor *e = lq_model_find(m, "token_embd.weight");
        CHECK(e && !strcmp(e->source_name, "lm_head.weight") && e->ne[0] == 32 && e->ne[1] == 48);
        CHECK(e && memcmp(e->data, f.t[find_stb(&f, "lm_head.weight")].data, e->nbytes) == 0);
        CHECK(lq_model_find(m, "output.weight") == NULL && lq_model_hparams(m)->tie_embeddings);
        lq_model_close(m);
    }
    stb_free(&f);
    /* Both stored and tied: token_embd only, from embed_tokens. */
    c.with_embed = true;
    stb_llama_tensors(&f, &c, &seed);
    CHECK_OK(open_dir("tied_both", &f, &c, &m, &err), &err);
    if (m) {
        const lq_tensor *e = lq_model_find(m, "token_embd.weight");
        CHECK(e && !strcmp(e->source_name, "model.embed_tokens.weight"));
        CHECK(lq_model_find(m, "output.weight") == NULL && lq_model_n_tensors(m) == 20);
        lq_model_close(m);
    }
    stb_free(&f);
    /* Untied config without lm_head: the missing tensor is named. */
    c.tied = false;
    c.with_lm_head = false;
    stb_llama_tensors(&f, &c, &seed);
    expect_error(open_dir("untied_no_head", &f, &c, &m, &err), &err, LQ_ERR_FORMAT, "missing tensor output.weight",
                 "[32, 48]");
    CHECK(m == NULL);
    stb_free(&f);
}

static void test_model_errors(void) {
    lq_model *m = NULL;
    lq_error err;
    uint64_t seed = 9;
    stb_file f = {0};
    /* A k_proj with the wrong number of rows: names tensor, actual and expected shapes. */
    stb_llama_tensors(&f, &tiny, &seed);
    remove_stb(&f, "model.layers.1.self_attn.k_proj.weight");
    stb_add(&f, "model.layers.1.self_attn.k_proj.weight", "F32", 2, (int64_t[]){24, 32}, &seed);
    expect_error(open_dir("bad_shape", &f, &tiny, &m, &err), &err, LQ_ERR_FORMAT, "blk.1.attn_k.weight",
                 "shape [32, 24] but the hyperparameters imply [32, 16]");
    stb_free(&f);
    /* A missing tensor of one layer. */
    stb_llama_tensors(&f, &tiny, &seed);
    remove_stb(&f, "model.layers.1.mlp.up_proj.weight");
    expect_error(open_dir("missing", &f, &tiny, &m, &err), &err, LQ_ERR_FORMAT, "missing tensor blk.1.ffn_up.weight",
                 NULL);
    stb_free(&f);
    /* A layer beyond num_hidden_layers, and a bias the config does not have. */
    stb_llama_tensors(&f, &tiny, &seed);
    stb_add(&f, "model.layers.2.input_layernorm.weight", "F32", 1, (int64_t[]){32}, &seed);
    expect_error(open_dir("extra_layer", &f, &tiny, &m, &err), &err, LQ_ERR_FORMAT, "unexpected tensor blk.2.attn_norm",
                 "model.safetensors");
    stb_free(&f);
    stb_llama_tensors(&f, &tiny, &seed);
    stb_add(&f, "model.layers.0.self_attn.q_proj.bias", "F32", 1, (int64_t[]){32}, &seed);
    expect_error(open_dir("extra_bias", &f, &tiny, &m, &err), &err, LQ_ERR_FORMAT, "blk.0.attn_q.bias", NULL);
    stb_free(&f);
    /* An unknown HF name; an ignorable buffer is skipped. */
    stb_llama_tensors(&f, &tiny, &seed);
    stb_add(&f, "model.layers.0.self_attn.rotary_emb.inv_freq", "F32", 1, (int64_t[]){4}, &seed);
    CHECK_OK(open_dir("inv_freq", &f, &tiny, &m, &err), &err);
    CHECK(m && lq_model_n_tensors(m) == 21);
    lq_model_close(m);
    stb_add(&f, "model.layers.0.mlp.experts.0.w1.weight", "F32", 1, (int64_t[]){4}, &seed);
    expect_error(open_dir("unknown_name", &f, &tiny, &m, &err), &err, LQ_ERR_UNSUPPORTED,
                 "model.layers.0.mlp.experts.0.w1.weight", "model.safetensors");
    stb_free(&f);
    /* BF16 weights are fine; unsupported dtypes are named. */
    stb_llama c = tiny;
    c.dtype = "BF16";
    stb_llama_tensors(&f, &c, &seed);
    CHECK_OK(open_dir("bf16", &f, &c, &m, &err), &err);
    CHECK(m && lq_model_find(m, "output.weight")->type == LQ_TYPE_BF16);
    lq_model_close(m);
    stb_free(&f);
    c.dtype = "F64";
    stb_llama_tensors(&f, &c, &seed);
    expect_error(open_dir("f64", &f, &c, &m, &err), &err, LQ_ERR_UNSUPPORTED, "unsupported dtype F64", NULL);
    stb_free(&f);
    /* Missing or bad config.json, missing path, a file that is no model. */
    char dir[4096], path[4096];
    snprintf(dir, sizeof dir, "%s/bf16", tmp);
    stb_write_text(stb_path(path, sizeof path, dir, "config.json"), "{\"model_type\": \"llama\"");
    lq_status rc = lq_model_open(dir, &m, &err);
    expect_error(rc, &err, LQ_ERR_FORMAT, path, "JSON");
    stb_write_text(path, "{\"model_type\": \"falcon\"}");
    expect_error(lq_model_open(dir, &m, &err), &err, LQ_ERR_UNSUPPORTED, path, "falcon");
    unlink(path);
    expect_error(lq_model_open(dir, &m, &err), &err, LQ_ERR_IO, dir, "config.json");
    snprintf(path, sizeof path, "%s/does-not-exist", tmp);
    expect_error(lq_model_open(path, &m, &err), &err, LQ_ERR_IO, path, NULL);
    snprintf(path, sizeof path, "%s/notes.txt", tmp);
    stb_write_text(path, "hello");
    expect_error(lq_model_open(path, &m, &err), &err, LQ_ERR_FORMAT, path, NULL);
    CHECK(m == NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Shared checkpoints                                                                         */

/* Compares every tensor of an HF model view with the bytes its safetensors header (parsed here
 * with jansson) places in the file. Returns how many tensors matched. */
static int check_against_file(const lq_model *m, const char *st_path, json_t **metadata_out) {
    size_t size;
    unsigned char *file = test_read_file(st_path, &size);
    CHECK(file != NULL && size > 8);
    if (!file) return 0;
    uint64_t hl = 0;
    for (int b = 7; b >= 0; b--) hl = (hl << 8) | file[b];
    json_t *root = json_loadb((const char *)file + 8, hl, 0, NULL);
    CHECK(root != NULL);
    int matched = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!strcmp(key, "__metadata__")) {
            if (metadata_out) *metadata_out = json_incref(v);
            continue;
        }
        size_t begin = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
        size_t end = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 1));
        json_t *shape = json_object_get(v, "shape");
        const lq_tensor *t = NULL;
        for (int64_t i = 0; i < lq_model_n_tensors(m); i++)
            if (!strcmp(lq_model_tensor(m, i)->source_name, key)) t = lq_model_tensor(m, i);
        if (!t) continue; /* e.g. lm_head of a tied model stored twice */
        size_t nd = json_array_size(shape);
        bool shape_ok = t->n_dims == nd;
        for (size_t d = 0; d < nd && shape_ok; d++)
            shape_ok = t->ne[d] == json_integer_value(json_array_get(shape, nd - 1 - d));
        CHECKF(shape_ok, "%s: shape differs", t->name);
        CHECKF(t->nbytes == end - begin && memcmp(t->data, file + 8 + hl + begin, end - begin) == 0,
               "%s: bytes differ from the file", t->name);
        matched++;
    }
    json_decref(root);
    free(file);
    return matched;
}

static void test_tinystories_4m(void) {
    const char *dir = test_shared_path("models/tinystories-4m");
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(dir, &m, &err), &err);
    if (!m) return;
    const lq_hparams *hp = lq_model_hparams(m);
    /* README: 4 layers, hidden 256, ffn 768, 8 heads / 4 KV heads, vocab 2048, untied. */
    CHECK(hp->arch == LQ_ARCH_LLAMA && hp->n_layer == 4 && hp->n_embd == 256 && hp->n_ff == 768);
    CHECK(hp->n_head == 8 && hp->n_head_kv == 4 && hp->head_dim == 32 && hp->n_vocab == 2048);
    CHECK(!hp->tie_embeddings && hp->n_ctx_train == 256 && fabsf(hp->rms_eps - 1e-5f) < 1e-12f);
    CHECK(hp->bos_token_id == 1 && hp->eos_token_id == 2);
    CHECK(lq_model_n_tensors(m) == 4 * 9 + 3);
    const lq_tensor *q = lq_model_find(m, "blk.3.attn_q.weight"), *k = lq_model_find(m, "blk.0.attn_k.weight");
    const lq_tensor *down = lq_model_find(m, "blk.2.ffn_down.weight"), *out = lq_model_find(m, "output.weight");
    CHECK(q && q->ne[0] == 256 && q->ne[1] == 256 && q->type == LQ_TYPE_F16 && q->layer == 3);
    CHECK(k && k->ne[0] == 256 && k->ne[1] == 128 && k->nbytes == 256 * 128 * 2);
    CHECK(down && down->ne[0] == 768 && down->ne[1] == 256);
    CHECK(out && out->ne[0] == 256 && out->ne[1] == 2048 && !strcmp(out->source_name, "lm_head.weight"));
    CHECK(lq_model_tokenizer_json(m) && strstr(lq_model_tokenizer_json(m), "tokenizer.json"));
    char st_path[4096];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    CHECK(check_against_file(m, st_path, NULL) == 39);
    lq_model_close(m);
}

static void test_tinystories_656k(void) {
    const char *dir = test_shared_path("models/tinystories-656k");
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(dir, &m, &err), &err);
    if (!m) return;
    const lq_hparams *hp = lq_model_hparams(m);
    CHECK(hp->n_layer == 2 && hp->n_embd == 128 && hp->n_ff == 384 && hp->n_head == 8 && hp->n_head_kv == 4);
    CHECK(hp->n_vocab == 2048 && hp->tie_embeddings && hp->n_ctx_train == 512 && fabsf(hp->rms_eps - 1e-6f) < 1e-13f);
    CHECK(lq_model_n_tensors(m) == 2 * 9 + 2 && lq_model_find(m, "output.weight") == NULL);
    const lq_tensor *e = lq_model_find(m, "token_embd.weight");
    CHECK(e && !strcmp(e->source_name, "lm_head.weight") && e->type == LQ_TYPE_F32 && e->ne[0] == 128 && e->ne[1] == 2048);
    const lq_st_tensor *head = lq_safetensors_find(lq_model_safetensors(m), "lm_head.weight");
    CHECK(e && head && e->data == head->data);
    char st_path[4096];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    json_t *meta = NULL;
    CHECK(check_against_file(m, st_path, &meta) == 20);
    /* __metadata__ kept as given: the alias that explains the missing embed_tokens. */
    const lq_safetensors *st = lq_model_safetensors(m);
    CHECK(lq_safetensors_n_metadata(st) == (int64_t)json_object_size(meta));
    bool alias = false;
    for (int64_t i = 0; i < lq_safetensors_n_metadata(st); i++) {
        json_t *v = json_object_get(meta, lq_safetensors_metadata_key(st, i));
        CHECK(v && !strcmp(json_string_value(v), lq_safetensors_metadata_value(st, i)));
        alias |= !strcmp(lq_safetensors_metadata_key(st, i), "model.embed_tokens.weight") &&
                 !strcmp(lq_safetensors_metadata_value(st, i), "lm_head.weight");
    }
    CHECK(alias);
    json_decref(meta);
    lq_model_close(m);
}

static void test_stories260k(void) {
    const char *path = test_shared_path("models/stories260k/stories260K.gguf");
    lq_model *m = NULL;
    lq_error err;
    CHECK_OK(lq_model_open(path, &m, &err), &err);
    if (!m) return;
    const lq_hparams *hp = lq_model_hparams(m);
    /* README: 5 layers, dim 64, ffn 172, 8 heads / 4 KV heads, vocab 512. */
    CHECK(hp->arch == LQ_ARCH_LLAMA && hp->n_layer == 5 && hp->n_embd == 64 && hp->n_ff == 172);
    CHECK(hp->n_head == 8 && hp->n_head_kv == 4 && hp->head_dim == 8 && hp->n_vocab == 512);
    CHECK(!hp->tie_embeddings && !hp->attn_bias && hp->bos_token_id == 1 && hp->eos_token_id == 2);
    CHECK(lq_model_source_kind(m) == LQ_SOURCE_GGUF && lq_model_rope_layout(m) == LQ_ROPE_INTERLEAVED);
    CHECK(lq_model_gguf(m) != NULL && lq_model_safetensors(m) == NULL && lq_model_tokenizer_json(m) == NULL);
    CHECK(lq_model_n_tensors(m) == 5 * 9 + 3);
    const lq_tensor *down = lq_model_find(m, "blk.4.ffn_down.weight"), *e = lq_model_find(m, "token_embd.weight");
    CHECK(down && down->ne[0] == 172 && down->ne[1] == 64 && down->type == LQ_TYPE_F32 && down->layer == 4);
    CHECK(e && e->ne[0] == 64 && e->ne[1] == 512 && e->layer == -1 && e->nbytes == 64 * 512 * 4);
    /* Every tensor's bytes are those at data_offset + offset in the file. */
    size_t size;
    unsigned char *file = test_read_file(path, &size);
    const lq_gguf *g = lq_model_gguf(m);
    int same = 0;
    for (int64_t i = 0; file && i < lq_model_n_tensors(m); i++) {
        const lq_tensor *t = lq_model_tensor(m, i);
        const lq_gguf_tensor_info *info = lq_gguf_tensor(g, lq_gguf_find_tensor(g, t->name));
        uint64_t at = lq_gguf_data_offset(g) + info->offset;
        same += at + t->nbytes <= size && memcmp(t->data, file + at, t->nbytes) == 0 && t->data == info->data;
    }
    CHECK(same == 48);
    free(file);
    lq_model_close(m);
}

int main(void) {
    tmp = test_tmpdir("model");
    test_sharded_equals_single();
    test_tied();
    test_model_errors();
    stb_rmtree(tmp);
    if (!test_shared_dir()) {
        fprintf(stderr, "note: ../shared absent: shared checkpoints not checked\n");
        TEST_DONE();
    }
    test_tinystories_4m();
    test_tinystories_656k();
    test_stories260k();
    TEST_DONE();
}
