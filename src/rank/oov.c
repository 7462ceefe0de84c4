/*
 * oov.c - the out-of-vocabulary row of each embedding table. Row 0 is where
 * every value unseen in training lands (and empty fields, and hashed
 * features' empty values). When no training row ever reads it (min_count 1,
 * no id_dropout: every training value has its own row) its random initial
 * value would score a cold item at random, above or below every known one.
 * Such a row is set to the mean of the table's trained rows: an unseen item
 * then looks like the average item. A row 0 that training does reach (rare
 * values under min_count, id_dropout) is learnt and left alone. Never
 * touches a row that training updates, so training and resume are unchanged.
 */
#include "oov.h"

#include <stdlib.h>
#include <string.h>

cr_status cr_rank_oov_fill(cr_ranker *m, const cr_schema *s, const cr_dataset *ds,
                           const uint32_t *rows, int64_t n, cr_error *e) {
    uint8_t *reached = calloc((size_t)m->n_tables + 1, 1);
    double *mean = NULL;
    if (!reached) return cr_err(e, CR_ERR_NOMEM, "out of memory for the OOV rows");
    for (int q = 0; q < ds->n_cat; q++) {
        int t = m->cat_table[q];
        if (s->features[s->cat_feat[q]].id_dropout > 0) reached[t] = 1;
        for (int64_t i = 0; i < n && !reached[t]; i++)
            if (ds->cat[(size_t)rows[i] * (size_t)ds->n_cat + (size_t)q] == 0) reached[t] = 1;
    }
    for (int q = 0; q < ds->n_multi; q++) {
        int t = m->multi_table[q];
        if (s->features[s->multi_feat[q]].id_dropout > 0) reached[t] = 1;
        for (int64_t i = 0; i < n && !reached[t]; i++)
            for (int64_t k = ds->bag_off[q][rows[i]]; k < ds->bag_off[q][rows[i] + 1]; k++)
                if (ds->bag_ids[q][k] == 0) {
                    reached[t] = 1;
                    break;
                }
    }
    for (int t = 0; t < m->n_tables; t++) {
        int64_t R = m->table_rows[t];
        int D = m->table_dim[t];
        if (reached[t] || R < 2) continue;
        if (!mean && !(mean = malloc(65536 * sizeof(double)))) {
            free(reached);
            return cr_err(e, CR_ERR_NOMEM, "out of memory for the OOV rows");
        }
        float *w = cr_ptable_ptr(&m->tables, m->tables.data, m->table_param[t]); /* (R, D) */
        memset(mean, 0, (size_t)D * sizeof(double));
        for (int64_t r = 1; r < R; r++)
            for (int d = 0; d < D; d++) mean[d] += w[(size_t)r * (size_t)D + (size_t)d];
        for (int d = 0; d < D; d++) w[d] = (float)(mean[d] / (double)(R - 1));
    }
    free(mean);
    free(reached);
    return CR_OK;
}
