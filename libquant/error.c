/* error.c — error records passed up with context (no printing, no exit). */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

volatile int lq_interrupted = 0;

const char *lq_status_name(lq_status s) {
    switch (s) {
    case LQ_OK: return "ok";
    case LQ_ERR_INVALID: return "invalid argument";
    case LQ_ERR_IO: return "I/O error";
    case LQ_ERR_FORMAT: return "format error";
    case LQ_ERR_UNSUPPORTED: return "unsupported";
    case LQ_ERR_NOMEM: return "out of memory";
    case LQ_ERR_NUMERIC: return "numeric error";
    case LQ_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

void lq_error_clear(lq_error *err) {
    if (!err) return;
    err->code = LQ_OK;
    err->msg[0] = '\0';
}

lq_status lq_vfail(lq_error *err, lq_status code, const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        /* Keep messages to one line: a newline from a parser would break "one-line errors". */
        for (char *p = err->msg; *p; p++)
            if (*p == '\n' || *p == '\r') *p = ' ';
    }
    return code;
}

lq_status lq_fail(lq_error *err, lq_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lq_vfail(err, code, fmt, ap);
    va_end(ap);
    return code;
}

lq_status lq_fail_wrap(lq_error *err, const char *fmt, ...) {
    if (!err) return LQ_ERR_INVALID;
    char prefix[LQ_ERROR_MSG_MAX], old[LQ_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}

void *lq_malloc(size_t n, lq_error *err, const char *what) {
    void *p = malloc(n ? n : 1);
    if (!p) lq_fail(err, LQ_ERR_NOMEM, "out of memory allocating %zu bytes for %s", n, what);
    return p;
}

void *lq_calloc(size_t n, size_t size, lq_error *err, const char *what) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) lq_fail(err, LQ_ERR_NOMEM, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}
