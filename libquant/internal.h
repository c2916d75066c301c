/* internal.h — helpers shared inside libquant (not installed). */
#ifndef LQ_INTERNAL_H
#define LQ_INTERNAL_H

#include "libquant.h"

#include <stdarg.h>

/* Functions compiled for host and device: per-block codec math is written once. */
#if defined(__CUDACC__)
#define LQ_HD __host__ __device__
#else
#define LQ_HD
#endif

#if defined(__cplusplus)
#define LQ_RESTRICT __restrict__
#define LQ_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define LQ_RESTRICT restrict
#define LQ_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#if defined(__GNUC__)
#define LQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LQ_PRINTF(a, b)
#endif

/* Records an error (err may be NULL) and returns code, so callers can write
 *   return lq_fail(err, LQ_ERR_FORMAT, "%s: tensor '%s': offset beyond end of file", path, name); */
lq_status lq_fail(lq_error *err, lq_status code, const char *fmt, ...) LQ_PRINTF(3, 4);
lq_status lq_vfail(lq_error *err, lq_status code, const char *fmt, va_list ap);
/* Prefixes an existing error message with more context ("while X: <old message>"). */
lq_status lq_fail_wrap(lq_error *err, const char *fmt, ...) LQ_PRINTF(2, 3);

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool lq_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool lq_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline uint64_t lq_pad_u64(uint64_t x, uint64_t align) {
    return (x + align - 1) / align * align;
}

/* Name index (name_index.c): item indices sorted by name, for O(log n) lookup by name.
 * name_of(ctx, i) gives item i's name. */
typedef const char *(*lq_name_of_fn)(const void *ctx, int64_t i);
/* Builds *sorted (malloc'd, n entries). dup[0], dup[1] receive the item indices of the first two
 * items found with the same name (dup[0] = -1 when names are unique). */
lq_status lq_name_index_build(int64_t n, lq_name_of_fn name_of, const void *ctx, int64_t **sorted,
                              int64_t dup[2], lq_error *err);
/* The item index named key, or -1. */
int64_t lq_name_index_find(const int64_t *sorted, int64_t n, lq_name_of_fn name_of, const void *ctx,
                           const char *key);

/* Maps the regular file at path whole, read-only: *map is NULL for an empty file, else
 * munmap(*map, *size) when done. */
lq_status lq_map_file(const char *path, void **map, size_t *size, lq_error *err);

/* malloc wrappers that record LQ_ERR_NOMEM with context. */
void *lq_malloc(size_t n, lq_error *err, const char *what);
void *lq_calloc(size_t n, size_t size, lq_error *err, const char *what);

/* Set once by a tool's signal handler; long loops poll it and stop with LQ_ERR_INTERRUPTED. */
extern volatile int lq_interrupted;

#endif
