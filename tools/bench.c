/* bench.c — `lq bench`: prompt-processing and token-generation speed of a model (llama-bench's
 * pp/tg tests), with the memory-bandwidth bound of generation measured in the same run.
 * `lq bench codecs ...` runs the codec/kernel benchmark instead. */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Provided by the kernels' benchmark (tools/bench_codecs.c) when it is built in. */
extern int lq_cmd_bench_codecs(int argc, char **argv) __attribute__((weak));



static const char *bench_usage =
    "usage: lq bench MODEL [-p N] [-n N] [-r N] [-t N] [--json FILE]\n"
    "       lq bench codecs ...   (codec and kernel throughput; see 'lq bench codecs --help')\n\n"
    "pp: N random tokens (first = BOS) evaluated as one prompt; tg: N tokens generated one at a\n"
    "time from an empty cache. Every decode computes the logits of its last token, as\n"
    "llama-bench's do. Each test runs once untimed, then -r times; t/s is reported as\n"
    "mean ± standard deviation over the repetitions. The tg bound is the memory read bandwidth\n"
    "divided by the weight bytes one token reads; the bandwidth is measured (1 GiB, best of 2\n"
    "passes, the model's threads) before the first tg repetition and after each, and every\n"
    "repetition is set against the mean of the two probes around it.\n\n"
    "Options:\n"
    "  -p N         prompt tokens (default 512, 0 = skip)\n"
    "  -n N         generated tokens (default 128, 0 = skip)\n"
    "  -r N         repetitions (default 5)\n"
    "  -t N         threads (default: all cores)\n"
    "  -b N         prompt batch size (default 512)\n"
    "  --json FILE  write the results as JSON\n"
    LQ_CLI_DEVICE_HELP "\n" LQ_EXIT_CODES_HELP;

typedef struct bench_args {
    const char *model, *json, *device;
    int n_prompt, n_gen, reps, n_threads, n_batch;
} bench_args;

typedef struct bench_result {
    char name[32];
    int n_tokens;
    double *ts; /* tokens/s per repetition */
    double *bw;   /* tg: read bandwidth around each repetition, bytes/s */
    double *frac; /* tg: ts[k] / (bw[k] / weight bytes per token), the fraction of its bound */
    int reps;
    double mean, stddev;
    double bw_mean;               /* tg: mean of bw */
    double frac_mean, frac_stddev; /* tg: of frac */
} bench_result;

static int parse_int(const char *opt, const char *v, int min, int *out) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < min || x > 1 << 20) return lq_cli_usage_error("bench", "%s needs an integer >= %d", opt, min);
    *out = (int)x;
    return 0;
}

static int parse_args(int argc, char **argv, bench_args *a) {
    memset(a, 0, sizeof *a);
    a->n_prompt = 512, a->n_gen = 128, a->reps = 5, a->n_batch = 512;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int rc = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(bench_usage, stdout);
            exit(LQ_EXIT_OK);
        } else if (lq_cli_opt(argc, argv, &i, "-p", &v)) {
            rc = parse_int("-p", v, 0, &a->n_prompt);
        } else if (lq_cli_opt(argc, argv, &i, "-n", &v)) {
            rc = parse_int("-n", v, 0, &a->n_gen);
        } else if (lq_cli_opt(argc, argv, &i, "-r", &v)) {
            rc = parse_int("-r", v, 1, &a->reps);
        } else if (lq_cli_opt(argc, argv, &i, "-t", &v)) {
            rc = parse_int("-t", v, 1, &a->n_threads);
        } else if (lq_cli_opt(argc, argv, &i, "-b", &v)) {
            rc = parse_int("-b", v, 1, &a->n_batch);
        } else if (lq_cli_opt(argc, argv, &i, "--json", &v)) {
            if (!(a->json = v)) return lq_cli_usage_error("bench", "--json needs a file");
        } else if (lq_cli_opt(argc, argv, &i, "--device", &v)) {
            if (!(a->device = v)) return lq_cli_usage_error("bench", "--device needs auto, cpu, cuda or cuda:N");
        } else if (argv[i][0] == '-') {
            return lq_cli_usage_error("bench", "unknown option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return lq_cli_usage_error("bench", "unexpected argument '%s'", argv[i]);
        }
        if (rc) return rc;
    }
    if (!a->model) return lq_cli_usage_error("bench", "no model given");
    if (a->n_threads == 0) a->n_threads = lq_n_cpus();
    return 0;
}

#define PROBE_BYTES ((size_t)1 << 30) /* far beyond the caches */

/* One test through lq_runtime_bench; tg with the read bandwidth around each repetition and
 * the fraction of the bound it reached. */
static lq_status run_test(lq_runtime *rt, const bench_args *a, bool gen, int n, int32_t bos,
                          bench_result *r, lq_error *err) {
    snprintf(r->name, sizeof r->name, "%s%d", gen ? "tg" : "pp", n);
    r->n_tokens = n;
    r->reps = a->reps;
    r->ts = (double *)calloc((size_t)a->reps, sizeof(double));
    r->bw = (double *)calloc((size_t)a->reps, sizeof(double));
    r->frac = (double *)calloc((size_t)a->reps, sizeof(double));
    if (!r->ts || !r->bw || !r->frac) return lq_cli_fail(err, LQ_ERR_NOMEM, "bench: no memory");
    lq_status st = lq_runtime_bench(rt, gen, n, a->reps, bos, r->ts, gen ? r->bw : NULL, PROBE_BYTES, err);
    if (!st) lq_bench_mean_stddev(r->ts, r->reps, &r->mean, &r->stddev);
    if (!st && gen) {
        double token_bytes = (double)lq_runtime_weight_bytes(rt), sd;
        for (int k = 0; k < r->reps; k++) r->frac[k] = r->bw[k] > 0 ? r->ts[k] * token_bytes / r->bw[k] : 0;
        lq_bench_mean_stddev(r->bw, r->reps, &r->bw_mean, &sd);
        lq_bench_mean_stddev(r->frac, r->reps, &r->frac_mean, &r->frac_stddev);
    }
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Model description and reports
 * ------------------------------------------------------------------------------------- */

typedef struct model_info {
    uint64_t bytes, params;
    char label[96];
} model_info;

static model_info describe(const lq_model *m) {
    model_info mi;
    memset(&mi, 0, sizeof mi);
    uint64_t bytes_by_type[LQ_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < lq_model_n_tensors(m); i++) {
        const lq_tensor *t = lq_model_tensor(m, i);
        mi.bytes += t->nbytes;
        mi.params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        if (t->n_dims >= 2 && (int)t->type >= 0 && (int)t->type < LQ_TYPE_COUNT) bytes_by_type[t->type] += t->nbytes;
    }
    int main_type = 0;
    for (int i = 0; i < LQ_TYPE_COUNT; i++)
        if (bytes_by_type[i] > bytes_by_type[main_type]) main_type = i;
    const lq_type_traits *tr = lq_type_get(main_type);
    double p = (double)mi.params;
    char size[32];
    if (p >= 1e9) snprintf(size, sizeof size, "%.1fB", p / 1e9);
    else snprintf(size, sizeof size, "%.0fM", p / 1e6);
    snprintf(mi.label, sizeof mi.label, "%s %s %s", lq_model_hparams(m)->arch_name, size,
             tr ? tr->name : "?");
    return mi;
}

/* llama-bench's columns, then (tg only) the memory-bandwidth bound and the fraction of it */
static void print_markdown(const model_info *mi, const bench_args *a, const bench_result *res, int n_res,
                           uint64_t token_bytes) {
    printf("| model                          |        size |     params | backend | threads |  test |              t/s |"
           " read GB/s | bound t/s | %% of bound |\n");
    printf("| ------------------------------ | ----------: | ---------: | ------- | ------: | ----: | ---------------: |"
           " --------: | --------: | ---------: |\n");
    for (int i = 0; i < n_res; i++) {
        printf("| %-30s | %7.2f MiB | %8.2f M | CPU     | %7d | %5s | %8.2f ± %5.2f |", mi->label,
               (double)mi->bytes / (1 << 20), (double)mi->params / 1e6, a->n_threads, res[i].name,
               res[i].mean, res[i].stddev);
        if (res[i].name[0] == 't' && res[i].bw_mean > 0 && token_bytes > 0) {
            double bound = res[i].bw_mean / (double)token_bytes;
            printf(" %9.1f | %9.2f | %9.1f %% |\n", res[i].bw_mean / 1e9, bound, 100 * res[i].frac_mean);
        } else {
            printf("         - |         - |          - |\n");
        }
    }
}

static lq_status write_json(const char *path, const model_info *mi, const bench_args *a,
                            const bench_result *res, int n_res, uint64_t token_bytes, lq_error *err) {
    double bw = 0; /* the tg test's mean read bandwidth */
    for (int i = 0; i < n_res; i++)
        if (res[i].name[0] == 't') bw = res[i].bw_mean;
    json_t *root = json_object();
    json_object_set_new(root, "model_filename", json_string(a->model));
    json_object_set_new(root, "model_type", json_string(mi->label));
    json_object_set_new(root, "model_size", json_integer((json_int_t)mi->bytes));
    json_object_set_new(root, "model_n_params", json_integer((json_int_t)mi->params));
    json_object_set_new(root, "n_threads", json_integer(a->n_threads));
    json_object_set_new(root, "n_batch", json_integer(a->n_batch));
    json_object_set_new(root, "cpu_simd", json_string(lq_cpu_simd_level()));
    json_object_set_new(root, "read_bandwidth_bytes_per_s", bw > 0 ? json_real(bw) : json_null()); /* tg only */
    json_object_set_new(root, "weight_bytes_per_token", json_integer((json_int_t)token_bytes));
    json_t *tests = json_array();
    for (int i = 0; i < n_res; i++) {
        json_t *t = json_object();
        bool gen = res[i].name[0] == 't';
        json_object_set_new(t, "test", json_string(res[i].name));
        json_object_set_new(t, "n_prompt", json_integer(gen ? 0 : res[i].n_tokens));
        json_object_set_new(t, "n_gen", json_integer(gen ? res[i].n_tokens : 0));
        json_object_set_new(t, "avg_ts", json_real(res[i].mean));
        json_object_set_new(t, "stddev_ts", json_real(res[i].stddev));
        json_t *samples = json_array();
        for (int k = 0; k < res[i].reps; k++) json_array_append_new(samples, json_real(res[i].ts[k]));
        json_object_set_new(t, "samples_ts", samples);
        if (gen && res[i].bw_mean > 0) {
            json_t *bws = json_array(), *fracs = json_array();
            for (int k = 0; k < res[i].reps; k++) {
                json_array_append_new(bws, json_real(res[i].bw[k]));
                json_array_append_new(fracs, json_real(res[i].frac[k]));
            }
            json_object_set_new(t, "samples_read_bandwidth_bytes_per_s", bws);
            json_object_set_new(t, "samples_fraction_of_bound", fracs);
            json_object_set_new(t, "bandwidth_bound_ts", json_real(res[i].bw_mean / (double)token_bytes));
            json_object_set_new(t, "fraction_of_bound", json_real(res[i].frac_mean));
            json_object_set_new(t, "fraction_of_bound_stddev", json_real(res[i].frac_stddev));
        }
        json_array_append_new(tests, t);
    }
    json_object_set_new(root, "tests", tests);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc ? lq_cli_fail(err, LQ_ERR_IO, "%s: cannot write", path) : LQ_OK;
}

int lq_cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "codecs")) {
        if (lq_cmd_bench_codecs) return lq_cmd_bench_codecs(argc - 1, argv + 1);
        fprintf(stderr, "lq bench: the codec benchmark is not built into this binary\n");
        return LQ_EXIT_UNSUPPORTED;
    }
    bench_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    lq_cli_install_signal_handlers();
    lq_error err;
    lq_error_clear(&err);
    lq_model *m = NULL;
    lq_runtime *rt = NULL;
    bench_result res[2];
    memset(res, 0, sizeof res);
    int n_res = 0;
    lq_device dev;
    lq_device_ctx *device = NULL;
    if ((rc = lq_cli_device("bench", a.device, false, &dev, &device))) return rc;
    lq_status st = lq_model_open(a.model, &m, &err);
    if (!st) {
        int n_ctx = (a.n_prompt > a.n_gen ? a.n_prompt : a.n_gen) + 1;
        lq_runtime_opts o = {a.n_threads, n_ctx, a.n_batch, false, LQ_ACT_INT8_NONE};
        st = lq_runtime_create(m, &o, &rt, &err);
        if (!st) lq_runtime_set_device(rt, device);
    }
    if (!st) {
        model_info mi = describe(m);
        int32_t bos = (int32_t)lq_model_hparams(m)->bos_token_id;
        if (a.n_prompt > 0 && !st) st = run_test(rt, &a, false, a.n_prompt, bos, &res[n_res++], &err);
        if (a.n_gen > 0 && !st) st = run_test(rt, &a, true, a.n_gen, bos, &res[n_res++], &err);
        if (!st) {
            uint64_t token_bytes = lq_runtime_weight_bytes(rt);
            print_markdown(&mi, &a, res, n_res, token_bytes);
            printf("\nweights read per token: %.2f MiB\n", (double)token_bytes / (1 << 20));
            for (int i = 0; i < n_res; i++)
                if (res[i].name[0] == 't' && res[i].bw_mean > 0)
                    printf("%s: %.2f t/s of a bandwidth bound of %.2f t/s = %.1f ± %.1f %% (read bandwidth "
                           "%.1f GB/s on %d threads, measured around each repetition)\n",
                           res[i].name, res[i].mean, res[i].bw_mean / (double)token_bytes,
                           100 * res[i].frac_mean, 100 * res[i].frac_stddev, res[i].bw_mean / 1e9, a.n_threads);
            if (a.json) st = write_json(a.json, &mi, &a, res, n_res, token_bytes, &err);
        }
    }
    for (int i = 0; i < 2; i++) free(res[i].ts), free(res[i].bw), free(res[i].frac);
    lq_runtime_free(rt);
    lq_device_close(device);
    lq_model_close(m);
    return st ? lq_cli_report("bench", &err) : LQ_EXIT_OK;
}
