/* tokenize.c — `lq tokenize`: token ids of a text with a GGUF's or a tokenizer.json's
 * tokenizer (for debugging and cross-checks with other implementations). */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *tokenize_usage =
    "usage: lq tokenize (FILE.gguf | tokenizer.json | HF-DIR) (--text STR | --file F) [options]\n\n"
    "Prints the token ids of the text, space-separated, on one line.\n\n"
    "Options:\n"
    "  --text STR     the text to tokenize\n"
    "  --file F       read the text from a file\n"
    "  --bos          add BOS/EOS as the vocabulary asks (add_special)\n"
    "  --special      recognise control tokens written in the text (parse_special)\n"
    "  --pieces       print id and piece per line instead\n"
    "  --time         print the tokenization time and token count on stderr\n\n" LQ_EXIT_CODES_HELP;

static void set_error(lq_error *err, lq_status code, const char *path, const char *what) {
    err->code = code;
    snprintf(err->msg, sizeof err->msg, "%s: %s", path, what);
}

static char *read_all(const char *path, size_t *len, lq_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_error(err, LQ_ERR_IO, path, "cannot open");
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *p = realloc(buf, cap *= 2);
        if (!p) {
            free(buf);
            buf = NULL;
        } else {
            buf = p;
        }
    }
    fclose(f);
    if (!buf) set_error(err, LQ_ERR_NOMEM, path, "out of memory");
    *len = n;
    return buf;
}

static lq_status open_tokenizer(const char *src, lq_gguf **g, lq_tokenizer **t, lq_error *err) {
    size_t n = strlen(src);
    if (n >= 5 && !strcmp(src + n - 5, ".gguf")) {
        lq_status st = lq_gguf_open(src, g, err);
        return st ? st : lq_tokenizer_from_gguf(*g, t, err);
    }
    if (n >= 5 && !strcmp(src + n - 5, ".json")) return lq_tokenizer_from_json(src, t, err);
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", src);
    return lq_tokenizer_from_json(path, t, err);
}

int lq_cmd_tokenize(int argc, char **argv) {
    const char *src = NULL, *text = NULL, *file = NULL;
    bool bos = false, special = false, pieces = false, timing = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(tokenize_usage, stdout);
            return LQ_EXIT_OK;
        } else if (lq_cli_opt(argc, argv, &i, "--text", &v)) {
            if (!(text = v)) return lq_cli_usage_error("tokenize", "--text needs a value");
        } else if (lq_cli_opt(argc, argv, &i, "--file", &v)) {
            if (!(file = v)) return lq_cli_usage_error("tokenize", "--file needs a path");
        } else if (!strcmp(argv[i], "--bos")) {
            bos = true;
        } else if (!strcmp(argv[i], "--special")) {
            special = true;
        } else if (!strcmp(argv[i], "--pieces")) {
            pieces = true;
        } else if (!strcmp(argv[i], "--time")) {
            timing = true;
        } else if (argv[i][0] == '-' || src) {
            return lq_cli_usage_error("tokenize", "unexpected argument '%s'", argv[i]);
        } else {
            src = argv[i];
        }
    }
    if (!src || (!text == !file))
        return lq_cli_usage_error("tokenize", "need a tokenizer source and one of --text/--file");
    lq_error err;
    lq_error_clear(&err);
    lq_gguf *g = NULL;
    lq_tokenizer *t = NULL;
    char *buf = NULL;
    size_t len = text ? strlen(text) : 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    int rc = LQ_EXIT_OK;
    if (file && !(buf = read_all(file, &len, &err))) goto fail;
    if (open_tokenizer(src, &g, &t, &err)) goto fail;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (lq_tokenize(t, buf ? buf : text, len, bos, special, &ids, &n, &err)) goto fail;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (timing)
        fprintf(stderr, "%lld tokens from %zu bytes in %.3f s\n", (long long)n, len,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    for (int64_t i = 0; i < n; i++) {
        if (pieces) {
            lq_str p = lq_token_piece(t, ids[i]);
            printf("%d\t'%.*s'\n", ids[i], (int)p.len, p.ptr);
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!pieces) putchar('\n');
    goto done;
fail:
    rc = lq_cli_report("tokenize", &err);
done:
    free(ids);
    free(buf);
    lq_tokenizer_free(t);
    lq_gguf_close(g);
    return rc;
}
