/* calibrate.c — `lq calibrate`: importance matrix (Σx², counts) and per-channel mean/max |x|
 * of every linear layer's input over a calibration text, chunked as llama-imatrix does. */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *calibrate_usage =
    "usage: lq calibrate MODEL -f TEXT -o STATS [options]\n\n"
    "Runs the text through the model (a GGUF file or an HF directory) in chunks, as llama-imatrix\n"
    "does, and writes per linear weight and input channel: sum of x^2 and token counts (llama.cpp's\n"
    "GGUF imatrix: <weight>.in_sum2, <weight>.counts) plus sum of |x| and max |x|\n"
    "(<weight>.in_sum_abs, <weight>.in_max_abs, for AWQ/SmoothQuant; llama.cpp ignores them).\n"
    "llama-quantize --imatrix reads the GGUF layout since llama.cpp's GGUF imatrix (2025);\n"
    "older builds (e.g. b4747) need --output-format dat.\n\n"
    "Options:\n"
    "  -f, --file TEXT       calibration text: plain text or JSON Lines with a \"text\" field,\n"
    "                        either possibly gzip-compressed (detected by content)\n"
    "  -o, --output STATS    statistics file to write (atomically)\n"
    "  -c, --ctx-size N      tokens per chunk (default 512); BOS starts every chunk\n"
    "      --chunks N        use N chunks (default: every whole chunk of the text)\n"
    "      --seed S          pick the chunks by a shuffle seeded with S (default: the first N)\n"
    "  -t, --threads N       threads (default: all cores); results do not depend on it\n"
    "      --json FILE       write a JSON report (inputs with SHA-256, chunks, counts, timing)\n"
    "      --text-format F   text, jsonl or auto (default: auto; JSONL for *.jsonl[.gz] or a\n"
    "                        text starting with '{')\n"
    "      --output-format F gguf (default) or dat (llama.cpp's legacy imatrix.dat: Σx² only)\n"
    "      --process-output  also collect output.weight (llama-imatrix --process-output)\n"
    "      --parse-special   recognise control tokens written in the text\n"
    LQ_CLI_DEVICE_HELP
    "                        (the statistics sums; bit-identical on either)\n\n" LQ_EXIT_CODES_HELP;

typedef struct calib_args {
    const char *model, *text, *output, *json, *text_format, *output_format, *device;
    int64_t chunk_size, n_chunks;
    bool has_seed, process_output, parse_special;
    uint64_t seed;
    int n_threads;
} calib_args;

static bool parse_int(const char *s, int64_t min, int64_t *out) {
    char *end = NULL;
    if (!s || !*s) return false;
    long long v = strtoll(s, &end, 10);
    if (*end || v < min) return false;
    *out = v;
    return true;
}

static int parse_value_opt(int argc, char **argv, int *i, calib_args *a, bool *matched) {
    const char *v = NULL;
    int64_t n;
    *matched = true;
    if (lq_cli_opt(argc, argv, i, "-f", &v) || lq_cli_opt(argc, argv, i, "--file", &v)) {
        if (!(a->text = v)) return lq_cli_usage_error("calibrate", "-f needs a text file");
    } else if (lq_cli_opt(argc, argv, i, "-o", &v) || lq_cli_opt(argc, argv, i, "--output", &v)) {
        if (!(a->output = v)) return lq_cli_usage_error("calibrate", "-o needs a file");
    } else if (lq_cli_opt(argc, argv, i, "-c", &v) || lq_cli_opt(argc, argv, i, "--ctx-size", &v)) {
        if (!parse_int(v, 2, &a->chunk_size) || a->chunk_size > (1 << 20))
            return lq_cli_usage_error("calibrate", "-c needs a chunk size from 2 to 1048576");
    } else if (lq_cli_opt(argc, argv, i, "--chunks", &v)) {
        if (!parse_int(v, 1, &a->n_chunks)) return lq_cli_usage_error("calibrate", "--chunks needs a count >= 1");
    } else if (lq_cli_opt(argc, argv, i, "--seed", &v)) {
        if (!parse_int(v, 0, &n)) return lq_cli_usage_error("calibrate", "--seed needs an integer >= 0");
        a->seed = (uint64_t)n;
        a->has_seed = true;
    } else if (lq_cli_opt(argc, argv, i, "-t", &v) || lq_cli_opt(argc, argv, i, "--threads", &v)) {
        if (!parse_int(v, 1, &n) || n > 1024) return lq_cli_usage_error("calibrate", "-t needs 1 to 1024 threads");
        a->n_threads = (int)n;
    } else if (lq_cli_opt(argc, argv, i, "--device", &v)) {
        if (!(a->device = v)) return lq_cli_usage_error("calibrate", "--device needs auto, cpu, cuda or cuda:N");
    } else if (lq_cli_opt(argc, argv, i, "--json", &v)) {
        if (!(a->json = v)) return lq_cli_usage_error("calibrate", "--json needs a file");
    } else if (lq_cli_opt(argc, argv, i, "--text-format", &v)) {
        if (!v || (strcmp(v, "text") && strcmp(v, "jsonl") && strcmp(v, "auto")))
            return lq_cli_usage_error("calibrate", "--text-format is text, jsonl or auto");
        a->text_format = v;
    } else if (lq_cli_opt(argc, argv, i, "--output-format", &v)) {
        if (!v || (strcmp(v, "gguf") && strcmp(v, "dat")))
            return lq_cli_usage_error("calibrate", "--output-format is gguf or dat");
        a->output_format = v;
    } else {
        *matched = false;
    }
    return LQ_EXIT_OK;
}

/* Returns -1 when the run should go on, else the exit code. */
static int parse_args(int argc, char **argv, calib_args *a) {
    memset(a, 0, sizeof *a);
    a->chunk_size = 512;
    a->text_format = "auto";
    a->output_format = "gguf";
    for (int i = 1; i < argc; i++) {
        bool matched;
        int rc = parse_value_opt(argc, argv, &i, a, &matched);
        if (rc) return rc;
        if (matched) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(calibrate_usage, stdout);
            return LQ_EXIT_OK;
        } else if (!strcmp(argv[i], "--process-output")) {
            a->process_output = true;
        } else if (!strcmp(argv[i], "--parse-special")) {
            a->parse_special = true;
        } else if (argv[i][0] == '-' || a->model) {
            return lq_cli_usage_error("calibrate", "unexpected argument '%s'", argv[i]);
        } else {
            a->model = argv[i];
        }
    }
    if (!a->model || !a->text || !a->output)
        return lq_cli_usage_error("calibrate", "need MODEL, -f TEXT and -o STATS");
    return -1;
}

static lq_status set_error(lq_error *err, lq_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static lq_status set_error(lq_error *err, lq_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
    return code;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct calib_run {
    const calib_args *args;
    lq_model *model;
    lq_calib_chunks chunks;
    lq_stats *stats;
    lq_device_ctx *device; /* NULL: CPU */
    double *chunk_seconds;
    double t_start, seconds;
    bool tty;
} calib_run;

static void on_chunk(void *ctx, int64_t done, int64_t n, double chunk_seconds) {
    calib_run *r = (calib_run *)ctx;
    r->chunk_seconds[done - 1] = chunk_seconds;
    if (!r->tty) return;
    double elapsed = now_seconds() - r->t_start;
    fprintf(stderr, "\rchunk %lld/%lld: %.2f s, %.1f s elapsed, ETA %.1f s   ", (long long)done, (long long)n,
            chunk_seconds, elapsed, elapsed / (double)done * (double)(n - done));
    if (done == n) fputc('\n', stderr);
}

static lq_status sample_text(calib_run *r, lq_error *err) {
    const calib_args *a = r->args;
    lq_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    lq_status st = lq_calib_tokenizer(r->model, &tok, err);
    if (!st) st = lq_calib_read_text(a->text, a->text_format, &text, &len, err);
    if (!st) {
        lq_calib_sample_opts o = {a->chunk_size, a->n_chunks, a->has_seed, a->seed, a->parse_special};
        st = lq_calib_sample(tok, text, len, &o, &r->chunks, err);
    }
    free(text);
    lq_tokenizer_free(tok);
    return st;
}

/* A missing or read-only output directory is reported before the (long) pass, not after. */
static lq_status check_output_dir(const char *path, lq_error *err) {
    char *copy = strdup(path);
    if (!copy) return set_error(err, LQ_ERR_NOMEM, "calibrate: no memory");
    const char *dir = dirname(copy);
    lq_status st = access(dir, W_OK) == 0 ? LQ_OK
                   : set_error(err, LQ_ERR_IO, "%s: cannot write in %s: %s", path, dir, strerror(errno));
    free(copy);
    return st;
}

static lq_status calibrate(calib_run *r, lq_error *err) {
    const calib_args *a = r->args;
    lq_runtime *rt = NULL;
    lq_stats_acc *acc = NULL;
    lq_status st = check_output_dir(a->output, err);
    if (!st) st = lq_model_open(a->model, &r->model, err);
    if (!st) st = sample_text(r, err);
    if (!st && !(r->chunk_seconds = (double *)calloc((size_t)r->chunks.n_chunks, sizeof(double))))
        st = set_error(err, LQ_ERR_NOMEM, "calibrate: no memory for %lld chunk timings", (long long)r->chunks.n_chunks);
    if (!st) {
        int n_ctx = (int)r->chunks.chunk_size;
        lq_runtime_opts o = {a->n_threads, n_ctx, n_ctx, false, LQ_ACT_INT8_NONE};
        st = lq_runtime_create(r->model, &o, &rt, err);
    }
    if (!st) st = lq_stats_acc_new(a->n_threads, a->process_output, &acc, err);
    if (!st) lq_stats_acc_set_device(acc, r->device);
    if (!st) {
        if (r->tty)
            fprintf(stderr, "lq calibrate: %lld chunks of %lld tokens (the text has %lld tokens, %lld chunks)\n",
                    (long long)r->chunks.n_chunks, (long long)r->chunks.chunk_size,
                    (long long)r->chunks.n_text_tokens, (long long)r->chunks.n_text_chunks);
        r->t_start = now_seconds();
        st = lq_calib_accumulate(rt, &r->chunks, acc, on_chunk, r, err);
        r->seconds = now_seconds() - r->t_start;
    }
    if (!st) {
        const char *datasets[1] = {a->text};
        lq_stats_meta meta = {1, datasets, r->chunks.n_chunks, r->chunks.chunk_size};
        st = lq_stats_from_acc(acc, &meta, &r->stats, err);
    }
    if (!st)
        st = !strcmp(a->output_format, "dat") ? lq_stats_write_dat(r->stats, a->output, err)
                                              : lq_stats_write(r->stats, a->output, err);
    lq_stats_acc_free(acc);
    lq_runtime_free(rt);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * JSON report
 * ------------------------------------------------------------------------------------- */

static json_t *file_json(const char *path, lq_error *err) {
    char hex[65];
    struct stat sb;
    if (lq_sha256_file(path, hex, err)) return NULL;
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "bytes", json_integer(stat(path, &sb) == 0 ? (json_int_t)sb.st_size : -1));
    json_object_set_new(o, "sha256", json_string(hex));
    return o;
}

static bool is_gzip(const char *path) {
    unsigned char magic[2] = {0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(magic, 1, 2, f);
    fclose(f);
    return n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

/* Every distinct file the model's tensors live in (shards), plus tokenizer.json for HF. */
static json_t *model_files_json(const lq_model *m, lq_error *err) {
    json_t *files = json_array();
    const char *tok = lq_model_tokenizer_json(m);
    int64_t n = lq_model_n_tensors(m);
    for (int64_t i = 0; i <= n; i++) {
        const char *path = i < n ? lq_model_tensor(m, i)->file : tok;
        bool seen = !path;
        for (size_t j = 0; !seen && j < json_array_size(files); j++)
            seen = !strcmp(json_string_value(json_object_get(json_array_get(files, j), "path")), path);
        if (seen) continue;
        json_t *f = file_json(path, err);
        if (!f) {
            json_decref(files);
            return NULL;
        }
        json_array_append_new(files, f);
    }
    return files;
}

static json_t *entries_json(const lq_stats *s) {
    json_t *list = json_array();
    for (int64_t i = 0; i < lq_stats_n_entries(s); i++) {
        const lq_stats_entry *e = lq_stats_entry_at(s, i);
        json_array_append_new(list, json_pack("{s:s,s:I,s:f}", "name", e->name, "n_in", (json_int_t)e->n_in,
                                              "count", (double)e->counts[0]));
    }
    return list;
}

static json_t *chunks_json(const calib_run *r) {
    json_t *c = json_object();
    const lq_calib_chunks *k = &r->chunks;
    json_object_set_new(c, "chunk_size", json_integer(k->chunk_size));
    json_object_set_new(c, "n_chunks", json_integer(k->n_chunks));
    json_object_set_new(c, "text_tokens", json_integer(k->n_text_tokens));
    json_object_set_new(c, "text_chunks", json_integer(k->n_text_chunks));
    json_object_set_new(c, "tokens_evaluated", json_integer(k->n_chunks * k->chunk_size));
    json_object_set_new(c, "seed", r->args->has_seed ? json_integer((json_int_t)r->args->seed) : json_null());
    json_t *idx = json_array(), *secs = json_array();
    for (int64_t i = 0; i < k->n_chunks; i++) {
        json_array_append_new(idx, json_integer(k->source_index[i]));
        json_array_append_new(secs, json_real(r->chunk_seconds[i]));
    }
    json_object_set_new(c, "indices", idx);
    json_object_set_new(c, "seconds", secs);
    return c;
}

static lq_status write_report(const calib_run *r, lq_error *err) {
    const calib_args *a = r->args;
    json_t *root = json_object(), *text = NULL, *out = NULL, *files = NULL;
    json_object_set_new(root, "libquant", json_string(lq_version()));
    lq_status st = (files = model_files_json(r->model, err)) ? LQ_OK : err->code;
    if (!st) {
        json_object_set_new(root, "model", json_pack("{s:s,s:o}", "path", a->model, "files", files));
        st = (text = file_json(a->text, err)) ? LQ_OK : err->code;
    }
    if (!st) {
        json_object_set_new(text, "format", json_string(a->text_format));
        json_object_set_new(text, "gzip", json_boolean(is_gzip(a->text)));
        json_object_set_new(root, "text", text);
        json_object_set_new(root, "chunks", chunks_json(r));
        json_object_set_new(root, "threads", json_integer(a->n_threads ? a->n_threads : lq_n_cpus()));
        json_object_set_new(root, "process_output", json_boolean(a->process_output));
        json_object_set_new(root, "seconds", json_real(r->seconds));
        st = (out = file_json(a->output, err)) ? LQ_OK : err->code;
    }
    if (!st) {
        json_object_set_new(out, "format", json_string(a->output_format));
        json_object_set_new(out, "n_entries", json_integer(lq_stats_n_entries(r->stats)));
        json_object_set_new(out, "entries", entries_json(r->stats));
        json_object_set_new(root, "output", out);
        if (json_dump_file(root, a->json, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
            st = set_error(err, LQ_ERR_IO, "%s: cannot write the report", a->json);
    }
    json_decref(root);
    return st;
}

int lq_cmd_calibrate(int argc, char **argv) {
    calib_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    lq_cli_install_signal_handlers();
    lq_error err;
    lq_error_clear(&err);
    calib_run r;
    memset(&r, 0, sizeof r);
    r.args = &a;
    lq_device dev;
    if ((rc = lq_cli_device("calibrate", a.device, false, &dev, &r.device)) != LQ_EXIT_OK) return rc;
    r.tty = isatty(fileno(stderr));
    lq_status st = calibrate(&r, &err);
    if (!st && a.json) st = write_report(&r, &err);
    if (!st) {
        const lq_calib_chunks *c = &r.chunks;
        printf("lq calibrate: %lld entries from %lld chunks of %lld tokens (%lld tokens) in %.2f s -> %s\n",
               (long long)lq_stats_n_entries(r.stats), (long long)c->n_chunks, (long long)c->chunk_size,
               (long long)(c->n_chunks * c->chunk_size), r.seconds, a.output);
    }
    lq_stats_free(r.stats);
    lq_calib_chunks_free(&r.chunks);
    free(r.chunk_seconds);
    lq_model_close(r.model);
    lq_device_close(r.device);
    return st ? lq_cli_report("calibrate", &err) : LQ_EXIT_OK;
}
