/*
 * label.h - zero-shot labelling: a frozen source-domain teacher scores
 * target-domain rows through a map file, and its predictions are written
 * beside the input columns as soft-label columns a student then learns
 * (distill_cfg.h). Also reports how much of the teacher's input the target
 * could fill (coverage). See docs/distillation.md.
 */
#ifndef CR_RANK_LABEL_H
#define CR_RANK_LABEL_H

#include "distill_map.h"
#include "../core/dist.h"

typedef struct cr_label_opts {
    const char *teacher;   /* teacher checkpoint (.safetensors) */
    const char *map;       /* map YAML */
    const char *data;      /* target CSV/TSV; streamed, never held whole */
    const char *out;       /* output CSV/TSV: the input columns, then one per teacher task */
    const char *coverage;  /* optional coverage JSON; NULL = none */
    char        sep;       /* input separator; 0 = by extension (the output: by its own) */
    int         batch;     /* rows per forward pass; 0 = 1024 */
    FILE       *progress;  /* a progress line, redrawn only on a terminal; NULL = none */
    const cr_dist *dist;   /* each rank labels its byte range of data; rank 0 joins the parts
                            * into out (the same bytes as one process) and writes coverage */
    cr_ctx     *ctx;       /* progress (stage "label", unit "bytes") and cancel; NULL = none */
    const char *const *force_default; /* map features read as the teacher's default instead */
    int         n_force_default;      /* (a sweep's missing-feature knob); each must be mapped */
} cr_label_opts;

/* Coverage of one teacher feature over the labelled rows. */
typedef struct cr_label_feature {
    char          feature[64];
    cr_feat_kind  kind;
    cr_map_source source;
    char          from[64];    /* the column or the constant */
    int           vocab;       /* 1: the teacher has a vocabulary, so OOV is measurable */
    int64_t       empty;       /* rows whose field was empty (the teacher's default) */
    int64_t       values;      /* non-empty values (tokens for multi features) */
    int64_t       oov;         /* of those, values the teacher's vocabulary never saw */
} cr_label_feature;

typedef struct cr_label_report {
    int64_t rows;
    int     n_features, n_defaulted, n_constant, n_column;
    double  defaulted_share;   /* n_defaulted / n_features: the count-based share */
    cr_label_feature *features; /* (n_features) in the teacher's feature order */
    int     n_tasks;
    char    task_column[CR_MODEL_MAX_HEADS][64];
    char    task_head[CR_MODEL_MAX_HEADS][64];
    cr_map_form task_form[CR_MODEL_MAX_HEADS];
    double  seconds;
} cr_label_report;

/* Label o->data with o->teacher through o->map into o->out (atomic; on any
 * error no output file appears). r (may be NULL) receives the coverage;
 * free it with cr_label_report_free. */
cr_status cr_distill_label(const cr_label_opts *o, cr_label_report *r, cr_error *e);
/* The report as JSON (free()). */
cr_status cr_label_report_json(const cr_label_report *r, char **json, cr_error *e);
void      cr_label_report_free(cr_label_report *r);

#endif /* CR_RANK_LABEL_H */
