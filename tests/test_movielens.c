/*
 * test_movielens.c - the MovieLens impression builder on a hand-made set
 * (tests/fixtures/ml_tiny): feature values worked out on paper, the rules
 * for negatives, domains, keep_fraction, determinism and error messages;
 * then a smoke run over data/movielens when it is there.
 */
#include "util/csv_table.h"
#include "util/testutil.h"

#include "../src/data/movielens.h"

#include <stdlib.h>
#include <string.h>

#define TINY "tests/fixtures/ml_tiny"

/* The positive row of (user, movie), or -1. */
static int64_t positive(const cr_test_table *t, int64_t user, int64_t movie) {
    for (int64_t r = 0; r < t->n; r++)
        if (cr_test_cell_i(t, r, "user_id") == user && cr_test_cell_i(t, r, "movie_id") == movie &&
            !strcmp(cr_test_cell(t, r, "click"), "1"))
            return r;
    return -1;
}

static cr_ml_opts tiny_opts(const char *out) {
    cr_ml_opts o;
    cr_ml_opts_default(&o);
    o.in_dir = TINY;
    o.out_path = out;
    o.negatives = 3;
    return o;
}

static void build_ok(const cr_ml_opts *o, cr_ml_stats *st) {
    cr_error e;
    cr_err_clear(&e);
    cr_status s = cr_ml_build(o, st, &e);
    if (s != CR_OK) fail_msg("cr_ml_build: %s", e.msg);
}

/* ---- features computed by hand ------------------------------------------------------- */

static void test_hand_features(void **state) {
    (void)state;
    char dir[256], out[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/sub/imp.csv", dir); /* the directory is created */
    cr_ml_opts o = tiny_opts(out);
    cr_ml_stats st;
    build_ok(&o, &st);
    assert_int_equal(st.ratings, 14);
    assert_int_equal(st.movies, 12);
    assert_int_equal(st.extra_movies, 2);
    assert_int_equal(st.requests, 14);
    assert_int_equal(st.rows, 14 * 4);
    /* 14 ratings: round(1.4) = 1 test (the last) and 1 valid (the one before). */
    assert_int_equal(st.requests_split[CR_SPLIT_TRAIN], 12);
    assert_int_equal(st.requests_split[CR_SPLIT_VALID], 1);
    assert_int_equal(st.requests_split[CR_SPLIT_TEST], 1);
    assert_int_equal(st.t_valid, 950227200);
    assert_int_equal(st.t_test, 950313600);
    assert_int_equal(st.users, 3);
    assert_int_equal(st.items, 11); /* every movie but 11 (never rated) */
    assert_int_equal(st.pool, 10);  /* 1..10; 12 is rated only in test, 11 never */
    /* rating >= 4: user 1's 4.0, 5.0, 4.5; user 2's 5.0, 4.0; user 3's 4.0, 4.0 */
    assert_float_equal(st.like_rate, 7.0 / 14, 1e-12);
    assert_float_equal(st.mean_engagement, 47.5 / 5 / 14, 1e-12);

    cr_test_table t;
    cr_test_table_load(&t, out);
    assert_int_equal(t.n, 56);
    assert_string_equal(t.names[0], "request_id");

    /* Request 1: user 1 rates Toy Story on 1996-01-01 10:00 UTC (a Monday),
     * five hours after user 2 did: popularity 1, past mean 5. No history. */
    int64_t r = positive(&t, 1, 1);
    assert_true(r >= 0);
    assert_string_equal(cr_test_cell(&t, r, "request_id"), "1");
    assert_string_equal(cr_test_cell(&t, r, "split"), "train");
    assert_string_equal(cr_test_cell(&t, r, "hist_count"), "0");
    assert_string_equal(cr_test_cell(&t, r, "hist_mean_rating"), "");
    assert_string_equal(cr_test_cell(&t, r, "hist_top_genres"), "");
    assert_string_equal(cr_test_cell(&t, r, "last_items"), "");
    assert_string_equal(cr_test_cell(&t, r, "days_since_first"), "0");
    assert_string_equal(cr_test_cell(&t, r, "hour_of_day"), "10");
    assert_string_equal(cr_test_cell(&t, r, "day_of_week"), "1");
    assert_string_equal(cr_test_cell(&t, r, "item_popularity"), "1");
    assert_string_equal(cr_test_cell(&t, r, "item_mean_rating"), "5");
    assert_string_equal(cr_test_cell(&t, r, "year"), "1995");
    assert_string_equal(cr_test_cell(&t, r, "item_age"), "1");
    assert_string_equal(cr_test_cell(&t, r, "director"), "John Lasseter");
    assert_string_equal(cr_test_cell(&t, r, "mpaa"), "G");
    assert_string_equal(cr_test_cell(&t, r, "imdb_rating"), "8.2");
    assert_string_equal(cr_test_cell(&t, r, "running_time"), "");
    assert_string_equal(cr_test_cell(&t, r, "genre_overlap"), "0");
    assert_string_equal(cr_test_cell(&t, r, "discovery"), "1");
    assert_string_equal(cr_test_cell(&t, r, "like"), "1");
    assert_string_equal(cr_test_cell(&t, r, "engagement"), "0.8");
    assert_string_equal(cr_test_cell(&t, r, "new_release"), "1");
    assert_string_equal(cr_test_cell(&t, r, "genre_return"), "1"); /* Comedy (movie 2) 26 hours later */

    /* User 1's ratings of movies 2 and 3 share a timestamp; file order puts
     * movie 2 first, so movie 3 sees it as past and not the other way. */
    r = positive(&t, 1, 2);
    assert_string_equal(cr_test_cell(&t, r, "request_id"), "2");
    assert_string_equal(cr_test_cell(&t, r, "genres"), "Comedy|Drama|Romance");
    assert_string_equal(cr_test_cell(&t, r, "hist_count"), "1");
    assert_string_equal(cr_test_cell(&t, r, "hist_mean_rating"), "4");
    assert_string_equal(cr_test_cell(&t, r, "hist_top_genres"), "Adventure|Animation|Children");
    assert_string_equal(cr_test_cell(&t, r, "last_items"), "1");
    assert_string_equal(cr_test_cell(&t, r, "days_since_first"), "1.08333"); /* 26 hours */
    assert_string_equal(cr_test_cell(&t, r, "hour_of_day"), "12");
    assert_string_equal(cr_test_cell(&t, r, "day_of_week"), "2");
    assert_string_equal(cr_test_cell(&t, r, "item_popularity"), "0");
    assert_string_equal(cr_test_cell(&t, r, "item_mean_rating"), "");
    assert_string_equal(cr_test_cell(&t, r, "genre_overlap"), "0.333333"); /* Comedy of 3 */
    assert_string_equal(cr_test_cell(&t, r, "discovery"), "1");              /* Drama, Romance */
    assert_string_equal(cr_test_cell(&t, r, "rating"), "3");
    assert_string_equal(cr_test_cell(&t, r, "like"), "0");
    assert_string_equal(cr_test_cell(&t, r, "engagement"), "0.6");

    r = positive(&t, 1, 3);
    assert_string_equal(cr_test_cell(&t, r, "hist_count"), "2");
    assert_string_equal(cr_test_cell(&t, r, "hist_mean_rating"), "3.5");
    assert_string_equal(cr_test_cell(&t, r, "hist_top_genres"), "Comedy|Adventure|Animation");
    assert_string_equal(cr_test_cell(&t, r, "last_items"), "2|1");
    assert_string_equal(cr_test_cell(&t, r, "genre_overlap"), "0.666667");
    assert_string_equal(cr_test_cell(&t, r, "discovery"), "1"); /* Musical is new */
    assert_string_equal(cr_test_cell(&t, r, "year"), "1952");
    assert_string_equal(cr_test_cell(&t, r, "new_release"), "0");

    /* 1997-02-04: four past ratings, nothing new in Fargo's genres, a 1996
     * film is still a new release. */
    r = positive(&t, 1, 8);
    assert_string_equal(cr_test_cell(&t, r, "hist_count"), "4");
    assert_string_equal(cr_test_cell(&t, r, "hist_mean_rating"), "3.5");
    assert_string_equal(cr_test_cell(&t, r, "hist_top_genres"), "Comedy|Romance|Action");
    assert_string_equal(cr_test_cell(&t, r, "last_items"), "5|3|2|1");
    assert_string_equal(cr_test_cell(&t, r, "days_since_first"), "399.583");
    assert_string_equal(cr_test_cell(&t, r, "discovery"), "0");
    assert_string_equal(cr_test_cell(&t, r, "genre_overlap"), "1");
    assert_string_equal(cr_test_cell(&t, r, "new_release"), "1");
    assert_string_equal(cr_test_cell(&t, r, "item_age"), "1");
    assert_string_equal(cr_test_cell(&t, r, "engagement"), "0.9");
    /* Its negatives can only be 4, 6 and 10 (the rest are rated by user 1
     * or released after 1997); each was rated once, by user 2, in 1996. */
    for (int k = 1; k <= 3; k++) {
        int64_t m = cr_test_cell_i(&t, r + k, "movie_id");
        assert_true(m == 4 || m == 6 || m == 10);
        assert_string_equal(cr_test_cell(&t, r + k, "item_popularity"), "1");
        assert_string_equal(cr_test_cell(&t, r + k, "item_mean_rating"),
                            m == 4 ? "3.5" : m == 6 ? "4" : "2.5");
    }

    /* A title without a year, and a movie without genres. */
    r = positive(&t, 2, 4);
    assert_string_equal(cr_test_cell(&t, r, "year"), "");
    assert_string_equal(cr_test_cell(&t, r, "item_age"), "");
    assert_string_equal(cr_test_cell(&t, r, "new_release"), "0");
    assert_string_equal(cr_test_cell(&t, r, "discovery"), "1");
    r = positive(&t, 2, 10);
    assert_string_equal(cr_test_cell(&t, r, "genres"), "");
    assert_string_equal(cr_test_cell(&t, r, "genre_overlap"), "");
    assert_string_equal(cr_test_cell(&t, r, "discovery"), "0");
    assert_string_equal(cr_test_cell(&t, r, "last_items"), "4|6|1");

    /* 1999-04-15, a 1998 film: new release; a bad rating. */
    r = positive(&t, 2, 9);
    assert_string_equal(cr_test_cell(&t, r, "new_release"), "1");
    assert_string_equal(cr_test_cell(&t, r, "like"), "0");
    assert_string_equal(cr_test_cell(&t, r, "engagement"), "0.2");
    assert_string_equal(cr_test_cell(&t, r, "day_of_week"), "4");

    /* Toy Story for user 3 in 2000: two earlier ratings by others. */
    r = positive(&t, 3, 1);
    assert_string_equal(cr_test_cell(&t, r, "item_popularity"), "2");
    assert_string_equal(cr_test_cell(&t, r, "item_mean_rating"), "4.5");
    assert_string_equal(cr_test_cell(&t, r, "item_age"), "5");
    assert_string_equal(cr_test_cell(&t, r, "split"), "train");
    assert_string_equal(cr_test_cell(&t, positive(&t, 3, 3), "split"), "valid");
    assert_string_equal(cr_test_cell(&t, positive(&t, 3, 12), "split"), "test");
    /* Heat: user 1's next Crime or Thriller (Fargo) is a year later; Grease
     * is the log's last rating, so whether a return follows is unknown. */
    assert_string_equal(cr_test_cell(&t, positive(&t, 1, 5), "genre_return"), "0");
    assert_string_equal(cr_test_cell(&t, positive(&t, 3, 12), "genre_return"), "");
    cr_test_table_free(&t);
    cr_test_rmdir(dir);
}

/* ---- negatives ------------------------------------------------------------------------ */

static int rated_by(int64_t user, int64_t movie) {
    static const int64_t pairs[][2] = {{1, 1}, {1, 2}, {1, 3}, {1, 5}, {1, 8}, {2, 1}, {2, 6},
                                       {2, 4}, {2, 10}, {2, 9}, {3, 7}, {3, 1}, {3, 3}, {3, 12}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        if (pairs[i][0] == user && pairs[i][1] == movie) return 1;
    return 0;
}

static void check_requests(const cr_test_table *t, int k) {
    assert_int_equal(t->n % (k + 1), 0);
    for (int64_t r = 0; r < t->n; r += k + 1) {
        int64_t rid = cr_test_cell_i(t, r, "request_id"), user = cr_test_cell_i(t, r, "user_id");
        assert_int_equal(rid, r / (k + 1));
        assert_string_equal(cr_test_cell(t, r, "click"), "1");
        assert_true(rated_by(user, cr_test_cell_i(t, r, "movie_id")));
        for (int j = 1; j <= k; j++) {
            int64_t m = cr_test_cell_i(t, r + j, "movie_id");
            assert_int_equal(cr_test_cell_i(t, r + j, "request_id"), rid);
            assert_int_equal(cr_test_cell_i(t, r + j, "user_id"), user);
            assert_string_equal(cr_test_cell(t, r + j, "click"), "0");
            assert_string_equal(cr_test_cell(t, r + j, "timestamp"), cr_test_cell(t, r, "timestamp"));
            assert_string_equal(cr_test_cell(t, r + j, "hist_count"), cr_test_cell(t, r, "hist_count"));
            assert_string_equal(cr_test_cell(t, r + j, "rating"), "");
            assert_string_equal(cr_test_cell(t, r + j, "like"), "");
            assert_string_equal(cr_test_cell(t, r + j, "engagement"), "");
            assert_string_equal(cr_test_cell(t, r + j, "discovery"), "");
            assert_string_equal(cr_test_cell(t, r + j, "genre_return"), "");
            if (rated_by(user, m)) fail_msg("request %lld: user %lld rated negative %lld",
                                            (long long)rid, (long long)user, (long long)m);
            for (int i = 1; i < j; i++) assert_int_not_equal(cr_test_cell_i(t, r + i, "movie_id"), m);
            assert_true(m != 11 && m != 12); /* never rated in the training period */
        }
    }
}

static void test_negatives(void **state) {
    (void)state;
    char dir[256], out[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/imp.csv", dir);
    for (int p = 0; p < 2; p++) {
        for (int k = 0; k <= 3; k++) {
            cr_ml_opts o = tiny_opts(out);
            o.negatives = k;
            o.protocol = p ? CR_ML_UNIFORM : CR_ML_POPULARITY;
            cr_ml_stats st;
            build_ok(&o, &st);
            cr_test_table t;
            cr_test_table_load(&t, out);
            assert_int_equal(t.n, 14 * (k + 1));
            check_requests(&t, k);
            cr_test_table_free(&t);
        }
    }
    /* User 1 has only three movies left to be shown: asking for four is an
     * error naming the rating's line, not a short request. */
    cr_ml_opts o = tiny_opts(out);
    o.negatives = 4;
    cr_error e;
    assert_int_equal(cr_ml_build(&o, NULL, &e), CR_ERR_LIMIT);
    assert_non_null(strstr(e.msg, "ratings.csv:2:"));
    assert_non_null(strstr(e.msg, "user 1"));
    cr_test_rmdir(dir);
}

/* ---- domains, history scope, keep_fraction ------------------------------------------------ */

/* Build o and check the history columns of one positive. */
static void expect_history(const cr_ml_opts *o, cr_ml_stats *st, int64_t user, int64_t movie,
                           const char *last_items, const char *count, const char *mean) {
    build_ok(o, st);
    cr_test_table t;
    cr_test_table_load(&t, o->out_path);
    int64_t r = positive(&t, user, movie);
    assert_true(r >= 0);
    assert_string_equal(cr_test_cell(&t, r, "last_items"), last_items);
    assert_string_equal(cr_test_cell(&t, r, "hist_count"), count);
    assert_string_equal(cr_test_cell(&t, r, "hist_mean_rating"), mean);
    cr_test_table_free(&t);
}

/* No row of t is a Musical of ml_tiny (3, 6, 12); with histories, no
 * last_items or hist_top_genres mentions one either. */
static void no_musical(const cr_test_table *t, int histories) {
    for (int64_t x = 0; x < t->n; x++) {
        int64_t m = cr_test_cell_i(t, x, "movie_id");
        assert_true(m != 3 && m != 6 && m != 12);
        if (!histories) continue;
        assert_null(strstr(cr_test_cell(t, x, "hist_top_genres"), "Musical"));
        for (const char *p = cr_test_cell(t, x, "last_items"); *p;
             p += strcspn(p, "|") + (p[strcspn(p, "|")] != 0)) {
            long id = strtol(p, NULL, 10);
            assert_true(id != 3 && id != 6 && id != 12);
        }
    }
}

static void test_domains(void **state) {
    (void)state;
    char dir[256], out[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/imp.csv", dir);
    cr_ml_opts o = tiny_opts(out);
    o.include_genre = "Musical";
    o.negatives = 1;
    o.valid_frac = o.test_frac = 0.25;
    cr_ml_stats st;
    build_ok(&o, &st);
    assert_int_equal(st.domain_ratings, 4);
    assert_int_equal(st.requests, 4);
    assert_int_equal(st.pool, 2); /* 3 and 6; 12 is rated only in test */
    cr_test_table t;
    cr_test_table_load(&t, out);
    for (int64_t r = 0; r < t.n; r++) {
        int64_t m = cr_test_cell_i(&t, r, "movie_id");
        assert_true(m == 3 || m == 6 || m == 12);
    }
    /* Each user rated one of {3, 6}, so the other is the only negative. */
    int64_t r = positive(&t, 1, 3);
    assert_int_equal(cr_test_cell_i(&t, r + 1, "movie_id"), 6);
    r = positive(&t, 3, 3);
    assert_string_equal(cr_test_cell(&t, r, "hist_count"), "0"); /* no Musical before */
    assert_string_equal(cr_test_cell(&t, r, "split"), "valid");
    cr_test_table_free(&t);

    o.history = CR_ML_HISTORY_ALL; /* the same requests, with all past ratings */
    expect_history(&o, &st, 3, 3, "1|7", "2", "3");
    assert_int_equal(st.requests, 4);

    cr_ml_opts_default(&o);
    o.in_dir = TINY;
    o.out_path = out;
    o.negatives = 2;
    o.exclude_genre = "Musical";
    build_ok(&o, &st);
    assert_int_equal(st.requests, 10);
    cr_test_table_load(&t, out);
    no_musical(&t, 1);
    /* History is in-domain by default: user 1's rating of movie 3 is gone. */
    assert_string_equal(cr_test_cell(&t, positive(&t, 1, 8), "last_items"), "5|2|1");
    cr_test_table_free(&t);

    /* With every past rating the source's histories read Musicals... */
    o.history = CR_ML_HISTORY_ALL;
    expect_history(&o, &st, 1, 8, "5|3|2|1", "4", "3.5");
    /* ...unless strict: then no row, history or feature mentions a Musical,
     * and the requests are the same. */
    o.strict = 1;
    expect_history(&o, &st, 1, 8, "5|2|1", "3", "3");
    assert_int_equal(st.requests, 10);
    assert_int_equal(st.hidden_ratings, 4);
    cr_test_table_load(&t, out);
    no_musical(&t, 1);
    cr_test_table_free(&t);
    /* strict needs a genre to hide */
    o.exclude_genre = NULL;
    cr_error e;
    assert_int_equal(cr_ml_build(&o, NULL, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "strict"));
    cr_test_rmdir(dir);
}

static void test_keep_fraction(void **state) {
    (void)state;
    char dir[256], full[512], half[512], most[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(full, sizeof full, "%s/full.csv", dir);
    snprintf(half, sizeof half, "%s/half.csv", dir);
    snprintf(most, sizeof most, "%s/most.csv", dir);
    cr_ml_opts o = tiny_opts(full);
    o.negatives = 2;
    cr_ml_stats sf, sh, sm;
    build_ok(&o, &sf);
    o.out_path = half;
    o.keep_fraction = 0.5;
    build_ok(&o, &sh);
    o.out_path = most;
    o.keep_fraction = 0.8;
    build_ok(&o, &sm);
    assert_int_equal(sh.requests_split[CR_SPLIT_TRAIN] + sh.dropped, 12);
    assert_int_equal(sm.requests_split[CR_SPLIT_TRAIN] + sm.dropped, 12);
    assert_true(sh.dropped > 0 && sh.dropped < 12);
    assert_true(sm.dropped <= sh.dropped);
    assert_int_equal(sh.requests_split[CR_SPLIT_VALID], 1); /* never thinned */
    assert_int_equal(sh.requests_split[CR_SPLIT_TEST], 1);
    cr_test_table tf, th, tm;
    cr_test_table_load(&tf, full);
    cr_test_table_load(&th, half);
    cr_test_table_load(&tm, most);
    /* Every kept request is also kept at 0.8 and in the full build, with
     * the same negatives and the same (full-history) features. */
    for (int64_t r = 0; r < th.n; r += 3) {
        int64_t u = cr_test_cell_i(&th, r, "user_id"), m = cr_test_cell_i(&th, r, "movie_id");
        int64_t rf = positive(&tf, u, m), rm = positive(&tm, u, m);
        assert_true(rf >= 0 && rm >= 0);
        for (int j = 0; j < 3; j++) {
            assert_string_equal(cr_test_cell(&th, r + j, "movie_id"), cr_test_cell(&tf, rf + j, "movie_id"));
            assert_string_equal(cr_test_cell(&th, r + j, "movie_id"), cr_test_cell(&tm, rm + j, "movie_id"));
            assert_string_equal(cr_test_cell(&th, r + j, "hist_count"), cr_test_cell(&tf, rf + j, "hist_count"));
            assert_string_equal(cr_test_cell(&th, r + j, "item_popularity"),
                                cr_test_cell(&tf, rf + j, "item_popularity"));
        }
    }
    cr_test_table_free(&tf);
    cr_test_table_free(&th);
    cr_test_table_free(&tm);
    o.keep_fraction = 0;
    build_ok(&o, &sh);
    assert_int_equal(sh.requests_split[CR_SPLIT_TRAIN], 0);
    assert_int_equal(sh.requests, 2);
    cr_test_rmdir(dir);
}

static void test_determinism(void **state) {
    (void)state;
    char dir[256], a[512], b[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    cr_ml_opts o = tiny_opts(a);
    o.negatives = 2;
    build_ok(&o, NULL);
    o.out_path = b;
    build_ok(&o, NULL);
    char *x, *y;
    size_t nx, ny;
    cr_error e;
    assert_int_equal(cr_read_file(a, &x, &nx, &e), CR_OK);
    assert_int_equal(cr_read_file(b, &y, &ny, &e), CR_OK);
    assert_int_equal(nx, ny);
    assert_memory_equal(x, y, nx);
    cr_free(y);
    o.seed = 2;
    build_ok(&o, NULL);
    assert_int_equal(cr_read_file(b, &y, &ny, &e), CR_OK);
    assert_true(nx != ny || memcmp(x, y, nx) != 0);
    cr_free(x);
    cr_free(y);
    cr_test_rmdir(dir);
}

/* A copy of ml_tiny in dir, with ratings.csv replaced when given. */
static void write_set(const char *dir, const char *ratings, int with_ratings);

/* ---- genre_return: a label from the user's next ratings ---------------------------------------- */

/* A log made for the label (days from 2001-09-09, T0 = 1000000000):
 *   user 1: Heat (Action|Crime|Thriller) d0, Home Movie (Documentary) d1,
 *           Matrix (Action|Sci-Fi|Thriller) d30, Late Arrival (Drama) d31,
 *           Fargo (Comedy|Crime|Drama|Thriller) d61 + 1 s
 *   user 2: Silent Reel (no genres) d0, American President (Comedy|Drama|
 *           Romance) d100 and Casablanca (Drama|Romance) d100 (same second,
 *           later line), Sound of Music (Musical|Romance) d180, Singin' in the
 *           Rain (Comedy|Musical|Romance) d200: the log's last rating
 *   user 3: American President d10, Grease (Comedy|Musical|Romance) d12 */
static const char *const return_log =
    "userId,movieId,rating,timestamp\n"
    "1,5,4,1000000000\n1,4,3,1000086400\n1,7,4,1002592000\n1,9,2,1002678400\n"
    "1,8,5,1005270401\n"
    "2,10,3,1000000000\n2,2,4,1008640000\n2,11,4,1008640000\n2,6,5,1015552000\n"
    "2,3,4,1017280000\n"
    "3,2,3,1000864000\n3,12,4,1001036800\n";

static void test_genre_return(void **state) {
    (void)state;
    char dir[256], out[512];
    cr_test_tmpdir(dir, sizeof dir);
    write_set(dir, return_log, 1);
    snprintf(out, sizeof out, "%s/imp.csv", dir);
    cr_ml_opts o = tiny_opts(out);
    o.in_dir = dir;
    o.negatives = 0;
    cr_ml_stats st;
    build_ok(&o, &st);
    cr_test_table t;
    cr_test_table_load(&t, out);
    static const struct { int64_t user, movie; const char *want; } cases[] = {
        {1, 5, "1"},  /* Matrix shares Action and Thriller, exactly 30 days later */
        {1, 4, "0"},  /* no other Documentary */
        {1, 7, "0"},  /* Fargo shares Thriller, but 30 days and 1 s later */
        {1, 9, "0"},  /* Fargo shares Drama 30 days and 1 s later */
        {1, 8, "0"},  /* user 1's last rating; the log runs on to d200 */
        {2, 10, ""},  /* no genre to share */
        {2, 2, "1"},  /* Casablanca: the same second, but later in the event order */
        {2, 11, "0"}, /* American President came first: the past is not a return */
        {2, 6, ""},   /* d180 + 30 days is past the log's end (d200): censored */
        {2, 3, ""},
        {3, 2, "1"},  /* Grease shares Comedy and Romance two days later */
        {3, 12, "0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t r = positive(&t, cases[i].user, cases[i].movie);
        assert_true(r >= 0);
        const char *got = cr_test_cell(&t, r, "genre_return");
        if (strcmp(got, cases[i].want))
            fail_msg("user %lld, movie %lld: genre_return '%s', expected '%s'",
                     (long long)cases[i].user, (long long)cases[i].movie, got, cases[i].want);
    }
    cr_test_table_free(&t);
    assert_int_equal(st.return_undefined, 3);
    assert_float_equal(st.return_rate, 3.0 / 9, 1e-12);

    /* A shorter horizon: Matrix is no longer within it. */
    o.return_days = 29;
    build_ok(&o, NULL);
    cr_test_table_load(&t, out);
    assert_string_equal(cr_test_cell(&t, positive(&t, 1, 5), "genre_return"), "0");
    assert_string_equal(cr_test_cell(&t, positive(&t, 3, 2), "genre_return"), "1");
    cr_test_table_free(&t);

    /* Only the domain's ratings are returns: without Musicals, user 3's
     * Grease is gone and American President has no return; in the Musical
     * domain, Sound of Music's Romance and Singin' in the Rain's Comedy do
     * not look outside it. */
    o.return_days = 30;
    o.exclude_genre = "Musical";
    build_ok(&o, NULL);
    cr_test_table_load(&t, out);
    assert_string_equal(cr_test_cell(&t, positive(&t, 3, 2), "genre_return"), "0");
    assert_string_equal(cr_test_cell(&t, positive(&t, 2, 2), "genre_return"), "1");
    cr_test_table_free(&t);
    o.exclude_genre = NULL;
    o.include_genre = "Musical";
    build_ok(&o, NULL);
    cr_test_table_load(&t, out);
    assert_int_equal(t.n, 3);
    assert_string_equal(cr_test_cell(&t, positive(&t, 3, 12), "genre_return"), "0");
    cr_test_table_free(&t);

    o.return_days = 0;
    cr_error e;
    assert_int_equal(cr_ml_build(&o, NULL, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "return_days"));
    cr_test_rmdir(dir);
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void write_set(const char *dir, const char *ratings, int with_ratings) {
    static const char *const names[] = {"movies.csv", "ratings.csv"};
    char src[512], dst[512];
    cr_error e;
    for (int i = 0; i < 2; i++) {
        if (i == 1 && !with_ratings) continue;
        snprintf(dst, sizeof dst, "%s/%s", dir, names[i]);
        if (i == 1 && ratings) {
            assert_int_equal(cr_write_file_atomic(dst, ratings, strlen(ratings), &e), CR_OK);
            continue;
        }
        snprintf(src, sizeof src, TINY "/%s", names[i]);
        char *buf;
        size_t n;
        assert_int_equal(cr_read_file(src, &buf, &n, &e), CR_OK);
        assert_int_equal(cr_write_file_atomic(dst, buf, n, &e), CR_OK);
        cr_free(buf);
    }
}

static void expect_error(const cr_ml_opts *o, cr_status want, const char *needle) {
    cr_error e;
    cr_err_clear(&e);
    cr_status s = cr_ml_build(o, NULL, &e);
    if (s != want || !strstr(e.msg, needle))
        fail_msg("expected status %d with '%s', got %d: %s", (int)want, needle, (int)s, e.msg);
    assert_false(cr_file_exists(o->out_path)); /* nothing half-written is left */
}

static void test_errors(void **state) {
    (void)state;
    char dir[256], out[512], in[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out/imp.csv", dir);
    snprintf(in, sizeof in, "%s/in", dir);
    cr_error e;
    assert_int_equal(cr_mkdirs(in, &e), CR_OK);
    cr_ml_opts o = tiny_opts(out);
    o.in_dir = in;
    expect_error(&o, CR_ERR_IO, "movies.csv");
    write_set(in, NULL, 0);
    expect_error(&o, CR_ERR_IO, "ratings.csv");
    /* Line 5 (the fourth rating) with a bad number, then an impossible one. */
    write_set(in, "userId,movieId,rating,timestamp\n1,1,4,820490400\n1,2,3,820584000\n"
                  "1,3,5,820584000\n1,5,2.x,821318400\n", 1);
    expect_error(&o, CR_ERR_PARSE, "ratings.csv:5");
    write_set(in, "userId,movieId,rating,timestamp\n1,1,4,820490400\n1,2,3,820584000\n"
                  "1,3,5,820584000\n1,5,7.5,821318400\n", 1);
    expect_error(&o, CR_ERR_PARSE, "ratings.csv:5: expected a rating from 0 to 5");
    write_set(in, "userId,movieId,rating,timestamp\n1,1,4,820490400\n1,99,3,820584000\n", 1);
    expect_error(&o, CR_ERR_MISMATCH, "ratings.csv:3: movieId 99 is not in");
    write_set(in, "userId,movieId,stars,timestamp\n1,1,4,820490400\n", 1);
    expect_error(&o, CR_ERR_NOT_FOUND, "expected a column 'rating'");
    write_set(in, "userId,movieId,rating,timestamp\n", 1);
    expect_error(&o, CR_ERR_PARSE, "expected at least one rating");

    o = tiny_opts(out);
    o.include_genre = "Musicals";
    expect_error(&o, CR_ERR_NOT_FOUND, "got 'Musicals'");
    o = tiny_opts(out);
    o.include_genre = "Musical";
    o.exclude_genre = "Musical";
    expect_error(&o, CR_ERR_CONFIG, "no rating is of a movie in the domain");
    o = tiny_opts(out);
    o.valid_frac = 0.6;
    o.test_frac = 0.5;
    expect_error(&o, CR_ERR_ARG, "valid_frac + test_frac");
    o = tiny_opts(out);
    o.keep_fraction = 1.5;
    expect_error(&o, CR_ERR_ARG, "keep_fraction");
    o = tiny_opts(out);
    o.negatives = -1;
    expect_error(&o, CR_ERR_ARG, "negatives");

    cr_ml_protocol p;
    cr_ml_history h;
    assert_int_equal(cr_ml_protocol_parse("uniform", &p, &e), CR_OK);
    assert_int_equal(p, CR_ML_UNIFORM);
    assert_int_equal(cr_ml_protocol_parse("popular", &p, &e), CR_ERR_ARG);
    assert_int_equal(cr_ml_history_parse("all", &h, &e), CR_OK);
    assert_int_equal(h, CR_ML_HISTORY_ALL);
    assert_int_equal(cr_ml_history_parse("everything", &h, &e), CR_ERR_ARG);
    cr_test_rmdir(dir);
}

/* ---- the real data, when present --------------------------------------------------------------
 */

static void test_real_data(void **state) {
    (void)state;
    if (!cr_file_exists("data/movielens/ratings.csv")) skip();
    char dir[256], out[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/impressions.csv", dir);
    cr_ml_opts o;
    cr_ml_opts_default(&o);
    o.in_dir = "data/movielens";
    o.out_path = out;
    cr_ml_stats st;
    build_ok(&o, &st);
    assert_int_equal(st.ratings, 100004);
    assert_int_equal(st.movies, 9066);
    assert_int_equal(st.extra_movies, 1697);
    assert_int_equal(st.requests, 100004);
    assert_int_equal(st.rows, 500020);
    assert_int_equal(st.users, 671);
    assert_int_equal(st.requests_split[0] + st.requests_split[1] + st.requests_split[2], 100004);
    assert_true(st.requests_split[CR_SPLIT_TEST] >= 9900 &&
                st.requests_split[CR_SPLIT_TEST] <= 10100);
    assert_true(st.like_rate > 0.4 && st.like_rate < 0.6);
    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, out, ',', &e), CR_OK);
    assert_int_equal(cr_csv_ncols(c), 30);
    assert_true(cr_csv_find(c, "split") >= 0 && cr_csv_find(c, "new_release") >= 0);
    cr_csv_close(c);

    /* Negatives' share of new releases in the test period: the training-
     * period pool cannot hold movies first rated later (share ~0), the
     * period pool draws them as often as they are rated (share ~ the
     * positives' share). */
    double share[2], pos_share = 0;
    for (int p = 0; p < 2; p++) {
        o.protocol = p ? CR_ML_PERIOD : CR_ML_POPULARITY;
        build_ok(&o, &st);
        cr_test_table t;
        cr_test_table_load(&t, out);
        int64_t neg = 0, neg_new = 0, pos = 0, pos_new = 0;
        for (int64_t r = 0; r < t.n; r++) {
            if (strcmp(cr_test_cell(&t, r, "split"), "test")) continue;
            int is_new = cr_test_cell_i(&t, r, "new_release") == 1;
            if (cr_test_cell_i(&t, r, "click")) { pos++; pos_new += is_new; }
            else { neg++; neg_new += is_new; }
        }
        share[p] = (double)neg_new / (double)neg;
        pos_share = (double)pos_new / (double)pos;
        cr_test_table_free(&t);
    }
    assert_true(share[0] < 0.01);
    assert_true(share[1] > 0.5 * pos_share && share[1] < 1.5 * pos_share);
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_features), cmocka_unit_test(test_negatives),
        cmocka_unit_test(test_domains),       cmocka_unit_test(test_keep_fraction),
        cmocka_unit_test(test_determinism),   cmocka_unit_test(test_genre_return),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_real_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
