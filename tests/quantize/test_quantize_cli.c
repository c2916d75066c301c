/* test_quantize_cli.c — `lq quantize` as a command: exit codes and one-line errors, the JSON
 * report, and --imatrix with statistics from `lq calibrate` (keys, importance use, the ffn_down
 * rule that depends on it, refusal of statistics of another model). */
#include "qtest.h"

#include <jansson.h>
#include <sys/wait.h>

static const char *lq_bin(void) {
    const char *b = getenv("LQ_BIN");
    if (!b) TEST_SKIP("LQ_BIN is not set (run through meson test)");
    return b;
}

static int run(const char *cmd) {
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Runs a command with stderr captured in dir/err.txt; returns its exit code. */
static int run_err(const char *dir, const char *args, char *msg, size_t size) {
    char cmd[16384], path[4200];
    snprintf(path, sizeof path, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "'%s' quantize %s > /dev/null 2> '%s'", lq_bin(), args, path);
    int rc = run(cmd);
    size_t n = 0;
    char *text = test_read_file(path, &n);
    snprintf(msg, size, "%.*s", text ? (int)n : 0, text ? text : "");
    free(text);
    return rc;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void test_errors(const char *dir, const char *model) {
    char msg[8192], args[8192];
    snprintf(args, sizeof args, "'%s' -o '%s/x.gguf' --type Q7_K", model, dir);
    CHECK(run_err(dir, args, msg, sizeof msg) == 2 && strstr(msg, "Q7_K") && count_lines(msg) == 1);
    snprintf(args, sizeof args, "'%s/absent' -o '%s/x.gguf' --type Q4_0", dir, dir);
    CHECK(run_err(dir, args, msg, sizeof msg) == 5 && strstr(msg, "absent") && count_lines(msg) == 1);
    snprintf(args, sizeof args, "'%s' -o '%s/x.gguf'", model, dir);
    CHECK(run_err(dir, args, msg, sizeof msg) == 2);
    snprintf(args, sizeof args, "'%s' -o '%s/x.gguf' --type Q4_0 --tensor-type '(=q8_0'", model, dir);
    CHECK(run_err(dir, args, msg, sizeof msg) == 2 && count_lines(msg) == 1);
    snprintf(args, sizeof args, "'%s' -o '%s/no/such/dir/x.gguf' --type Q4_0", model, dir);
    CHECK(run_err(dir, args, msg, sizeof msg) == 5 && count_lines(msg) == 1);
}

/* The JSON report: inputs with hashes, per-tensor types and errors, totals that add up. */
static void test_json(const char *dir, const char *model) {
    char msg[8192], args[8192], json[4200];
    snprintf(json, sizeof json, "%s/report.json", dir);
    snprintf(args, sizeof args, "'%s' -o '%s/r.gguf' --type Q4_K_M -t 2 --json '%s'", model, dir, json);
    CHECK(run_err(dir, args, msg, sizeof msg) == 0);
    json_error_t je;
    json_t *r = json_load_file(json, 0, &je);
    CHECKF(r != NULL, "%s", je.text);
    if (!r) return;
    CHECK(!strcmp(json_string_value(json_object_get(r, "version")), lq_version()));
    CHECK(!strcmp(json_string_value(json_object_get(r, "preset")), "Q4_K_M"));
    json_t *inputs = json_object_get(r, "inputs");
    CHECK(json_array_size(inputs) >= 3); /* config.json, model.safetensors, tokenizer files */
    size_t i;
    json_t *in;
    json_array_foreach(inputs, i, in) CHECK(json_string_length(json_object_get(in, "lqh64")) == 16);
    json_t *tensors = json_object_get(r, "tensors"), *t;
    int64_t bytes = 0, q6 = 0;
    int measured = 0;
    json_array_foreach(tensors, i, t) {
        bytes += json_integer_value(json_object_get(t, "bytes"));
        q6 += !strcmp(json_string_value(json_object_get(t, "type")), "q6_K");
        double rel = json_number_value(json_object_get(t, "rel_rmse"));
        const char *type = json_string_value(json_object_get(t, "type"));
        /* 4-6 bit grids: relative RMS error a few percent; F32 copies: exactly 0 */
        if (!strcmp(type, "f32")) CHECK(rel == 0);
        else CHECKF(rel > 0.005 && rel < 0.15, "%s: rel_rmse %g", json_string_value(json_object_get(t, "name")), rel);
        measured++;
    }
    CHECK(measured == 39 && q6 == 5);
    CHECK(bytes == json_integer_value(json_object_get(r, "tensor_bytes")));
    /* the output's hash in the report is the library's hash of the file; directories are refused */
    uint64_t h = 0, n = 0;
    lq_error err;
    char out[4300], hex[17];
    snprintf(out, sizeof out, "%s/r.gguf", dir);
    CHECK_OK(lq_file_hash64(out, &h, &n, &err), &err);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    json_t *o = json_object_get(r, "output");
    CHECK(!strcmp(json_string_value(json_object_get(o, "lqh64")), hex));
    CHECK((uint64_t)json_integer_value(json_object_get(o, "bytes")) == n);
    CHECK(lq_file_hash64(model, &h, &n, &err) == LQ_ERR_IO);
    json_decref(r);
}

/* The report of a calibrated run without what legitimately changes between runs (timings, the
 * command line with its thread count, the output path), as canonical bytes. */
static char *stable_report(json_t *r) {
    json_t *c = json_deep_copy(r);
    json_object_del(c, "seconds");
    json_object_del(c, "command");
    json_object_set_new(c, "output", json_string(json_string_value(json_object_get(json_object_get(r, "output"), "lqh64"))));
    json_object_del(json_object_get(c, "passes"), "timing");
    char *s = json_dumps(c, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(c);
    return s;
}

/* lq quantize --method gptq --json: every linear of every layer has its output error on the
 * calibration inputs before (plain quantizer) and after GPTQ, finite, >= 0, and GPTQ lowers it
 * (it minimises exactly that in-sample error); the report is the same at 1 and 2 threads. */
static void test_gptq_json(const char *dir, const char *model) {
    char args[8192], msg[8192], json[2][4200];
    json_t *r[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        snprintf(json[k], sizeof json[k], "%s/gptq%d.json", dir, k);
        snprintf(args, sizeof args, "'%s' -o '%s/g%d.gguf' --type Q4_K_M --method gptq --calib '%s' --calib-chunks 4 "
                 "--chunk-size 128 -t %d --json '%s'", model, dir, k, test_shared_path("text/tinystories-train-sample.txt"),
                 k + 1, json[k]);
        CHECKF(run_err(dir, args, msg, sizeof msg) == 0, "%s", msg);
        json_error_t je;
        r[k] = json_load_file(json[k], 0, &je);
        CHECKF(r[k] != NULL, "%s: %s", json[k], je.text);
        if (!r[k]) return;
    }
    /* progress: one line per layer with the errors */
    CHECKF(strstr(msg, "layer 4/4") && strstr(msg, "out err plain -> pass"), "%s", msg);
    json_t *tensors = json_object_get(json_object_get(r[0], "passes"), "tensors"), *t;
    size_t i, n_linear = 0;
    json_array_foreach(tensors, i, t) {
        const char *name = json_string_value(json_object_get(t, "name"));
        double before = json_number_value(json_object_get(t, "out_err_before"));
        double after = json_number_value(json_object_get(t, "out_err_after"));
        CHECKF(json_is_real(json_object_get(t, "out_err_before")) && json_is_real(json_object_get(t, "out_err_after")),
               "%s: no output error", name);
        CHECKF(isfinite(before) && isfinite(after) && before >= 0 && after >= 0, "%s: %g %g", name, before, after);
        CHECKF(after < before, "%s: GPTQ %g not below the plain quantizer's %g", name, after, before);
        CHECK(json_object_get(t, "gptq") != NULL);
        n_linear++;
    }
    CHECKF(n_linear == 7 * 4, "%zu linears in the report", n_linear);
    json_t *timing = json_object_get(json_object_get(r[0], "passes"), "timing");
    CHECK(json_array_size(json_object_get(timing, "layer_seconds")) == 4);
    CHECK(json_number_value(json_object_get(json_object_get(timing, "gptq_sweep"), "gflop")) > 0);
    char *a = stable_report(r[0]), *b = stable_report(r[1]);
    CHECKF(a && b && !strcmp(a, b), "the report differs between 1 and 2 threads");
    free(a), free(b);
    json_decref(r[0]), json_decref(r[1]);
}

static bool has_key(const char *path, const char *k) {
    lq_gguf *g = NULL;
    lq_error err;
    if (lq_gguf_open(path, &g, &err) != LQ_OK) return false;
    bool yes = lq_gguf_find_key(g, k) >= 0;
    lq_gguf_close(g);
    return yes;
}

static void test_imatrix(const char *dir, const char *model) {
    char cmd[16384], stats[4200], msg[8192], args[8192];
    snprintf(stats, sizeof stats, "%s/stats.gguf", dir);
    snprintf(cmd, sizeof cmd, "'%s' calibrate '%s' -f '%s' -o '%s' -c 128 --chunks 4 -t 2 > /dev/null 2>&1", lq_bin(),
             model, test_shared_path("text/tinystories-train-sample.txt"), stats);
    if (run(cmd) != 0) {
        CHECKF(0, "lq calibrate failed");
        return;
    }
    lq_quantize_opts o;
    lq_quantize_report with, without;
    memset(&o, 0, sizeof o);
    char out[4200];
    snprintf(out, sizeof out, "%s/im.gguf", dir);
    o.model_path = model, o.out_path = out, o.plan.preset = "Q4_0", o.n_threads = 2;
    o.plan.output_type = o.plan.token_embd_type = -1;
    lq_error err;
    CHECK_OK(lq_quantize_model(&o, &without, &err), &err);
    CHECK(!has_key(out, "quantize.imatrix.file"));
    o.imatrix_path = stats;
    CHECK_OK(lq_quantize_model(&o, &with, &err), &err);
    CHECK(has_key(out, "quantize.imatrix.file") && has_key(out, "quantize.imatrix.entries_count"));
    if (with.tensors && without.tensors) {
        /* every layer linear is covered by the statistics; embedding/output are not */
        CHECK(with.n_imatrix_used == 7 * 4 && without.n_imatrix_used == 0);
        /* Q4_0 with an imatrix: ffn_down Q4_1 for layers < n/8 — none of 4 layers; the rest equal */
        for (int64_t i = 0; i < with.n_tensors; i++) CHECK(with.tensors[i].type == without.tensors[i].type);
    }
    lq_quantize_report_free(&with);
    lq_quantize_report_free(&without);
    /* statistics of another model: refused, naming the statistics file and the tensor */
    char other[4200];
    snprintf(other, sizeof other, "%s/other.gguf", dir);
    snprintf(cmd, sizeof cmd, "'%s' calibrate '%s' -f '%s' -o '%s' -c 64 --chunks 2 -t 2 > /dev/null 2>&1", lq_bin(),
             test_shared_path("models/tinystories-656k"), test_shared_path("text/tinystories-train-sample.txt"), other);
    CHECK(run(cmd) == 0);
    snprintf(args, sizeof args, "'%s' -o '%s/bad.gguf' --type Q4_K_M --imatrix '%s'", model, dir, other);
    CHECK(run_err(dir, args, msg, sizeof msg) == 3 && strstr(msg, "other.gguf") && strstr(msg, "blk.0.") &&
          count_lines(msg) == 1);
}

int main(void) {
    const char *model = test_shared_path("models/tinystories-4m");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", test_tmpdir("quantize-cli"));
    test_errors(dir, model);
    test_json(dir, model);
    test_gptq_json(dir, model);
    test_imatrix(dir, model);
    qt_rmdir(dir);
    TEST_DONE();
}
