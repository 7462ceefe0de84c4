/*
 * optim.c - optimizers over parameter slabs: dense Adam/AdamW/SGD in one
 * flat loop per tensor, row-sparse Adagrad / lazy Adam / SGD for embedding
 * tables, the learning-rate schedule and global gradient-norm clipping.
 * Every update reproduces PyTorch 1.13's arithmetic (same order of float
 * operations, scalars computed in double then rounded to float as torch
 * does); nothing here allocates during a step or depends on thread count.
 */
#include "optim.h"
#include "../kernels/kernels.h" /* CR_PARALLEL_FOR */

#include <math.h>
#include <string.h>

/* Below this many floats a parallel region costs more than it saves. */
#define CR_OPT_PAR_MIN 32768

/* torch's CPU kernels compute `x + alpha*y` (add_ with alpha) and
 * `x + s*a*b` (addcmul_) with one fused multiply-add on FMA hardware, so we
 * do too: with it the twin test matches PyTorch bit for bit. Without FMA
 * hardware fmaf would be a slow library call; the unfused form then differs
 * from torch by an ulp or so. The places that fuse must be exactly the ones
 * written CR_FMA: gcc does not contract in ISO C mode, and clang is told not
 * to (its default contracts a*b + c inside one expression). */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#if defined(FP_FAST_FMAF) || defined(__FMA__)
#define CR_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define CR_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* ---- sparse gradients ------------------------------------------------------ */

cr_status cr_sparse_grad_init(cr_sparse_grad *g, int cap, int D, cr_error *e) {
    memset(g, 0, sizeof *g);
    if (cap < 1 || D < 1)
        return cr_err(e, CR_ERR_ARG,
                      "sparse gradient: capacity %d and width %d must both be >= 1", cap, D);
    g->rows = cr_alloc_e((size_t)cap * sizeof *g->rows, e, "sparse gradient row ids");
    if (!g->rows) return CR_ERR_NOMEM;
    g->vals = cr_alloc_e((size_t)cap * (size_t)D * sizeof *g->vals, e,
                         "sparse gradient values");
    if (!g->vals) {
        cr_free(g->rows);
        g->rows = NULL;
        return CR_ERR_NOMEM;
    }
    g->cap = cap;
    g->D = D;
    return CR_OK;
}

void cr_sparse_grad_free(cr_sparse_grad *g) {
    if (!g) return;
    cr_free(g->rows);
    cr_free(g->vals);
    memset(g, 0, sizeof *g);
}

/* ---- dense optimizers ------------------------------------------------------- */

/* Tensors the dense optimizer owns: not frozen, not a sparse table. */
static int cr_dense_owned(const cr_tensor_info *ti) {
    return !(ti->flags & (CR_PARAM_FROZEN | CR_PARAM_SPARSE));
}

cr_status cr_adam_init(cr_adam *o, const cr_ptable *pt, cr_dense_opt_kind kind, float lr,
                       float beta1, float beta2, float eps, float weight_decay, cr_error *e) {
    memset(o, 0, sizeof *o);
    if (kind != CR_OPT_ADAM && kind != CR_OPT_ADAMW && kind != CR_OPT_SGD)
        return cr_err(e, CR_ERR_ARG, "optimizer kind %d: expected adam (0), adamw (1) or sgd (2)",
                      (int)kind);
    if (!(lr >= 0.0f) || !isfinite(lr))
        return cr_err(e, CR_ERR_ARG, "learning rate %g: expected a finite value >= 0", (double)lr);
    if (!(weight_decay >= 0.0f) || !isfinite(weight_decay))
        return cr_err(e, CR_ERR_ARG, "weight decay %g: expected a finite value >= 0",
                      (double)weight_decay);
    if (kind != CR_OPT_SGD) {
        /* torch.optim.Adam rejects the same ranges */
        if (!(beta1 >= 0.0f && beta1 < 1.0f))
            return cr_err(e, CR_ERR_ARG, "beta1 %g: expected 0 <= beta1 < 1", (double)beta1);
        if (!(beta2 >= 0.0f && beta2 < 1.0f))
            return cr_err(e, CR_ERR_ARG, "beta2 %g: expected 0 <= beta2 < 1", (double)beta2);
        if (!(eps >= 0.0f) || !isfinite(eps))
            return cr_err(e, CR_ERR_ARG, "eps %g: expected a finite value >= 0", (double)eps);
    }
    o->kind = kind;
    o->lr = lr;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->weight_decay = weight_decay;
    o->t = 0;
    o->n = pt->total;
    if (kind == CR_OPT_SGD || o->n == 0) return CR_OK; /* plain SGD keeps no state */
    /* The moment slabs mirror the parameter slab so a tensor's moments sit at
     * the same offset; frozen and sparse ranges just stay zero. */
    o->m = cr_alloc_e(o->n * sizeof(float), e, "Adam first moments");
    if (!o->m) return CR_ERR_NOMEM;
    o->v = cr_alloc_e(o->n * sizeof(float), e, "Adam second moments");
    if (!o->v) {
        cr_free(o->m);
        o->m = NULL;
        return CR_ERR_NOMEM;
    }
    return CR_OK;
}

void cr_adam_free(cr_adam *o) {
    if (!o) return;
    cr_free(o->m);
    cr_free(o->v);
    memset(o, 0, sizeof *o);
}

/* torch.optim.SGD(momentum=0): g += wd*p (L2), then p -= lr*g. */
static void cr_sgd_tensor(float *p, const float *g, size_t n, float lr, float wd) {
    const float alpha = -lr;
CR_PARALLEL_FOR(n >= CR_OPT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        if (wd != 0.0f) gi = CR_FMA(wd, p[i], gi);
        p[i] = CR_FMA(alpha, gi, p[i]);
    }
}

/* One tensor of Adam or AdamW (torch 1.13 _single_tensor_adam[w]):
 *   AdamW: p *= 1 - lr*wd                 (decoupled decay, before the moments)
 *   Adam:  g += wd*p                      (L2 decay folded into the gradient)
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g
 *   p += -(lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps),  bcK = 1 - bK^t
 * Note eps is added after dividing sqrt(v) by sqrt(bc2), as torch does. */
/* The loop body with the weight-decay mode as a compile-time constant:
 * a branch inside the loop keeps GCC from vectorising it. */
static inline __attribute__((always_inline)) void
cr_adam_loop(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
             size_t n, int mode, float wd, float b1, float b2, float omb1, float omb2,
             float decay_mul, float bc2_sqrt, float eps, float neg_step) {
CR_PARALLEL_FOR(n >= CR_OPT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float pi = p[i], gi = g[i];
        if (mode == 1) pi = pi * decay_mul;          /* AdamW: decoupled */
        else if (mode == 2) gi = CR_FMA(wd, pi, gi); /* Adam: L2 into the gradient */
        float mi = CR_FMA(omb1, gi, m[i] * b1);
        float vi = CR_FMA(omb2 * gi, gi, v[i] * b2);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi + neg_step * mi / denom;
    }
}

static void cr_adam_tensor(float *p, const float *g, float *m, float *v, size_t n,
                           int decoupled, float wd, float b1, float b2, float omb1, float omb2,
                           float decay_mul, float bc2_sqrt, float eps, float neg_step) {
    if (decoupled)
        cr_adam_loop(p, g, m, v, n, 1, wd, b1, b2, omb1, omb2, decay_mul, bc2_sqrt, eps, neg_step);
    else if (wd != 0.0f)
        cr_adam_loop(p, g, m, v, n, 2, wd, b1, b2, omb1, omb2, decay_mul, bc2_sqrt, eps, neg_step);
    else
        cr_adam_loop(p, g, m, v, n, 0, wd, b1, b2, omb1, omb2, decay_mul, bc2_sqrt, eps, neg_step);
}

void cr_adam_step(cr_adam *o, const cr_ptable *pt, float *params, const float *grads,
                  float lr) {
    CR_ASSERT(o->n == pt->total);
    CR_ASSERT(params && grads);
    o->t++;
    if (o->n == 0) return; /* an empty table: nothing to update, no moments */
    if (o->kind == CR_OPT_SGD) {
        for (int k = 0; k < pt->n; k++) {
            const cr_tensor_info *ti = &pt->t[k];
            if (!cr_dense_owned(ti)) continue;
            float wd = (ti->flags & CR_PARAM_NO_DECAY) ? 0.0f : o->weight_decay;
            cr_sgd_tensor(params + ti->offset, grads + ti->offset, ti->numel, lr, wd);
        }
        return;
    }
    CR_ASSERT(o->m && o->v);
    /* Scalars as torch computes them: Python floats (double) from the float32
     * hyper-parameters, rounded to float when they meet a float tensor. */
    const double t = (double)o->t;
    const double b1 = (double)o->beta1, b2 = (double)o->beta2;
    const double bc1 = 1.0 - pow(b1, t);
    const double bc2 = 1.0 - pow(b2, t);
    const float neg_step = (float)(-((double)lr / bc1));
    const float bc2_sqrt = (float)sqrt(bc2);
    const float omb1 = (float)(1.0 - b1), omb2 = (float)(1.0 - b2);
    const int decoupled = o->kind == CR_OPT_ADAMW;
    for (int k = 0; k < pt->n; k++) {
        const cr_tensor_info *ti = &pt->t[k];
        if (!cr_dense_owned(ti)) continue;
        /* No-decay tensors are torch's second param group with weight_decay 0. */
        float wd = (ti->flags & CR_PARAM_NO_DECAY) ? 0.0f : o->weight_decay;
        float decay_mul = (float)(1.0 - (double)lr * (double)wd);
        size_t off = ti->offset;
        cr_adam_tensor(params + off, grads + off, o->m + off, o->v + off, ti->numel, decoupled,
                       wd, o->beta1, o->beta2, omb1, omb2, decay_mul, bc2_sqrt, o->eps, neg_step);
    }
}

/* ---- sparse optimizers ---------------------------------------------------------- */

cr_status cr_sparse_opt_init(cr_sparse_opt *o, cr_sparse_opt_kind kind, int64_t V, int D,
                             float lr, float beta1, float beta2, float eps, float init_acc,
                             cr_error *e) {
    memset(o, 0, sizeof *o);
    if (kind != CR_SPARSE_ADAGRAD && kind != CR_SPARSE_LAZY_ADAM && kind != CR_SPARSE_SGD)
        return cr_err(e, CR_ERR_ARG,
                      "sparse optimizer kind %d: expected adagrad (0), lazy_adam (1) or sgd (2)",
                      (int)kind);
    if (V < 1 || D < 1)
        return cr_err(e, CR_ERR_ARG, "sparse optimizer: table of %lld rows x %d: expected both >= 1",
                      (long long)V, D);
    if (!(lr >= 0.0f) || !isfinite(lr))
        return cr_err(e, CR_ERR_ARG, "sparse learning rate %g: expected a finite value >= 0",
                      (double)lr);
    if (kind != CR_SPARSE_SGD && (!(eps >= 0.0f) || !isfinite(eps)))
        return cr_err(e, CR_ERR_ARG, "sparse eps %g: expected a finite value >= 0", (double)eps);
    if (kind == CR_SPARSE_ADAGRAD && (!(init_acc >= 0.0f) || !isfinite(init_acc)))
        return cr_err(e, CR_ERR_ARG, "adagrad initial accumulator %g: expected a finite value >= 0",
                      (double)init_acc);
    if (kind == CR_SPARSE_LAZY_ADAM) {
        if (!(beta1 >= 0.0f && beta1 < 1.0f))
            return cr_err(e, CR_ERR_ARG, "beta1 %g: expected 0 <= beta1 < 1", (double)beta1);
        if (!(beta2 >= 0.0f && beta2 < 1.0f))
            return cr_err(e, CR_ERR_ARG, "beta2 %g: expected 0 <= beta2 < 1", (double)beta2);
    }
    o->kind = kind;
    o->lr = lr;
    o->beta1 = beta1;
    o->beta2 = beta2;
    o->eps = eps;
    o->init_acc = init_acc;
    o->V = V;
    o->D = D;
    size_t n = (size_t)V * (size_t)D;
    if (kind == CR_SPARSE_SGD) return CR_OK;
    o->s1 = cr_alloc_e(n * sizeof(float), e,
                       kind == CR_SPARSE_ADAGRAD ? "Adagrad accumulators" : "lazy Adam first moments");
    if (!o->s1) return CR_ERR_NOMEM;
    if (kind == CR_SPARSE_ADAGRAD) {
        if (init_acc != 0.0f)
            for (size_t i = 0; i < n; i++) o->s1[i] = init_acc;
        return CR_OK;
    }
    o->s2 = cr_alloc_e(n * sizeof(float), e, "lazy Adam second moments");
    if (!o->s2) {
        cr_free(o->s1);
        o->s1 = NULL;
        return CR_ERR_NOMEM;
    }
    return CR_OK;
}

void cr_sparse_opt_free(cr_sparse_opt *o) {
    if (!o) return;
    cr_free(o->s1);
    cr_free(o->s2);
    memset(o, 0, sizeof *o);
}

/* Adagrad with a sparse gradient (torch 1.13, lr_decay 0, weight_decay 0):
 *   acc += g*g;  p += -lr * (g / (sqrt(acc) + eps))   on the touched rows only. */
static void cr_adagrad_rows(float *table, float *acc, const cr_sparse_grad *g, float lr,
                            float eps) {
    const int D = g->D;
    const float alpha = -lr;
CR_PARALLEL_FOR((int64_t)g->n * D >= CR_OPT_PAR_MIN)
    for (int r = 0; r < g->n; r++) {
        size_t base = (size_t)g->rows[r] * (size_t)D;
        const float *gr = g->vals + (size_t)r * (size_t)D;
        float *p = table + base, *a = acc + base;
        for (int j = 0; j < D; j++) {
            float gj = gr[j];
            float aj = a[j] + gj * gj;
            a[j] = aj;
            p[j] = CR_FMA(alpha, gj / (sqrtf(aj) + eps), p[j]);
        }
    }
}

/* torch.optim.SparseAdam (lazy Adam). Moments of the touched rows move
 * towards the gradient, old += (1-b)*(new - old), exactly as torch writes it
 * (this differs from b*old + (1-b)*new in the last bit); rows not in the
 * batch keep their moments. The update divides by sqrt(v) + eps without
 * bias-correcting v and folds both corrections into the step size:
 *   p += -(lr*sqrt(bc2)/bc1) * (m / (sqrt(v) + eps)). */
static void cr_lazy_adam_rows(float *table, float *m, float *v, const cr_sparse_grad *g,
                              float omb1, float omb2, float eps, float neg_step) {
    const int D = g->D;
CR_PARALLEL_FOR((int64_t)g->n * D >= CR_OPT_PAR_MIN)
    for (int r = 0; r < g->n; r++) {
        size_t base = (size_t)g->rows[r] * (size_t)D;
        const float *gr = g->vals + (size_t)r * (size_t)D;
        float *p = table + base, *mr = m + base, *vr = v + base;
        for (int j = 0; j < D; j++) {
            float gj = gr[j];
            float m_old = mr[j], v_old = vr[j];
            float m_upd = (gj - m_old) * omb1;
            float v_upd = (gj * gj - v_old) * omb2;
            float m_new = m_old + m_upd;
            float v_new = v_old + v_upd;
            mr[j] = m_new;
            vr[j] = v_new;
            /* torch recomputes numer = upd + old and denom from upd + old:
             * the same float sums as above, so reuse them. */
            float denom = sqrtf(v_new) + eps;
            p[j] = p[j] + neg_step * (m_new / denom);
        }
    }
}

static void cr_sparse_sgd_rows(float *table, const cr_sparse_grad *g, float lr) {
    const int D = g->D;
    const float alpha = -lr;
CR_PARALLEL_FOR((int64_t)g->n * D >= CR_OPT_PAR_MIN)
    for (int r = 0; r < g->n; r++) {
        float *p = table + (size_t)g->rows[r] * (size_t)D;
        const float *gr = g->vals + (size_t)r * (size_t)D;
        for (int j = 0; j < D; j++) p[j] = CR_FMA(alpha, gr[j], p[j]);
    }
}

void cr_sparse_opt_step(cr_sparse_opt *o, float *table, const cr_sparse_grad *g, float lr) {
    CR_ASSERT(table && g);
    CR_ASSERT(g->D == o->D);
    CR_ASSERT(g->n >= 0 && g->n <= g->cap);
    /* Rows must be unique and ascending (the update is not linear in the
     * gradient, so duplicates would have to be merged first, which is the
     * gradient builder's job) and inside the table. */
    for (int r = 0; r < g->n; r++) {
        CR_ASSERT(g->rows[r] >= 0 && (int64_t)g->rows[r] < o->V);
        CR_ASSERT(r == 0 || g->rows[r] > g->rows[r - 1]);
    }
    /* SparseAdam counts steps per table, including steps whose gradient
     * touched no row (torch increments whenever the table has a gradient). */
    o->t++;
    switch (o->kind) {
    case CR_SPARSE_ADAGRAD:
        cr_adagrad_rows(table, o->s1, g, lr, o->eps);
        break;
    case CR_SPARSE_LAZY_ADAM: {
        const double t = (double)o->t;
        const double b1 = (double)o->beta1, b2 = (double)o->beta2;
        const double bc1 = 1.0 - pow(b1, t);
        const double bc2 = 1.0 - pow(b2, t);
        const float neg_step = (float)(-((double)lr * sqrt(bc2) / bc1));
        cr_lazy_adam_rows(table, o->s1, o->s2, g, (float)(1.0 - b1), (float)(1.0 - b2), o->eps,
                          neg_step);
        break;
    }
    case CR_SPARSE_SGD:
        cr_sparse_sgd_rows(table, g, lr);
        break;
    }
}

/* ---- schedule ------------------------------------------------------------------------ */

float cr_lr_at(cr_sched_kind kind, float lr, int64_t step, int64_t warmup, int64_t total_steps,
               float min_lr_frac) {
    if (step < 0) step = 0;
    if (warmup > 0 && step < warmup)
        return (float)((double)lr * (double)(step + 1) / (double)warmup);
    if (kind == CR_SCHED_CONSTANT) return lr;
    int64_t span = total_steps - (warmup > 0 ? warmup : 0);
    double progress = span > 0 ? (double)(step - (warmup > 0 ? warmup : 0)) / (double)span : 1.0;
    if (progress > 1.0) progress = 1.0;
    const double pi = 3.14159265358979323846;
    double frac = (double)min_lr_frac + (1.0 - (double)min_lr_frac) * 0.5 * (1.0 + cos(pi * progress));
    return (float)((double)lr * frac);
}

/* ---- clipping ------------------------------------------------------------------------ */

/* Fixed number of partial sums per tensor: the reduction order (and so the
 * norm, to the last bit) does not depend on the number of threads. */
#define CR_CLIP_CHUNKS 64

static double cr_sumsq(const float *x, size_t n) {
    if (n < CR_OPT_PAR_MIN) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
        return s;
    }
    double part[CR_CLIP_CHUNKS];
    size_t chunk = (n + CR_CLIP_CHUNKS - 1) / CR_CLIP_CHUNKS;
CR_PARALLEL_FOR(1)
    for (int c = 0; c < CR_CLIP_CHUNKS; c++) {
        size_t lo = (size_t)c * chunk, hi = lo + chunk;
        if (hi > n) hi = n;
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * (double)x[i];
        part[c] = s;
    }
    double s = 0.0;
    for (int c = 0; c < CR_CLIP_CHUNKS; c++) s += part[c];
    return s;
}

float cr_clip_grad_norm_n(int n, const cr_ptable *const *pt, float *const *grads,
                          float max_norm) {
    double ss = 0.0;
    for (int s = 0; s < n; s++) {
        CR_ASSERT(grads[s]);
        for (int k = 0; k < pt[s]->n; k++) {
            const cr_tensor_info *ti = &pt[s]->t[k];
            if (!cr_dense_owned(ti)) continue;
            ss += cr_sumsq(grads[s] + ti->offset, ti->numel);
        }
    }
    double norm = sqrt(ss);
    if (!(max_norm > 0.0f) || !isfinite(norm)) return (float)norm;
    /* torch: clip_coef = max_norm / (norm + 1e-6), clamped to at most 1. */
    double coef = (double)max_norm / (norm + 1e-6);
    if (coef >= 1.0) return (float)norm;
    const float c = (float)coef;
    for (int s = 0; s < n; s++)
        for (int k = 0; k < pt[s]->n; k++) {
            const cr_tensor_info *ti = &pt[s]->t[k];
            if (!cr_dense_owned(ti)) continue;
            float *g = grads[s] + ti->offset;
            size_t m = ti->numel;
CR_PARALLEL_FOR(m >= CR_OPT_PAR_MIN)
            for (size_t i = 0; i < m; i++) g[i] *= c;
        }
    return (float)norm;
}

float cr_clip_grad_norm(const cr_ptable *pt, float *grads, float max_norm) {
    return cr_clip_grad_norm_n(1, &pt, &grads, max_norm);
}
