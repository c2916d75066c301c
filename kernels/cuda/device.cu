// device.cu — CUDA devices, contexts, errors, memory and staged copies (see lq_cuda.h for the
// memory plan).
#include "cuda_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LQ_CUDA_DEFAULT_STAGING ((size_t)64 << 20)

extern "C" int lq_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear: "no driver" is a normal answer here */
        return 0;
    }
    return n;
}

/* The device count with the reason when it is 0 (the module's probe: libquant words the note). */
extern "C" int lq_cuda_probe(char *why, size_t why_size) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        snprintf(why, why_size, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n <= 0) snprintf(why, why_size, "no CUDA device present");
    return n > 0 ? n : 0;
}

extern "C" const char *lq_cuda_device_name(int index) {
    static char names[16][256];
    if (index < 0 || index >= 16) return NULL;
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    snprintf(names[index], sizeof names[index], "%s", prop.name);
    return names[index];
}

// ---- errors ---------------------------------------------------------------------------------

lq_status lq_cuda_fail(lq_cuda_ctx *ctx, lq_error *err, lq_status code, const char *fmt, ...) {
    lq_error local;
    va_list ap;
    va_start(ap, fmt);
    lq_vfail(&local, code, fmt, ap);
    va_end(ap);
    if (ctx && ctx->sticky.code == LQ_OK) ctx->sticky = local;
    if (err) *err = local;
    return code;
}

lq_status lq_cuda_check(lq_cuda_ctx *ctx, cudaError_t e, const char *what, lq_error *err) {
    if (e == cudaSuccess) return LQ_OK;
    lq_status code = e == cudaErrorMemoryAllocation ? LQ_ERR_NOMEM : LQ_ERR_IO;
    return lq_cuda_fail(ctx, err, code, "cuda: %s: %s", what, cudaGetErrorString(e));
}

lq_status lq_cublas_check(lq_cuda_ctx *ctx, cublasStatus_t s, const char *what, lq_error *err) {
    if (s == CUBLAS_STATUS_SUCCESS) return LQ_OK;
    lq_status code = s == CUBLAS_STATUS_ALLOC_FAILED ? LQ_ERR_NOMEM : LQ_ERR_IO;
    return lq_cuda_fail(ctx, err, code, "cublas: %s: %s", what, cublasGetStatusString(s));
}

lq_status lq_cusolver_check(lq_cuda_ctx *ctx, cusolverStatus_t s, const char *what,
                            lq_error *err) {
    if (s == CUSOLVER_STATUS_SUCCESS) return LQ_OK;
    lq_status code = s == CUSOLVER_STATUS_ALLOC_FAILED ? LQ_ERR_NOMEM : LQ_ERR_IO;
    return lq_cuda_fail(ctx, err, code, "cusolver: %s: status %d", what, (int)s);
}

extern "C" lq_status lq_cuda_status(const lq_cuda_ctx *ctx, lq_error *err) {
    if (!ctx) return lq_fail(err, LQ_ERR_INVALID, "cuda: no context");
    if (ctx->sticky.code != LQ_OK && err) *err = ctx->sticky;
    return ctx->sticky.code;
}

// ---- context --------------------------------------------------------------------------------

extern "C" lq_status lq_cuda_ctx_create(int device, size_t staging_bytes, lq_cuda_ctx **out,
                                        lq_error *err) {
    *out = NULL;
    int n = lq_cuda_device_count();
    if (n <= 0) return lq_fail(err, LQ_ERR_UNSUPPORTED, "cuda: no CUDA device present");
    if (device < 0 || device >= n)
        return lq_fail(err, LQ_ERR_INVALID, "cuda: device %d does not exist (%d present)", device, n);
    lq_cuda_ctx *ctx = (lq_cuda_ctx *)calloc(1, sizeof *ctx);
    if (!ctx) return lq_fail(err, LQ_ERR_NOMEM, "cuda: context: out of memory");
    ctx->device = device;
    ctx->staging_bytes = staging_bytes ? staging_bytes : LQ_CUDA_DEFAULT_STAGING;
    lq_status st = lq_cuda_check(ctx, cudaSetDevice(device), "set device", err);
    if (st == LQ_OK)
        st = lq_cuda_check(ctx, cudaStreamCreateWithFlags(&ctx->compute, cudaStreamNonBlocking),
                           "create compute stream", err);
    if (st == LQ_OK)
        st = lq_cuda_check(ctx, cudaStreamCreateWithFlags(&ctx->copy, cudaStreamNonBlocking),
                           "create copy stream", err);
    for (int i = 0; i < 2 && st == LQ_OK; i++) {
        st = lq_cuda_check(ctx, cudaHostAlloc(&ctx->staging[i], ctx->staging_bytes,
                                              cudaHostAllocDefault), "pinned staging buffer", err);
        if (st == LQ_OK)
            st = lq_cuda_check(ctx, cudaEventCreateWithFlags(&ctx->staging_done[i],
                                                             cudaEventDisableTiming),
                               "staging event", err);
    }
    if (st == LQ_OK)
        st = lq_cuda_check(ctx, cudaEventCreateWithFlags(&ctx->compute_mark, cudaEventDisableTiming),
                           "compute event", err);
    if (st == LQ_OK) st = lq_cublas_check(ctx, cublasCreate(&ctx->blas), "create handle", err);
    if (st == LQ_OK)
        st = lq_cublas_check(ctx, cublasSetStream(ctx->blas, ctx->compute), "set stream", err);
    /* plain fp32 products (no TF32): results stay comparable with the CPU backend */
    if (st == LQ_OK)
        st = lq_cublas_check(ctx, cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH), "math mode", err);
    if (st == LQ_OK)
        st = lq_cusolver_check(ctx, cusolverDnCreate(&ctx->solver), "create handle", err);
    if (st == LQ_OK)
        st = lq_cusolver_check(ctx, cusolverDnSetStream(ctx->solver, ctx->compute), "set stream", err);
    if (st != LQ_OK) {
        lq_cuda_ctx_free(ctx);
        return st;
    }
    *out = ctx;
    return LQ_OK;
}

extern "C" void lq_cuda_ctx_free(lq_cuda_ctx *ctx) {
    if (!ctx) return;
    cudaSetDevice(ctx->device);
    if (ctx->compute) cudaStreamSynchronize(ctx->compute);
    if (ctx->copy) cudaStreamSynchronize(ctx->copy);
    if (ctx->solver) cusolverDnDestroy(ctx->solver);
    if (ctx->blas) cublasDestroy(ctx->blas);
    for (int i = 0; i < 4; i++) lq_cuda_buf_free(&ctx->scratch[i]);
    if (ctx->solver_work) cudaFree(ctx->solver_work);
    for (int i = 0; i < 2; i++) {
        if (ctx->staging[i]) cudaFreeHost(ctx->staging[i]);
        if (ctx->staging_done[i]) cudaEventDestroy(ctx->staging_done[i]);
    }
    if (ctx->compute_mark) cudaEventDestroy(ctx->compute_mark);
    if (ctx->copy) cudaStreamDestroy(ctx->copy);
    if (ctx->compute) cudaStreamDestroy(ctx->compute);
    free(ctx);
}

extern "C" lq_status lq_cuda_sync(lq_cuda_ctx *ctx, lq_error *err) {
    if (!ctx) return lq_fail(err, LQ_ERR_INVALID, "cuda: no context");
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    lq_status st = lq_cuda_check(ctx, cudaStreamSynchronize(ctx->copy), "copy stream", err);
    if (st == LQ_OK)
        st = lq_cuda_check(ctx, cudaStreamSynchronize(ctx->compute), "compute stream", err);
    if (st == LQ_OK) st = lq_cuda_check(ctx, cudaGetLastError(), "kernel", err);
    return st;
}

extern "C" lq_status lq_cuda_mem_info(lq_cuda_ctx *ctx, size_t *free_bytes, size_t *total_bytes,
                                      lq_error *err) {
    return lq_cuda_check(ctx, cudaMemGetInfo(free_bytes, total_bytes), "memory info", err);
}

// ---- memory ---------------------------------------------------------------------------------

extern "C" lq_status lq_cuda_buf_reserve(lq_cuda_ctx *ctx, lq_cuda_buf *b, size_t bytes,
                                         lq_error *err) {
    if (ctx && ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (b->bytes >= bytes && b->ptr) return LQ_OK;
    lq_cuda_buf_free(b);
    if (bytes == 0) bytes = 1;
    lq_status st = lq_cuda_check(ctx, cudaMalloc(&b->ptr, bytes), "device allocation", err);
    if (st != LQ_OK) {
        b->ptr = NULL;
        return lq_fail(err, st, "cuda: cannot allocate %zu bytes of device memory", bytes);
    }
    b->bytes = bytes;
    return LQ_OK;
}

extern "C" void lq_cuda_buf_free(lq_cuda_buf *b) {
    if (b->ptr) cudaFree(b->ptr);
    b->ptr = NULL;
    b->bytes = 0;
}

extern "C" void *lq_cuda_host_alloc(size_t bytes, lq_error *err) {
    void *p = NULL;
    if (cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        lq_fail(err, LQ_ERR_NOMEM, "cuda: cannot allocate %zu bytes of pinned host memory", bytes);
        return NULL;
    }
    return p;
}

extern "C" void lq_cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

/* Pieces alternate between the two staging buffers: before refilling one, wait for the DMA that
 * last read it (its event), so the host copy of piece i+1 overlaps the transfer of piece i. */
static lq_status upload(lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes,
                        bool after_compute, lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    const char *src = (const char *)host;
    char *dst = (char *)dev;
    lq_status st = LQ_OK;
    if (after_compute && bytes > 0) { /* dev may still be read by enqueued kernels */
        st = lq_cuda_check(ctx, cudaEventRecord(ctx->compute_mark, ctx->compute), "mark compute", err);
        if (st == LQ_OK)
            st = lq_cuda_check(ctx, cudaStreamWaitEvent(ctx->copy, ctx->compute_mark, 0),
                               "order upload after compute", err);
    }
    for (size_t done = 0; done < bytes && st == LQ_OK;) {
        size_t piece = bytes - done < ctx->staging_bytes ? bytes - done : ctx->staging_bytes;
        int slot = ctx->next_staging;
        ctx->next_staging ^= 1;
        st = lq_cuda_check(ctx, cudaEventSynchronize(ctx->staging_done[slot]), "staging wait", err);
        if (st != LQ_OK) break;
        memcpy(ctx->staging[slot], src + done, piece);
        st = lq_cuda_check(ctx, cudaMemcpyAsync(dst + done, ctx->staging[slot], piece,
                                                cudaMemcpyHostToDevice, ctx->copy),
                           "upload", err);
        if (st == LQ_OK)
            st = lq_cuda_check(ctx, cudaEventRecord(ctx->staging_done[slot], ctx->copy),
                               "staging event", err);
        done += piece;
    }
    /* compute work enqueued after this call sees the data */
    if (st == LQ_OK && bytes > 0)
        st = lq_cuda_check(ctx, cudaStreamWaitEvent(ctx->compute,
                                                    ctx->staging_done[ctx->next_staging ^ 1], 0),
                           "order upload before compute", err);
    return st;
}

extern "C" lq_status lq_cuda_upload(lq_cuda_ctx *ctx, void *dev, const void *host, size_t bytes,
                                    lq_error *err) {
    return upload(ctx, dev, host, bytes, true, err);
}

extern "C" lq_status lq_cuda_upload_overlapped(lq_cuda_ctx *ctx, void *dev, const void *host,
                                               size_t bytes, lq_error *err) {
    return upload(ctx, dev, host, bytes, false, err);
}

extern "C" lq_status lq_cuda_download(lq_cuda_ctx *ctx, void *host, const void *dev, size_t bytes,
                                      lq_error *err) {
    if (ctx->sticky.code != LQ_OK) return lq_cuda_status(ctx, err);
    if (bytes == 0) return LQ_OK;
    lq_status st = lq_cuda_check(ctx, cudaMemcpyAsync(host, dev, bytes, cudaMemcpyDeviceToHost,
                                                      ctx->compute), "download", err);
    if (st == LQ_OK) st = lq_cuda_check(ctx, cudaStreamSynchronize(ctx->compute), "download", err);
    return st;
}

// ---- layer slots ----------------------------------------------------------------------------

extern "C" lq_status lq_cuda_layer_slots_reserve(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s,
                                                 size_t bytes, lq_error *err) {
    for (int i = 0; i < 2; i++) {
        lq_status st = lq_cuda_buf_reserve(ctx, &s->arena[i], bytes, err);
        if (st != LQ_OK) return st;
        if (!s->done_event[i]) {
            cudaEvent_t ev;
            st = lq_cuda_check(ctx, cudaEventCreateWithFlags(&ev, cudaEventDisableTiming),
                               "layer slot event", err);
            if (st != LQ_OK) return st;
            s->done_event[i] = (void *)ev;
        }
    }
    return LQ_OK;
}

extern "C" void *lq_cuda_layer_slot_acquire(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s,
                                            int64_t layer, lq_error *err) {
    int i = (int)(layer & 1);
    if (!s->arena[i].ptr || !s->done_event[i]) {
        lq_cuda_fail(ctx, err, LQ_ERR_INVALID, "cuda: layer slots not reserved");
        return NULL;
    }
    /* uploads into this arena wait for the compute work that last used it */
    if (lq_cuda_check(ctx, cudaStreamWaitEvent(ctx->copy, (cudaEvent_t)s->done_event[i], 0),
                      "layer slot wait", err) != LQ_OK)
        return NULL;
    return s->arena[i].ptr;
}

extern "C" lq_status lq_cuda_layer_slot_release(lq_cuda_ctx *ctx, lq_cuda_layer_slots *s,
                                                int64_t layer, lq_error *err) {
    int i = (int)(layer & 1);
    if (!s->done_event[i]) return lq_cuda_fail(ctx, err, LQ_ERR_INVALID, "cuda: layer slots not reserved");
    return lq_cuda_check(ctx, cudaEventRecord((cudaEvent_t)s->done_event[i], ctx->compute),
                         "layer slot release", err);
}

extern "C" void lq_cuda_layer_slots_free(lq_cuda_layer_slots *s) {
    for (int i = 0; i < 2; i++) {
        lq_cuda_buf_free(&s->arena[i]);
        if (s->done_event[i]) cudaEventDestroy((cudaEvent_t)s->done_event[i]);
        s->done_event[i] = NULL;
    }
}

size_t lq_cuda_row_bytes(lq_type type, int64_t n_per_row) { return lq_row_size(type, n_per_row); }
