/*
 * test_twin_rank.c - the ranker against its PyTorch twin: for shared
 * bottom, MMoE and PLE (tests/fixtures/rank_*.safetensors, written by
 * tools/twin_rank.py) load the twin's initial values into the C model,
 * then compare head outputs, per-head and total losses, every dense
 * gradient and every table gradient (row-sparse, scattered to dense), then
 * 5 steps of Adam + lazy Adam (SparseAdam) against the twin's losses and
 * final parameters. The schema is built by hand from the fixture's JSON.
 */
#include "util/testutil.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../src/rank/loss.h"

/* Forward values agree to a few float ulps; gradients pass through more
 * sums (in a different order than torch's), so they get a little more. */
#define OUT_ATOL 1e-6
#define OUT_RTOL 1e-5
#define GRAD_ATOL 1e-7
#define GRAD_RTOL 2e-5
#define STEP_ATOL 2e-6
#define STEP_RTOL 2e-5

typedef struct fixture {
    cr_st_file f;
    cJSON *cfg;
    cr_schema s;
    cr_model_cfg mc;
    cr_batch b;
    int steps;
    float lr, beta1, beta2, eps;
} fixture;

/* The worst |a-b| / (atol + rtol|b|) over the case, for the summary line. */
typedef struct worst {
    double out, loss, grad, step;
} worst;

static double ratio(const float *a, const float *b, size_t n, double atol, double rtol) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)a[i] - b[i]) / (atol + rtol * fabs((double)b[i]));
        if (!(r <= w)) w = r;
    }
    return w;
}

static int check(const char *what, const float *a, const float *b, size_t n, double atol,
                 double rtol, double *w) {
    double r = ratio(a, b, n, atol, rtol);
    if (!(r <= *w)) *w = r;
    return cr_test_close(what, a, b, n, atol, rtol);
}

/* Copy a tensor of the fixture (any alignment) into dst after checking its
 * dtype and element count. */
static void load(fixture *fx, const char *name, cr_dtype dt, void *dst, size_t numel) {
    const cr_st_tensor *t = cr_st_find(&fx->f, name);
    if (!t) {
        fprintf(stderr, "%s: tensor '%s' missing (regenerate with tools/twin_rank.py)\n",
                fx->f.path, name);
        fail();
    }
    if (t->dtype != dt || t->numel != numel) {
        fprintf(stderr, "%s: tensor '%s' is %s with %zu values, expected %s with %zu\n",
                fx->f.path, name, cr_dtype_name(t->dtype), t->numel, cr_dtype_name(dt), numel);
        fail();
    }
    memcpy(dst, t->data, t->nbytes);
}

static float *load_f32(fixture *fx, const char *name, size_t numel) {
    float *p = malloc((numel ? numel : 1) * sizeof(float));
    assert_non_null(p);
    load(fx, name, CR_DT_F32, p, numel);
    return p;
}

static cJSON *jget(const cJSON *o, const char *key) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        fprintf(stderr, "fixture config: key '%s' missing\n", key);
        fail();
    }
    return v;
}

static int jint(const cJSON *o, const char *key) { return (int)jget(o, key)->valuedouble; }

static int jlist(const cJSON *o, const char *key, int *out) {
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(o, key)) {
        assert_true(n < CR_MODEL_MAX_LAYERS);
        out[n++] = (int)it->valuedouble;
    }
    return n;
}

/* The schema cr_schema_finish would derive, built from the twin's JSON. */
static void build_schema(fixture *fx) {
    cr_schema *s = &fx->s;
    const cJSON *js = jget(fx->cfg, "schema");
    const cJSON *tables = jget(js, "tables"), *cat = jget(js, "cat"), *multi = jget(js, "multi");
    const cJSON *tasks = jget(js, "tasks");
    memset(s, 0, sizeof *s);
    s->n_tables = cJSON_GetArraySize(tables);
    s->n_cat = cJSON_GetArraySize(cat);
    s->n_multi = cJSON_GetArraySize(multi);
    s->n_dense = jint(js, "n_dense");
    s->n_tasks = cJSON_GetArraySize(tasks);
    s->n_features = s->n_cat + s->n_multi + s->n_dense;
    s->features = calloc((size_t)s->n_features, sizeof *s->features);
    s->tasks = calloc((size_t)s->n_tasks, sizeof *s->tasks);
    s->cat_feat = calloc((size_t)s->n_cat + 1, sizeof(int));
    s->multi_feat = calloc((size_t)s->n_multi + 1, sizeof(int));
    s->dense_feat = calloc((size_t)s->n_dense + 1, sizeof(int));
    s->table_rows = calloc((size_t)s->n_tables, sizeof(int64_t));
    s->table_dim = calloc((size_t)s->n_tables, sizeof(int));
    s->table_name = calloc((size_t)s->n_tables, sizeof *s->table_name);
    assert_true(s->features && s->tasks && s->table_rows && s->table_dim && s->table_name);
    int t = 0, f = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, tables) {
        snprintf(s->table_name[t], 64, "%s", jget(it, "name")->valuestring);
        s->table_rows[t] = jint(it, "rows");
        s->table_dim[t] = jint(it, "dim");
        t++;
    }
    int i = 0;
    cJSON_ArrayForEach(it, cat) {
        cr_feature *ft = &s->features[f];
        snprintf(ft->name, sizeof ft->name, "%s", jget(it, "name")->valuestring);
        ft->kind = CR_FEAT_CATEGORICAL;
        ft->table = jint(it, "table");
        ft->dim = s->table_dim[ft->table];
        s->cat_feat[i++] = f++;
    }
    i = 0;
    cJSON_ArrayForEach(it, multi) {
        cr_feature *ft = &s->features[f];
        snprintf(ft->name, sizeof ft->name, "%s", jget(it, "name")->valuestring);
        ft->kind = CR_FEAT_MULTI;
        ft->table = jint(it, "table");
        ft->dim = s->table_dim[ft->table];
        ft->pooling = strcmp(jget(it, "pooling")->valuestring, "mean") == 0 ? CR_POOL_MEAN
                                                                            : CR_POOL_SUM;
        s->multi_feat[i++] = f++;
    }
    for (i = 0; i < s->n_dense; i++) {
        cr_feature *ft = &s->features[f];
        snprintf(ft->name, sizeof ft->name, "dense%d", i);
        ft->kind = CR_FEAT_NUMERIC;
        ft->table = -1;
        s->dense_feat[i] = f++;
    }
    i = 0;
    cJSON_ArrayForEach(it, tasks) {
        cr_task *tk = &s->tasks[i++];
        snprintf(tk->name, sizeof tk->name, "%s", jget(it, "name")->valuestring);
        tk->kind = strcmp(jget(it, "kind")->valuestring, "binary") == 0 ? CR_TASK_BINARY
                                                                         : CR_TASK_REGRESSION;
        tk->weight = (float)jget(it, "weight")->valuedouble;
    }
}

static void free_schema(cr_schema *s) {
    free(s->features);
    free(s->tasks);
    free(s->cat_feat);
    free(s->multi_feat);
    free(s->dense_feat);
    free(s->table_rows);
    free(s->table_dim);
    free(s->table_name);
}

static void build_cfg(fixture *fx) {
    cr_model_cfg *c = &fx->mc;
    const cJSON *j = fx->cfg;
    cr_model_cfg_defaults(c, &fx->s);
    const char *arch = jget(j, "arch")->valuestring;
    c->arch = strcmp(arch, "shared_bottom") == 0 ? CR_ARCH_SHARED_BOTTOM
              : strcmp(arch, "mmoe") == 0        ? CR_ARCH_MMOE
                                                 : CR_ARCH_PLE;
    c->n_bottom = jlist(j, "bottom_layers", c->bottom_layers);
    c->n_experts = jint(j, "n_experts");
    c->shared_experts = jint(j, "shared_experts");
    c->task_experts = jint(j, "task_experts");
    c->n_expert_layers = jlist(j, "expert_layers", c->expert_layers);
    c->n_tower = jlist(j, "tower_layers", c->tower_layers);
    c->loss_weighting = strcmp(jget(j, "loss_weighting")->valuestring, "uncertainty") == 0
                            ? CR_LOSS_UNCERTAINTY
                            : CR_LOSS_FIXED;
    c->emb_init = (float)jget(j, "emb_init")->valuedouble;
    c->n_heads = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, jget(j, "heads")) {
        cr_head *h = &c->heads[c->n_heads++];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", jget(it, "name")->valuestring);
        h->tower = jint(it, "tower");
        h->kind = strcmp(jget(it, "kind")->valuestring, "binary") == 0 ? CR_HEAD_BINARY
                                                                        : CR_HEAD_REGRESSION;
        h->served = jint(it, "served");
        h->target_kind = strcmp(jget(it, "target_kind")->valuestring, "label") == 0
                             ? CR_TARGET_LABEL
                             : CR_TARGET_EXTRA;
        h->target = jint(it, "target");
        h->mask_task = jint(it, "mask_task");
        h->weight = (float)jget(it, "weight")->valuedouble;
    }
}

static void build_batch(fixture *fx) {
    cr_batch *b = &fx->b;
    const cr_schema *s = &fx->s;
    const int B = jint(fx->cfg, "B");
    const int n_extra = jint(jget(fx->cfg, "schema"), "n_extra");
    memset(b, 0, sizeof *b);
    b->B = b->max_B = B;
    b->n_cat = s->n_cat;
    b->n_multi = s->n_multi;
    b->n_dense = s->n_dense;
    b->n_tasks = s->n_tasks;
    b->n_extra = n_extra;
    b->cat = malloc((size_t)B * s->n_cat * sizeof(int32_t));
    load(fx, "batch.cat", CR_DT_I32, b->cat, (size_t)B * s->n_cat);
    b->bag_off = calloc((size_t)s->n_multi + 1, sizeof *b->bag_off);
    b->bag_ids = calloc((size_t)s->n_multi + 1, sizeof *b->bag_ids);
    for (int i = 0; i < s->n_multi; i++) {
        char name[64];
        snprintf(name, sizeof name, "batch.bag_off.%d", i);
        b->bag_off[i] = malloc((size_t)(B + 1) * sizeof(int64_t));
        load(fx, name, CR_DT_I64, b->bag_off[i], (size_t)B + 1);
        size_t nnz = (size_t)(b->bag_off[i][B] - b->bag_off[i][0]);
        snprintf(name, sizeof name, "batch.bag_ids.%d", i);
        b->bag_ids[i] = malloc((nnz ? nnz : 1) * sizeof(int32_t));
        load(fx, name, CR_DT_I32, b->bag_ids[i], nnz);
    }
    b->dense = load_f32(fx, "batch.dense", (size_t)B * s->n_dense);
    b->label = load_f32(fx, "batch.label", (size_t)s->n_tasks * B);
    b->mask = load_f32(fx, "batch.mask", (size_t)s->n_tasks * B);
    b->weight = load_f32(fx, "batch.weight", (size_t)B);
    b->extra = load_f32(fx, "batch.extra", (size_t)n_extra * B);
}

static void free_batch(cr_batch *b) {
    free(b->cat);
    for (int i = 0; i < b->n_multi; i++) {
        free(b->bag_off[i]);
        free(b->bag_ids[i]);
    }
    free(b->bag_off);
    free(b->bag_ids);
    free(b->dense);
    free(b->label);
    free(b->mask);
    free(b->weight);
    free(b->extra);
}

static void open_fixture(fixture *fx, const char *path) {
    cr_error e;
    memset(fx, 0, sizeof *fx);
    if (cr_st_open(&fx->f, path, &e) != CR_OK) {
        fprintf(stderr, "%s (regenerate with /usr/bin/python3 tools/twin_rank.py)\n", e.msg);
        fail();
    }
    const char *js = cr_st_meta(&fx->f, "config");
    assert_non_null(js);
    fx->cfg = cJSON_Parse(js);
    assert_non_null(fx->cfg);
    fx->steps = jint(fx->cfg, "steps");
    fx->lr = (float)jget(fx->cfg, "lr")->valuedouble;
    fx->beta1 = (float)jget(fx->cfg, "beta1")->valuedouble;
    fx->beta2 = (float)jget(fx->cfg, "beta2")->valuedouble;
    fx->eps = (float)jget(fx->cfg, "eps")->valuedouble;
    build_schema(fx);
    build_cfg(fx);
    build_batch(fx);
}

static void close_fixture(fixture *fx) {
    free_batch(&fx->b);
    free_schema(&fx->s);
    cJSON_Delete(fx->cfg);
    cr_st_close(&fx->f);
}

/* Every tensor of pt takes "<prefix>.<name>" from the fixture, shapes
 * checked; returns how many were loaded. */
static int load_table(fixture *fx, const cr_ptable *pt, float *slab, const char *prefix) {
    for (int i = 0; i < pt->n; i++) {
        char name[CR_MAX_NAME + 16];
        snprintf(name, sizeof name, "%s.%s", prefix, pt->t[i].name);
        const cr_st_tensor *t = NULL;
        cr_error e;
        if (cr_st_expect(&fx->f, name, CR_DT_F32, pt->t[i].ndim, pt->t[i].shape, &t, &e) !=
            CR_OK) {
            fprintf(stderr, "%s\n", e.msg);
            fail();
        }
        memcpy(slab + pt->t[i].offset, t->data, t->nbytes);
    }
    return pt->n;
}

/* Compare every tensor of pt in slab with "<prefix>.<name>". */
static int compare_table(fixture *fx, const cr_ptable *pt, const float *slab,
                         const char *prefix, double atol, double rtol, double *w) {
    int ok = 1;
    for (int i = 0; i < pt->n; i++) {
        char name[CR_MAX_NAME + 16];
        snprintf(name, sizeof name, "%s.%s", prefix, pt->t[i].name);
        float *ref = load_f32(fx, name, pt->t[i].numel);
        ok &= check(name, slab + pt->t[i].offset, ref, pt->t[i].numel, atol, rtol, w);
        free(ref);
    }
    return ok;
}

static void run_case(const char *path) {
    fixture fx;
    open_fixture(&fx, path);
    cr_error e;
    cr_ranker *m = NULL;
    if (cr_ranker_create(&m, &fx.s, &fx.mc, 1, &e) != CR_OK) {
        fprintf(stderr, "%s: %s\n", path, e.msg);
        fail();
    }
    /* The fixture holds exactly the model's tensors: all of them, no more. */
    int n_init = 0;
    for (int i = 0; i < fx.f.n; i++) n_init += strncmp(fx.f.t[i].name, "init.", 5) == 0;
    int loaded = load_table(&fx, &m->params, m->params.data, "init") +
                 load_table(&fx, &m->tables, m->tables.data, "init");
    assert_int_equal(loaded, n_init);

    const int B = fx.b.B, NH = m->cfg.n_heads;
    worst w = {0, 0, 0, 0};
    int ok = 1;
    /* a workspace larger than the batch: every buffer is read with stride */
    cr_ranker_ws *ws = NULL;
    assert_int_equal(cr_ranker_ws_create(&ws, m, B + 5, 1, 0, &e), CR_OK);
    assert_int_equal(cr_ranker_forward(m, ws, &fx.b, &e), CR_OK);
    float *ref = load_f32(&fx, "out", (size_t)NH * B);
    ok &= check("out", ws->out, ref, (size_t)NH * B, OUT_ATOL, OUT_RTOL, &w.out);
    free(ref);

    double hl[CR_MODEL_MAX_HEADS], total;
    float hlf[CR_MODEL_MAX_HEADS], totf;
    cr_ranker_zero_grad(m, ws);
    assert_int_equal(cr_ranker_loss(m, ws, &fx.b, hl, &total, &e), CR_OK);
    for (int h = 0; h < NH; h++) hlf[h] = (float)hl[h];
    totf = (float)total;
    ref = load_f32(&fx, "loss.heads", (size_t)NH);
    ok &= check("loss.heads", hlf, ref, (size_t)NH, OUT_ATOL, OUT_RTOL, &w.loss);
    free(ref);
    ref = load_f32(&fx, "loss.total", 1);
    ok &= check("loss.total", &totf, ref, 1, OUT_ATOL, OUT_RTOL, &w.loss);
    free(ref);

    assert_int_equal(cr_ranker_backward(m, ws, &fx.b, NULL, &e), CR_OK);
    ok &= compare_table(&fx, &m->params, ws->grads, "grad", GRAD_ATOL, GRAD_RTOL, &w.grad);
    for (int t = 0; t < m->n_tables; t++) {
        const cr_tensor_info *ti = &m->tables.t[m->table_param[t]];
        float *dense = malloc(ti->numel * sizeof(float));
        cr_sparse_grad_to_dense(&ws->sgrads[t], dense, m->table_rows[t]);
        char name[CR_MAX_NAME + 16];
        snprintf(name, sizeof name, "grad.%s", ti->name);
        ref = load_f32(&fx, name, ti->numel);
        ok &= check(name, dense, ref, ti->numel, GRAD_ATOL, GRAD_RTOL, &w.grad);
        /* every listed row is unique, ascending and really read by the batch */
        for (int r = 1; r < ws->sgrads[t].n; r++)
            assert_true(ws->sgrads[t].rows[r] > ws->sgrads[t].rows[r - 1]);
        free(ref);
        free(dense);
    }

    /* 5 steps of Adam (dense) + lazy Adam (tables) on the same batch */
    cr_adam opt;
    cr_sparse_opt *sopt = calloc((size_t)m->n_tables, sizeof *sopt);
    assert_non_null(sopt);
    assert_int_equal(cr_adam_init(&opt, &m->params, CR_OPT_ADAM, fx.lr, fx.beta1, fx.beta2,
                                  fx.eps, 0.0f, &e),
                     CR_OK);
    for (int t = 0; t < m->n_tables; t++)
        assert_int_equal(cr_sparse_opt_init(&sopt[t], CR_SPARSE_LAZY_ADAM, m->table_rows[t],
                                            m->table_dim[t], fx.lr, fx.beta1, fx.beta2, fx.eps,
                                            0.0f, &e),
                         CR_OK);
    float *losses = calloc((size_t)fx.steps, sizeof(float));
    for (int s = 0; s < fx.steps; s++) {
        assert_int_equal(cr_ranker_forward(m, ws, &fx.b, &e), CR_OK);
        cr_ranker_zero_grad(m, ws);
        assert_int_equal(cr_ranker_loss(m, ws, &fx.b, NULL, &total, &e), CR_OK);
        losses[s] = (float)total;
        assert_int_equal(cr_ranker_backward(m, ws, &fx.b, NULL, &e), CR_OK);
        cr_adam_step(&opt, &m->params, m->params.data, ws->grads, fx.lr);
        for (int t = 0; t < m->n_tables; t++)
            cr_sparse_opt_step(&sopt[t], cr_ptable_ptr(&m->tables, m->tables.data,
                                                       m->table_param[t]),
                               &ws->sgrads[t], fx.lr);
    }
    ref = load_f32(&fx, "steps.loss", (size_t)fx.steps);
    ok &= check("steps.loss", losses, ref, (size_t)fx.steps, OUT_ATOL, OUT_RTOL, &w.step);
    free(ref);
    ok &= compare_table(&fx, &m->params, m->params.data, "final", STEP_ATOL, STEP_RTOL, &w.step);
    ok &= compare_table(&fx, &m->tables, m->tables.data, "final", STEP_ATOL, STEP_RTOL, &w.step);
    /* the losses must actually move, or the step comparison proves nothing */
    assert_true(losses[fx.steps - 1] < losses[0]);

    fprintf(stderr,
            "%s: worst error / tolerance: out %.3f, loss %.3f, grads %.3f, steps %.3f\n",
            path, w.out, w.loss, w.grad, w.step);
    free(losses);
    for (int t = 0; t < m->n_tables; t++) cr_sparse_opt_free(&sopt[t]);
    free(sopt);
    cr_adam_free(&opt);
    cr_ranker_ws_free(ws);
    cr_ranker_free(m);
    close_fixture(&fx);
    assert_true(ok);
}

static void test_twin_shared_bottom(void **state) {
    (void)state;
    run_case("tests/fixtures/rank_shared_bottom.safetensors");
}

static void test_twin_mmoe(void **state) {
    (void)state;
    run_case("tests/fixtures/rank_mmoe.safetensors");
}

static void test_twin_ple(void **state) {
    (void)state;
    run_case("tests/fixtures/rank_ple.safetensors");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_twin_shared_bottom),
        cmocka_unit_test(test_twin_mmoe),
        cmocka_unit_test(test_twin_ple),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
