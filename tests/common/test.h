/* test.h — a tiny test harness: checks that report file:line, skip via exit 77 (meson's
 * convention), and access to ../shared. Each test program ends with TEST_DONE(). */
#ifndef LQ_TEST_H
#define LQ_TEST_H

#include "libquant.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int test_failures = 0;
static int test_checks = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        test_checks++;                                                               \
        if (!(cond)) {                                                               \
            test_failures++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        test_checks++;                                                               \
        if (!(cond)) {                                                               \
            test_failures++;                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

/* Asserts an lq_status is LQ_OK, printing the error message otherwise. */
#define CHECK_OK(expr, errp)                                                                \
    do {                                                                                    \
        lq_status st_ = (expr);                                                             \
        test_checks++;                                                                      \
        if (st_ != LQ_OK) {                                                                 \
            test_failures++;                                                                \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr, (errp)->msg); \
        }                                                                                   \
    } while (0)

#define TEST_SKIP_CODE 77
#define TEST_SKIP(...)                        \
    do {                                      \
        fprintf(stderr, "SKIP: " __VA_ARGS__); \
        fputc('\n', stderr);                  \
        exit(TEST_SKIP_CODE);                 \
    } while (0)

#define TEST_DONE()                                                                       \
    do {                                                                                  \
        fprintf(stderr, "%d checks, %d failed\n", test_checks, test_failures);           \
        return test_failures ? 1 : (test_checks ? 0 : 1); /* a test that checks nothing fails */ \
    } while (0)

/* Path of ../shared (from LQ_SHARED_DIR, set by meson), or NULL when it is absent. */
static inline const char *test_shared_dir(void) {
    const char *d = getenv("LQ_SHARED_DIR");
    struct stat sb;
    if (!d || stat(d, &sb) != 0 || !S_ISDIR(sb.st_mode)) return NULL;
    return d;
}

/* Joins ../shared and a relative path into a static buffer; skips the test when ../shared is
 * absent or the file is missing. */
static inline const char *test_shared_path(const char *rel) {
    static char buf[8][4096];
    static int slot = 0;
    const char *d = test_shared_dir();
    if (!d) TEST_SKIP("../shared is absent (LQ_SHARED_DIR unset or missing): %s not available", rel);
    char *p = buf[slot++ & 7];
    snprintf(p, 4096, "%s/%s", d, rel);
    struct stat sb;
    if (stat(p, &sb) != 0) TEST_SKIP("%s is missing", p);
    return p;
}

/* Reads a whole file; returns NULL on failure. */
static inline void *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && size) *size = (size_t)n;
    return buf;
}

/* A scratch directory for this test (under the build dir, from LQ_TEST_TMPDIR or /tmp). */
static inline const char *test_tmpdir(const char *test_name) {
    static char buf[4096];
    const char *base = getenv("LQ_TEST_TMPDIR");
    if (!base) base = "/tmp";
    snprintf(buf, sizeof buf, "%s/lq-test-%s-%d", base, test_name, (int)getpid());
    mkdir(buf, 0755);
    return buf;
}

/* Deterministic xorshift random numbers for property tests. */
static inline uint64_t test_rand_u64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}
static inline float test_rand_uniform(uint64_t *s) { /* [0, 1) */
    return (float)((test_rand_u64(s) >> 40) * (1.0 / 16777216.0));
}
static inline float test_rand_normal(uint64_t *s) {
    float u1 = test_rand_uniform(s), u2 = test_rand_uniform(s);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

#endif
