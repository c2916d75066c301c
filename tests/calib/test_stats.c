/* test_stats.c — statistics accumulator and files: sums against a direct double computation,
 * GGUF write → read (bit-exact), llama.cpp-layout GGUF without our extra tensors, legacy .dat
 * write → read, importance values and their fallbacks, and malformed files (one-line errors
 * naming file and tensor/entry, never a crash). */
#include "test.h"

#include <float.h>

static char tmp_path[4096];
static const char *tmp_file(const char *dir, const char *name) {
    snprintf(tmp_path, sizeof tmp_path, "%s/%s", dir, name);
    return tmp_path;
}

/* A deterministic activation matrix with a wide dynamic range and negative values. */
static void fill_x(float *x, int64_t n_tok, int64_t n_in, uint64_t seed) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = test_rand_normal(&s) * (1.0f + (float)(i % n_in) / 4.0f);
}

/* Accumulates two weights over two additions each and checks the frozen statistics against
 * sums computed here in double. */
static void test_accumulate(void) {
    lq_error err;
    lq_stats_acc *acc = NULL;
    CHECK_OK(lq_stats_acc_new(1, false, &acc, &err), &err);
    enum { T1 = 7, T2 = 5, N = 40, M = 24 };
    float xa[T1 * N], xb[T2 * N], xc[T1 * M];
    fill_x(xa, T1, N, 11);
    fill_x(xb, T2, N, 12);
    fill_x(xc, T1, M, 13);
    CHECK_OK(lq_stats_acc_add(acc, "blk.0.attn_q.weight", xa, T1, N, &err), &err);
    CHECK_OK(lq_stats_acc_add(acc, "blk.0.ffn_down.weight", xc, T1, M, &err), &err);
    CHECK_OK(lq_stats_acc_add(acc, "blk.0.attn_q.weight", xb, T2, N, &err), &err);
    /* names outside blk.* are skipped, as llama-imatrix does without --process-output */
    CHECK_OK(lq_stats_acc_add(acc, "output.weight", xa, T1, N, &err), &err);
    CHECK(lq_stats_acc_n_entries(acc) == 2);
    /* channel count change and NaN are refused */
    CHECK(lq_stats_acc_add(acc, "blk.0.attn_q.weight", xa, 1, N - 1, &err) == LQ_ERR_INVALID);
    float bad[N];
    memcpy(bad, xa, sizeof bad);
    bad[3] = NAN;
    CHECK(lq_stats_acc_add(acc, "blk.0.attn_q.weight", bad, 1, N, &err) == LQ_ERR_NUMERIC);
    CHECKF(strstr(err.msg, "blk.0.attn_q.weight") && strstr(err.msg, "channel 3"), "%s", err.msg);

    const char *ds[] = {"calib.txt"};
    lq_stats_meta meta = {1, ds, 2, 512};
    lq_stats *s = NULL;
    CHECK_OK(lq_stats_from_acc(acc, &meta, &s, &err), &err);
    const lq_stats_entry *e = lq_stats_find(s, "blk.0.attn_q.weight");
    CHECK(e && e->n_in == N && e->n_experts == 1 && e->counts[0] == (float)(T1 + T2));
    for (int j = 0; e && j < N; j++) {
        double s2 = 0, sa = 0;
        float mx = 0;
        for (int t = 0; t < T1; t++) {
            s2 += (double)xa[t * N + j] * xa[t * N + j];
            sa += fabs((double)xa[t * N + j]);
            mx = fmaxf(mx, fabsf(xa[t * N + j]));
        }
        for (int t = 0; t < T2; t++) {
            s2 += (double)xb[t * N + j] * xb[t * N + j];
            sa += fabs((double)xb[t * N + j]);
            mx = fmaxf(mx, fabsf(xb[t * N + j]));
        }
        CHECKF(e->sum_x2[j] == (float)s2, "channel %d: %g vs %g", j, (double)e->sum_x2[j], s2);
        CHECK(e->sum_abs[j] == (float)sa);
        CHECK(e->max_abs[j] == mx);
    }
    float imp[N], mean_abs[N];
    CHECK_OK(lq_stats_importance(e, imp, &err), &err);
    CHECK_OK(lq_stats_mean_abs(e, mean_abs, &err), &err);
    for (int j = 0; j < N; j++) {
        CHECK(imp[j] == e->sum_x2[j] / (float)(T1 + T2));
        CHECK(mean_abs[j] == e->sum_abs[j] / (float)(T1 + T2));
    }
    CHECK(lq_stats_n_entries(s) == 2);
    /* sorted by name */
    CHECK(!strcmp(lq_stats_entry_at(s, 0)->name, "blk.0.attn_q.weight"));
    CHECK(!strcmp(lq_stats_entry_at(s, 1)->name, "blk.0.ffn_down.weight"));
    CHECK(lq_stats_find(s, "blk.1.attn_q.weight") == NULL);

    /* merge: a second accumulator holding the same data doubles sums and counts */
    lq_stats_acc *acc2 = NULL;
    CHECK_OK(lq_stats_acc_new(1, false, &acc2, &err), &err);
    CHECK_OK(lq_stats_acc_merge(acc2, acc, &err), &err);
    CHECK_OK(lq_stats_acc_merge(acc2, acc, &err), &err);
    lq_stats *s2 = NULL;
    CHECK_OK(lq_stats_from_acc(acc2, NULL, &s2, &err), &err);
    const lq_stats_entry *e2 = lq_stats_find(s2, "blk.0.ffn_down.weight");
    const lq_stats_entry *e1 = lq_stats_find(s, "blk.0.ffn_down.weight");
    CHECK(e1 && e2 && e2->counts[0] == 2 * e1->counts[0]);
    for (int j = 0; e1 && e2 && j < M; j++) {
        CHECK(e2->sum_x2[j] == 2 * e1->sum_x2[j]);
        CHECK(e2->max_abs[j] == e1->max_abs[j]);
    }
    lq_stats_free(s2);
    lq_stats_acc_free(acc2);
    lq_stats_free(s);
    lq_stats_acc_free(acc);
}

/* Thread count does not change a single bit (channels split, token order kept). */
static void test_threads(void) {
    lq_error err;
    enum { T = 600, N = 2048 };
    float *x = (float *)malloc((size_t)T * N * sizeof(float));
    fill_x(x, T, N, 99);
    lq_stats *s[2] = {NULL, NULL};
    int threads[2] = {1, 3};
    for (int k = 0; k < 2; k++) {
        lq_stats_acc *acc = NULL;
        CHECK_OK(lq_stats_acc_new(threads[k], false, &acc, &err), &err);
        CHECK_OK(lq_stats_acc_add(acc, "blk.3.ffn_up.weight", x, T, N, &err), &err);
        CHECK_OK(lq_stats_acc_add(acc, "blk.3.ffn_up.weight", x + N, T - 1, N, &err), &err);
        CHECK_OK(lq_stats_from_acc(acc, NULL, &s[k], &err), &err);
        lq_stats_acc_free(acc);
    }
    const lq_stats_entry *a = lq_stats_entry_at(s[0], 0), *b = lq_stats_entry_at(s[1], 0);
    CHECK(a && b && !memcmp(a->sum_x2, b->sum_x2, N * sizeof(float)) &&
          !memcmp(a->sum_abs, b->sum_abs, N * sizeof(float)) && !memcmp(a->max_abs, b->max_abs, N * sizeof(float)));
    lq_stats_free(s[0]);
    lq_stats_free(s[1]);
    free(x);
}

/* Builds statistics with two weights from an accumulator. */
static lq_stats *make_stats(const char *dataset, int64_t chunk_count, int64_t chunk_size) {
    lq_error err;
    lq_stats_acc *acc = NULL;
    enum { T = 32, N = 64 };
    float x[T * N];
    lq_stats_acc_new(1, true, &acc, &err);
    fill_x(x, T, N, 5);
    lq_stats_acc_add(acc, "blk.0.attn_k.weight", x, T, N, &err);
    fill_x(x, T, N, 6);
    lq_stats_acc_add(acc, "output.weight", x, T, N, &err);
    lq_stats_acc_add(acc, "output.weight", x, T / 2, N, &err);
    const char *ds[1] = {dataset};
    lq_stats_meta meta = {dataset ? 1 : 0, ds, chunk_count, chunk_size};
    lq_stats *s = NULL;
    CHECK_OK(lq_stats_from_acc(acc, &meta, &s, &err), &err);
    lq_stats_acc_free(acc);
    return s;
}

static bool same_entry(const lq_stats_entry *a, const lq_stats_entry *b, bool extras) {
    size_t n = (size_t)(a->n_in * a->n_experts);
    bool same = !strcmp(a->name, b->name) && a->n_in == b->n_in && a->n_experts == b->n_experts &&
                !memcmp(a->sum_x2, b->sum_x2, n * 4) && !memcmp(a->counts, b->counts, (size_t)a->n_experts * 4);
    if (extras)
        same = same && b->sum_abs && b->max_abs && !memcmp(a->sum_abs, b->sum_abs, n * 4) &&
               !memcmp(a->max_abs, b->max_abs, n * 4);
    return same;
}

static void test_gguf_roundtrip(const char *dir) {
    lq_error err;
    lq_stats *s = make_stats("/data/calib text.txt", 7, 128);
    const char *path = tmp_file(dir, "stats.gguf");
    CHECK_OK(lq_stats_write(s, path, &err), &err);
    lq_stats *r = NULL;
    CHECK_OK(lq_stats_read(path, &r, &err), &err);
    CHECK(r && lq_stats_file_format(r) == LQ_STATS_GGUF && lq_stats_n_entries(r) == 2);
    for (int64_t i = 0; r && i < 2; i++) CHECK(same_entry(lq_stats_entry_at(s, i), lq_stats_entry_at(r, i), true));
    const lq_stats_meta *m = r ? lq_stats_get_meta(r) : NULL;
    CHECK(m && m->n_datasets == 1 && !strcmp(m->datasets[0], "/data/calib text.txt") && m->chunk_count == 7 &&
          m->chunk_size == 128);
    /* the file is a GGUF in llama.cpp's layout: keys, tensor names, shapes and order */
    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (g) {
        int64_t k = lq_gguf_find_key(g, "general.type");
        lq_str t = lq_gguf_get_str(g, k);
        CHECK(k >= 0 && t.len == 7 && !memcmp(t.ptr, "imatrix", 7));
        CHECK(lq_gguf_find_key(g, "general.architecture") < 0);
        k = lq_gguf_find_key(g, "imatrix.chunk_count");
        CHECK(k >= 0 && lq_gguf_kv_type(g, k) == LQ_GGUF_UINT32);
        k = lq_gguf_find_key(g, "imatrix.chunk_size");
        CHECK(k >= 0 && lq_gguf_kv_type(g, k) == LQ_GGUF_UINT32);
        k = lq_gguf_find_key(g, "imatrix.datasets");
        CHECK(k >= 0 && lq_gguf_arr_type(g, k) == LQ_GGUF_STRING && lq_gguf_arr_n(g, k) == 1);
        const char *names[] = {"blk.0.attn_k.weight.in_sum2", "blk.0.attn_k.weight.counts",
                               "blk.0.attn_k.weight.in_sum_abs", "blk.0.attn_k.weight.in_max_abs",
                               "output.weight.in_sum2", "output.weight.counts"};
        CHECK(lq_gguf_n_tensors(g) == 8);
        for (int i = 0; i < 6; i++) {
            const lq_gguf_tensor_info *ti = lq_gguf_tensor(g, i);
            CHECKF(ti && !strcmp(ti->name, names[i]), "tensor %d: %s", i, ti ? ti->name : "-");
            CHECK(ti && ti->type == LQ_TYPE_F32 && ti->n_dims == 2);
        }
        const lq_gguf_tensor_info *counts = lq_gguf_tensor(g, 1);
        float c;
        memcpy(&c, counts->data, 4);
        CHECK(counts->ne[0] == 1 && counts->ne[1] == 1 && c == 32.0f);
        CHECK(lq_gguf_tensor(g, 0)->ne[0] == 64 && lq_gguf_tensor(g, 0)->ne[1] == 1);
        lq_gguf_close(g);
    }
    /* same statistics → same bytes */
    size_t n1 = 0, n2 = 0;
    void *b1 = test_read_file(path, &n1);
    const char *path2 = tmp_file(dir, "stats2.gguf");
    CHECK_OK(lq_stats_write(r, path2, &err), &err);
    void *b2 = test_read_file(path2, &n2);
    CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
    free(b1);
    free(b2);
    lq_stats_free(r);
    lq_stats_free(s);
}

/* Writes a GGUF the way llama-imatrix does (in_sum2 + counts only, MoE-shaped entry with an
 * expert that saw no tokens, a newer ".in_sum" tensor we do not read). */
static void test_llamacpp_layout(const char *dir) {
    lq_error err;
    const char *path = tmp_file(dir, "llama.imatrix.gguf");
    lq_gguf_writer *w = NULL;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    lq_str ds = {"wiki.train.raw", 14};
    lq_gguf_writer_set_str(w, "general.type", "imatrix", 7, &err);
    lq_gguf_writer_set_arr_str(w, "imatrix.datasets", &ds, 1, &err);
    lq_gguf_writer_set_u32(w, "imatrix.chunk_count", 3, &err);
    lq_gguf_writer_set_u32(w, "imatrix.chunk_size", 512, &err);
    int64_t ne_s[2] = {4, 2}, ne_c[2] = {1, 2};
    CHECK_OK(lq_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight.in_sum", 2, ne_s, LQ_TYPE_F32, &err), &err);
    CHECK_OK(lq_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight.in_sum2", 2, ne_s, LQ_TYPE_F32, &err), &err);
    CHECK_OK(lq_gguf_writer_add_tensor(w, "blk.0.ffn_up_exps.weight.counts", 2, ne_c, LQ_TYPE_F32, &err), &err);
    float in_sum[8] = {-1, 2, -3, 4, 5, 6, 7, 8};
    float sums[8] = {3, 6, 9, 12, 1, 2, 3, 4}, counts[2] = {3, 0};
    lq_gguf_writer_write(w, in_sum, sizeof in_sum, &err);
    lq_gguf_writer_write(w, sums, sizeof sums, &err);
    lq_gguf_writer_write(w, counts, sizeof counts, &err);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
    lq_stats *s = NULL;
    CHECK_OK(lq_stats_read(path, &s, &err), &err);
    const lq_stats_entry *e = s ? lq_stats_find(s, "blk.0.ffn_up_exps.weight") : NULL;
    CHECK(e && e->n_in == 4 && e->n_experts == 2 && !e->sum_abs && !e->max_abs && !e->legacy);
    float imp[8];
    if (e) {
        CHECK_OK(lq_stats_importance(e, imp, &err), &err);
        const float want[8] = {1, 2, 3, 4, 1, 1, 1, 1}; /* count 0: weights 1, as llama-quantize */
        CHECK(!memcmp(imp, want, sizeof want));
        CHECK(lq_stats_mean_abs(e, imp, &err) == LQ_ERR_UNSUPPORTED);
    }
    CHECK(s && lq_stats_n_entries(s) == 1 && lq_stats_get_meta(s)->chunk_count == 3 &&
          !strcmp(lq_stats_get_meta(s)->datasets[0], "wiki.train.raw"));
    lq_stats_free(s);
}

static void test_dat_roundtrip(const char *dir) {
    lq_error err;
    lq_stats *s = make_stats("train.txt", 3, 16);
    const char *path = tmp_file(dir, "imatrix.dat");
    CHECK_OK(lq_stats_write_dat(s, path, &err), &err);
    /* layout: n_entries, then the first entry's name length and name */
    size_t n = 0;
    unsigned char *b = (unsigned char *)test_read_file(path, &n);
    int32_t n_entries = 0, len = 0, ncall = 0, nval = 0;
    if (b && n > 40) {
        memcpy(&n_entries, b, 4);
        memcpy(&len, b + 4, 4);
        memcpy(&ncall, b + 8 + 19, 4);
        memcpy(&nval, b + 12 + 19, 4);
    }
    /* attn_k saw 32 rows with chunks of 16: ncall = ceil(32/16) = 2 */
    CHECK(n_entries == 2 && len == 19 && b && !memcmp(b + 8, "blk.0.attn_k.weight", 19) && ncall == 2 && nval == 64);
    free(b);
    lq_stats *r = NULL;
    CHECK_OK(lq_stats_read(path, &r, &err), &err);
    CHECK(r && lq_stats_file_format(r) == LQ_STATS_LEGACY_DAT && lq_stats_n_entries(r) == 2);
    for (int64_t i = 0; r && i < 2; i++) {
        const lq_stats_entry *a = lq_stats_entry_at(s, i), *c = lq_stats_entry_at(r, i);
        CHECK(!strcmp(a->name, c->name) && a->n_in == c->n_in && c->legacy && !c->sum_abs);
        float ia[64], ic[64];
        CHECK_OK(lq_stats_importance(a, ia, &err), &err);
        CHECK_OK(lq_stats_importance(c, ic, &err), &err);
        double worst = 0;
        for (int j = 0; j < 64; j++) worst = fmax(worst, fabs(ia[j] - ic[j]) / ia[j]);
        CHECKF(worst < 4 * FLT_EPSILON, "%s: relative importance difference %g", a->name, worst);
    }
    const lq_stats_meta *m = r ? lq_stats_get_meta(r) : NULL;
    CHECK(m && m->chunk_count == 3 && m->chunk_size == 0 && m->n_datasets == 1 && !strcmp(m->datasets[0], "train.txt"));
    /* legacy → legacy keeps the stored values bit for bit */
    const char *path2 = tmp_file(dir, "imatrix2.dat");
    CHECK_OK(lq_stats_write_dat(r, path2, &err), &err);
    size_t n1, n2;
    void *b1 = test_read_file(tmp_file(dir, "imatrix.dat"), &n1), *b2 = test_read_file(path2, &n2);
    CHECK(b1 && b2 && n1 == n2 && !memcmp(b1, b2, n1));
    free(b1);
    free(b2);
    lq_stats_free(r);
    lq_stats_free(s);
}

/* Hand-made legacy file: ncall 4 → importance = value / 4; ncall 0 → values as stored; no
 * trailer at all is fine. */
static void test_dat_values(const char *dir) {
    lq_error err;
    const char *path = tmp_file(dir, "hand.dat");
    FILE *f = fopen(path, "wb");
    int32_t hdr[] = {2, 5};
    fwrite(hdr, 4, 2, f);
    fwrite("w.one", 1, 5, f);
    int32_t nc[] = {4, 3};
    fwrite(nc, 4, 2, f);
    float v1[] = {4, 8, 2};
    fwrite(v1, 4, 3, f);
    int32_t l2 = 5;
    fwrite(&l2, 4, 1, f);
    fwrite("w.two", 1, 5, f);
    int32_t nc2[] = {0, 2};
    fwrite(nc2, 4, 2, f);
    float v2[] = {0.5f, 7};
    fwrite(v2, 4, 2, f);
    fclose(f);
    lq_stats *s = NULL;
    CHECK_OK(lq_stats_read(path, &s, &err), &err);
    float imp[3];
    const lq_stats_entry *e = s ? lq_stats_find(s, "w.one") : NULL;
    CHECK(e && lq_stats_importance(e, imp, &err) == LQ_OK && imp[0] == 1 && imp[1] == 2 && imp[2] == 0.5f);
    e = s ? lq_stats_find(s, "w.two") : NULL;
    CHECK(e && lq_stats_importance(e, imp, &err) == LQ_OK && imp[0] == 0.5f && imp[1] == 7);
    CHECK(s && lq_stats_get_meta(s)->chunk_count == -1 && lq_stats_get_meta(s)->n_datasets == 0);
    lq_stats_free(s);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    unlink(path); /* a fresh file: rewriting one in place makes ext4 flush it (auto_da_alloc) */
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void expect_error(const char *path, lq_status want, const char *needle) {
    lq_error err;
    lq_error_clear(&err);
    lq_stats *s = NULL;
    lq_status st = lq_stats_read(path, &s, &err);
    CHECKF(st == want && !s, "%s: status %d, want %d (%s)", path, (int)st, (int)want, err.msg);
    CHECKF(strstr(err.msg, path) && strstr(err.msg, needle) && !strchr(err.msg, '\n'), "message '%s' lacks '%s'",
           err.msg, needle);
}

static void write_pair(const char *path, const char *n1, lq_type t1, const int64_t ne1[2], const float *d1,
                       const char *n2, const int64_t ne2[2], const float *d2) {
    lq_error err;
    lq_gguf_writer *w = NULL;
    lq_gguf_writer_open(path, &w, &err);
    lq_gguf_writer_set_str(w, "general.type", "imatrix", 7, &err);
    lq_gguf_writer_add_tensor(w, n1, 2, ne1, t1, &err);
    if (n2) lq_gguf_writer_add_tensor(w, n2, 2, ne2, LQ_TYPE_F32, &err);
    lq_gguf_writer_write(w, d1, lq_row_size(t1, ne1[0]) * (size_t)ne1[1], &err);
    if (n2) lq_gguf_writer_write(w, d2, (size_t)(ne2[0] * ne2[1]) * 4, &err);
    lq_gguf_writer_finish(w, &err);
}

static void test_malformed(const char *dir) {
    char path[4096];
    float d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ne4[2] = {4, 1}, ne1[2] = {1, 1}, ne2[2] = {1, 2};
    snprintf(path, sizeof path, "%s/bad_nocounts.gguf", dir);
    write_pair(path, "blk.0.attn_q.weight.in_sum2", LQ_TYPE_F32, ne4, d, NULL, NULL, NULL);
    expect_error(path, LQ_ERR_FORMAT, "blk.0.attn_q.weight.counts");
    snprintf(path, sizeof path, "%s/bad_nosums.gguf", dir);
    write_pair(path, "blk.0.attn_q.weight.counts", LQ_TYPE_F32, ne1, d, NULL, NULL, NULL);
    expect_error(path, LQ_ERR_FORMAT, "blk.0.attn_q.weight.in_sum2");
    snprintf(path, sizeof path, "%s/bad_ncounts.gguf", dir);
    write_pair(path, "w.in_sum2", LQ_TYPE_F32, ne4, d, "w.counts", ne2, d);
    expect_error(path, LQ_ERR_FORMAT, "w.counts");
    float nan_d[4] = {1, NAN, 3, 4};
    snprintf(path, sizeof path, "%s/bad_nan.gguf", dir);
    write_pair(path, "w.in_sum2", LQ_TYPE_F32, ne4, nan_d, "w.counts", ne1, d);
    expect_error(path, LQ_ERR_FORMAT, "w.in_sum2");
    float neg[1] = {-2};
    snprintf(path, sizeof path, "%s/bad_negcount.gguf", dir);
    write_pair(path, "w.in_sum2", LQ_TYPE_F32, ne4, d, "w.counts", ne1, neg);
    expect_error(path, LQ_ERR_FORMAT, "w.counts");
    int64_t ne0[2] = {0, 1};
    snprintf(path, sizeof path, "%s/bad_empty.gguf", dir);
    write_pair(path, "w.in_sum2", LQ_TYPE_F32, ne0, d, "w.counts", ne1, d);
    expect_error(path, LQ_ERR_FORMAT, "w.in_sum2");
    uint16_t h[4] = {0x3c00, 0x3c00, 0x3c00, 0x3c00};
    snprintf(path, sizeof path, "%s/bad_f16.gguf", dir);
    write_pair(path, "w.in_sum2", LQ_TYPE_F16, ne4, (const float *)h, "w.counts", ne1, d);
    expect_error(path, LQ_ERR_FORMAT, "f32");
    /* a model file is not statistics */
    snprintf(path, sizeof path, "%s/bad_model.gguf", dir);
    {
        lq_error err;
        lq_gguf_writer *w = NULL;
        lq_gguf_writer_open(path, &w, &err);
        lq_gguf_writer_set_str(w, "general.architecture", "llama", 5, &err);
        lq_gguf_writer_add_tensor(w, "blk.0.attn_q.weight", 2, ne4, LQ_TYPE_F32, &err);
        lq_gguf_writer_write(w, d, 16, &err);
        lq_gguf_writer_finish(w, &err);
    }
    expect_error(path, LQ_ERR_FORMAT, "no imatrix entries");

    /* legacy: truncated values, lying name length, trailing junk, random bytes, empty file */
    unsigned char buf[64];
    int32_t v;
    size_t at = 0;
#define PUT32(x) (v = (x), memcpy(buf + at, &v, 4), at += 4)
    PUT32(1);
    PUT32(3);
    memcpy(buf + at, "abc", 3);
    at += 3;
    PUT32(1);
    PUT32(4);
    float one = 1;
    memcpy(buf + at, &one, 4);
    at += 4;
    size_t good = at + 12; /* 3 values missing */
    snprintf(path, sizeof path, "%s/bad_trunc.dat", dir);
    write_bytes(path, buf, at);
    expect_error(path, LQ_ERR_FORMAT, "'abc'");
    (void)good;
    at = 0;
    PUT32(1);
    PUT32(1000);
    memcpy(buf + at, "abc", 3);
    at += 3;
    snprintf(path, sizeof path, "%s/bad_namelen.dat", dir);
    write_bytes(path, buf, 40);
    expect_error(path, LQ_ERR_FORMAT, "name length");
    at = 0;
    PUT32(1);
    PUT32(1);
    buf[at++] = 'w';
    PUT32(1);
    PUT32(1);
    memcpy(buf + at, &one, 4);
    at += 4;
    PUT32(5);  /* last_call */
    PUT32(2);  /* dataset length */
    buf[at++] = 'd';
    buf[at++] = 's';
    buf[at++] = 'X'; /* one byte too many */
    snprintf(path, sizeof path, "%s/bad_trailer.dat", dir);
    write_bytes(path, buf, at);
    expect_error(path, LQ_ERR_FORMAT, "unexpected bytes");
    write_bytes(path, buf, at - 1); /* without it the file is valid */
    lq_error err;
    lq_stats *s = NULL;
    CHECK_OK(lq_stats_read(path, &s, &err), &err);
    CHECK(s && lq_stats_get_meta(s)->chunk_count == 5 && !strcmp(lq_stats_get_meta(s)->datasets[0], "ds"));
    lq_stats_free(s);
    uint64_t seed = 77;
    for (int i = 0; i < 64; i++) buf[i] = (unsigned char)test_rand_u64(&seed);
    snprintf(path, sizeof path, "%s/bad_random.dat", dir);
    write_bytes(path, buf, 64);
    expect_error(path, LQ_ERR_FORMAT, "");
    snprintf(path, sizeof path, "%s/bad_empty.dat", dir);
    write_bytes(path, buf, 0);
    expect_error(path, LQ_ERR_FORMAT, "neither a GGUF file nor a legacy imatrix");
    snprintf(path, sizeof path, "%s/missing.dat", dir);
    expect_error(path, LQ_ERR_IO, "cannot open");
#undef PUT32
}

/* Every truncation of a GGUF statistics file fails; truncated or byte-mutated files of either
 * format never crash, and what reads is sane (finite, non-negative). */
static void test_corruption(const char *dir) {
    lq_error err;
    lq_stats *s = make_stats("corrupt.txt", 2, 16);
    char good[2][4200], bad[4200];
    snprintf(good[0], sizeof good[0], "%s/c.gguf", dir);
    snprintf(good[1], sizeof good[1], "%s/c.dat", dir);
    snprintf(bad, sizeof bad, "%s/c.bad", dir);
    CHECK_OK(lq_stats_write(s, good[0], &err), &err);
    CHECK_OK(lq_stats_write_dat(s, good[1], &err), &err);
    lq_stats_free(s);
    uint64_t seed = 2024;
    for (int f = 0; f < 2; f++) {
        size_t n = 0;
        unsigned char *b = (unsigned char *)test_read_file(good[f], &n);
        if (!b) continue;
        int gguf_ok = 0, read_ok = 0;
        for (size_t len = 0; len < n; len++) {
            write_bytes(bad, b, len);
            lq_stats *r = NULL;
            lq_status st = lq_stats_read(bad, &r, &err);
            gguf_ok += f == 0 && st == LQ_OK;
            CHECKF(st == LQ_OK || strstr(err.msg, bad), "truncated to %zu: '%s'", len, err.msg);
            lq_stats_free(r);
        }
        CHECKF(gguf_ok == 0, "%d truncations of the GGUF file read as valid", gguf_ok);
        unsigned char *m = (unsigned char *)malloc(n);
        for (int iter = 0; iter < 1500; iter++) {
            memcpy(m, b, n);
            int flips = 1 + (int)(test_rand_u64(&seed) % 4);
            for (int k = 0; k < flips; k++) m[test_rand_u64(&seed) % n] = (unsigned char)test_rand_u64(&seed);
            write_bytes(bad, m, n);
            lq_stats *r = NULL;
            if (lq_stats_read(bad, &r, &err) == LQ_OK) {
                read_ok++;
                for (int64_t i = 0; i < lq_stats_n_entries(r); i++) {
                    const lq_stats_entry *e = lq_stats_entry_at(r, i);
                    for (int64_t j = 0; j < e->n_in * e->n_experts; j++)
                        CHECK(isfinite(e->sum_x2[j]) && e->sum_x2[j] >= 0);
                }
            }
            lq_stats_free(r);
        }
        fprintf(stderr, "%s: %d of 1500 mutated copies still read\n", f ? "dat" : "gguf", read_ok);
        free(m);
        free(b);
    }
}

int main(void) {
    const char *dir = test_tmpdir("calib-stats");
    test_accumulate();
    test_threads();
    test_gguf_roundtrip(dir);
    test_llamacpp_layout(dir);
    test_dat_roundtrip(dir);
    test_dat_values(dir);
    test_malformed(dir);
    test_corruption(dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (!test_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_DONE();
}
