/*
 * test_impressions.c - `crossrec impressions` through the public API on a
 * hand-written log (four users, seven items, ISO dates, a user file): the
 * negatives come only from the period's played items and never from the
 * user's own, features read only the past (checked against a count over
 * the log), the split is by time, labels come from their expressions, and
 * bad inputs fail with messages naming the file, line and column.
 */
#include "util/csv_table.h"
#include "util/testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The log: (user, item, when, score, dwell) in time order. */
typedef struct ev {
    const char *user, *item, *when;
    double      score, dwell;
    int64_t     ts;
} ev;

static const ev LOG[] = {
    {"u1", "a", "2020-01-05", 4, 30, 1578182400},
    {"u2", "b", "2020-02-01", 2, 5, 1580515200},
    {"u3", "c", "2020-03-01T10:00:00Z", 5, 60, 1583056800},
    {"u4", "d", "2020-04-01", 3, 10, 1585699200},
    {"u1", "b", "2020-05-01", 5, 100, 1588291200},
    {"u2", "e", "2020-06-01", 1, 2, 1590969600},
    {"u3", "a", "2020-07-01", 4, 40, 1593561600},
    {"u4", "c", "2021-01-10", 4, 50, 1610236800},
    {"u1", "e", "2021-02-10", 3, 20, 1612915200},
    {"u2", "d", "2021-03-10", 5, 70, 1615334400},
    {"u3", "g", "2021-04-10", 2, 3, 1618012800},
    {"u4", "e", "2021-05-10", 4, 30, 1620604800},
    {"u1", "c", "2021-06-10", 5, 80, 1623283200},
    {"u2", "a", "2021-07-10", 3, 15, 1625875200},
    {"u3", "f", "2021-08-10 12:30", 4, 45, 1628598600},
};
enum { N_LOG = sizeof LOG / sizeof LOG[0] };

/* f is released in 2030: a positive may be dated before it (as in
 * MovieLens), but it is never shown as a negative before its year. */
static const char *const ITEMS = "id,cats,year,label\n"
                                 "a,x,2000,Alpha\nb,x|y,2001,Beta\nc,y,2002,Gamma\n"
                                 "d,z,1999,Delta\ne,x,2000,Eps\nf,y,2030,Phi\ng,z,,Gee\n";
static const char *const USERS = "uid,country\nu1,DE\nu2,FR\nu3,JP\nu9,US\n";

static const char *const YAML =
    "log: {path: log.csv, user: user, item: item, time: when, time_format: date,\n"
    "      rating: score, values: [dwell]}\n"
    "items:\n"
    "  - {path: items.csv, key: id, categories: cats, year: year, attributes: {name: label}}\n"
    "users: {path: users.csv, key: uid, attributes: {country: country}}\n"
    "protocol: {negatives: 1, sampling: period, period: year, seed: 3}\n"
    "split: {valid: 0.15, test: 0.15}\n"
    "labels:\n"
    "  - {name: good, expr: \"rating >= 4\"}\n"
    "  - {name: dwell_min, expr: \"dwell / 60\"}\n"
    "  - {name: new_cat, expr: discovery}\n"
    "columns: {item_id: item}\n";

static void put(const char *dir, const char *name, const char *text) {
    char path[512];
    cr_error e;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(cr_write_file_atomic(path, text, strlen(text), &e), CR_OK);
}

/* The log as CSV; bad_line > 0 replaces that event's time with bad_time. */
static void put_log(const char *dir, int bad_line, const char *bad_time, const char *bad_item) {
    char buf[4096];
    size_t n = (size_t)snprintf(buf, sizeof buf, "user,item,when,score,dwell\n");
    for (int i = 0; i < N_LOG; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s,%s,%s,%g,%g\n", LOG[i].user,
                              i + 2 == bad_line && bad_item ? bad_item : LOG[i].item,
                              i + 2 == bad_line && bad_time ? bad_time : LOG[i].when,
                              LOG[i].score, LOG[i].dwell);
    put(dir, "log.csv", buf);
}

static void setup(char *dir, size_t cap) {
    cr_test_tmpdir(dir, cap);
    put_log(dir, 0, NULL, NULL);
    put(dir, "items.csv", ITEMS);
    put(dir, "users.csv", USERS);
    put(dir, "log.yaml", YAML);
}

static cr_status run(const char *dir, const char *yaml, const char *out, cr_error *e) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, yaml);
    cr_impressions_cfg *c = NULL;
    cr_status s = cr_impressions_cfg_load(&c, path, e);
    if (s == CR_OK) s = cr_impressions(NULL, c, out, NULL, e);
    cr_impressions_cfg_free(c);
    return s;
}

static int user_had(const char *user, const char *item) {
    for (int i = 0; i < N_LOG; i++)
        if (!strcmp(LOG[i].user, user) && !strcmp(LOG[i].item, item)) return 1;
    return 0;
}

static int year_of(int64_t ts) { return ts < 1609459200 ? 2020 : 2021; }

static void test_protocol(void **state) {
    (void)state;
    char dir[256], out[512];
    setup(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/out/imp.csv", dir);
    cr_error e;
    cr_err_clear(&e);
    if (run(dir, "log.yaml", out, &e) != CR_OK) fail_msg("%s", e.msg);
    cr_test_table t;
    cr_test_table_load(&t, out);
    assert_int_equal(t.n, 2 * N_LOG);
    /* renamed, attribute and label columns in their places */
    assert_string_equal(t.names[2], "item");
    assert_string_equal(t.names[12], "country");
    assert_string_equal(t.names[18], "name");
    assert_string_equal(t.names[t.ncols - 1], "new_release");
    for (int i = 0; i < N_LOG; i++) {
        const ev *v = &LOG[i];
        int64_t p = 2 * i, q = p + 1; /* the positive, then its one negative */
        assert_int_equal(cr_test_cell_i(&t, p, "request_id"), i);
        assert_string_equal(cr_test_cell(&t, p, "user_id"), v->user);
        assert_string_equal(cr_test_cell(&t, p, "item"), v->item);
        assert_int_equal(cr_test_cell_i(&t, p, "timestamp"), v->ts); /* dates parsed as UTC */
        assert_string_equal(cr_test_cell(&t, p, "click"), "1");
        assert_string_equal(cr_test_cell(&t, q, "click"), "0");
        /* the split is by time: 15 events, 2 valid (llround(2.25)), 2 test, the latest */
        const char *want = i < 11 ? "train" : i < 13 ? "valid" : "test";
        assert_string_equal(cr_test_cell(&t, p, "split"), want);
        assert_string_equal(cr_test_cell(&t, q, "split"), want);
        /* the negative: never the user's own item at any time, never released
         * after the request's year, and one of the items played in that year */
        const char *neg = cr_test_cell(&t, q, "item");
        assert_false(user_had(v->user, neg));
        assert_string_not_equal(neg, "f");
        int in_period = 0;
        for (int j = 0; j < N_LOG; j++)
            in_period |= year_of(LOG[j].ts) == year_of(v->ts) && !strcmp(LOG[j].item, neg);
        if (!in_period) fail_msg("request %d (%d): negative %s was not played that year", i,
                                 year_of(v->ts), neg);
        /* features from strictly earlier events only, for the positive and the negative */
        int64_t hist = 0, pop_pos = 0, pop_neg = 0;
        double sum = 0;
        for (int j = 0; j < i; j++) {
            if (!strcmp(LOG[j].user, v->user)) hist++, sum += LOG[j].score;
            pop_pos += !strcmp(LOG[j].item, v->item);
            pop_neg += !strcmp(LOG[j].item, neg);
        }
        assert_int_equal(cr_test_cell_i(&t, p, "hist_count"), hist);
        assert_int_equal(cr_test_cell_i(&t, q, "hist_count"), hist);
        assert_int_equal(cr_test_cell_i(&t, p, "item_popularity"), pop_pos);
        assert_int_equal(cr_test_cell_i(&t, q, "item_popularity"), pop_neg);
        if (hist) assert_true(fabs(atof(cr_test_cell(&t, p, "hist_mean_rating")) - sum / hist) < 1e-5);
        else assert_string_equal(cr_test_cell(&t, p, "hist_mean_rating"), "");
        /* labels from their expressions on the positive, empty on the negative */
        assert_string_equal(cr_test_cell(&t, p, "good"), v->score >= 4 ? "1" : "0");
        assert_true(fabs(atof(cr_test_cell(&t, p, "dwell_min")) - v->dwell / 60) < 1e-5);
        assert_string_equal(cr_test_cell(&t, q, "good"), "");
        assert_string_equal(cr_test_cell(&t, q, "dwell_min"), "");
        /* user attributes: u4 is not in users.csv, so empty */
        assert_string_equal(cr_test_cell(&t, p, "country"),
                            !strcmp(v->user, "u1") ? "DE" : !strcmp(v->user, "u2") ? "FR"
                            : !strcmp(v->user, "u3") ? "JP" : "");
    }
    /* worked out by hand: u1's third event (e, 2021) - past a (x), b (x|y) */
    assert_string_equal(cr_test_cell(&t, 16, "last_items"), "b|a");
    assert_string_equal(cr_test_cell(&t, 16, "hist_top_categories"), "x|y");
    assert_string_equal(cr_test_cell(&t, 16, "category_overlap"), "1");
    assert_string_equal(cr_test_cell(&t, 16, "new_cat"), "0");
    assert_string_equal(cr_test_cell(&t, 16, "item_age"), "21");
    assert_string_equal(cr_test_cell(&t, 16, "name"), "Eps");
    /* u1's fourth (c: y) is not new; u3's g (z) is */
    assert_string_equal(cr_test_cell(&t, 24, "new_cat"), "0");
    assert_string_equal(cr_test_cell(&t, 20, "new_cat"), "1");
    assert_string_equal(cr_test_cell(&t, 20, "year"), ""); /* g has no year */
    cr_test_table_free(&t);

    /* the same files and config give the same bytes */
    char again[512], *a, *b;
    size_t na, nb;
    snprintf(again, sizeof again, "%s/again.csv", dir);
    assert_int_equal(run(dir, "log.yaml", again, &e), CR_OK);
    assert_int_equal(cr_read_file(out, &a, &na, &e), CR_OK);
    assert_int_equal(cr_read_file(again, &b, &nb, &e), CR_OK);
    assert_true(na == nb && !memcmp(a, b, na));
    cr_free(a);
    cr_free(b);
    cr_test_rmdir(dir);
}

/* A failing build: the status, a message holding every needle, no output. */
static void expect(const char *dir, const char *yaml, cr_status want, const char *n1,
                   const char *n2) {
    char out[512];
    snprintf(out, sizeof out, "%s/bad.csv", dir);
    cr_error e;
    cr_err_clear(&e);
    cr_status s = run(dir, yaml, out, &e);
    if (s != want || !strstr(e.msg, n1) || (n2 && !strstr(e.msg, n2)))
        fail_msg("expected status %d with '%s' and '%s', got %d: %s", (int)want, n1,
                 n2 ? n2 : "", (int)s, e.msg);
    assert_false(cr_file_exists(out));
}

static void test_errors(void **state) {
    (void)state;
    char dir[256];
    setup(dir, sizeof dir);
    /* an unparseable time: the file, the line and the column */
    put_log(dir, 5, "2020-13-01", NULL);
    expect(dir, "log.yaml", CR_ERR_PARSE, "log.csv:5: column 'when': expected a date", "2020-13-01");
    /* an item of the log that the item file lacks */
    put_log(dir, 7, NULL, "zz");
    expect(dir, "log.yaml", CR_ERR_MISMATCH, "log.csv:7: item 'zz' is not in", "items.csv");
    put_log(dir, 0, NULL, NULL);
    /* a column the YAML names that the file lacks: the file and the key */
    put(dir, "b1.yaml", "log: {path: log.csv, user: user, item: item, time: stamp}\n");
    expect(dir, "b1.yaml", CR_ERR_NOT_FOUND, "log.csv:1: expected a column 'stamp'",
           "b1.yaml:1:6: log.time");
    /* a number that is not one */
    put(dir, "b2.yaml", "log: {path: log.csv, user: user, item: item, time: when,\n"
                        "      time_format: date, rating: user}\n");
    expect(dir, "b2.yaml", CR_ERR_PARSE, "log.csv:2", "user");
    /* Unix times must be integers */
    put(dir, "b3.yaml", "log: {path: log.csv, user: user, item: item, time: when}\n");
    expect(dir, "b3.yaml", CR_ERR_PARSE, "log.csv:2", "when");
    /* the YAML: an unknown key, a label over an unknown variable, a bad enum */
    put(dir, "b4.yaml", "log: {path: log.csv, user: user, item: item, time: when}\n"
                        "protocol: {negative: 2}\n");
    expect(dir, "b4.yaml", CR_ERR_CONFIG, "b4.yaml:2:", "unknown key 'negative'");
    put(dir, "b5.yaml", "log: {path: log.csv, user: user, item: item, time: when}\n"
                        "labels: [{name: y, expr: \"dwell > 3\"}]\n");
    expect(dir, "b5.yaml", CR_ERR_NOT_FOUND, "b5.yaml:2:26: labels[0].expr", "unknown column 'dwell'");
    put(dir, "b6.yaml", "log: {path: log.csv, user: user, item: item, time: when}\n"
                        "protocol: {sampling: recent}\n");
    expect(dir, "b6.yaml", CR_ERR_CONFIG, "protocol.sampling", "popularity, uniform, period");
    /* a value named like a built-in variable */
    put(dir, "b11.yaml", "log: {path: log.csv, user: user, item: item, time: when,\n"
                         "      values: [dwell, discovery]}\n");
    expect(dir, "b11.yaml", CR_ERR_CONFIG, "log.values", "'discovery' is a built-in");
    /* strict without an excluded category */
    put(dir, "b7.yaml", "log: {path: log.csv, user: user, item: item, time: when}\n"
                        "domain: {strict: true}\n");
    expect(dir, "b7.yaml", CR_ERR_CONFIG, "domain.strict", "exclude");
    /* an unknown category for the domain names the catalogue's */
    put(dir, "b8.yaml", "log: {path: log.csv, user: user, item: item, time: when, "
                        "time_format: date}\n"
                        "items: [{path: items.csv, key: id, categories: cats}]\n"
                        "domain: {include: w}\n");
    expect(dir, "b8.yaml", CR_ERR_NOT_FOUND, "expected a category of", "(x, y, z), got 'w'");
    /* a repeated catalogue key */
    put(dir, "items2.csv", "id,cats\na,x\nb,y\na,z\n");
    put(dir, "b9.yaml", "log: {path: log.csv, user: user, item: item, time: when, "
                        "time_format: date}\n"
                        "items: [{path: items2.csv, key: id}]\n");
    expect(dir, "b9.yaml", CR_ERR_PARSE, "items2.csv:4: item 'a' appears twice", NULL);
    /* a label colliding with a fixed column */
    put(dir, "b10.yaml", "log: {path: log.csv, user: user, item: item, time: when, "
                         "time_format: date}\n"
                         "labels: [{name: click, expr: \"1\"}]\n");
    expect(dir, "b10.yaml", CR_ERR_ARG, "two columns named 'click'", NULL);
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protocol),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
