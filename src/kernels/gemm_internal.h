/*
 * gemm_internal.h - what the blocked GEMMs (gemm_portable.c in fp32,
 * gemm_bf16.c in bfloat16) share: how an output is cut into tasks, and the
 * store of a tile cut by the matrix edge. Internal to src/kernels.
 */
#ifndef CR_GEMM_INTERNAL_H
#define CR_GEMM_INTERNAL_H

/* The output cut into nic x njc independent blocks ("tasks") of at most
 * mc x nc (multiples of the register tile mr x nr), at least as many as
 * threads. A task packs its own slices of A and B and runs the whole K
 * loop, so the split decides which thread runs a tile, never what it
 * computes. */
typedef struct {
    int mc, nc, nic, njc;
} cr_gemm_plan;

cr_gemm_plan cr_gemm_plan_make(int M, int N, int nt, int mr, int nr, int mc_max, int nc_max);

/* C (mr x nr, stride ldc) = alpha * tile + beta * C (beta 0: overwrite),
 * tile rows tile_ld apart: the edge of a blocked product. */
void cr_gemm_store_edge(float *C, int ldc, int mr, int nr, const float *tile, int tile_ld,
                        float alpha, float beta);

#endif /* CR_GEMM_INTERNAL_H */
