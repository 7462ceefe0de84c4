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
#include "../core/yaml.h"

/* Row-sparse gradient of one embedding table: n unique rows, ascending. */
typedef struct cr_sparse_grad {
    int      n, cap;  /* rows used / allocated */
    int      D;
    int32_t *rows;    /* (cap) */
    float   *vals;    /* (cap, D) */
} cr_sparse_grad;

cr_status cr_sparse_grad_init(cr_sparse_grad *g, int cap, int D, cr_error *e);
void      cr_sparse_grad_free(cr_sparse_grad *g);


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
/* The same over n slabs at once: one global norm (the sum of squares of
 * every slab, in slab order), every slab scaled by the same factor. */
float cr_clip_grad_norm_n(int n, const cr_ptable *const *pt, float *const *grads,
                          float max_norm);

/* ---- one optimizer for a training loop (optim_step.c) ---------------------------
 * The four training loops (the ranker, the decoder LM, the ILM's two phases)
 * share one configuration and one step: clip -> schedule -> update, over
 * one or more dense parameter slabs and any number of embedding tables. */

extern const char *const cr_dense_opt_names[];  /* adam, adamw, sgd */
extern const char *const cr_sparse_opt_names[]; /* adagrad, lazy_adam, sgd */
extern const char *const cr_sched_names[];      /* constant, cosine */

/* cr_optim_cfg and its kinds are public (crossrec.h). */

/* Adam, lr 1e-3, betas 0.9 / 0.999, eps 1e-8, no decay, constant rate, no
 * warmup, no clipping; tables: Adagrad at 0.05 from a zero accumulator.
 * A loop with other defaults changes the fields it needs after this. */
void      cr_optim_cfg_default(cr_optim_cfg *c);
/* The LM's and the ILM's recipe: the defaults above but AdamW with this
 * decay, `warmup` steps then cosine to 0.1 lr, the gradient norm clipped at 1. */
void      cr_optim_cfg_adamw_cosine(cr_optim_cfg *c, float weight_decay, int64_t warmup);
/* Read the optimizer keys a section accepts, `keys` (NULL-terminated), from
 * the map n (NULL = none given, defaults stay); section names the map in
 * messages ("train", "phase1"). Every key has one meaning, type and range
 * wherever it is read:
 *   optimizer, schedule, sparse_optimizer   (the names above)
 *   lr, sparse_lr [0, 100]; beta1, beta2 [0, 0.999999]; eps [0, 1];
 *   weight_decay [0, 10]; min_lr_frac [0, 1]; adagrad_init [0, 100];
 *   clip_norm, or clip, [0, 1e9]; warmup_steps, or warmup, an integer >= 0.
 * (The ranker spells the last two clip_norm and warmup_steps; the LM and the
 * ILM, clip and warmup.) The caller checks the map for unknown keys. */
cr_status cr_optim_cfg_parse(cr_optim_cfg *c, const cr_yaml_node *n, const char *section,
                             const char *const *keys, cr_error *e);

#define CR_OPTIM_MAX_DENSE 4

/* One dense slab the optimizer updates: parameters and gradients at the
 * table's offsets, with its Adam state. */
typedef struct cr_optim_dense {
    const cr_ptable *pt;
    float           *params, *grads; /* (pt->total) */
    cr_adam          a;
} cr_optim_dense;

typedef struct cr_optim {
    cr_optim_cfg    c;
    int64_t         horizon;      /* the schedule's last step (cosine reaches its floor there) */
    int             guard;        /* measure the norm even when not clipping: a non-finite
                                     one stops the step */
    int             n_dense, n_sparse;
    cr_optim_dense  dense[CR_OPTIM_MAX_DENSE];
    cr_sparse_opt  *sparse;       /* (n_sparse) one per embedding table */
    float         **tables;       /* (n_sparse) the tables' rows */
    float           lr;           /* the last step's scheduled rate */
    float           norm;         /* its dense gradient norm before clipping (NaN = not measured) */
} cr_optim;

/* An optimizer of configuration c whose schedule ends at step horizon;
 * then cr_optim_add_dense for each slab, cr_optim_add_table for each table. */
void      cr_optim_init(cr_optim *o, const cr_optim_cfg *c, int64_t horizon, int guard);
cr_status cr_optim_add_dense(cr_optim *o, const cr_ptable *pt, float *params, float *grads,
                             cr_error *e);
/* A table of V rows of width D at `table`. The tables follow the dense
 * weights' schedule: their rate is sparse_lr times the dense rate's share of
 * lr; Adagrad's eps is torch's 1e-10, lazy Adam uses the dense betas and eps. */
cr_status cr_optim_add_table(cr_optim *o, float *table, int64_t V, int D, cr_error *e);
/* Step number `step` (0-based, the schedule's position): the global norm
 * of every dense gradient (all slabs together, cr_clip_grad_norm's rule) is
 * measured when clipping or guarding and clipped to c.clip; a non-finite
 * norm is CR_ERR_LIMIT and changes nothing. Then every slab takes an Adam(W)
 * or SGD step at the scheduled rate and every table a row-sparse step with
 * sg[i] (n_sparse gradients; NULL when there are no tables). */
cr_status cr_optim_step(cr_optim *o, int64_t step, const cr_sparse_grad *const *sg, cr_error *e);
/* Its two halves, for a bench that times them apart: the clip, the rate
 * (o->lr) and the dense update; then the tables at that rate. */
cr_status cr_optim_step_dense(cr_optim *o, int64_t step, cr_error *e);
void      cr_optim_step_tables(cr_optim *o, const cr_sparse_grad *const *sg);
void      cr_optim_free(cr_optim *o);

#endif /* CR_OPTIM_H */
