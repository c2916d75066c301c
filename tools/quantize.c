/* quantize.c — `lq quantize`: an HF directory or unquantized GGUF to a llama.cpp GGUF with
 * llama-quantize's presets and mixing rules (the logic lives in libquant/recipe.c and
 * libquant/quantize.c; this file parses options, draws progress and writes reports). */
#include "cli.h"

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *quantize_usage =
    "usage: lq quantize MODEL -o OUT.gguf --type TYPE [options]\n\n"
    "Quantizes an HF model directory (F32/F16/BF16 safetensors) or an unquantized GGUF into a\n"
    "GGUF that llama.cpp loads, with llama-quantize's per-tensor rules (output/token embedding,\n"
    "attn_v and ffn_down bumps, fallbacks for row widths that do not fit the block size).\n\n"
    "TYPE: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M\n"
    "      Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS\n\n"
    "Options:\n"
    "  -o, --out FILE              output GGUF (written atomically)\n"
    "  --type TYPE                 preset (required)\n"
    "  --imatrix FILE              importance statistics (lq calibrate, llama-imatrix GGUF/.dat)\n"
    "  --tensor-type REGEX=TYPE    per-tensor type, PCRE2 searched in the tensor name; repeatable,\n"
    "                              the last matching rule wins\n"
    "  --output-tensor-type TYPE   type of output.weight\n"
    "  --token-embedding-type TYPE type of token_embd.weight\n"
    "  --pure                      no mixing rules: every matrix in the preset's base type\n"
    "  --json FILE                 JSON report (inputs with hashes, per-tensor types and errors)\n"
    "  --no-error                  skip the per-tensor error measurement (faster)\n"
    "  -t N                        threads (default: all cores)\n"
    "  -q, --quiet                 no progress bar or summary\n\n"
    "Calibrated passes (libquant/passes.c; need --calib):\n"
    "  --method M                  rtn (default), gptq, awq, awq+gptq\n"
    "  --smoothquant A             SmoothQuant migration strength A in [0,1], or 'auto'\n"
    "  --calib FILE                calibration text (plain text or JSON Lines, optionally gzip)\n"
    "  --calib-chunks N            calibration chunks (default 128; fewer if the text is short)\n"
    "  --chunk-size N              tokens per chunk (default 512)\n"
    "  --seed N                    seed of the chunk choice (default 0)\n"
    "  --percdamp X                GPTQ dampening relative to mean diag(H) (default 0.01)\n"
    LQ_CLI_DEVICE_HELP "\n" LQ_EXIT_CODES_HELP;

#define MAX_RULES 64

typedef struct qargs {
    lq_quantize_opts o;
    const char *json;
    const char *rules[MAX_RULES];
    bool quiet;
    /* calibrated passes */
    lq_passes_opts passes;
    bool calibrated; /* --method other than rtn, or --smoothquant */
    const char *calib;
    const char *device; /* --device */
    long long calib_chunks, chunk_size, seed;
    lq_passes_report prep; /* filled by run_passes (calibrated) */
    int64_t calib_n_chunks, calib_chunk_size;
} qargs;

/* Parses a number option into *out (strtod / strtoll); returns nonzero after a usage error. */
static int parse_num_opt(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    double x = v ? strtod(v, &end) : 0;
    if (!v || *end || !(x >= lo && x <= hi))
        return lq_cli_usage_error("quantize", "%s needs a number in [%g, %g]", opt, lo, hi);
    *out = x;
    return 0;
}

static int parse_pass_opt(int argc, char **argv, int *i, qargs *a, bool *matched) {
    const char *v = NULL;
    double x = 0;
    int rc = 0;
    *matched = true;
    if (lq_cli_opt(argc, argv, i, "--method", &v)) {
        int m = v ? lq_pass_method_from_name(v) : -1;
        if (m < LQ_PASS_RTN) return lq_cli_usage_error("quantize", "--method needs rtn, gptq, awq or awq+gptq");
        a->passes.method = (lq_pass_method)m;
        a->calibrated |= m != LQ_PASS_RTN;
    } else if (lq_cli_opt(argc, argv, i, "--smoothquant", &v)) {
        if (v && !strcmp(v, "auto")) a->passes.smoothquant_auto = true;
        else if (!(rc = parse_num_opt("--smoothquant", v, 0, 1, &x))) a->passes.smoothquant_alpha = x;
        a->calibrated = true;
    } else if (lq_cli_opt(argc, argv, i, "--calib", &v)) {
        if (!(a->calib = v)) return lq_cli_usage_error("quantize", "--calib needs a file");
    } else if (lq_cli_opt(argc, argv, i, "--calib-chunks", &v)) {
        if (!(rc = parse_num_opt("--calib-chunks", v, 1, 1e7, &x))) a->calib_chunks = (long long)x;
    } else if (lq_cli_opt(argc, argv, i, "--chunk-size", &v)) {
        if (!(rc = parse_num_opt("--chunk-size", v, 2, 1e6, &x))) a->chunk_size = (long long)x;
    } else if (lq_cli_opt(argc, argv, i, "--seed", &v)) {
        if (!(rc = parse_num_opt("--seed", v, 0, 9e15, &x))) a->seed = (long long)x;
    } else if (lq_cli_opt(argc, argv, i, "--device", &v)) {
        if (!(a->device = v)) return lq_cli_usage_error("quantize", "--device needs auto, cpu, cuda or cuda:N");
    } else if (lq_cli_opt(argc, argv, i, "--percdamp", &v)) {
        if (!(rc = parse_num_opt("--percdamp", v, 1e-6, 1, &x))) a->passes.percdamp = x;
    } else {
        *matched = false;
    }
    return rc;
}

static int parse_type_opt(const char *opt, const char *v, int *out) {
    int t = v ? lq_type_from_name(v) : -1;
    const lq_type_traits *tr = lq_type_get(t);
    if (!tr || !tr->has_codec || tr->activation_only)
        return lq_cli_usage_error("quantize", "%s needs a storable ggml type name (f16, q8_0, q6_K, ...)", opt);
    *out = t;
    return 0;
}

static int parse_args(int argc, char **argv, qargs *a) {
    memset(a, 0, sizeof *a);
    a->o.plan.output_type = a->o.plan.token_embd_type = -1;
    a->o.plan.tensor_types = a->rules;
    a->o.measure_error = true;
    lq_passes_opts_default(&a->passes);
    a->passes.method = LQ_PASS_RTN;
    a->calib_chunks = 128;
    a->chunk_size = 512;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int rc = 0;
        bool pass_opt = false;
        if ((rc = parse_pass_opt(argc, argv, &i, a, &pass_opt)) || pass_opt) {
            if (rc) return rc;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(quantize_usage, stdout);
            return -1;
        } else if (lq_cli_opt(argc, argv, &i, "-o", &v) || lq_cli_opt(argc, argv, &i, "--out", &v)) {
            if (!(a->o.out_path = v)) return lq_cli_usage_error("quantize", "-o needs a path");
        } else if (lq_cli_opt(argc, argv, &i, "--type", &v)) {
            if (!(a->o.plan.preset = v)) return lq_cli_usage_error("quantize", "--type needs a type");
        } else if (lq_cli_opt(argc, argv, &i, "--imatrix", &v)) {
            if (!(a->o.imatrix_path = v)) return lq_cli_usage_error("quantize", "--imatrix needs a file");
        } else if (lq_cli_opt(argc, argv, &i, "--tensor-type", &v)) {
            if (!v) return lq_cli_usage_error("quantize", "--tensor-type needs REGEX=TYPE");
            if (a->o.plan.n_tensor_types == MAX_RULES) return lq_cli_usage_error("quantize", "more than %d --tensor-type rules", MAX_RULES);
            a->rules[a->o.plan.n_tensor_types++] = v;
        } else if (lq_cli_opt(argc, argv, &i, "--output-tensor-type", &v)) {
            rc = parse_type_opt("--output-tensor-type", v, &a->o.plan.output_type);
        } else if (lq_cli_opt(argc, argv, &i, "--token-embedding-type", &v)) {
            rc = parse_type_opt("--token-embedding-type", v, &a->o.plan.token_embd_type);
        } else if (!strcmp(argv[i], "--pure")) {
            a->o.plan.pure = true;
        } else if (!strcmp(argv[i], "--no-error")) {
            a->o.measure_error = false;
        } else if (!strcmp(argv[i], "-q") || !strcmp(argv[i], "--quiet")) {
            a->quiet = true;
        } else if (lq_cli_opt(argc, argv, &i, "--json", &v)) {
            if (!(a->json = v)) return lq_cli_usage_error("quantize", "--json needs a path");
        } else if (lq_cli_opt(argc, argv, &i, "-t", &v)) {
            char *end = NULL;
            long t = v ? strtol(v, &end, 10) : 0;
            if (!v || *end || t < 1 || t > 4096) return lq_cli_usage_error("quantize", "-t needs a positive integer");
            a->o.n_threads = (int)t;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return lq_cli_usage_error("quantize", "unknown option '%s'", argv[i]);
        } else if (!a->o.model_path) {
            a->o.model_path = argv[i];
        } else {
            return lq_cli_usage_error("quantize", "unexpected argument '%s'", argv[i]);
        }
        if (rc) return rc;
    }
    if (!a->o.model_path) return lq_cli_usage_error("quantize", "no model given");
    if (!a->o.out_path) return lq_cli_usage_error("quantize", "no output given (-o OUT.gguf)");
    if (!a->o.plan.preset) return lq_cli_usage_error("quantize", "no type given (--type TYPE)");
    if (a->calibrated && !a->calib) return lq_cli_usage_error("quantize", "--method/--smoothquant need --calib FILE");
    lq_error err;
    if (lq_preset_lookup(a->o.plan.preset, NULL, NULL, &err)) return lq_cli_usage_error("quantize", "%s", err.msg);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Progress and summary                                                                      */

static void draw_progress(void *ctx, int64_t done, int64_t total, const char *name) {
    (void)ctx;
    int width = 30, filled = total > 0 ? (int)(width * (double)done / (double)total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%% %-40.40s", bar, total > 0 ? 100.0 * (double)done / (double)total : 100.0, name);
    if (done >= total) fputc('\n', stderr);
    fflush(stderr);
}

static void print_summary(const lq_quantize_report *r, const char *out) {
    uint64_t count[LQ_TYPE_COUNT] = {0}, bytes[LQ_TYPE_COUNT] = {0}, elems[LQ_TYPE_COUNT] = {0};
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lq_tensor_report *t = &r->tensors[i];
        count[t->type]++;
        bytes[t->type] += t->nbytes;
        elems[t->type] += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    }
    fprintf(stderr, "%s: %s, %lld tensors\n", out, lq_ftype_name(r->ftype), (long long)r->n_tensors);
    for (int t = 0; t < LQ_TYPE_COUNT; t++)
        if (count[t])
            fprintf(stderr, "  %-7s %4llu tensors %10.3f MiB %7.3f bpw\n", lq_type_get(t)->name,
                    (unsigned long long)count[t], bytes[t] / 1048576.0, 8.0 * (double)bytes[t] / (double)elems[t]);
    fprintf(stderr, "  total   %10.3f MiB of tensors, file %.3f MiB, %.3f bpw, %.2f s%s\n",
            r->tensor_bytes / 1048576.0, r->file_bytes / 1048576.0,
            r->n_elements ? 8.0 * (double)r->tensor_bytes / (double)r->n_elements : 0.0, r->seconds,
            r->n_imatrix_used ? ", imatrix used" : "");
}

/* ---------------------------------------------------------------------------------------- */
/* JSON report                                                                               */

static json_t *file_entry(const char *path, const char *role) {
    uint64_t hash = 0, size = 0;
    lq_error err;
    json_t *f = json_object();
    json_object_set_new(f, "path", json_string(path));
    json_object_set_new(f, "role", json_string(role));
    if (lq_file_hash64(path, &hash, &size, &err) == LQ_OK) {
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash);
        json_object_set_new(f, "bytes", json_integer((json_int_t)size));
        json_object_set_new(f, "lqh64", json_string(hex));
    } else {
        json_object_set_new(f, "error", json_string(err.msg));
    }
    return f;
}

/* Every regular file of an HF directory (config, weights, tokenizer), or the GGUF itself. */
static json_t *input_files(const lq_quantize_opts *o) {
    json_t *arr = json_array();
    struct stat sb;
    if (stat(o->model_path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        struct dirent **names = NULL;
        int n = scandir(o->model_path, &names, NULL, alphasort);
        for (int i = 0; i < n; i++) {
            char p[8192];
            snprintf(p, sizeof p, "%s/%s", o->model_path, names[i]->d_name);
            if (names[i]->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode))
                json_array_append_new(arr, file_entry(p, "model"));
            free(names[i]);
        }
        free(names);
    } else {
        json_array_append_new(arr, file_entry(o->model_path, "model"));
    }
    if (o->imatrix_path) json_array_append_new(arr, file_entry(o->imatrix_path, "imatrix"));
    return arr;
}

static json_t *real_or_null(double v) { return v >= 0 && isfinite(v) ? json_real(v) : json_null(); }

/* One calibrated tensor: what the pass did and its output error before / after. */
static json_t *pass_tensor_json(const lq_pass_tensor *t) {
    json_t *j = json_object();
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "type", json_string(lq_type_get(t->type)->name));
    json_object_set_new(j, "out_err_before", real_or_null(t->err_before));
    json_object_set_new(j, "out_err_after", real_or_null(t->err_after));
    if (t->gptq) {
        json_t *g = json_object();
        json_object_set_new(g, "percdamp", json_real(t->report.percdamp));
        json_object_set_new(g, "retries", json_integer(t->report.n_retries));
        json_object_set_new(g, "diag_floor", json_boolean(t->report.diag_floor));
        json_object_set_new(g, "dead_columns", json_integer((json_int_t)t->report.n_dead));
        json_object_set_new(g, "rtn_fallback", json_boolean(t->report.rtn_fallback));
        if (t->report.note[0]) json_object_set_new(g, "note", json_string(t->report.note));
        json_object_set_new(j, "gptq", g);
    }
    if (t->awq_alpha >= 0) {
        json_object_set_new(j, "awq_alpha", json_real(t->awq_alpha));
        json_object_set_new(j, "awq_loss_plain", json_real(t->awq_loss_rtn));
        json_object_set_new(j, "awq_loss", json_real(t->awq_loss));
    }
    if (t->clip_ratio >= 0) json_object_set_new(j, "awq_clip_ratio", json_real(t->clip_ratio));
    if (t->sq_alpha >= 0) json_object_set_new(j, "smoothquant_alpha", json_real(t->sq_alpha));
    return j;
}

/* seconds, GFLOP and GFLOP/s of one phase, and the rate as a fraction of the GEMM probe */
static json_t *phase_json(double seconds, double flops, double gemm_gflops) {
    json_t *j = json_object();
    json_object_set_new(j, "seconds", json_real(seconds));
    if (flops > 0) {
        json_object_set_new(j, "gflop", json_real(flops / 1e9));
        json_object_set_new(j, "gflops", json_real(seconds > 0 ? flops / seconds / 1e9 : 0));
        if (gemm_gflops > 0 && seconds > 0)
            json_object_set_new(j, "of_gemm", json_real(flops / seconds / 1e9 / gemm_gflops));
    }
    return j;
}

/* Timings are the only part of the report that changes between runs (see test_quantize_cli). */
static json_t *passes_timing_json(const lq_passes_report *r) {
    json_t *j = json_object(), *layers = json_array();
    for (int64_t i = 0; i < r->n_layer; i++) json_array_append_new(layers, json_real(r->layer_seconds[i]));
    json_object_set_new(j, "seconds", json_real(r->seconds));
    json_object_set_new(j, "threads", json_integer(r->n_threads));
    json_object_set_new(j, "blas_core", json_string(lq_passes_blas_core()));
    json_object_set_new(j, "layer_seconds", layers);
    if (r->sgemm_gflops > 0) json_object_set_new(j, "sgemm_gflops", json_real(r->sgemm_gflops));
    if (r->dgemm_gflops > 0) json_object_set_new(j, "dgemm_gflops", json_real(r->dgemm_gflops));
    json_object_set_new(j, "hessian", phase_json(r->hessian_seconds, r->hessian_flops, r->sgemm_gflops));
    json_object_set_new(j, "factorisation_fp64", phase_json(r->factor_seconds, r->factor_flops, r->dgemm_gflops));
    json_object_set_new(j, "gptq_sweep", phase_json(r->gptq_seconds, r->gptq_flops, r->sgemm_gflops));
    json_object_set_new(j, "forward", phase_json(r->forward_seconds, 0, 0));
    json_object_set_new(j, "search", phase_json(r->search_seconds, 0, 0));
    json_object_set_new(j, "output_error", phase_json(r->error_seconds, 0, 0));
    return j;
}

static json_t *passes_json(const qargs *a) {
    const lq_passes_report *r = &a->prep;
    static const char *const methods[] = {"none", "rtn", "gptq", "awq", "awq+gptq"};
    json_t *j = json_object(), *tensors = json_array();
    json_object_set_new(j, "method", json_string(methods[a->passes.method]));
    if (a->passes.smoothquant_auto) json_object_set_new(j, "smoothquant", json_string("auto"));
    else if (a->passes.smoothquant_alpha >= 0) json_object_set_new(j, "smoothquant", json_real(a->passes.smoothquant_alpha));
    json_object_set_new(j, "calib_chunks", json_integer((json_int_t)a->calib_n_chunks));
    json_object_set_new(j, "chunk_size", json_integer((json_int_t)a->calib_chunk_size));
    json_object_set_new(j, "seed", json_integer((json_int_t)a->seed));
    json_object_set_new(j, "percdamp", json_real(a->passes.percdamp > 0 ? a->passes.percdamp : 0.01));
    json_object_set_new(j, "n_rtn_fallback", json_integer((json_int_t)r->n_rtn_fallback));
    json_object_set_new(j, "n_damp_retry", json_integer((json_int_t)r->n_damp_retry));
    for (int64_t i = 0; i < r->n_tensors; i++) json_array_append_new(tensors, pass_tensor_json(&r->tensors[i]));
    json_object_set_new(j, "tensors", tensors);
    json_object_set_new(j, "timing", passes_timing_json(r));
    return j;
}

static json_t *tensor_json(const lq_tensor_report *t) {
    json_t *j = json_object(), *shape = json_array();
    for (uint32_t d = 0; d < t->n_dims; d++) json_array_append_new(shape, json_integer(t->ne[d]));
    json_object_set_new(j, "name", json_string(t->name));
    json_object_set_new(j, "type", json_string(lq_type_get(t->type)->name));
    json_object_set_new(j, "source_type", json_string(lq_type_get(t->src_type)->name));
    json_object_set_new(j, "shape", shape);
    json_object_set_new(j, "bytes", json_integer((json_int_t)t->nbytes));
    json_object_set_new(j, "fallback", json_boolean(t->fallback));
    json_object_set_new(j, "imatrix", json_boolean(t->imatrix));
    json_object_set_new(j, "replaced", json_boolean(t->replaced));
    if (t->rmse >= 0) json_object_set_new(j, "rmse", json_real(t->rmse));
    if (t->rel_rmse >= 0) json_object_set_new(j, "rel_rmse", json_real(t->rel_rmse));
    return j;
}

static int write_json(const qargs *a, const lq_quantize_report *r, int argc, char **argv) {
    json_t *root = json_object(), *cmd = json_array(), *tensors = json_array(), *types = json_object();
    for (int i = 0; i < argc; i++) json_array_append_new(cmd, json_string(argv[i]));
    json_object_set_new(root, "tool", json_string("lq quantize"));
    json_object_set_new(root, "version", json_string(lq_version()));
    json_object_set_new(root, "build", json_string(lq_build_features()));
    json_object_set_new(root, "command", cmd);
    json_t *inputs = input_files(&a->o);
    if (a->calibrated) json_array_append_new(inputs, file_entry(a->calib, "calibration"));
    json_object_set_new(root, "inputs", inputs);
    json_object_set_new(root, "output", file_entry(a->o.out_path, "output"));
    json_object_set_new(root, "preset", json_string(lq_ftype_name(r->ftype)));
    json_object_set_new(root, "ftype", json_integer(r->ftype));
    json_object_set_new(root, "n_elements", json_integer((json_int_t)r->n_elements));
    json_object_set_new(root, "tensor_bytes", json_integer((json_int_t)r->tensor_bytes));
    json_object_set_new(root, "file_bytes", json_integer((json_int_t)r->file_bytes));
    json_object_set_new(root, "bpw", json_real(r->n_elements ? 8.0 * (double)r->tensor_bytes / (double)r->n_elements : 0));
    json_object_set_new(root, "seconds", json_real(r->seconds));
    json_object_set_new(root, "n_imatrix_used", json_integer(r->n_imatrix_used));
    for (int64_t i = 0; i < r->n_tensors; i++) {
        json_array_append_new(tensors, tensor_json(&r->tensors[i]));
        const char *tn = lq_type_get(r->tensors[i].type)->name;
        json_t *c = json_object_get(types, tn);
        json_object_set_new(types, tn, json_integer(c ? json_integer_value(c) + 1 : 1));
    }
    json_object_set_new(root, "tensors_per_type", types);
    json_object_set_new(root, "tensors", tensors);
    if (a->calibrated) json_object_set_new(root, "passes", passes_json(a));
    int rc = json_dump_file(root, a->json, JSON_INDENT(1)) == 0 ? LQ_EXIT_OK : LQ_EXIT_IO;
    if (rc) fprintf(stderr, "lq quantize: %s: cannot write the JSON report\n", a->json);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------- */
/* Calibrated passes: calibration chunks → lq_passes_run → replacement tensors                 */

/* One line per layer: its time and the output error of its linears on the calibration inputs,
 * plain quantizer → pass (mean over the linears, and the worst one after the pass). */
static void draw_layer_progress(void *ctx, const lq_passes_report *r, int64_t done) {
    char prefix[32];
    snprintf(prefix, sizeof prefix, "blk.%lld.", (long long)(done - 1));
    double sum_b = 0, sum_a = 0, worst_b = 0, worst_a = -1;
    const char *worst = "";
    int n = 0;
    for (int64_t i = 0; i < r->n_tensors; i++) {
        const lq_pass_tensor *t = &r->tensors[i];
        if (strncmp(t->name, prefix, strlen(prefix)) || t->err_after < 0) continue;
        sum_b += t->err_before, sum_a += t->err_after, n++;
        if (t->err_after > worst_a) worst_a = t->err_after, worst_b = t->err_before, worst = t->name + strlen(prefix);
    }
    fprintf(stderr, "calibrated pass: layer %lld/%lld %6.1f s", (long long)done, (long long)r->n_layer,
            r->layer_seconds[done - 1]);
    if (n)
        fprintf(stderr, "  out err plain -> pass: mean %.3e -> %.3e (%d linears), worst %s %.3e -> %.3e", sum_b / n,
                sum_a / n, n, worst, worst_b, worst_a);
    fputc('\n', stderr);
}

static void print_pass_rates(const lq_passes_report *r) {
    const char *names[3] = {"hessian (fp32 products)", "factorisation (fp64)", "gptq sweep (fp32)"};
    double secs[3] = {r->hessian_seconds, r->factor_seconds, r->gptq_seconds};
    double flops[3] = {r->hessian_flops, r->factor_flops, r->gptq_flops};
    double ref[3] = {r->sgemm_gflops, r->dgemm_gflops, r->sgemm_gflops};
    for (int i = 0; i < 3; i++) {
        if (!(flops[i] > 0 && secs[i] > 0)) continue;
        double rate = flops[i] / secs[i] / 1e9;
        fprintf(stderr, "  %-24s %8.1f s %9.1f GFLOP %7.1f GFLOP/s", names[i], secs[i], flops[i] / 1e9, rate);
        if (ref[i] > 0) fprintf(stderr, " = %3.0f %% of %s (%.1f GFLOP/s, %d threads)", 100 * rate / ref[i], i == 1 ? "dgemm" : "sgemm", ref[i], r->n_threads);
        fputc('\n', stderr);
    }
    fprintf(stderr, "  forward %.1f s, searches %.1f s, output errors %.1f s\n", r->forward_seconds, r->search_seconds,
            r->error_seconds);
}

/* OpenBLAS 0.3.21 does not know newer x86 CPUs (this machine: family 6 model 207) and falls back
 * to its SSE3 kernels, about 3x slower than its AVX-512 ones here; the core type can only be chosen
 * before the library loads, so say how. */
static void warn_generic_blas(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!strcmp(lq_passes_blas_core(), "Prescott") && __builtin_cpu_supports("avx2"))
        fprintf(stderr, "warning: OpenBLAS does not recognise this CPU and runs its generic SSE3 kernels; "
                "OPENBLAS_CORETYPE=%s makes the Hessians and GPTQ about 3x faster\n",
                __builtin_cpu_supports("avx512f") ? "SkylakeX" : "Haswell");
#endif
}

static lq_status run_passes(qargs *a, lq_tensor_set **set, lq_error *err) {
    lq_model *m = NULL;
    lq_tokenizer *tok = NULL;
    lq_stats *stats = NULL;
    char *text = NULL;
    size_t len = 0;
    lq_calib_chunks chunks;
    memset(&chunks, 0, sizeof chunks);
    lq_plan plan;
    memset(&plan, 0, sizeof plan);
    lq_plan_opts po = a->o.plan;
    po.has_imatrix = a->o.imatrix_path != NULL;
    lq_calib_sample_opts so = {a->chunk_size, a->calib_chunks, true, (uint64_t)a->seed, false};
    lq_status st = lq_model_open(a->o.model_path, &m, err);
    if (!st) st = lq_plan_build(m, &po, &plan, err);
    if (!st) st = lq_calib_tokenizer(m, &tok, err);
    if (!st) st = lq_calib_read_text(a->calib, NULL, &text, &len, err);
    if (!st) st = lq_calib_sample(tok, text, len, &so, &chunks, err);
    if (!st && a->o.imatrix_path) st = lq_stats_read(a->o.imatrix_path, &stats, err);
    *set = NULL;
    if (!st && !(*set = lq_tensor_set_new())) {
        err->code = st = LQ_ERR_NOMEM;
        snprintf(err->msg, sizeof err->msg, "quantize: out of memory for the calibrated tensors");
    }
    if (!st) {
        a->passes.imatrix = stats;
        a->passes.n_threads = a->o.n_threads;
        a->passes.no_error = !a->o.measure_error;
        if (!a->quiet) {
            a->passes.progress = draw_layer_progress;
            a->passes.rate_probe = true;
        }
        if (!a->quiet) warn_generic_blas();
        lq_passes_report *rep = &a->prep;
        a->calib_n_chunks = chunks.n_chunks;
        a->calib_chunk_size = chunks.chunk_size;
        st = lq_passes_run(m, &plan, chunks.tokens, chunks.n_chunks, chunks.chunk_size, &a->passes, *set,
                           rep, err);
        if (!st && !a->quiet) {
            fprintf(stderr, "calibrated pass: %lld x %lld tokens, %.1f s, %lld tensors (%lld RTN fallbacks, %lld "
                    "dampening retries)\n", (long long)chunks.n_chunks, (long long)chunks.chunk_size, rep->seconds,
                    (long long)rep->n_tensors, (long long)rep->n_rtn_fallback, (long long)rep->n_damp_retry);
            print_pass_rates(rep);
        }
        for (int64_t i = 0; !st && i < rep->n_tensors; i++)
            if (rep->tensors[i].gptq && rep->tensors[i].report.note[0])
                fprintf(stderr, "warning: %s: %s\n", rep->tensors[i].name, rep->tensors[i].report.note);
    }
    if (st) {
        lq_tensor_set_free(*set);
        *set = NULL;
    }
    lq_calib_chunks_free(&chunks);
    free(text);
    lq_stats_free(stats);
    lq_tokenizer_free(tok);
    lq_plan_free(&plan);
    lq_model_close(m);
    return st;
}

int lq_cmd_quantize(int argc, char **argv) {
    qargs a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc < 0 ? LQ_EXIT_OK : rc;
    if (!a.quiet && isatty(STDERR_FILENO)) a.o.progress = draw_progress;
    lq_cli_install_signal_handlers();
    lq_quantize_report r;
    lq_error err;
    lq_error_clear(&err);
    lq_tensor_set *set = NULL;
    lq_device dev;
    lq_device_ctx *device = NULL;
    /* the device serves the calibrated passes; plain RTN only checks an explicit --device */
    if ((a.calibrated || a.device) &&
        (rc = lq_cli_device("quantize", a.device, a.quiet, &dev, a.calibrated ? &device : NULL)))
        return rc;
    a.passes.device = device;
    lq_status pst = a.calibrated ? run_passes(&a, &set, &err) : LQ_OK;
    lq_device_close(device);
    if (pst) {
        lq_passes_report_free(&a.prep);
        return lq_cli_report("quantize", &err);
    }
    a.o.replacements = set;
    lq_status qst = lq_quantize_model(&a.o, &r, &err);
    lq_tensor_set_free(set);
    if (qst) {
        lq_passes_report_free(&a.prep);
        return lq_cli_report("quantize", &err);
    }
    if (!a.quiet) print_summary(&r, a.o.out_path);
    rc = a.json ? write_json(&a, &r, argc, argv) : LQ_EXIT_OK;
    lq_quantize_report_free(&r);
    lq_passes_report_free(&a.prep);
    return rc;
}
