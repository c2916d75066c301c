/* threadpool.c — deterministic parallel loops on pthreads.
 *
 * Work over [0, n) is split into contiguous ranges fixed by (n, thread count) alone, so results
 * never depend on scheduling; callers write disjoint outputs per index.
 *  - lq_parallel_for: threads created per call (coarse work: quantizing tensors).
 *  - lq_pool: persistent workers that spin briefly, then sleep, for fine-grained loops such as
 *    the runtime's per-layer matmuls (creating threads costs ~50 µs per call, a large share of
 *    a generated token). */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

int lq_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The contiguous range of thread t among n_active over [0, n). */
static void range_of(int64_t n, int n_active, int t, int64_t *begin, int64_t *end) {
    int64_t chunk = n / n_active, extra = n % n_active;
    *begin = t * chunk + (t < extra ? t : extra);
    *end = *begin + chunk + (t < extra ? 1 : 0);
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
    for (int t = 0; t < n_threads; t++) {
        jobs[t] = (par_job){fn, ctx, 0, 0, t};
        range_of(n, n_threads, t, &jobs[t].begin, &jobs[t].end);
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

/* ---- persistent pool ---------------------------------------------------------------- */

#define SPIN_ITERATIONS 20000 /* ~tens of microseconds before a worker sleeps */

typedef struct worker_arg {
    struct lq_pool *pool;
    int index; /* 1..n_workers; the caller is 0 */
} worker_arg;

/* The current loop, written under mu before generation is bumped; workers copy it under mu. */
typedef struct pool_job {
    lq_parallel_fn fn;
    void *ctx;
    int64_t n;
    int n_active;          /* threads taking part, caller included */
    bool chunked;          /* lq_pool_run_chunks/_guided: chunks claimed by whoever is free */
    bool guided;           /* lq_pool_run_guided: chunks shrink as the work runs out */
    int64_t grain, n_chunks;
} pool_job;

struct lq_pool {
    int n_workers; /* threads besides the caller */
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake, done_cv;
    atomic_uint_fast64_t generation; /* bumped once per loop */
    atomic_int remaining;            /* static loops: workers still busy with the current loop */
    /* chunked loops: (generation << 32) | next unclaimed chunk (guided loops: next unclaimed
     * index); a claim is a compare-exchange, so a worker still holding an old generation can
     * never take a chunk of a newer loop */
    atomic_uint_fast64_t ticket;
    atomic_int_fast64_t done; /* indices of the current chunked loop finished */
    atomic_bool stop;
    worker_arg *args; /* one per worker; must outlive them */
    pool_job job;
};


static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}


/* The chunk a claim at `next` takes: a fixed grain, or (guided) a share of what is left that
 * shrinks to the grain, so the threads run out of work at nearly the same time. Both are
 * functions of the loop alone, whichever thread claims. */
static void chunk_at(const pool_job *job, int64_t next, int64_t *b, int64_t *e, int64_t *next_after) {
    if (job->guided) {
        int64_t size = (job->n - next) / (2 * (int64_t)job->n_active);
        size = size < job->grain ? job->grain : (size + job->grain - 1) / job->grain * job->grain;
        *b = next;
        *e = next + size < job->n ? next + size : job->n;
        *next_after = *e;
        return;
    }
    *b = next * job->grain;
    *e = *b + job->grain < job->n ? *b + job->grain : job->n;
    *next_after = next + 1;
}

/* Claims and runs chunks of loop `gen` until none is left (or a newer loop has started). */
static void run_chunks(lq_pool *p, const pool_job *job, uint_fast64_t gen, int thread_index) {
    int64_t end = job->guided ? job->n : job->n_chunks;
    for (;;) {
        uint_fast64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if ((t >> 32) != (gen & 0xFFFFFFFFu)) return;
        int64_t next = (int64_t)(t & 0xFFFFFFFFu), b, e, next_after;
        if (next >= end) return;
        chunk_at(job, next, &b, &e, &next_after);
        uint_fast64_t claimed = (t & ~(uint_fast64_t)0xFFFFFFFFu) | (uint_fast64_t)next_after;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, claimed, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        job->fn(job->ctx, b, e, thread_index);
        atomic_fetch_add_explicit(&p->done, e - b, memory_order_acq_rel);
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = (worker_arg *)arg;
    lq_pool *p = wa->pool;
    uint_fast64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && spins < SPIN_ITERATIONS) {
            cpu_relax();
            spins++;
        }
        if (atomic_load_explicit(&p->generation, memory_order_acquire) == seen) {
            pthread_mutex_lock(&p->mu);
            while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        /* a chunked loop does not wait for late workers, so the job may already be a newer
         * one than the generation seen: copy both together */
        pthread_mutex_lock(&p->mu);
        seen = atomic_load_explicit(&p->generation, memory_order_acquire);
        pool_job job = p->job;
        pthread_mutex_unlock(&p->mu);
        if (job.chunked) {
            if (wa->index < job.n_active) run_chunks(p, &job, seen, wa->index);
            continue; /* chunked loops count chunks, not workers */
        }
        if (wa->index < job.n_active) {
            int64_t b, e;
            range_of(job.n, job.n_active, wa->index, &b, &e);
            if (b < e) job.fn(job.ctx, b, e, wa->index);
        }
        if (atomic_fetch_sub_explicit(&p->remaining, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

lq_pool *lq_pool_create(int n_threads) {
    lq_pool *p = (lq_pool *)calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->remaining, 0);
    atomic_init(&p->stop, false);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    int want = n_threads > 1 ? n_threads - 1 : 0;
    p->threads = want ? (pthread_t *)calloc((size_t)want, sizeof(pthread_t)) : NULL;
    worker_arg *args = p->args = want ? (worker_arg *)calloc((size_t)want, sizeof(worker_arg)) : NULL;
    if (want && (!p->threads || !args)) want = 0;
    for (int i = 0; i < want; i++) {
        args[i].pool = p;
        args[i].index = i + 1;
        if (pthread_create(&p->threads[i], NULL, worker_main, &args[i]) != 0) break;
        p->n_workers++;
    }
    return p;
}

void lq_pool_run(lq_pool *p, int64_t n, int n_threads, lq_parallel_fn fn, void *ctx) {
    if (n <= 0) return;
    int n_active = n_threads < 1 ? 1 : n_threads;
    if (!p || n_active > p->n_workers + 1) n_active = p ? p->n_workers + 1 : 1;
    if (n_active > n) n_active = (int)n;
    if (n_active <= 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    atomic_store_explicit(&p->remaining, p->n_workers, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    p->job = (pool_job){fn, ctx, n, n_active, false, false, 0, 0};
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    range_of(n, n_active, 0, &b, &e);
    fn(ctx, b, e, 0);
    int spins = 0;
    while (atomic_load_explicit(&p->remaining, memory_order_acquire) > 0 && spins < SPIN_ITERATIONS) {
        cpu_relax();
        spins++;
    }
    if (atomic_load_explicit(&p->remaining, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load_explicit(&p->remaining, memory_order_acquire) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

static void run_claimed(lq_pool *p, int64_t n, int64_t grain, bool guided, int n_threads, lq_parallel_fn fn,
                        void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t n_chunks = (n + grain - 1) / grain;
    int n_active = n_threads < 1 ? 1 : n_threads;
    if (!p || n_active > p->n_workers + 1) n_active = p ? p->n_workers + 1 : 1;
    if (n_active > n_chunks) n_active = (int)n_chunks;
    if (n_active <= 1 || n >= ((int64_t)1 << 32)) {
        fn(ctx, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    uint_fast64_t gen = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    p->job = (pool_job){fn, ctx, n, n_active, true, guided, grain, n_chunks};
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->ticket, (uint_fast64_t)(gen & 0xFFFFFFFFu) << 32, memory_order_release);
    atomic_store_explicit(&p->generation, gen, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    pool_job job = p->job;
    run_chunks(p, &job, gen, 0);
    /* only chunks still running elsewhere are waited for (briefly spinning, then yielding the
     * core: on a busy machine the thread holding the chunk may be waiting for one) */
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < n) {
        if (spins++ < SPIN_ITERATIONS) cpu_relax();
        else sched_yield();
    }
}

void lq_pool_run_chunks(lq_pool *p, int64_t n, int64_t grain, int n_threads, lq_parallel_fn fn, void *ctx) {
    run_claimed(p, n, grain, false, n_threads, fn, ctx);
}

void lq_pool_run_guided(lq_pool *p, int64_t n, int64_t grain, int n_threads, lq_parallel_fn fn, void *ctx) {
    run_claimed(p, n, grain, true, n_threads, fn, ctx);
}

void lq_pool_free(lq_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->threads[i], NULL);
    free(p->args);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}
