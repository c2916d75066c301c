/* bench_codecs.c — `lq bench codecs`: encode / decode / dot-product throughput of every block
 * format on this CPU, next to the memory read bandwidth measured in the same run. The
 * measuring lives in the library (libquant/bench_codecs.c); this file parses options and
 * prints the table and the JSON report. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int lq_cmd_bench_codecs(int argc, char **argv);

static const char *usage =
    "usage: lq bench codecs [-t N] [--json FILE] [--types LIST] [--weights-mib N] [--passes N]\n"
    "                       [--no-encode] [--simd scalar|avx2|avx512]\n\n"
    "Per type: encode MB/s (f32 input through the row quantizers, 1 thread and N threads),\n"
    "decode GB/s (f32 output, 1 thread), and the dot product of weight rows with quantized\n"
    "activations (llama.cpp's vec_dot pairing) in GB/s of weight bytes, over weights far larger\n"
    "than the caches (1 thread and N threads, rows split between threads), row by row\n"
    "(lq_kernel_dot_q) and as a matrix-vector product (lq_kernel_matvec_q). The memory read\n"
    "bandwidth is measured with N threads, once over a separate buffer of the same size and,\n"
    "for each type, over its own weights between the dot passes (rd); dot/rd and mv/rd are\n"
    "the N-thread figures' share of the latter. Each figure is the best of the timed passes,\n"
    "reported by wall-clock time and by CPU time (per thread), the latter robust to a loaded\n"
    "machine.\n\n"
    "Options:\n"
    "  -t N             threads for the multi-threaded figures (default: all cores)\n"
    "  --json FILE      also write the results as JSON\n"
    "  --types LIST     comma-separated types (default: every type with kernels)\n"
    "  --weights-mib N  weights streamed per type by the dot test (default 512)\n"
    "  --passes N       timed passes per figure (default 3)\n"
    "  --no-encode      skip the encode test\n"
    "  --simd LEVEL     force a kernel path (default: the best this CPU runs)\n\n" LQ_EXIT_CODES_HELP;

static const lq_type default_types[] = {
    LQ_TYPE_Q4_0, LQ_TYPE_Q4_1, LQ_TYPE_Q5_0, LQ_TYPE_Q5_1, LQ_TYPE_Q8_0,
    LQ_TYPE_Q2_K, LQ_TYPE_Q3_K, LQ_TYPE_Q4_K, LQ_TYPE_Q5_K, LQ_TYPE_Q6_K,
    LQ_TYPE_IQ4_NL, LQ_TYPE_IQ4_XS, LQ_TYPE_F16, LQ_TYPE_BF16, LQ_TYPE_F32,
};
#define MAX_TYPES 32

typedef struct bench_codecs_args {
    lq_bench_opts opts;
    const char *json;
    lq_type types[MAX_TYPES];
    int n_types;
    int simd; /* -1 = default */
} bench_codecs_args;

static int parse_types(const char *list, bench_codecs_args *a) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", list);
    a->n_types = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        int t = lq_type_from_name(tok);
        if (t < 0 || lq_kernel_vec_dot_type((lq_type)t) == LQ_TYPE_COUNT)
            return lq_cli_usage_error("bench codecs", "--types: '%s' is not a type with CPU kernels", tok);
        if (a->n_types == MAX_TYPES) return lq_cli_usage_error("bench codecs", "--types: too many types");
        a->types[a->n_types++] = (lq_type)t;
    }
    if (a->n_types == 0) return lq_cli_usage_error("bench codecs", "--types: empty list");
    return 0;
}

static int parse_int(const char *opt, const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi)
        return lq_cli_usage_error("bench codecs", "%s needs an integer in [%ld, %ld]", opt, lo, hi);
    *out = x;
    return 0;
}

static int parse_args(int argc, char **argv, bench_codecs_args *a) {
    memset(a, 0, sizeof *a);
    a->opts.weight_bytes = (size_t)512 << 20;
    a->opts.passes = 3;
    a->opts.encode = true;
    a->simd = -1;
    a->n_types = (int)(sizeof default_types / sizeof default_types[0]);
    memcpy(a->types, default_types, sizeof default_types);
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        long x = 0;
        int rc;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage, stdout);
            return -1;
        } else if (lq_cli_opt(argc, argv, &i, "-t", &v) || lq_cli_opt(argc, argv, &i, "--threads", &v)) {
            if ((rc = parse_int("-t", v, 1, 4096, &x))) return rc;
            a->opts.n_threads = (int)x;
        } else if (lq_cli_opt(argc, argv, &i, "--json", &v)) {
            if (!v) return lq_cli_usage_error("bench codecs", "--json needs a file name");
            a->json = v;
        } else if (lq_cli_opt(argc, argv, &i, "--types", &v)) {
            if (!v) return lq_cli_usage_error("bench codecs", "--types needs a list");
            if ((rc = parse_types(v, a))) return rc;
        } else if (lq_cli_opt(argc, argv, &i, "--weights-mib", &v)) {
            if ((rc = parse_int("--weights-mib", v, 1, 65536, &x))) return rc;
            a->opts.weight_bytes = (size_t)x << 20;
        } else if (lq_cli_opt(argc, argv, &i, "--passes", &v)) {
            if ((rc = parse_int("--passes", v, 1, 100, &x))) return rc;
            a->opts.passes = (int)x;
        } else if (!strcmp(argv[i], "--no-encode")) {
            a->opts.encode = false;
        } else if (lq_cli_opt(argc, argv, &i, "--simd", &v)) {
            if (!v) return lq_cli_usage_error("bench codecs", "--simd needs a level");
            if (!strcmp(v, "scalar")) a->simd = LQ_SIMD_SCALAR;
            else if (!strcmp(v, "avx2")) a->simd = LQ_SIMD_AVX2;
            else if (!strcmp(v, "avx512")) a->simd = LQ_SIMD_AVX512;
            else return lq_cli_usage_error("bench codecs", "--simd: unknown level '%s'", v);
        } else {
            return lq_cli_usage_error("bench codecs", "unknown argument '%s'", argv[i]);
        }
    }
    if (a->opts.n_threads <= 0) a->opts.n_threads = lq_n_cpus();
    return 0;
}

static const char *simd_name(lq_simd s) {
    return s == LQ_SIMD_AVX512 ? "avx512" : s == LQ_SIMD_AVX2 ? "avx2" : "scalar";
}

static json_t *rate_json(lq_bench_rate r) {
    json_t *o = json_object();
    json_object_set_new(o, "wall", json_real(r.wall));
    json_object_set_new(o, "cpu", json_real(r.cpu));
    return o;
}

static int write_json(const char *path, const bench_codecs_args *a, lq_bench_rate bw, const lq_codec_bench *res,
                      int n, lq_error *err) {
    json_t *root = json_object();
    json_object_set_new(root, "units", json_string("bytes per second; wall: wall-clock, cpu: per second of CPU time per thread"));
    json_object_set_new(root, "threads", json_integer(a->opts.n_threads));
    json_object_set_new(root, "simd", json_string(simd_name(lq_kernels_simd())));
    json_object_set_new(root, "cpu_simd", json_string(lq_cpu_simd_level()));
    json_object_set_new(root, "passes", json_integer(a->opts.passes));
    json_object_set_new(root, "read_bandwidth", rate_json(bw));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const lq_type_traits *t = lq_type_get(res[i].type);
        json_t *o = json_object();
        json_object_set_new(o, "type", json_string(t->name));
        json_object_set_new(o, "bpw", json_real(t->bpw));
        json_object_set_new(o, "activation_type", json_string(lq_type_get(lq_kernel_vec_dot_type(res[i].type))->name));
        if (a->opts.encode && res[i].encode_1t.wall >= 0) {
            json_object_set_new(o, "encode_f32_1t", rate_json(res[i].encode_1t));
            json_object_set_new(o, "encode_f32_mt", rate_json(res[i].encode_mt));
        }
        json_object_set_new(o, "decode_f32_1t", rate_json(res[i].decode));
        json_object_set_new(o, "dot_weight_bytes", json_integer((json_int_t)res[i].weight_bytes));
        json_object_set_new(o, "dot_1t", rate_json(res[i].dot_1t));
        json_object_set_new(o, "dot_mt", rate_json(res[i].dot_mt));
        json_object_set_new(o, "matvec_1t", rate_json(res[i].matvec_1t));
        json_object_set_new(o, "matvec_mt", rate_json(res[i].matvec_mt));
        json_object_set_new(o, "read_bandwidth_same_weights", rate_json(res[i].read_bw));
        lq_bench_rate rb = res[i].read_bw;
        lq_bench_rate frac = {rb.wall > 0 ? res[i].dot_mt.wall / rb.wall : 0.0, rb.cpu > 0 ? res[i].dot_mt.cpu / rb.cpu : 0.0};
        json_object_set_new(o, "dot_mt_fraction_of_read_bandwidth", rate_json(frac));
        lq_bench_rate mfrac = {rb.wall > 0 ? res[i].matvec_mt.wall / rb.wall : 0.0,
                               rb.cpu > 0 ? res[i].matvec_mt.cpu / rb.cpu : 0.0};
        json_object_set_new(o, "matvec_mt_fraction_of_read_bandwidth", rate_json(mfrac));
        if (res[i].note[0]) json_object_set_new(o, "note", json_string(res[i].note));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "types", arr);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (rc) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot write the JSON report", path);
        err->code = LQ_ERR_IO;
        return -1;
    }
    return 0;
}

static double pick(lq_bench_rate r, bool cpu) { return cpu ? r.cpu : r.wall; }

static void print_table(const lq_codec_bench *res, int n, lq_bench_rate bw, bool encode, bool cpu) {
    printf("\n%s\n", cpu ? "CPU-time basis (per second of CPU time per thread; robust to a loaded machine):"
                         : "wall-clock:");
    printf("%-7s %5s  %-5s %8s %8s %8s %8s %8s %8s %8s %7s %7s\n", "type", "bpw", "act", "enc MB/s", "enc MB/s",
           "dec GB/s", "dot GB/s", "dot GB/s", "mv GB/s", "rd GB/s", "dot/rd", "mv/rd");
    printf("%-7s %5s  %-5s %8s %8s %8s %8s %8s %8s %8s %7s %7s\n", "", "", "", "1 thr", "N thr", "1 thr", "1 thr",
           "N thr", "N thr", "N thr", "N thr", "N thr");
    for (int i = 0; i < n; i++) {
        const lq_codec_bench *r = &res[i];
        const lq_type_traits *t = lq_type_get(r->type);
        char enc1[32] = "-", encn[32] = "-";
        if (encode && r->encode_1t.wall >= 0) {
            snprintf(enc1, sizeof enc1, "%.1f", pick(r->encode_1t, cpu) / 1e6);
            snprintf(encn, sizeof encn, "%.1f", pick(r->encode_mt, cpu) / 1e6);
        } else if (encode) {
            snprintf(enc1, sizeof enc1, "n/a");
            snprintf(encn, sizeof encn, "n/a");
        }
        double b = pick(r->read_bw, cpu);
        printf("%-7s %5.2f  %-5s %8s %8s %8.2f %8.2f %8.2f %8.2f %8.2f %6.1f%% %6.1f%%\n", t->name, t->bpw,
               lq_type_get(lq_kernel_vec_dot_type(r->type))->name, enc1, encn, pick(r->decode, cpu) / 1e9,
               pick(r->dot_1t, cpu) / 1e9, pick(r->dot_mt, cpu) / 1e9, pick(r->matvec_mt, cpu) / 1e9, b / 1e9,
               b > 0 ? 100.0 * pick(r->dot_mt, cpu) / b : 0.0, b > 0 ? 100.0 * pick(r->matvec_mt, cpu) / b : 0.0);
    }
}

int lq_cmd_bench_codecs(int argc, char **argv) {
    bench_codecs_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? LQ_EXIT_OK : rc;
    if (a.simd >= 0) lq_kernels_set_simd((lq_simd)a.simd);
    lq_error err;
    lq_error_clear(&err);

    lq_bench_rate bw = {0, 0};
    if (lq_bench_read_bandwidth(a.opts.weight_bytes, a.opts.n_threads, a.opts.passes, &bw, &err) != LQ_OK)
        return lq_cli_report("bench codecs", &err);
    printf("lq bench codecs: kernels %s (cpu %s), %d threads, %zu MiB of weights per type, best of %d\n",
           simd_name(lq_kernels_simd()), lq_cpu_simd_level(), a.opts.n_threads, a.opts.weight_bytes >> 20,
           a.opts.passes);
    printf("memory read bandwidth (%d threads, %zu MiB): %.2f GB/s wall-clock, %.2f GB/s on the CPU-time basis\n",
           a.opts.n_threads, a.opts.weight_bytes >> 20, bw.wall / 1e9, bw.cpu / 1e9);
    fflush(stdout);

    lq_codec_bench res[MAX_TYPES];
    int n_done = 0;
    for (int i = 0; i < a.n_types; i++) {
        if (lq_bench_codec(a.types[i], &a.opts, &res[n_done], &err) != LQ_OK)
            return lq_cli_report("bench codecs", &err);
        n_done++;
    }
    print_table(res, n_done, bw, a.opts.encode, false);
    print_table(res, n_done, bw, a.opts.encode, true);
    for (int i = 0; i < n_done; i++)
        if (res[i].note[0]) printf("note: %s: %s\n", lq_type_get(res[i].type)->name, res[i].note);
    printf("\nenc: MB/s of f32 input (lq_quantize_rows / _mt); dec: GB/s of f32 output; dot: GB/s of\n"
           "weight bytes, lq_kernel_dot_q row by row (row x quantized activations, llama.cpp's\n"
           "pairing); mv: lq_kernel_matvec_q over the same rows (two rows share the activation side);\n"
           "rd: plain streaming read of the same weights, passes interleaved with the N-thread dot\n"
           "passes; dot/rd, mv/rd: the N-thread figures over it.\n");
    if (a.json && write_json(a.json, &a, bw, res, n_done, &err) != 0) return lq_cli_report("bench codecs", &err);
    return LQ_EXIT_OK;
}
