/* test_llamacpp.c — against llama.cpp's own output: ../shared/testvectors/imatrix/
 * stories260k-b4747.imatrix.dat (llama.cpp output belongs in ../shared, not in this repository;
 * the test skips without it) was written by llama-imatrix (llama.cpp b4747) with
 *   llama-imatrix -m stories260K.gguf -f tinystories-train-sample.txt -c 512 --chunks 4 --no-ppl
 * It must read as 35 entries with ncall 4, and its importance (value / ncall = mean x²) must
 * match our calibration of the same 4 chunks. llama.cpp keeps its KV cache in F16, which moves
 * the attention outputs (attn_output's and later layers' inputs) by ~1e-3 relative; the first
 * layer's Q/K/V input does not depend on attention at all. */
#include "test.h"

static lq_stats *our_stats(const char *model_path, const char *text_path) {
    lq_error err;
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_runtime *rt = NULL;
    lq_stats_acc *acc = NULL;
    lq_stats *s = NULL;
    lq_calib_chunks c;
    memset(&c, 0, sizeof c);
    char *text = NULL;
    size_t len = 0;
    lq_calib_sample_opts o = {512, 4, false, 0, false};
    lq_runtime_opts ro = {0, 512, 512, false, LQ_ACT_INT8_NONE};
    CHECK_OK(lq_model_open(model_path, &m, &err), &err);
    if (m) CHECK_OK(lq_calib_tokenizer(m, &tok, &err), &err);
    if (tok) CHECK_OK(lq_calib_read_text(text_path, NULL, &text, &len, &err), &err);
    if (text) CHECK_OK(lq_calib_sample(tok, text, len, &o, &c, &err), &err);
    if (c.n_chunks == 4) CHECK_OK(lq_runtime_create(m, &ro, &rt, &err), &err);
    if (rt) CHECK_OK(lq_stats_acc_new(0, false, &acc, &err), &err);
    if (acc) CHECK_OK(lq_calib_accumulate(rt, &c, acc, NULL, NULL, &err), &err);
    lq_stats_meta meta = {0, NULL, 4, 512};
    if (acc) CHECK_OK(lq_stats_from_acc(acc, &meta, &s, &err), &err);
    lq_stats_acc_free(acc);
    lq_runtime_free(rt);
    lq_calib_chunks_free(&c);
    free(text);
    lq_tokenizer_free(tok);
    lq_model_close(m);
    return s;
}

/* Worst relative difference of the importance rows of one weight. */
static double importance_diff(const lq_stats_entry *a, const lq_stats_entry *b) {
    float ia[256], ib[256];
    lq_error err;
    if (a->n_in != b->n_in || a->n_in > 256 || lq_stats_importance(a, ia, &err) || lq_stats_importance(b, ib, &err))
        return INFINITY;
    double worst = 0;
    for (int64_t j = 0; j < a->n_in; j++) worst = fmax(worst, fabs(ia[j] - ib[j]) / ib[j]);
    return worst;
}

int main(int argc, char **argv) {
    const char *dat = argc > 1 ? argv[1] : test_shared_path("testvectors/imatrix/stories260k-b4747.imatrix.dat");
    const char *model_path = test_shared_path("models/stories260k/stories260K.gguf");
    const char *text_path = test_shared_path("text/tinystories-train-sample.txt");
    lq_error err;
    lq_stats *ref = NULL;
    CHECK_OK(lq_stats_read(dat, &ref, &err), &err);
    if (!ref) TEST_DONE();
    const lq_stats_meta *meta = lq_stats_get_meta(ref);
    CHECK(lq_stats_file_format(ref) == LQ_STATS_LEGACY_DAT && lq_stats_n_entries(ref) == 35);
    CHECK(meta->chunk_count == 4 && meta->n_datasets == 1 && strstr(meta->datasets[0], "tinystories-train-sample.txt"));
    for (int64_t i = 0; i < lq_stats_n_entries(ref); i++) {
        const lq_stats_entry *e = lq_stats_entry_at(ref, i);
        CHECKF(e->legacy && e->counts[0] == 4 && (e->n_in == 64 || e->n_in == 172), "%s", e->name);
    }
    lq_stats *ours = our_stats(model_path, text_path);
    if (!ours) TEST_DONE();
    CHECK(lq_stats_n_entries(ours) == 35);
    double worst_qkv0 = 0, worst = 0;
    for (int64_t i = 0; i < lq_stats_n_entries(ours); i++) {
        const lq_stats_entry *e = lq_stats_entry_at(ours, i), *r = lq_stats_find(ref, e->name);
        CHECKF(r != NULL, "%s missing from llama.cpp's file", e->name);
        if (!r) continue;
        CHECK(e->counts[0] == 4 * 512);
        double d = importance_diff(e, r);
        worst = fmax(worst, d);
        if (!strncmp(e->name, "blk.0.attn_", 11) && strcmp(e->name, "blk.0.attn_output.weight"))
            worst_qkv0 = fmax(worst_qkv0, d);
    }
    fprintf(stderr, "importance vs llama-imatrix: blk.0 Q/K/V %.3g, all weights %.3g (relative)\n", worst_qkv0, worst);
    CHECKF(worst_qkv0 < 1e-4, "blk.0 Q/K/V importance differs by %.3g", worst_qkv0);
    CHECKF(worst < 5e-3, "importance differs by %.3g", worst);
    lq_stats_free(ours);
    lq_stats_free(ref);
    TEST_DONE();
}
