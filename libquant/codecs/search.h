/* search.h — the scale/min search helpers of llama.cpp's reference quantizers (algorithms as
 * described in the reference notes, section b "Search helpers"), shared by the legacy imatrix
 * paths and the K-quants.
 *
 * Bit-exactness: everything is float32, sums are accumulated sequentially i = 0..n-1 and
 * products are formed in the order the reference writes them ((w*x)*l, (w*l)*l, ...). Files
 * including this header must be compiled without FMA contraction (-ffp-contract=off; CUDA:
 * -fmad=false). All functions are host+device; no VLAs, callers pass scratch buffers. */
#ifndef LQ_CODECS_SEARCH_H
#define LQ_CODECS_SEARCH_H

#include "common.h"

/* Below this magnitude a group counts as all-zero (ggml's GROUP_MAX_EPS). */
#define LQ_GROUP_MAX_EPS 1e-15f

static LQ_HD inline int lq_clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Element with the largest |x| (the first one on ties), as a signed value; *amax_out = its |x|. */
static LQ_HD inline float lq_signed_absmax(int n, const float *x, float *amax_out) {
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    *amax_out = amax;
    return max;
}

/* Weight of element i in make_qx_quants: the given weights, else chosen by rmse_type. */
static LQ_HD inline float lq_qx_weight(const float *qw, int rmse_type, const float *x, int i) {
    if (qw) return qw[i];
    if (rmse_type == 1) return x[i] * x[i];
    if (rmse_type == 2) return 1.0f;
    if (rmse_type == 3) return fabsf(x[i]);
    return sqrtf(fabsf(x[i]));
}

/* Weighted sums Σ w·x·l and Σ w·l² for the codes of iscale (l clamped to [-nmax, nmax-1]). */
static LQ_HD inline void lq_qx_sums(int n, int nmax, const float *x, const float *qw,
                                    int rmse_type, float iscale, float *sumlx, float *suml2) {
    float slx = 0.0f, sl2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        int l = lq_clampi(lq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        float w = lq_qx_weight(qw, rmse_type, x, i);
        slx += w * x[i] * (float)l;
        sl2 += w * (float)l * (float)l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

static LQ_HD inline void lq_qx_codes(int n, int nmax, const float *x, float iscale, int8_t *L) {
    for (int i = 0; i < n; ++i)
        L[i] = (int8_t)(nmax + lq_clampi(lq_nearest_int(iscale * x[i]), -nmax, nmax - 1));
}

/* Symmetric signed-scale search (make_qx_quants). Writes codes L[i] in 0..2·nmax-1 (offset by
 * nmax) and returns the scale: x ≈ scale·(L - nmax). qw: weights or NULL (then by rmse_type:
 * 1 → x², 2 → 1, 3 → |x|, else sqrt|x|). rmse_type 0: plain rounding, returns 1/iscale;
 * negative: one least-squares step, returns the mean of it and 1/iscale. */
static LQ_HD inline float lq_make_qx_quants(int n, int nmax, const float *x, int8_t *L,
                                            int rmse_type, const float *qw) {
    float amax;
    float max = lq_signed_absmax(n, x, &amax);
    if (amax < LQ_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)(-nmax) / max;
    lq_qx_codes(n, nmax, x, iscale, L);
    if (rmse_type == 0) return 1.0f / iscale;
    bool return_early = rmse_type < 0;
    if (return_early) rmse_type = -rmse_type;
    float sumlx, suml2;
    lq_qx_sums(n, nmax, x, qw, rmse_type, iscale, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0.0f ? 0.5f * (scale + 1.0f / iscale) : 1.0f / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        lq_qx_sums(n, nmax, x, qw, rmse_type, iscale, &sumlx, &suml2);
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            lq_qx_codes(n, nmax, x, iscale, L);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's reference search (make_q3_quants): symmetric start as make_qx_quants (weights x²),
 * then with do_rmse up to 5 coordinate-descent passes. L in 0..2·nmax-1; returns the scale. */
static LQ_HD inline float lq_make_q3_quants(int n, int nmax, const float *x, int8_t *L,
                                            bool do_rmse) {
    float amax;
    float max = lq_signed_absmax(n, x, &amax);
    if (amax < LQ_GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)(-nmax) / max;
    if (!do_rmse) {
        lq_qx_codes(n, nmax, x, iscale, L);
        return 1.0f / iscale;
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        int l = lq_clampi(lq_nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0.0f) {
                float sl2 = suml2 - w * (float)L[i] * (float)L[i];
                int new_l = lq_clampi(lq_nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (sl2 > 0.0f && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

/* Codes of x on the asymmetric grid iscale·(x - min), clamped to 0..nmax. */
static LQ_HD inline void lq_qkx_codes(int n, int nmax, const float *x, float iscale, float min,
                                      uint8_t *L) {
    for (int i = 0; i < n; ++i)
        L[i] = (uint8_t)lq_clampi(lq_nearest_int(iscale * (x[i] - min)), 0, nmax);
}

/* Σ w·err of x ≈ scale·L + min, err = |.| (use_mad) or its square. w NULL → x². */
static LQ_HD inline float lq_qkx_error(int n, const float *x, const float *w, const uint8_t *L,
                                       float scale, float min, bool use_mad) {
    float total = 0.0f;
    for (int i = 0; i < n; ++i) {
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        float wi = w ? w[i] : x[i] * x[i];
        total += wi * diff;
    }
    return total;
}

/* The shared body of make_qkx2_quants / make_qkx3_quants: asymmetric (scale, min) search.
 * w NULL → weights x². strict_degenerate: the qkx2 test (max == min) versus qkx3 (max <= min). */
static LQ_HD inline float lq_qkx_search(int n, int nmax, const float *x, const float *w,
                                        uint8_t *L, float *the_min, uint8_t *Laux, float rmin,
                                        float rdelta, int nstep, bool use_mad,
                                        bool strict_degenerate) {
    float min = x[0], max = x[0];
    float sum_w = w ? w[0] : x[0] * x[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float wi = w ? w[i] : x[i] * x[i];
        sum_w += wi;
        sum_x += wi * x[i];
    }
    if (min > 0.0f) min = 0.0f;
    if (strict_degenerate ? max == min : max <= min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    lq_qkx_codes(n, nmax, x, iscale, min, L);
    float best_mad = lq_qkx_error(n, x, w, L, scale, min, use_mad);
    for (int is = 0; nstep >= 1 && is <= nstep; ++is) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        /* min is the best min so far: the candidates depend on the accepted ones */
        lq_qkx_codes(n, nmax, x, iscale, min, Laux);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; ++i) {
            float wi = w ? w[i] : x[i] * x[i];
            float l = (float)Laux[i];
            sum_l += wi * l;
            sum_l2 += wi * l * l;
            sum_xl += wi * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0.0f) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0.0f) {
                this_min = 0.0f;
                this_scale = sum_xl / sum_l2;
            }
            float mad = lq_qkx_error(n, x, w, Laux, this_scale, this_min, use_mad);
            if (mad < best_mad) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* make_qkx2_quants: weights required. Returns scale; *the_min = -min (>= 0); x ≈ scale·L - the_min. */
static LQ_HD inline float lq_make_qkx2_quants(int n, int nmax, const float *x, const float *w,
                                              uint8_t *L, float *the_min, uint8_t *Laux,
                                              float rmin, float rdelta, int nstep, bool use_mad) {
    return lq_qkx_search(n, nmax, x, w, L, the_min, Laux, rmin, rdelta, nstep, use_mad, true);
}

/* make_qkx3_quants: as qkx2, but w may be NULL (weights x²) and max <= min counts as degenerate. */
static LQ_HD inline float lq_make_qkx3_quants(int n, int nmax, const float *x, const float *w,
                                              uint8_t *L, float *the_min, uint8_t *Laux,
                                              float rmin, float rdelta, int nstep, bool use_mad) {
    return lq_qkx_search(n, nmax, x, w, L, the_min, Laux, rmin, rdelta, nstep, use_mad, false);
}

/* Weighted squared error of x ≈ l/iscale with l = min(nmax, nearest_int(iscale·x)). */
static LQ_HD inline float lq_qp_mse(int n, int nmax, const float *x, const float *qw, float iscale) {
    float scale = 1.0f / iscale;
    float mse = 0.0f;
    for (int i = 0; i < n; ++i) {
        int l = lq_nearest_int(iscale * x[i]);
        if (l > nmax) l = nmax;
        float diff = x[i] - scale * (float)l;
        mse += qw[i] * diff * diff;
    }
    return mse;
}

/* make_qp_quants: quantizes non-negative values (sub-block scales or mins) to codes 0..nmax with
 * weights qw; returns the super-block scale so that x ≈ scale·L. */
static LQ_HD inline float lq_make_qp_quants(int n, int nmax, const float *x, uint8_t *L,
                                            const float *qw) {
    float max = 0.0f;
    for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
    if (max == 0.0f) { /* exactly zero here (not the 1e-15 test of the other searches) */
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.0f;
    }
    float iscale = (float)nmax / max;
    /* the first guess is scored without the nmax clamp, as the reference does */
    float scale = 1.0f / iscale;
    float best_mse = 0.0f;
    for (int i = 0; i < n; ++i) {
        int l = lq_nearest_int(iscale * x[i]);
        float diff = x[i] - scale * (float)l;
        best_mse += qw[i] * diff * diff;
    }
    for (int is = -4; is <= 4; ++is) {
        if (is == 0) continue;
        float iscale_is = (0.1f * (float)is + (float)nmax) / max;
        float mse = lq_qp_mse(n, nmax, x, qw, iscale_is);
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; ++i) {
        int l = lq_nearest_int(iscale * x[i]);
        if (l > nmax) l = nmax;
        L[i] = (uint8_t)l;
        sumlx += qw[i] * x[i] * (float)l;
        suml2 += qw[i] * (float)l * (float)l;
    }
    for (int itry = 0; itry < 5; ++itry) {
        int n_changed = 0;
        for (int i = 0; i < n; ++i) {
            float w = qw[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            float sl2 = suml2 - w * (float)L[i] * (float)L[i];
            if (slx > 0.0f && sl2 > 0.0f) {
                int new_l = lq_nearest_int(x[i] * sl2 / slx);
                if (new_l > nmax) new_l = nmax;
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)new_l * (float)new_l;
                    if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (uint8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        ++n_changed;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    return sumlx / suml2;
}

#endif
