/* test_gguf_shared.c — every GGUF under ../shared parses, and known facts about them hold
 * (facts from shared/README.md, testvectors/vocab/README.md and the reference notes). */
#include "test.h"

#include <dirent.h>

static int64_t key_or_fail(const lq_gguf *g, const char *key) {
    int64_t i = lq_gguf_find_key(g, key);
    CHECKF(i >= 0, "%s: key %s missing", lq_gguf_path(g), key);
    return i;
}

static uint64_t get_u64(const lq_gguf *g, const char *key) {
    lq_error err;
    uint64_t v = UINT64_MAX;
    int64_t i = key_or_fail(g, key);
    if (i >= 0) CHECK_OK(lq_gguf_get_u64(g, i, &v, &err), &err);
    return v;
}

static bool str_is(lq_str s, const char *want) {
    return s.ptr && s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Structural invariants any valid file must satisfy, checked through the public accessors. */
static void check_invariants(const lq_gguf *g) {
    CHECK(lq_gguf_version(g) == 3);
    uint32_t align = lq_gguf_alignment(g);
    CHECK(align == LQ_GGUF_DEFAULT_ALIGNMENT);
    CHECK(lq_gguf_data_offset(g) % align == 0);
    for (int64_t i = 0; i < lq_gguf_n_kv(g); i++) {
        lq_str k = lq_gguf_key(g, i);
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(k.len < 255 ? k.len : 255), k.ptr);
        CHECK(lq_gguf_find_key(g, key) == i);
        if (lq_gguf_kv_type(g, i) == LQ_GGUF_ARRAY && lq_gguf_arr_type(g, i) == LQ_GGUF_STRING) {
            uint64_t n = lq_gguf_arr_n(g, i);
            /* Elements are contiguous: each string starts 8 bytes after the previous one ends. */
            for (uint64_t j = 1; j < n; j++) {
                lq_str a = lq_gguf_arr_str(g, i, j - 1), b = lq_gguf_arr_str(g, i, j);
                if (b.ptr != a.ptr + a.len + 8) {
                    CHECKF(0, "%s: %s[%" PRIu64 "] not contiguous", lq_gguf_path(g), key, j);
                    break;
                }
            }
            CHECK(lq_gguf_arr_str(g, i, n).ptr == NULL);
        }
    }
    uint64_t end = 0;
    for (int64_t i = 0; i < lq_gguf_n_tensors(g); i++) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, i);
        CHECK(lq_gguf_find_tensor(g, t->name) == i);
        CHECK(t->offset % align == 0);
        CHECK((const uint8_t *)t->data - (const uint8_t *)lq_gguf_tensor(g, 0)->data ==
              (ptrdiff_t)(t->offset - lq_gguf_tensor(g, 0)->offset));
        size_t row = lq_row_size(t->type, t->ne[0]);
        CHECK(t->nbytes == row * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]));
        if (t->offset + t->nbytes > end) end = t->offset + t->nbytes;
    }
    if (lq_gguf_n_tensors(g) > 0) CHECK(lq_gguf_data_offset(g) + end <= lq_gguf_file_size(g));
}

static void check_stories260k(void) {
    const char *path = test_shared_path("models/stories260k/stories260K.gguf");
    lq_gguf *g = NULL;
    lq_error err;
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (!g) return;
    check_invariants(g);
    /* shared/README.md: 5 layers, dim 64, ffn 172, 8 heads / 4 KV heads, vocab 512, all F32. */
    CHECK(str_is(lq_gguf_get_str(g, key_or_fail(g, "general.architecture")), "llama"));
    CHECK(get_u64(g, "llama.block_count") == 5);
    CHECK(get_u64(g, "llama.embedding_length") == 64);
    CHECK(get_u64(g, "llama.feed_forward_length") == 172);
    CHECK(get_u64(g, "llama.attention.head_count") == 8);
    CHECK(get_u64(g, "llama.attention.head_count_kv") == 4);
    int64_t tok = key_or_fail(g, "tokenizer.ggml.tokens");
    CHECK(lq_gguf_kv_type(g, tok) == LQ_GGUF_ARRAY);
    CHECK(lq_gguf_arr_type(g, tok) == LQ_GGUF_STRING);
    CHECK(lq_gguf_arr_n(g, tok) == 512);
    /* 9 tensors per block + token_embd + output_norm (+ output when untied). */
    int64_t nt = lq_gguf_n_tensors(g);
    int64_t expect = 2 + 9 * 5 + (lq_gguf_find_tensor(g, "output.weight") >= 0 ? 1 : 0);
    CHECKF(nt == expect, "stories260K: %" PRId64 " tensors, expected %" PRId64, nt, expect);
    int64_t emb = lq_gguf_find_tensor(g, "token_embd.weight");
    CHECK(emb >= 0);
    if (emb >= 0) {
        const lq_gguf_tensor_info *t = lq_gguf_tensor(g, emb);
        CHECK(t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512);
        CHECK(t->nbytes == 64 * 512 * 4);
    }
    int64_t down = lq_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    CHECK(down >= 0);
    if (down >= 0) CHECK(lq_gguf_tensor(g, down)->ne[0] == 172 && lq_gguf_tensor(g, down)->ne[1] == 64);
    for (int64_t i = 0; i < nt; i++) CHECK(lq_gguf_tensor(g, i)->type == LQ_TYPE_F32);
    /* Finite F32 weights, not all zero: data pointers reach the real bytes. */
    const lq_gguf_tensor_info *t0 = lq_gguf_tensor(g, emb >= 0 ? emb : 0);
    const float *w = (const float *)t0->data;
    double sum = 0;
    bool finite = true;
    for (int64_t k = 0; k < t0->ne[0] * t0->ne[1]; k++) {
        finite = finite && isfinite(w[k]);
        sum += fabs(w[k]);
    }
    CHECK(finite && sum > 0);
    CHECK(lq_gguf_find_tensor(g, "no.such.tensor") < 0);
    CHECK(lq_gguf_find_key(g, "no.such.key") < 0);
    lq_gguf_close(g);
}

static void check_llama_spm(void) {
    const char *path = test_shared_path("testvectors/vocab/ggml-vocab-llama-spm.gguf");
    lq_gguf *g = NULL;
    lq_error err;
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (!g) return;
    check_invariants(g);
    CHECK(lq_gguf_n_tensors(g) == 0);
    int64_t tok = key_or_fail(g, "tokenizer.ggml.tokens");
    CHECK(lq_gguf_arr_n(g, tok) == 32000);
    CHECK(get_u64(g, "tokenizer.ggml.bos_token_id") == 1);
    CHECK(get_u64(g, "tokenizer.ggml.eos_token_id") == 2);
    CHECK(get_u64(g, "tokenizer.ggml.unknown_token_id") == 0);
    CHECK(str_is(lq_gguf_get_str(g, key_or_fail(g, "tokenizer.ggml.model")), "llama"));
    CHECK(str_is(lq_gguf_get_str(g, key_or_fail(g, "tokenizer.ggml.pre")), "default"));
    bool add_bos = false, add_eos = true;
    CHECK_OK(lq_gguf_get_bool(g, key_or_fail(g, "tokenizer.ggml.add_bos_token"), &add_bos, &err), &err);
    CHECK_OK(lq_gguf_get_bool(g, key_or_fail(g, "tokenizer.ggml.add_eos_token"), &add_eos, &err), &err);
    CHECK(add_bos && !add_eos);
    /* SentencePiece vocabularies: <unk>, <s>, </s>, then the byte tokens <0x00>... */
    CHECK(str_is(lq_gguf_arr_str(g, tok, 0), "<unk>"));
    CHECK(str_is(lq_gguf_arr_str(g, tok, 1), "<s>"));
    CHECK(str_is(lq_gguf_arr_str(g, tok, 2), "</s>"));
    CHECK(str_is(lq_gguf_arr_str(g, tok, 3), "<0x00>"));
    /* token_type [2,3,3,6,6,...] per the notes. */
    int64_t tt = key_or_fail(g, "tokenizer.ggml.token_type");
    CHECK(lq_gguf_arr_type(g, tt) == LQ_GGUF_INT32 && lq_gguf_arr_n(g, tt) == 32000);
    const int32_t want[5] = {2, 3, 3, 6, 6};
    int32_t got[5];
    memcpy(got, lq_gguf_kv_data(g, tt), sizeof got);
    CHECK(memcmp(got, want, sizeof want) == 0);
    CHECK(lq_gguf_kv_data(g, tok) == NULL);
    /* Typed getter on a string key is a format error naming the file and the key. */
    uint64_t v;
    lq_status st = lq_gguf_get_u64(g, key_or_fail(g, "tokenizer.ggml.model"), &v, &err);
    CHECK(st == LQ_ERR_FORMAT && strstr(err.msg, "tokenizer.ggml.model") && strstr(err.msg, path));
    double eps = 0;
    CHECK_OK(lq_gguf_get_f64(g, key_or_fail(g, "llama.attention.layer_norm_rms_epsilon"), &eps, &err), &err);
    CHECK(eps > 0 && eps < 1e-3);
    lq_gguf_close(g);
}

/* Every vocab file: parses; tokens count matches the README table; model/pre strings present. */
static void check_all_vocab(void) {
    static const struct { const char *name; uint64_t n_tokens; const char *model; } known[] = {
        {"llama-spm", 32000, "llama"},     {"phi-3", 32064, "llama"},
        {"gpt-2", 50257, "gpt2"},          {"falcon", 65024, "gpt2"},
        {"mpt", 50432, "gpt2"},            {"starcoder", 49152, "gpt2"},
        {"refact", 49216, "gpt2"},         {"deepseek-llm", 102400, "gpt2"},
        {"deepseek-coder", 32256, "gpt2"},
    };
    const char *dir = test_shared_path("testvectors/vocab");
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    int n_files = 0, n_known = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        lq_gguf *g = NULL;
        lq_error err;
        CHECK_OK(lq_gguf_open(path, &g, &err), &err);
        if (!g) continue;
        n_files++;
        check_invariants(g);
        int64_t tok = key_or_fail(g, "tokenizer.ggml.tokens");
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
            char want[128];
            snprintf(want, sizeof want, "ggml-vocab-%s.gguf", known[k].name);
            if (strcmp(e->d_name, want) != 0) continue;
            n_known++;
            CHECKF(lq_gguf_arr_n(g, tok) == known[k].n_tokens, "%s", path);
            CHECKF(str_is(lq_gguf_get_str(g, key_or_fail(g, "tokenizer.ggml.model")), known[k].model), "%s", path);
        }
        lq_gguf_close(g);
    }
    closedir(d);
    CHECK(n_files >= 9);
    CHECK(n_known == 9);
}

int main(void) {
    check_stories260k();
    check_llama_spm();
    check_all_vocab();
    TEST_DONE();
}
