/*
 * ptable_io.h - a parameter table (core.h) as a safetensors checkpoint, and
 * dtype conversion of stored tensors to float. Checks every name and shape;
 * never copies a tensor into a slot of another shape.
 */
#ifndef CR_PTABLE_IO_H
#define CR_PTABLE_IO_H

#include "core.h"

/* Add every tensor of pt as F32 named prefix + name (prefix may be NULL or
 * ""). The writer copies the names and borrows the data: keep slab alive
 * until cr_st_save. */
cr_status cr_ptable_to_st(const cr_ptable *pt, const float *slab, const char *prefix,
                          cr_st_writer *w, cr_error *e);

/* Fill slab from the tensors named prefix + name in f, converting BF16, F16
 * and F64 to float. Every tensor is checked (dtype, shape, presence) before
 * anything is copied, so on failure slab is untouched. A tensor missing from
 * f is an error (CR_ERR_NOT_FOUND) unless allow_missing, which leaves its
 * values as they were. Shape: CR_ERR_SHAPE; integer dtype: CR_ERR_MISMATCH. */
cr_status cr_ptable_from_st(const cr_ptable *pt, float *slab, const char *prefix,
                            const cr_st_file *f, int allow_missing, cr_error *e);

/* Convert t->numel values to float. F32, F16, BF16 and F64 (and the integer
 * dtypes, exactly where representable); the source may be unaligned. */
void cr_st_to_f32(const cr_st_tensor *t, float *out);

#endif /* CR_PTABLE_IO_H */
