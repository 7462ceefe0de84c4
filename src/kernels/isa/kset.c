/*
 * kset.c - the table of one instruction-set level: compiled once per level
 * like every file here, it gathers that level's kernels into the immutable
 * cr_kernel_set that dispatch.c chooses among (cr_kernels_scalar,
 * cr_kernels_avx2, ...). Nothing else: no code, no state.
 */
#include "level.h"

#include <limits.h>

#define CR_ISA_STR_(x) #x
#define CR_ISA_STR(x) CR_ISA_STR_(x)

const cr_kernel_set CR_ISA(cr_kernels) = {
    .isa = CR_ISA_ID,
    .name = CR_ISA_STR(CR_ISA_LEVEL),
    .bf16_native = CR_ISA_BF16_NATIVE,
    .lowp_bf16 = CR_ISA(cr_lowp_bf16_how),
    .lowp_int8 = CR_ISA(cr_lowp_int8_how),
    .lowp_bf16_wide = CR_ISA_LOWP_BF16_WIDE,
    .lowp_int8_wide_below = CR_ISA_LOWP_INT8_WIDE_BELOW,
#define CR_ISA_INIT(ret, name, params, args) .name = CR_ISA(cr_##name),
    CR_KERNEL_LIST(CR_ISA_INIT)
};
