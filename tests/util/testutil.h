/*
 * testutil.h - helpers shared by the cmocka tests: comparing tensors with a
 * tolerance (printing the worst element), temporary directories, and a
 * finite-difference gradient checker that accumulates in double.
 */
#ifndef CR_TESTUTIL_H
#define CR_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../src/core/core.h"

/* Max |a-b| / (atol + rtol*|b|) over n values; prints the worst element
 * with its index and both values when it exceeds 1. Returns 1 when close. */
int cr_test_close(const char *what, const float *a, const float *b, size_t n, double atol,
                  double rtol);
/* A fresh empty directory under /tmp (removed by cr_test_rmdir). */
void cr_test_tmpdir(char *out, size_t n);
void cr_test_rmdir(const char *dir);
/* Fill with U(-a, a) from a fixed-seed stream. */
void cr_test_fill(float *x, size_t n, float a, uint64_t seed);

/* Central finite differences of a scalar function f(x) around x (size n),
 * compared with the analytic gradient g. Elements where f has a kink
 * (|f(x+h) - f(x-h) - 2h*g| large only because of non-smoothness) can be
 * skipped by the caller by passing skip (NULL = check all). */
typedef double (*cr_test_fn)(void *ctx);
int cr_test_gradcheck(const char *what, cr_test_fn f, void *ctx, float *x, const float *g,
                      size_t n, double h, double tol, const uint8_t *skip);

#endif
