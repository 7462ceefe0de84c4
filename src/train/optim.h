/*
 * optim.h - optimizers over parameter slabs. Dense parameters: Adam/AdamW
 * (PyTorch semantics) over the whole slab in one flat loop. Embedding
 * tables: row-sparse updates that touch only rows in the batch (sparse
 * Adagrad, or lazy Adam = torch.optim.SparseAdam). Frozen tensors are
 * skipped; training state is allocated only when training.
 */
#ifndef CR_OPTIM_H
#define CR_OPTIM_H

#include "../core/core.h"

/* Row-sparse gradient of one embedding table: n unique rows, ascending. */
typedef struct cr_sparse_grad {
    int      n, cap;  /* rows used / allocated */
    int      D;
    int32_t *rows;    /* (cap) */
    float   *vals;    /* (cap, D) */
} cr_sparse_grad;

cr_status cr_sparse_grad_init(cr_sparse_grad *g, int cap, int D, cr_error *e);
void      cr_sparse_grad_free(cr_sparse_grad *g);

typedef enum { CR_OPT_ADAM = 0, CR_OPT_ADAMW = 1, CR_OPT_SGD = 2 } cr_dense_opt_kind;

typedef struct cr_adam {
    cr_dense_opt_kind kind;
    float   lr, beta1, beta2, eps, weight_decay;
    int64_t t;      /* steps taken */
    size_t  n;      /* floats in the slab */
    float  *m, *v;  /* (n) moment slabs, same offsets as the parameter table */
} cr_adam;

/* Adam: weight decay is L2 added to the gradient (torch.optim.Adam).
 * AdamW: decoupled decay p -= lr*wd*p (torch.optim.AdamW), skipped for
 * tensors flagged CR_PARAM_NO_DECAY. Tensors flagged CR_PARAM_FROZEN or
 * CR_PARAM_SPARSE are skipped (sparse tables have their own optimizer).
 * SGD is torch.optim.SGD without momentum (weight decay, if any, as L2) and
 * keeps no state (m and v stay NULL). CR_PARAM_NO_DECAY turns decay off for
 * all three kinds (torch: a second param group with weight_decay 0).
 * cr_adam_step advances t and uses the lr it is given (the scheduled rate),
 * not o->lr, which only records the base rate. */
cr_status cr_adam_init(cr_adam *o, const cr_ptable *pt, cr_dense_opt_kind kind, float lr,
                       float beta1, float beta2, float eps, float weight_decay, cr_error *e);
void      cr_adam_step(cr_adam *o, const cr_ptable *pt, float *params, const float *grads,
                       float lr);
void      cr_adam_free(cr_adam *o);

typedef enum { CR_SPARSE_ADAGRAD = 0, CR_SPARSE_LAZY_ADAM = 1, CR_SPARSE_SGD = 2 } cr_sparse_opt_kind;

/* State for one table of V rows of width D. Adagrad follows
 * torch.optim.Adagrad with sparse gradients (initial accumulator value
 * init_acc, the given eps - torch's default is 1e-10 - lr_decay 0); lazy
 * Adam follows torch.optim.SparseAdam (moments of untouched rows are not
 * decayed; bias correction uses the table's step count t, which every
 * cr_sparse_opt_step advances, even one with no rows). SGD keeps no state.
 * The gradient's rows must be unique, ascending and < V (asserted). */
typedef struct cr_sparse_opt {
    cr_sparse_opt_kind kind;
    float   lr, beta1, beta2, eps, init_acc;
    int64_t t;
    int64_t V;
    int     D;
    float  *s1, *s2; /* (V, D): Adagrad uses s1 only */
} cr_sparse_opt;

cr_status cr_sparse_opt_init(cr_sparse_opt *o, cr_sparse_opt_kind kind, int64_t V, int D,
                             float lr, float beta1, float beta2, float eps, float init_acc,
                             cr_error *e);
void      cr_sparse_opt_step(cr_sparse_opt *o, float *table, const cr_sparse_grad *g, float lr);
void      cr_sparse_opt_free(cr_sparse_opt *o);

/* Learning-rate schedule: linear warmup then constant or cosine decay to
 * min_lr_frac * lr over total_steps. step counts from 0 (the step about to
 * be taken); with W = max(warmup, 0):
 *   step < W:           lr * (step + 1) / W     (the first step is not lr*0)
 *   constant, step >= W: lr
 *   cosine,   step >= W: lr * (f + (1 - f) * 0.5 * (1 + cos(pi * q))),
 *                        f = min_lr_frac, q = min(1, (step - W) / (total_steps - W))
 *                        (q = 1 when total_steps <= W), so the rate is lr at
 *                        step W and f*lr from step total_steps on.
 * Negative steps count as step 0. */
typedef enum { CR_SCHED_CONSTANT = 0, CR_SCHED_COSINE = 1 } cr_sched_kind;
float cr_lr_at(cr_sched_kind kind, float lr, int64_t step, int64_t warmup,
               int64_t total_steps, float min_lr_frac);

/* Scale all dense gradients so their global L2 norm is at most max_norm;
 * returns the norm before clipping. Like torch.nn.utils.clip_grad_norm_:
 * the norm (accumulated in double, in a fixed order) covers tensors that are
 * neither CR_PARAM_FROZEN nor CR_PARAM_SPARSE, and when
 * max_norm / (norm + 1e-6) < 1 every such gradient is multiplied by it.
 * Differences from torch: max_norm <= 0 only measures (no clipping), and a
 * non-finite norm leaves the gradients untouched so the caller can skip the
 * step (torch would scale them by NaN or 0). */
float cr_clip_grad_norm(const cr_ptable *pt, float *grads, float max_norm);

#endif /* CR_OPTIM_H */
