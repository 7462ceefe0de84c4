/*
 * fit.h - training a ranker from a config: data loading, the loop with
 * early stopping, checkpoints with exact resume, and the final metrics.
 */
#ifndef CR_RANK_FIT_H
#define CR_RANK_FIT_H

#include "checkpoint.h"
#include "config.h"
#include "evaluate.h"

typedef struct cr_fit_opts {
    const char *out_dir;  /* model.safetensors, metrics.json, config.yaml, last.safetensors */
    int         resume;   /* continue from out_dir/last.safetensors if present; a run that
                             finished is left alone (nothing trained, its metrics returned) */
    FILE       *log;      /* progress and evaluation lines; NULL = silent */
    int64_t     stop_after_steps; /* testing knob: stop (as if killed) after this many steps; 0 = off */
    cr_ctx     *ctx;      /* progress and cancel; NULL = none */
    const cr_dist *dist;  /* data-parallel over this job's ranks (docs/distributed.md); NULL = alone */
    int        *finished; /* if not NULL, set to 1 when resume found a finished run */
    int         no_test;  /* 1: metrics.json scores no test rows (a run chosen on validation) */
} cr_fit_opts;

/* Train per cfg (whose schema gets fitted on the training split) and write
 * out_dir/model.safetensors and out_dir/metrics.json. In a job of several
 * ranks every rank calls this with the same cfg; rank 0 writes the files
 * (and *metrics), the others train their share of each batch. *metrics (if not
 * NULL) receives the metrics as a JSON string (free()). */
cr_status cr_rank_fit(cr_rank_config *cfg, const cr_fit_opts *o, char **metrics, cr_error *e);

#endif /* CR_RANK_FIT_H */
