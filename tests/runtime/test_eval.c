/* test_eval.c — the evaluation API (libquant/eval.c) called directly: perplexity of stories260K
 * against llama.cpp's figures (testvectors/runtime/reference.json), the KL-divergence base file
 * written and read back, comparisons with it and with llama.cpp's base file, and malformed base
 * files refused with one-line errors naming the file. */
#include "test.h"

#include <jansson.h>

#define MODEL_260K "models/stories260k/stories260K.gguf"
/* a base file stores log-probs in steps of 16/65535 nats: rounding errs by half a step, plus a
 * little float rounding of the stored offset */
#define HALF_STEP 1.3e-4

/* A model, its runtime for chunks of n_ctx, and the tokens of a text. */
typedef struct eval_setup {
    lq_model *model;
    lq_runtime *rt;
} eval_setup;

static bool setup(eval_setup *e, const char *model_path, int n_ctx) {
    lq_error err;
    memset(e, 0, sizeof *e);
    CHECK_OK(lq_model_open(model_path, &e->model, &err), &err);
    if (!e->model) return false;
    lq_runtime_opts o = {2, n_ctx, n_ctx, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_runtime_create(e->model, &o, &e->rt, &err), &err);
    return e->rt != NULL;
}

static void teardown(eval_setup *e) {
    lq_runtime_free(e->rt);
    lq_model_close(e->model);
}

/* One-line message that starts with the file's path. */
static bool names_file(const lq_error *err, const char *path) {
    return strncmp(err->msg, path, strlen(path)) == 0 && strchr(err->msg, '\n') == NULL;
}

/* ---------------------------------------------------------------------------------------
 * Perplexity against llama-perplexity
 * ------------------------------------------------------------------------------------- */

typedef struct progress_log {
    int calls, last_chunk, n_chunk;
    double last_ppl;
    int64_t last_scored;
} progress_log;

static void log_progress(void *ctx, int chunk, int n_chunk, const lq_ppl_result *so_far) {
    progress_log *p = (progress_log *)ctx;
    p->calls++;
    if (chunk != p->last_chunk + 1) p->calls = -1000; /* out of order */
    p->last_chunk = chunk;
    p->n_chunk = n_chunk;
    p->last_ppl = so_far->ppl;
    p->last_scored = so_far->n_scored;
}

/* The reference cases with a chunk count; "all" chunks (1578 and 789 of them) take minutes here
 * and run only with LQ_SLOW_TESTS=1. */
static void test_reference_ppl(void) {
    json_error_t je;
    json_t *ref = json_load_file(test_shared_path("testvectors/runtime/reference.json"), 0, &je);
    CHECKF(ref != NULL, "reference.json: %s", je.text);
    if (!ref) return;
    bool slow = getenv("LQ_SLOW_TESTS") && !strcmp(getenv("LQ_SLOW_TESTS"), "1");
    size_t i;
    json_t *c;
    int tested = 0;
    json_array_foreach(json_object_get(ref, "cases"), i, c) {
        json_t *chunks = json_object_get(c, "chunks");
        if (!json_is_integer(chunks) && !slow) continue;
        int n_ctx = (int)json_integer_value(json_object_get(c, "ctx"));
        char model_rel[512], text_rel[512];
        snprintf(model_rel, sizeof model_rel, "%s", json_string_value(json_object_get(c, "model")));
        snprintf(text_rel, sizeof text_rel, "%s", json_string_value(json_object_get(c, "text")));
        eval_setup e;
        if (!setup(&e, test_shared_path(model_rel), n_ctx)) continue;
        lq_error err;
        lq_ppl_tokens toks;
        CHECK_OK(lq_ppl_tokens_from_text(e.model, test_shared_path(text_rel), &toks, &err), &err);
        CHECK(toks.bos == 1); /* stories260K's vocabulary adds BOS = 1 */
        lq_ppl_opts o = {n_ctx, json_is_integer(chunks) ? (int)json_integer_value(chunks) : 0, NULL, NULL};
        progress_log log = {0, 0, 0, 0, 0};
        lq_ppl_result r;
        CHECK_OK(lq_ppl_run(e.model, e.rt, &toks, &o, log_progress, &log, &r, &err), &err);
        double want = json_number_value(json_object_get(c, "ppl"));
        double want_se = json_number_value(json_object_get(c, "ppl_stderr"));
        fprintf(stderr, "%s ctx %d, %d chunks: PPL %.4f +/- %.5f (llama.cpp %.4f +/- %.5f)\n", text_rel, n_ctx,
                r.n_chunk, r.ppl, r.ppl_unc, want, want_se);
        CHECKF(fabs(r.ppl / want - 1) < 1e-3, "PPL %.4f vs llama.cpp %.4f", r.ppl, want);
        CHECKF(fabs(r.ppl_unc / want_se - 1) < 1e-2, "+/- %.5f vs llama.cpp %.5f", r.ppl_unc, want_se);
        /* second halves only: n_ctx - 1 - n_ctx/2 tokens per chunk */
        CHECK(r.n_scored == (int64_t)r.n_chunk * (n_ctx - 1 - n_ctx / 2));
        if (json_is_integer(chunks)) CHECK(r.n_chunk == json_integer_value(chunks));
        CHECK(r.n_tokens == toks.n_tokens && !r.has_kld);
        /* the callback saw every chunk in order, the last time with the final figures */
        CHECK(log.calls == r.n_chunk && log.last_chunk == r.n_chunk && log.n_chunk == r.n_chunk);
        CHECK(log.last_ppl == r.ppl && log.last_scored == r.n_scored);
        lq_ppl_result_free(&r);
        lq_ppl_tokens_free(&toks);
        teardown(&e);
        tested++;
    }
    CHECK(tested >= 2);
    json_decref(ref);
}

/* ---------------------------------------------------------------------------------------
 * Base files
 * ------------------------------------------------------------------------------------- */

/* Logits of one chunk as lq_ppl_run evaluates it (first token replaced by BOS). */
static float *chunk_logits(eval_setup *e, const int32_t *tokens, int n_ctx, int32_t bos) {
    lq_error err;
    int64_t nv = lq_runtime_n_vocab(e->rt);
    float *logits = malloc((size_t)n_ctx * nv * sizeof(float));
    int32_t *chunk = malloc((size_t)n_ctx * sizeof(int32_t));
    memcpy(chunk, tokens, (size_t)n_ctx * sizeof(int32_t));
    if (bos >= 0) chunk[0] = bos;
    lq_runtime_reset(e->rt);
    CHECK_OK(lq_runtime_eval(e->rt, chunk, n_ctx, logits, &err), &err);
    free(chunk);
    return logits;
}

/* Write a base with the model, read it back, compare the model with it. */
static void test_round_trip(const char *tmp, char *base_path, size_t base_path_size) {
    const int n_ctx = 128, n_chunks = 4;
    eval_setup e;
    if (!setup(&e, test_shared_path(MODEL_260K), n_ctx)) return;
    lq_error err;
    lq_ppl_tokens toks;
    CHECK_OK(lq_ppl_tokens_from_text(e.model, test_shared_path("text/tinystories-valid.txt"), &toks, &err), &err);
    snprintf(base_path, base_path_size, "%s/own.kld", tmp);
    lq_ppl_opts plain = {n_ctx, n_chunks, NULL, NULL}, save = {n_ctx, n_chunks, NULL, base_path};
    lq_ppl_result r_plain, r_save, r_cmp;
    CHECK_OK(lq_ppl_run(e.model, e.rt, &toks, &plain, NULL, NULL, &r_plain, &err), &err);
    CHECK_OK(lq_ppl_run(e.model, e.rt, &toks, &save, NULL, NULL, &r_save, &err), &err);
    /* saving changes nothing in the figures; the .tmp file is gone */
    CHECK(r_save.ppl == r_plain.ppl && r_save.n_scored == r_plain.n_scored && r_save.n_scored == n_chunks * 63);
    char tmp_path[4200];
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", base_path);
    CHECK(access(tmp_path, F_OK) != 0);

    lq_kld_base b;
    CHECK_OK(lq_kld_base_open(base_path, &b, &err), &err);
    CHECK(b.n_ctx == n_ctx && b.n_chunk == n_chunks && b.n_vocab == 512 && b.rows_per_chunk == 63);
    CHECK(b.row_u16 == lq_kld_row_u16(512));
    CHECK(b.tokens && memcmp(b.tokens, toks.tokens, (size_t)n_ctx * n_chunks * sizeof(int32_t)) == 0);
    /* the first and the last stored rows are the encodings of those positions' logits */
    uint16_t *row = malloc(b.row_u16 * 2);
    float *logits = chunk_logits(&e, toks.tokens, n_ctx, toks.bos);
    lq_kld_encode_row(logits + (size_t)(n_ctx / 2) * 512, 512, toks.tokens[n_ctx / 2 + 1], row);
    CHECK(b.rows && memcmp(b.rows, row, b.row_u16 * 2) == 0);
    free(logits);
    const int32_t *last = toks.tokens + (size_t)(n_chunks - 1) * n_ctx;
    logits = chunk_logits(&e, last, n_ctx, toks.bos);
    lq_kld_encode_row(logits + (size_t)(n_ctx - 2) * 512, 512, last[n_ctx - 1], row);
    CHECK(b.rows && memcmp(b.rows + ((size_t)n_chunks * 63 - 1) * b.row_u16, row, b.row_u16 * 2) == 0);
    free(logits);
    free(row);

    /* the same model against its own base */
    lq_ppl_tokens from_base;
    CHECK_OK(lq_ppl_tokens_from_kld(e.model, &b, &from_base, &err), &err);
    CHECK(from_base.n_tokens == (int64_t)n_ctx * n_chunks && from_base.bos == toks.bos);
    lq_ppl_opts cmp = {0, 0, &b, NULL};
    int n_chunk = 0;
    CHECK_OK(lq_ppl_n_chunk(&from_base, &cmp, &n_chunk, &err), &err);
    CHECK(n_chunk == n_chunks);
    CHECK_OK(lq_ppl_run(e.model, e.rt, &from_base, &cmp, NULL, NULL, &r_cmp, &err), &err);
    CHECK(r_cmp.has_kld && r_cmp.n_scored == r_plain.n_scored && r_cmp.ppl == r_plain.ppl);
    const lq_kld_stats *k = &r_cmp.kld;
    fprintf(stderr, "round trip: KLD %.3g (max %.3g), same top %.4f, ln ratio %.3g, PPL %.4f vs base %.4f\n",
            k->kld.mean, k->kld_sorted ? k->kld_sorted[r_cmp.n_scored - 1] : NAN, k->same_top.mean,
            k->log_ratio.mean, k->ppl.mean, k->ppl_base.mean);
    /* only the u16 storage of the log-probs separates base and model: steps of 16/65535 nats
     * (half a step = 1.2e-4 per entry) leave KLD ~1e-7, and the same top token everywhere */
    CHECKF(fabs(k->kld.mean) < 2e-6, "mean KLD %.3g", k->kld.mean);
    CHECK(k->same_top.mean == 1.0);
    CHECKF(fabs(k->log_ratio.mean) < HALF_STEP, "ln ratio %.3g", k->log_ratio.mean);
    CHECK(fabs(k->ppl_base.mean / k->ppl.mean - 1) < HALF_STEP);
    CHECK(k->ppl.mean == r_cmp.ppl);
    /* sorted per-token values, each within the storage resolution: a token's KLD is a
     * probability-weighted mean of the rounding errors, its dp = p·(1 - e^error) */
    CHECK(k->kld_sorted && k->p_diff_sorted);
    if (k->kld_sorted && k->p_diff_sorted) {
        for (int64_t i = 1; i < r_cmp.n_scored; i++)
            CHECK(k->kld_sorted[i - 1] <= k->kld_sorted[i] && k->p_diff_sorted[i - 1] <= k->p_diff_sorted[i]);
        CHECKF(k->kld_sorted[0] > -HALF_STEP && k->kld_sorted[r_cmp.n_scored - 1] < HALF_STEP, "KLD %.3g .. %.3g",
               k->kld_sorted[0], k->kld_sorted[r_cmp.n_scored - 1]);
        CHECKF(k->p_diff_sorted[0] > -HALF_STEP && k->p_diff_sorted[r_cmp.n_scored - 1] < HALF_STEP, "dp %.3g .. %.3g",
               k->p_diff_sorted[0], k->p_diff_sorted[r_cmp.n_scored - 1]);
    }
    /* fewer chunks than the file holds */
    lq_ppl_result r_two;
    lq_ppl_opts two = {0, 2, &b, NULL};
    CHECK_OK(lq_ppl_run(e.model, e.rt, &from_base, &two, NULL, NULL, &r_two, &err), &err);
    CHECK(r_two.n_chunk == 2 && r_two.n_scored == 2 * 63);
    lq_ppl_result_free(&r_two);
    /* a context that is not the file's */
    lq_ppl_opts wrong_ctx = {64, 0, &b, NULL};
    CHECK(lq_ppl_n_chunk(&from_base, &wrong_ctx, &n_chunk, &err) == LQ_ERR_INVALID && names_file(&err, base_path));

    lq_ppl_result_free(&r_plain);
    lq_ppl_result_free(&r_save);
    lq_ppl_result_free(&r_cmp);
    lq_ppl_tokens_free(&from_base);
    lq_kld_base_close(&b);
    lq_ppl_tokens_free(&toks);
    teardown(&e);
}

/* Our runtime against llama.cpp's own base file (its tokens and log-probabilities). */
static void test_llamacpp_base(void) {
    const char *path = test_shared_path("testvectors/runtime/stories260k-f32-c256-64chunks.kld");
    lq_error err;
    lq_kld_base b;
    CHECK_OK(lq_kld_base_open(path, &b, &err), &err);
    CHECK(b.n_ctx == 256 && b.n_chunk == 64 && b.n_vocab == 512);
    eval_setup e;
    if (b.n_ctx == 256 && setup(&e, test_shared_path(MODEL_260K), 256)) {
        lq_ppl_tokens toks;
        CHECK_OK(lq_ppl_tokens_from_kld(e.model, &b, &toks, &err), &err);
        lq_ppl_opts o = {256, 4, &b, NULL};
        lq_ppl_result r;
        CHECK_OK(lq_ppl_run(e.model, e.rt, &toks, &o, NULL, NULL, &r, &err), &err);
        fprintf(stderr, "llama.cpp base, 4 chunks: KLD %.3g, same top %.4f\n", r.kld.kld.mean, r.kld.same_top.mean);
        /* llama.cpp keeps K/V in f16: its logits differ from ours by ~1e-3 */
        CHECK(r.n_scored == 4 * 127 && fabs(r.kld.kld.mean) < 2e-5 && r.kld.same_top.mean > 0.995);
        lq_ppl_result_free(&r);
        lq_ppl_tokens_free(&toks);
        /* a model with another vocabulary cannot use the file */
        lq_model *other = NULL;
        CHECK_OK(lq_model_open(test_shared_path("models/tinystories-656k"), &other, &err), &err);
        if (other)
            CHECK(lq_ppl_tokens_from_kld(other, &b, &toks, &err) == LQ_ERR_INVALID && names_file(&err, path));
        lq_model_close(other);
        teardown(&e);
    }
    lq_kld_base_close(&b);
}

/* ---------------------------------------------------------------------------------------
 * Malformed base files
 * ------------------------------------------------------------------------------------- */

static void write_bytes(const char *path, const void *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

/* bytes (a valid file) changed by edit, written to tmp/name: open must refuse it */
static void expect_refused(const char *tmp, const char *name, const uint8_t *good, size_t size, size_t new_size,
                           size_t patch_at, const void *patch, size_t patch_len, lq_status want) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    uint8_t *bytes = calloc(new_size + 1, 1);
    memcpy(bytes, good, size < new_size ? size : new_size);
    if (patch) memcpy(bytes + patch_at, patch, patch_len);
    write_bytes(path, bytes, new_size);
    free(bytes);
    lq_error err;
    lq_error_clear(&err);
    lq_kld_base b;
    lq_status st = lq_kld_base_open(path, &b, &err);
    CHECKF(st == want && names_file(&err, path), "%s: status %d, message '%s'", name, (int)st, err.msg);
    CHECK(b.map == NULL && b.rows == NULL && b.path == NULL); /* nothing left open */
    fprintf(stderr, "  %-10s -> %s\n", name, err.msg);
}

static void test_malformed(const char *tmp, const char *good_path) {
    size_t size = 0;
    uint8_t *good = test_read_file(good_path, &size);
    CHECK(good && size > 5000);
    if (!good) return;
    uint32_t u;
    int32_t i;
    fprintf(stderr, "malformed base files:\n");
    expect_refused(tmp, "short", good, size, size - 1, 0, NULL, 0, LQ_ERR_FORMAT);
    expect_refused(tmp, "long", good, size, size + 2, 0, NULL, 0, LQ_ERR_FORMAT);
    expect_refused(tmp, "header", good, size, 12, 0, NULL, 0, LQ_ERR_FORMAT);
    expect_refused(tmp, "empty", good, size, 0, 0, NULL, 0, LQ_ERR_FORMAT);
    expect_refused(tmp, "magic", good, size, size, 0, "_logitz_", 8, LQ_ERR_FORMAT);
    u = 2;
    expect_refused(tmp, "n_ctx", good, size, size, 8, &u, 4, LQ_ERR_FORMAT);
    u = 0xffffffffu; /* would overflow n_ctx · n_chunk without the range check */
    expect_refused(tmp, "n_ctx_huge", good, size, size, 8, &u, 4, LQ_ERR_FORMAT);
    i = -5;
    expect_refused(tmp, "n_vocab", good, size, size, 12, &i, 4, LQ_ERR_FORMAT);
    i = 5; /* one chunk more than the data */
    expect_refused(tmp, "n_chunk", good, size, size, 16, &i, 4, LQ_ERR_FORMAT);
    i = 0x7fffffff; /* rows · row bytes far beyond any file */
    expect_refused(tmp, "n_chunk_max", good, size, size, 16, &i, 4, LQ_ERR_FORMAT);
    i = 512; /* a token id outside the vocabulary */
    expect_refused(tmp, "token", good, size, size, 20 + 4 * 300, &i, 4, LQ_ERR_FORMAT);
    i = -1;
    expect_refused(tmp, "token_neg", good, size, size, 20, &i, 4, LQ_ERR_FORMAT);
    char missing[4300];
    snprintf(missing, sizeof missing, "%s/missing.kld", tmp);
    lq_error err;
    lq_kld_base b;
    CHECK(lq_kld_base_open(missing, &b, &err) == LQ_ERR_IO && names_file(&err, missing));
    CHECK(lq_kld_base_open(tmp, &b, &err) == LQ_ERR_IO && names_file(&err, tmp)); /* a directory */

    /* a row whose scale is not finite opens (rows are checked as they are used) but does not
     * score: NaN would spread into every statistic */
    char bad_row[4300];
    snprintf(bad_row, sizeof bad_row, "%s/nan_row.kld", tmp);
    uint32_t n_ctx, n_chunk;
    memcpy(&n_ctx, good + 8, 4), memcpy(&n_chunk, good + 16, 4);
    size_t rows_at = 20 + 4 * (size_t)n_ctx * n_chunk, row_bytes = lq_kld_row_u16(512) * 2;
    float nan_scale = NAN;
    memcpy(good + rows_at + 5 * row_bytes, &nan_scale, 4); /* chunk 1, scored token 5 = position 64 + 5 */
    write_bytes(bad_row, good, size);
    eval_setup e;
    if (lq_kld_base_open(bad_row, &b, &err) == LQ_OK && setup(&e, test_shared_path(MODEL_260K), (int)n_ctx)) {
        lq_ppl_tokens toks;
        CHECK_OK(lq_ppl_tokens_from_kld(e.model, &b, &toks, &err), &err);
        lq_ppl_opts o = {0, 0, &b, NULL};
        lq_ppl_result r;
        CHECK(lq_ppl_run(e.model, e.rt, &toks, &o, NULL, NULL, &r, &err) == LQ_ERR_FORMAT);
        CHECKF(names_file(&err, bad_row) && strstr(err.msg, "chunk 1, position 69:"), "%s", err.msg);
        CHECK(r.n_scored == 0 && r.values_ == NULL);
        fprintf(stderr, "  %-10s -> %s\n", "nan_row", err.msg);
        lq_ppl_tokens_free(&toks);
        teardown(&e);
    } else {
        CHECK(false);
    }
    lq_kld_base_close(&b);
    free(good);
}

/* The writer: its checks, and nothing left behind when a base is not finished. */
static void test_writer(const char *tmp) {
    char path[4300], tmp_path[4400];
    snprintf(path, sizeof path, "%s/partial.kld", tmp);
    snprintf(tmp_path, sizeof tmp_path, "%s.tmp", path);
    int32_t tokens[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t row_u16 = lq_kld_row_u16(16);
    uint16_t *row = calloc(row_u16, 2);
    lq_error err;
    lq_kld_writer *w = NULL;
    /* one chunk of 8 tokens scores 8 - 1 - 4 = 3 rows */
    CHECK_OK(lq_kld_writer_open(path, 8, 16, 1, tokens, &w, &err), &err);
    if (w) {
        CHECK_OK(lq_kld_writer_add(w, row, &err), &err);
        CHECK(access(tmp_path, F_OK) == 0 && access(path, F_OK) != 0);
        CHECK(lq_kld_writer_finish(w, &err) == LQ_ERR_INVALID && names_file(&err, path)); /* 1 row of 3 */
        CHECK(access(tmp_path, F_OK) != 0 && access(path, F_OK) != 0);
    }
    CHECK_OK(lq_kld_writer_open(path, 8, 16, 1, tokens, &w, &err), &err);
    if (w) {
        for (int r = 0; r < 3; r++) CHECK_OK(lq_kld_writer_add(w, row, &err), &err);
        CHECK(lq_kld_writer_add(w, row, &err) == LQ_ERR_INVALID); /* a fourth row */
        CHECK_OK(lq_kld_writer_finish(w, &err), &err);
        lq_kld_base b;
        CHECK_OK(lq_kld_base_open(path, &b, &err), &err);
        CHECK(b.n_ctx == 8 && b.n_vocab == 16 && b.n_chunk == 1 && b.rows_per_chunk == 3 && b.tokens &&
              b.tokens[7] == 8);
        lq_kld_base_close(&b);
    }
    CHECK_OK(lq_kld_writer_open(path, 8, 16, 1, tokens, &w, &err), &err);
    if (w) lq_kld_writer_abort(w);
    CHECK(access(tmp_path, F_OK) != 0);
    char no_dir[4300];
    snprintf(no_dir, sizeof no_dir, "%s/no/such/dir.kld", tmp);
    CHECK(lq_kld_writer_open(no_dir, 8, 16, 1, tokens, &w, &err) == LQ_ERR_IO && w == NULL);
    CHECK(lq_kld_writer_open(path, 2, 16, 1, tokens, &w, &err) == LQ_ERR_INVALID && w == NULL);
    free(row);
}

/* lq_ppl_n_chunk: the text must hold two chunks; --chunks caps, never extends. */
static void test_chunking(void) {
    int32_t tokens[1000] = {0};
    lq_ppl_tokens in = {tokens, 1000, 1, "text"};
    lq_error err;
    int n = 0;
    lq_ppl_opts o = {100, 0, NULL, NULL};
    CHECK_OK(lq_ppl_n_chunk(&in, &o, &n, &err), &err);
    CHECK(n == 10);
    o.n_chunks = 3;
    CHECK_OK(lq_ppl_n_chunk(&in, &o, &n, &err), &err);
    CHECK(n == 3);
    o.n_chunks = 50;
    CHECK_OK(lq_ppl_n_chunk(&in, &o, &n, &err), &err);
    CHECK(n == 10);
    o.n_ctx = 501;
    CHECK(lq_ppl_n_chunk(&in, &o, &n, &err) == LQ_ERR_INVALID && names_file(&err, "text"));
    o.n_ctx = 3;
    CHECK(lq_ppl_n_chunk(&in, &o, &n, &err) == LQ_ERR_INVALID);
    /* percentiles: linear interpolation between order statistics */
    const float v[5] = {1, 2, 4, 8, 16};
    CHECK(lq_ppl_percentile(v, 5, 0.5) == 4 && lq_ppl_percentile(v, 5, 0) == 1 && lq_ppl_percentile(v, 5, 1) == 16);
    CHECK(fabs(lq_ppl_percentile(v, 5, 0.875) - 12) < 1e-12); /* 3.5 of 4 intervals */
}

int main(void) {
    test_chunking();
    test_writer(test_tmpdir("eval-writer"));
    const char *tmp = test_tmpdir("eval");
    char base[4300];
    test_round_trip(tmp, base, sizeof base);
    test_malformed(tmp, base);
    test_llamacpp_base();
    test_reference_ppl();
    TEST_DONE();
}
