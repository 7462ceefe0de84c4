/*
 * batch.c - copies chosen dataset rows into a batch's own buffers, laid out
 * the way the kernels read them (ids row-major, labels task-major). Buffers
 * are sized once for the largest batch; gathering never shrinks them and
 * never changes the dataset.
 */
#include "data.h"

#include <stdlib.h>
#include <string.h>

void cr_batch_free(cr_batch *b) {
    if (!b) return;
    cr_free(b->cat);
    for (int m = 0; m < b->n_multi; m++) {
        if (b->bag_off) cr_free(b->bag_off[m]);
        if (b->bag_ids) free(b->bag_ids[m]);
    }
    free(b->bag_off);
    free(b->bag_ids);
    free(b->bag_cap);
    cr_free(b->dense);
    cr_free(b->label);
    cr_free(b->mask);
    cr_free(b->weight);
    cr_free(b->extra);
    cr_free(b->group);
    cr_free(b->user);
    cr_free(b->rows);
    memset(b, 0, sizeof *b);
}

cr_status cr_batch_init(cr_batch *b, const cr_dataset *ds, int max_B, cr_error *e) {
    memset(b, 0, sizeof *b);
    if (max_B < 1) return cr_err(e, CR_ERR_ARG, "cr_batch_init: max_B must be positive, got %d", max_B);
    size_t B = (size_t)max_B;
    b->max_B = max_B;
    b->n_cat = ds->n_cat;
    b->n_multi = ds->n_multi;
    b->n_dense = ds->n_dense;
    b->n_tasks = ds->n_tasks;
    b->n_extra = ds->n_extra;
    /* Kernel inputs are 64-byte aligned (cr_alloc); arrays with no columns stay NULL. */
    if (b->n_cat && !(b->cat = cr_alloc_e(B * (size_t)b->n_cat * sizeof *b->cat, e, "batch ids")))
        goto nomem;
    if (b->n_dense &&
        !(b->dense = cr_alloc_e(B * (size_t)b->n_dense * sizeof *b->dense, e, "batch dense")))
        goto nomem;
    if (!(b->label = cr_alloc_e(B * (size_t)b->n_tasks * sizeof *b->label, e, "batch labels")) ||
        !(b->mask = cr_alloc_e(B * (size_t)b->n_tasks * sizeof *b->mask, e, "batch masks")) ||
        !(b->group = cr_alloc_e(B * sizeof *b->group, e, "batch groups")) ||
        !(b->user = cr_alloc_e(B * sizeof *b->user, e, "batch users")) ||
        !(b->rows = cr_alloc_e(B * sizeof *b->rows, e, "batch rows")))
        goto nomem;
    if (ds->weight && !(b->weight = cr_alloc_e(B * sizeof *b->weight, e, "batch weights")))
        goto nomem;
    if (b->n_extra &&
        !(b->extra = cr_alloc_e(B * (size_t)b->n_extra * sizeof *b->extra, e, "batch extras")))
        goto nomem;
    if (b->n_multi) {
        b->bag_off = calloc((size_t)b->n_multi, sizeof *b->bag_off);
        b->bag_ids = calloc((size_t)b->n_multi, sizeof *b->bag_ids);
        b->bag_cap = calloc((size_t)b->n_multi, sizeof *b->bag_cap);
        if (!b->bag_off || !b->bag_ids || !b->bag_cap) {
            cr_err(e, CR_ERR_NOMEM, "out of memory for batch bags");
            goto nomem;
        }
        for (int m = 0; m < b->n_multi; m++) {
            if (!(b->bag_off[m] = cr_alloc_e((B + 1) * sizeof *b->bag_off[m], e, "batch bags")))
                goto nomem;
            /* Start at twice the average bag times max_B; gather grows it if a
             * batch of long bags needs more. */
            int64_t total = ds->n ? ds->bag_off[m][ds->n] : 0;
            size_t want = 2 * B * (size_t)(total / (ds->n ? ds->n : 1) + 1);
            if (cr_grow((void **)&b->bag_ids[m], &b->bag_cap[m], want, sizeof *b->bag_ids[m], e))
                goto nomem;
        }
    }
    return CR_OK;
nomem:
    cr_batch_free(b);
    return e ? e->status : CR_ERR_NOMEM;
}

cr_status cr_batch_gather(cr_batch *b, const cr_dataset *ds, const uint32_t *rows, int B,
                          cr_error *e) {
    if (B < 0 || B > b->max_B)
        return cr_err(e, CR_ERR_ARG, "cr_batch_gather: B = %d but the batch holds at most %d",
                      B, b->max_B);
    if (b->n_cat != ds->n_cat || b->n_multi != ds->n_multi || b->n_dense != ds->n_dense ||
        b->n_tasks != ds->n_tasks || b->n_extra != ds->n_extra || (!b->weight && ds->weight))
        return cr_err(e, CR_ERR_MISMATCH, "cr_batch_gather: the batch was made for another "
                      "dataset layout");
    for (int i = 0; i < B; i++)
        if ((int64_t)rows[i] >= ds->n)
            return cr_err(e, CR_ERR_ARG, "cr_batch_gather: row %u is beyond the dataset's "
                          "%lld rows", rows[i], (long long)ds->n);
    size_t n = (size_t)ds->n, nc = (size_t)b->n_cat, nd = (size_t)b->n_dense;
    for (int i = 0; i < B; i++) {
        size_t r = rows[i];
        b->rows[i] = rows[i];
        if (nc) memcpy(b->cat + (size_t)i * nc, ds->cat + r * nc, nc * sizeof *b->cat);
        if (nd) memcpy(b->dense + (size_t)i * nd, ds->dense + r * nd, nd * sizeof *b->dense);
        b->group[i] = ds->group[r];
        b->user[i] = ds->user[r];
        if (b->weight) b->weight[i] = ds->weight ? ds->weight[r] : 1.0f;
    }
    for (int t = 0; t < b->n_tasks; t++)
        for (int i = 0; i < B; i++) {
            b->label[(size_t)t * (size_t)B + (size_t)i] = ds->label[(size_t)t * n + rows[i]];
            b->mask[(size_t)t * (size_t)B + (size_t)i] = ds->mask[(size_t)t * n + rows[i]];
        }
    for (int k = 0; k < b->n_extra; k++)
        for (int i = 0; i < B; i++)
            b->extra[(size_t)k * (size_t)B + (size_t)i] = ds->extra[(size_t)k * n + rows[i]];
    for (int m = 0; m < b->n_multi; m++) {
        const int64_t *off = ds->bag_off[m];
        size_t need = 0;
        for (int i = 0; i < B; i++) need += (size_t)(off[rows[i] + 1] - off[rows[i]]);
        CR_TRY(cr_grow((void **)&b->bag_ids[m], &b->bag_cap[m], need + 1, sizeof *b->bag_ids[m], e));
        int64_t at = 0;
        b->bag_off[m][0] = 0;
        for (int i = 0; i < B; i++) {
            int64_t len = off[rows[i] + 1] - off[rows[i]];
            if (len) /* an all-empty bag column has no id array at all */
                memcpy(b->bag_ids[m] + at, ds->bag_ids[m] + off[rows[i]],
                       (size_t)len * sizeof(int32_t));
            at += len;
            b->bag_off[m][i + 1] = at;
        }
    }
    b->B = B;
    return CR_OK;
}
