/* device_loader.c — the CUDA backend, loaded on demand.
 *
 * libquant does not link CUDA: the backend is the module liblq_cuda.so (kernels/cuda,
 * lq_cuda_module.h), opened with dlopen the first time anything asks for a device, i.e. only
 * when a tool was given --device cuda[:N] or --device auto looks for one. Every lq_cuda_*
 * function of lq_cuda.h is defined here as a call through the module's table; without a module
 * they fail with LQ_ERR_UNSUPPORTED and the reason (so callers need no #ifdef).
 *
 * Order (once per process):
 *   1. $LQ_CUDA_MODULE: that file, and nothing else (no driver probe: tests and packagers use
 *      it to name the module exactly).
 *   2. Otherwise the driver is probed first through libcuda.so.1 (cuInit, cuDeviceGetCount): a
 *      machine without driver or device never maps cudart/cuBLAS (~255 MiB resident).
 *   3. The module next to the build of the running executable (uninstalled use: the executable
 *      lies under the build directory meson configured), then <libdir>/libquant/liblq_cuda.so.
 * A module whose ABI number differs is refused ("CUDA backend: <path>: ABI N, expected M"). */
#include "kernels/cuda/lq_cuda_module.h"
#include "lq_config.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
    pthread_once_t once;
    const lq_cuda_api *api; /* NULL: no backend (why says so) */
    int n_devices;
    char path[PATH_MAX];    /* the module loaded */
    char why[512];          /* why there is no device, "" when there is one */
} g_cuda = {PTHREAD_ONCE_INIT, NULL, 0, "", ""};

/* dlerror() after a failed dlopen of path, without repeating the path. */
static const char *dl_reason(const char *path) {
    const char *e = dlerror();
    if (!e) return "unknown dlopen error";
    size_t n = strlen(path);
    if (!strncmp(e, path, n) && !strncmp(e + n, ": ", 2)) e += n + 2;
    return e;
}

/* 0 when the driver reports at least one device, else -1 with g_cuda.why set. */
static int probe_driver(void) {
    void *lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!lib) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "no CUDA driver (%s)", dlerror());
        return -1;
    }
    typedef int (*init_fn)(unsigned);
    typedef int (*count_fn)(int *);
    init_fn cu_init;
    count_fn cu_count;
    *(void **)&cu_init = dlsym(lib, "cuInit");
    *(void **)&cu_count = dlsym(lib, "cuDeviceGetCount");
    int n = 0, rc = -1;
    if (!cu_init || !cu_count)
        snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA driver: libcuda.so.1 lacks cuInit");
    else if ((rc = cu_init(0)) != 0)
        snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA driver: cuInit failed (error %d)", rc);
    else if ((rc = cu_count(&n)) != 0 || n <= 0)
        snprintf(g_cuda.why, sizeof g_cuda.why, "no CUDA device present");
    /* the driver stays loaded: cudart uses it next */
    return rc == 0 && n > 0 ? 0 : -1;
}

static bool readable(const char *path) { return path[0] && access(path, R_OK) == 0; }

/* The module of this build when the running executable lies in its build directory. */
static bool build_module(char *out, size_t n) {
    const char *root = LQ_BUILD_ROOT, *module = LQ_CUDA_MODULE_BUILD;
    char exe[PATH_MAX], real_root[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (!root[0] || len <= 0 || !realpath(root, real_root)) return false;
    exe[len] = '\0';
    size_t rl = strlen(real_root);
    if (strncmp(exe, real_root, rl) != 0 || exe[rl] != '/' || !readable(module)) return false;
    snprintf(out, n, "%s", module);
    return true;
}

static void load_module(const char *path) {
    snprintf(g_cuda.path, sizeof g_cuda.path, "%s", path);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA backend: %s: %s", path, dl_reason(path));
        return;
    }
    lq_cuda_module_fn entry;
    *(void **)&entry = dlsym(lib, LQ_CUDA_MODULE_SYMBOL);
    const lq_cuda_api *api = entry ? entry() : NULL;
    if (!api) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA backend: %s: no %s", path, LQ_CUDA_MODULE_SYMBOL);
    } else if (api->abi != LQ_CUDA_MODULE_ABI) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA backend: %s: ABI %u, expected %u", path,
                 (unsigned)api->abi, (unsigned)LQ_CUDA_MODULE_ABI);
    } else if (api->size != sizeof(lq_cuda_api) || api->error_size != sizeof(lq_error)) {
        snprintf(g_cuda.why, sizeof g_cuda.why,
                 "CUDA backend: %s: ABI %u but a table of %u bytes and errors of %u (expected %zu, %zu)",
                 path, (unsigned)api->abi, (unsigned)api->size, (unsigned)api->error_size,
                 sizeof(lq_cuda_api), sizeof(lq_error));
    } else {
        char why[256] = "";
        g_cuda.api = api;
        g_cuda.n_devices = api->probe(why, sizeof why);
        if (g_cuda.n_devices <= 0) {
            g_cuda.n_devices = 0;
            snprintf(g_cuda.why, sizeof g_cuda.why, "no CUDA device (%s)", why[0] ? why : "none present");
        }
        return; /* the module stays loaded for the life of the process */
    }
    dlclose(lib);
}

static void load_once(void) {
    const char *env = getenv("LQ_CUDA_MODULE");
    if (env && env[0]) {
        load_module(env);
        return;
    }
    if (!LQ_HAVE_CUDA) {
        snprintf(g_cuda.why, sizeof g_cuda.why, "built without CUDA");
        return;
    }
    if (probe_driver() != 0) return;
    char path[PATH_MAX];
    if (build_module(path, sizeof path) || (snprintf(path, sizeof path, "%s", LQ_CUDA_MODULE_INSTALL),
                                            readable(path))) {
        load_module(path);
        return;
    }
    snprintf(g_cuda.why, sizeof g_cuda.why, "CUDA backend: %s not found (%s; set LQ_CUDA_MODULE)",
             LQ_CUDA_MODULE_FILE, LQ_CUDA_MODULE_INSTALL);
}

int lq_cuda_backend_probe(const char **why) {
    pthread_once(&g_cuda.once, load_once);
    if (why) *why = g_cuda.why;
    return g_cuda.n_devices;
}

const char *lq_cuda_backend_path(void) {
    pthread_once(&g_cuda.once, load_once);
    return g_cuda.api ? g_cuda.path : NULL;
}

static const lq_cuda_api *api_or_fail(lq_error *err) {
    pthread_once(&g_cuda.once, load_once);
    if (!g_cuda.api) lq_fail(err, LQ_ERR_UNSUPPORTED, "cuda: %s", g_cuda.why);
    return g_cuda.api;
}

static const lq_cuda_api *api_quiet(void) {
    pthread_once(&g_cuda.once, load_once);
    return g_cuda.api;
}

int lq_cuda_device_count(void) { return lq_cuda_backend_probe(NULL); }

const char *lq_cuda_device_name(int index) {
    const lq_cuda_api *a = api_quiet();
    return a && index >= 0 && index < g_cuda.n_devices ? a->device_name(index) : NULL;
}

/* ---- trampolines -------------------------------------------------------------------------- */

#define TRAMPOLINE_S(name, params, args)                                                          \
    lq_status lq_cuda_##name params {                                                             \
        const lq_cuda_api *api_ = api_or_fail(err);                                                  \
        return api_ ? api_->name args : LQ_ERR_UNSUPPORTED;                                             \
    }
#define TRAMPOLINE_V(name, params, args)                                                          \
    void lq_cuda_##name params {                                                                  \
        const lq_cuda_api *api_ = api_quiet();                                                       \
        if (api_) api_->name args;                                                                      \
    }
#define TRAMPOLINE_P(name, params, args)                                                          \
    void *lq_cuda_##name params {                                                                 \
        const lq_cuda_api *api_ = api_or_fail(err);                                                  \
        return api_ ? api_->name args : NULL;                                                           \
    }
#define TRAMPOLINE_I(name, params, args)                                                          \
    int64_t lq_cuda_##name params {                                                               \
        const lq_cuda_api *api_ = api_quiet();                                                       \
        return api_ ? api_->name args : 1;                                                              \
    }

LQ_CUDA_API_LIST(TRAMPOLINE_S, TRAMPOLINE_V, TRAMPOLINE_P, TRAMPOLINE_I)

lq_status lq_la_ops_cuda(lq_cuda_ctx *ctx, lq_la_ops *out, lq_error *err) {
    const lq_cuda_api *a = api_or_fail(err);
    if (a && !a->la_ops) return lq_fail(err, LQ_ERR_UNSUPPORTED, "cuda: the module has no linear algebra");
    return a ? a->la_ops(ctx, out, err) : LQ_ERR_UNSUPPORTED;
}
