/*
 * threads.c - the thread count for kernels and GEMM. OpenMP's setting is
 * process-wide by nature; this is the one place that sets it. The GEMM seam
 * reads cr_get_threads() on each call and tells its backend, so the two
 * never oversubscribe the cores.
 */
#include "core.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* omp_get_num_procs counts the CPUs of the process's affinity mask. */
int cr_threads_available(void) {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}

void cr_set_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = cr_threads_available();
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

int cr_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
