/* fake_libcuda.c — a stand-in libcuda.so.1 that reports one device and nothing else: the loader's
 * driver probe passes, so the search for the module (beside the build, then the install path)
 * runs on machines without a driver; cudart then finds this "driver" unusable and says so. */
int cuInit(unsigned flags);
int cuDeviceGetCount(int *n);

int cuInit(unsigned flags) {
    (void)flags;
    return 0;
}

int cuDeviceGetCount(int *n) {
    *n = 1;
    return 0;
}
