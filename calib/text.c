/* text.c — calibration text: plain text or JSON Lines ("text" field per line), either one
 * optionally gzip-compressed. zlib's gzread recognises the gzip magic and passes other files
 * through unchanged, so compression is detected by content, never by the file name. */
#include "calib_internal.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct text_buf {
    char *p;
    size_t n, cap;
} text_buf;

static bool buf_reserve(text_buf *b, size_t extra) {
    if (b->cap - b->n > extra) return true; /* keeps room for the final NUL */
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap - b->n <= extra) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = (char *)realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static bool buf_append(text_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n)) return false;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return true;
}

/* The whole file, decompressed when it is gzip. */
static lq_status read_all(const char *path, text_buf *out, lq_error *err) {
    gzFile f = gzopen(path, "rb");
    if (!f) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);
    lq_status st = LQ_OK;
    for (;;) {
        if (!buf_reserve(out, 1 << 16)) {
            st = lq_fail(err, LQ_ERR_NOMEM, "%s: no memory after %zu bytes of text", path, out->n);
            break;
        }
        int k = gzread(f, out->p + out->n, 1 << 16);
        if (k < 0) {
            int code = 0;
            const char *msg = gzerror(f, &code);
            st = lq_fail(err, code == Z_ERRNO ? LQ_ERR_IO : LQ_ERR_FORMAT, "%s: read failed after %zu bytes: %s",
                         path, out->n, code == Z_ERRNO ? strerror(errno) : msg);
            break;
        }
        out->n += (size_t)k;
        out->p[out->n] = '\0';
        if (k == 0) {
            /* Z_BUF_ERROR at the end: the input ended inside a gzip stream (truncated file) */
            int code = 0;
            gzerror(f, &code);
            if (code == Z_BUF_ERROR)
                st = lq_fail(err, LQ_ERR_FORMAT, "%s: gzip stream truncated after %zu bytes of text", path, out->n);
            break;
        }
    }
    gzclose(f);
    return st;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static bool looks_like_jsonl(const char *path, const text_buf *b) {
    if (ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz")) return true;
    for (size_t i = 0; i < b->n; i++) {
        char c = b->p[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
        return c == '{';
    }
    return false;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

/* One JSONL line into out (documents separated by a blank line). */
static lq_status jsonl_line(const char *path, int64_t line_no, const char *line, size_t len,
                            text_buf *out, lq_error *err) {
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    if (!obj)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: line %lld: bad JSON at column %d: %s", path, (long long)line_no,
                       jerr.column, jerr.text);
    lq_status st = LQ_OK;
    json_t *text = json_is_object(obj) ? json_object_get(obj, "text") : NULL;
    if (!json_is_object(obj))
        st = lq_fail(err, LQ_ERR_FORMAT, "%s: line %lld: not a JSON object", path, (long long)line_no);
    else if (!text)
        st = lq_fail(err, LQ_ERR_FORMAT, "%s: line %lld: missing \"text\" field", path, (long long)line_no);
    else if (!json_is_string(text))
        st = lq_fail(err, LQ_ERR_FORMAT, "%s: line %lld: \"text\" is not a string", path, (long long)line_no);
    else if ((out->n > 0 && !buf_append(out, "\n\n", 2)) ||
             !buf_append(out, json_string_value(text), json_string_length(text)))
        st = lq_fail(err, LQ_ERR_NOMEM, "%s: line %lld: no memory", path, (long long)line_no);
    json_decref(obj);
    return st;
}

static lq_status parse_jsonl(const char *path, const text_buf *in, text_buf *out, lq_error *err) {
    int64_t line_no = 0, n_docs = 0;
    for (size_t at = 0; at < in->n;) {
        const char *nl = (const char *)memchr(in->p + at, '\n', in->n - at);
        size_t end = nl ? (size_t)(nl - in->p) : in->n;
        line_no++;
        if (!blank(in->p + at, end - at)) {
            lq_status st = jsonl_line(path, line_no, in->p + at, end - at, out, err);
            if (st) return st;
            n_docs++;
        }
        at = end + 1;
    }
    if (n_docs == 0) return lq_fail(err, LQ_ERR_FORMAT, "%s: no JSON lines with text", path);
    return LQ_OK;
}

lq_status lq_calib_read_text(const char *path, const char *format, char **text, size_t *len,
                             lq_error *err) {
    *text = NULL;
    *len = 0;
    if (format && strcmp(format, "text") && strcmp(format, "jsonl") && strcmp(format, "auto"))
        return lq_fail(err, LQ_ERR_INVALID, "%s: unknown text format '%s' (text, jsonl or auto)", path, format);
    text_buf raw = {NULL, 0, 0};
    lq_status st = read_all(path, &raw, err);
    if (st) {
        free(raw.p);
        return st;
    }
    bool jsonl = format && strcmp(format, "auto") ? !strcmp(format, "jsonl") : looks_like_jsonl(path, &raw);
    if (!jsonl) {
        *text = raw.p;
        *len = raw.n;
        return LQ_OK;
    }
    text_buf docs = {NULL, 0, 0};
    if (!buf_reserve(&docs, 0)) st = lq_fail(err, LQ_ERR_NOMEM, "%s: no memory", path);
    if (!st) st = parse_jsonl(path, &raw, &docs, err);
    free(raw.p);
    if (st) {
        free(docs.p);
        return st;
    }
    *text = docs.p;
    *len = docs.n;
    return LQ_OK;
}
