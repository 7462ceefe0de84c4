/*
 * level.h - what every file of src/kernels/isa/ includes first. Each of
 * those files is compiled once per instruction-set level (the Makefile's
 * ISA_LEVELS), with that level's target flags and -DCR_ISA_LEVEL=<name>
 * -DCR_ISA_ID=<cr_isa>; CR_ISA(f) names f's copy for the level being
 * compiled (cr_sgemm_tiled_avx2, ...). A level's functions call only each
 * other and ISA-independent code (compiled for the baseline), never an
 * entry point of kernels.h that dispatches, so a set taken from
 * cr_kernels_for() runs that level's code throughout. The table of the
 * level is in kset.c.
 */
#ifndef CR_ISA_LEVEL_H
#define CR_ISA_LEVEL_H

#ifndef CR_ISA_LEVEL
#error "src/kernels/isa/*.c is compiled once per ISA level (see ISA_LEVELS in the Makefile)"
#endif

#include "../isa.h"
#include "../kernels.h"

#define CR_ISA_CAT_(a, b) a##_##b
#define CR_ISA_CAT(a, b) CR_ISA_CAT_(a, b)
#define CR_ISA(name) CR_ISA_CAT(name, CR_ISA_LEVEL)

/* CR_NEON: this is the neon level, whose files take their Advanced SIMD
 * paths (arm_neon.h intrinsics). Advanced SIMD is part of armv8-a, so the
 * scalar level sees __ARM_NEON too; it keeps the plain C (auto-vectorised,
 * with unfused products like the x86 scalar level) so CROSSREC_ISA=scalar
 * means the same code on both architectures. */
#define CR_ISA_IS_neon 1
#if defined(__aarch64__) && defined(__ARM_NEON) && CR_ISA_CAT(CR_ISA_IS, CR_ISA_LEVEL)
#define CR_NEON 1
#include <arm_neon.h>
#else
#define CR_NEON 0
#endif

/* Whether this level multiplies bf16 pairs natively (VDPBF16PS); where it
 * does not, the bf16 training GEMM is the fp32 one. */
#if defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512F__)
#define CR_ISA_BF16_NATIVE 1
#else
#define CR_ISA_BF16_NATIVE 0
#endif

/* Which layers the serving path on reduced-precision weights runs widened
 * to fp32 on this level (cr_kernel_set.lowp_bf16_wide and
 * lowp_int8_wide_below; the measurements behind them in docs/kernels.md,
 * "Reduced precision on every set"). AVX-512: the bf16 and int8 kernels,
 * native or not, are even with or faster than the widened path everywhere.
 * AVX2: bf16 pairs widened in registers cost more than the fp32 tile; the
 * VPMADDUBSW int8 kernel wins from 64 inputs up. scalar and NEON: no
 * faster reduced product than the fp32 one (NEON by the same argument as
 * AVX2, not timed: qemu only). */
#if defined(__AVX512F__)
#define CR_ISA_LOWP_BF16_WIDE 0
#define CR_ISA_LOWP_INT8_WIDE_BELOW 0
#elif defined(__AVX2__) && defined(__FMA__)
#define CR_ISA_LOWP_BF16_WIDE 1
#define CR_ISA_LOWP_INT8_WIDE_BELOW 64
#else
#define CR_ISA_LOWP_BF16_WIDE 1
#define CR_ISA_LOWP_INT8_WIDE_BELOW INT_MAX
#endif

/* This level's kernels (contracts in kernels.h). */
#define CR_ISA_DECL(ret, name, params, args) ret CR_ISA(cr_##name) params;
CR_KERNEL_LIST(CR_ISA_DECL)
extern const char CR_ISA(cr_lowp_bf16_how)[], CR_ISA(cr_lowp_int8_how)[];

#endif /* CR_ISA_LEVEL_H */
