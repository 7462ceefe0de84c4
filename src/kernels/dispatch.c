/*
 * dispatch.c - the one place that picks a kernel set (isa.h) and the entry
 * points of kernels.h that route through it. The choice is made once, on
 * first use, from the CPU and CROSSREC_ISA, and never changes: there is no
 * setter. Tests reach the other levels through cr_kernels_for(), or by
 * running a process with CROSSREC_ISA set.
 */
#include "isa.h"
#include "kernels.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tables, one per level this build compiles (src/kernels/isa/kset.c,
 * once per level; the Makefile's ISA_LEVELS). */
extern const cr_kernel_set cr_kernels_scalar;
#if defined(__x86_64__)
extern const cr_kernel_set cr_kernels_avx2, cr_kernels_avx512, cr_kernels_avx512bf16;
#elif defined(__aarch64__)
extern const cr_kernel_set cr_kernels_neon;
#endif

static const cr_kernel_set *cr_kernels_built(cr_isa isa) {
    switch (isa) {
    case CR_ISA_SCALAR: return &cr_kernels_scalar;
#if defined(__x86_64__)
    case CR_ISA_AVX2: return &cr_kernels_avx2;
    case CR_ISA_AVX512: return &cr_kernels_avx512;
    case CR_ISA_AVX512BF16: return &cr_kernels_avx512bf16;
#elif defined(__aarch64__)
    case CR_ISA_NEON: return &cr_kernels_neon;
#endif
    default: return NULL;
    }
}

const cr_kernel_set *cr_kernels_for(cr_isa isa) {
    const cr_kernel_set *k = cr_kernels_built(isa);
    return k && cr_isa_supported(isa, NULL) ? k : NULL;
}

cr_isa cr_isa_best(void) {
    for (int i = CR_ISA_COUNT - 1; i > CR_ISA_SCALAR; i--)
        if (cr_kernels_for((cr_isa)i)) return (cr_isa)i;
    return CR_ISA_SCALAR;
}

/* What CROSSREC_ISA asks for: CR_OK and *isa (the best level when unset,
 * empty or "auto"), or an error naming what is wrong. */
static cr_status cr_kernels_requested(cr_isa *isa, cr_error *e) {
    *isa = cr_isa_best();
    const char *v = getenv("CROSSREC_ISA");
    if (!v || !*v || !strcmp(v, "auto")) return CR_OK;
    int i = cr_isa_parse(v);
    if (i < 0)
        return cr_err(e, CR_ERR_ARG,
                      "CROSSREC_ISA=%s: expected auto, scalar, avx2, avx512, avx512bf16 or neon",
                      v);
    if (!cr_kernels_built((cr_isa)i))
        return cr_err(e, CR_ERR_ARG, "CROSSREC_ISA=%s: this build has no %s kernels (%s CPUs)",
                      v, v, i == CR_ISA_NEON ? "arm64" : "x86-64");
    const char *missing = NULL;
    if (!cr_isa_supported((cr_isa)i, &missing))
        return cr_err(e, CR_ERR_ARG,
                      "CROSSREC_ISA=%s: this CPU lacks %s (it has: %s); the best it runs is %s",
                      v, missing ? missing : "a required feature", cr_cpu_features(),
                      cr_isa_name(cr_isa_best()));
    *isa = (cr_isa)i;
    return CR_OK;
}

cr_status cr_kernels_check(cr_error *e) {
    cr_isa isa;
    return cr_kernels_requested(&isa, e);
}

static const cr_kernel_set *cr_kernels_chosen;
static pthread_once_t cr_kernels_once = PTHREAD_ONCE_INIT;

static void cr_kernels_choose(void) {
    cr_isa isa;
    cr_error e = {0};
    if (cr_kernels_requested(&isa, &e) != CR_OK)
        fprintf(stderr, "crossrec: %s; using %s\n", e.msg, cr_isa_name(isa));
    cr_kernels_chosen = cr_kernels_built(isa);
}

const cr_kernel_set *cr_kernels_active(void) {
    pthread_once(&cr_kernels_once, cr_kernels_choose);
    return cr_kernels_chosen;
}

/* ---- entry points of kernels.h ------------------------------------------------ */

/* cr_<name>(...) = the active set's name(...), for every kernel of the list */
#define CR_WRAP_void(name, params, args) \
    void cr_##name params { cr_kernels_active()->name args; }
#define CR_WRAP_double(name, params, args) \
    double cr_##name params { return cr_kernels_active()->name args; }
#define CR_WRAP_float(name, params, args) \
    float cr_##name params { return cr_kernels_active()->name args; }
#define CR_WRAP(ret, name, params, args) CR_WRAP_##ret(name, params, args)
CR_KERNEL_LIST(CR_WRAP)

int cr_sgemm_bf16_native(void) { return cr_kernels_active()->bf16_native; }

const char *cr_sgemm_portable_isa(void) { return cr_kernels_active()->name; }

const char *cr_kernel_set_name(void) { return cr_kernels_active()->name; }

const char *cr_cpu_name(void) { return cr_cpu_model(); }

void cr_kernels_print(void *fp) {
    FILE *f = fp;
    const cr_kernel_set *k = cr_kernels_active();
    fprintf(f, "cpu: %s\n", cr_cpu_model());
    fprintf(f, "features: %s\n", cr_cpu_features());
    fprintf(f, "kernels: %s (gemm %s, bf16 training %s, bf16 weights %s, int8 weights %s)\n",
            k->name, cr_sgemm_backend_name(), k->bf16_native ? "native" : "fp32 products",
            k->lowp_bf16, k->lowp_int8);
    fprintf(f, "kernel sets:");
    for (int i = 0; i < CR_ISA_COUNT; i++) {
        const char *missing = NULL;
        if (cr_isa_supported((cr_isa)i, &missing)) fprintf(f, " %s", cr_isa_name((cr_isa)i));
        else if (cr_kernels_built((cr_isa)i)) /* a set of another architecture is not listed */
            fprintf(f, " %s(no %s)", cr_isa_name((cr_isa)i), missing);
    }
    fprintf(f, "\n");
}
