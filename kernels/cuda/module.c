/* module.c — the one exported symbol of liblq_cuda.so: the table of the backend's functions
 * (lq_cuda_module.h). Everything else in the module is local (module.map), so the module's own
 * calls bind inside it whatever the process that loads it exports. */
#include "lq_cuda_module.h"

int lq_cuda_probe(char *why, size_t why_size); /* device.cu */

const lq_cuda_api *lq_cuda_module_api(void);

#define ENTRY(name, params, args) lq_cuda_##name,

const lq_cuda_api *lq_cuda_module_api(void) {
    static lq_cuda_api api = {
        LQ_CUDA_MODULE_ABI, (uint32_t)sizeof(lq_cuda_api), (uint32_t)sizeof(lq_error), NULL,
        lq_cuda_probe, lq_cuda_device_name,
        LQ_CUDA_API_LIST(ENTRY, ENTRY, ENTRY, ENTRY)
        lq_la_ops_cuda,
    };
    api.version = lq_version();
    return &api;
}
