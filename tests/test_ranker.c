/*
 * test_ranker.c - the ranker on its own: finite-difference gradient checks
 * of the whole model (loss w.r.t. a sample of dense parameters and table
 * entries) for shared bottom, MMoE and PLE, including towers and bottoms of
 * zero layers; workspaces (inference = training outputs, B < max_B, two
 * workspaces on one model); packed weights (the same bits, a snapshot); gradient accumulation through the sparse
 * merge; the multi-task loss by hand (extra-column targets, masks,
 * uncertainty weighting); and the errors bad input must produce.
 */
#include "util/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/rank/loss.h"

/* ---- a tiny schema and batch -------------------------------------------------
 * tables: "a" (8 rows, dim 3) read by cat slots f0 and f1 (shared),
 * "b" (6 rows, dim 2) read by the multi slot f2 (sum pooling); the last
 * row of each table is never read;
 * 2 dense values; tasks: click (binary), time (regression). C_in = 10. */
enum { NT = 2, NF = 5, TB = 6 };

typedef struct tiny {
    cr_schema s;
    cr_feature feat[NF];
    cr_task task[2];
    int cat_feat[2], multi_feat[1], dense_feat[2];
    int64_t rows[NT];
    int dim[NT];
    char tname[NT][64];
    cr_batch b;
    int32_t cat[TB * 2];
    int64_t off[TB + 1];
    int64_t *offp[1];
    int32_t ids[16];
    int32_t *idsp[1];
    float dense[TB * 2], label[2 * TB], mask[2 * TB], weight[TB], extra[TB];
} tiny;

static void tiny_init(tiny *t, int B) {
    memset(t, 0, sizeof *t);
    cr_schema *s = &t->s;
    const char *names[NF] = {"f0", "f1", "f2", "d0", "d1"};
    for (int i = 0; i < NF; i++) snprintf(t->feat[i].name, 64, "%s", names[i]);
    t->feat[0].kind = t->feat[1].kind = CR_FEAT_CATEGORICAL;
    t->feat[0].table = t->feat[1].table = 0;
    t->feat[2].kind = CR_FEAT_MULTI;
    t->feat[2].table = 1;
    t->feat[2].pooling = CR_POOL_SUM;
    t->feat[3].kind = t->feat[4].kind = CR_FEAT_NUMERIC;
    t->feat[3].table = t->feat[4].table = -1;
    snprintf(t->task[0].name, 64, "click");
    t->task[0].kind = CR_TASK_BINARY;
    t->task[0].weight = 1.0f;
    snprintf(t->task[1].name, 64, "time");
    t->task[1].kind = CR_TASK_REGRESSION;
    t->task[1].weight = 0.7f;
    t->cat_feat[0] = 0;
    t->cat_feat[1] = 1;
    t->multi_feat[0] = 2;
    t->dense_feat[0] = 3;
    t->dense_feat[1] = 4;
    t->rows[0] = 8;
    t->rows[1] = 6;
    t->dim[0] = 3;
    t->dim[1] = 2;
    snprintf(t->tname[0], 64, "a");
    snprintf(t->tname[1], 64, "b");
    s->n_features = NF;
    s->features = t->feat;
    s->n_tasks = 2;
    s->tasks = t->task;
    s->n_cat = 2;
    s->n_multi = 1;
    s->n_dense = 2;
    s->cat_feat = t->cat_feat;
    s->multi_feat = t->multi_feat;
    s->dense_feat = t->dense_feat;
    s->n_tables = NT;
    s->table_rows = t->rows;
    s->table_dim = t->dim;
    s->table_name = t->tname;

    /* rows 0..5: f0/f1 share table a (row 3 read by both slots of row 1),
     * the bag of row 2 is empty, row 4 repeats an id inside its bag */
    static const int32_t cat[TB * 2] = {1, 2, 3, 3, 0, 6, 2, 5, 1, 4, 6, 1};
    static const int64_t off[TB + 1] = {0, 2, 3, 3, 5, 8, 9};
    static const int32_t ids[9] = {0, 4, 2, 1, 3, 2, 2, 0, 4};
    memcpy(t->cat, cat, sizeof cat);
    memcpy(t->off, off, sizeof off);
    memcpy(t->ids, ids, sizeof ids);
    cr_test_fill(t->dense, TB * 2, 1.0f, 11);
    static const float click[TB] = {1, 0, 1, 1, 0, 0};
    static const float time[TB] = {0.3f, 0.0f, 1.2f, 0.7f, 0.0f, 0.0f};
    for (int r = 0; r < TB; r++) {
        t->label[r] = click[r];
        t->label[TB + r] = time[r];
        t->mask[r] = 1.0f;
        t->mask[TB + r] = click[r]; /* time only where clicked */
        t->weight[r] = 0.5f + 0.2f * (float)r;
        t->extra[r] = 0.1f + 0.15f * (float)r;
    }
    cr_batch *b = &t->b;
    b->B = B;
    b->max_B = TB;
    b->n_cat = 2;
    b->n_multi = 1;
    b->n_dense = 2;
    b->n_tasks = 2;
    b->n_extra = 1;
    b->cat = t->cat;
    t->offp[0] = t->off;
    t->idsp[0] = t->ids;
    b->bag_off = t->offp;
    b->bag_ids = t->idsp;
    b->dense = t->dense;
    b->weight = t->weight;
    b->extra = t->extra;
    /* labels and masks are task-major with stride B: repack for B < TB */
    for (int k = 0; k < 2; k++) {
        memmove(t->label + k * B, t->label + k * TB, (size_t)B * sizeof(float));
        memmove(t->mask + k * B, t->mask + k * TB, (size_t)B * sizeof(float));
    }
    b->label = t->label;
    b->mask = t->mask;
}

static void cfg_for(cr_model_cfg *c, const cr_schema *s, cr_arch arch, int layers) {
    cr_model_cfg_defaults(c, s);
    c->arch = arch;
    c->emb_init = 0.5f; /* big enough that tables matter to the loss */
    c->n_bottom = layers ? 2 : 0;
    c->bottom_layers[0] = 6;
    c->bottom_layers[1] = 5;
    c->n_experts = 3;
    c->shared_experts = 1;
    c->task_experts = 2;
    c->n_expert_layers = 2;
    c->expert_layers[0] = 5;
    c->expert_layers[1] = 4;
    c->n_tower = layers ? 1 : 0;
    c->tower_layers[0] = 3;
    /* an extra never-served head on tower 0, trained on the extra column */
    cr_head *h = &c->heads[c->n_heads++];
    memset(h, 0, sizeof *h);
    snprintf(h->name, sizeof h->name, "click_soft");
    h->tower = 0;
    h->kind = CR_HEAD_BINARY;
    h->target_kind = CR_TARGET_EXTRA;
    h->target = 0;
    h->mask_task = -1;
    h->weight = 0.5f;
}

static cr_ranker *make(const tiny *t, cr_arch arch, int layers, cr_loss_weighting lw) {
    cr_model_cfg c;
    cfg_for(&c, &t->s, arch, layers);
    c.loss_weighting = lw;
    cr_ranker *m = NULL;
    cr_error e;
    if (cr_ranker_create(&m, &t->s, &c, 42, &e) != CR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        fail();
    }
    return m;
}

/* ---- gradient check ----------------------------------------------------------- */

typedef struct gctx {
    cr_ranker *m;
    cr_ranker_ws *ws;
    const cr_batch *b;
} gctx;

static double loss_of(void *p) {
    gctx *g = p;
    double total;
    cr_error e;
    if (cr_ranker_forward(g->m, g->ws, g->b, &e) != CR_OK) fail_msg("%s", e.msg);
    if (cr_ranker_loss(g->m, g->ws, g->b, NULL, &total, &e) != CR_OK) fail_msg("%s", e.msg);
    return total;
}

/* A central difference is only meaningful where the loss is smooth: skip
 * elements whose perturbation by +-h flips any ReLU (the on/off pattern of
 * every bottom, expert and tower unit differs from the one at x). */
static void relu_pattern(const gctx *g, uint8_t *pat) {
    const cr_ranker *m = g->m;
    const cr_ranker_ws *ws = g->ws;
    size_t n = 0;
    size_t w = m->cfg.arch == CR_ARCH_SHARED_BOTTOM ? cr_mlp_act_width(&m->bottom)
                                                     : cr_experts_act_width(&m->experts);
    for (size_t i = 0; i < w * ws->max_B; i++) pat[n++] = ws->acts[ws->off_trunk + i] > 0;
    for (int k = 0; k < m->K; k++) {
        size_t tw = cr_mlp_act_width(&m->towers[k]) * ws->max_B;
        for (size_t i = 0; i < tw; i++) pat[n++] = ws->acts[ws->off_tower[k] + i] > 0;
    }
    CR_ASSERT(n <= ws->acts_n);
}

static void kinks(gctx *g, float *x, size_t n, double h, uint8_t *skip) {
    size_t na = g->ws->acts_n;
    uint8_t *p0 = calloc(na, 1), *p1 = calloc(na, 1);
    for (size_t i = 0; i < n; i++) {
        float x0 = x[i];
        loss_of(g);
        relu_pattern(g, p0);
        skip[i] = 0;
        for (int j = 0; j < 2; j++) {
            x[i] = (float)(j ? x0 - h : x0 + h);
            loss_of(g);
            relu_pattern(g, p1);
            skip[i] |= memcmp(p0, p1, na) != 0;
        }
        x[i] = x0;
    }
    free(p0);
    free(p1);
}

#define GC_H 1e-2
#define GC_TOL 5e-3 /* the worst smooth element is ~1.5e-3; a 5% error in a gradient is 2.5e-2 */

/* Check up to 4 evenly spaced elements of every dense tensor, every entry
 * of rows 0..2 of each table and of its last row, which no example reads
 * (its gradient must be 0). */
static void gradcheck_model(cr_arch arch, int layers, cr_loss_weighting lw) {
    tiny t;
    tiny_init(&t, TB);
    cr_ranker *m = make(&t, arch, layers, lw);
    if (lw == CR_LOSS_UNCERTAINTY) {
        /* away from 0 so exp(-s) != 1 is exercised */
        float *s = cr_ptable_ptr(&m->params, m->params.data, m->log_var);
        for (size_t i = 0; i < m->params.t[m->log_var].numel; i++) s[i] = 0.3f - 0.4f * (float)i;
    }
    cr_ranker_ws *ws = NULL;
    cr_error e;
    assert_int_equal(cr_ranker_ws_create(&ws, m, TB, 1, 0, &e), CR_OK);
    gctx g = {m, ws, &t.b};
    double total;
    assert_int_equal(cr_ranker_forward(m, ws, &t.b, &e), CR_OK);
    cr_ranker_zero_grad(m, ws);
    assert_int_equal(cr_ranker_loss(m, ws, &t.b, NULL, &total, &e), CR_OK);
    assert_int_equal(cr_ranker_backward(m, ws, &t.b, NULL, &e), CR_OK);
    /* the analytic gradients, copied before the checks reuse the workspace */
    float *grads = malloc(m->params.total * sizeof(float));
    memcpy(grads, ws->grads, m->params.total * sizeof(float));
    float *tg = calloc(m->tables.total, sizeof(float));
    for (int k = 0; k < m->n_tables; k++)
        cr_sparse_grad_to_dense(&ws->sgrads[k], tg + m->tables.t[m->table_param[k]].offset,
                                m->table_rows[k]);

    int ok = 1, checked = 0, skipped = 0;
    for (int i = 0; i < m->params.n; i++) {
        const cr_tensor_info *ti = &m->params.t[i];
        size_t step = ti->numel > 4 ? ti->numel / 4 : 1;
        for (size_t j = 0; j < ti->numel; j += step) {
            float *x = m->params.data + ti->offset + j;
            uint8_t skip;
            kinks(&g, x, 1, GC_H, &skip);
            char what[160];
            snprintf(what, sizeof what, "%s %s[%zu]", cr_arch_name(arch), ti->name, j);
            ok &= cr_test_gradcheck(what, loss_of, &g, x, grads + ti->offset + j, 1, GC_H,
                                    GC_TOL, &skip);
            checked += !skip;
            skipped += skip;
        }
    }
    for (int k = 0; k < m->n_tables; k++) {
        const cr_tensor_info *ti = &m->tables.t[m->table_param[k]];
        size_t n = 3 * (size_t)m->table_dim[k];
        uint8_t skip[16];
        float *x = m->tables.data + ti->offset;
        kinks(&g, x, n, GC_H, skip);
        char what[160];
        snprintf(what, sizeof what, "%s %s rows 0-2", cr_arch_name(arch), ti->name);
        ok &= cr_test_gradcheck(what, loss_of, &g, x, tg + ti->offset, n, GC_H, GC_TOL, skip);
        for (size_t j = 0; j < n; j++) checked += !skip[j];
        size_t last = (size_t)(m->table_rows[k] - 1) * m->table_dim[k];
        for (int d = 0; d < m->table_dim[k]; d++) assert_true(tg[ti->offset + last + d] == 0.0f);
        snprintf(what, sizeof what, "%s %s last row", cr_arch_name(arch), ti->name);
        kinks(&g, x + last, (size_t)m->table_dim[k], GC_H, skip);
        ok &= cr_test_gradcheck(what, loss_of, &g, x + last, tg + ti->offset + last,
                                (size_t)m->table_dim[k], GC_H, GC_TOL, skip);
    }
    /* the check must have looked at most elements */
    assert_true(skipped * 5 < checked);
    free(grads);
    free(tg);
    cr_ranker_ws_free(ws);
    cr_ranker_free(m);
    assert_true(ok);
}

static void test_gradcheck_shared_bottom(void **state) {
    (void)state;
    gradcheck_model(CR_ARCH_SHARED_BOTTOM, 1, CR_LOSS_FIXED);
    gradcheck_model(CR_ARCH_SHARED_BOTTOM, 0, CR_LOSS_UNCERTAINTY); /* heads read x */
}

static void test_gradcheck_mmoe(void **state) {
    (void)state;
    gradcheck_model(CR_ARCH_MMOE, 1, CR_LOSS_UNCERTAINTY);
    gradcheck_model(CR_ARCH_MMOE, 0, CR_LOSS_FIXED); /* heads read the mix */
}

static void test_gradcheck_ple(void **state) {
    (void)state;
    gradcheck_model(CR_ARCH_PLE, 1, CR_LOSS_FIXED);
    gradcheck_model(CR_ARCH_PLE, 1, CR_LOSS_UNCERTAINTY);
}

/* ---- workspaces ------------------------------------------------------------------ */

static void test_workspaces(void **state) {
    (void)state;
    tiny t, t3;
    tiny_init(&t, TB);
    tiny_init(&t3, 3);
    cr_error e;
    for (int arch = 0; arch < 3; arch++) {
        cr_ranker *m = make(&t, (cr_arch)arch, 1, CR_LOSS_FIXED);
        const int NH = m->cfg.n_heads;
        cr_ranker_ws *tr = NULL, *inf = NULL, *inf2 = NULL, *small = NULL;
        assert_int_equal(cr_ranker_ws_create(&tr, m, TB, 1, 0, &e), CR_OK);
        assert_int_equal(cr_ranker_ws_create(&inf, m, TB, 0, 0, &e), CR_OK);
        assert_int_equal(cr_ranker_ws_create(&inf2, m, 2 * TB, 0, 0, &e), CR_OK);
        assert_int_equal(cr_ranker_ws_create(&small, m, 3, 0, 0, &e), CR_OK);
        /* an inference workspace holds no training state */
        assert_null(inf->grads);
        assert_null(inf->dacts);
        assert_null(inf->sgrads);
        assert_non_null(tr->grads);

        /* training runs the fastest product, inference the row-invariant
         * one: the same network to rounding (bit for bit only when the
         * backends happen to agree, which OpenBLAS does here and the
         * portable small-matrix path does not) */
        assert_int_equal(cr_ranker_forward(m, tr, &t.b, &e), CR_OK);
        assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_OK);
        assert_true(cr_test_close("training vs inference", tr->out, inf->out, (size_t)NH * TB,
                                  1e-6, 1e-6));

        /* a second workspace scoring another batch leaves the first alone,
         * and scores the same batch the same way */
        float *keep = malloc((size_t)NH * TB * sizeof(float));
        memcpy(keep, inf->out, (size_t)NH * TB * sizeof(float));
        assert_int_equal(cr_ranker_forward(m, inf2, &t3.b, &e), CR_OK);
        assert_memory_equal(keep, inf->out, (size_t)NH * TB * sizeof(float));
        assert_int_equal(cr_ranker_forward(m, inf2, &t.b, &e), CR_OK);
        assert_true(cr_test_close("second workspace", inf2->out, keep, (size_t)NH * TB, 1e-6,
                                  1e-6));

        /* B = 3 on workspaces of 3 and of 6 (and 12): the first 3 rows */
        assert_int_equal(cr_ranker_forward(m, small, &t3.b, &e), CR_OK);
        assert_int_equal(cr_ranker_forward(m, inf, &t3.b, &e), CR_OK);
        for (int h = 0; h < NH; h++) {
            assert_true(cr_test_close("B < max_B", inf->out + h * 3, keep + h * TB, 3, 1e-6,
                                      1e-6));
            assert_true(cr_test_close("B = max_B", small->out + h * 3, keep + h * TB, 3, 1e-6,
                                      1e-6));
        }
        /* predict: sigmoid on binary heads, values on regression heads */
        float pred[CR_MODEL_MAX_HEADS * 3];
        cr_ranker_predict(m, small, pred);
        for (int h = 0; h < NH; h++)
            for (int r = 0; r < 3; r++) {
                float o = small->out[h * 3 + r];
                float want = m->cfg.heads[h].kind == CR_HEAD_BINARY ? 1.0f / (1.0f + expf(-o)) : o;
                assert_float_equal(pred[h * 3 + r], want, 1e-6);
            }
        free(keep);
        cr_ranker_ws_free(tr);
        cr_ranker_ws_free(inf);
        cr_ranker_ws_free(inf2);
        cr_ranker_ws_free(small);
        cr_ranker_free(m);
    }
}

/* Two backward passes without zero_grad: dense gradients add, and the
 * sparse lists merge row by row (same rows, summed values). */
static void test_accumulate(void **state) {
    (void)state;
    tiny t;
    tiny_init(&t, TB);
    cr_error e;
    cr_ranker *m = make(&t, CR_ARCH_PLE, 1, CR_LOSS_UNCERTAINTY);
    cr_ranker_ws *ws = NULL;
    assert_int_equal(cr_ranker_ws_create(&ws, m, TB, 1, 0, &e), CR_OK);
    double total;
    assert_int_equal(cr_ranker_forward(m, ws, &t.b, &e), CR_OK);
    cr_ranker_zero_grad(m, ws);
    assert_int_equal(cr_ranker_loss(m, ws, &t.b, NULL, &total, &e), CR_OK);
    assert_int_equal(cr_ranker_backward(m, ws, &t.b, NULL, &e), CR_OK);
    float *g1 = malloc(m->params.total * sizeof(float));
    memcpy(g1, ws->grads, m->params.total * sizeof(float));
    cr_sparse_grad s1[NT];
    for (int k = 0; k < NT; k++) {
        assert_int_equal(cr_sparse_grad_init(&s1[k], ws->sgrads[k].cap, ws->sgrads[k].D, &e),
                         CR_OK);
        s1[k].n = ws->sgrads[k].n;
        memcpy(s1[k].rows, ws->sgrads[k].rows, (size_t)s1[k].n * sizeof(int32_t));
        memcpy(s1[k].vals, ws->sgrads[k].vals, (size_t)s1[k].n * s1[k].D * sizeof(float));
    }
    /* table a: rows read by f0 and f1 are merged into one list */
    assert_int_equal(s1[0].n, 7); /* ids 0..6 of table a, some read by both slots */
    assert_int_equal(s1[1].n, 5); /* ids 0..4 of table b */
    assert_int_equal(cr_ranker_loss(m, ws, &t.b, NULL, &total, &e), CR_OK);
    assert_int_equal(cr_ranker_backward(m, ws, &t.b, NULL, &e), CR_OK);
    for (size_t i = 0; i < m->params.total; i++) assert_float_equal(ws->grads[i], 2 * g1[i], 1e-6);
    for (int k = 0; k < NT; k++) {
        assert_int_equal(ws->sgrads[k].n, s1[k].n);
        assert_memory_equal(ws->sgrads[k].rows, s1[k].rows, (size_t)s1[k].n * sizeof(int32_t));
        for (int i = 0; i < s1[k].n * s1[k].D; i++)
            assert_float_equal(ws->sgrads[k].vals[i], 2 * s1[k].vals[i], 1e-6);
        cr_sparse_grad_free(&s1[k]);
    }
    cr_ranker_zero_grad(m, ws);
    for (int k = 0; k < NT; k++) assert_int_equal(ws->sgrads[k].n, 0);
    free(g1);
    cr_ranker_ws_free(ws);
    cr_ranker_free(m);
}

/* ---- the loss by hand -------------------------------------------------------------- */

static double bce(double z, double y) { return log1p(exp(-fabs(z))) + (z > 0 ? z : 0) - z * y; }

static void test_loss_by_hand(void **state) {
    (void)state;
    enum { B = 4 };
    float label[2 * B] = {1, 0, 1, 0, /* click */ 0.5f, 9.0f, 2.0f, 9.0f /* time */};
    float mask[2 * B] = {1, 1, 0, 1, /* click */ 1, 0, 1, 0};
    float weight[B] = {1.0f, 2.0f, 0.5f, 1.5f};
    float extra[2 * B] = {0, 0, 0, 0, 0.2f, 0.9f, 0.5f, 0.7f};
    float out[3 * B] = {0.3f, -1.2f, 2.0f, 0.1f, /* click */ 0.4f, 5.0f, 1.0f, -3.0f,
                        /* time */ -0.5f, 0.8f, 0.0f, 1.5f /* soft click on extra[1] */};
    cr_batch b;
    memset(&b, 0, sizeof b);
    b.B = b.max_B = B;
    b.n_tasks = 2;
    b.n_extra = 2;
    b.label = label;
    b.mask = mask;
    b.weight = weight;
    b.extra = extra;
    cr_head h[3];
    h[0] = (cr_head){.tower = 0, .kind = CR_HEAD_BINARY, .served = 1,
                     .target_kind = CR_TARGET_LABEL, .target = 0, .mask_task = 0, .weight = 1};
    h[1] = (cr_head){.tower = 1, .kind = CR_HEAD_REGRESSION, .served = 1,
                     .target_kind = CR_TARGET_LABEL, .target = 1, .mask_task = 1, .weight = 2};
    h[2] = (cr_head){.tower = 0, .kind = CR_HEAD_BINARY, .served = 0,
                     .target_kind = CR_TARGET_EXTRA, .target = 1, .mask_task = -1, .weight = 0.5f};
    for (int i = 0; i < 3; i++) snprintf(h[i].name, 64, "h%d", i);

    /* by hand: click over rows 0, 1, 3 (weights 1, 2, 1.5); time over rows
     * 0, 2 (weights 1, 0.5; labels 9 at masked rows never count); soft
     * click on extra column 1 over all rows */
    double L0 = (1.0 * bce(0.3, 1) + 2.0 * bce(-1.2, 0) + 1.5 * bce(0.1, 0)) / 4.5;
    double L1 = (1.0 * pow(0.4 - 0.5, 2) + 0.5 * pow(1.0 - 2.0, 2)) / 1.5;
    double L2 = (1.0 * bce(-0.5, 0.2) + 2.0 * bce(0.8, 0.9) + 0.5 * bce(0.0, 0.5) +
                 1.5 * bce(1.5, 0.7)) / 5.0;
    double hl[3], total;
    float dout[3 * B];
    cr_error e;
    assert_int_equal(cr_multitask_loss(h, 3, CR_LOSS_FIXED, NULL, &b, out, dout, NULL, hl,
                                       &total, &e),
                     CR_OK);
    assert_float_equal(hl[0], L0, 1e-6);
    assert_float_equal(hl[1], L1, 1e-6);
    assert_float_equal(hl[2], L2, 1e-6);
    assert_float_equal(total, L0 + 2 * L1 + 0.5 * L2, 1e-6);
    /* d/dout of a masked row is 0; of row 1 of the soft head: 0.5 * 2 * (s - 0.9) / 5 */
    assert_float_equal(dout[2], 0.0f, 0.0f);
    assert_float_equal(dout[B + 1], 0.0f, 0.0f);
    assert_float_equal(dout[2 * B + 1], 0.5 * 2.0 * (1 / (1 + exp(-0.8)) - 0.9) / 5.0, 1e-6);

    /* uncertainty: total = sum_served exp(-s_k) w L + s_k, plus w L unserved */
    float lv[2] = {0.4f, -0.3f}, dlv[2] = {0, 0};
    assert_int_equal(cr_multitask_loss(h, 3, CR_LOSS_UNCERTAINTY, lv, &b, out, dout, dlv, hl,
                                       &total, &e),
                     CR_OK);
    double want = exp(-0.4) * L0 + 0.4 + exp(0.3) * 2 * L1 - 0.3 + 0.5 * L2;
    assert_float_equal(total, want, 1e-6);
    assert_float_equal(dlv[0], 1 - exp(-0.4) * L0, 1e-6);
    assert_float_equal(dlv[1], 1 - exp(0.3) * 2 * L1, 1e-6);

    /* finite differences of the total w.r.t. every output */
    for (int i = 0; i < 3 * B; i++) {
        float o0 = out[i];
        double tp, tm;
        out[i] = o0 + 1e-3f;
        cr_multitask_loss(h, 3, CR_LOSS_UNCERTAINTY, lv, &b, out, NULL, NULL, NULL, &tp, &e);
        out[i] = o0 - 1e-3f;
        cr_multitask_loss(h, 3, CR_LOSS_UNCERTAINTY, lv, &b, out, NULL, NULL, NULL, &tm, &e);
        out[i] = o0;
        double num = (tp - tm) / (2 * ((double)(o0 + 1e-3f) - o0));
        assert_float_equal(dout[i], num, 2e-4);
    }

    /* a head whose examples are all masked contributes 0, not NaN */
    float mask0[2 * B] = {0};
    b.mask = mask0;
    assert_int_equal(cr_multitask_loss(h, 2, CR_LOSS_FIXED, NULL, &b, out, dout, NULL, hl,
                                       &total, &e),
                     CR_OK);
    assert_float_equal(total, 0.0, 0.0);
    for (int i = 0; i < 2 * B; i++) assert_float_equal(dout[i], 0.0f, 0.0f);
    b.mask = mask;

    /* targets the batch does not have */
    h[2].target = 2;
    assert_int_equal(cr_multitask_loss(h, 3, CR_LOSS_FIXED, NULL, &b, out, dout, NULL, hl,
                                       &total, &e),
                     CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "extra column 2"));
}

/* ---- errors ------------------------------------------------------------------------ */

static void test_errors(void **state) {
    (void)state;
    tiny t;
    tiny_init(&t, TB);
    cr_error e;
    cr_model_cfg c;
    cr_ranker *m = NULL;

    cfg_for(&c, &t.s, CR_ARCH_MMOE, 1);
    c.heads[1].tower = 5;
    assert_int_equal(cr_ranker_create(&m, &t.s, &c, 1, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "tower 5"));
    assert_null(m);
    cfg_for(&c, &t.s, CR_ARCH_MMOE, 1);
    snprintf(c.heads[2].name, 64, "click");
    assert_int_equal(cr_ranker_create(&m, &t.s, &c, 1, &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "used twice"));
    cfg_for(&c, &t.s, CR_ARCH_PLE, 1);
    c.shared_experts = c.task_experts = 0;
    assert_int_equal(cr_ranker_create(&m, &t.s, &c, 1, &e), CR_ERR_CONFIG);
    cfg_for(&c, &t.s, CR_ARCH_MMOE, 1);
    c.n_expert_layers = 0;
    assert_int_equal(cr_ranker_create(&m, &t.s, &c, 1, &e), CR_ERR_CONFIG);

    m = make(&t, CR_ARCH_MMOE, 1, CR_LOSS_FIXED);
    cr_ranker_ws *inf = NULL, *tr = NULL;
    assert_int_equal(cr_ranker_ws_create(&inf, m, 4, 0, 0, &e), CR_OK);
    assert_int_equal(cr_ranker_ws_create(&tr, m, TB, 1, 3, &e), CR_OK); /* 3 bag ids max */
    /* B above max_B */
    assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "expected 1 to the workspace's 4"));
    /* an id outside its table, and a bag offset going backwards */
    t.cat[5] = 8;
    assert_int_equal(cr_ranker_forward(m, tr, &t.b, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "row 2"));
    t.cat[5] = 6;
    t.off[3] = 2;
    assert_int_equal(cr_ranker_forward(m, tr, &t.b, &e), CR_ERR_ARG);
    t.off[3] = 3;
    /* backward on an inference workspace; more bag ids than the workspace allows */
    tiny t4;
    tiny_init(&t4, 4);
    assert_int_equal(cr_ranker_forward(m, inf, &t4.b, &e), CR_OK);
    assert_int_equal(cr_ranker_backward(m, inf, &t4.b, NULL, &e), CR_ERR_ARG);
    assert_int_equal(cr_ranker_forward(m, tr, &t.b, &e), CR_OK);
    cr_ranker_zero_grad(m, tr);
    double total;
    assert_int_equal(cr_ranker_loss(m, tr, &t.b, NULL, &total, &e), CR_OK);
    assert_int_equal(cr_ranker_backward(m, tr, &t.b, NULL, &e), CR_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "max_bag_ids"));
    /* a batch of another size than the forward */
    assert_int_equal(cr_ranker_backward(m, tr, &t4.b, NULL, &e), CR_ERR_ARG);
    cr_ranker_ws_free(inf);
    cr_ranker_ws_free(tr);
    cr_ranker_free(m);
}

/* Packed weights (cr_ranker_pack) score the same bits as the unpacked
 * inference path, for every architecture, at 1 and 2 threads; training
 * workspaces ignore them; they are a snapshot that packing again
 * refreshes, and re-initialising the parameters drops them. */
static void test_packed(void **state) {
    (void)state;
    tiny t;
    tiny_init(&t, TB);
    cr_error e;
    int saved = cr_get_threads();
    for (int arch = 0; arch < 3; arch++)
        for (int layers = 0; layers < 3; layers += 2) {
            cr_ranker *m = make(&t, (cr_arch)arch, layers, CR_LOSS_FIXED);
            const size_t n = (size_t)m->cfg.n_heads * TB;
            cr_ranker_ws *inf = NULL, *tr = NULL;
            assert_int_equal(cr_ranker_ws_create(&inf, m, TB, 0, 0, &e), CR_OK);
            assert_int_equal(cr_ranker_ws_create(&tr, m, TB, 1, 0, &e), CR_OK);
            float *ref = malloc(n * sizeof(float)), *tref = malloc(n * sizeof(float));
            cr_set_threads(1);
            assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_OK);
            memcpy(ref, inf->out, n * sizeof(float));
            assert_int_equal(cr_ranker_forward(m, tr, &t.b, &e), CR_OK);
            memcpy(tref, tr->out, n * sizeof(float));
            assert_null(m->packed);
            assert_int_equal(cr_ranker_pack(m, &e), CR_OK);
            assert_non_null(m->packed);
            for (int th = 1; th <= 2; th++) {
                cr_set_threads(th);
                assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_OK);
                assert_memory_equal(inf->out, ref, n * sizeof(float));
            }
            cr_set_threads(1);
            /* a snapshot: a changed weight is not seen until packed again;
             * a training workspace reads the parameters themselves */
            float *hb = cr_ptable_ptr(&m->params, m->params.data, m->head_b[0]);
            hb[0] += 0.5f; /* a bias: the snapshot holds those too */
            int wi = m->head_w[m->cfg.n_heads - 1];
            float *w = cr_ptable_ptr(&m->params, m->params.data, wi);
            for (size_t i = 0; i < m->params.t[wi].numel; i++) w[i] *= 1.5f;
            assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_OK);
            assert_memory_equal(inf->out, ref, n * sizeof(float));
            assert_int_equal(cr_ranker_forward(m, tr, &t.b, &e), CR_OK);
            assert_memory_not_equal(tr->out, tref, n * sizeof(float));
            memcpy(tref, tr->out, n * sizeof(float));
            assert_int_equal(cr_ranker_pack(m, &e), CR_OK); /* replaces the copy */
            assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_OK);
            assert_memory_not_equal(inf->out, ref, n * sizeof(float));
            cr_ranker_unpack(m);
            memcpy(ref, inf->out, n * sizeof(float));
            assert_int_equal(cr_ranker_forward(m, inf, &t.b, &e), CR_OK);
            assert_memory_equal(inf->out, ref, n * sizeof(float));
            assert_int_equal(cr_ranker_pack(m, &e), CR_OK);
            cr_ranker_init_params(m, 99);
            assert_null(m->packed);
            cr_ranker_ws_free(inf);
            cr_ranker_ws_free(tr);
            free(ref);
            free(tref);
            cr_ranker_free(m);
        }
    cr_set_threads(saved);
}

/* A forward of many rows on two threads splits the batch by rows: the
 * same bits as one thread and as the rows scored one at a time, packed or
 * not, for every architecture; the caller's thread count is left alone. */
static void test_split_forward(void **state) {
    (void)state;
    enum { BB = 203 };
    tiny t;
    tiny_init(&t, TB);
    /* BB rows cycling through the tiny rows, with noise on the dense values */
    static int32_t cat[BB * 2], ids[BB * 3];
    static int64_t off[BB + 1];
    static float dense[BB * 2];
    int64_t *offp = off;
    int32_t *idsp = ids;
    cr_test_fill(dense, BB * 2, 1.0f, 77);
    for (int r = 0; r < BB; r++) {
        int q = r % TB;
        cat[2 * r] = t.cat[2 * q], cat[2 * r + 1] = t.cat[2 * q + 1];
        off[r + 1] = off[r];
        for (int64_t j = t.off[q]; j < t.off[q + 1]; j++) ids[off[r + 1]++] = t.ids[j];
    }
    cr_batch big = t.b;
    big.B = big.max_B = BB;
    big.cat = cat, big.bag_off = &offp, big.bag_ids = &idsp, big.dense = dense;
    big.label = big.mask = big.weight = big.extra = NULL;
    cr_error e;
    int saved = cr_get_threads();
    for (int arch = 0; arch < 3; arch++)
        for (int packed = 0; packed < 2; packed++) {
            cr_ranker *m = make(&t, (cr_arch)arch, 2, CR_LOSS_FIXED);
            if (packed) assert_int_equal(cr_ranker_pack(m, &e), CR_OK);
            const int NH = m->cfg.n_heads;
            cr_ranker_ws *ws = NULL, *one = NULL;
            assert_int_equal(cr_ranker_ws_create(&ws, m, BB, 0, 0, &e), CR_OK);
            assert_int_equal(cr_ranker_ws_create(&one, m, 1, 0, 0, &e), CR_OK);
            float *ref = malloc(sizeof(float) * NH * BB);
            cr_set_threads(1);
            assert_int_equal(cr_ranker_forward(m, ws, &big, &e), CR_OK);
            memcpy(ref, ws->out, sizeof(float) * NH * BB);
            cr_set_threads(2);
            int two = cr_get_threads(); /* 1 in a build without OpenMP */
            assert_int_equal(cr_ranker_forward(m, ws, &big, &e), CR_OK);
            assert_int_equal(cr_get_threads(), two); /* the split restores it */
            assert_memory_equal(ws->out, ref, sizeof(float) * NH * BB);
            for (int r = 0; r < BB; r += 37) { /* a row alone: the same bits */
                cr_batch row = big;
                row.B = row.max_B = 1;
                row.cat = cat + 2 * r, row.dense = dense + 2 * r;
                int64_t *ro = off + r;
                row.bag_off = &ro;
                assert_int_equal(cr_ranker_forward(m, one, &row, &e), CR_OK);
                for (int h = 0; h < NH; h++)
                    assert_memory_equal(&one->out[h], &ref[h * BB + r], sizeof(float));
            }
            cr_ranker_ws_free(ws);
            cr_ranker_ws_free(one);
            free(ref);
            cr_ranker_free(m);
        }
    cr_set_threads(saved);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradcheck_shared_bottom),
        cmocka_unit_test(test_gradcheck_mmoe),
        cmocka_unit_test(test_gradcheck_ple),
        cmocka_unit_test(test_workspaces),
        cmocka_unit_test(test_packed),
        cmocka_unit_test(test_split_forward),
        cmocka_unit_test(test_accumulate),
        cmocka_unit_test(test_loss_by_hand),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
