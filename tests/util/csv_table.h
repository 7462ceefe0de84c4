/*
 * csv_table.h - a CSV file read back whole through the project's CSV reader
 * (every field a string), for tests that check a written log cell by cell.
 * Test-only code; failures are cmocka failures.
 */
#ifndef CR_CSV_TABLE_H
#define CR_CSV_TABLE_H

#include <stdint.h>

typedef struct cr_test_table {
    int     ncols;
    char    names[64][32];
    int64_t n;
    char  **cells; /* (n, ncols) */
} cr_test_table;

void        cr_test_table_load(cr_test_table *t, const char *path);
void        cr_test_table_free(cr_test_table *t);
/* The field of row in column col (a failure if there is no such column). */
const char *cr_test_cell(const cr_test_table *t, int64_t row, const char *col);
int64_t     cr_test_cell_i(const cr_test_table *t, int64_t row, const char *col);

#endif
