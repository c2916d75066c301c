/* codec.c — `lq codec quantize|dequantize`: raw float32 rows ↔ raw blocks of one type, through
 * lq_quantize_rows_mt / lq_dequantize_rows. Argument parsing and file I/O only. */
#include "cli.h"
#include "device_adapters.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CMD "codec"

static void print_help(FILE *f) {
    fprintf(f,
            "usage: lq codec quantize --type T --cols N [--imatrix W.f32] [--threads N] [--device D]\n"
            "                         IN.f32 OUT.bin\n"
            "       lq codec dequantize --type T --cols N [--device D] IN.bin OUT.f32\n\n"
            "Encodes raw little-endian float32 rows of N columns into blocks of type T (ggml name:\n"
            "q4_0, q4_1, q5_0, q5_1, q8_0, iq4_nl, iq4_xs, q2_K ... q6_K, f16, bf16, f32), bit-exact\n"
            "with llama.cpp's reference quantizers, or decodes such blocks back to float32.\n\n"
            "Options:\n"
            "  --type T        block type\n"
            "  --cols N        elements per row (a multiple of the type's block size)\n"
            "  --imatrix W     N float32 importance weights used for every row (quantize only)\n"
            "  --threads N     worker threads (quantize; 0 = all cores, the default); the output\n"
            "                  does not depend on it\n"
            "  --device D      auto (default: CUDA when present, else CPU; printed when a GPU is\n"
            "                  picked or --device given),\n"
            "                  cpu, cuda or cuda:N (exit 4 when absent); the bytes are the same\n"
            "  --help          this text\n\n"
            "Rows whose values are NaN/Inf, or too large for the type's fp16 scales, are refused.\n"
            "The output is written to a temporary file next to OUT and renamed into place.\n\n"
            LQ_EXIT_CODES_HELP);
}

static int fail(lq_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(lq_status code, const char *fmt, ...) {
    lq_error err;
    err.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    return lq_cli_report(CMD, &err);
}

/* Reads a whole file into *data (malloc'd). */
static int read_all(const char *path, void **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return fail(LQ_ERR_IO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size;
    void *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return fail(LQ_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, n);
    }
    if (n && fread(buf, 1, n, f) != n) {
        free(buf);
        fclose(f);
        return fail(LQ_ERR_IO, "%s: read failed", path);
    }
    fclose(f);
    *data = buf;
    *size = n;
    return LQ_EXIT_OK;
}

/* Writes data to a temporary file beside path, fsyncs it and renames it into place. */
static int write_atomic(const char *path, const void *data, size_t size) {
    size_t len = strlen(path) + 16;
    char *tmp = (char *)malloc(len);
    if (!tmp) return fail(LQ_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, len, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = fail(LQ_ERR_IO, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(tmp);
        return rc;
    }
    const char *p = (const char *)data;
    size_t left = size;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        p += w;
        left -= (size_t)w;
    }
    int rc = LQ_EXIT_OK;
    if (left > 0 || fsync(fd) != 0)
        rc = fail(LQ_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (close(fd) != 0 && rc == LQ_EXIT_OK) rc = fail(LQ_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (rc == LQ_EXIT_OK && rename(tmp, path) != 0)
        rc = fail(LQ_ERR_IO, "%s: cannot rename temporary file into place: %s", path, strerror(errno));
    if (rc != LQ_EXIT_OK) unlink(tmp);
    free(tmp);
    return rc;
}

typedef struct codec_args {
    const char *mode;
    const char *type_name;
    const char *cols_text;
    const char *imatrix;
    const char *threads_text;
    const char *device;
    const char *in, *out;
    int type;
    int64_t cols;
    int threads;
} codec_args;

static int parse_int(const char *text, const char *opt, int64_t min, int64_t *out) {
    char *end;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || errno || *end || end == text || v < min)
        return lq_cli_usage_error(CMD, "%s needs an integer >= %" PRId64 ", got '%s'", opt, min,
                                  text ? text : "");
    *out = v;
    return LQ_EXIT_OK;
}

static int parse_args(int argc, char **argv, codec_args *a) {
    memset(a, 0, sizeof *a);
    const char *positional[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        if (lq_cli_opt(argc, argv, &i, "--type", &v)) {
            a->type_name = v;
        } else if (lq_cli_opt(argc, argv, &i, "--cols", &v)) {
            a->cols_text = v;
        } else if (lq_cli_opt(argc, argv, &i, "--imatrix", &v)) {
            if (!v) return lq_cli_usage_error(CMD, "--imatrix needs a file");
            a->imatrix = v;
        } else if (lq_cli_opt(argc, argv, &i, "--threads", &v)) {
            a->threads_text = v;
        } else if (lq_cli_opt(argc, argv, &i, "--device", &v)) {
            if (!v) return lq_cli_usage_error(CMD, "--device needs auto, cpu, cuda or cuda:N");
            a->device = v;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return lq_cli_usage_error(CMD, "unknown option '%s'", argv[i]);
        } else {
            if (n_pos == 3) return lq_cli_usage_error(CMD, "too many arguments");
            positional[n_pos++] = argv[i];
        }
    }
    if (n_pos != 3) return lq_cli_usage_error(CMD, "expected quantize|dequantize, IN and OUT");
    a->mode = positional[0];
    a->in = positional[1];
    a->out = positional[2];
    if (strcmp(a->mode, "quantize") != 0 && strcmp(a->mode, "dequantize") != 0)
        return lq_cli_usage_error(CMD, "unknown mode '%s' (quantize or dequantize)", a->mode);
    if (!a->type_name) return lq_cli_usage_error(CMD, "--type is required");
    a->type = lq_type_from_name(a->type_name);
    const lq_type_traits *t = lq_type_get(a->type);
    if (!t) return lq_cli_usage_error(CMD, "unknown type '%s'", a->type_name);
    if (!t->has_codec) return fail(LQ_ERR_UNSUPPORTED, "type %s has no codec", t->name);
    if (!a->cols_text) return lq_cli_usage_error(CMD, "--cols is required");
    int rc = parse_int(a->cols_text, "--cols", 1, &a->cols);
    if (rc) return rc;
    if (a->cols % t->block_size != 0)
        return lq_cli_usage_error(CMD, "--cols %" PRId64 " is not a multiple of the %s block size %d",
                                  a->cols, t->name, t->block_size);
    int64_t threads = 0;
    if (a->threads_text && (rc = parse_int(a->threads_text, "--threads", 0, &threads))) return rc;
    a->threads = threads > 4096 ? 4096 : (int)threads;
    if (a->imatrix && strcmp(a->mode, "quantize") != 0)
        return lq_cli_usage_error(CMD, "--imatrix applies to quantize only");
    return LQ_EXIT_OK;
}

/* The CUDA context of --device (NULL: CPU), for the conversions below. */
static lq_cuda_ctx *g_cuda;

static int run_quantize(const codec_args *a, const lq_type_traits *t) {
    void *in = NULL, *imat = NULL;
    size_t in_size = 0, imat_size = 0;
    int rc = read_all(a->in, &in, &in_size);
    if (rc) return rc;
    size_t in_row = (size_t)a->cols * sizeof(float);
    if (in_size % in_row != 0) {
        free(in);
        return fail(LQ_ERR_FORMAT, "%s: size %zu is not a multiple of the row size %zu (%" PRId64
                    " float32 columns)", a->in, in_size, in_row, a->cols);
    }
    if (a->imatrix) {
        if ((rc = read_all(a->imatrix, &imat, &imat_size))) {
            free(in);
            return rc;
        }
        if (imat_size != in_row) {
            free(in);
            free(imat);
            return fail(LQ_ERR_FORMAT, "%s: size %zu, expected %zu (%" PRId64 " float32 weights)",
                        a->imatrix, imat_size, in_row, a->cols);
        }
    }
    int64_t rows = (int64_t)(in_size / in_row);
    size_t out_size = (size_t)rows * lq_row_size((lq_type)a->type, a->cols);
    void *out = malloc(out_size ? out_size : 1);
    lq_error err;
    lq_error_clear(&err);
    if (!out) {
        rc = fail(LQ_ERR_NOMEM, "cannot allocate %zu bytes", out_size);
    } else if ((g_cuda ? lq_cuda_quantize_rows(g_cuda, (lq_type)a->type, (const float *)in, out, rows,
                                               a->cols, (const float *)imat, &err)
                       : lq_quantize_rows_mt((lq_type)a->type, (const float *)in, out, rows, a->cols,
                                             (const float *)imat, a->threads, &err)) != LQ_OK) {
        rc = fail(err.code, "%s: %s", a->in, err.msg);
    } else {
        rc = write_atomic(a->out, out, out_size);
    }
    (void)t;
    free(in);
    free(imat);
    free(out);
    return rc;
}

static int run_dequantize(const codec_args *a, const lq_type_traits *t) {
    void *in = NULL;
    size_t in_size = 0;
    int rc = read_all(a->in, &in, &in_size);
    if (rc) return rc;
    size_t row_bytes = lq_row_size((lq_type)a->type, a->cols);
    if (in_size % row_bytes != 0) {
        free(in);
        return fail(LQ_ERR_FORMAT, "%s: size %zu is not a multiple of the %s row size %zu (%" PRId64
                    " columns)", a->in, in_size, t->name, row_bytes, a->cols);
    }
    int64_t rows = (int64_t)(in_size / row_bytes);
    size_t out_size = (size_t)rows * (size_t)a->cols * sizeof(float);
    float *out = (float *)malloc(out_size ? out_size : 1);
    lq_error err;
    lq_error_clear(&err);
    if (!out)
        rc = fail(LQ_ERR_NOMEM, "cannot allocate %zu bytes", out_size);
    else if ((g_cuda ? lq_cuda_dequantize_rows(g_cuda, (lq_type)a->type, in, out, rows, a->cols, &err)
                     : lq_dequantize_rows((lq_type)a->type, in, out, rows, a->cols, &err)) != LQ_OK)
        rc = fail(err.code, "%s: %s", a->in, err.msg);
    else
        rc = write_atomic(a->out, out, out_size);
    free(in);
    free(out);
    return rc;
}

int lq_cmd_codec(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(stdout);
            return LQ_EXIT_OK;
        }
    codec_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    const lq_type_traits *t = lq_type_get(a.type);
    lq_device dev;
    lq_device_ctx *device = NULL;
    if ((rc = lq_cli_device(CMD, a.device, false, &dev, &device)) != LQ_EXIT_OK) return rc;
    g_cuda = lq_device_cuda(device);
    rc = strcmp(a.mode, "quantize") == 0 ? run_quantize(&a, t) : run_dequantize(&a, t);
    lq_device_close(device);
    g_cuda = NULL;
    return rc;
}
