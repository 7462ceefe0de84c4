/*
 * csv_table.c - a written CSV read back whole, for tests (csv_table.h).
 */
#include "csv_table.h"
#include "testutil.h"

#include "../../src/data/data.h"

#include <stdlib.h>
#include <string.h>

void cr_test_table_load(cr_test_table *t, const char *path) {
    memset(t, 0, sizeof *t);
    cr_csv *c;
    cr_error e;
    assert_int_equal(cr_csv_open(&c, path, ',', &e), CR_OK);
    t->ncols = cr_csv_ncols(c);
    assert_true(t->ncols <= 64);
    for (int i = 0; i < t->ncols; i++)
        snprintf(t->names[i], sizeof t->names[i], "%s", cr_csv_colname(c, i));
    size_t cap = 0;
    for (;;) {
        int done;
        assert_int_equal(cr_csv_next(c, &done, &e), CR_OK);
        if (done) break;
        size_t need = (size_t)(t->n + 1) * (size_t)t->ncols;
        assert_int_equal(cr_grow((void **)&t->cells, &cap, need, sizeof(char *), &e), CR_OK);
        for (int i = 0; i < t->ncols; i++)
            t->cells[t->n * t->ncols + i] = strdup(cr_csv_field(c, i, NULL));
        t->n++;
    }
    cr_csv_close(c);
}

void cr_test_table_free(cr_test_table *t) {
    for (int64_t i = 0; i < t->n * t->ncols; i++) free(t->cells[i]);
    free(t->cells);
}

const char *cr_test_cell(const cr_test_table *t, int64_t row, const char *col) {
    for (int i = 0; i < t->ncols; i++)
        if (!strcmp(t->names[i], col)) return t->cells[row * t->ncols + i];
    fail_msg("no column '%s'", col);
    return NULL;
}

int64_t cr_test_cell_i(const cr_test_table *t, int64_t row, const char *col) {
    return strtoll(cr_test_cell(t, row, col), NULL, 10);
}
