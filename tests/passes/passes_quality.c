/* passes_quality: quality table of the calibrated passes against RTN and imatrix-RTN (not a
 * unit test: minutes on the real models; scripts/passes_quality.sh runs it).
 *
 *   passes_quality MODEL CALIB_TEXT EVAL_TEXT N_SEQ N_TOK N_EVAL_CHUNKS PRESET... [-- METHOD...]
 *
 * For each preset: KL divergence (mean over every evaluated token, natural log) and perplexity
 * of the quantized model against the unquantized MODEL on EVAL_TEXT (chunks of 512 tokens,
 * fresh context each), for the methods rtn, imatrix (RTN with an importance matrix from the
 * same calibration tokens), gptq, awq, awq+gptq. Calibration: the first N_SEQ·N_TOK-token
 * chunks of CALIB_TEXT (BOS first in each). Prints one line per (preset, method) and
 * "WIN"/"LOSS" verdicts of gptq vs rtn/imatrix and awq+gptq vs gptq. */
#include "test.h"

#include <time.h>

/* test.h's counters are unused here */
static void unused_counters(void) { (void)test_checks, (void)test_failures; }

#define EVAL_CTX 512

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what, const lq_error *err) {
    fprintf(stderr, "passes_quality: %s: %s\n", what, err->msg);
    exit(1);
}

static int32_t *tokenize_file(const lq_model *m, const char *path, int64_t *n) {
    lq_error err;
    lq_tokenizer *tok = NULL;
    lq_status st = lq_model_gguf(m) ? lq_tokenizer_from_gguf(lq_model_gguf(m), &tok, &err)
                                    : lq_tokenizer_from_json(lq_model_tokenizer_json(m), &tok, &err);
    if (st) die("tokenizer", &err);
    size_t len;
    char *text = test_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "passes_quality: cannot read %s\n", path);
        exit(1);
    }
    int32_t *ids;
    if (lq_tokenize(tok, text, len, false, false, &ids, n, &err)) die(path, &err);
    free(text);
    lq_tokenizer_free(tok);
    return ids;
}

/* n chunks of len tokens from ids, BOS first */
static int32_t *chunks_of(const int32_t *ids, int64_t n_ids, int64_t n, int64_t len, int32_t bos) {
    if ((n * (len - 1)) > n_ids) {
        fprintf(stderr, "passes_quality: text too short for %lld x %lld tokens\n", (long long)n, (long long)len);
        exit(1);
    }
    int32_t *out = malloc(sizeof(int32_t) * n * len);
    for (int64_t c = 0; c < n; c++) {
        out[c * len] = bos;
        memcpy(out + c * len + 1, ids + c * (len - 1), sizeof(int32_t) * (len - 1));
    }
    return out;
}

typedef struct evaluator {
    const int32_t *tokens;
    int64_t n_chunks;
    float *ref; /* n_chunks × EVAL_CTX × n_vocab log-probs of the reference model */
    int64_t n_vocab;
    double *chunk_kld; /* n_chunks: mean KLD of each chunk of the last evaluation */
} evaluator;

static void log_softmax(float *x, int64_t n) {
    double m = x[0], s = 0;
    for (int64_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int64_t i = 0; i < n; i++) s += exp(x[i] - m);
    double l = m + log(s);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(x[i] - l);
}

/* Log-probs of every chunk; kld/ppl against ev->ref when ev->ref is set. */
static void evaluate(const char *path, evaluator *ev, float *out, double *kld, double *ppl) {
    lq_error err;
    lq_model *m;
    lq_runtime *rt;
    if (lq_model_open(path, &m, &err)) die(path, &err);
    lq_runtime_opts ro = {0, EVAL_CTX, EVAL_CTX, false, LQ_ACT_INT8_NONE};
    if (lq_runtime_create(m, &ro, &rt, &err)) die(path, &err);
    int64_t v = lq_runtime_n_vocab(rt);
    ev->n_vocab = v;
    float *lg = malloc(sizeof(float) * EVAL_CTX * v);
    double sum_kld = 0, sum_nll = 0;
    int64_t n = 0;
    for (int64_t c = 0; c < ev->n_chunks; c++) {
        double chunk_start = sum_kld;
        lq_runtime_reset(rt);
        const int32_t *t = ev->tokens + c * EVAL_CTX;
        if (lq_runtime_eval(rt, t, EVAL_CTX, lg, &err)) die(path, &err);
        for (int64_t i = 0; i < EVAL_CTX; i++) {
            float *row = lg + i * v;
            log_softmax(row, v);
            if (out) memcpy(out + (c * EVAL_CTX + i) * v, row, sizeof(float) * v);
            if (i + 1 < EVAL_CTX) sum_nll -= row[t[i + 1]];
            if (ev->ref) {
                const float *r = ev->ref + (c * EVAL_CTX + i) * v;
                double k = 0;
                for (int64_t j = 0; j < v; j++) k += exp(r[j]) * (r[j] - row[j]);
                sum_kld += k;
            }
            n++;
        }
        ev->chunk_kld[c] = (sum_kld - chunk_start) / EVAL_CTX;
    }
    *kld = sum_kld / n;
    *ppl = exp(sum_nll / (ev->n_chunks * (EVAL_CTX - 1)));
    free(lg);
    lq_runtime_free(rt);
    lq_model_close(m);
}

/* imatrix of the calibration chunks (llama-imatrix's way: each chunk in a fresh context). */
static void write_imatrix(const char *model_path, const int32_t *calib, int64_t n_seq, int64_t n_tok,
                          const char *out) {
    lq_error err;
    lq_model *m;
    lq_runtime *rt;
    lq_stats_acc *acc;
    lq_stats *st;
    if (lq_model_open(model_path, &m, &err)) die(model_path, &err);
    lq_runtime_opts ro = {0, (int)n_tok, (int)n_tok, true, LQ_ACT_INT8_NONE};
    if (lq_runtime_create(m, &ro, &rt, &err)) die(model_path, &err);
    if (lq_stats_acc_new(0, false, &acc, &err)) die("imatrix", &err);
    lq_runtime_set_hook(rt, lq_stats_acc_hook, acc);
    for (int64_t s = 0; s < n_seq; s++) {
        lq_runtime_reset(rt);
        if (lq_runtime_eval(rt, calib + s * n_tok, n_tok, NULL, &err)) die("imatrix", &err);
    }
    if (lq_stats_acc_status(acc, &err)) die("imatrix", &err);
    lq_stats_meta meta;
    memset(&meta, 0, sizeof meta);
    meta.chunk_count = n_seq;
    meta.chunk_size = n_tok;
    if (lq_stats_from_acc(acc, &meta, &st, &err) || lq_stats_write(st, out, &err)) die("imatrix", &err);
    lq_stats_free(st);
    lq_stats_acc_free(acc);
    lq_runtime_free(rt);
    lq_model_close(m);
}

/* "NAME" or "NAME:pure" (no mixing rules: every matrix in the base type) */
static void plan_opts_of(const char *spec, lq_plan_opts *pl, char *buf, size_t n) {
    memset(pl, 0, sizeof *pl);
    snprintf(buf, n, "%s", spec);
    char *colon = strchr(buf, ':');
    if (colon) {
        pl->pure = !strcmp(colon, ":pure");
        *colon = 0;
    }
    pl->preset = buf;
    pl->output_type = pl->token_embd_type = -1;
}

static void quantize(const char *model_path, const char *preset, const char *imatrix,
                     const lq_tensor_set *set, const char *out) {
    lq_quantize_opts qo;
    memset(&qo, 0, sizeof qo);
    char buf[64];
    qo.model_path = model_path;
    qo.out_path = out;
    plan_opts_of(preset, &qo.plan, buf, sizeof buf);
    qo.imatrix_path = imatrix;
    qo.replacements = set;
    lq_error err;
    if (lq_quantize_model(&qo, NULL, &err)) die(out, &err);
}

/* In-sample output errors of the pass (lq_pass_tensor.err_*): geometric mean of after/before over
 * the quantized linears, and how many got worse than the plain quantizer; per-tensor lines with
 * LQ_QUALITY_TENSORS=1. */
static void print_errors(const char *preset, const char *method, const lq_passes_report *rep) {
    double log_ratio = 0;
    int n = 0, worse = 0;
    bool each = getenv("LQ_QUALITY_TENSORS") && *getenv("LQ_QUALITY_TENSORS") == '1';
    for (int64_t i = 0; i < rep->n_tensors; i++) {
        const lq_pass_tensor *t = &rep->tensors[i];
        if (!(t->err_before > 0 && t->err_after >= 0)) continue;
        log_ratio += log(fmax(t->err_after, 1e-30) / t->err_before);
        n++;
        worse += t->err_after > t->err_before;
        if (each)
            printf("    %-26s before %.4e after %.4e (x%.3f) awq alpha %.2f clip %.3f\n", t->name, t->err_before,
                   t->err_after, t->err_after / t->err_before, t->awq_alpha, t->clip_ratio);
    }
    if (n)
        printf("%-7s %-9s in-sample output error after/before: geometric mean %.3f over %d linears, %d worse\n",
               preset, method, exp(log_ratio / n), n, worse);
}

static lq_tensor_set *run_pass(const char *model_path, const char *preset, lq_pass_method method,
                               const int32_t *calib, int64_t n_seq, int64_t n_tok, lq_passes_report *rep) {
    lq_error err;
    lq_model *m;
    if (lq_model_open(model_path, &m, &err)) die(model_path, &err);
    lq_plan plan;
    lq_plan_opts pl;
    char buf[64];
    plan_opts_of(preset, &pl, buf, sizeof buf);
    if (lq_plan_build(m, &pl, &plan, &err)) die(preset, &err);
    lq_passes_opts po;
    lq_passes_opts_default(&po);
    po.method = method;
    /* investigation knobs: LQ_AWQ_NO_CLIP=1 (scale search only), LQ_AWQ_GRID=1 (alpha 0 only:
     * clip search only) */
    const char *env = getenv("LQ_AWQ_NO_CLIP");
    if (env && *env == '1') po.awq_no_clip = true;
    if ((env = getenv("LQ_AWQ_GRID")) && atoi(env) > 0) po.awq_grid = atoi(env);
    lq_tensor_set *set = lq_tensor_set_new();
    if (lq_passes_run(m, &plan, calib, n_seq, n_tok, &po, set, rep, &err)) die("passes", &err);
    lq_plan_free(&plan);
    lq_model_close(m);
    return set;
}

int main(int argc, char **argv) {
    (void)unused_counters;
    if (argc < 8) {
        fprintf(stderr, "usage: %s MODEL CALIB_TEXT EVAL_TEXT N_SEQ N_TOK N_EVAL_CHUNKS PRESET... [-- METHOD...]\n", argv[0]);
        return 2;
    }
    const char *model = argv[1];
    int64_t n_seq = atoll(argv[4]), n_tok = atoll(argv[5]), n_eval = atoll(argv[6]);
    const char *presets[32], *methods[8] = {"rtn", "imatrix", "gptq", "awq", "awq+gptq"};
    int n_presets = 0, n_methods = 5;
    int i = 7;
    for (; i < argc && strcmp(argv[i], "--") && n_presets < 32; i++) presets[n_presets++] = argv[i];
    if (i < argc && !strcmp(argv[i], "--")) {
        n_methods = 0;
        for (i++; i < argc && n_methods < 8; i++) methods[n_methods++] = argv[i];
    }
    lq_error err;
    lq_model *m;
    if (lq_model_open(model, &m, &err)) die(model, &err);
    int32_t bos = (int32_t)lq_model_hparams(m)->bos_token_id;
    if (bos < 0) bos = 1;
    int64_t n_c, n_e;
    int32_t *calib_ids = tokenize_file(m, argv[2], &n_c), *eval_ids = tokenize_file(m, argv[3], &n_e);
    lq_model_close(m);
    int32_t *calib = chunks_of(calib_ids, n_c, n_seq, n_tok, bos);
    int32_t *eval_tok = chunks_of(eval_ids, n_e, n_eval, EVAL_CTX, bos);

    evaluator ev = {eval_tok, n_eval, NULL, 0, calloc(n_eval, sizeof(double))};
    double kld, ppl_ref;
    evaluate(model, &ev, NULL, &kld, &ppl_ref); /* learns n_vocab */
    ev.ref = malloc(sizeof(float) * n_eval * EVAL_CTX * ev.n_vocab);
    evaluate(model, &ev, ev.ref, &kld, &ppl_ref);
    printf("model %s: reference PPL %.4f over %lld x %d tokens; calibration %lld x %lld tokens\n", model,
           ppl_ref, (long long)n_eval, EVAL_CTX, (long long)n_seq, (long long)n_tok);
    char dir[4096], imx[4200], out[4200];
    snprintf(dir, sizeof dir, "%s", test_tmpdir("passes-quality"));
    snprintf(imx, sizeof imx, "%s/imatrix.gguf", dir);
    snprintf(out, sizeof out, "%s/q.gguf", dir);
    write_imatrix(model, calib, n_seq, n_tok, imx);
    int fails = 0;
    for (int p = 0; p < n_presets; p++) {
        double k[8] = {0};
        for (int j = 0; j < n_methods; j++) {
            double t0 = now_s(), ppl;
            lq_passes_report rep;
            memset(&rep, 0, sizeof rep);
            lq_tensor_set *set = NULL;
            int mth = lq_pass_method_from_name(methods[j]);
            if (!strcmp(methods[j], "imatrix")) quantize(model, presets[p], imx, NULL, out);
            else if (mth == LQ_PASS_RTN) quantize(model, presets[p], NULL, NULL, out);
            else {
                set = run_pass(model, presets[p], (lq_pass_method)mth, calib, n_seq, n_tok, &rep);
                quantize(model, presets[p], NULL, set, out);
            }
            double t1 = now_s();
            evaluate(out, &ev, NULL, &k[j], &ppl);
            if (getenv("LQ_QUALITY_CHUNKS") && *getenv("LQ_QUALITY_CHUNKS") == '1') {
                printf("%-7s %-9s per-chunk KLD:", presets[p], methods[j]);
                for (int64_t c = 0; c < n_eval; c++) printf(" %.5f", ev.chunk_kld[c]);
                printf("\n");
            }
            printf("%-7s %-9s KLD %.5f  PPL %.4f  (quantize %.1fs", presets[p], methods[j], k[j], ppl, t1 - t0);
            if (set)
                printf(", fallbacks %lld, damp retries %lld; forward %.1fs, hessian %.1fs, factor %.1fs, sweep %.1fs, "
                       "search %.1fs", (long long)rep.n_rtn_fallback, (long long)rep.n_damp_retry,
                       rep.forward_seconds, rep.hessian_seconds, rep.factor_seconds, rep.gptq_seconds,
                       rep.search_seconds);
            printf(")\n");
            if (set) print_errors(presets[p], methods[j], &rep);
            fflush(stdout);
            lq_tensor_set_free(set);
            lq_passes_report_free(&rep);
        }
        /* verdicts */
        int ir = -1, ii = -1, ig = -1, iag = -1;
        for (int j = 0; j < n_methods; j++) {
            if (!strcmp(methods[j], "rtn")) ir = j;
            if (!strcmp(methods[j], "imatrix")) ii = j;
            if (!strcmp(methods[j], "gptq")) ig = j;
            if (!strcmp(methods[j], "awq+gptq")) iag = j;
        }
        if (ig >= 0 && ir >= 0) { bool w = k[ig] < k[ir]; fails += !w; printf("%-7s gptq vs rtn: %s (%.3fx)\n", presets[p], w ? "WIN" : "LOSS", k[ir] / k[ig]); }
        if (ig >= 0 && ii >= 0) { bool w = k[ig] < k[ii]; fails += !w; printf("%-7s gptq vs imatrix: %s (%.3fx)\n", presets[p], w ? "WIN" : "LOSS", k[ii] / k[ig]); }
        if (ig >= 0 && iag >= 0) { bool w = k[iag] <= k[ig]; fails += !w; printf("%-7s awq+gptq vs gptq: %s (%.3fx)\n", presets[p], w ? "WIN" : "LOSS", k[ig] / k[iag]); }
    }
    remove(imx);
    remove(out);
    rmdir(dir);
    free(calib_ids), free(eval_ids), free(calib), free(eval_tok), free(ev.ref), free(ev.chunk_kld);
    printf("%d verdicts lost\n", fails);
    return fails ? 1 : 0;
}
