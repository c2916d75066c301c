/* threadpool.c — deterministic row-parallel loops on pthreads.
 * Work is split into contiguous index ranges fixed by (n, n_threads) alone, so results never
 * depend on scheduling; callers write disjoint outputs per index. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

int lq_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

typedef struct par_job {
    lq_parallel_fn fn;
    void *ctx;
    int64_t begin, end;
    int index;
} par_job;

static void *par_worker(void *arg) {
    par_job *job = (par_job *)arg;
    job->fn(job->ctx, job->begin, job->end, job->index);
    return NULL;
}

void lq_parallel_for(int64_t n, int n_threads, lq_parallel_fn fn, void *ctx) {
    if (n <= 0) return;
    if (n_threads <= 0) n_threads = lq_n_cpus();
    if (n_threads > n) n_threads = (int)n;
    if (n_threads <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    par_job *jobs = (par_job *)calloc((size_t)n_threads, sizeof *jobs);
    pthread_t *tids = (pthread_t *)calloc((size_t)n_threads, sizeof *tids);
    bool *started = (bool *)calloc((size_t)n_threads, sizeof *started);
    if (!jobs || !tids || !started) { /* no memory for threads: same result on one thread */
        free(jobs);
        free(tids);
        free(started);
        fn(ctx, 0, n, 0);
        return;
    }
    int64_t chunk = n / n_threads, extra = n % n_threads, at = 0;
    for (int t = 0; t < n_threads; t++) {
        int64_t len = chunk + (t < extra ? 1 : 0);
        jobs[t] = (par_job){fn, ctx, at, at + len, t};
        at += len;
    }
    /* thread 0's share runs on the caller; a failed pthread_create runs inline */
    for (int t = 1; t < n_threads; t++)
        started[t] = pthread_create(&tids[t], NULL, par_worker, &jobs[t]) == 0;
    par_worker(&jobs[0]);
    for (int t = 1; t < n_threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            par_worker(&jobs[t]);
    }
    free(started);
    free(jobs);
    free(tids);
}
