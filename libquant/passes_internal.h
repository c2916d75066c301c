/* passes_internal.h — pieces shared by the calibrated passes (awq.c, smoothquant.c, passes.c). */
#ifndef LQ_PASSES_INTERNAL_H
#define LQ_PASSES_INTERNAL_H

#include "linalg.h"

/* Factorisation attempts a prepared Hessian took (each 2/3·n³ flops; rate accounting). */
int lq_gptq_prep_attempts(const lq_gptq_prep *p);

/* y (t × n_out) = x (t × n_in) · wᵀ (w: n_out × n_in), split over threads in fixed row chunks. */
void lq_pass_matmul(const float *x, int64_t t, const float *w, int64_t n_out, int64_t n_in,
                    float *y, int n_threads);

/* out = decode(encode(w)) with the GGUF codec of type (the actual quantizer in the loop).
 * imp: per-column importance or NULL. */
lq_status lq_pass_fakequant(lq_type type, const float *w, float *out, int64_t n_out, int64_t n_in,
                            const float *imp, int n_threads, lq_error *err);

/* One AWQ scale group: linears sharing one input. With down != NULL the loss is measured on
 * the MLP output down(silu(x·gateᵀ) ⊙ (x·upᵀ)) (w[0] = gate, w[1] = up, down FP); otherwise on
 * the concatenated outputs of the linears. */
typedef struct awq_group {
    int n_lin;
    const float *w[3];
    int64_t n_out[3];
    lq_type type[3];
    const float *down;      /* n_down_out × n_out[0], or NULL */
    int64_t n_down_out;
    /* AWQ+GPTQ: the Hessian of the group's input (n_in × n_in, unscaled space); candidates are
     * then quantized by GPTQ with diag(1/s)·H·diag(1/s) instead of RTN, so alpha = 0 is plain
     * GPTQ and the search picks scales for the quantizer that will actually be used. */
    const double *h;
    int64_t h_tokens; /* tokens behind h (2/N · Σ x·xᵀ); the sample x is a subset of them */
    lq_gptq_opts gptq;
    /* keep s = 1 unless the best candidate lowers the loss by more than this fraction: with GPTQ
     * in the loop the gains are small and a scale picked on the sample can lose on new text */
    double min_gain;
} awq_group;

/* The candidate scales for one alpha: s = max(x_mean^alpha, 1e-4) (NaN → 1e-4, inf → 1),
 * normalised by sqrt(max s · min s). The CPU search and the device adapter both call this, so
 * they try the same s bit for bit. */
void lq_awq_scales(const float *x_mean, int64_t n, double alpha, float *s);

/* Grid search over alpha = k/n_grid (k = 0..n_grid-1): s = max(x_mean^alpha, 1e-4) normalised
 * by sqrt(max s · min s) (llm-awq), loss = mean squared output error with every linear
 * fake-quantized as Q(W·diag(s))·diag(1/s). Writes the best s (n_in), its alpha, the loss at
 * alpha = 0 (s = 1: plain RTN) and the best loss. x: t × n_in sampled inputs. */
lq_status lq_awq_search_scale(const awq_group *g, int64_t n_in, const float *x, int64_t t,
                              const float *x_mean, int n_grid, int n_threads, float *s,
                              double *alpha, double *loss_plain, double *loss_best,
                              lq_error *err);

/* Mean squared block output error (as lq_awq_search_scale measures it) with each linear l
 * fake-quantized from wc[l] (same shapes as g->w[l]) against the float group. */
lq_status lq_awq_group_loss(const awq_group *g, const float *const *wc, int64_t n_in, const float *x,
                            int64_t t, int n_threads, double *loss, lq_error *err);

/* AWQ clipping per GGUF block (block / super-block of the row): max_val = absmax·(1 − k/20),
 * k = 0..9; error = Σ_t (Σ_e x_te·(q_e − w_e))² over the t sampled tokens; the best clamp is
 * applied to w in place. mean_ratio: average chosen max_val/absmax. */
lq_status lq_awq_clip(lq_type type, float *w, int64_t n_out, int64_t n_in, const float *x,
                      int64_t t, int n_threads, double *mean_ratio, lq_error *err);
/* The same search with the error summed over every calibration token through the Hessian of
 * the input (h: n_in × n_in, Σ x·xᵀ up to a constant): error = dᵀ·H_bb·d per block. What the
 * passes driver uses: llm-awq's 512-token sample chose clips that lowered the in-sample error
 * but raised held-out KLD (README, AWQ investigation). */
lq_status lq_awq_clip_h(lq_type type, float *w, int64_t n_out, int64_t n_in, const double *h,
                        int n_threads, double *mean_ratio, lq_error *err);

/* SmoothQuant migration scales s_j = max|x_j|^alpha / max|W_j|^(1-alpha) (max over the rows of
 * every linear sharing the input; both clamped ≥ 1e-5). */
void lq_sq_scales(const float *x_max, const float *const *w, const int64_t *n_out, int n_lin,
                  int64_t n_in, double alpha, float *s);
/* W8A8 output error of the linears with scales s (NULL = none): per-token int8 activations of
 * x/s × Q8_0 weights W·s, against x·Wᵀ (sum of squares / elements). */
lq_status lq_sq_w8a8_error(const float *x, int64_t t, const float *const *w,
                           const int64_t *n_out, int n_lin, int64_t n_in, const float *s,
                           int n_threads, double *mse, lq_error *err);

#endif
