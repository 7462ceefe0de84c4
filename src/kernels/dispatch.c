/*
 * dispatch.c - the one place that picks a kernel set (isa.h) and the entry
 * points of kernels.h that route through it. A call's context may name a
 * level for its thread (cr_thread_isa(), checked by cr_ctx_new); otherwise
 * the process's level is chosen once, on first use, from the CPU and
 * CROSSREC_ISA (cr_isa_default(), core), and never changes: there is no
 * setter. Tests reach the other levels through cr_kernels_for(), through a
 * context, or by running a process with CROSSREC_ISA set.
 */
#include "isa.h"
#include "kernels.h"

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

cr_status cr_kernels_check(cr_error *e) {
    const char *v = getenv("CROSSREC_ISA");
    char what[64];
    snprintf(what, sizeof what, "CROSSREC_ISA=%.40s", v ? v : "");
    cr_isa isa;
    return cr_isa_request(v, what, &isa, e);
}

/* A level set on this thread was checked when its context was made (this
 * build has it, this CPU runs it); a stray value falls back to the
 * process's set rather than to no table. */
const cr_kernel_set *cr_kernels_active(void) {
    int t = cr_thread_isa();
    const cr_kernel_set *k = t >= 0 ? cr_kernels_built((cr_isa)t) : NULL;
    return k ? k : cr_kernels_built(cr_isa_default());
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
