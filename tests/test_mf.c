/*
 * test_mf.c - BPR matrix factorisation: on data with planted taste clusters
 * it must beat popularity at next-item HR@10; it is deterministic for a
 * seed; its file round-trips and a wrong file is refused; the leave-one-out
 * split holds out each user's last two interactions by time.
 */
#include "util/testutil.h"

#include "../src/ilm/mf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 80 users in 4 taste clusters, 120 items in 4 genres plus a block of 20
 * globally popular items everyone rates sometimes. Users rate 25 items,
 * mostly from their cluster's genre, timestamps increasing. */
static void write_ratings(const char *path) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "userId,movieId,rating,timestamp\n");
    cr_rng r;
    cr_rng_seed(&r, 3);
    for (int u = 0; u < 80; u++) {
        int cl = u % 4, seen[140] = {0};
        for (int k = 0; k < 25; k++) {
            int it;
            do {
                if (cr_rng_uniform(&r) < 0.25) it = 120 + (int)cr_rng_below(&r, 20);
                else it = cl * 30 + (int)cr_rng_below(&r, 30);
            } while (seen[it]);
            seen[it] = 1;
            fprintf(f, "%d,%d,%.1f,%d\n", 1000 + u, 5000 + it, 3.0 + (double)(k % 3), 100 * k + u);
        }
    }
    fclose(f);
}

static void test_bpr_beats_popularity(void **state) {
    (void)state;
    char dir[256], path[512], out[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ratings.csv", dir);
    snprintf(out, sizeof out, "%s/mf.safetensors", dir);
    write_ratings(path);
    cr_error e = {0};
    cr_interactions x;
    assert_int_equal(cr_interactions_load(&x, path, &e), CR_OK);
    assert_int_equal(x.n_users, 80);
    assert_int_equal(x.n_items, 140);
    assert_int_equal(x.n, 2000);
    assert_int_equal(x.raw_user[0], 1000);
    cr_loo_split s;
    assert_int_equal(cr_loo_split_make(&s, &x, &e), CR_OK);
    /* user 0's last two ratings by time are test and valid */
    assert_int_equal(s.test_pos[0], x.user_off[1] - 1);
    assert_int_equal(s.valid_pos[0], x.user_off[1] - 2);

    cr_mf_cfg c;
    cr_mf_cfg_default(&c);
    c.dim = 8;
    c.epochs = 30;
    cr_mf m, m2;
    double loss;
    assert_int_equal(cr_mf_train(&m, &x, &s, &c, &loss, &e), CR_OK);
    assert_true(loss < 0.6); /* log 2 = 0.693 at chance */
    cr_next_item_metrics mm, pm;
    assert_int_equal(cr_mf_evaluate(&m, &x, &s, 1, 30, 7, &mm, &e), CR_OK);
    assert_int_equal(cr_mf_evaluate(NULL, &x, &s, 1, 30, 7, &pm, &e), CR_OK);
    assert_int_equal(mm.users, 80);
    fprintf(stderr, "HR@10 bpr %.3f popularity %.3f\n", mm.hr10, pm.hr10);
    assert_true(mm.hr10 > pm.hr10 + 0.1);
    assert_true(mm.ndcg10 <= mm.hr10 && mm.hr5 <= mm.hr10);

    /* same seed, same factors */
    assert_int_equal(cr_mf_train(&m2, &x, &s, &c, NULL, &e), CR_OK);
    assert_memory_equal(m.user, m2.user, (size_t)80 * 8 * sizeof(float));
    cr_mf_free(&m2);

    /* file round trip */
    assert_int_equal(cr_mf_save(&m, &x, out, &e), CR_OK);
    int64_t *ru, *ri;
    assert_int_equal(cr_mf_load(&m2, &ru, &ri, out, &e), CR_OK);
    assert_int_equal(m2.dim, 8);
    assert_memory_equal(m.item, m2.item, (size_t)140 * 8 * sizeof(float));
    assert_int_equal(ri[139], 5139);
    free(ru);
    free(ri);
    cr_mf_free(&m2);
    assert_int_equal(cr_mf_load(&m2, &ru, &ri, "tests/fixtures/st_reference.safetensors", &e),
                     CR_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "not a crossrec matrix-factorisation file"));

    cr_mf_free(&m);
    cr_loo_split_free(&s);
    cr_interactions_free(&x);
    cr_test_rmdir(dir);
}

static void test_load_errors(void **state) {
    (void)state;
    char dir[256], path[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.csv", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "userId,movieId,rating,timestamp\n1,2,4.0,100\n1,x,3.0,101\n");
    fclose(f);
    cr_error e = {0};
    cr_interactions x;
    assert_int_equal(cr_interactions_load(&x, path, &e), CR_ERR_PARSE);
    assert_non_null(strstr(e.msg, "r.csv:3"));
    f = fopen(path, "w");
    fprintf(f, "user,item\n1,2\n");
    fclose(f);
    assert_int_equal(cr_interactions_load(&x, path, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "userId, movieId, rating, timestamp"));
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpr_beats_popularity),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
