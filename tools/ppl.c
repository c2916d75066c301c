/* ppl.c — `lq ppl`: perplexity and KL divergence the way llama-perplexity computes them.
 * The evaluation is the library's (libquant/eval.c, "Evaluation" in libquant.h); this file
 * parses the command line, prints llama-perplexity's running and final output and writes the
 * JSON report. --kld-base saves the scored log-probabilities in llama.cpp's logits-file
 * format; --kld compares against such a file (its tokens are used). */
#include "cli.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *ppl_usage =
    "usage: lq ppl MODEL -f TEXT [options]\n"
    "       lq ppl MODEL --kld BASE.kld [options]\n\n"
    "Perplexity over the second half of each chunk of n_ctx tokens (llama-perplexity's method).\n\n"
    "Options:\n"
    "  -f FILE           text to score (required unless --kld)\n"
    "  -c N              context (chunk) size, default 512 (--kld: taken from the file)\n"
    "  -b N              tokens per evaluation batch, default = the context size\n"
    "  --chunks N        score only the first N chunks\n"
    "  --act-int8 per-token|per-tensor\n"
    "                    W8A8 evaluation: round every linear input but the output head to int8\n"
    "                    (scale max|x|/127 per token, or per tensor and batch); with Q8_0\n"
    "                    weights this is int8 x int8 arithmetic\n"
    "  -t N              threads (default: all cores)\n"
    "  --json FILE       write a JSON report\n"
    "  --kld-base FILE   also save the scored log-probabilities (llama.cpp's logits file)\n"
    "  --kld FILE        compare with a saved base: KL divergence, top-token agreement, dp\n"
    LQ_CLI_DEVICE_HELP "\n" LQ_EXIT_CODES_HELP;

typedef struct ppl_args {
    const char *model, *text, *json, *kld_base, *kld, *device;
    int n_ctx, n_batch, n_chunks, n_threads;
    bool ctx_given;
    lq_act_int8 act_int8;
} ppl_args;

static int parse_int(const char *opt, const char *v, int min, int *out) {
    char *end = NULL;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || *end || x < min || x > 1 << 30) return lq_cli_usage_error("ppl", "%s needs an integer >= %d", opt, min);
    *out = (int)x;
    return 0;
}

static int parse_args(int argc, char **argv, ppl_args *a) {
    memset(a, 0, sizeof *a);
    a->n_ctx = 512;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int rc = 0;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(ppl_usage, stdout);
            exit(LQ_EXIT_OK);
        } else if (lq_cli_opt(argc, argv, &i, "-f", &v)) {
            if (!(a->text = v)) return lq_cli_usage_error("ppl", "-f needs a file");
        } else if (lq_cli_opt(argc, argv, &i, "-c", &v)) {
            rc = parse_int("-c", v, 4, &a->n_ctx);
            a->ctx_given = true;
        } else if (lq_cli_opt(argc, argv, &i, "-b", &v)) {
            rc = parse_int("-b", v, 1, &a->n_batch);
        } else if (lq_cli_opt(argc, argv, &i, "--chunks", &v)) {
            rc = parse_int("--chunks", v, 1, &a->n_chunks);
        } else if (lq_cli_opt(argc, argv, &i, "-t", &v)) {
            rc = parse_int("-t", v, 1, &a->n_threads);
        } else if (lq_cli_opt(argc, argv, &i, "--json", &v)) {
            if (!(a->json = v)) return lq_cli_usage_error("ppl", "--json needs a file");
        } else if (lq_cli_opt(argc, argv, &i, "--device", &v)) {
            if (!(a->device = v)) return lq_cli_usage_error("ppl", "--device needs auto, cpu, cuda or cuda:N");
        } else if (lq_cli_opt(argc, argv, &i, "--kld-base", &v)) {
            if (!(a->kld_base = v)) return lq_cli_usage_error("ppl", "--kld-base needs a file");
        } else if (lq_cli_opt(argc, argv, &i, "--act-int8", &v)) {
            if (v && !strcmp(v, "per-token")) a->act_int8 = LQ_ACT_INT8_PER_TOKEN;
            else if (v && !strcmp(v, "per-tensor")) a->act_int8 = LQ_ACT_INT8_PER_TENSOR;
            else return lq_cli_usage_error("ppl", "--act-int8 takes per-token or per-tensor");
        } else if (lq_cli_opt(argc, argv, &i, "--kld", &v)) {
            if (!(a->kld = v)) return lq_cli_usage_error("ppl", "--kld needs a file");
        } else if (argv[i][0] == '-') {
            return lq_cli_usage_error("ppl", "unknown option '%s'", argv[i]);
        } else if (!a->model) {
            a->model = argv[i];
        } else {
            return lq_cli_usage_error("ppl", "unexpected argument '%s'", argv[i]);
        }
        if (rc) return rc;
    }
    if (!a->model) return lq_cli_usage_error("ppl", "no model given");
    if (a->kld && a->kld_base) return lq_cli_usage_error("ppl", "--kld and --kld-base exclude each other");
    if (!a->kld && !a->text) return lq_cli_usage_error("ppl", "no text given (-f FILE)");
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Output: llama-perplexity's lines
 * ------------------------------------------------------------------------------------- */

static const double kld_pcts[] = {0.999, 0.99, 0.5, 0.1, 0.05, 0.01};
static const char *kld_pct_names[] = {"99.9%", "99.0%", "Median", "10.0%", " 5.0%", " 1.0%"};
static const double dp_pcts[] = {0.999, 0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001};
static const char *dp_pct_names[] = {"99.9%", "99.0%", "95.0%", "90.0%", "75.0%", "Median",
                                     "25.0%", "10.0%", " 5.0%", " 1.0%", " 0.1%"};
#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

static void print_kld_header(void) {
    printf("chunk             PPL          ln(PPL(Q)/PPL(base))          KL Divergence"
           "              Δp RMS            Same top p\n");
}

/* Running figures after each chunk, and an ETA on a terminal. */
static void print_progress(void *ctx, int chunk, int n_chunk, const lq_ppl_result *r) {
    const bool *to_tty = (const bool *)ctx;
    if (r->has_kld) {
        const lq_kld_stats *k = &r->kld;
        printf("%4d    %10.4f ± %10.4f  %10.5f ± %10.5f  %10.5f ± %10.5f  %6.3f ± %6.3f %%  %6.3f ± %6.3f %%\n",
               chunk, k->ppl.mean, k->ppl.unc, k->log_ratio.mean, k->log_ratio.unc, k->kld.mean, k->kld.unc,
               100 * k->p_diff_rms.mean, 100 * k->p_diff_rms.unc, 100 * k->same_top.mean, 100 * k->same_top.unc);
    } else {
        printf("[%d]%.4f,", chunk, r->ppl);
    }
    fflush(stdout);
    if (*to_tty)
        fprintf(stderr, "\r%d/%d chunks, %.1f s, ETA %.1f s   ", chunk, n_chunk, r->seconds,
                r->seconds / chunk * (n_chunk - chunk));
}

static void print_kld_final(const lq_ppl_result *r) {
    const lq_kld_stats *k = &r->kld;
    int64_t n = r->n_scored;
    printf("\n====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", k->ppl.mean, k->ppl.unc);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", k->ppl_base.mean, k->ppl_base.unc);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * k->cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", k->log_ratio.mean, k->log_ratio.unc);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", k->ratio.mean, k->ratio.unc);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", k->diff.mean, k->diff.unc);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", k->kld.mean, k->kld.unc);
    printf("Maximum KLD: %10.6f\n", (double)k->kld_sorted[n - 1]);
    for (int i = 0; i < N_OF(kld_pcts); i++)
        printf("%-7s KLD: %10.6f\n", kld_pct_names[i], lq_ppl_percentile(k->kld_sorted, n, kld_pcts[i]));
    printf("Minimum KLD: %10.6f\n", (double)k->kld_sorted[0]);
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * k->p_diff.mean, 100 * k->p_diff.unc);
    printf("Maximum Δp: %6.3f%%\n", 100.0 * k->p_diff_sorted[n - 1]);
    for (int i = 0; i < N_OF(dp_pcts); i++)
        printf("%-7s Δp: %6.3f%%\n", dp_pct_names[i], 100 * lq_ppl_percentile(k->p_diff_sorted, n, dp_pcts[i]));
    printf("Minimum Δp: %6.3f%%\n", 100.0 * k->p_diff_sorted[0]);
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * k->p_diff_rms.mean, 100 * k->p_diff_rms.unc);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100 * k->same_top.mean, 100 * k->same_top.unc);
}

static void print_final(const lq_ppl_result *r) {
    printf("\n");
    if (r->has_kld) {
        print_kld_final(r);
    } else if (r->nll_variance > 0) {
        printf("Final estimate: PPL = %.4f +/- %.5f\n", r->ppl, r->ppl_unc);
    } else {
        printf("Unexpected negative standard deviation of log(prob)\n");
    }
}

/* ---------------------------------------------------------------------------------------
 * JSON report
 * ------------------------------------------------------------------------------------- */

static json_t *json_mean_unc(lq_mean_unc m) {
    return json_pack("{s:f,s:f}", "mean", m.mean, "uncertainty", m.unc);
}

static json_t *json_percentiles(const float *sorted, int64_t n, const double *fractions, int n_fractions) {
    json_t *o = json_object();
    json_object_set_new(o, "max", json_real(sorted[n - 1]));
    for (int i = 0; i < n_fractions; i++) {
        char key[16];
        snprintf(key, sizeof key, "p%.1f", 100 * fractions[i]);
        json_object_set_new(o, key, json_real(lq_ppl_percentile(sorted, n, fractions[i])));
    }
    json_object_set_new(o, "min", json_real(sorted[0]));
    return o;
}

static json_t *json_kld(const lq_ppl_result *r) {
    const lq_kld_stats *k = &r->kld;
    json_t *kj = json_object();
    json_object_set_new(kj, "mean_ppl_q", json_mean_unc(k->ppl));
    json_object_set_new(kj, "mean_ppl_base", json_mean_unc(k->ppl_base));
    json_object_set_new(kj, "cor_ln_ppl", json_real(k->cor));
    json_object_set_new(kj, "mean_ln_ppl_ratio", json_mean_unc(k->log_ratio));
    json_object_set_new(kj, "mean_ppl_ratio", json_mean_unc(k->ratio));
    json_object_set_new(kj, "mean_ppl_diff", json_mean_unc(k->diff));
    json_object_set_new(kj, "kld", json_mean_unc(k->kld));
    json_object_set_new(kj, "kld_percentiles", json_percentiles(k->kld_sorted, r->n_scored, kld_pcts, N_OF(kld_pcts)));
    json_object_set_new(kj, "delta_p", json_mean_unc(k->p_diff));
    json_object_set_new(kj, "delta_p_percentiles",
                        json_percentiles(k->p_diff_sorted, r->n_scored, dp_pcts, N_OF(dp_pcts)));
    json_object_set_new(kj, "delta_p_rms", json_mean_unc(k->p_diff_rms));
    json_object_set_new(kj, "same_top_p", json_mean_unc(k->same_top));
    return kj;
}

static lq_status write_json(const ppl_args *a, const lq_ppl_result *r, lq_error *err) {
    json_t *root = json_object();
    json_object_set_new(root, "model", json_string(a->model));
    if (a->text) json_object_set_new(root, "text", json_string(a->text));
    if (a->kld) json_object_set_new(root, "kld_base", json_string(a->kld));
    json_object_set_new(root, "n_ctx", json_integer(r->n_ctx));
    json_object_set_new(root, "n_chunks", json_integer(r->n_chunk));
    json_object_set_new(root, "n_tokens_text", json_integer(r->n_tokens));
    json_object_set_new(root, "n_scored", json_integer(r->n_scored));
    json_object_set_new(root, "ppl", json_real(r->ppl));
    json_object_set_new(root, "ppl_stderr", json_real(r->ppl * r->log_ppl.unc));
    json_object_set_new(root, "mean_nll", json_real(r->mean_nll));
    json_object_set_new(root, "seconds", json_real(r->seconds));
    json_object_set_new(root, "threads", json_integer(a->n_threads));
    json_object_set_new(root, "libquant", json_string(lq_version()));
    if (r->has_kld) json_object_set_new(root, "kl_divergence", json_kld(r));
    int rc = json_dump_file(root, a->json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc ? lq_cli_fail(err, LQ_ERR_IO, "%s: cannot write", a->json) : LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------------------------- */

typedef struct ppl_session {
    lq_model *model;
    lq_kld_base base;
    lq_ppl_tokens tokens;
    lq_runtime *rt;
    lq_device_ctx *device; /* --device (NULL: CPU) */
    lq_ppl_opts opts;
    lq_ppl_result result;
} ppl_session;

/* Tokens (from the text or the base file) and the chunking they allow. */
static lq_status prepare(const ppl_args *a, ppl_session *s, int *n_chunk, lq_error *err) {
    lq_status st = lq_model_open(a->model, &s->model, err);
    if (st) return st;
    s->opts.n_ctx = a->n_ctx;
    s->opts.n_chunks = a->n_chunks;
    s->opts.kld_base_out = a->kld_base;
    if (a->kld) {
        if ((st = lq_kld_base_open(a->kld, &s->base, err))) return st;
        if ((st = lq_ppl_tokens_from_kld(s->model, &s->base, &s->tokens, err))) return st;
        if (a->ctx_given && a->n_ctx != s->base.n_ctx)
            return lq_cli_fail(err, LQ_ERR_INVALID, "%s: the file holds chunks of %d tokens, not %d (-c)", a->kld,
                               s->base.n_ctx, a->n_ctx);
        s->opts.n_ctx = s->base.n_ctx;
        s->opts.kld_base = &s->base;
    } else if ((st = lq_ppl_tokens_from_text(s->model, a->text, &s->tokens, err))) {
        return st;
    }
    return lq_ppl_n_chunk(&s->tokens, &s->opts, n_chunk, err);
}

static lq_status run(const ppl_args *a, ppl_session *s, lq_error *err) {
    int n_chunk = 0;
    lq_status st = prepare(a, s, &n_chunk, err);
    if (st) return st;
    int n_ctx = s->opts.n_ctx;
    lq_runtime_opts o = {a->n_threads, n_ctx, a->n_batch > 0 ? a->n_batch : n_ctx, false, a->act_int8};
    if ((st = lq_runtime_create(s->model, &o, &s->rt, err))) return st;
    lq_runtime_set_device(s->rt, s->device);
    bool to_tty = isatty(fileno(stderr));
    if (to_tty)
        fprintf(stderr, "lq ppl: %d chunks of %d tokens, %lld tokens in the text\n", n_chunk, n_ctx,
                (long long)s->tokens.n_tokens);
    if (a->kld) print_kld_header();
    st = lq_ppl_run(s->model, s->rt, &s->tokens, &s->opts, print_progress, &to_tty, &s->result, err);
    if (to_tty && !st) fputc('\n', stderr);
    if (st) return st;
    print_final(&s->result);
    return a->json ? write_json(a, &s->result, err) : LQ_OK;
}

int lq_cmd_ppl(int argc, char **argv) {
    ppl_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    lq_cli_install_signal_handlers();
    lq_error err;
    lq_error_clear(&err);
    ppl_session s;
    memset(&s, 0, sizeof s);
    lq_device dev;
    if ((rc = lq_cli_device("ppl", a.device, false, &dev, &s.device))) return rc;
    lq_status st = run(&a, &s, &err);
    lq_ppl_result_free(&s.result);
    lq_runtime_free(s.rt);
    lq_device_close(s.device);
    lq_ppl_tokens_free(&s.tokens);
    lq_kld_base_close(&s.base);
    lq_model_close(s.model);
    return st ? lq_cli_report("ppl", &err) : LQ_EXIT_OK;
}
