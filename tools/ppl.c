/* ppl.c — `lq ppl`: perplexity and KL divergence the way llama-perplexity computes them.
 *
 * The text is tokenized whole (BOS as the vocabulary asks), cut into chunks of n_ctx tokens;
 * each chunk is evaluated from an empty cache with its first token replaced by BOS (when the
 * vocabulary adds BOS), and only its second half is scored: positions n_ctx/2 .. n_ctx-2
 * predicting the next token. --kld-base saves those positions' log-probabilities in
 * llama.cpp's logits-file format; --kld compares against such a file (its tokens are used). */
#include "cli.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
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
    "  --kld FILE        compare with a saved base: KL divergence, top-token agreement, dp\n\n"
    LQ_EXIT_CODES_HELP;

typedef struct ppl_args {
    const char *model, *text, *json, *kld_base, *kld;
    int n_ctx, n_batch, n_chunks, n_threads;
    bool ctx_given;
    lq_act_int8 act_int8;
} ppl_args;

/* Running sums of llama-perplexity's statistics. */
typedef struct ppl_stats {
    double sum_nll, sum_nll2;
    int64_t count;
    /* KL-divergence mode */
    double sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2;
    double sum_p_diff, sum_p_diff2, sum_p_diff4;
    int64_t n_same_top;
    float *kld_values, *p_diff_values;
} ppl_stats;

/* A --kld base file, read whole. */
typedef struct kld_file {
    uint8_t *bytes;
    size_t size;
    uint32_t n_ctx;
    int32_t n_vocab, n_chunk;
    const int32_t *tokens;
    const uint16_t *rows;
    size_t row_u16;
} kld_file;

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
 * Inputs: tokens from a text, or from a base file
 * ------------------------------------------------------------------------------------- */

static lq_status read_whole(const char *path, uint8_t **out, size_t *size, lq_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lq_cli_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return lq_cli_fail(err, LQ_ERR_IO, "%s: not a regular file", path);
    }
    uint8_t *buf = (uint8_t *)malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return lq_cli_fail(err, LQ_ERR_NOMEM, "%s: no memory for %lld bytes", path, (long long)sb.st_size);
    }
    size_t got = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    if (got != (size_t)sb.st_size) {
        free(buf);
        return lq_cli_fail(err, LQ_ERR_IO, "%s: short read", path);
    }
    buf[got] = 0;
    *out = buf;
    *size = got;
    return LQ_OK;
}

static lq_status open_tokenizer(const lq_model *m, lq_tokenizer **tok, lq_error *err) {
    if (lq_model_gguf(m)) return lq_tokenizer_from_gguf(lq_model_gguf(m), tok, err);
    const char *json = lq_model_tokenizer_json(m);
    if (!json) return lq_cli_fail(err, LQ_ERR_FORMAT, "%s: no tokenizer.json next to the model", lq_model_path(m));
    return lq_tokenizer_from_json(json, tok, err);
}

static lq_status tokenize_text(const char *path, const lq_tokenizer *tok, int32_t **tokens,
                               int64_t *n_tokens, lq_error *err) {
    uint8_t *text = NULL;
    size_t len = 0;
    lq_status st = read_whole(path, &text, &len, err);
    if (st) return st;
    st = lq_tokenize(tok, (const char *)text, len, true, false, tokens, n_tokens, err);
    free(text);
    return st;
}

/* Base files are large (~11 GiB for Llama-2 on wikitext-2): mapped, not read. */
static lq_status read_kld_file(const char *path, kld_file *k, lq_error *err) {
    memset(k, 0, sizeof *k);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return lq_cli_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return lq_cli_fail(err, LQ_ERR_IO, "%s: not a regular file", path);
    }
    k->size = (size_t)sb.st_size;
    void *map = k->size ? mmap(NULL, k->size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) {
        k->size = 0;
        return lq_cli_fail(err, LQ_ERR_FORMAT, "%s: cannot map %lld bytes", path, (long long)sb.st_size);
    }
    k->bytes = (uint8_t *)map;
    if (k->size < 20 || memcmp(k->bytes, "_logits_", 8) != 0)
        return lq_cli_fail(err, LQ_ERR_FORMAT, "%s: not a llama.cpp logits file (magic '_logits_' missing)", path);
    memcpy(&k->n_ctx, k->bytes + 8, 4);
    memcpy(&k->n_vocab, k->bytes + 12, 4);
    memcpy(&k->n_chunk, k->bytes + 16, 4);
    if (k->n_ctx < 4 || k->n_ctx > (1u << 24) || k->n_vocab < 1 || k->n_chunk < 1)
        return lq_cli_fail(err, LQ_ERR_FORMAT, "%s: header: n_ctx %u, n_vocab %d, n_chunk %d", path,
                       (unsigned)k->n_ctx, (int)k->n_vocab, (int)k->n_chunk);
    uint64_t n_tok = (uint64_t)k->n_ctx * (uint64_t)k->n_chunk;
    k->row_u16 = lq_kld_row_u16(k->n_vocab);
    uint64_t rows = (uint64_t)k->n_chunk * (uint64_t)(k->n_ctx - 1 - k->n_ctx / 2);
    uint64_t need = 20 + 4 * n_tok, row_bytes;
    if (__builtin_mul_overflow(rows, (uint64_t)k->row_u16 * 2, &row_bytes) || __builtin_add_overflow(need, row_bytes, &need) ||
        need != k->size)
        return lq_cli_fail(err, LQ_ERR_FORMAT, "%s: %zu bytes, expected %llu for %d chunks of %u tokens and %d logits",
                       path, k->size, (unsigned long long)need, (int)k->n_chunk, (unsigned)k->n_ctx,
                       (int)k->n_vocab);
    k->tokens = (const int32_t *)(k->bytes + 20);
    k->rows = (const uint16_t *)(k->bytes + 20 + 4 * n_tok);
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * Statistics (llama-perplexity's formulas)
 * ------------------------------------------------------------------------------------- */

typedef struct mean_unc {
    double mean, unc;
} mean_unc;

/* mean and its standard error; 0 uncertainty for fewer than 11 samples, as llama.cpp */
static mean_unc mean_and_uncertainty(double sum, double sum2, int64_t n) {
    mean_unc r = {0, 0};
    if (n < 1) return r;
    r.mean = sum / (double)n;
    double var = sum2 / (double)n - r.mean * r.mean;
    r.unc = var > 0 && n > 10 ? sqrt(var / (double)(n - 1)) : 0;
    return r;
}

static double covariance(double sum1, double sum2, double sum12, int64_t n) {
    if (n < 2) return 0;
    return (sum12 / (double)n - (sum1 / (double)n) * (sum2 / (double)n)) / (double)(n - 1);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* linear interpolation between the two nearest order statistics of sorted v */
static double percentile(const float *v, int64_t n, double fraction) {
    if (n <= 0) return 0;
    if (fraction <= 0) return v[0];
    if (fraction >= 1) return v[n - 1];
    double p = fraction * (double)(n - 1);
    int64_t ip = (int64_t)p;
    p -= (double)ip;
    int64_t next = ip + 1 < n ? ip + 1 : n - 1;
    return (1 - p) * v[ip] + p * v[next];
}

typedef struct kld_summary {
    mean_unc log_ppl, log_ppl_base, log_ratio, kld, p_diff, p_diff_rms, same_top;
    double cov, ppl, ppl_unc, ppl_base, ppl_base_unc, cor, ratio, ratio_unc, diff, diff_unc;
} kld_summary;

static kld_summary summarize_kld(const ppl_stats *s) {
    kld_summary k;
    memset(&k, 0, sizeof k);
    k.log_ppl = mean_and_uncertainty(s->sum_nll, s->sum_nll2, s->count);
    k.log_ppl_base = mean_and_uncertainty(s->sum_nll_base, s->sum_nll_base2, s->count);
    k.cov = covariance(s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, s->count);
    k.log_ratio.mean = k.log_ppl.mean - k.log_ppl_base.mean;
    double var = k.log_ppl.unc * k.log_ppl.unc + k.log_ppl_base.unc * k.log_ppl_base.unc - 2 * k.cov;
    k.log_ratio.unc = var > 0 ? sqrt(var) : 0;
    k.kld = mean_and_uncertainty(s->sum_kld, s->sum_kld2, s->count);
    k.p_diff = mean_and_uncertainty(s->sum_p_diff, s->sum_p_diff2, s->count);
    mean_unc mse = mean_and_uncertainty(s->sum_p_diff2, s->sum_p_diff4, s->count);
    k.p_diff_rms.mean = sqrt(mse.mean);
    k.p_diff_rms.unc = k.p_diff_rms.mean > 0 ? 0.5 / k.p_diff_rms.mean * mse.unc : 0;
    k.same_top.mean = s->count ? (double)s->n_same_top / (double)s->count : 0;
    k.same_top.unc = s->count > 1 ? sqrt(k.same_top.mean * (1 - k.same_top.mean) / (double)(s->count - 1)) : 0;
    k.ppl = exp(k.log_ppl.mean);
    k.ppl_unc = k.ppl * k.log_ppl.unc;
    k.ppl_base = exp(k.log_ppl_base.mean);
    k.ppl_base_unc = k.ppl_base * k.log_ppl_base.unc;
    k.cor = k.log_ppl.unc > 0 && k.log_ppl_base.unc > 0 ? k.cov / (k.log_ppl.unc * k.log_ppl_base.unc) : 0;
    k.ratio = exp(k.log_ratio.mean);
    k.ratio_unc = k.ratio * k.log_ratio.unc;
    k.diff = k.ppl - k.ppl_base;
    double dvar = k.ppl_unc * k.ppl_unc + k.ppl_base_unc * k.ppl_base_unc - 2 * k.ppl * k.ppl_base * k.cov;
    k.diff_unc = dvar > 0 ? sqrt(dvar) : 0;
    return k;
}

static void print_kld_chunk(int chunk, const ppl_stats *s) {
    kld_summary k = summarize_kld(s);
    printf("%4d    %10.4f ± %10.4f  %10.5f ± %10.5f  %10.5f ± %10.5f  %6.3f ± %6.3f %%  %6.3f ± %6.3f %%\n",
           chunk, k.ppl, k.ppl_unc, k.log_ratio.mean, k.log_ratio.unc, k.kld.mean, k.kld.unc,
           100 * k.p_diff_rms.mean, 100 * k.p_diff_rms.unc, 100 * k.same_top.mean, 100 * k.same_top.unc);
    fflush(stdout);
}

static const double kld_pcts[] = {0.999, 0.99, 0.5, 0.1, 0.05, 0.01};
static const char *kld_pct_names[] = {"99.9%", "99.0%", "Median", "10.0%", " 5.0%", " 1.0%"};
static const double dp_pcts[] = {0.999, 0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001};
static const char *dp_pct_names[] = {"99.9%", "99.0%", "95.0%", "90.0%", "75.0%", "Median",
                                     "25.0%", "10.0%", " 5.0%", " 1.0%", " 0.1%"};
#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

static void print_kld_final(ppl_stats *s) {
    kld_summary k = summarize_kld(s);
    qsort(s->kld_values, (size_t)s->count, sizeof(float), cmp_float);
    qsort(s->p_diff_values, (size_t)s->count, sizeof(float), cmp_float);
    printf("\n====== Perplexity statistics ======\n");
    printf("Mean PPL(Q)                   : %10.6f ± %10.6f\n", k.ppl, k.ppl_unc);
    printf("Mean PPL(base)                : %10.6f ± %10.6f\n", k.ppl_base, k.ppl_base_unc);
    printf("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * k.cor);
    printf("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", k.log_ratio.mean, k.log_ratio.unc);
    printf("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", k.ratio, k.ratio_unc);
    printf("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", k.diff, k.diff_unc);
    printf("\n====== KL divergence statistics ======\n");
    printf("Mean    KLD: %10.6f ± %10.6f\n", k.kld.mean, k.kld.unc);
    printf("Maximum KLD: %10.6f\n", (double)s->kld_values[s->count - 1]);
    for (int i = 0; i < N_OF(kld_pcts); i++)
        printf("%-7s KLD: %10.6f\n", kld_pct_names[i], percentile(s->kld_values, s->count, kld_pcts[i]));
    printf("Minimum KLD: %10.6f\n", (double)s->kld_values[0]);
    printf("\n====== Token probability statistics ======\n");
    printf("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * k.p_diff.mean, 100 * k.p_diff.unc);
    printf("Maximum Δp: %6.3f%%\n", 100.0 * s->p_diff_values[s->count - 1]);
    for (int i = 0; i < N_OF(dp_pcts); i++)
        printf("%-7s Δp: %6.3f%%\n", dp_pct_names[i], 100 * percentile(s->p_diff_values, s->count, dp_pcts[i]));
    printf("Minimum Δp: %6.3f%%\n", 100.0 * s->p_diff_values[0]);
    printf("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * k.p_diff_rms.mean, 100 * k.p_diff_rms.unc);
    printf("Same top p: %6.3f ± %5.3f %%\n", 100 * k.same_top.mean, 100 * k.same_top.unc);
}

static json_t *json_mean_unc(mean_unc m) {
    return json_pack("{s:f,s:f}", "mean", m.mean, "uncertainty", m.unc);
}

static void add_kld_json(json_t *root, ppl_stats *s) {
    kld_summary k = summarize_kld(s); /* values are sorted by print_kld_final */
    json_t *kj = json_object();
    json_object_set_new(kj, "mean_ppl_q", json_pack("{s:f,s:f}", "mean", k.ppl, "uncertainty", k.ppl_unc));
    json_object_set_new(kj, "mean_ppl_base", json_pack("{s:f,s:f}", "mean", k.ppl_base, "uncertainty", k.ppl_base_unc));
    json_object_set_new(kj, "cor_ln_ppl", json_real(k.cor));
    json_object_set_new(kj, "mean_ln_ppl_ratio", json_mean_unc(k.log_ratio));
    json_object_set_new(kj, "mean_ppl_ratio", json_pack("{s:f,s:f}", "mean", k.ratio, "uncertainty", k.ratio_unc));
    json_object_set_new(kj, "mean_ppl_diff", json_pack("{s:f,s:f}", "mean", k.diff, "uncertainty", k.diff_unc));
    json_object_set_new(kj, "kld", json_mean_unc(k.kld));
    json_t *kp = json_object();
    json_object_set_new(kp, "max", json_real(s->kld_values[s->count - 1]));
    for (int i = 0; i < N_OF(kld_pcts); i++) {
        char key[16];
        snprintf(key, sizeof key, "p%.1f", 100 * kld_pcts[i]);
        json_object_set_new(kp, key, json_real(percentile(s->kld_values, s->count, kld_pcts[i])));
    }
    json_object_set_new(kp, "min", json_real(s->kld_values[0]));
    json_object_set_new(kj, "kld_percentiles", kp);
    json_object_set_new(kj, "delta_p", json_mean_unc(k.p_diff));
    json_t *dp = json_object();
    json_object_set_new(dp, "max", json_real(s->p_diff_values[s->count - 1]));
    for (int i = 0; i < N_OF(dp_pcts); i++) {
        char key[16];
        snprintf(key, sizeof key, "p%.1f", 100 * dp_pcts[i]);
        json_object_set_new(dp, key, json_real(percentile(s->p_diff_values, s->count, dp_pcts[i])));
    }
    json_object_set_new(dp, "min", json_real(s->p_diff_values[0]));
    json_object_set_new(kj, "delta_p_percentiles", dp);
    json_object_set_new(kj, "delta_p_rms", json_mean_unc(k.p_diff_rms));
    json_object_set_new(kj, "same_top_p", json_mean_unc(k.same_top));
    json_object_set_new(root, "kl_divergence", kj);
}

/* ---------------------------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------------------------- */

typedef struct ppl_run {
    const ppl_args *args;
    lq_model *model;
    lq_runtime *rt;
    int32_t *tokens;       /* n_tokens (from the text, or the base file's) */
    int64_t n_tokens;
    int n_ctx, n_chunk;
    int32_t bos;           /* replaces each chunk's first token; -1 = no */
    kld_file base;
    FILE *base_out;        /* --kld-base, written to base_tmp then renamed */
    char base_tmp[4200];
    ppl_stats stats;
    double seconds;
} ppl_run;

static lq_status score_chunk(ppl_run *r, int chunk, const float *logits, uint16_t *row, lq_error *err) {
    int64_t n_vocab = lq_runtime_n_vocab(r->rt);
    int first = r->n_ctx / 2, n_scored = r->n_ctx - 1 - first;
    const int32_t *tok = r->tokens + (int64_t)chunk * r->n_ctx;
    ppl_stats *s = &r->stats;
    for (int j = first; j < r->n_ctx - 1; j++) {
        const float *lj = logits + (size_t)j * (size_t)n_vocab;
        int32_t target = tok[j + 1];
        if (r->args->kld) {
            const uint16_t *base_row =
                r->base.rows + ((size_t)chunk * (size_t)n_scored + (size_t)(j - first)) * r->base.row_u16;
            lq_kld_token k = lq_kld_score_row(lj, n_vocab, target, base_row);
            s->sum_nll_base += k.nll_base;
            s->sum_nll_base2 += k.nll_base * k.nll_base;
            s->sum_nll_nll_base += k.nll * k.nll_base;
            s->sum_kld += k.kld;
            s->sum_kld2 += k.kld * k.kld;
            s->sum_p_diff += k.p_diff;
            s->sum_p_diff2 += k.p_diff * k.p_diff;
            s->sum_p_diff4 += k.p_diff * k.p_diff * k.p_diff * k.p_diff;
            s->n_same_top += k.same_top;
            s->kld_values[s->count] = (float)k.kld;
            s->p_diff_values[s->count] = (float)k.p_diff;
            s->sum_nll += k.nll;
            s->sum_nll2 += k.nll * k.nll;
        } else {
            double nll = row ? lq_kld_encode_row(lj, n_vocab, target, row) : lq_nll(lj, n_vocab, target);
            if (row && fwrite(row, 2, lq_kld_row_u16(n_vocab), r->base_out) != lq_kld_row_u16(n_vocab))
                return lq_cli_fail(err, LQ_ERR_IO, "%s: write failed: %s", r->base_tmp, strerror(errno));
            s->sum_nll += nll;
            s->sum_nll2 += nll * nll;
        }
        s->count++;
    }
    return LQ_OK;
}

static bool all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static lq_status run_chunks(ppl_run *r, lq_error *err) {
    int64_t n_vocab = lq_runtime_n_vocab(r->rt);
    float *logits = (float *)malloc((size_t)r->n_ctx * (size_t)n_vocab * sizeof(float));
    int32_t *chunk_tokens = (int32_t *)malloc((size_t)r->n_ctx * sizeof(int32_t));
    uint16_t *row = r->base_out ? (uint16_t *)malloc(lq_kld_row_u16(n_vocab) * 2) : NULL;
    lq_status st = LQ_OK;
    if (!logits || !chunk_tokens || (r->base_out && !row)) {
        st = lq_cli_fail(err, LQ_ERR_NOMEM, "ppl: no memory for %d x %lld logits", r->n_ctx, (long long)n_vocab);
        goto done;
    }
    bool progress = isatty(fileno(stderr));
    double t0 = now_seconds();
    if (r->args->kld)
        printf("chunk             PPL          ln(PPL(Q)/PPL(base))          KL Divergence"
               "              Δp RMS            Same top p\n");
    for (int c = 0; c < r->n_chunk; c++) {
        memcpy(chunk_tokens, r->tokens + (int64_t)c * r->n_ctx, (size_t)r->n_ctx * sizeof(int32_t));
        if (r->bos >= 0) chunk_tokens[0] = r->bos;
        lq_runtime_reset(r->rt);
        if ((st = lq_runtime_eval(r->rt, chunk_tokens, r->n_ctx, logits, err))) goto done;
        if (!all_finite(logits, (size_t)r->n_ctx * (size_t)lq_runtime_n_vocab(r->rt))) {
            /* name the weight responsible; finite weights that still overflow get their own
             * message */
            if ((st = lq_model_check_finite(r->model, err))) goto done;
            st = lq_cli_fail(err, LQ_ERR_NUMERIC, "%s: chunk %d produced non-finite logits (the weights are finite)",
                      lq_model_path(r->model), c + 1);
            goto done;
        }
        if ((st = score_chunk(r, c, logits, row, err))) goto done;
        if (r->args->kld) {
            print_kld_chunk(c + 1, &r->stats);
        } else {
            printf("[%d]%.4f,", c + 1, exp(r->stats.sum_nll / (double)r->stats.count));
            fflush(stdout);
        }
        if (progress) {
            double el = now_seconds() - t0;
            fprintf(stderr, "\r%d/%d chunks, %.1f s, ETA %.1f s   ", c + 1, r->n_chunk, el,
                    el / (c + 1) * (r->n_chunk - c - 1));
        }
    }
    if (progress) fputc('\n', stderr);
    r->seconds = now_seconds() - t0;
done:
    free(logits);
    free(chunk_tokens);
    free(row);
    return st;
}

static lq_status open_base_out(ppl_run *r, lq_error *err) {
    snprintf(r->base_tmp, sizeof r->base_tmp, "%s.tmp", r->args->kld_base);
    r->base_out = fopen(r->base_tmp, "wb");
    if (!r->base_out) return lq_cli_fail(err, LQ_ERR_IO, "%s: cannot create: %s", r->base_tmp, strerror(errno));
    uint32_t n_ctx = (uint32_t)r->n_ctx;
    int32_t n_vocab = (int32_t)lq_runtime_n_vocab(r->rt), n_chunk = r->n_chunk;
    bool ok = fwrite("_logits_", 1, 8, r->base_out) == 8 && fwrite(&n_ctx, 4, 1, r->base_out) == 1 &&
              fwrite(&n_vocab, 4, 1, r->base_out) == 1 && fwrite(&n_chunk, 4, 1, r->base_out) == 1 &&
              fwrite(r->tokens, 4, (size_t)n_chunk * n_ctx, r->base_out) == (size_t)n_chunk * n_ctx;
    if (!ok) return lq_cli_fail(err, LQ_ERR_IO, "%s: write failed: %s", r->base_tmp, strerror(errno));
    return LQ_OK;
}

static lq_status close_base_out(ppl_run *r, bool keep, lq_error *err) {
    if (!r->base_out) return LQ_OK;
    bool ok = fflush(r->base_out) == 0 && fsync(fileno(r->base_out)) == 0;
    ok = fclose(r->base_out) == 0 && ok;
    r->base_out = NULL;
    if (keep && ok && rename(r->base_tmp, r->args->kld_base) == 0) return LQ_OK;
    unlink(r->base_tmp);
    if (!keep) return LQ_OK;
    return lq_cli_fail(err, LQ_ERR_IO, "%s: cannot finish: %s", r->args->kld_base, strerror(errno));
}

/* Tokens, context and chunk count, from the text or the base file. */
static lq_status prepare_tokens(ppl_run *r, lq_error *err) {
    const ppl_args *a = r->args;
    lq_tokenizer *tok = NULL;
    lq_status st = LQ_OK;
    r->bos = -1;
    if (a->kld) {
        if ((st = read_kld_file(a->kld, &r->base, err))) return st;
        if (r->base.n_vocab != lq_model_hparams(r->model)->n_vocab)
            return lq_cli_fail(err, LQ_ERR_INVALID, "%s: %d logits per token, the model has %lld", a->kld,
                           (int)r->base.n_vocab, (long long)lq_model_hparams(r->model)->n_vocab);
        if (a->ctx_given && a->n_ctx != (int)r->base.n_ctx)
            return lq_cli_fail(err, LQ_ERR_INVALID, "%s: the file holds chunks of %u tokens, not %d (-c)", a->kld,
                        (unsigned)r->base.n_ctx, a->n_ctx);
        r->n_ctx = (int)r->base.n_ctx;
        r->n_tokens = (int64_t)r->base.n_ctx * r->base.n_chunk;
        r->tokens = (int32_t *)malloc((size_t)r->n_tokens * sizeof(int32_t));
        if (!r->tokens) return lq_cli_fail(err, LQ_ERR_NOMEM, "ppl: no memory for tokens");
        memcpy(r->tokens, r->base.tokens, (size_t)r->n_tokens * sizeof(int32_t));
    } else {
        r->n_ctx = a->n_ctx;
    }
    /* the BOS substitution needs the vocabulary's add_bos flag even in --kld mode */
    st = open_tokenizer(r->model, &tok, err);
    if (st && a->kld) { /* no tokenizer: fall back on the file (BOS = its first token) */
        lq_error_clear(err);
        r->bos = r->tokens[0];
        st = LQ_OK;
    } else if (!st) {
        if (lq_tokenizer_add_bos(tok)) r->bos = lq_tokenizer_bos(tok);
        if (!a->kld) st = tokenize_text(a->text, tok, &r->tokens, &r->n_tokens, err);
    }
    lq_tokenizer_free(tok);
    if (st) return st;
    int64_t max_chunks = r->n_tokens / r->n_ctx;
    if (!a->kld && r->n_tokens < 2 * (int64_t)r->n_ctx)
        return lq_cli_fail(err, LQ_ERR_INVALID, "%s: %lld tokens; a context of %d needs at least %d", a->text,
                       (long long)r->n_tokens, r->n_ctx, 2 * r->n_ctx);
    r->n_chunk = (int)(a->n_chunks > 0 && a->n_chunks < max_chunks ? a->n_chunks : max_chunks);
    return LQ_OK;
}

static lq_status write_json(const ppl_run *r, const char *path, lq_error *err) {
    const ppl_stats *s = &r->stats;
    mean_unc nll = mean_and_uncertainty(s->sum_nll, s->sum_nll2, s->count);
    double ppl = exp(nll.mean);
    json_t *root = json_object();
    json_object_set_new(root, "model", json_string(r->args->model));
    if (r->args->text) json_object_set_new(root, "text", json_string(r->args->text));
    if (r->args->kld) json_object_set_new(root, "kld_base", json_string(r->args->kld));
    json_object_set_new(root, "n_ctx", json_integer(r->n_ctx));
    json_object_set_new(root, "n_chunks", json_integer(r->n_chunk));
    json_object_set_new(root, "n_tokens_text", json_integer(r->n_tokens));
    json_object_set_new(root, "n_scored", json_integer(s->count));
    json_object_set_new(root, "ppl", json_real(ppl));
    json_object_set_new(root, "ppl_stderr", json_real(ppl * nll.unc));
    json_object_set_new(root, "mean_nll", json_real(nll.mean));
    json_object_set_new(root, "seconds", json_real(r->seconds));
    json_object_set_new(root, "threads", json_integer(r->args->n_threads));
    json_object_set_new(root, "libquant", json_string(lq_version()));
    if (r->args->kld) add_kld_json(root, (ppl_stats *)s);
    int rc = json_dump_file(root, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc ? lq_cli_fail(err, LQ_ERR_IO, "%s: cannot write", path) : LQ_OK;
}

int lq_cmd_ppl(int argc, char **argv) {
    ppl_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    lq_cli_install_signal_handlers();
    lq_error err;
    lq_error_clear(&err);
    ppl_run r;
    memset(&r, 0, sizeof r);
    r.args = &a;
    lq_status st = lq_model_open(a.model, &r.model, &err);
    if (!st) st = prepare_tokens(&r, &err);
    if (!st) {
        lq_runtime_opts o = {a.n_threads, r.n_ctx, a.n_batch > 0 ? a.n_batch : r.n_ctx, false, a.act_int8};
        st = lq_runtime_create(r.model, &o, &r.rt, &err);
    }
    if (!st && a.kld) {
        r.stats.kld_values = (float *)malloc((size_t)r.n_chunk * (size_t)r.n_ctx * sizeof(float));
        r.stats.p_diff_values = (float *)malloc((size_t)r.n_chunk * (size_t)r.n_ctx * sizeof(float));
        if (!r.stats.kld_values || !r.stats.p_diff_values) st = lq_cli_fail(&err, LQ_ERR_NOMEM, "ppl: no memory");
    }
    if (!st && a.kld_base) st = open_base_out(&r, &err);
    if (!st) {
        if (isatty(fileno(stderr)))
            fprintf(stderr, "lq ppl: %d chunks of %d tokens, %lld tokens in the text\n", r.n_chunk, r.n_ctx,
                    (long long)r.n_tokens);
        st = run_chunks(&r, &err);
    }
    lq_status st_close = close_base_out(&r, !st, st ? NULL : &err);
    if (!st) st = st_close;
    if (!st) {
        printf("\n");
        if (a.kld) print_kld_final(&r.stats);
        mean_unc nll = mean_and_uncertainty(r.stats.sum_nll, r.stats.sum_nll2, r.stats.count);
        double ppl = exp(nll.mean);
        if (!a.kld) {
            double var = r.stats.sum_nll2 / (double)r.stats.count - nll.mean * nll.mean;
            if (var > 0)
                printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl,
                       sqrt(var / (double)(r.stats.count - 1)) * ppl);
            else
                printf("Unexpected negative standard deviation of log(prob)\n");
        }
        if (a.json) st = write_json(&r, a.json, &err);
    }
    free(r.tokens);
    if (r.base.bytes) munmap(r.base.bytes, r.base.size);
    free(r.stats.kld_values);
    free(r.stats.p_diff_values);
    lq_runtime_free(r.rt);
    lq_model_close(r.model);
    return st ? lq_cli_report("ppl", &err) : LQ_EXIT_OK;
}
