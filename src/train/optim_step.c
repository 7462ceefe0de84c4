/*
 * optim_step.c - the one optimizer every training loop runs: its
 * configuration (defaults, and the YAML keys read in this one place with one
 * type and range each) and its step, clip -> schedule -> Adam(W)/SGD over
 * the dense slabs and a row-sparse update of each embedding table. A loop
 * says only which keys it accepts, what it defaults to and when to step;
 * it never computes a rate or touches a moment itself.
 */
#include "optim.h"

#include "../core/yaml.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *const cr_dense_opt_names[] = {"adam", "adamw", "sgd", NULL};
const char *const cr_sparse_opt_names[] = {"adagrad", "lazy_adam", "sgd", NULL};
const char *const cr_sched_names[] = {"constant", "cosine", NULL};

void cr_optim_cfg_default(cr_optim_cfg *c) {
    memset(c, 0, sizeof *c);
    c->kind = CR_OPT_ADAM;
    c->lr = 1e-3f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->weight_decay = 0.0f;
    c->schedule = CR_SCHED_CONSTANT;
    c->warmup = 0;
    c->min_lr_frac = 0.0f;
    c->clip = 0.0f;
    c->sparse_kind = CR_SPARSE_ADAGRAD;
    c->sparse_lr = 0.05f;
    c->adagrad_init = 0.0f;
}

void cr_optim_cfg_adamw_cosine(cr_optim_cfg *c, float weight_decay, int64_t warmup) {
    cr_optim_cfg_default(c);
    c->kind = CR_OPT_ADAMW;
    c->weight_decay = weight_decay;
    c->schedule = CR_SCHED_COSINE;
    c->warmup = warmup;
    c->min_lr_frac = 0.1f;
    c->clip = 1.0f;
}

/* ---- the keys ------------------------------------------------------------------------- */

typedef enum { K_FLOAT, K_INT, K_ENUM } key_type;

/* the kinds are read and written through an int */
_Static_assert(sizeof(cr_dense_opt_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(cr_sched_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(cr_sparse_opt_kind) == sizeof(int), "enum size");

/* Every optimizer key: its names (the ranker's, then the LM's and the
 * ILM's where they differ), its field and its range. */
static const struct optim_key {
    const char        *name, *alias;
    key_type           type;
    size_t             off;
    double             lo, hi;
    const char *const *names; /* K_ENUM */
} optim_keys[] = {
    {"optimizer", NULL, K_ENUM, offsetof(cr_optim_cfg, kind), 0, 0, cr_dense_opt_names},
    {"lr", NULL, K_FLOAT, offsetof(cr_optim_cfg, lr), 0, 100, NULL},
    {"beta1", NULL, K_FLOAT, offsetof(cr_optim_cfg, beta1), 0, 0.999999, NULL},
    {"beta2", NULL, K_FLOAT, offsetof(cr_optim_cfg, beta2), 0, 0.999999, NULL},
    {"eps", NULL, K_FLOAT, offsetof(cr_optim_cfg, eps), 0, 1, NULL},
    {"weight_decay", NULL, K_FLOAT, offsetof(cr_optim_cfg, weight_decay), 0, 10, NULL},
    {"schedule", NULL, K_ENUM, offsetof(cr_optim_cfg, schedule), 0, 0, cr_sched_names},
    {"warmup_steps", "warmup", K_INT, offsetof(cr_optim_cfg, warmup), 0, (double)(INT64_MAX / 2),
     NULL},
    {"min_lr_frac", NULL, K_FLOAT, offsetof(cr_optim_cfg, min_lr_frac), 0, 1, NULL},
    {"clip_norm", "clip", K_FLOAT, offsetof(cr_optim_cfg, clip), 0, 1e9, NULL},
    {"sparse_optimizer", NULL, K_ENUM, offsetof(cr_optim_cfg, sparse_kind), 0, 0,
     cr_sparse_opt_names},
    {"sparse_lr", NULL, K_FLOAT, offsetof(cr_optim_cfg, sparse_lr), 0, 100, NULL},
    {"adagrad_init", NULL, K_FLOAT, offsetof(cr_optim_cfg, adagrad_init), 0, 100, NULL},
};

cr_status cr_optim_cfg_parse(cr_optim_cfg *c, const cr_yaml_node *n, const char *section,
                             const char *const *keys, cr_error *e) {
    for (const char *const *k = keys; *k; k++) {
        const struct optim_key *d = NULL;
        for (size_t i = 0; i < sizeof optim_keys / sizeof optim_keys[0] && !d; i++)
            if (!strcmp(*k, optim_keys[i].name) ||
                (optim_keys[i].alias && !strcmp(*k, optim_keys[i].alias)))
                d = &optim_keys[i];
        if (!d) return cr_err(e, CR_ERR_INTERNAL, "%s: '%s' is not an optimizer key", section, *k);
        char *field = (char *)c + d->off;
        if (d->type == K_FLOAT) {
            double v = *(float *)field;
            CR_TRY(cr_yaml_double(n, *k, section, 0, v, d->lo, d->hi, &v, e));
            *(float *)field = (float)v;
        } else if (d->type == K_INT) {
            CR_TRY(cr_yaml_int(n, *k, section, 0, *(int64_t *)field, (int64_t)d->lo,
                               (int64_t)d->hi, (int64_t *)field, e));
        } else { /* the three kinds are enums stored as int */
            int v;
            memcpy(&v, field, sizeof v);
            CR_TRY(cr_yaml_enum(n, *k, section, 0, v, d->names, &v, e));
            memcpy(field, &v, sizeof v);
        }
    }
    return CR_OK;
}

/* ---- the step ------------------------------------------------------------------------- */

void cr_optim_init(cr_optim *o, const cr_optim_cfg *c, int64_t horizon, int guard) {
    memset(o, 0, sizeof *o);
    o->c = *c;
    o->horizon = horizon;
    o->guard = guard;
    o->norm = NAN;
}

cr_status cr_optim_add_dense(cr_optim *o, const cr_ptable *pt, float *params, float *grads,
                             cr_error *e) {
    if (o->n_dense == CR_OPTIM_MAX_DENSE)
        return cr_err(e, CR_ERR_LIMIT, "optimizer: more than %d dense slabs", CR_OPTIM_MAX_DENSE);
    cr_optim_dense *d = &o->dense[o->n_dense];
    CR_TRY(cr_adam_init(&d->a, pt, o->c.kind, o->c.lr, o->c.beta1, o->c.beta2, o->c.eps,
                        o->c.weight_decay, e));
    d->pt = pt;
    d->params = params;
    d->grads = grads;
    o->n_dense++;
    return CR_OK;
}

cr_status cr_optim_add_table(cr_optim *o, float *table, int64_t V, int D, cr_error *e) {
    cr_sparse_opt *s = realloc(o->sparse, (size_t)(o->n_sparse + 1) * sizeof *s);
    if (s) o->sparse = s;
    float **t = s ? realloc(o->tables, (size_t)(o->n_sparse + 1) * sizeof *t) : NULL;
    if (t) o->tables = t;
    if (!s || !t) return cr_err(e, CR_ERR_NOMEM, "out of memory for table optimizers");
    /* torch.optim.Adagrad's default eps, not the dense one: the accumulators
     * of rare rows stay tiny, and 1e-8 would cap their first steps */
    const cr_optim_cfg *c = &o->c;
    CR_TRY(cr_sparse_opt_init(&o->sparse[o->n_sparse], c->sparse_kind, V, D, c->sparse_lr,
                              c->beta1, c->beta2,
                              c->sparse_kind == CR_SPARSE_ADAGRAD ? 1e-10f : c->eps,
                              c->adagrad_init, e));
    o->tables[o->n_sparse++] = table;
    return CR_OK;
}

cr_status cr_optim_step_dense(cr_optim *o, int64_t step, cr_error *e) {
    const cr_optim_cfg *c = &o->c;
    const cr_ptable *pts[CR_OPTIM_MAX_DENSE];
    float *grads[CR_OPTIM_MAX_DENSE];
    for (int i = 0; i < o->n_dense; i++) pts[i] = o->dense[i].pt, grads[i] = o->dense[i].grads;
    o->norm = NAN;
    if (c->clip > 0 || o->guard) {
        o->norm = cr_clip_grad_norm_n(o->n_dense, pts, grads, c->clip);
        if (!isfinite(o->norm))
            return cr_err(e, CR_ERR_LIMIT, "the gradient norm became %g at step %lld: training "
                          "diverged; lower the learning rate, raise the warmup or clip",
                          (double)o->norm, (long long)step);
    }
    o->lr = cr_lr_at(c->schedule, c->lr, step, c->warmup, o->horizon, c->min_lr_frac);
    for (int i = 0; i < o->n_dense; i++)
        cr_adam_step(&o->dense[i].a, o->dense[i].pt, o->dense[i].params, o->dense[i].grads, o->lr);
    return CR_OK;
}

void cr_optim_step_tables(cr_optim *o, const cr_sparse_grad *const *sg) {
    const cr_optim_cfg *c = &o->c;
    /* the tables follow the dense schedule's shape at their own base rate */
    float scale = c->lr > 0 ? o->lr / c->lr : 0.0f;
    for (int i = 0; i < o->n_sparse; i++)
        cr_sparse_opt_step(&o->sparse[i], o->tables[i], sg[i], c->sparse_lr * scale);
}

cr_status cr_optim_step(cr_optim *o, int64_t step, const cr_sparse_grad *const *sg,
                        cr_error *e) {
    CR_TRY(cr_optim_step_dense(o, step, e));
    cr_optim_step_tables(o, sg);
    return CR_OK;
}

void cr_optim_free(cr_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_dense; i++) cr_adam_free(&o->dense[i].a);
    for (int i = 0; i < o->n_sparse; i++) cr_sparse_opt_free(&o->sparse[i]);
    free(o->sparse);
    free(o->tables);
    memset(o, 0, sizeof *o);
}
