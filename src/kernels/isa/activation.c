/*
 * activation.c - elementwise nonlinearities (ReLU, GELU-tanh, sigmoid) and
 * their gradients, over flat arrays of n values. Forward may run in place
 * (out == inp); backward adds into dinp. Never allocates, never branches on
 * shapes: a tensor is just n floats here.
 */
#include "level.h"
#include "vmath.h"

#include <math.h>

/* Elementwise work is memory-bound; threads only pay off on large arrays. */
#define CR_ACT_PAR (1 << 16)

void CR_ISA(cr_relu_forward)(float *out, const float *inp, size_t n) {
    CR_PARALLEL_FOR(n > CR_ACT_PAR)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0.0f ? inp[i] : 0.0f;
}

/* d relu(x)/dx = [x > 0] = [out > 0]: the output is enough, so the input
 * buffer can be reused in place. The kink at 0 gets gradient 0, like
 * PyTorch. */
void CR_ISA(cr_relu_backward)(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
    CR_PARALLEL_FOR(n > CR_ACT_PAR)
    for (size_t i = 0; i < n; i++) dinp[i] += out[i] > 0.0f ? dout[i] : 0.0f;
}

/* GELU with the tanh approximation (PyTorch approximate="tanh"):
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3). */
#define CR_GELU_S 0.7978845608028654f /* sqrt(2/pi) */
#define CR_GELU_C 0.044715f

/* 1 - tanh(u) = 2 / (1 + e^{2u}) with the vectorisable exp (a scalar libm
 * tanhf per element was most of a Q-Former step); tanh = 1 - q and
 * sech^2 = 1 - tanh^2 = q (2 - q), without the cancellation of 1 - t*t. A
 * test pins the error against double precision. */
static inline float cr_one_minus_tanh_v(float u) { return 2.0f / (1.0f + cr_vexpf(2.0f * u)); }

void CR_ISA(cr_gelu_forward)(float *out, const float *inp, size_t n) {
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
void CR_ISA(cr_gelu_backward)(float *dinp, const float *dout, const float *inp, size_t n) {
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

void CR_ISA(cr_sigmoid_forward)(float *out, const float *inp, size_t n) {
    CR_PARALLEL_FOR(n > CR_ACT_PAR / 8)
    for (size_t i = 0; i < n; i++) out[i] = cr_sigmoidf(inp[i]);
}

/* d sigmoid/dx = s (1 - s), from the output alone. */
void CR_ISA(cr_sigmoid_backward)(float *dinp, const float *dout, const float *out, size_t n) {
    if (!dinp) return;
    CR_PARALLEL_FOR(n > CR_ACT_PAR)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * out[i] * (1.0f - out[i]);
}
