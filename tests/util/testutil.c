/*
 * testutil.c - shared test helpers; see testutil.h. Test-only code: it may
 * print, and it never ships in the library.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cr_test_close(const char *what, const float *a, const float *b, size_t n, double atol,
                  double rtol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double r = d / (atol + rtol * fabs((double)b[i]));
        if (!(r <= worst)) { /* also catches NaN */
            worst = r;
            wi = i;
            if (isnan(r)) break;
        }
    }
    if (!(worst <= 1.0)) {
        fprintf(stderr, "%s: mismatch at [%zu]: got %.9g expected %.9g (ratio %.3g of tol)\n",
                what, wi, (double)a[wi], (double)b[wi], worst);
        return 0;
    }
    return 1;
}

void cr_test_tmpdir(char *out, size_t n) {
    snprintf(out, n, "/tmp/crossrec-test-XXXXXX");
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        abort();
    }
}

void cr_test_rmdir(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

void cr_test_fill(float *x, size_t n, float a, uint64_t seed) {
    cr_rng r;
    cr_rng_seed(&r, seed);
    cr_rng_fill_uniform(&r, x, n, a);
}

int cr_test_gradcheck(const char *what, cr_test_fn f, void *ctx, float *x, const float *g,
                      size_t n, double h, double tol, const uint8_t *skip) {
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        float x0 = x[i];
        x[i] = (float)(x0 + h);
        double fp = f(ctx);
        x[i] = (float)(x0 - h);
        double fm = f(ctx);
        x[i] = x0;
        double num = (fp - fm) / (2 * h);
        double err = fabs(num - g[i]) / (1e-3 + fabs(num) + fabs(g[i]));
        if (!(err <= tol)) {
            fprintf(stderr, "%s: grad[%zu] analytic %.7g numeric %.7g (rel err %.3g)\n", what, i,
                    (double)g[i], num, err);
            ok = 0;
        }
    }
    return ok;
}
