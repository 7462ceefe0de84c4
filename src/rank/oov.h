/*
 * oov.h - the out-of-vocabulary row of each embedding table, made neutral
 * when training never reaches it (oov.c).
 */
#ifndef CR_RANK_OOV_H
#define CR_RANK_OOV_H

#include "../data/data.h"
#include "ranker.h"

/* For every table whose row 0 no training row reads (no id 0 among the
 * training rows' ids or bag tokens of any feature reading it, and no
 * id_dropout on those features), set row 0 to the mean of rows 1..R-1, so
 * an unseen value scores like the average one. rows: the training split. */
cr_status cr_rank_oov_fill(cr_ranker *m, const cr_schema *s, const cr_dataset *ds,
                           const uint32_t *rows, int64_t n, cr_error *e);

#endif /* CR_RANK_OOV_H */
