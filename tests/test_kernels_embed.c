/*
 * test_kernels_embed.c - embedding lookups and bags: forward into a slice
 * of a wider row, sparse backward (rows unique and ascending, gradients
 * bit-equal to a dense scatter summed in position order), finite
 * differences against the table, empty bags, mean vs sum pooling, offsets
 * that do not start at 0, ids needing every radix pass, and 1 vs 2 threads.
 */
#include "util/testutil.h"

#include "../src/kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

#define FD_H 1e-2
#define FD_TOL 1e-2

/* The dense reference: scatter-add every contribution in position order
 * into a (V, D) table gradient. Summing in the same order as the kernel
 * (positions ascending, starting from 0) makes it bit-comparable. */
static void dense_scatter(float *dtab, const int64_t *off, const int32_t *ids,
                          const float *dout, int B, int D, int ldo, cr_pooling mode) {
    for (int b = 0; b < B; b++) {
        int64_t a = off ? off[b] : b, z = off ? off[b + 1] : b + 1;
        for (int64_t j = a; j < z; j++) {
            float s = mode == CR_POOL_MEAN ? 1.0f / (float)(z - a) : 1.0f;
            for (int d = 0; d < D; d++) {
                float v = dout[(size_t)b * ldo + d];
                dtab[(size_t)ids[j] * D + d] += mode == CR_POOL_MEAN ? s * v : v;
            }
        }
    }
}

/* Sparse result vs dense: rows strictly ascending, every listed row equals
 * the dense row bit for bit, and every row not listed is zero. */
static void check_sparse(const int32_t *rows, const float *drows, int n_rows, const float *dtab,
                         int V, int D) {
    for (int k = 1; k < n_rows; k++) assert_true(rows[k - 1] < rows[k]);
    int k = 0;
    for (int v = 0; v < V; v++) {
        if (k < n_rows && rows[k] == v) {
            assert_memory_equal(drows + (size_t)k * D, dtab + (size_t)v * D, sizeof(float) * D);
            k++;
        } else {
            for (int d = 0; d < D; d++) assert_true(dtab[(size_t)v * D + d] == 0.0f);
        }
    }
    assert_int_equal(k, n_rows);
}

static void test_lookup(void **state) {
    (void)state;
    enum { V = 70001, D = 3, B = 9, LDO = 7 };
    const int32_t ids[B] = {5, 300, 5, 0, 70000, 300, 5, 2, 0};
    float *table = malloc(sizeof(float) * V * D);
    cr_test_fill(table, (size_t)V * D, 1, 1);
    float out[B * LDO];
    for (int i = 0; i < B * LDO; i++) out[i] = -9.0f;
    cr_embedding_forward(out + 2, ids, table, B, D, LDO); /* columns 2..4 of each row */
    for (int b = 0; b < B; b++)
        for (int c = 0; c < LDO; c++) {
            float want = c >= 2 && c < 2 + D ? table[(size_t)ids[b] * D + c - 2] : -9.0f;
            assert_true(out[b * LDO + c] == want);
        }

    float dout[B * LDO];
    cr_test_fill(dout, B * LDO, 1, 2);
    int32_t rows[B], scratch[2 * B];
    float drows[B * D];
    int n_rows = -1;
    cr_embedding_backward(rows, drows, &n_rows, ids, dout + 2, B, D, LDO, scratch);
    assert_int_equal(n_rows, 5);
    const int32_t want_rows[5] = {0, 2, 5, 300, 70000};
    assert_memory_equal(rows, want_rows, sizeof want_rows);
    float *dtab = calloc((size_t)V * D, sizeof(float));
    dense_scatter(dtab, NULL, ids, dout + 2, B, D, LDO, CR_POOL_SUM);
    check_sparse(rows, drows, n_rows, dtab, V, D);
    free(table);
    free(dtab);
}

/* Ids spanning all four radix bytes, in both a lookup and a bag. */
static void test_large_ids(void **state) {
    (void)state;
    enum { B = 6, D = 2 };
    const int32_t ids[B] = {INT32_MAX, 0, 1 << 24, INT32_MAX, 255, 1 << 24};
    float dout[B * D];
    for (int i = 0; i < B * D; i++) dout[i] = (float)(i + 1);
    int32_t rows[B], scratch[2 * B];
    float drows[B * D];
    int n = 0;
    cr_embedding_backward(rows, drows, &n, ids, dout, B, D, D, scratch);
    assert_int_equal(n, 4);
    const int32_t want_rows[4] = {0, 255, 1 << 24, INT32_MAX};
    const float want[8] = {3, 4, 9, 10, 5 + 11, 6 + 12, 1 + 7, 2 + 8};
    assert_memory_equal(rows, want_rows, sizeof want_rows);
    assert_memory_equal(drows, want, sizeof want);
}

typedef struct {
    int B, D, ldo;
    const int64_t *off;
    const int32_t *ids;
    cr_pooling mode;
    float *table, *out, *r;
} bag_ctx;

static double bag_f(void *p) {
    bag_ctx *c = p;
    cr_bag_forward(c->out, c->off, c->ids, c->table, c->B, c->D, c->ldo, c->mode);
    double s = 0;
    for (int b = 0; b < c->B; b++)
        for (int d = 0; d < c->D; d++)
            s += (double)c->out[(size_t)b * c->ldo + d] * c->r[(size_t)b * c->ldo + d];
    return s;
}

static void test_bags(void **state) {
    (void)state;
    enum { V = 6, D = 3, B = 5, LDO = 4 };
    /* offsets start at 2: ids[0..1] belong to someone else; bags 1 and 4
     * are empty; bag 2 repeats id 4. */
    const int32_t ids[10] = {99, 99, 1, 4, 4, 0, 4, 5, 2, 99};
    const int64_t off[B + 1] = {2, 4, 4, 7, 9, 9};
    for (int m = 0; m < 2; m++) {
        bag_ctx c = {.B = B, .D = D, .ldo = LDO, .off = off, .ids = ids, .mode = (cr_pooling)m};
        float table[V * D], out[B * LDO], r[B * LDO];
        cr_test_fill(table, V * D, 1, 3);
        cr_test_fill(r, B * LDO, 1, 4);
        for (int i = 0; i < B * LDO; i++) out[i] = 42.0f;
        c.table = table, c.out = out, c.r = r;
        bag_f(&c);
        for (int d = 0; d < D; d++) {
            assert_true(out[1 * LDO + d] == 0.0f && out[4 * LDO + d] == 0.0f); /* empty bags */
            float sum = table[4 * D + d] + table[0 * D + d] + table[4 * D + d];
            assert_float_equal(out[2 * LDO + d], m == CR_POOL_MEAN ? sum / 3 : sum, 1e-6);
        }
        assert_true(out[LDO - 1] == 42.0f); /* the column past D is not written */

        int32_t rows[7], scratch[14];
        float drows[7 * D];
        int n = -1;
        cr_bag_backward(rows, drows, &n, off, ids, r, B, D, LDO, c.mode, scratch);
        assert_int_equal(n, 5); /* ids 0, 1, 2, 4, 5 */
        float dtab[V * D];
        memset(dtab, 0, sizeof dtab);
        dense_scatter(dtab, off, ids, r, B, D, LDO, c.mode);
        check_sparse(rows, drows, n, dtab, V, D);
        /* finite differences against the table, through the dense form */
        assert_true(cr_test_gradcheck(m ? "bag mean" : "bag sum", bag_f, &c, table, dtab,
                                      V * D, FD_H, FD_TOL, NULL));
    }
    /* All bags empty: no rows, and forward writes zeros. */
    const int64_t off0[3] = {0, 0, 0};
    int32_t rows[1], scratch[2];
    float drows[D], out[2 * D], r[2 * D] = {1, 2, 3, 4, 5, 6};
    int n = -1;
    cr_bag_forward(out, off0, ids, r, 2, D, D, CR_POOL_MEAN);
    for (int i = 0; i < 2 * D; i++) assert_true(out[i] == 0.0f);
    cr_bag_backward(rows, drows, &n, off0, NULL, r, 2, D, D, CR_POOL_MEAN, scratch);
    assert_int_equal(n, 0);
}

typedef struct {
    int B, D;
    const int32_t *ids;
    float *table, *out, *r;
} emb_ctx;

static double emb_f(void *p) {
    emb_ctx *c = p;
    cr_embedding_forward(c->out, c->ids, c->table, c->B, c->D, c->D);
    double s = 0;
    for (int i = 0; i < c->B * c->D; i++) s += (double)c->out[i] * c->r[i];
    return s;
}

static void test_lookup_gradcheck(void **state) {
    (void)state;
    enum { V = 5, D = 2, B = 6 };
    const int32_t ids[B] = {3, 1, 3, 3, 0, 1};
    float table[V * D], out[B * D], r[B * D], dtab[V * D] = {0}, drows[B * D];
    int32_t rows[B], scratch[2 * B];
    int n;
    cr_test_fill(table, V * D, 1, 5);
    cr_test_fill(r, B * D, 1, 6);
    emb_ctx c = {.B = B, .D = D, .ids = ids, .table = table, .out = out, .r = r};
    cr_embedding_backward(rows, drows, &n, ids, r, B, D, D, scratch);
    for (int k = 0; k < n; k++)
        for (int d = 0; d < D; d++) dtab[rows[k] * D + d] = drows[k * D + d];
    assert_true(cr_test_gradcheck("embedding", emb_f, &c, table, dtab, V * D, FD_H, FD_TOL, NULL));
    assert_true(dtab[2 * D] == 0.0f && dtab[4 * D + 1] == 0.0f); /* untouched rows */
}

/* Many ids, many repeats: dense equality, and the same bits on 1 and 2
 * threads (the run sums have a fixed order whatever the split). */
static void test_random_threads(void **state) {
    (void)state;
    enum { V = 1000, D = 16, NNZ = 6000, B = 1500 };
    cr_rng rng;
    cr_rng_seed(&rng, 7);
    int32_t *ids = malloc(sizeof(int32_t) * NNZ);
    for (int i = 0; i < NNZ; i++) ids[i] = (int32_t)cr_rng_below(&rng, i % 10 ? 50 : V);
    int64_t *off = malloc(sizeof(int64_t) * (B + 1));
    off[0] = 0;
    for (int b = 1; b < B; b++) off[b] = off[b - 1] + (int64_t)cr_rng_below(&rng, 8);
    if (off[B - 1] > NNZ) off[B - 1] = NNZ;
    for (int b = 1; b < B; b++)
        if (off[b] > NNZ) off[b] = NNZ;
    off[B] = NNZ;
    float *dout = malloc(sizeof(float) * B * D), *dtab = calloc((size_t)V * D, sizeof(float));
    cr_test_fill(dout, (size_t)B * D, 1, 8);
    int32_t *rows1 = malloc(sizeof(int32_t) * NNZ), *rows2 = malloc(sizeof(int32_t) * NNZ);
    int32_t *scratch = malloc(sizeof(int32_t) * 2 * NNZ);
    float *d1 = malloc(sizeof(float) * NNZ * D), *d2 = malloc(sizeof(float) * NNZ * D);
    int saved = cr_get_threads(), n1 = 0, n2 = 0;
    for (int m = 0; m < 2; m++) {
        cr_set_threads(1);
        cr_bag_backward(rows1, d1, &n1, off, ids, dout, B, D, D, (cr_pooling)m, scratch);
        cr_set_threads(2);
        cr_bag_backward(rows2, d2, &n2, off, ids, dout, B, D, D, (cr_pooling)m, scratch);
        assert_int_equal(n1, n2);
        assert_memory_equal(rows1, rows2, sizeof(int32_t) * n1);
        assert_memory_equal(d1, d2, sizeof(float) * n1 * D);
        memset(dtab, 0, sizeof(float) * V * D);
        dense_scatter(dtab, off, ids, dout, B, D, D, (cr_pooling)m);
        check_sparse(rows1, d1, n1, dtab, V, D);
    }
    /* lookups over the first B ids */
    cr_set_threads(1);
    cr_embedding_backward(rows1, d1, &n1, ids, dout, B, D, D, scratch);
    cr_set_threads(2);
    cr_embedding_backward(rows2, d2, &n2, ids, dout, B, D, D, scratch);
    cr_set_threads(saved);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, sizeof(float) * n1 * D);
    memset(dtab, 0, sizeof(float) * V * D);
    dense_scatter(dtab, NULL, ids, dout, B, D, D, CR_POOL_SUM);
    check_sparse(rows1, d1, n1, dtab, V, D);
    free(ids), free(off), free(dout), free(dtab), free(rows1), free(rows2), free(scratch);
    free(d1), free(d2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),           cmocka_unit_test(test_large_ids),
        cmocka_unit_test(test_bags),             cmocka_unit_test(test_lookup_gradcheck),
        cmocka_unit_test(test_random_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
