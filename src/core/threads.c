/*
 * threads.c - the thread count for kernels and GEMM, and the calling
 * thread's kernel level. OpenMP's setting is per calling thread (an ICV of
 * its task); this is the one place that sets it. The GEMM seam
 * reads cr_get_threads() on each call and tells its backend, so the two
 * never oversubscribe the cores. The default count is what this process may
 * really use: the CPUs of its affinity mask, capped by its cgroup's CPU
 * quota (a container limited to 1.5 CPUs gets 2 threads, not the host's 64).
 */
#define _GNU_SOURCE
#include "core.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef _OPENMP /* without OpenMP one thread runs, whatever the CPUs */
/* CPUs in this process's affinity mask (taskset, cpuset), else online CPUs. */
static int affinity_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* quota / period of the first file that has them, or 0 (no limit, unknown).
 * cgroup v2: cpu.max holds "QUOTA PERIOD" or "max PERIOD"; v1 keeps them in
 * cpu.cfs_quota_us (-1 = none) and cpu.cfs_period_us. */
static double read_quota(const char *dir) {
    char path[512], buf[128];
    double q = 0, p = 0;
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(buf, sizeof buf, f) && strncmp(buf, "max", 3) != 0 &&
            sscanf(buf, "%lf %lf", &q, &p) == 2 && q > 0 && p > 0) {
            fclose(f);
            return q / p;
        }
        fclose(f);
        return 0;
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if ((f = fopen(path, "r"))) {
        int ok = fscanf(f, "%lf", &q) == 1;
        fclose(f);
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
        if (ok && q > 0 && (f = fopen(path, "r"))) {
            ok = fscanf(f, "%lf", &p) == 1;
            fclose(f);
            if (ok && p > 0) return q / p;
        }
    }
    return 0;
}

/* The CPU quota of this process's cgroup in CPUs (1.5 = 150 ms per 100 ms),
 * or 0 for none. Looks in the process's own cgroup (from /proc/self/cgroup)
 * and at the mount root, which is the own cgroup inside a container. */
static double cgroup_quota(void) {
    double best = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    char line[1024], dir[1600];
    while (f && fgets(line, sizeof line, f)) {
        /* "0::/path" (v2) or "N:cpu,cpuacct:/path" (v1) */
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        char *rel = c2 + 1;
        rel[strcspn(rel, "\n")] = 0;
        const char *ctl = c1 + 1;
        if (!ctl[0]) snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", rel);
        else if (strstr(ctl, "cpu") && !strstr(ctl, "cpuset"))
            snprintf(dir, sizeof dir, "/sys/fs/cgroup/%s%s", ctl, rel);
        else continue;
        double q = read_quota(dir);
        if (q > 0 && (best == 0 || q < best)) best = q;
    }
    if (f) fclose(f);
    static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/cpu",
                                        "/sys/fs/cgroup/cpu,cpuacct"};
    for (size_t i = 0; i < sizeof roots / sizeof roots[0]; i++) {
        double q = read_quota(roots[i]);
        if (q > 0 && (best == 0 || q < best)) best = q;
    }
    return best;
}

static int available;
static pthread_once_t available_once = PTHREAD_ONCE_INIT;

static void count_available(void) {
    int n = affinity_cpus();
    double q = cgroup_quota();
    if (q > 0 && ceil(q) < n) n = (int)ceil(q);
    available = n < 1 ? 1 : n;
}

#endif

/* Counted once per process: every library call with threads 0 asks, and a
 * request must not read /proc and /sys each time. */
int cr_threads_available(void) {
#ifndef _OPENMP
    return 1; /* one thread is all a build without OpenMP runs */
#else
    pthread_once(&available_once, count_available);
    return available;
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

/* The calling thread's kernel level (core.h): -1 until a call's context
 * names one. A thread-local, not a global: two calls on two threads each
 * keep their own. */
static _Thread_local int cr_thread_isa_level = -1;

int cr_thread_isa(void) { return cr_thread_isa_level; }

void cr_set_thread_isa(int isa) { cr_thread_isa_level = isa >= 0 && isa < CR_ISA_COUNT ? isa : -1; }
