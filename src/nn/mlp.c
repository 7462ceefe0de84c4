/*
 * mlp.c - stacks of Linear + ReLU layers over a parameter table: one stack
 * (shared bottoms, task towers) or a bank of E stacks side by side (the
 * experts of MMoE and PLE, first layers stacked into one wide GEMM, outputs
 * laid out (B, E, H) for cr_moe_mix_*). Registers tensors, initialises them
 * like PyTorch's nn.Linear, runs forward and backward through the kernels;
 * it must never allocate or own memory.
 *
 * Legend: B batch rows, C input width, E experts, H layer width.
 */
#include "nn.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

float *cr_nn_ptr(const cr_ptable *pt, float *slab, int idx) {
    if (!slab || idx < 0) return NULL;
    return cr_ptable_ptr(pt, slab, idx);
}

/* The gradient slot of a tensor, or NULL when it is frozen: the kernels
 * then skip the weight-gradient GEMM entirely. */
float *cr_nn_grad(const cr_ptable *pt, float *grads, int idx) {
    if (!grads || idx < 0 || (pt->t[idx].flags & CR_PARAM_FROZEN)) return NULL;
    return cr_ptable_ptr(pt, grads, idx);
}

void cr_nn_init_linear(const cr_ptable *pt, float *params, int w, int b, int fan_in,
                       cr_rng *r) {
    CR_ASSERT(fan_in > 0);
    float a = (float)(1.0 / sqrt((double)fan_in));
    if (w >= 0) cr_rng_fill_uniform(r, cr_ptable_ptr(pt, params, w), pt->t[w].numel, a);
    if (b >= 0) cr_rng_fill_uniform(r, cr_ptable_ptr(pt, params, b), pt->t[b].numel, a);
}

/* Register one tensor, turning the table's -1 (out of memory) into a status
 * and a duplicate name into a config error. */
cr_status cr_nn_add(cr_ptable *pt, int *idx, const char *name, int ndim,
                           const int64_t *shape, int flags, cr_error *e) {
    if (cr_ptable_find(pt, name) >= 0)
        return cr_err(e, CR_ERR_CONFIG, "parameter '%s' is registered twice", name);
    *idx = cr_ptable_add(pt, name, ndim, shape, flags);
    if (*idx < 0) return cr_err(e, CR_ERR_NOMEM, "out of memory registering '%s'", name);
    return CR_OK;
}

cr_status cr_nn_check_dims(const char *prefix, int in_dim, int n_layers,
                                  const int *dims, int min_layers, cr_error *e) {
    if (in_dim < 1)
        return cr_err(e, CR_ERR_CONFIG, "%s: input width %d must be >= 1", prefix, in_dim);
    if (n_layers < min_layers || n_layers > CR_NN_MAX_LAYERS)
        return cr_err(e, CR_ERR_CONFIG, "%s: %d layers, expected %d to %d", prefix, n_layers,
                      min_layers, CR_NN_MAX_LAYERS);
    for (int i = 0; i < n_layers; i++)
        if (dims[i] < 1)
            return cr_err(e, CR_ERR_CONFIG, "%s: layer %d has width %d, expected >= 1", prefix,
                          i, dims[i]);
    return CR_OK;
}

cr_status cr_mlp_register(cr_mlp *m, cr_ptable *pt, const char *prefix, int in_dim,
                          int n_layers, const int *dims, cr_error *e) {
    memset(m, 0, sizeof *m);
    CR_TRY(cr_nn_check_dims(prefix, in_dim, n_layers, dims, 0, e));
    m->n_layers = n_layers;
    m->in_dim = in_dim;
    char name[CR_MAX_NAME];
    int prev = in_dim;
    for (int i = 0; i < n_layers; i++) {
        m->dims[i] = dims[i];
        int64_t ws[2] = {dims[i], prev}, bs[1] = {dims[i]};
        snprintf(name, sizeof name, "%s.l%d.weight", prefix, i);
        CR_TRY(cr_nn_add(pt, &m->w[i], name, 2, ws, 0, e));
        snprintf(name, sizeof name, "%s.l%d.bias", prefix, i);
        CR_TRY(cr_nn_add(pt, &m->b[i], name, 1, bs, CR_PARAM_NO_DECAY, e));
        prev = dims[i];
    }
    return CR_OK;
}

void cr_mlp_init(const cr_mlp *m, const cr_ptable *pt, float *params, cr_rng *r) {
    int prev = m->in_dim;
    for (int i = 0; i < m->n_layers; i++) {
        cr_nn_init_linear(pt, params, m->w[i], m->b[i], prev, r);
        prev = m->dims[i];
    }
}

size_t cr_mlp_act_width(const cr_mlp *m) {
    size_t s = 0;
    for (int i = 0; i < m->n_layers; i++) s += (size_t)m->dims[i];
    return s;
}

int cr_mlp_out_dim(const cr_mlp *m) {
    return m->n_layers ? m->dims[m->n_layers - 1] : m->in_dim;
}

int cr_mlp_max_width(const cr_mlp *m) {
    int w = 0;
    for (int i = 0; i < m->n_layers; i++) w = m->dims[i] > w ? m->dims[i] : w;
    return w;
}

/* Block of layer i inside acts. */
static float *cr_mlp_layer(const cr_mlp *m, float *acts, int cap_B, int i) {
    size_t off = 0;
    for (int j = 0; j < i; j++) off += (size_t)m->dims[j];
    return acts + (size_t)cap_B * off;
}

float *cr_mlp_out(const cr_mlp *m, float *acts, int cap_B) {
    CR_ASSERT(m->n_layers > 0);
    return cr_mlp_layer(m, acts, cap_B, m->n_layers - 1);
}

void cr_mlp_forward(const cr_mlp *m, const cr_nn_weights *W, float *acts, const float *inp,
                    int ldi, int B, int cap_B, int r0, int first) {
    CR_ASSERT(r0 >= 0 && r0 + B <= cap_B && first >= 0);
    const float *x = inp;
    int ld = ldi;
    if (first > 0 && first <= m->n_layers) {
        x = cr_mlp_layer(m, acts, cap_B, first - 1) + (size_t)r0 * m->dims[first - 1];
        ld = m->dims[first - 1];
    }
    for (int i = first; i < m->n_layers; i++) {
        int H = m->dims[i];
        float *h = cr_mlp_layer(m, acts, cap_B, i) + (size_t)r0 * H;
        /* ReLU in place: backward needs only the output ([h > 0] = [pre > 0]). */
        cr_nn_linear(W, m->w[i], m->b[i], 0, h, x, B, ld, H, 1);
        x = h;
        ld = H;
    }
}

/* Layer i, with h = relu(a), a = x W^T + b and g = dL/dh (in dacts):
 *   dL/da = g * [h > 0]                    (into the zeroed scratch dpre)
 *   dL/dW += (dL/da)^T x,  dL/db += sum_rows dL/da,  dL/dx += dL/da W
 * and dL/dx is the g of layer i-1 (or dinp for layer 0). */
void cr_mlp_backward(const cr_mlp *m, const cr_ptable *pt, const float *params, float *grads,
                     float *dinp, float *dacts, float *dpre, const float *acts,
                     const float *inp, int ldi, int B, int cap_B) {
    CR_ASSERT(B <= cap_B);
    float *P = (float *)params;
    float *A = (float *)acts;
    for (int i = m->n_layers - 1; i >= 0; i--) {
        int H = m->dims[i];
        size_t n = (size_t)B * H;
        const float *h = cr_mlp_layer(m, A, cap_B, i);
        const float *g = cr_mlp_layer(m, dacts, cap_B, i);
        memset(dpre, 0, n * sizeof *dpre);
        cr_relu_backward(dpre, g, h, n);
        const float *x = i ? cr_mlp_layer(m, A, cap_B, i - 1) : inp;
        float *dx = i ? cr_mlp_layer(m, dacts, cap_B, i - 1) : dinp;
        int C = i ? m->dims[i - 1] : m->in_dim;
        int ld = i ? m->dims[i - 1] : ldi;
        cr_linear_backward(dx, cr_nn_grad(pt, grads, m->w[i]), cr_nn_grad(pt, grads, m->b[i]),
                           dpre, x, cr_ptable_ptr(pt, P, m->w[i]), B, C, H, ld, H);
    }
}

/* ---- experts ------------------------------------------------------------------- */

cr_status cr_experts_register(cr_experts *x, cr_ptable *pt, const char *prefix, int E,
                              int in_dim, int n_layers, const int *dims, cr_error *e) {
    memset(x, 0, sizeof *x);
    if (E < 1) return cr_err(e, CR_ERR_CONFIG, "%s: %d experts, expected >= 1", prefix, E);
    CR_TRY(cr_nn_check_dims(prefix, in_dim, n_layers, dims, 1, e));
    x->E = E;
    x->n_layers = n_layers;
    x->in_dim = in_dim;
    char name[CR_MAX_NAME];
    for (int i = 0; i < n_layers; i++) {
        x->dims[i] = dims[i];
        snprintf(name, sizeof name, "%s.l%d.weight", prefix, i);
        if (i == 0) {
            /* stacked: rows e*H0 .. (e+1)*H0-1 are expert e's first layer */
            int64_t ws[2] = {(int64_t)E * dims[0], in_dim};
            CR_TRY(cr_nn_add(pt, &x->w[0], name, 2, ws, 0, e));
        } else {
            int64_t ws[3] = {E, dims[i], dims[i - 1]};
            CR_TRY(cr_nn_add(pt, &x->w[i], name, 3, ws, 0, e));
        }
        snprintf(name, sizeof name, "%s.l%d.bias", prefix, i);
        int64_t bs[2] = {E, dims[i]};
        if (i == 0) {
            int64_t b0[1] = {(int64_t)E * dims[0]};
            CR_TRY(cr_nn_add(pt, &x->b[0], name, 1, b0, CR_PARAM_NO_DECAY, e));
        } else {
            CR_TRY(cr_nn_add(pt, &x->b[i], name, 2, bs, CR_PARAM_NO_DECAY, e));
        }
    }
    return CR_OK;
}

void cr_experts_init(const cr_experts *x, const cr_ptable *pt, float *params, cr_rng *r) {
    int prev = x->in_dim;
    for (int i = 0; i < x->n_layers; i++) {
        /* every expert's layer i has fan-in dims[i-1] (or in_dim), stacked or not */
        cr_nn_init_linear(pt, params, x->w[i], x->b[i], prev, r);
        prev = x->dims[i];
    }
}

size_t cr_experts_act_width(const cr_experts *x) {
    size_t s = 0;
    for (int i = 0; i < x->n_layers; i++) s += (size_t)x->E * x->dims[i];
    return s;
}

int cr_experts_max_width(const cr_experts *x) {
    int w = 0;
    for (int i = 0; i < x->n_layers; i++) w = x->E * x->dims[i] > w ? x->E * x->dims[i] : w;
    return w;
}

static float *cr_experts_layer(const cr_experts *x, float *acts, int cap_B, int i) {
    size_t off = 0;
    for (int j = 0; j < i; j++) off += (size_t)x->E * x->dims[j];
    return acts + (size_t)cap_B * off;
}

float *cr_experts_out(const cr_experts *x, float *acts, int cap_B) {
    return cr_experts_layer(x, acts, cap_B, x->n_layers - 1);
}

/* Layer 0 is one (B, C) @ (C, E*H0) GEMM. Layer i > 0 is E GEMMs, expert e
 * reading the column slice [e*H_{i-1}, (e+1)*H_{i-1}) of the previous block
 * (row stride E*H_{i-1}) and writing its slice of the next, so the (B, E, H)
 * layout is kept without any copy. */
void cr_experts_forward(const cr_experts *x, const cr_nn_weights *W, float *acts,
                        const float *inp, int ldi, int B, int cap_B, int r0, int first) {
    CR_ASSERT(r0 >= 0 && r0 + B <= cap_B && first >= 0);
    const int E = x->E;
    for (int i = first; i < x->n_layers; i++) {
        int H = x->dims[i];
        float *h = cr_experts_layer(x, acts, cap_B, i) + (size_t)r0 * E * H;
        if (i == 0) {
            cr_nn_linear(W, x->w[i], x->b[i], 0, h, inp, B, ldi, E * H, 1);
        } else {
            int Hp = x->dims[i - 1];
            const float *prev = cr_experts_layer(x, acts, cap_B, i - 1) + (size_t)r0 * E * Hp;
            /* the packed kernel fuses the ReLU; otherwise one pass over the
             * whole (B, E*H) block after all experts (per-row passes over a
             * column slice cost more than the layer on small batches) */
            cr_weight w0 = cr_nn_weight(W, x->w[i], -1, 0, NULL);
            int fused = cr_linear_fuses_relu(&w0);
            for (int ex = 0; ex < E; ex++)
                cr_nn_linear(W, x->w[i], x->b[i], ex, h + (size_t)ex * H, prev + (size_t)ex * Hp,
                             B, E * Hp, E * H, fused);
            if (!fused) cr_relu_forward(h, h, (size_t)B * E * H);
        }
    }
}

/* The MLP derivation per expert; the ReLU step runs over all experts'
 * columns at once because the (B, E*H) block is contiguous. Layer 0's
 * weight gradient is one GEMM over the stacked weight, and its input
 * gradient sums every expert's contribution in that same GEMM. */
void cr_experts_backward(const cr_experts *x, const cr_ptable *pt, const float *params,
                         float *grads, float *dinp, float *dacts, float *dpre,
                         const float *acts, const float *inp, int ldi, int B, int cap_B) {
    CR_ASSERT(B <= cap_B);
    float *P = (float *)params;
    float *A = (float *)acts;
    const int E = x->E;
    for (int i = x->n_layers - 1; i >= 0; i--) {
        int H = x->dims[i];
        size_t n = (size_t)B * E * H;
        const float *h = cr_experts_layer(x, A, cap_B, i);
        const float *g = cr_experts_layer(x, dacts, cap_B, i);
        memset(dpre, 0, n * sizeof *dpre);
        cr_relu_backward(dpre, g, h, n);
        const float *W = cr_ptable_ptr(pt, P, x->w[i]);
        float *dW = cr_nn_grad(pt, grads, x->w[i]);
        float *db = cr_nn_grad(pt, grads, x->b[i]);
        if (i == 0) {
            cr_linear_backward(dinp, dW, db, dpre, inp, W, B, x->in_dim, E * H, ldi, E * H);
        } else {
            int Hp = x->dims[i - 1];
            const float *prev = cr_experts_layer(x, A, cap_B, i - 1);
            float *dprev = cr_experts_layer(x, dacts, cap_B, i - 1);
            for (int ex = 0; ex < E; ex++)
                cr_linear_backward(dprev + (size_t)ex * Hp,
                                   dW ? dW + (size_t)ex * H * Hp : NULL,
                                   db ? db + (size_t)ex * H : NULL, dpre + (size_t)ex * H,
                                   prev + (size_t)ex * Hp, W + (size_t)ex * H * Hp, B, Hp, H,
                                   E * Hp, E * H);
        }
    }
}
