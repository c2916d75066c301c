/* version.c — version and compiled-in features for `lq --version`. */
#include "internal.h"
#include "lq_config.h"

#include <stdio.h>

const char *lq_version(void) { return LQ_VERSION_STRING; }

const char *lq_build_features(void) {
    static char buf[256];
    snprintf(buf, sizeof buf, "cuda=%s blas=%s simd-compiled=%s simd-runtime=%s",
             LQ_HAVE_CUDA ? "yes" : "no", LQ_HAVE_BLAS ? "openblas" : "no",
             LQ_SIMD_COMPILED, lq_cpu_simd_level());
    return buf;
}
