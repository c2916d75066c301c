// device.cu — CUDA device discovery for `--device auto|cpu|cuda`.
#include <cuda_runtime.h>

#include "libquant.h"

extern "C" int lq_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" const char *lq_cuda_device_name(int index) {
    static char name[256];
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return NULL;
    for (int i = 0; i < 255 && prop.name[i]; i++) {
        name[i] = prop.name[i];
        name[i + 1] = 0;
    }
    return name;
}
