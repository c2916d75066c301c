/* eval.c — perplexity and KL divergence the way llama-perplexity computes them (see the
 * "Evaluation" section of libquant.h): token streams from a text or a KL-divergence base file,
 * the base file's reader and writer, the chunked scoring loop and llama.cpp's statistics. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *dup_string(const char *s, lq_error *err) {
    size_t n = strlen(s) + 1;
    char *d = (char *)lq_malloc(n, err, "a path");
    if (d) memcpy(d, s, n);
    return d;
}

/* ---------------------------------------------------------------------------------------
 * KL-divergence base files (llama.cpp's logits file)
 * ------------------------------------------------------------------------------------- */

#define KLD_MAGIC "_logits_"
#define KLD_HEADER_BYTES 20 /* magic, u32 n_ctx, i32 n_vocab, i32 n_chunk */

static int scored_per_chunk(int n_ctx) { return n_ctx - 1 - n_ctx / 2; }

/* Header fields, their ranges and the file size they imply. */
static lq_status check_kld_layout(const char *path, const uint8_t *bytes, size_t size, lq_kld_base *b,
                                  lq_error *err) {
    if (size < KLD_HEADER_BYTES || memcmp(bytes, KLD_MAGIC, 8) != 0)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: not a llama.cpp logits file (magic '_logits_' missing)", path);
    uint32_t n_ctx;
    memcpy(&n_ctx, bytes + 8, 4);
    memcpy(&b->n_vocab, bytes + 12, 4);
    memcpy(&b->n_chunk, bytes + 16, 4);
    if (n_ctx < 4 || n_ctx > (1u << 24) || b->n_vocab < 1 || b->n_chunk < 1)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: header: n_ctx %u, n_vocab %d, n_chunk %d", path, (unsigned)n_ctx,
                       (int)b->n_vocab, (int)b->n_chunk);
    b->n_ctx = (int)n_ctx;
    b->rows_per_chunk = scored_per_chunk(b->n_ctx);
    b->row_u16 = lq_kld_row_u16(b->n_vocab);
    /* n_ctx <= 2^24 and n_chunk < 2^31: the token bytes fit; the row bytes may not */
    uint64_t n_tok = (uint64_t)n_ctx * (uint64_t)b->n_chunk;
    uint64_t rows = (uint64_t)b->n_chunk * (uint64_t)b->rows_per_chunk;
    uint64_t need = KLD_HEADER_BYTES + 4 * n_tok, row_bytes;
    if (!lq_mul_u64(rows, (uint64_t)b->row_u16 * 2, &row_bytes) || !lq_add_u64(need, row_bytes, &need) ||
        need != size)
        return lq_fail(err, LQ_ERR_FORMAT, "%s: %zu bytes, expected %llu for %d chunks of %u tokens and %d logits",
                       path, size, (unsigned long long)need, (int)b->n_chunk, (unsigned)n_ctx, (int)b->n_vocab);
    b->tokens = (const int32_t *)(bytes + KLD_HEADER_BYTES);
    b->rows = (const uint16_t *)(bytes + KLD_HEADER_BYTES + 4 * n_tok);
    for (uint64_t i = 0; i < n_tok; i++)
        if (b->tokens[i] < 0 || b->tokens[i] >= b->n_vocab)
            return lq_fail(err, LQ_ERR_FORMAT, "%s: token %d at position %llu is outside the vocabulary of %d",
                           path, (int)b->tokens[i], (unsigned long long)i, (int)b->n_vocab);
    return LQ_OK;
}

/* Base files are large (~11 GiB for Llama-2 on wikitext-2): mapped, not read. */
lq_status lq_kld_base_open(const char *path, lq_kld_base *out, lq_error *err) {
    memset(out, 0, sizeof *out);
    void *map = NULL;
    size_t size = 0;
    lq_status st = lq_map_file(path, &map, &size, err); /* the layout check rejects short files */
    if (st) return st;
    lq_kld_base b;
    memset(&b, 0, sizeof b);
    b.map = map;
    b.map_size = size;
    st = check_kld_layout(path, (const uint8_t *)map, map ? size : 0, &b, err);
    if (!st && !(b.path = dup_string(path, err))) st = LQ_ERR_NOMEM;
    if (st) {
        lq_kld_base_close(&b);
        return st;
    }
    *out = b;
    return LQ_OK;
}

void lq_kld_base_close(lq_kld_base *b) {
    if (!b) return;
    if (b->map) munmap(b->map, b->map_size);
    free(b->path);
    memset(b, 0, sizeof *b);
}

struct lq_kld_writer {
    FILE *f;
    char *path, *tmp;   /* written to tmp, renamed to path by finish */
    size_t row_u16;
    int64_t rows_expected, rows_written;
};

static void writer_free(lq_kld_writer *w) {
    free(w->path);
    free(w->tmp);
    free(w);
}

void lq_kld_writer_abort(lq_kld_writer *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    unlink(w->tmp);
    writer_free(w);
}

static lq_status write_kld_header(lq_kld_writer *w, int n_ctx, int64_t n_vocab, int n_chunk,
                                  const int32_t *tokens, lq_error *err) {
    uint32_t ctx32 = (uint32_t)n_ctx;
    int32_t vocab32 = (int32_t)n_vocab, chunk32 = n_chunk;
    size_t n_tok = (size_t)n_chunk * (size_t)n_ctx;
    bool ok = fwrite(KLD_MAGIC, 1, 8, w->f) == 8 && fwrite(&ctx32, 4, 1, w->f) == 1 &&
              fwrite(&vocab32, 4, 1, w->f) == 1 && fwrite(&chunk32, 4, 1, w->f) == 1 &&
              fwrite(tokens, 4, n_tok, w->f) == n_tok;
    return ok ? LQ_OK : lq_fail(err, LQ_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
}

lq_status lq_kld_writer_open(const char *path, int n_ctx, int64_t n_vocab, int n_chunk,
                             const int32_t *tokens, lq_kld_writer **out, lq_error *err) {
    *out = NULL;
    if (n_ctx < 4 || n_ctx > (1 << 24) || n_vocab < 1 || n_vocab > INT32_MAX || n_chunk < 1)
        return lq_fail(err, LQ_ERR_INVALID, "%s: cannot hold n_ctx %d, n_vocab %lld, n_chunk %d", path, n_ctx,
                       (long long)n_vocab, n_chunk);
    lq_kld_writer *w = (lq_kld_writer *)lq_calloc(1, sizeof *w, err, "a logits-file writer");
    if (!w) return LQ_ERR_NOMEM;
    size_t len = strlen(path);
    w->path = dup_string(path, err);
    w->tmp = (char *)lq_malloc(len + 5, err, "a path");
    if (!w->path || !w->tmp) {
        writer_free(w);
        return LQ_ERR_NOMEM;
    }
    snprintf(w->tmp, len + 5, "%s.tmp", path);
    w->row_u16 = lq_kld_row_u16(n_vocab);
    w->rows_expected = (int64_t)n_chunk * scored_per_chunk(n_ctx);
    if (!(w->f = fopen(w->tmp, "wb"))) {
        lq_status st = lq_fail(err, LQ_ERR_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        writer_free(w);
        return st;
    }
    lq_status st = write_kld_header(w, n_ctx, n_vocab, n_chunk, tokens, err);
    if (st) {
        lq_kld_writer_abort(w);
        return st;
    }
    *out = w;
    return LQ_OK;
}

lq_status lq_kld_writer_add(lq_kld_writer *w, const uint16_t *row, lq_error *err) {
    if (w->rows_written >= w->rows_expected)
        return lq_fail(err, LQ_ERR_INVALID, "%s: more than the %lld rows the header promises", w->path,
                       (long long)w->rows_expected);
    if (fwrite(row, 2, w->row_u16, w->f) != w->row_u16)
        return lq_fail(err, LQ_ERR_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->rows_written++;
    return LQ_OK;
}

lq_status lq_kld_writer_finish(lq_kld_writer *w, lq_error *err) {
    if (w->rows_written != w->rows_expected) {
        lq_status st = lq_fail(err, LQ_ERR_INVALID, "%s: %lld rows written, the header promises %lld", w->path,
                               (long long)w->rows_written, (long long)w->rows_expected);
        lq_kld_writer_abort(w);
        return st;
    }
    bool ok = fflush(w->f) == 0 && fsync(fileno(w->f)) == 0;
    ok = fclose(w->f) == 0 && ok;
    w->f = NULL;
    lq_status st = LQ_OK;
    if (!ok || rename(w->tmp, w->path) != 0) {
        st = lq_fail(err, LQ_ERR_IO, "%s: cannot finish: %s", w->path, strerror(errno));
        unlink(w->tmp);
    }
    writer_free(w);
    return st;
}

/* ---------------------------------------------------------------------------------------
 * Token streams
 * ------------------------------------------------------------------------------------- */

static lq_status read_whole(const char *path, char **out, size_t *size, lq_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lq_fail(err, LQ_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return lq_fail(err, LQ_ERR_IO, "%s: not a regular file", path);
    }
    char *buf = (char *)malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return lq_fail(err, LQ_ERR_NOMEM, "%s: no memory for %lld bytes", path, (long long)sb.st_size);
    }
    size_t got = fread(buf, 1, (size_t)sb.st_size, f);
    fclose(f);
    if (got != (size_t)sb.st_size) {
        free(buf);
        return lq_fail(err, LQ_ERR_IO, "%s: short read", path);
    }
    buf[got] = 0;
    *out = buf;
    *size = got;
    return LQ_OK;
}

static lq_status open_tokenizer(const lq_model *m, lq_tokenizer **tok, lq_error *err) {
    if (lq_model_gguf(m)) return lq_tokenizer_from_gguf(lq_model_gguf(m), tok, err);
    const char *json = lq_model_tokenizer_json(m);
    if (!json) return lq_fail(err, LQ_ERR_FORMAT, "%s: no tokenizer.json next to the model", lq_model_path(m));
    return lq_tokenizer_from_json(json, tok, err);
}

/* llama-perplexity replaces each chunk's first token with BOS when the vocabulary adds one. */
static int32_t chunk_bos(const lq_tokenizer *tok) {
    return lq_tokenizer_add_bos(tok) ? lq_tokenizer_bos(tok) : -1;
}

void lq_ppl_tokens_free(lq_ppl_tokens *t) {
    if (!t) return;
    free(t->tokens);
    free(t->source);
    memset(t, 0, sizeof *t);
}

lq_status lq_ppl_tokens_from_text(const lq_model *m, const char *text_path, lq_ppl_tokens *out,
                                  lq_error *err) {
    memset(out, 0, sizeof *out);
    lq_tokenizer *tok = NULL;
    lq_status st = open_tokenizer(m, &tok, err);
    if (st) return st;
    out->bos = chunk_bos(tok);
    char *text = NULL;
    size_t len = 0;
    st = read_whole(text_path, &text, &len, err);
    if (!st) st = lq_tokenize(tok, text, len, true, false, &out->tokens, &out->n_tokens, err);
    free(text);
    lq_tokenizer_free(tok);
    if (!st && !(out->source = dup_string(text_path, err))) st = LQ_ERR_NOMEM;
    if (st) lq_ppl_tokens_free(out);
    return st;
}

lq_status lq_ppl_tokens_from_kld(const lq_model *m, const lq_kld_base *base, lq_ppl_tokens *out,
                                 lq_error *err) {
    memset(out, 0, sizeof *out);
    int64_t n_vocab = lq_model_hparams(m)->n_vocab;
    if (base->n_vocab != n_vocab)
        return lq_fail(err, LQ_ERR_INVALID, "%s: %d logits per token, the model has %lld", base->path,
                       (int)base->n_vocab, (long long)n_vocab);
    out->n_tokens = (int64_t)base->n_ctx * base->n_chunk;
    out->tokens = (int32_t *)lq_malloc((size_t)out->n_tokens * sizeof(int32_t), err, "the base file's tokens");
    out->source = dup_string(base->path, err);
    if (!out->tokens || !out->source) {
        lq_ppl_tokens_free(out);
        return LQ_ERR_NOMEM;
    }
    memcpy(out->tokens, base->tokens, (size_t)out->n_tokens * sizeof(int32_t));
    lq_tokenizer *tok = NULL;
    lq_error tok_err;
    if (open_tokenizer(m, &tok, &tok_err) == LQ_OK) {
        out->bos = chunk_bos(tok);
        lq_tokenizer_free(tok);
    } else {
        out->bos = out->tokens[0]; /* no tokenizer: the file's first token is its BOS */
    }
    return LQ_OK;
}

/* ---------------------------------------------------------------------------------------
 * Statistics (llama-perplexity's formulas)
 * ------------------------------------------------------------------------------------- */

/* Running sums over the scored tokens. */
typedef struct ppl_sums {
    double sum_nll, sum_nll2;
    int64_t count;
    /* KL-divergence mode */
    double sum_nll_base, sum_nll_base2, sum_nll_nll_base;
    double sum_kld, sum_kld2;
    double sum_p_diff, sum_p_diff2, sum_p_diff4;
    int64_t n_same_top;
    float *kld_values, *p_diff_values;
} ppl_sums;

/* mean and its standard error; 0 uncertainty for fewer than 11 samples, as llama.cpp */
static lq_mean_unc mean_and_uncertainty(double sum, double sum2, int64_t n) {
    lq_mean_unc r = {0, 0};
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

double lq_ppl_percentile(const float *sorted, int64_t n, double fraction) {
    if (n <= 0) return 0;
    if (fraction <= 0) return sorted[0];
    if (fraction >= 1) return sorted[n - 1];
    double p = fraction * (double)(n - 1);
    int64_t ip = (int64_t)p;
    p -= (double)ip;
    int64_t next = ip + 1 < n ? ip + 1 : n - 1;
    return (1 - p) * sorted[ip] + p * sorted[next];
}

static lq_kld_stats summarize_kld(const ppl_sums *s) {
    lq_kld_stats k;
    memset(&k, 0, sizeof k);
    lq_mean_unc log_ppl = mean_and_uncertainty(s->sum_nll, s->sum_nll2, s->count);
    lq_mean_unc log_ppl_base = mean_and_uncertainty(s->sum_nll_base, s->sum_nll_base2, s->count);
    double cov = covariance(s->sum_nll, s->sum_nll_base, s->sum_nll_nll_base, s->count);
    k.log_ratio.mean = log_ppl.mean - log_ppl_base.mean;
    double var = log_ppl.unc * log_ppl.unc + log_ppl_base.unc * log_ppl_base.unc - 2 * cov;
    k.log_ratio.unc = var > 0 ? sqrt(var) : 0;
    k.kld = mean_and_uncertainty(s->sum_kld, s->sum_kld2, s->count);
    k.p_diff = mean_and_uncertainty(s->sum_p_diff, s->sum_p_diff2, s->count);
    lq_mean_unc mse = mean_and_uncertainty(s->sum_p_diff2, s->sum_p_diff4, s->count);
    k.p_diff_rms.mean = sqrt(mse.mean);
    k.p_diff_rms.unc = k.p_diff_rms.mean > 0 ? 0.5 / k.p_diff_rms.mean * mse.unc : 0;
    k.same_top.mean = s->count ? (double)s->n_same_top / (double)s->count : 0;
    k.same_top.unc = s->count > 1 ? sqrt(k.same_top.mean * (1 - k.same_top.mean) / (double)(s->count - 1)) : 0;
    k.ppl.mean = exp(log_ppl.mean);
    k.ppl.unc = k.ppl.mean * log_ppl.unc;
    k.ppl_base.mean = exp(log_ppl_base.mean);
    k.ppl_base.unc = k.ppl_base.mean * log_ppl_base.unc;
    k.cor = log_ppl.unc > 0 && log_ppl_base.unc > 0 ? cov / (log_ppl.unc * log_ppl_base.unc) : 0;
    k.ratio.mean = exp(k.log_ratio.mean);
    k.ratio.unc = k.ratio.mean * k.log_ratio.unc;
    k.diff.mean = k.ppl.mean - k.ppl_base.mean;
    double dvar = k.ppl.unc * k.ppl.unc + k.ppl_base.unc * k.ppl_base.unc - 2 * k.ppl.mean * k.ppl_base.mean * cov;
    k.diff.unc = dvar > 0 ? sqrt(dvar) : 0;
    return k;
}

/* The figures so far (the sorted value arrays are set only at the end). */
static void summarize(const ppl_sums *s, bool kld, lq_ppl_result *r) {
    r->n_scored = s->count;
    r->log_ppl = mean_and_uncertainty(s->sum_nll, s->sum_nll2, s->count);
    r->mean_nll = r->log_ppl.mean;
    r->ppl = exp(r->mean_nll);
    r->nll_variance = s->count ? s->sum_nll2 / (double)s->count - r->mean_nll * r->mean_nll : 0;
    r->ppl_unc = r->nll_variance > 0 && s->count > 1 ? sqrt(r->nll_variance / (double)(s->count - 1)) * r->ppl : 0;
    r->has_kld = kld;
    if (kld) r->kld = summarize_kld(s);
}

void lq_ppl_result_free(lq_ppl_result *r) {
    if (!r) return;
    free(r->values_);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------------------------------
 * The run
 * ------------------------------------------------------------------------------------- */

static int resolved_n_ctx(const lq_ppl_opts *o) {
    return o->kld_base && o->n_ctx == 0 ? o->kld_base->n_ctx : o->n_ctx;
}

lq_status lq_ppl_n_chunk(const lq_ppl_tokens *in, const lq_ppl_opts *o, int *n_chunk, lq_error *err) {
    int n_ctx = resolved_n_ctx(o);
    const char *src = in->source ? in->source : "ppl";
    if (n_ctx < 4) return lq_fail(err, LQ_ERR_INVALID, "%s: a context of %d tokens; at least 4 are needed", src, n_ctx);
    if (o->kld_base && n_ctx != o->kld_base->n_ctx)
        return lq_fail(err, LQ_ERR_INVALID, "%s: the file holds chunks of %d tokens, not %d", o->kld_base->path,
                       o->kld_base->n_ctx, n_ctx);
    if (o->n_chunks < 0) return lq_fail(err, LQ_ERR_INVALID, "%s: %d chunks requested", src, o->n_chunks);
    if (!o->kld_base && in->n_tokens < 2 * (int64_t)n_ctx)
        return lq_fail(err, LQ_ERR_INVALID, "%s: %lld tokens; a context of %d needs at least %d", src,
                       (long long)in->n_tokens, n_ctx, 2 * n_ctx);
    int64_t max_chunks = in->n_tokens / n_ctx;
    int64_t n = o->n_chunks > 0 && o->n_chunks < max_chunks ? o->n_chunks : max_chunks;
    if (n < 1 || n > INT_MAX)
        return lq_fail(err, LQ_ERR_INVALID, "%s: %lld tokens make %lld chunks of %d", src, (long long)in->n_tokens,
                       (long long)n, n_ctx);
    if (o->kld_base && n > o->kld_base->n_chunk)
        return lq_fail(err, LQ_ERR_INVALID, "%s: %lld chunks requested, the file holds %d", o->kld_base->path,
                       (long long)n, (int)o->kld_base->n_chunk);
    *n_chunk = (int)n;
    return LQ_OK;
}

typedef struct ppl_run {
    const lq_model *model;
    lq_runtime *rt;
    const lq_ppl_tokens *in;
    const lq_kld_base *base;  /* compare with, or NULL */
    lq_kld_writer *out;       /* save to, or NULL */
    int n_ctx, n_chunk;
    int64_t n_vocab;
    float *logits;            /* n_ctx × n_vocab */
    int32_t *chunk_tokens;    /* n_ctx */
    uint16_t *row;            /* one base row (saving) */
    ppl_sums sums;
} ppl_run;

/* A row whose scale or offset is not finite would turn every statistic into NaN. chunk is
 * 1-based in the message, as in the running output; position is the token's in the chunk. */
static lq_status check_base_row(const ppl_run *r, int chunk, int i, const uint16_t *row, lq_error *err) {
    float scale, min_log_prob;
    memcpy(&scale, row, sizeof scale);
    memcpy(&min_log_prob, row + 2, sizeof min_log_prob);
    if (isfinite(scale) && scale > 0 && isfinite(min_log_prob)) return LQ_OK;
    return lq_fail(err, LQ_ERR_FORMAT, "%s: chunk %d, position %d: stored scale %g, min_log_prob %g are not usable",
                   r->base->path, chunk + 1, r->n_ctx / 2 + i, (double)scale, (double)min_log_prob);
}

static lq_status score_against_base(ppl_run *r, int chunk, int i, const float *logits, int32_t target,
                                    lq_error *err) {
    const lq_kld_base *b = r->base;
    const uint16_t *base_row = b->rows + ((size_t)chunk * (size_t)b->rows_per_chunk + (size_t)i) * b->row_u16;
    lq_status st = check_base_row(r, chunk, i, base_row, err);
    if (st) return st;
    lq_kld_token k = lq_kld_score_row(logits, r->n_vocab, target, base_row);
    ppl_sums *s = &r->sums;
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
    return LQ_OK;
}

/* Positions n_ctx/2 .. n_ctx-2 of one evaluated chunk, each predicting the next token. */
static lq_status score_chunk(ppl_run *r, int chunk, lq_error *err) {
    int first = r->n_ctx / 2;
    const int32_t *tok = r->in->tokens + (int64_t)chunk * r->n_ctx;
    ppl_sums *s = &r->sums;
    for (int j = first; j < r->n_ctx - 1; j++) {
        const float *lj = r->logits + (size_t)j * (size_t)r->n_vocab;
        int32_t target = tok[j + 1];
        lq_status st = LQ_OK;
        if (r->base) {
            st = score_against_base(r, chunk, j - first, lj, target, err);
        } else {
            double nll = r->out ? lq_kld_encode_row(lj, r->n_vocab, target, r->row) : lq_nll(lj, r->n_vocab, target);
            if (r->out) st = lq_kld_writer_add(r->out, r->row, err);
            s->sum_nll += nll;
            s->sum_nll2 += nll * nll;
        }
        if (st) return st;
        s->count++;
    }
    return LQ_OK;
}

static bool all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

static lq_status eval_chunk(ppl_run *r, int c, lq_error *err) {
    memcpy(r->chunk_tokens, r->in->tokens + (int64_t)c * r->n_ctx, (size_t)r->n_ctx * sizeof(int32_t));
    if (r->in->bos >= 0) r->chunk_tokens[0] = r->in->bos;
    lq_runtime_reset(r->rt);
    lq_status st = lq_runtime_eval(r->rt, r->chunk_tokens, r->n_ctx, r->logits, err);
    if (st) return st;
    if (!all_finite(r->logits, (size_t)r->n_ctx * (size_t)r->n_vocab)) {
        /* name the weight responsible; finite weights that still overflow get their own message */
        if ((st = lq_model_check_finite(r->model, err))) return st;
        return lq_fail(err, LQ_ERR_NUMERIC, "%s: chunk %d produced non-finite logits (the weights are finite)",
                       lq_model_path(r->model), c + 1);
    }
    return score_chunk(r, c, err);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static lq_status alloc_run(ppl_run *r, const lq_ppl_opts *o, lq_error *err) {
    r->logits = (float *)malloc((size_t)r->n_ctx * (size_t)r->n_vocab * sizeof(float));
    r->chunk_tokens = (int32_t *)malloc((size_t)r->n_ctx * sizeof(int32_t));
    if (o->kld_base_out) r->row = (uint16_t *)malloc(lq_kld_row_u16(r->n_vocab) * 2);
    if (!r->logits || !r->chunk_tokens || (o->kld_base_out && !r->row))
        return lq_fail(err, LQ_ERR_NOMEM, "ppl: no memory for %d x %lld logits", r->n_ctx, (long long)r->n_vocab);
    if (r->base) {
        size_t n_scored = (size_t)r->n_chunk * (size_t)scored_per_chunk(r->n_ctx);
        float *values = (float *)malloc(2 * n_scored * sizeof(float) + 1);
        if (!values) return lq_fail(err, LQ_ERR_NOMEM, "ppl: no memory for %zu token statistics", n_scored);
        r->sums.kld_values = values;
        r->sums.p_diff_values = values + n_scored;
    }
    return LQ_OK;
}

static void free_run(ppl_run *r) {
    free(r->logits);
    free(r->chunk_tokens);
    free(r->row);
    free(r->sums.kld_values);
}

static lq_status check_run(const lq_runtime *rt, const lq_ppl_opts *o, lq_error *err) {
    if (o->kld_base && o->kld_base_out)
        return lq_fail(err, LQ_ERR_INVALID, "%s: comparing with a base and saving one exclude each other",
                       o->kld_base_out);
    if (o->kld_base && o->kld_base->n_vocab != lq_runtime_n_vocab(rt))
        return lq_fail(err, LQ_ERR_INVALID, "%s: %d logits per token, the model has %lld", o->kld_base->path,
                       (int)o->kld_base->n_vocab, (long long)lq_runtime_n_vocab(rt));
    return LQ_OK;
}

/* Hands the sorted per-token values over to the result. */
static void finish_result(ppl_run *r, double t0, lq_ppl_result *res) {
    summarize(&r->sums, r->base != NULL, res);
    res->seconds = now_seconds() - t0;
    if (!r->base) return;
    ppl_sums *s = &r->sums;
    qsort(s->kld_values, (size_t)s->count, sizeof(float), cmp_float);
    qsort(s->p_diff_values, (size_t)s->count, sizeof(float), cmp_float);
    res->kld.kld_sorted = s->kld_values;
    res->kld.p_diff_sorted = s->p_diff_values;
    res->values_ = s->kld_values;
    s->kld_values = s->p_diff_values = NULL;
}

lq_status lq_ppl_run(const lq_model *m, lq_runtime *rt, const lq_ppl_tokens *in,
                     const lq_ppl_opts *opts, lq_ppl_progress_fn progress, void *progress_ctx,
                     lq_ppl_result *res, lq_error *err) {
    memset(res, 0, sizeof *res);
    ppl_run r;
    memset(&r, 0, sizeof r);
    r.model = m;
    r.rt = rt;
    r.in = in;
    r.base = opts->kld_base;
    r.n_ctx = resolved_n_ctx(opts);
    r.n_vocab = lq_runtime_n_vocab(rt);
    lq_status st = lq_ppl_n_chunk(in, opts, &r.n_chunk, err);
    if (!st) st = check_run(rt, opts, err);
    if (!st) st = alloc_run(&r, opts, err);
    if (!st && opts->kld_base_out)
        st = lq_kld_writer_open(opts->kld_base_out, r.n_ctx, r.n_vocab, r.n_chunk, in->tokens, &r.out, err);
    lq_ppl_result now;
    memset(&now, 0, sizeof now);
    now.n_ctx = r.n_ctx;
    now.n_chunk = r.n_chunk;
    now.n_tokens = in->n_tokens;
    double t0 = now_seconds();
    for (int c = 0; !st && c < r.n_chunk; c++) {
        if ((st = eval_chunk(&r, c, err))) break;
        if (!progress) continue;
        summarize(&r.sums, r.base != NULL, &now);
        now.seconds = now_seconds() - t0;
        progress(progress_ctx, c + 1, r.n_chunk, &now);
    }
    if (r.out) {
        if (!st) st = lq_kld_writer_finish(r.out, err);
        else lq_kld_writer_abort(r.out);
    }
    if (!st) {
        *res = now;
        finish_result(&r, t0, res);
    }
    free_run(&r);
    return st;
}
