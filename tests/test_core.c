/*
 * test_core.c - status messages, parameter tables, the RNG (against
 * std::mt19937's published values), atomic writes and the progress meter.
 */
#include "util/testutil.h"

#include <stdlib.h>
#include <string.h>

static void test_rng_matches_mt19937(void **state) {
    (void)state;
    cr_rng r;
    cr_rng_seed(&r, 5489); /* std::mt19937 default seed */
    uint32_t first = cr_rng_u32(&r);
    assert_int_equal(first, 3499211612u);
    for (int i = 1; i < 9999; i++) cr_rng_u32(&r);
    assert_int_equal(cr_rng_u32(&r), 4123659995u); /* the 10000th value, per the C++ standard */
}

static void test_rng_below_and_shuffle(void **state) {
    (void)state;
    cr_rng r;
    cr_rng_seed(&r, 1);
    uint32_t a[100];
    for (uint32_t i = 0; i < 100; i++) a[i] = i;
    cr_rng_shuffle_u32(&r, a, 100);
    int seen[100] = {0};
    for (int i = 0; i < 100; i++) seen[a[i]]++;
    for (int i = 0; i < 100; i++) assert_int_equal(seen[i], 1);
    for (int i = 0; i < 1000; i++) assert_true(cr_rng_below(&r, 7) < 7);
    double s = 0, s2 = 0;
    for (int i = 0; i < 20000; i++) {
        double z = cr_rng_normal(&r);
        s += z;
        s2 += z * z;
    }
    assert_true(s / 20000 > -0.05 && s / 20000 < 0.05);
    assert_true(s2 / 20000 > 0.95 && s2 / 20000 < 1.05);
}

static void test_ptable(void **state) {
    (void)state;
    cr_ptable pt;
    cr_ptable_init(&pt);
    int64_t s1[2] = {3, 5}, s2[1] = {7};
    int a = cr_ptable_add(&pt, "a.weight", 2, s1, 0);
    int b = cr_ptable_add(&pt, "a.bias", 1, s2, CR_PARAM_NO_DECAY);
    assert_int_equal(cr_ptable_alloc(&pt, NULL), CR_OK);
    assert_int_equal(pt.t[a].numel, 15);
    assert_int_equal(pt.t[b].offset % 16, 0);
    assert_ptr_equal(cr_ptable_ptr(&pt, pt.data, b), pt.data + pt.t[b].offset);
    assert_int_equal(cr_ptable_find(&pt, "a.bias"), b);
    assert_int_equal(cr_ptable_find(&pt, "nope"), -1);
    assert_true(((uintptr_t)pt.data & 63) == 0);
    cr_ptable_free(&pt);
}

static void test_errors(void **state) {
    (void)state;
    cr_error e;
    cr_err_clear(&e);
    assert_int_equal(cr_err(&e, CR_ERR_PARSE, "x.csv:%d:%d: expected a number", 3, 4), CR_ERR_PARSE);
    assert_string_equal(e.msg, "x.csv:3:4: expected a number");
    cr_err_prefix(&e, "loading %s", "data");
    assert_string_equal(e.msg, "loading data: x.csv:3:4: expected a number");
    assert_int_equal(cr_err(NULL, CR_ERR_IO, "ignored"), CR_ERR_IO);
    assert_string_equal(cr_strerror(CR_ERR_FORMAT), "corrupt or truncated file");
}

static void test_atomic_write(void **state) {
    (void)state;
    char dir[256], path[512];
    cr_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sub/dir/f.bin", dir);
    cr_error e;
    char d2[512];
    snprintf(d2, sizeof d2, "%s/sub/dir", dir);
    assert_int_equal(cr_mkdirs(d2, &e), CR_OK);
    assert_int_equal(cr_write_file_atomic(path, "old", 3, &e), CR_OK);
    /* An aborted write leaves the old file and no temporary behind. */
    cr_atomic_file a;
    assert_int_equal(cr_atomic_open(&a, path, &e), CR_OK);
    assert_int_equal(cr_atomic_write(&a, "new-but-aborted", 15, &e), CR_OK);
    cr_atomic_abort(&a);
    char *buf;
    size_t len;
    assert_int_equal(cr_read_file(path, &buf, &len, &e), CR_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "old", 3);
    cr_free(buf);
    assert_false(cr_file_exists(a.tmp));
    assert_int_equal(cr_write_file_atomic(path, "newer", 5, &e), CR_OK);
    cr_mmap m;
    assert_int_equal(cr_mmap_open(&m, path, &e), CR_OK);
    assert_int_equal(m.size, 5);
    assert_memory_equal(m.data, "newer", 5);
    cr_mmap_close(&m);
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(cr_read_file(path, &buf, &len, &e), CR_ERR_IO);
    assert_non_null(strstr(e.msg, "missing"));
    cr_test_rmdir(dir);
}

/* The progress meter in a log (not a terminal): nothing within the interval,
 * a whole line with the rate and eta when forced, nothing at all when silent. */
static void test_meter(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    cr_meter m;
    cr_meter_start(&m, f, "label", 2000, "rows");
    assert_int_equal(m.tty, 0);
    cr_meter_update(&m, 10, 10, NULL, NULL, 0); /* within CR_METER_LOG_SECONDS */
    fflush(f);
    assert_int_equal(len, 0);
    m.t0 -= 10.0; /* as if 10 s had passed for 500 of 2000 rows */
    cr_meter_update(&m, 500, 500, NULL, "extra", 1);
    fflush(f);
    assert_non_null(strstr(buf, "label 500/2000 rows | 50 rows/s | extra | 0:10 elapsed, eta 0:30\n"));
    cr_meter_done(&m);
    fclose(f);
    free(buf);
    cr_meter_start(&m, NULL, "quiet", 10, "rows");
    cr_meter_update(&m, 5, 5, NULL, NULL, 1);
    char b[32];
    cr_meter_clock(b, sizeof b, 3725);
    assert_string_equal(b, "1:02:05");
    cr_meter_count(b, sizeof b, 12345);
    assert_string_equal(b, "12.3k");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_matches_mt19937),
        cmocka_unit_test(test_rng_below_and_shuffle),
        cmocka_unit_test(test_ptable),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_meter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
