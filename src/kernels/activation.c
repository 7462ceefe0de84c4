/*
 * activation.c - elementwise nonlinearities (ReLU, GELU-tanh, sigmoid) and
 * their gradients, over flat arrays of n values. Forward may run in place
 * (out == inp); backward adds into dinp. Never allocates, never branches on
 * shapes: a tensor is just n floats here.
 */
#include "kernels.h"

#include <math.h>

/* Elementwise work is memory-bound; threads only pay off on large arrays. */
#define CR_ACT_PAR (1 << 16)

void cr_relu_forward(float *out, const float *inp, size_t n) {
    CR_PARALLEL_FOR(n > CR_ACT_PAR)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

/* d relu(x)/dx = [x > 0] = [out > 0]: the output is enough, so the input
 * buffer can be reused in place. The kink at 0 gets gradient 0, like
 * PyTorch. */
void cr_relu_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
    CR_PARALLEL_FOR(n > CR_ACT_PAR)
    for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

/* GELU with the tanh approximation (PyTorch approximate="tanh"):
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3). */
#define CR_GELU_S 0.7978845608028654f /* sqrt(2/pi) */
#define CR_GELU_C 0.044715f

/* tanh without libm, so the GELU loops vectorise (a scalar tanhf call per
 * element was most of a Q-Former step). tanh(u) = 1 - 2 / (1 + e^{2u}),
 * with e^{2u} from 2^n * p(r): n = round(2u / ln 2), r = 2u - n ln 2 split
 * in two constants (Cody-Waite), p a degree-6 Taylor polynomial. Absolute
 * error below 2e-7 over the whole line (against libm's tanh; a test pins
 * it). |u| is clamped at 43, where 1 - tanh is below 1e-37, so e^{2u} stays
 * finite in float. Branch-free by design. */
/* Returns q = 1 - tanh(u) = 2 / (1 + e^{2u}); tanh = 1 - q, and
 * sech^2 = 1 - tanh^2 = q (2 - q) without the cancellation of 1 - t*t. */
static inline float cr_one_minus_tanh_v(float u) {
    float a = u > 43.0f ? 43.0f : (u < -43.0f ? -43.0f : u);
    float t = 2.0f * a;
    /* round to nearest by the 1.5 * 2^23 trick (|t / ln 2| < 125 here):
     * unlike roundf it vectorises */
    float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = t - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (0.0416666679f +
                  r * (0.00833333377f + r * 0.00138888892f)))));
    union { int32_t i; float f; } two_n; /* 2^n built in the exponent field */
    two_n.i = ((int32_t)n + 127) << 23;
    float e = p * two_n.f;
    return 2.0f / (1.0f + e);
}

void cr_gelu_forward(float *out, const float *inp, size_t n) {
    CR_PARALLEL_FOR(n > CR_ACT_PAR / 8)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = CR_GELU_S * (x + CR_GELU_C * x * x * x);
        out[i] = 0.5f * x * (2.0f - cr_one_minus_tanh_v(u));
    }
}

/* d/dx = 0.5 (1 + tanh u) + 0.5 x sech^2(u) du/dx,
 * du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2), sech^2 = 1 - tanh^2.
 * Needs the input, so GELU cannot run in place when training. */
void cr_gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    if (!dinp) return;
    CR_PARALLEL_FOR(n > CR_ACT_PAR / 8)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float u = CR_GELU_S * (x + CR_GELU_C * x * x * x);
        float q = cr_one_minus_tanh_v(u); /* 1 - tanh u */
        float du = CR_GELU_S * (1.0f + 3.0f * CR_GELU_C * x * x);
        float g = 0.5f * (2.0f - q) + 0.5f * x * (q * (2.0f - q)) * du;
        dinp[i] += g * dout[i];
    }
}

/* Sigmoid without overflow: exp of a negative number only, so a logit of
 * -100 gives a tiny positive value instead of 1/(1+inf) = 0 via inf. */
static inline float cr_sigmoidf(float x) {
    if (x >= 0.0f) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

void cr_sigmoid_forward(float *out, const float *inp, size_t n) {
    CR_PARALLEL_FOR(n > CR_ACT_PAR / 8)
    for (size_t i = 0; i < n; i++) out[i] = cr_sigmoidf(inp[i]);
}

/* d sigmoid/dx = s (1 - s), from the output alone. */
void cr_sigmoid_backward(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
    CR_PARALLEL_FOR(n > CR_ACT_PAR)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}
