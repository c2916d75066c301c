/* test_gguf_writer.c — writer atomicity and argument checks: abort and failed finishes leave
 * neither the output nor a temporary file; a missing directory is an I/O error naming the path;
 * bad tensors/keys are refused; misuse after data was written is refused. */
#include "test.h"

#include <dirent.h>

/* Number of entries in dir other than . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static lq_gguf_writer *open_with_tensor(const char *path, uint64_t *nbytes) {
    lq_gguf_writer *w = NULL;
    lq_error err;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    if (!w) return NULL;
    const int64_t ne[2] = {64, 4};
    CHECK_OK(lq_gguf_writer_set_str(w, "general.name", "x", 1, &err), &err);
    CHECK_OK(lq_gguf_writer_add_tensor(w, "a.weight", 2, ne, LQ_TYPE_Q8_0, &err), &err);
    *nbytes = 2 * 34 * 4;
    return w;
}

static void test_abort(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/aborted.gguf", dir);
    uint64_t nbytes;
    lq_gguf_writer *w = open_with_tensor(path, &nbytes);
    CHECK(count_entries(dir) == 1); /* the temporary file */
    lq_error err;
    uint8_t buf[100] = {0};
    CHECK_OK(lq_gguf_writer_write(w, buf, sizeof buf, &err), &err);
    lq_gguf_writer_abort(w);
    CHECK(!exists(path));
    CHECK(count_entries(dir) == 0);
    lq_gguf_writer_abort(NULL); /* safe */
}

static void test_incomplete(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/incomplete.gguf", dir);
    uint64_t nbytes;
    lq_error err;
    /* Part of the tensor written. */
    lq_gguf_writer *w = open_with_tensor(path, &nbytes);
    uint8_t buf[1024] = {0};
    CHECK_OK(lq_gguf_writer_write(w, buf, nbytes - 1, &err), &err);
    lq_status st = lq_gguf_writer_finish(w, &err);
    CHECK(st != LQ_OK && strstr(err.msg, path) && strstr(err.msg, "a.weight"));
    CHECK(!exists(path) && count_entries(dir) == 0);
    /* Nothing written at all. */
    w = open_with_tensor(path, &nbytes);
    st = lq_gguf_writer_finish(w, &err);
    CHECK(st != LQ_OK && strstr(err.msg, "a.weight"));
    CHECK(!exists(path) && count_entries(dir) == 0);
    /* Too much data: refused, and the writer is unusable afterwards. */
    w = open_with_tensor(path, &nbytes);
    st = lq_gguf_writer_write(w, buf, nbytes + 1, &err);
    CHECK(st != LQ_OK && strstr(err.msg, path));
    CHECK(count_entries(dir) == 0); /* temporary file removed at once */
    st = lq_gguf_writer_finish(w, &err);
    CHECK(st != LQ_OK);
    CHECK(!exists(path) && count_entries(dir) == 0);
}

static void test_missing_dir(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/no-such-dir/out.gguf", dir);
    lq_gguf_writer *w = NULL;
    lq_error err;
    lq_status st = lq_gguf_writer_open(path, &w, &err);
    CHECK(st == LQ_ERR_IO && w == NULL);
    CHECKF(strstr(err.msg, path) != NULL, "%s", err.msg);
}

static void test_complete_and_replace(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/done.gguf", dir);
    lq_error err;
    /* An existing file at the destination is replaced atomically. */
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs("old contents", f);
        fclose(f);
    }
    uint64_t nbytes;
    lq_gguf_writer *w = open_with_tensor(path, &nbytes);
    uint8_t buf[1024];
    for (size_t k = 0; k < sizeof buf; k++) buf[k] = (uint8_t)k;
    CHECK_OK(lq_gguf_writer_write(w, buf, nbytes, &err), &err);
    /* Metadata and tensors are fixed once data was written. */
    CHECK(lq_gguf_writer_set_u32(w, "late.key", 1, &err) == LQ_ERR_INVALID);
    const int64_t ne[1] = {32};
    CHECK(lq_gguf_writer_add_tensor(w, "late.weight", 1, ne, LQ_TYPE_F32, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_remove_key(w, "general.name") == LQ_ERR_INVALID);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
    CHECK(count_entries(dir) == 1);
    lq_gguf *g = NULL;
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (g) {
        CHECK(lq_gguf_n_tensors(g) == 1 && lq_gguf_tensor(g, 0)->nbytes == nbytes);
        CHECK(memcmp(lq_gguf_tensor(g, 0)->data, buf, nbytes) == 0);
        lq_gguf_close(g);
    }
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    unlink(path);
    /* No tensors: the header is written by finish. */
    w = NULL;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    CHECK_OK(lq_gguf_writer_set_bool(w, "only.key", true, &err), &err);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (g) {
        bool v = false;
        CHECK(lq_gguf_n_tensors(g) == 0 && lq_gguf_n_kv(g) == 1);
        CHECK_OK(lq_gguf_get_bool(g, 0, &v, &err), &err);
        CHECK(v);
        lq_gguf_close(g);
    }
    unlink(path);
    /* Zero-byte tensors need no data. */
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    const int64_t ne0[2] = {0, 4};
    CHECK_OK(lq_gguf_writer_add_tensor(w, "empty", 2, ne0, LQ_TYPE_F32, &err), &err);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
    CHECK_OK(lq_gguf_open(path, &g, &err), &err);
    if (g) {
        CHECK(lq_gguf_n_tensors(g) == 1 && lq_gguf_tensor(g, 0)->nbytes == 0);
        lq_gguf_close(g);
    }
    unlink(path);
}

static void test_refusals(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/refused.gguf", dir);
    lq_gguf_writer *w = NULL;
    lq_error err;
    CHECK_OK(lq_gguf_writer_open(path, &w, &err), &err);
    if (!w) return;
    const int64_t ne[4] = {32, 2, 1, 1};
    const int64_t odd[2] = {33, 2};
    const int64_t neg[2] = {32, -1};
    CHECK_OK(lq_gguf_writer_add_tensor(w, "ok", 2, ne, LQ_TYPE_Q4_0, &err), &err);
    CHECK(lq_gguf_writer_add_tensor(w, "ok", 2, ne, LQ_TYPE_Q4_0, &err) == LQ_ERR_INVALID);
    CHECK(strstr(err.msg, "duplicate") && strstr(err.msg, path));
    CHECK(lq_gguf_writer_add_tensor(w, "odd", 2, odd, LQ_TYPE_Q4_0, &err) == LQ_ERR_INVALID);
    CHECK(strstr(err.msg, "odd") && strstr(err.msg, "block size"));
    CHECK(lq_gguf_writer_add_tensor(w, "neg", 2, neg, LQ_TYPE_F32, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_add_tensor(w, "removed", 2, ne, (lq_type)4, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_add_tensor(w, "dims0", 0, ne, LQ_TYPE_F32, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_add_tensor(w, "dims5", 5, ne, LQ_TYPE_F32, &err) == LQ_ERR_INVALID);
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    CHECK(lq_gguf_writer_add_tensor(w, long_name, 1, ne, LQ_TYPE_F32, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_add_tensor(w, "bad\xff", 1, ne, LQ_TYPE_F32, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_set_u32(w, "general.alignment", 48, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_set_u32(w, "general.alignment", 0, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_set_f32(w, "general.alignment", 32.0f, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_set_u32(w, "", 1, &err) == LQ_ERR_INVALID);
    uint32_t v = 1;
    CHECK(lq_gguf_writer_set_scalar(w, "k", LQ_GGUF_STRING, &v, &err) == LQ_ERR_INVALID);
    CHECK(lq_gguf_writer_set_arr(w, "k", LQ_GGUF_ARRAY, &v, 1, &err) == LQ_ERR_INVALID);
    /* Refusals leave the writer usable. */
    uint8_t data[2 * 18] = {0}; /* 2 rows of one Q4_0 block */
    CHECK_OK(lq_gguf_writer_write(w, data, sizeof data, &err), &err);
    CHECK_OK(lq_gguf_writer_finish(w, &err), &err);
    CHECK(exists(path));
    unlink(path);
}

int main(void) {
    const char *dir = test_tmpdir("gguf-writer");
    char own[4200];
    snprintf(own, sizeof own, "%s", dir);
    test_abort(own);
    test_incomplete(own);
    test_missing_dir(own);
    test_complete_and_replace(own);
    test_refusals(own);
    CHECK(count_entries(own) == 0);
    rmdir(own);
    TEST_DONE();
}
