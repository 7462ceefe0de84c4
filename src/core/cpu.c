/*
 * cpu.c - what this CPU can run, and which kernel level a caller asks for
 * (CROSSREC_ISA, a context's kernels): its instruction-set features from CPUID,
 * checked against the register state the OS saves (XGETBV: a kernel that
 * does not save the upper halves of ymm/zmm registers cannot run AVX code
 * even on a CPU that has it), or from getauxval on arm64. Read once; the
 * answers never change. Compiled for the baseline ISA: nothing here may use
 * an instruction the check has not vouched for. The kernels of each level
 * are a layer up (src/kernels/isa.h); here are only their names.
 */
#include "core.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CR_CPU_X86 1
#elif defined(__aarch64__)
#include <sys/auxv.h>
#define CR_CPU_ARM64 1
#endif

/* One feature: its name and whether the CPU has it. The list is the
 * order `crossrec cpu` prints. */
#define CR_CPU_FEATURES(X)                                                                  \
    X(SSE42, "sse4.2") X(AVX, "avx") X(AVX2, "avx2") X(FMA, "fma") X(F16C, "f16c")          \
    X(OS_YMM, "os-ymm") X(AVX512F, "avx512f") X(AVX512BW, "avx512bw")                      \
    X(AVX512VL, "avx512vl") X(AVX512DQ, "avx512dq") X(AVX512BF16, "avx512_bf16")           \
    X(AVX512VNNI, "avx512_vnni") X(OS_ZMM, "os-zmm") X(ASIMD, "asimd")

#define CR_CPU_ENUM(id, str) CR_F_##id,
enum { CR_CPU_FEATURES(CR_CPU_ENUM) CR_F_COUNT };
#define CR_CPU_NAME(id, str) str,
static const char *const cr_cpu_feature_names[CR_F_COUNT] = {CR_CPU_FEATURES(CR_CPU_NAME)};

typedef struct {
    unsigned char has[CR_F_COUNT];
    char features[256];
    char model[80];
} cr_cpu_info;

static cr_cpu_info cr_cpu;
static pthread_once_t cr_cpu_once = PTHREAD_ONCE_INIT;

#if CR_CPU_X86
static uint64_t cr_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void cr_cpu_detect_x86(cr_cpu_info *c) {
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
    c->has[CR_F_SSE42] = (cx >> 20) & 1;
    c->has[CR_F_FMA] = (cx >> 12) & 1;
    c->has[CR_F_AVX] = (cx >> 28) & 1;
    c->has[CR_F_F16C] = (cx >> 29) & 1;
    int osxsave = (cx >> 27) & 1;
    uint64_t xcr0 = osxsave ? cr_xgetbv0() : 0;
    /* XCR0: bit 1 SSE, bit 2 AVX (ymm upper halves), bits 5-7 the opmask
     * registers and both halves of the zmm file */
    c->has[CR_F_OS_YMM] = (xcr0 & 0x6) == 0x6;
    c->has[CR_F_OS_ZMM] = (xcr0 & 0xE6) == 0xE6;
    unsigned maxleaf = __get_cpuid_max(0, NULL);
    if (maxleaf >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        c->has[CR_F_AVX2] = (b >> 5) & 1;
        c->has[CR_F_AVX512F] = (b >> 16) & 1;
        c->has[CR_F_AVX512DQ] = (b >> 17) & 1;
        c->has[CR_F_AVX512BW] = (b >> 30) & 1;
        c->has[CR_F_AVX512VL] = (b >> 31) & 1;
        c->has[CR_F_AVX512VNNI] = (cx >> 11) & 1;
        unsigned sub = a;
        if (sub >= 1) {
            __cpuid_count(7, 1, a, b, cx, d);
            c->has[CR_F_AVX512BF16] = (a >> 5) & 1;
        }
    }
    /* the brand string, leaves 0x80000002..4 */
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char s[49];
        memcpy(s, r, 48);
        s[48] = 0;
        const char *p = s;
        while (*p == ' ') p++;
        snprintf(c->model, sizeof c->model, "%s", p);
    }
}
#endif

static void cr_cpu_detect(void) {
    cr_cpu_info *c = &cr_cpu;
    snprintf(c->model, sizeof c->model, "unknown");
#if CR_CPU_X86
    cr_cpu_detect_x86(c);
#elif CR_CPU_ARM64
#ifdef HWCAP_ASIMD
    c->has[CR_F_ASIMD] = (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#else
    c->has[CR_F_ASIMD] = 1; /* Advanced SIMD is mandatory in armv8-a */
#endif
    snprintf(c->model, sizeof c->model, "arm64");
#endif
    size_t n = 0;
    for (int f = 0; f < CR_F_COUNT; f++) {
        if (!c->has[f]) continue;
        int w = snprintf(c->features + n, sizeof c->features - n, "%s%s", n ? " " : "",
                         cr_cpu_feature_names[f]);
        if (w < 0 || (size_t)w >= sizeof c->features - n) break;
        n += (size_t)w;
    }
}

static const cr_cpu_info *cr_cpu_get(void) {
    pthread_once(&cr_cpu_once, cr_cpu_detect);
    return &cr_cpu;
}

const char *cr_cpu_features(void) { return cr_cpu_get()->features; }
const char *cr_cpu_model(void) { return cr_cpu_get()->model; }

/* What each level needs, beyond the level below it. */
static const int cr_isa_needs[CR_ISA_COUNT][8] = {
    [CR_ISA_SCALAR] = {-1},
    [CR_ISA_AVX2] = {CR_F_AVX, CR_F_AVX2, CR_F_FMA, CR_F_OS_YMM, -1},
    [CR_ISA_AVX512] = {CR_F_AVX512F, CR_F_AVX512BW, CR_F_AVX512VL, CR_F_AVX512DQ, CR_F_OS_ZMM,
                       -1},
    [CR_ISA_AVX512BF16] = {CR_F_AVX512BF16, CR_F_AVX512VNNI, -1},
    [CR_ISA_NEON] = {CR_F_ASIMD, -1},
};

static const char *const cr_isa_names[CR_ISA_COUNT] = {
    [CR_ISA_SCALAR] = "scalar", [CR_ISA_AVX2] = "avx2",         [CR_ISA_AVX512] = "avx512",
    [CR_ISA_AVX512BF16] = "avx512bf16", [CR_ISA_NEON] = "neon",
};

const char *cr_isa_name(cr_isa isa) {
    return isa >= 0 && isa < CR_ISA_COUNT ? cr_isa_names[isa] : "?";
}

int cr_isa_parse(const char *name) {
    for (int i = 0; i < CR_ISA_COUNT; i++)
        if (!strcmp(name, cr_isa_names[i])) return i;
    return -1;
}

int cr_isa_supported(cr_isa isa, const char **missing) {
    const cr_cpu_info *c = cr_cpu_get();
    static const char *const arch_x86 = "x86-64", *const arch_arm = "arm64";
    if (isa < 0 || isa >= CR_ISA_COUNT) return 0;
#if CR_CPU_X86
    if (isa == CR_ISA_NEON) {
        if (missing) *missing = arch_arm;
        return 0;
    }
#else
    if (isa != CR_ISA_SCALAR && isa != CR_ISA_NEON) {
        if (missing) *missing = arch_x86;
        return 0;
    }
#endif
    (void)arch_x86;
    (void)arch_arm;
    /* the x86 levels stack: avx512bf16 needs avx512's features and avx2's */
    int lo = isa == CR_ISA_NEON ? CR_ISA_NEON : CR_ISA_SCALAR;
    for (int l = lo; l <= (int)isa; l++)
        for (int i = 0; cr_isa_needs[l][i] >= 0; i++)
            if (!c->has[cr_isa_needs[l][i]]) {
                if (missing) *missing = cr_cpu_feature_names[cr_isa_needs[l][i]];
                return 0;
            }
    return 1;
}

/* The levels the Makefile compiles (ISA_LEVELS), which dispatch.c's tables
 * follow: the x86-64 levels, or scalar and neon on arm64, else scalar. */
int cr_isa_built(cr_isa isa) {
    switch (isa) {
    case CR_ISA_SCALAR: return 1;
#if defined(__x86_64__)
    case CR_ISA_AVX2:
    case CR_ISA_AVX512:
    case CR_ISA_AVX512BF16: return 1;
#elif defined(__aarch64__)
    case CR_ISA_NEON: return 1;
#endif
    default: return 0;
    }
}

cr_isa cr_isa_best(void) {
    for (int i = CR_ISA_COUNT - 1; i > CR_ISA_SCALAR; i--)
        if (cr_isa_built((cr_isa)i) && cr_isa_supported((cr_isa)i, NULL)) return (cr_isa)i;
    return CR_ISA_SCALAR;
}

cr_status cr_isa_request(const char *name, const char *what, cr_isa *isa, cr_error *e) {
    *isa = cr_isa_best();
    if (!name || !*name || !strcmp(name, "auto")) return CR_OK;
    int i = cr_isa_parse(name);
    if (i < 0)
        return cr_err(e, CR_ERR_ARG, "%s: expected auto, scalar, avx2, avx512, avx512bf16 or neon",
                      what);
    if (!cr_isa_built((cr_isa)i))
        return cr_err(e, CR_ERR_ARG, "%s: this build has no %s kernels (%s CPUs)", what, name,
                      i == CR_ISA_NEON ? "arm64" : "x86-64");
    const char *missing = NULL;
    if (!cr_isa_supported((cr_isa)i, &missing))
        return cr_err(e, CR_ERR_ARG, "%s: this CPU lacks %s (it has: %s); the best it runs is %s",
                      what, missing ? missing : "a required feature", cr_cpu_features(),
                      cr_isa_name(cr_isa_best()));
    *isa = (cr_isa)i;
    return CR_OK;
}

static cr_isa cr_isa_process;
static pthread_once_t cr_isa_process_once = PTHREAD_ONCE_INIT;

static void cr_isa_choose(void) {
    const char *v = getenv("CROSSREC_ISA");
    char what[64];
    snprintf(what, sizeof what, "CROSSREC_ISA=%.40s", v ? v : "");
    cr_error e = {0};
    if (cr_isa_request(v, what, &cr_isa_process, &e) != CR_OK)
        fprintf(stderr, "crossrec: %s; using %s\n", e.msg, cr_isa_name(cr_isa_process));
}

cr_isa cr_isa_default(void) {
    pthread_once(&cr_isa_process_once, cr_isa_choose);
    return cr_isa_process;
}
