/*
 * test_request.c - serving requests: the split forward (context part once,
 * candidate part per row) must give the plain forward's outputs for every
 * architecture and every split of the slots; bf16 and int8 stay within a
 * stated distance of fp32; the public cr_model_score_request equals
 * cr_model_score on the same rows, and its typed-column form equals it (a
 * bag as a list column bit for bit as joined text); the ranking formulas and the order are
 * checked by hand; several threads share one model.
 */
#include "util/testutil.h"
#include "util/tiny_log.h"

#include "../src/data/config.h"
#include "../src/rank/checkpoint.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { NROWS = 200, NI = CR_TINY_NI };

typedef struct fixture {
    char model[512];
    cr_tiny_log log; /* the CSV, its fields (column order = feature order), the schema */
    cr_dataset ds;
} fixture;

static fixture F;

static int setup(void **state) {
    (void)state;
    if (cr_tiny_log_make(&F.log, NROWS)) return 1;
    snprintf(F.model, sizeof F.model, "%s/m.safetensors", F.log.dir);
    cr_error e = {0};
    if (cr_dataset_load(&F.ds, &F.log.s, &F.log.dc, 0, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    cr_dataset_free(&F.ds);
    cr_tiny_log_free(&F.log);
    return 0;
}

/* Slot flags from feature flags (features: user item tags hist age pop). */
static void slots_of(const uint8_t *feat_ctx, uint8_t *slot) {
    const cr_schema *s = &F.log.s;
    for (int c = 0; c < s->n_cat; c++) slot[c] = feat_ctx[s->cat_feat[c]];
    for (int q = 0; q < s->n_multi; q++) slot[s->n_cat + q] = feat_ctx[s->multi_feat[q]];
    for (int d = 0; d < s->n_dense; d++) slot[s->n_cat + s->n_multi + d] = feat_ctx[s->dense_feat[d]];
}

/* The plain path's batch: every row takes the context slots from ctx. */
static void merge(cr_batch *out, const cr_batch *ctx, const cr_batch *cand, const uint8_t *slot) {
    const cr_schema *s = &F.log.s;
    int B = cand->B;
    out->B = B;
    for (int r = 0; r < B; r++) {
        for (int c = 0; c < s->n_cat; c++)
            out->cat[r * s->n_cat + c] = slot[c] ? ctx->cat[c] : cand->cat[r * s->n_cat + c];
        for (int d = 0; d < s->n_dense; d++)
            out->dense[r * s->n_dense + d] =
                slot[s->n_cat + s->n_multi + d] ? ctx->dense[d] : cand->dense[r * s->n_dense + d];
    }
    for (int q = 0; q < s->n_multi; q++) {
        int64_t n = 0;
        out->bag_off[q][0] = 0;
        for (int r = 0; r < B; r++) {
            const cr_batch *src = slot[s->n_cat + q] ? ctx : cand;
            int sr = slot[s->n_cat + q] ? 0 : r;
            for (int64_t j = src->bag_off[q][sr]; j < src->bag_off[q][sr + 1]; j++) {
                assert_int_equal(cr_grow((void **)&out->bag_ids[q], &out->bag_cap[q], (size_t)n + 1,
                                         sizeof(int32_t), NULL), CR_OK);
                out->bag_ids[q][n++] = src->bag_ids[q][j];
            }
            out->bag_off[q][r + 1] = n;
        }
    }
}

typedef struct arch_case {
    const char *name;
    cr_arch arch;
    int n_bottom, n_tower;
} arch_case;

static const arch_case cases[] = {
    {"shared_bottom", CR_ARCH_SHARED_BOTTOM, 2, 1},
    {"mmoe", CR_ARCH_MMOE, 0, 1},
    {"ple", CR_ARCH_PLE, 0, 1},
    {"shared_bottom, no bottom", CR_ARCH_SHARED_BOTTOM, 0, 2},
    {"shared_bottom, no bottom, no towers", CR_ARCH_SHARED_BOTTOM, 0, 0},
    {"mmoe, no towers", CR_ARCH_MMOE, 0, 0},
};

static cr_ranker *make_ranker(const arch_case *ac, uint64_t seed) {
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, &F.log.s);
    mc.arch = ac->arch;
    mc.n_bottom = ac->n_bottom;
    mc.bottom_layers[0] = 16;
    mc.bottom_layers[1] = 8;
    mc.n_experts = 3;
    mc.expert_layers[0] = 12;
    mc.expert_layers[1] = 6;
    mc.n_tower = ac->n_tower;
    mc.tower_layers[0] = 8;
    mc.tower_layers[1] = 4;
    cr_ranker *r;
    cr_error e = {0};
    assert_int_equal(cr_ranker_create(&r, &F.log.s, &mc, seed, &e), CR_OK);
    return r;
}

/* Split forward vs plain forward for one model, one split, B candidates. */
static void check_split(const cr_ranker *r, const char *what, const uint8_t *feat_ctx, int B,
                        int chunk) {
    cr_error e = {0};
    uint8_t slot[16];
    slots_of(feat_ctx, slot);
    cr_batch ctx, cand, plain;
    assert_int_equal(cr_batch_init(&ctx, &F.ds, 1, &e), CR_OK);
    assert_int_equal(cr_batch_init(&cand, &F.ds, B, &e), CR_OK);
    assert_int_equal(cr_batch_init(&plain, &F.ds, B, &e), CR_OK);
    uint32_t crow = 3, rows[64];
    for (int i = 0; i < B; i++) rows[i] = (uint32_t)(10 + 3 * i);
    assert_int_equal(cr_batch_gather(&ctx, &F.ds, &crow, 1, &e), CR_OK);
    assert_int_equal(cr_batch_gather(&cand, &F.ds, rows, B, &e), CR_OK);
    merge(&plain, &ctx, &cand, slot);
    cr_ranker_ws *ws;
    assert_int_equal(cr_ranker_ws_create(&ws, r, B, 0, 0, &e), CR_OK);
    assert_int_equal(cr_ranker_forward(r, ws, &plain, &e), CR_OK);

    cr_req_plan *p;
    cr_req_ws *rw;
    assert_int_equal(cr_req_plan_create(&p, r, CR_PRECISION_FP32, &e), CR_OK);
    assert_int_equal(cr_req_ws_create(&rw, p, chunk, &e), CR_OK);
    int NH = r->cfg.n_heads;
    float *got = malloc((size_t)NH * B * sizeof(float));
    /* in chunks: the context part is computed once, then reused */
    for (int c0 = 0; c0 < B; c0 += chunk) {
        int n = B - c0 < chunk ? B - c0 : chunk;
        cr_batch part;
        assert_int_equal(cr_batch_init(&part, &F.ds, n, &e), CR_OK);
        assert_int_equal(cr_batch_gather(&part, &F.ds, rows + c0, n, &e), CR_OK);
        const float *out;
        cr_status st = cr_req_forward(p, rw, slot, &ctx, &part, c0 > 0, &out, &e);
        if (st) fprintf(stderr, "%s\n", e.msg);
        assert_int_equal(st, CR_OK);
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < n; i++) got[h * B + c0 + i] = out[h * n + i];
        cr_batch_free(&part);
    }
    char label[160];
    snprintf(label, sizeof label, "%s: split forward", what);
    /* the same sums in another order: float rounding only */
    assert_true(cr_test_close(label, got, ws->out, (size_t)NH * B, 1e-5, 1e-5));
    free(got);
    cr_req_ws_free(rw);
    cr_req_plan_free(p);
    cr_ranker_ws_free(ws);
    cr_batch_free(&ctx);
    cr_batch_free(&cand);
    cr_batch_free(&plain);
}

static void test_split_equals_plain(void **state) {
    (void)state;
    /* user item tags hist age pop */
    static const uint8_t splits[][NI] = {
        {1, 0, 0, 1, 1, 0}, /* the usual: user side is context */
        {0, 0, 0, 0, 0, 0}, /* nothing shared */
        {1, 1, 1, 1, 1, 1}, /* everything shared: all candidates alike */
        {0, 1, 1, 0, 0, 1}, /* the other way round */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cr_ranker *r = make_ranker(&cases[c], 11 + c);
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            char what[128];
            snprintf(what, sizeof what, "%s, split %zu", cases[c].name, s);
            check_split(r, what, splits[s], 13, 16);
            check_split(r, what, splits[s], 13, 5); /* three chunks */
        }
        cr_ranker_free(r);
    }
}

/* The same split twice on one workspace, then another split: the cached
 * candidate weights must follow the split. */
static void test_split_cache_follows_mask(void **state) {
    (void)state;
    cr_ranker *r = make_ranker(&cases[1], 4);
    static const uint8_t a[NI] = {1, 0, 0, 1, 1, 0}, b[NI] = {0, 1, 0, 0, 1, 1};
    check_split(r, "mask a", a, 9, 9);
    check_split(r, "mask b", b, 9, 9);
    cr_ranker_free(r);
}

/* Reduced precision: the largest difference in probability or value over
 * 100 candidates, for each architecture. */
static void test_reduced_precision(void **state) {
    (void)state;
    static const uint8_t split[NI] = {1, 0, 0, 1, 1, 0};
    uint8_t slot[16];
    slots_of(split, slot);
    cr_error e = {0};
    enum { B = 100 };
    cr_batch ctx, cand;
    assert_int_equal(cr_batch_init(&ctx, &F.ds, 1, &e), CR_OK);
    assert_int_equal(cr_batch_init(&cand, &F.ds, B, &e), CR_OK);
    uint32_t crow = 5, rows[B];
    for (int i = 0; i < B; i++) rows[i] = (uint32_t)(i * 2 % NROWS);
    assert_int_equal(cr_batch_gather(&ctx, &F.ds, &crow, 1, &e), CR_OK);
    assert_int_equal(cr_batch_gather(&cand, &F.ds, rows, B, &e), CR_OK);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        cr_ranker *r = make_ranker(&cases[c], 21 + c);
        int NH = r->cfg.n_heads;
        float ref[4 * B];
        for (int prec = 0; prec < 3; prec++) {
            cr_req_plan *p;
            cr_req_ws *rw;
            assert_int_equal(cr_req_plan_create(&p, r, (cr_precision)prec, &e), CR_OK);
            assert_int_equal(cr_req_ws_create(&rw, p, B, &e), CR_OK);
            const float *out;
            assert_int_equal(cr_req_forward(p, rw, slot, &ctx, &cand, 0, &out, &e), CR_OK);
            if (prec == 0) {
                memcpy(ref, out, (size_t)NH * B * sizeof(float));
            } else {
                /* bf16 keeps 8 bits of mantissa (relative error 2^-9 per
                 * product); int8 about 1/254 of each row's range. On these
                 * outputs (|logit| < 2) both land well inside 0.02. */
                double worst = 0;
                for (int i = 0; i < NH * B; i++) {
                    double d = fabs((double)out[i] - ref[i]);
                    worst = d > worst ? d : worst;
                }
                if (worst > 0.01)
                    fprintf(stderr, "%s %s: worst |diff| %g\n", cases[c].name,
                            cr_precision_name((cr_precision)prec), worst);
                assert_true(worst <= 0.01);
                assert_true(worst > 0); /* it did run in reduced precision */
            }
            cr_req_ws_free(rw);
            cr_req_plan_free(p);
        }
        cr_ranker_free(r);
    }
    cr_batch_free(&ctx);
    cr_batch_free(&cand);
}

/* ---- reduced precision against its definition ---------------------------------------
 * Whatever the kernel set runs (its bf16 / int8 kernels, or the fp32 kernel
 * on weights widened at load: make test reruns this file under
 * CROSSREC_ISA=avx2 and scalar), the result is the precision's: bf16
 * inputs and weights with sums to float rounding; int8 inputs quantised per
 * row, weights per output row, sum q_x q_w scaled back. */

/* One output of the precision's linear, in double: inp (C) against weight
 * row w (C), plus b; *mag gets the sum of the products' magnitudes (the
 * scale of the float rounding a kernel may add). */
static double lp_ref(cr_precision p, const float *x, const float *w, int C, float b,
                     double *mag) {
    double a = 0, m = 0;
    if (p == CR_PRECISION_BF16) {
        for (int c = 0; c < C; c++) {
            double t = (double)cr_bf16_to_f32(cr_bf16_from_f32(x[c])) *
                       cr_bf16_to_f32(cr_bf16_from_f32(w[c]));
            a += t, m += fabs(t);
        }
    } else {
        /* the input's quantisation is the kernel set's (test_isa checks it
         * on every set); the weight row's is redone here from its definition */
        uint8_t *q = malloc((size_t)C);
        float xs = cr_int8_quant_row(q, x, C, C), amax = 0;
        for (int c = 0; c < C; c++) amax = fabsf(w[c]) > amax ? fabsf(w[c]) : amax;
        float sc = amax > 0 ? amax / 127.0f : 1.0f, inv = 1.0f / sc;
        int64_t acc = 0;
        for (int c = 0; c < C; c++) {
            long qw = lrintf(w[c] * inv);
            qw = qw > 127 ? 127 : qw < -127 ? -127 : qw;
            acc += (int64_t)((int)q[c] - 128) * qw;
            m += fabs((double)((int)q[c] - 128) * qw);
        }
        a = (double)acc * sc * xs;
        m *= (double)sc * xs;
        free(q);
    }
    *mag = m;
    return a + b;
}

/* cr_lp_linear on every shape class it sees in a plan: one row, rows past
 * the widened path's block of 240, groups (experts), narrow and wide
 * inputs (the int8 rule of AVX2 switches at 64), strided input and output,
 * with and without bias. */
static void test_lp_linear_naive(void **state) {
    (void)state;
    static const int shapes[][4] = {/* G, OC, C, B */
                                    {1, 64, 48, 1}, {1, 70, 63, 7},   {2, 64, 64, 13},
                                    {3, 64, 80, 5}, {1, 130, 300, 250}, {1, 96, 429, 33}};
    for (int pi = 0; pi < 2; pi++) {
        cr_precision p = pi ? CR_PRECISION_INT8 : CR_PRECISION_BF16;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            int G = shapes[s][0], OC = shapes[s][1], C = shapes[s][2], B = shapes[s][3];
            int ldi = C + 3, ldo = OC + 5, g = G - 1;
            float *w = malloc(sizeof(float) * G * OC * C), *b = malloc(sizeof(float) * OC);
            float *x = malloc(sizeof(float) * B * ldi), *out = malloc(sizeof(float) * B * ldo);
            cr_rng rng;
            cr_rng_seed(&rng, 1000 + s);
            for (int i = 0; i < G * OC * C; i++) w[i] = (float)cr_rng_normal(&rng) * 0.2f;
            for (int i = 0; i < OC; i++) b[i] = (float)cr_rng_normal(&rng) * 0.1f;
            for (int i = 0; i < B * ldi; i++) x[i] = (float)cr_rng_normal(&rng);
            cr_lp_weight *lw;
            cr_error e = {0};
            assert_int_equal(cr_lp_pack(&lw, p, w, G, OC, C, &e), CR_OK);
            void *scratch = malloc(cr_lp_scratch_bytes(C));
            for (int i = 0; i < B * ldo; i++) out[i] = NAN; /* padding must stay */
            const float *bias = s % 2 ? NULL : b;
            cr_lp_linear(out, x, lw, g, bias, B, ldi, ldo, scratch);
            for (int r = 0; r < B; r++) {
                for (int o = 0; o < OC; o++) {
                    double mag, want = lp_ref(p, x + (size_t)r * ldi,
                                              w + ((size_t)g * OC + o) * C, C,
                                              bias ? bias[o] : 0.0f, &mag);
                    double got = out[(size_t)r * ldo + o];
                    /* float sums of C terms: well inside C * 2^-24 of mag */
                    if (!(fabs(got - want) <= 1e-6 + 4e-8 * C * mag))
                        fprintf(stderr, "%s G%d OC%d C%d B%d row %d out %d: %.9g, want %.9g\n",
                                cr_precision_name(p), G, OC, C, B, r, o, got, want);
                    assert_true(fabs(got - want) <= 1e-6 + 4e-8 * C * mag);
                }
                for (int o = OC; o < ldo; o++) assert_true(isnan(out[(size_t)r * ldo + o]));
            }
            cr_lp_free(lw);
            free(scratch), free(w), free(b), free(x), free(out);
        }
    }
}

/* The whole request in bf16 and int8 against a naive forward of the same
 * precision: a shared bottom [80, 64] and towers [64] (every dense layer
 * but the heads in reduced precision), no context slot, so the first layer
 * reads every input. The reference's activations are rounded to float like
 * the library's, but a value a float rounding apart from a bf16 (or int8)
 * rounding boundary can still round the other way there, a rare jump of
 * one step; so most outputs must agree to float rounding and all within a
 * few such steps. */
static void test_request_lowp_naive(void **state) {
    (void)state;
    cr_model_cfg mc;
    cr_model_cfg_defaults(&mc, &F.log.s);
    mc.arch = CR_ARCH_SHARED_BOTTOM;
    mc.n_bottom = 2;
    mc.bottom_layers[0] = 80;
    mc.bottom_layers[1] = 64;
    mc.n_tower = 1;
    mc.tower_layers[0] = 64;
    cr_ranker *r;
    cr_error e = {0};
    assert_int_equal(cr_ranker_create(&r, &F.log.s, &mc, 77, &e), CR_OK);
    enum { B = 100 };
    static const uint8_t none[NI] = {0};
    uint8_t slot[16];
    slots_of(none, slot);
    cr_batch ctx, cand;
    assert_int_equal(cr_batch_init(&ctx, &F.ds, 1, &e), CR_OK);
    assert_int_equal(cr_batch_init(&cand, &F.ds, B, &e), CR_OK);
    uint32_t crow = 0, rows[B];
    for (int i = 0; i < B; i++) rows[i] = (uint32_t)(i * 7 % NROWS);
    assert_int_equal(cr_batch_gather(&ctx, &F.ds, &crow, 1, &e), CR_OK);
    assert_int_equal(cr_batch_gather(&cand, &F.ds, rows, B, &e), CR_OK);
    /* x of every candidate, from the plain forward */
    cr_ranker_ws *ws;
    assert_int_equal(cr_ranker_ws_create(&ws, r, B, 0, 0, &e), CR_OK);
    assert_int_equal(cr_ranker_forward(r, ws, &cand, &e), CR_OK);
    const cr_ptable *pt = &r->params;
    const int Ci = r->C_in, NH = r->cfg.n_heads;
    assert_true(r->bottom.n_layers == 2 && r->bottom.dims[1] == 64);
    for (int pi = 0; pi < 2; pi++) {
        cr_precision p = pi ? CR_PRECISION_INT8 : CR_PRECISION_BF16;
        cr_req_plan *plan;
        cr_req_ws *rw;
        assert_int_equal(cr_req_plan_create(&plan, r, p, &e), CR_OK);
        assert_int_equal(cr_req_ws_create(&rw, plan, B, &e), CR_OK);
        const float *out;
        assert_int_equal(cr_req_forward(plan, rw, slot, &ctx, &cand, 0, &out, &e), CR_OK);
        int close = 0, n = 0;
        double worst = 0, mag;
        for (int i = 0; i < B; i++) {
            const float *x = ws->acts + ws->off_x + (size_t)i * Ci;
            float h0[80], h1[64], t[64];
            for (int o = 0; o < 80; o++) {
                double v = lp_ref(p, x, cr_ptable_ptr(pt, pt->data, r->bottom.w[0]) + o * Ci, Ci,
                                  cr_ptable_ptr(pt, pt->data, r->bottom.b[0])[o], &mag);
                h0[o] = v > 0 ? (float)v : 0.0f;
            }
            for (int o = 0; o < 64; o++) {
                double v = lp_ref(p, h0, cr_ptable_ptr(pt, pt->data, r->bottom.w[1]) + o * 80, 80,
                                  cr_ptable_ptr(pt, pt->data, r->bottom.b[1])[o], &mag);
                h1[o] = v > 0 ? (float)v : 0.0f;
            }
            for (int h = 0; h < NH; h++) {
                const cr_mlp *tw = &r->towers[r->cfg.heads[h].tower];
                for (int o = 0; o < 64; o++) {
                    double v = lp_ref(p, h1, cr_ptable_ptr(pt, pt->data, tw->w[0]) + o * 64, 64,
                                      cr_ptable_ptr(pt, pt->data, tw->b[0])[o], &mag);
                    t[o] = v > 0 ? (float)v : 0.0f;
                }
                /* the 1-wide head stays fp32 in every plan */
                const float *hw = cr_ptable_ptr(pt, pt->data, r->head_w[h]);
                double want = cr_ptable_ptr(pt, pt->data, r->head_b[h])[0];
                for (int c = 0; c < 64; c++) want += (double)t[c] * hw[c];
                double d = fabs(out[h * B + i] - want);
                worst = d > worst ? d : worst;
                close += d <= 2e-6 + 2e-6 * fabs(want);
                n++;
            }
        }
        fprintf(stderr, "request %s on %s: %d of %d outputs within float rounding of the "
                "naive forward, worst |diff| %g\n",
                cr_precision_name(p), cr_kernel_set_name(), close, n, worst);
        assert_true(close >= n * 9 / 10);
        assert_true(worst <= 2e-3);
        cr_req_ws_free(rw);
        cr_req_plan_free(plan);
    }
    cr_ranker_ws_free(ws);
    cr_batch_free(&ctx);
    cr_batch_free(&cand);
    cr_ranker_free(r);
}

/* ---- the public API ---------------------------------------------------------------- */

static cr_model *save_and_load(const cr_model_opts *o) {
    cr_ranker *r = make_ranker(&cases[2], 7); /* ple */
    cr_error e = {0};
    assert_int_equal(cr_ranker_save(r, &F.log.s, F.model, NULL, &e), CR_OK);
    cr_ranker_free(r);
    cr_model *m;
    cr_status st = cr_model_load_opts(&m, F.model, o, &e);
    if (st) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(st, CR_OK);
    return m;
}

/* The request for context row cr and candidates rows[0..n): context inputs
 * flagged in feat_ctx. merged gets the equivalent plain rows. */
static void build_request(int crow, const int *rows, int n, const uint8_t *feat_ctx,
                          const char **context, const char **cands, const char **merged) {
    for (int j = 0; j < NI; j++) context[j] = feat_ctx[j] ? F.log.text[crow][j] : NULL;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < NI; j++) {
            cands[i * NI + j] = feat_ctx[j] ? NULL : F.log.text[rows[i]][j];
            merged[i * NI + j] = feat_ctx[j] ? F.log.text[crow][j] : F.log.text[rows[i]][j];
        }
}

static void test_request_equals_score(void **state) {
    (void)state;
    cr_model_opts o;
    cr_model_opts_defaults(&o);
    cr_model *m = save_and_load(&o);
    assert_int_equal(cr_model_n_inputs(m), NI);
    assert_int_equal(cr_model_input_sep(m, 2), '|');
    assert_int_equal(cr_model_input_sep(m, 0), 0);
    assert_true(cr_model_input_is_number(m, 5));
    assert_non_null(strstr(cr_model_version(m), "Z-"));
    enum { N = 300 }; /* more than one chunk */
    static const uint8_t split[NI] = {1, 0, 0, 1, 1, 0};
    const char *context[NI], **cands = calloc(N * NI, sizeof(char *)),
               **merged = calloc(N * NI, sizeof(char *));
    int rows[N];
    for (int i = 0; i < N; i++) rows[i] = (i * 7) % NROWS;
    build_request(4, rows, N, split, context, cands, merged);
    float *want = malloc(N * 2 * sizeof(float)), *got = malloc(N * 2 * sizeof(float));
    float rank[N];
    int64_t order[N];
    cr_error e = {0};
    assert_int_equal(cr_model_score(m, N, merged, want, &e), CR_OK);
    cr_request rq = {context, N, cands};
    cr_response rs = {got, rank, order, 0};
    assert_int_equal(cr_model_score_request(m, &rq, &rs, &e), CR_OK);
    assert_true(cr_test_close("score_request vs score", got, want, N * 2, 1e-6, 1e-5));
    /* missing values: row 4's context is complete; candidate 'age' and 'pop'
     * are not read (age is context), so count the empty candidate values */
    int64_t miss = 0;
    for (int j = 0; j < NI; j++) miss += split[j] && !F.log.text[4][j][0];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < NI; j++) miss += !split[j] && !F.log.text[rows[i]][j][0];
    assert_int_equal(rs.n_missing, miss);
    /* default formula: weight 1 on the first output (click) */
    for (int i = 0; i < N; i++) assert_true(rank[i] == got[i * 2]);
    for (int i = 1; i < N; i++) {
        assert_true(rank[order[i - 1]] >= rank[order[i]]);
        if (rank[order[i - 1]] == rank[order[i]]) assert_true(order[i - 1] < order[i]);
    }
    /* a bad number names the candidate and the column */
    cands[17 * NI + 5] = "lots";
    assert_int_equal(cr_model_score_request(m, &rq, &rs, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "candidates[17]"));
    assert_non_null(strstr(e.msg, "'pop'"));
    /* an absurd number is refused by the training range, not scored */
    cands[17 * NI + 5] = "1e300";
    assert_int_equal(cr_model_score_request(m, &rq, &rs, &e), CR_ERR_PARSE);
    if (!strstr(e.msg, "candidates[17]: column 'pop': expected a number from")) fail_msg("%s", e.msg);
    cands[17 * NI + 5] = "-1e30";
    assert_int_equal(cr_model_score_request(m, &rq, &rs, &e), CR_ERR_PARSE);
    context[4] = "old";
    assert_int_equal(cr_model_score_request(m, &rq, &rs, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "context: column 'age'"));
    free(cands);
    free(merged);
    free(want);
    free(got);
    cr_model_free(m);
}

/* A number as the typed API takes it: NaN for an empty field. */
static double num_of(const char *t) { return t[0] ? strtod(t, NULL) : NAN; }

/* The typed request gives exactly the text request's answer: the numbers
 * go in as doubles (no text), the ids and bags as text columns; the same
 * encoder, the same errors. */
static void test_request_columns(void **state) {
    (void)state;
    cr_model_opts o;
    cr_model_opts_defaults(&o);
    cr_model *m = save_and_load(&o);
    enum { N = 300 };
    static const uint8_t split[NI] = {1, 0, 0, 1, 1, 0}; /* user hist age: context */
    const char *context[NI], **cands = calloc(N * NI, sizeof(char *)),
               **merged = calloc(N * NI, sizeof(char *));
    int rows[N];
    for (int i = 0; i < N; i++) rows[i] = (i * 11 + 3) % NROWS;
    build_request(7, rows, N, split, context, cands, merged);
    float want[N * 2], got[N * 2], rank_w[N], rank_g[N];
    int64_t order_w[N], order_g[N];
    cr_error e = {0};
    cr_request rq = {context, N, cands};
    cr_response rw = {want, rank_w, order_w, 0};
    assert_int_equal(cr_model_score_request(m, &rq, &rw, &e), CR_OK);

    double age = num_of(context[4]), *pop = malloc(N * sizeof(double));
    const char **item = malloc(N * sizeof(char *)), **tags = malloc(N * sizeof(char *));
    for (int i = 0; i < N; i++) {
        item[i] = cands[i * NI + 1];
        tags[i] = cands[i * NI + 2];
        pop[i] = num_of(cands[i * NI + 5]);
    }
    cr_column ctx[NI] = {{CR_COL_TEXT, &context[0], 1}, {0}, {0},
                         {CR_COL_TEXT, &context[3], 1}, {CR_COL_F64, &age, 1}, {0}};
    cr_column cand[NI] = {{0}, {CR_COL_TEXT, item, 1}, {CR_COL_TEXT, tags, 1},
                          {0}, {0}, {CR_COL_F64, pop, 1}};
    cr_request_columns rc = {ctx, N, cand};
    cr_response rg = {got, rank_g, order_g, 0};
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_memory_equal(order_g, order_w, sizeof order_g);
    assert_int_equal(rg.n_missing, rw.n_missing);

    /* a float column with a stride (every other element of a wider array) */
    float *pop2 = malloc(2 * N * sizeof(float));
    for (int i = 0; i < N; i++) pop2[2 * i] = (float)pop[i], pop2[2 * i + 1] = -1e30f;
    cand[5] = (cr_column){CR_COL_F32, pop2, 2};
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_OK);
    assert_true(cr_test_close("f32 column vs text", got, want, N * 2, 1e-6, 1e-5));
    cand[5] = (cr_column){CR_COL_F64, pop, 1};

    /* the same errors as the text form, the number shown as a number */
    double keep = pop[17];
    pop[17] = 1e300;
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_ERR_PARSE);
    if (!strstr(e.msg, "candidates[17]: column 'pop': expected a number from")) fail_msg("%s", e.msg);
    assert_non_null(strstr(e.msg, "got the number 1e+300"));
    pop[17] = keep;
    /* bad arguments: an unknown type, a candidate column without data */
    cand[1].type = (cr_column_type)9;
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "candidates[1] ('item')"));
    cand[1] = (cr_column){CR_COL_TEXT, NULL, 1};
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_ERR_ARG);
    rc.n_candidates = 0;
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_ERR_ARG);
    assert_int_equal(cr_model_score_request_columns(m, NULL, &rg, &e), CR_ERR_ARG);
    free(pop2);
    free(pop);
    free(item);
    free(tags);
    free(cands);
    free(merged);
    cr_model_free(m);
}

/* A bag given as a list column (items, no separator) scores bit for bit
 * as the same bag given as joined text, in a request and in plain rows;
 * an item holding the separator, and a list for a one-value input, are
 * refused naming the candidate and the column. */
static void test_list_column(void **state) {
    (void)state;
    cr_model_opts o;
    cr_model_opts_defaults(&o);
    cr_model *m = save_and_load(&o);
    enum { N = 300 };
    static const uint8_t split[NI] = {1, 0, 0, 1, 1, 0};
    const char *context[NI], **cands = calloc(N * NI, sizeof(char *)),
               **merged = calloc(N * NI, sizeof(char *));
    int rows[N];
    for (int i = 0; i < N; i++) rows[i] = (i * 13 + 5) % NROWS;
    build_request(9, rows, N, split, context, cands, merged);
    float want[N * 2], got[N * 2], rank_w[N], rank_g[N];
    int64_t order_w[N], order_g[N];
    cr_error e = {0};
    cr_request rq = {context, N, cands};
    cr_response rw = {want, rank_w, order_w, 0};
    assert_int_equal(cr_model_score_request(m, &rq, &rw, &e), CR_OK);

    /* each candidate's tags split by hand into items, with an empty item
     * (skipped, as "a||b" is) after the first; lists two elements apart */
    char (*buf)[32] = calloc(N, sizeof *buf);
    const char **items = calloc(N * 8, sizeof(char *));
    cr_text_list *lists = calloc(2 * N, sizeof *lists);
    const char **item = malloc(N * sizeof(char *));
    int n_items = 0;
    for (int i = 0; i < N; i++) {
        item[i] = cands[i * NI + 1];
        snprintf(buf[i], sizeof buf[i], "%s", cands[i * NI + 2]);
        const char **it = items + i * 8;
        int n = 0;
        for (char *save = NULL, *tok = strtok_r(buf[i], "|", &save); tok;
             tok = strtok_r(NULL, "|", &save)) {
            it[n++] = tok;
            if (n == 1) it[n++] = "";
        }
        n_items += n > 1;
        lists[2 * i] = (cr_text_list){it, n};
        lists[2 * i + 1] = (cr_text_list){NULL, -1}; /* never read */
    }
    assert_true(n_items > N / 2); /* most candidates have a bag */
    cr_column ctx[NI] = {{CR_COL_TEXT, &context[0], 1}, {0}, {0},
                         {CR_COL_TEXT, &context[3], 1}, {CR_COL_TEXT, &context[4], 1}, {0}};
    cr_column cand[NI] = {{0}, {CR_COL_TEXT, item, 1}, {CR_COL_TEXT_LIST, lists, 2},
                          {0}, {0}, {CR_COL_TEXT, cands + 5, NI}};
    cr_request_columns rc = {ctx, N, cand};
    cr_response rg = {got, rank_g, order_g, 0};
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_OK);
    assert_memory_equal(got, want, sizeof got);
    assert_memory_equal(order_g, order_w, sizeof order_g);
    assert_int_equal(rg.n_missing, rw.n_missing);

    /* plain rows: the list column among text columns */
    float want_rows[N * 2], got_rows[N * 2];
    assert_int_equal(cr_model_score(m, N, merged, want_rows, &e), CR_OK);
    cr_column cols[NI];
    for (int j = 0; j < NI; j++) cols[j] = (cr_column){CR_COL_TEXT, merged + j, NI};
    cols[2] = (cr_column){CR_COL_TEXT_LIST, lists, 2};
    assert_int_equal(cr_model_score_columns(m, N, cols, got_rows, &e), CR_OK);
    assert_memory_equal(got_rows, want_rows, sizeof got_rows);

    /* refusals */
    static const char *const joined[] = {"a|b"};
    cr_text_list keep = lists[2 * 3];
    lists[2 * 3] = (cr_text_list){joined, 1};
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_ERR_PARSE);
    if (!strstr(e.msg, "candidates[3]: column 'tags': item 0 ('a|b') holds the separator '|'"))
        fail_msg("%s", e.msg);
    lists[2 * 3] = keep;
    cand[1] = (cr_column){CR_COL_TEXT_LIST, lists, 2};
    assert_int_equal(cr_model_score_request_columns(m, &rc, &rg, &e), CR_ERR_PARSE);
    if (!strstr(e.msg, "candidates[0]: column 'item': expected one value, not a list"))
        fail_msg("%s", e.msg);
    free(item);
    free(lists);
    free(items);
    free(buf);
    free(cands);
    free(merged);
    cr_model_free(m);
}

static void test_formulas_and_order(void **state) {
    (void)state;
    cr_model_opts o;
    cr_model_opts_defaults(&o);
    o.formula = CR_RANK_PRODUCT;
    o.n_weights = 2;
    snprintf(o.weight_name[0], 64, "click");
    o.weight[0] = 2.0f;
    snprintf(o.weight_name[1], 64, "stay");
    o.weight[1] = 0.5f;
    cr_model *m = save_and_load(&o);
    float scores[] = {0.5f, 0.25f, 0.1f, 4.0f, 0.5f, 0.25f, 0.9f, -1.0f};
    float rank[4];
    int64_t order[4];
    cr_error e = {0};
    assert_int_equal(cr_model_rank(m, 4, scores, rank, order, &e), CR_OK);
    /* p_click^2 * max(p_stay, 1e-12)^0.5 */
    assert_true(fabsf(rank[0] - 0.125f) < 1e-6f);
    assert_true(fabsf(rank[1] - 0.02f) < 1e-6f);
    assert_true(fabsf(rank[2] - 0.125f) < 1e-6f);
    assert_true(fabsf(rank[3] - 0.81f * 1e-6f) < 1e-9f);
    int64_t want[] = {0, 2, 1, 3}; /* the tie 0/2 by index */
    for (int i = 0; i < 4; i++) assert_int_equal(order[i], want[i]);
    cr_model_free(m);

    cr_model_opts_defaults(&o);
    o.n_weights = 2;
    snprintf(o.weight_name[0], 64, "click");
    o.weight[0] = 1.0f;
    snprintf(o.weight_name[1], 64, "stay");
    o.weight[1] = -0.5f;
    m = save_and_load(&o);
    assert_int_equal(cr_model_rank(m, 4, scores, rank, order, &e), CR_OK);
    assert_true(fabsf(rank[1] - (0.1f - 2.0f)) < 1e-6f);
    assert_true(fabsf(rank[3] - (0.9f + 0.5f)) < 1e-6f);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[3], 1);
    cr_model_free(m);

    /* an output the model does not have */
    snprintf(o.weight_name[1], 64, "dwell");
    cr_model *bad = NULL;
    assert_int_equal(cr_model_load_opts(&bad, F.model, &o, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "'dwell'"));
    assert_null(bad);
}

typedef struct thr {
    cr_model *m;
    const char **context, **cands;
    const float *want;
    int n, ok;
} thr;

static void *thr_run(void *arg) {
    thr *t = arg;
    float got[64 * 2], rank[64];
    int64_t order[64];
    cr_error e = {0};
    t->ok = 1;
    for (int it = 0; it < 50 && t->ok; it++) {
        cr_request rq = {t->context, t->n, t->cands};
        cr_response rs = {got, rank, order, 0};
        if (cr_model_score_request(t->m, &rq, &rs, &e)) t->ok = 0;
        for (int i = 0; i < t->n * 2; i++)
            if (fabsf(got[i] - t->want[i]) > 1e-5f + 1e-5f * fabsf(t->want[i])) t->ok = 0;
    }
    return NULL;
}

static void test_threads_share_a_model(void **state) {
    (void)state;
    cr_model_opts o;
    cr_model_opts_defaults(&o);
    o.max_pool = 2; /* fewer idle slots than threads: slots come and go */
    cr_model *m = save_and_load(&o);
    enum { T = 4, N = 40 };
    static const uint8_t split[NI] = {1, 0, 0, 1, 1, 0};
    const char *context[T][NI], *cands[T][N * NI], *merged[N * NI];
    float want[T][N * 2];
    thr th[T];
    pthread_t tid[T];
    cr_error e = {0};
    for (int t = 0; t < T; t++) {
        int rows[N];
        for (int i = 0; i < N; i++) rows[i] = (i * 5 + t * 11) % NROWS;
        build_request(t * 13, rows, N, split, context[t], cands[t], merged);
        assert_int_equal(cr_model_score(m, N, merged, want[t], &e), CR_OK);
        th[t] = (thr){m, context[t], cands[t], want[t], N, 0};
    }
    for (int t = 0; t < T; t++) pthread_create(&tid[t], NULL, thr_run, &th[t]);
    for (int t = 0; t < T; t++) pthread_join(tid[t], NULL);
    for (int t = 0; t < T; t++) assert_true(th[t].ok);
    cr_model_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_equals_plain),
        cmocka_unit_test(test_split_cache_follows_mask),
        cmocka_unit_test(test_reduced_precision),
        cmocka_unit_test(test_lp_linear_naive),
        cmocka_unit_test(test_request_lowp_naive),
        cmocka_unit_test(test_request_equals_score),
        cmocka_unit_test(test_request_columns),
        cmocka_unit_test(test_list_column),
        cmocka_unit_test(test_formulas_and_order),
        cmocka_unit_test(test_threads_share_a_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
