/*
 * test_qformer.c - the item encoder against its PyTorch twin
 * (tools/twin_qformer.py -> tests/fixtures/qf_twin.safetensors): the ITC
 * outputs of both streams, each phase-1 loss alone (ITC, ITM with its hard
 * negatives drawn from fixed uniforms, ITG, item-item with an in-batch
 * duplicate, user-item) with every parameter gradient, then three AdamW
 * steps on the sum; plus the checkpoint round trip and its errors.
 */
#include "util/testutil.h"

#include "../src/core/ptable_io.h"
#include "../src/ilm/phase1.h"
#include "../src/train/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/qf_twin.safetensors"
#define OUT_ATOL 2e-5
#define OUT_RTOL 1e-4
#define GRAD_ATOL 3e-5
#define GRAD_RTOL 2e-3

typedef struct twin {
    cr_st_file   f;
    cr_qformer   m;
    cr_phase1    p;
    int          B, T;
    cr_p1_text_batch tb;
    cr_p1_pair_batch ii, ui;
} twin;

/* A tensor that must exist with n values; fails the test otherwise. */
static const void *need(const twin *tw, const char *name, size_t n) {
    const cr_st_tensor *t = cr_st_find(&tw->f, name);
    if (!t || t->numel != n) {
        fprintf(stderr, "%s: '%s' missing or not %zu values\n", FIXTURE, name, n);
        fail();
    }
    return t->data;
}

static int meta_int(const cr_st_file *f, const char *k) {
    const char *v = cr_st_meta(f, k);
    assert_non_null(v);
    return atoi(v);
}

static void twin_open(twin *tw) {
    cr_error e = {0};
    memset(tw, 0, sizeof *tw);
    assert_int_equal(cr_st_open(&tw->f, FIXTURE, &e), CR_OK);
    cr_qformer_cfg c;
#define M_(k) c.k = meta_int(&tw->f, #k);
    M_(nq) M_(layers) M_(width) M_(heads) M_(ffn) M_(n_kv) M_(d_cf) M_(vocab) M_(max_text)
    M_(embed)
#undef M_
    tw->B = meta_int(&tw->f, "B");
    tw->T = meta_int(&tw->f, "T");
    assert_int_equal(cr_qformer_init(&tw->m, &c, 9, &e), CR_OK);
    if (cr_ptable_from_st(&tw->m.pt, tw->m.pt.data, "init.", &tw->f, 0, &e)) fail_msg("%s", e.msg);
    assert_int_equal(cr_phase1_init(&tw->p, &tw->m, tw->B, tw->T, &e), CR_OK);
    int B = tw->B, T = tw->T, D = c.d_cf;
    tw->tb = (cr_p1_text_batch){.B = B, .T = T, .cf = need(tw, "batch.cf", (size_t)B * D),
                                .ids = need(tw, "batch.ids", (size_t)B * T),
                                .len = need(tw, "batch.len", (size_t)B),
                                .u = need(tw, "batch.u", 2 * (size_t)B)};
    cr_p1_pair_batch *pb[2] = {&tw->ii, &tw->ui};
    const char *nm[2] = {"ii", "ui"};
    char k[64];
    for (int i = 0; i < 2; i++) {
        pb[i]->B = B;
#define T_(field, sfx, n) snprintf(k, sizeof k, "%s." sfx, nm[i]), pb[i]->field = need(tw, k, n);
        T_(a, "a", (size_t)B * D) T_(b, "b", (size_t)B * D) T_(key_a, "key_a", (size_t)B)
        T_(key_b, "key_b", (size_t)B)
#undef T_
        pb[i]->kind_a = i ? CR_QF_USER : CR_QF_ITEM;
        pb[i]->kind_b = CR_QF_ITEM;
    }
}

static void twin_close(twin *tw) {
    cr_phase1_free(&tw->p);
    cr_qformer_free(&tw->m);
    cr_st_close(&tw->f);
}

static void test_outputs(void **state) {
    (void)state;
    twin tw;
    twin_open(&tw);
    cr_qformer_forward(&tw.m, &tw.p.ws, tw.tb.cf, NULL, tw.tb.ids, tw.tb.len, tw.B, tw.T,
                       CR_QF_ITC);
    size_t nq = (size_t)tw.B * tw.m.c.nq * tw.m.c.width, nt = (size_t)tw.B * tw.T * tw.m.c.width;
    int ok = cr_test_close("out.query", cr_qformer_query_out(&tw.p.ws),
                           need(&tw, "out.query", nq), nq, OUT_ATOL, OUT_RTOL);
    ok &= cr_test_close("out.text", cr_qformer_text_out(&tw.m, &tw.p.ws),
                        need(&tw, "out.text", nt), nt, OUT_ATOL, OUT_RTOL);
    /* queries alone (T = 0) in ITC mode are the item branch exactly */
    float *q = malloc(nq * sizeof(float));
    memcpy(q, cr_qformer_query_out(&tw.p.ws), nq * sizeof(float));
    cr_qformer_forward(&tw.m, &tw.p.ws, tw.tb.cf, NULL, NULL, NULL, tw.B, 0, CR_QF_ITC);
    ok &= cr_test_close("query-only", cr_qformer_query_out(&tw.p.ws), q, nq, 1e-6, 1e-6);
    free(q);
    twin_close(&tw);
    assert_true(ok);
}

/* One loss alone: value and every parameter's gradient. */
static void check_loss(twin *tw, int k) {
    float w[CR_P1_NLOSS] = {0};
    w[k] = 1;
    double loss[CR_P1_NLOSS];
    int32_t neg[64];
    cr_qformer_zero_grad(&tw->m);
    if (k == CR_P1_II) cr_phase1_pair_loss(&tw->p, &tw->ii, k, 1, &loss[k]);
    else if (k == CR_P1_UI) cr_phase1_pair_loss(&tw->p, &tw->ui, k, 1, &loss[k]);
    else cr_phase1_text_losses(&tw->p, &tw->tb, w, loss, neg);
    char name[160];
    snprintf(name, sizeof name, "loss.%s", cr_p1_loss_name(k));
    float got = (float)loss[k];
    int ok = cr_test_close(name, &got, need(tw, name, 1), 1, 1e-5, 1e-5);
    if (k == CR_P1_ITM) {
        const int32_t *want = need(tw, "neg", 2 * (size_t)tw->B);
        for (int i = 0; i < 2 * tw->B; i++)
            if (neg[i] != want[i]) {
                fprintf(stderr, "hard negative %d: got %d expected %d\n", i, neg[i], want[i]);
                ok = 0;
            }
    }
    for (int i = 0; i < tw->m.pt.n; i++) {
        snprintf(name, sizeof name, "grad.%s.%s", cr_p1_loss_name(k), tw->m.pt.t[i].name);
        ok &= cr_test_close(name, cr_qformer_g(&tw->m, i), need(tw, name, tw->m.pt.t[i].numel),
                            tw->m.pt.t[i].numel, GRAD_ATOL, GRAD_RTOL);
    }
    assert_true(ok);
}

static void test_itc(void **s) { (void)s; twin tw; twin_open(&tw); check_loss(&tw, CR_P1_ITC); twin_close(&tw); }
static void test_itm(void **s) { (void)s; twin tw; twin_open(&tw); check_loss(&tw, CR_P1_ITM); twin_close(&tw); }
static void test_itg(void **s) { (void)s; twin tw; twin_open(&tw); check_loss(&tw, CR_P1_ITG); twin_close(&tw); }
static void test_ii(void **s) { (void)s; twin tw; twin_open(&tw); check_loss(&tw, CR_P1_II); twin_close(&tw); }
static void test_ui(void **s) { (void)s; twin tw; twin_open(&tw); check_loss(&tw, CR_P1_UI); twin_close(&tw); }

/* Three AdamW steps on the sum of the five losses (decay off for vectors). */
static void test_adamw_steps(void **state) {
    (void)state;
    twin tw;
    twin_open(&tw);
    cr_error e = {0};
    cr_adam opt;
    assert_int_equal(cr_adam_init(&opt, &tw.m.pt, CR_OPT_ADAMW, 1e-3f, 0.9f, 0.999f, 1e-8f,
                                  0.05f, &e), CR_OK);
    float w[CR_P1_NLOSS] = {1, 1, 1, 1, 1}, got[3];
    for (int s = 0; s < 3; s++) {
        double l[CR_P1_NLOSS];
        cr_qformer_zero_grad(&tw.m);
        cr_phase1_text_losses(&tw.p, &tw.tb, w, l, NULL);
        cr_phase1_pair_loss(&tw.p, &tw.ii, CR_P1_II, 1, &l[CR_P1_II]);
        cr_phase1_pair_loss(&tw.p, &tw.ui, CR_P1_UI, 1, &l[CR_P1_UI]);
        got[s] = (float)(l[0] + l[1] + l[2] + l[3] + l[4]);
        cr_adam_step(&opt, &tw.m.pt, tw.m.pt.data, tw.m.grad, 1e-3f);
    }
    int ok = cr_test_close("steps.loss", got, need(&tw, "steps.loss", 3), 3, 1e-4, 1e-4);
    assert_true(got[2] < got[0]);
    cr_adam_free(&opt);
    twin_close(&tw);
    assert_true(ok);
}

static void test_checkpoint(void **state) {
    (void)state;
    twin tw;
    twin_open(&tw);
    char dir[256], path[300];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/qf.safetensors", dir);
    cr_error e = {0};
    const char *kv[2] = {"note", "round trip"};
    assert_int_equal(cr_qformer_save(&tw.m, path, kv, 1, &e), CR_OK);
    cr_qformer m2;
    assert_int_equal(cr_qformer_load(&m2, path, &e), CR_OK);
    assert_int_equal(m2.pt.total, tw.m.pt.total);
    assert_memory_equal(m2.pt.data, tw.m.pt.data, tw.m.pt.total * sizeof(float));
    assert_int_equal(m2.c.nq, tw.m.c.nq);
    cr_qformer_free(&m2);
    /* not an encoder checkpoint: the twin fixture itself */
    assert_int_equal(cr_qformer_load(&m2, FIXTURE, &e), CR_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "crossrec.qformer"));
    /* missing file */
    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    assert_int_not_equal(cr_qformer_load(&m2, path, &e), CR_OK);
    assert_non_null(strstr(e.msg, "none.safetensors"));
    /* bad configuration */
    cr_qformer_cfg c = tw.m.c;
    c.heads = 5;
    assert_int_equal(cr_qformer_init(&m2, &c, 1, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "heads"));
    cr_test_rmdir(dir);
    twin_close(&tw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs),     cmocka_unit_test(test_itc),
        cmocka_unit_test(test_itm),         cmocka_unit_test(test_itg),
        cmocka_unit_test(test_ii),          cmocka_unit_test(test_ui),
        cmocka_unit_test(test_adamw_steps), cmocka_unit_test(test_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
