/*
 * vmath.h - a branch-free exp for the kernels' elementwise loops. libm's
 * expf and tanhf are calls GCC will not vectorise (without -ffast-math), and
 * in GELU, SiLU, softmax and cross-entropy loops they cost more than the
 * arithmetic around them. Internal to src/kernels: not part of the API.
 */
#ifndef CR_VMATH_H
#define CR_VMATH_H

#include <stdint.h>

/* e^x for any float x (clamped to [-87, 88], where e^x stays a normal float;
 * below -87 it returns about 1.6e-38 instead of a denormal or 0). Cody-Waite
 * reduction x = n ln2 + r, |r| <= ln2/2, then a degree-6 Taylor polynomial:
 * relative error about 3e-7 (2-3 ulp). */
static inline float cr_vexpf(float x) {
    float a = x > 88.0f ? 88.0f : (x < -87.0f ? -87.0f : x);
    /* round to nearest by the 1.5 * 2^23 trick (|a / ln 2| < 128): unlike
     * roundf it vectorises */
    float n = (a * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = a - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
                  r * (0.00833333377f + r * 0.00138888892f)))));
    union { int32_t i; float f; } two_n; /* 2^n built in the exponent field */
    two_n.i = ((int32_t)n + 127) << 23;
    return p * two_n.f;
}

#endif /* CR_VMATH_H */
