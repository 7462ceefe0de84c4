/*
 * experiment_int.h - what the study runner's files share: the parsed study,
 * the run context and one student's results (test predictions and metrics
 * per fraction, variant and seed). Internal to experiment*.c.
 */
#ifndef CR_RANK_EXPERIMENT_INT_H
#define CR_RANK_EXPERIMENT_INT_H

#include "../core/yaml.h"
#include "config.h"
#include "experiment.h"
#include "metrics.h"

#define CR_STUDY_MAX_STUDENTS 8
#define CR_STUDY_MAX_TECH     5
#define CR_STUDY_MAX_SEEDS    32
#define CR_STUDY_MAX_FRACS    8
#define CR_STUDY_MAX_TUNE     8   /* values of one tuned setting */

enum { CR_STUDY_NONE = 0, CR_STUDY_AUX, CR_STUDY_SOFT, CR_STUDY_TEMPERED, CR_STUDY_NEW };
extern const char *const cr_study_tech_names[]; /* none, aux_head, soft_label, aux_head_tempered, new_head */

/* The metrics the study reports, in results.json's names. */
enum { M_AUC, M_GAUC, M_LOGLOSS, M_CALIB, M_NDCG, M_R2, M_RMSE, N_METRIC };

typedef struct study_task {  /* a student task and the teacher column that teaches it */
    char  task[64], column[64], logit_column[64];
    float weight, lambda, temperature;
} study_task;

typedef struct study_student {
    char name[64];
    char config[1024];
    int  n_tasks;
    study_task tasks[CR_DISTILL_MAX];
    int  n_new;
    cr_distill_new_head new_heads[CR_DISTILL_MAX];
    int  n_tech;
    int  tech[CR_STUDY_MAX_TECH]; /* tech[0] is the control */
} study_student;

typedef struct study {
    char     path[1024];
    char     teacher_config[1024], teacher_model[1024], map[1024], target[1024];
    int      n_students;
    study_student students[CR_STUDY_MAX_STUDENTS];
    int      n_seeds;
    uint64_t seeds[CR_STUDY_MAX_SEEDS];
    int      n_fracs;
    double   fractions[CR_STUDY_MAX_FRACS];
    int      epochs;     /* 0 = each config's own */
    int64_t  max_steps;  /* 0 = each config's own */
    int      threads;    /* -1 = each config's own */
    char     slice[64];  /* "" = no slice */
    int      min_positives; /* fewer (binary: positives; regression: rows) = "too few" */
    uint64_t keep_seed;
    int      resamples;
    double   level;
    uint64_t boot_seed;
    /* convergence: one stopping rule for the control and every variant */
    int      conv_mode;       /* a cr_es_mode, or -1: each config's own early_stopping */
    int      conv_patience, conv_max_epochs;
    /* tune: the control's lr and width, chosen on validation */
    int      tune;            /* 1 when the study has a tune section */
    int      n_tune_lr, n_tune_width, n_tune_seeds;
    double   tune_lr[CR_STUDY_MAX_TUNE], tune_width[CR_STUDY_MAX_TUNE];
    uint64_t tune_seeds[CR_STUDY_MAX_SEEDS];
    /* control_check: a regression task's no-model predictor, a linear fit
     * on one numeric feature of the student */
    int      n_cc;
    char     cc_task[CR_MAX_TASKS][64], cc_feature[CR_MAX_TASKS][64];
} study;

typedef struct study_ctx {
    const cr_experiment_opts *o;
    study st;
    char teacher_path[1200];
    int  teacher_trained;
    char labelled[1200];
    char frac_path[CR_STUDY_MAX_FRACS][1200];
    int64_t train_rows[CR_STUDY_MAX_FRACS];
    uint64_t frac_key[CR_STUDY_MAX_FRACS]; /* hash of each fraction file's bytes */
    int64_t split_rows[3];
    void *coverage;      /* cJSON of the labelling coverage report, or NULL */
    int  run_no, n_runs;
    int  reuse_all;      /* collecting runs the job's ranks just trained: reuse them all */
    int  trained;        /* runs trained (not reused) so far, for the eta */
    double train_secs;   /* their seconds */
    double t_start;      /* when the study started (progress) */
    /* seconds of each stage for results.json: teacher, labelling, runs,
     * comparison, tune (the control's search) */
    double stage[5];
    /* each student's lr and width scale for every run (0: the config's), set
     * by the tune stage; tune_json[si] its record for results.json (cJSON) */
    double lr[CR_STUDY_MAX_STUDENTS], width[CR_STUDY_MAX_STUDENTS];
    void  *tune_json[CR_STUDY_MAX_STUDENTS];
} study_ctx;

/* One student's test data and every run's predictions and metrics. */
typedef struct student_res {
    int      F, V, S, K;
    int64_t  n;                  /* test rows */
    char     task[CR_MAX_TASKS][64];
    int      bin[CR_MAX_TASKS], rk[CR_MAX_TASKS];
    int      teacher[CR_MAX_TASKS]; /* study task index teaching task k, or -1 */
    float   *label, *mask;       /* (K, n) */
    int64_t *user, *group;       /* (n) */
    uint8_t *slice;              /* (n) or NULL when the data has no such slice */
    float   *tpred;              /* (K, n) teacher column on test rows (where teacher[k] >= 0) */
    cr_task_metrics tm[CR_MAX_TASKS][2]; /* teacher zero-shot: overall, slice */
    int64_t  count[CR_MAX_TASKS][2]; /* positives (binary) or rows (regression) on test, slice */
    double   pop_auc[CR_MAX_TASKS]; /* the popularity baseline's test AUC (binary; NaN = none) */
    double   nomodel_r2[CR_MAX_TASKS]; /* the control_check feature's linear fit, test R2 (NaN = none) */
    char     nomodel[CR_MAX_TASKS][64];  /* that feature's name, "" = none */
    float   *pred;               /* (F, V, S, K, n) served predictions */
    double  *val;                /* (F, V, S, K, 2, N_METRIC) */
    double  *agree;              /* (F, V, S, K) Pearson with the teacher column */
    double  *steps, *secs;       /* (F, V, S) */
    char   (*dir)[160];          /* (F, V, S) run directories, relative to the study's */
} student_res;

#define RUN_IDX(r, f, v, s) ((((size_t)(f) * (size_t)(r)->V + (size_t)(v)) * (size_t)(r)->S) + (size_t)(s))

void      study_log(const study_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cr_status study_load(study *st, const char *path, cr_error *e);
cr_status study_variant_config(const study_ctx *c, int si, int f, int tech, uint64_t seed,
                               cr_rank_config *cfg, cr_error *e);
/* reuse: a run is kept when its directory holds `needed` and a stamp of key */
uint64_t  study_text_key(const char *path);
int       study_stamp_ok(const study_ctx *c, const char *dir, uint64_t key, const char *needed);
cr_status study_stamp_write(const char *dir, uint64_t key, cr_error *e);
/* experiment_tune.c: the tune stage for student si (a no-op without a tune
 * section): the control trained per setting on the full fraction, picked
 * on validation; sets c->lr[si], c->width[si] and c->tune_json[si]. */
cr_status study_tune(study_ctx *c, int si, cr_error *e);
/* The student's lr and width scale (c->lr[si], c->width[si]) on its config. */
void      study_apply_setting(const study_ctx *c, int si, cr_rank_config *cfg);
/* the convergence, tune and control_check sections of the study file */
cr_status study_parse_controls(const cr_yaml_node *root, study *st, cr_error *e);
/* Every control_check task is a task of some student (before any run). */
cr_status study_check_controls(const study *st, cr_error *e);
/* experiment_stats.c */
cr_status study_reference(study_ctx *c, int si, student_res *r, cr_error *e);
cr_status study_score_run(study_ctx *c, int si, int f, int v, int sd, const cr_rank_config *cfg,
                          const char *dir, student_res *r, cr_error *e);
/* results.json as text: every metric, test and interval. t0: when the study
 * began (the "seconds" of the whole study, comparison included); the
 * comparison's own seconds go into c->stage[3] and "stage_seconds". Reports
 * its progress on c->o->progress. */
cr_status study_results_json(study_ctx *c, student_res *res, double t0, char **out,
                             cr_error *e);
void      student_res_free(student_res *r);

#endif /* CR_RANK_EXPERIMENT_INT_H */
