/* test_quantize_file.c — what `lq quantize` writes: metadata keys and their types, tensor
 * names/shapes/order, the converter's Q/K row order, GGUF input keeping its keys, determinism
 * across thread counts, the exported tokenizer, calibrated replacement tensors, NaN input. */
#include "qtest.h"

#include <dirent.h>
#include <jansson.h>

static int64_t key(const lq_gguf *g, const char *k, lq_gguf_type want) {
    int64_t i = lq_gguf_find_key(g, k);
    CHECKF(i >= 0, "key %s missing", k);
    if (i >= 0) CHECKF(lq_gguf_kv_type(g, i) == want, "key %s has type %s", k, lq_gguf_type_name(lq_gguf_kv_type(g, i)));
    return i;
}

static uint64_t key_u64(const lq_gguf *g, const char *k) {
    int64_t i = key(g, k, LQ_GGUF_UINT32);
    uint64_t v = 0;
    lq_error err;
    if (i >= 0) CHECK_OK(lq_gguf_get_u64(g, i, &v, &err), &err);
    return v;
}

static bool key_str_is(const lq_gguf *g, const char *k, const char *want) {
    int64_t i = key(g, k, LQ_GGUF_STRING);
    lq_str s = i >= 0 ? lq_gguf_get_str(g, i) : (lq_str){NULL, 0};
    return s.ptr && s.len == strlen(want) && !memcmp(s.ptr, want, s.len);
}

/* Rows of a GGUF tensor or HF tensor as floats. */
static float *tensor_f32(const lq_tensor *t) {
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    float *x = malloc((size_t)(rows * t->ne[0]) * sizeof(float));
    lq_error err;
    CHECK_OK(lq_dequantize_rows(t->type, t->data, x, rows, t->ne[0], &err), &err);
    return x;
}

/* HF tinystories-4m → Q4_K_M / F32: keys with the config's values, converter Q/K row order. */
static void test_hf_metadata(const char *dir) {
    const char *src = test_shared_path("models/tinystories-4m");
    const char *out = qt_quantize(src, dir, "4m-q4km.gguf", "Q4_K_M", NULL, 2);
    lq_error err;
    lq_model *hf = NULL;
    CHECK_OK(lq_model_open(src, &hf, &err), &err);
    lq_gguf *g = NULL;
    if (out) CHECK_OK(lq_gguf_open(out, &g, &err), &err);
    if (!g || !hf) return;
    const lq_hparams *hp = lq_model_hparams(hf);
    CHECK(key_str_is(g, "general.architecture", "llama"));
    CHECK(key_str_is(g, "general.name", "tinystories-4m"));
    CHECK(key_u64(g, "general.file_type") == 15);
    CHECK(key_u64(g, "general.quantization_version") == 2);
    CHECK(lq_gguf_find_key(g, "general.alignment") < 0 && lq_gguf_alignment(g) == 32);
    CHECK(key_u64(g, "llama.block_count") == (uint64_t)hp->n_layer);
    CHECK(key_u64(g, "llama.embedding_length") == (uint64_t)hp->n_embd);
    CHECK(key_u64(g, "llama.feed_forward_length") == (uint64_t)hp->n_ff);
    CHECK(key_u64(g, "llama.attention.head_count") == (uint64_t)hp->n_head);
    CHECK(key_u64(g, "llama.attention.head_count_kv") == (uint64_t)hp->n_head_kv);
    CHECK(key_u64(g, "llama.context_length") == (uint64_t)hp->n_ctx_train);
    CHECK(key_u64(g, "llama.vocab_size") == (uint64_t)hp->n_vocab);
    CHECK(key_u64(g, "llama.rope.dimension_count") == (uint64_t)hp->head_dim);
    key(g, "llama.rope.freq_base", LQ_GGUF_FLOAT32);
    key(g, "llama.attention.layer_norm_rms_epsilon", LQ_GGUF_FLOAT32);
    CHECK(key_str_is(g, "tokenizer.ggml.model", "llama"));
    int64_t tokens = key(g, "tokenizer.ggml.tokens", LQ_GGUF_ARRAY);
    CHECK(tokens >= 0 && lq_gguf_arr_n(g, tokens) == (uint64_t)hp->n_vocab && lq_gguf_arr_type(g, tokens) == LQ_GGUF_STRING);
    int64_t scores = key(g, "tokenizer.ggml.scores", LQ_GGUF_ARRAY);
    CHECK(scores >= 0 && lq_gguf_arr_type(g, scores) == LQ_GGUF_FLOAT32);
    int64_t types = key(g, "tokenizer.ggml.token_type", LQ_GGUF_ARRAY);
    CHECK(types >= 0 && lq_gguf_arr_type(g, types) == LQ_GGUF_INT32);
    key(g, "tokenizer.ggml.bos_token_id", LQ_GGUF_UINT32);
    key(g, "tokenizer.ggml.add_bos_token", LQ_GGUF_BOOL);
    /* tensors: llama-quantize's order, GGUF shapes */
    CHECK(lq_gguf_n_tensors(g) == lq_model_n_tensors(hf));
    CHECK(!strcmp(lq_gguf_tensor(g, 0)->name, "output.weight") && !strcmp(lq_gguf_tensor(g, 3)->name, "blk.0.attn_k.weight"));
    const lq_gguf_tensor_info *q = lq_gguf_tensor(g, lq_gguf_find_tensor(g, "blk.0.attn_q.weight"));
    CHECK(q->type == LQ_TYPE_Q4_K && q->ne[0] == hp->n_embd && q->ne[1] == hp->n_head * hp->head_dim);
    lq_gguf_close(g);

    /* F32: rows exactly the HF rows, Q and K in interleaved order, V untouched */
    out = qt_quantize(src, dir, "4m-f32.gguf", "F32", NULL, 2);
    lq_model *m = NULL;
    if (out) CHECK_OK(lq_model_open(out, &m, &err), &err);
    if (!m) return;
    const char *names[3] = {"blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight"};
    for (int k = 0; k < 3; k++) {
        const lq_tensor *a = lq_model_find(hf, names[k]), *b = lq_model_find(m, names[k]);
        float *x = tensor_f32(a), *y = tensor_f32(b);
        int64_t ne0 = a->ne[0], hd = hp->head_dim, bad = 0;
        for (int64_t r = 0; r < a->ne[1]; r++) {
            int64_t h = r / hd, j = r % hd;
            int64_t from = k == 2 ? r : h * hd + (j % 2 == 0 ? j / 2 : hd / 2 + j / 2);
            bad += memcmp(y + r * ne0, x + from * ne0, (size_t)ne0 * sizeof(float)) != 0;
        }
        CHECKF(bad == 0, "%s: %lld rows not where the converter puts them", names[k], (long long)bad);
        free(x), free(y);
    }
    lq_model_close(m);
    lq_model_close(hf);
}

/* GGUF input keeps every key; file_type follows the preset. */
static void test_gguf_input(const char *dir) {
    const char *src = test_shared_path("models/stories260k/stories260K.gguf");
    const char *out = qt_quantize(src, dir, "260k-q8.gguf", "Q6_K", NULL, 2);
    lq_error err;
    lq_gguf *a = NULL, *b = NULL;
    CHECK_OK(lq_gguf_open(src, &a, &err), &err);
    if (out) CHECK_OK(lq_gguf_open(out, &b, &err), &err);
    if (!a || !b) return;
    int64_t missing = 0;
    for (int64_t i = 0; i < lq_gguf_n_kv(a); i++) {
        lq_str k = lq_gguf_key(a, i);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)k.len, k.ptr);
        int64_t j = lq_gguf_find_key(b, name);
        missing += j < 0;
        if (j >= 0 && strcmp(name, "general.file_type") != 0)
            CHECKF(lq_gguf_kv_type(a, i) == lq_gguf_kv_type(b, j), "%s changed type", name);
    }
    CHECK(missing == 0);
    CHECK(key_u64(b, "general.file_type") == 18);
    CHECK(key_u64(b, "general.quantization_version") == 2);
    lq_gguf_close(a);
    lq_gguf_close(b);
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    void *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    bool same = x && y && na == nb && !memcmp(x, y, na);
    free(x), free(y);
    return same;
}

static void test_determinism(const char *dir) {
    const char *src = test_shared_path("models/tinystories-4m");
    const char *presets[2] = {"Q4_K_M", "IQ4_XS"};
    for (int i = 0; i < 2; i++) {
        char a[4200], b[4200];
        const char *pa = qt_quantize(src, dir, "t1.gguf", presets[i], NULL, 1);
        snprintf(a, sizeof a, "%s", pa ? pa : "");
        const char *pb = qt_quantize(src, dir, "t2.gguf", presets[i], NULL, 2);
        snprintf(b, sizeof b, "%s", pb ? pb : "");
        CHECKF(pa && pb && same_file(a, b), "%s: 1 and 2 threads differ", presets[i]);
    }
}

/* The 656K tokenizer.json exported into our GGUF tokenizes the whole validation text as
 * tokenizer.json does. */
static void test_tokenizer(const char *dir) {
    const char *src = test_shared_path("models/tinystories-656k");
    const char *out = qt_quantize(src, dir, "656k.gguf", "Q8_0", NULL, 2);
    lq_error err;
    lq_model *m = NULL, *hf = NULL;
    if (out) CHECK_OK(lq_model_open(out, &m, &err), &err);
    CHECK_OK(lq_model_open(src, &hf, &err), &err);
    if (!m || !hf) return;
    int64_t na = 0, nb = 0;
    int32_t *a = qt_tokens(m, test_shared_path("text/tinystories-valid.txt"), SIZE_MAX, &na);
    int32_t *b = qt_tokens(hf, test_shared_path("text/tinystories-valid.txt"), SIZE_MAX, &nb);
    int64_t first_diff = -1;
    for (int64_t i = 0; a && b && i < na && i < nb && first_diff < 0; i++)
        if (a[i] != b[i]) first_diff = i;
    fprintf(stderr, "656K tokenizer: %lld tokens from the GGUF, %lld from tokenizer.json\n", (long long)na, (long long)nb);
    CHECKF(na == nb && na > 100000 && first_diff < 0, "first difference at token %lld", (long long)first_diff);
    free(a), free(b);
    lq_model_close(m);
    lq_model_close(hf);
}

/* Replacement tensors: one in the plan's type is written as it is (Q/K rows permuted like
 * the model's), an F32 one is quantized by the writer. */
static void test_tensor_set(const char *dir) {
    const char *src = test_shared_path("models/tinystories-4m");
    lq_error err;
    lq_model *hf = NULL;
    CHECK_OK(lq_model_open(src, &hf, &err), &err);
    if (!hf) return;
    const lq_tensor *v = lq_model_find(hf, "blk.0.attn_v.weight"), *q = lq_model_find(hf, "blk.0.attn_q.weight");
    int64_t ne0 = v->ne[0];
    lq_tensor_set *set = lq_tensor_set_new();
    /* attn_v (Q4_K in Q4_K_M, layer 0): halved weights, encoded by the "pass" */
    float *x = tensor_f32(v);
    for (int64_t i = 0; i < ne0 * v->ne[1]; i++) x[i] *= 0.5f;
    size_t vb = lq_row_size(LQ_TYPE_Q4_K, ne0) * (size_t)v->ne[1];
    void *venc = malloc(vb);
    CHECK_OK(lq_quantize_rows(LQ_TYPE_Q4_K, x, venc, v->ne[1], ne0, NULL, &err), &err);
    void *vcopy = malloc(vb);
    memcpy(vcopy, venc, vb);
    CHECK_OK(lq_tensor_set_put(set, v->name, LQ_TYPE_Q4_K, v->ne, venc, vb, &err), &err);
    /* attn_q as F32 with row 0 negated */
    float *y = tensor_f32(q);
    for (int64_t i = 0; i < ne0; i++) y[i] = -y[i];
    size_t qb = (size_t)(ne0 * q->ne[1]) * sizeof(float);
    float *ycopy = malloc(qb);
    memcpy(ycopy, y, qb);
    CHECK_OK(lq_tensor_set_put(set, q->name, LQ_TYPE_F32, q->ne, y, qb, &err), &err);
    CHECK(lq_tensor_set_count(set) == 2);
    CHECK(lq_tensor_set_put(set, "x", LQ_TYPE_Q4_K, v->ne, x, 7, &err) == LQ_ERR_INVALID); /* wrong size */

    char out[4200];
    snprintf(out, sizeof out, "%s/set.gguf", dir);
    lq_quantize_opts o;
    memset(&o, 0, sizeof o);
    o.model_path = src, o.out_path = out, o.plan.preset = "Q4_K_M";
    o.plan.output_type = o.plan.token_embd_type = -1;
    o.replacements = set, o.n_threads = 2, o.measure_error = true;
    lq_quantize_report rep;
    CHECK_OK(lq_quantize_model(&o, &rep, &err), &err);
    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(out, &g, &err), &err);
    if (g) {
        const lq_gguf_tensor_info *tv = lq_gguf_tensor(g, lq_gguf_find_tensor(g, "blk.0.attn_v.weight"));
        CHECK(tv->nbytes == vb && !memcmp(tv->data, vcopy, vb));
        /* attn_q: GGUF row 0 is HF row 0 (negated), row 1 is HF row hd/2 */
        const lq_gguf_tensor_info *tq = lq_gguf_tensor(g, lq_gguf_find_tensor(g, "blk.0.attn_q.weight"));
        size_t rb = lq_row_size(LQ_TYPE_Q4_K, ne0);
        void *want = malloc(rb);
        CHECK_OK(lq_quantize_rows(LQ_TYPE_Q4_K, ycopy, want, 1, ne0, NULL, &err), &err);
        CHECK(!memcmp(tq->data, want, rb));
        int64_t hd = lq_model_hparams(hf)->head_dim;
        CHECK_OK(lq_quantize_rows(LQ_TYPE_Q4_K, ycopy + hd / 2 * ne0, want, 1, ne0, NULL, &err), &err);
        CHECK(!memcmp((const uint8_t *)tq->data + rb, want, rb));
        free(want);
        lq_gguf_close(g);
    }
    int n_replaced = 0;
    for (int64_t i = 0; i < rep.n_tensors; i++) n_replaced += rep.tensors[i].replaced;
    CHECK(n_replaced == 2);
    lq_quantize_report_free(&rep);
    free(x), free(vcopy), free(ycopy);
    lq_tensor_set_free(set);
    lq_model_close(hf);
}

/* Writes a NaN into one weight of a synthetic HF model: the run fails naming tensor and index,
 * and leaves no file (not even a temporary one). */
static void test_nan(const char *dir) {
    char model[4200], st_path[4300], out[4200];
    snprintf(model, sizeof model, "%s/nan-model", dir);
    lq_synth_opts so;
    lq_error err;
    CHECK_OK(lq_synth_shape("tiny", &so, &err), &err);
    CHECK_OK(lq_synth_write(model, &so, &err), &err);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", model);
    size_t size = 0;
    uint8_t *bytes = test_read_file(st_path, &size);
    CHECK(bytes && size > 8);
    if (!bytes) return;
    uint64_t hlen;
    memcpy(&hlen, bytes, 8);
    json_t *h = json_loadb((const char *)bytes + 8, hlen, 0, NULL);
    json_t *e = json_object_get(h, "model.layers.1.mlp.up_proj.weight");
    CHECK(e != NULL);
    if (e) {
        int64_t begin = json_integer_value(json_array_get(json_object_get(e, "data_offsets"), 0));
        int64_t n_in = json_integer_value(json_array_get(json_object_get(e, "shape"), 1));
        int64_t index = 3 * n_in + 17; /* row 3, column 17 */
        float nan = NAN;
        memcpy(bytes + 8 + hlen + begin + 4 * index, &nan, 4);
        FILE *f = fopen(st_path, "wb");
        CHECK(f && fwrite(bytes, 1, size, f) == size);
        if (f) fclose(f);
        snprintf(out, sizeof out, "%s/nan-out", dir);
        mkdir(out, 0755);
        snprintf(out, sizeof out, "%s/nan-out/x.gguf", dir);
        lq_quantize_opts o;
        memset(&o, 0, sizeof o);
        o.model_path = model, o.out_path = out, o.plan.preset = "Q4_K_M";
        o.plan.output_type = o.plan.token_embd_type = -1;
        lq_status st = lq_quantize_model(&o, NULL, &err);
        char want[128];
        snprintf(want, sizeof want, "element %lld (row 3, column 17) is NaN", (long long)index);
        fprintf(stderr, "NaN input: %s\n", err.msg);
        CHECK(st == LQ_ERR_NUMERIC && strstr(err.msg, "blk.1.ffn_up.weight") && strstr(err.msg, want));
        CHECK(!strchr(err.msg, '\n'));
        snprintf(out, sizeof out, "%s/nan-out", dir);
        DIR *d = opendir(out);
        int n_files = 0;
        struct dirent *de;
        while (d && (de = readdir(d)))
            n_files += de->d_name[0] != '.';
        if (d) closedir(d);
        CHECK(n_files == 0);
    }
    json_decref(h);
    free(bytes);
}

/* A synthetic HF checkpoint with q/k/v biases and Llama-3 RoPE scaling against the GGUF that
 * lq_synth_write makes of the same seed (llama.cpp's layout, written independently): same
 * tensors, Q/K rows and biases in the converter's order, the rope_freqs divisors. */
static void test_synth_llama3(const char *dir) {
    lq_synth_opts so;
    lq_error err;
    CHECK_OK(lq_synth_shape("tiny", &so, &err), &err);
    so.qkv_bias = true;
    so.rope_llama3 = true;
    so.rope_factor = 8.0f, so.rope_low_freq_factor = 1.0f, so.rope_high_freq_factor = 4.0f;
    so.rope_orig_ctx = 64; /* wavelengths on both sides of 64/4 .. 64/1: all three cases */
    char hf[4200], ref[4200], out[4200];
    snprintf(hf, sizeof hf, "%s/synth-hf", dir);
    snprintf(ref, sizeof ref, "%s/synth-ref.gguf", dir);
    CHECK_OK(lq_synth_write(hf, &so, &err), &err);
    CHECK_OK(lq_synth_write(ref, &so, &err), &err);
    const char *q = qt_quantize(hf, dir, "synth-f32.gguf", "F32", NULL, 2);
    if (!q) return;
    snprintf(out, sizeof out, "%s", q);
    lq_gguf *a = NULL, *b = NULL;
    CHECK_OK(lq_gguf_open(ref, &a, &err), &err);
    CHECK_OK(lq_gguf_open(out, &b, &err), &err);
    if (!a || !b) return;
    CHECK(lq_gguf_n_tensors(a) == lq_gguf_n_tensors(b));
    int64_t differ = 0;
    for (int64_t i = 0; i < lq_gguf_n_tensors(a); i++) {
        const lq_gguf_tensor_info *x = lq_gguf_tensor(a, i);
        int64_t j = lq_gguf_find_tensor(b, x->name);
        CHECKF(j >= 0, "%s missing", x->name);
        if (j < 0) continue;
        const lq_gguf_tensor_info *y = lq_gguf_tensor(b, j);
        CHECK(x->type == LQ_TYPE_F32 && y->type == LQ_TYPE_F32 && !memcmp(x->ne, y->ne, sizeof x->ne));
        /* lq_synth_write draws output.weight from another random stream in its two layouts when
         * rope_freqs is present (its stream ids count the GGUF-only tensor): compare it with the
         * HF checkpoint itself below */
        if (!strcmp(x->name, "output.weight")) continue;
        if (strcmp(x->name, "rope_freqs.weight") != 0) {
            differ += memcmp(x->data, y->data, x->nbytes) != 0;
            continue;
        }
        const float *u = x->data, *v = y->data;
        int kinds[3] = {0, 0, 0};
        for (int64_t k = 0; k < x->ne[0]; k++) {
            CHECKF(fabsf(u[k] - v[k]) <= 1e-5f * u[k], "rope_freqs[%lld]: %g vs %g", (long long)k, u[k], v[k]);
            kinds[u[k] == 1.0f ? 0 : u[k] == 8.0f ? 1 : 2]++;
        }
        CHECK(kinds[0] > 0 && kinds[1] > 0 && kinds[2] > 0);
    }
    CHECKF(differ == 0, "%lld tensors differ from llama.cpp's layout", (long long)differ);
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(hf, &m, &err), &err);
    int64_t j = lq_gguf_find_tensor(b, "output.weight");
    const lq_tensor *t = m ? lq_model_find(m, "output.weight") : NULL;
    CHECK(t && j >= 0 && t->nbytes == lq_gguf_tensor(b, j)->nbytes &&
          !memcmp(t->data, lq_gguf_tensor(b, j)->data, t->nbytes));
    lq_model_close(m);
    lq_gguf_close(a);
    lq_gguf_close(b);
}

int main(void) {
    const char *dir = test_tmpdir("quantize-file");
    char d[4096];
    snprintf(d, sizeof d, "%s", dir);
    test_hf_metadata(d);
    test_gguf_input(d);
    test_determinism(d);
    test_tokenizer(d);
    test_tensor_set(d);
    test_nan(d);
    test_synth_llama3(d);
    qt_rmdir(d);
    TEST_DONE();
}
