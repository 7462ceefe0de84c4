/*
 * experiment.h - the distillation study runner: train (or load) a source
 * teacher, label the target data with it, train every student variant
 * (the control and each distillation technique) per seed and data
 * fraction, and compare them with intervals over seeds, paired t-tests and
 * a paired bootstrap over test requests. Writes results.json and a
 * self-contained report.html. The study file and results.json schema are
 * in docs/experiment.md.
 */
#ifndef CR_RANK_EXPERIMENT_H
#define CR_RANK_EXPERIMENT_H

#include "../core/core.h"
#include "../core/dist.h"

#include <stdio.h>

typedef struct cr_experiment_opts {
    const char *config;   /* the study YAML */
    const char *out_dir;  /* results.json, report.html, teacher/, data/, runs/ */
    FILE       *progress; /* one line per step (teacher, labelling, each run); NULL = silent */
    int         reuse;    /* 1: keep finished runs whose inputs are unchanged */
    int         threads;  /* >= 0 overrides every job's train.threads; -1 = as configured */
    const cr_dist *dist;  /* spread over this job's ranks (docs/distributed.md); NULL = alone */
    cr_ctx     *ctx;      /* progress (stage "experiment", unit "runs") and cancel; NULL = none */
    /* One cell of a sweep (sweep.c); NULL / 0 = the study's own. A cell
     * never runs the study file's sweep section. */
    const char        *target;        /* the target file instead of the study's */
    const char        *teacher_model; /* this trained teacher instead of the study's */
    const char *const *map_default;   /* map features read as the teacher's default */
    int                n_map_default;
} cr_experiment_opts;

/* Run the whole study. On success DIR/results.json and DIR/report.html
 * exist; *results (if not NULL) gets results.json's text (free()). */
cr_status cr_experiment_run(const cr_experiment_opts *o, char **results, cr_error *e);

/* A study file whose `sweep:` section asks for the map of when distillation
 * pays: one study per cell of a grid over the synthetic generator's knobs
 * (sweep.c; docs/experiment.md). cr_experiment_run runs it for such a file;
 * results.json then has format "crossrec.sweep". */
int       cr_sweep_present(const char *study_path);
cr_status cr_sweep_run(const cr_experiment_opts *o, char **results, cr_error *e);

/* The report from results.json's text (a study's or a sweep's): report.html (inline CSS, SVG bar
 * charts with CI whiskers; no script, no network), written atomically. */
cr_status cr_experiment_report_html(const char *results_json, const char *path, cr_error *e);
/* The same tables as plain text (one block per student, fraction and task). */
cr_status cr_experiment_print_table(FILE *f, const char *results_json, cr_error *e);

#endif /* CR_RANK_EXPERIMENT_H */
