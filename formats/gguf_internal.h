/* gguf_internal.h — helpers shared by the GGUF reader and writer (not installed). */
#ifndef LQ_GGUF_INTERNAL_H
#define LQ_GGUF_INTERNAL_H

#include "internal.h"

#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader/writer assume a little-endian host (GGUF files are little-endian)"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_VERSION 3
#define GGUF_KEY_ALIGNMENT "general.alignment"

/* Smallest encodings, used to bound counts by the bytes that remain before allocating:
 * a kv is at least key length (8) + type (4) + a 1-byte value; a tensor info is at least
 * name length (8) + n_dims (4) + one ne (8) + type (4) + offset (8). */
#define GGUF_MIN_KV_BYTES 13u
#define GGUF_MIN_TENSOR_INFO_BYTES 32u

static inline bool gguf_alignment_ok(uint64_t a) {
    return a != 0 && a <= UINT32_MAX && (a & (a - 1)) == 0;
}

/* Strict UTF-8 (no overlongs, no surrogates, max U+10FFFF). */
static inline bool gguf_utf8_valid(const char *s, uint64_t len) {
    const unsigned char *p = (const unsigned char *)s;
    uint64_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int extra;
        unsigned min, cp;
        if ((c & 0xE0) == 0xC0) {
            extra = 1, min = 0x80, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            extra = 2, min = 0x800, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            extra = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= (uint64_t)extra) return false;
        for (int k = 1; k <= extra; k++) {
            unsigned cc = p[i + (uint64_t)k];
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += (uint64_t)extra + 1;
    }
    return true;
}

/* Checks a tensor name as GGUF requires it (< 64 bytes, UTF-8, no NUL so the C copy is the
 * whole name). Returns NULL when fine, else the problem. */
static inline const char *gguf_tensor_name_problem(const char *name, uint64_t len) {
    if (len >= LQ_MAX_NAME) return "name is too long (GGUF names are at most 63 bytes)";
    if (len == 0) return "name is empty";
    if (memchr(name, '\0', (size_t)len)) return "name contains a NUL byte";
    if (!gguf_utf8_valid(name, len)) return "name is not valid UTF-8";
    return NULL;
}

/* Bytes of a tensor of the given shape, overflow-checked. Returns NULL when fine, else the
 * problem. nbytes follows lq_row_size (row bytes) times the number of rows. */
static inline const char *gguf_tensor_nbytes(lq_type type, uint32_t n_dims, const int64_t *ne,
                                             uint64_t *nbytes) {
    const lq_type_traits *tr = lq_type_get((int)type);
    if (!tr) return "unknown or removed ggml type id";
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return "negative dimension";
        if (!lq_mul_u64(n_elements, (uint64_t)ne[d], &n_elements) || n_elements > (uint64_t)INT64_MAX)
            return "element count overflows int64";
    }
    if (ne[0] % tr->block_size != 0) return "ne[0] is not a multiple of the type's block size";
    uint64_t row_bytes;
    if (!lq_mul_u64((uint64_t)(ne[0] / tr->block_size), tr->block_bytes, &row_bytes))
        return "row size overflows";
    if (ne[0] > 0 && lq_row_size(type, ne[0]) != row_bytes) return "row size overflows size_t";
    uint64_t n_rows = 1;
    for (uint32_t d = 1; d < n_dims; d++)
        if (!lq_mul_u64(n_rows, (uint64_t)ne[d], &n_rows) || n_rows > (uint64_t)INT64_MAX)
            return "row count overflows int64";
    if (!lq_mul_u64(row_bytes, n_rows, nbytes) || *nbytes > (uint64_t)INT64_MAX)
        return "tensor size overflows";
    return NULL;
}

#endif
