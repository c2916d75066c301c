/* test_sample.c — llama-imatrix chunking on the stories260K tokenizer: chunks are consecutive
 * slices of the whole text's token ids (tokenized here independently) with BOS first; a seed
 * picks the same chunks every time, different seeds pick different ones, every chunk is
 * equally likely; too-short texts and oversized requests behave as llama-imatrix does. */
#include "test.h"

static lq_tokenizer *tok;
static char *text;
static size_t text_len;

static void sample(int64_t chunk, int64_t n, bool shuffle, uint64_t seed, size_t len, lq_calib_chunks *c) {
    lq_error err;
    lq_calib_sample_opts o = {chunk, n, shuffle, seed, false};
    CHECK_OK(lq_calib_sample(tok, text, len, &o, c, &err), &err);
}

static void test_in_order(void) {
    lq_error err;
    size_t len = 40000;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    CHECK_OK(lq_tokenize(tok, text, len, true, false, &ids, &n_ids, &err), &err);
    int32_t bos = lq_tokenizer_bos(tok);
    CHECK(lq_tokenizer_add_bos(tok) && bos >= 0 && ids[0] == bos);
    lq_calib_chunks c;
    sample(100, 6, false, 0, len, &c);
    CHECK(c.n_chunks == 6 && c.chunk_size == 100 && c.n_text_tokens == n_ids && c.n_text_chunks == n_ids / 100);
    for (int64_t i = 0; i < c.n_chunks; i++) {
        CHECK(c.source_index[i] == i);
        CHECK(c.tokens[i * 100] == bos);
        CHECK(!memcmp(c.tokens + i * 100 + 1, ids + i * 100 + 1, 99 * sizeof(int32_t)));
    }
    /* a mid-text chunk does not start with BOS in the text, only after the substitution */
    CHECK(ids[300] != bos);
    lq_calib_chunks_free(&c);
    /* 0 chunks = all; more than the text holds = all */
    sample(100, 0, false, 0, len, &c);
    CHECK(c.n_chunks == n_ids / 100);
    lq_calib_chunks_free(&c);
    sample(100, 100000, true, 5, len, &c);
    CHECK(c.n_chunks == n_ids / 100);
    for (int64_t i = 0; i < c.n_chunks; i++) CHECK(c.source_index[i] == i);
    lq_calib_chunks_free(&c);
    /* too short for one chunk */
    lq_calib_sample_opts o = {n_ids + 1, 0, false, 0, false};
    CHECK(lq_calib_sample(tok, text, len, &o, &c, &err) == LQ_ERR_INVALID && strstr(err.msg, "fewer than one chunk"));
    free(ids);
}

static bool same_chunks(const lq_calib_chunks *a, const lq_calib_chunks *b) {
    return a->n_chunks == b->n_chunks &&
           !memcmp(a->source_index, b->source_index, (size_t)a->n_chunks * sizeof(int64_t)) &&
           !memcmp(a->tokens, b->tokens, (size_t)(a->n_chunks * a->chunk_size) * sizeof(int32_t));
}

static void test_seeded(void) {
    size_t len = 100000;
    lq_calib_chunks a, b, first;
    sample(128, 8, true, 7, len, &a);
    sample(128, 8, true, 7, len, &b);
    CHECK(same_chunks(&a, &b));
    lq_calib_chunks_free(&b);
    sample(128, 8, false, 7, len, &first);
    CHECK(!same_chunks(&a, &first)); /* the seed is used at all */
    /* chosen chunks: ascending, distinct, inside the text, with the text's tokens */
    for (int64_t i = 0; i < a.n_chunks; i++) {
        CHECK(a.source_index[i] >= 0 && a.source_index[i] < a.n_text_chunks);
        if (i) CHECK(a.source_index[i] > a.source_index[i - 1]);
    }
    lq_calib_chunks all;
    sample(128, 0, false, 0, len, &all);
    for (int64_t i = 0; i < a.n_chunks; i++)
        CHECK(!memcmp(a.tokens + i * 128, all.tokens + a.source_index[i] * 128, 128 * sizeof(int32_t)));
    /* other seeds pick other sets */
    int differ = 0;
    for (uint64_t s = 0; s < 20; s++) {
        if (s == 7) continue;
        sample(128, 8, true, s, len, &b);
        differ += !same_chunks(&a, &b);
        lq_calib_chunks_free(&b);
    }
    CHECKF(differ >= 18, "only %d of 19 other seeds chose other chunks", differ);
    lq_calib_chunks_free(&a);
    lq_calib_chunks_free(&first);
    lq_calib_chunks_free(&all);
}

/* One chunk of about ten, 2000 seeds: every chunk is chosen about 200 times (binomial sd ~13). */
static void test_uniform(void) {
    size_t len = 3000;
    lq_calib_chunks c;
    sample(64, 0, false, 0, len, &c);
    int64_t avail = c.n_chunks;
    lq_calib_chunks_free(&c);
    int64_t chunk = 64;
    while (avail > 10) { /* a chunk size that leaves exactly 10 chunks or close to it */
        chunk += 8;
        sample(chunk, 0, false, 0, len, &c);
        avail = c.n_chunks;
        lq_calib_chunks_free(&c);
    }
    int hits[16] = {0};
    for (uint64_t s = 0; s < 2000; s++) {
        sample(chunk, 1, true, s * 7919 + 1, len, &c);
        if (c.n_chunks == 1) hits[c.source_index[0]]++;
        lq_calib_chunks_free(&c);
    }
    double expect = 2000.0 / (double)avail;
    for (int64_t i = 0; i < avail; i++)
        CHECKF(fabs(hits[i] - expect) < 5 * sqrt(expect), "chunk %lld chosen %d times, expected ~%.0f",
               (long long)i, hits[i], expect);
}

int main(void) {
    const char *model_path = test_shared_path("models/stories260k/stories260K.gguf");
    const char *text_path = test_shared_path("text/tinystories-train-sample.txt");
    lq_error err;
    lq_model *m = NULL;
    CHECK_OK(lq_model_open(model_path, &m, &err), &err);
    CHECK_OK(lq_calib_tokenizer(m, &tok, &err), &err);
    CHECK_OK(lq_calib_read_text(text_path, NULL, &text, &text_len, &err), &err);
    if (!tok || !text) TEST_DONE();
    CHECK(text_len == 2097152);
    test_in_order();
    test_seeded();
    test_uniform();
    free(text);
    lq_tokenizer_free(tok);
    lq_model_close(m);
    TEST_DONE();
}
