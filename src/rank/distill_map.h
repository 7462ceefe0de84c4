/*
 * distill_map.h - the map file that says how a source-domain teacher reads
 * target-domain data: where each teacher input feature's value comes from
 * (a target column, a constant, or the teacher's own default) and which
 * teacher heads become which soft-label columns. Parsing and validation
 * only; the labelling itself is label.h. See docs/distillation.md.
 *
 *     features:
 *       - {feature: user, column: user_id}       # through the teacher's vocabulary
 *       - {feature: device, constant: "mobile"}
 *       - {feature: watch_history, default: true} # empty: OOV row 0 / numeric default
 *     teacher_tasks:
 *       - {name: teacher_click, head: click, form: probability}
 */
#ifndef CR_RANK_DISTILL_MAP_H
#define CR_RANK_DISTILL_MAP_H

#include "../data/data.h"
#include "ranker.h"

typedef enum { CR_MAP_COLUMN = 0, CR_MAP_CONSTANT = 1, CR_MAP_DEFAULT = 2 } cr_map_source;
/* probability: sigmoid of a binary head; logit: its raw output; value: a
 * regression head's output. */
typedef enum { CR_FORM_PROBABILITY = 0, CR_FORM_LOGIT = 1, CR_FORM_VALUE = 2 } cr_map_form;

extern const char *const cr_map_source_names[]; /* column, constant, default */
extern const char *const cr_map_form_names[];   /* probability, logit, value */

typedef struct cr_map_feature {
    char          feature[64];   /* teacher feature name */
    cr_map_source source;
    char          value[256];    /* the target column, or the constant's text */
    int           line, col;     /* position of the feature name in the map file */
    int           vline, vcol;   /* position of the column / constant */
    /* filled by cr_distill_map_bind */
    int           teacher_feature; /* index in the teacher's schema */
    int           csv_col;         /* column of the target data (CR_MAP_COLUMN), else -1 */
} cr_map_feature;

typedef struct cr_map_task {
    char        name[64];        /* output column */
    char        head[64];        /* teacher head */
    cr_map_form form;
    int         form_given;      /* 0: the head's natural form (probability or value) */
    int         line, col, hline, hcol;
    int         teacher_head;    /* filled by bind */
} cr_map_task;

typedef struct cr_distill_map {
    char            path[1024];
    int             line, col;   /* of the `features` list, for "not mapped" errors */
    int             n_features;
    cr_map_feature *features;
    int             n_tasks;
    cr_map_task    *tasks;
} cr_distill_map;

/* Parse a map file (keys and types checked; errors name file:line:col). */
cr_status cr_distill_map_load(cr_distill_map *m, const char *path, cr_error *e);
/* Resolve every entry against the teacher and the target data's header
 * (data may be NULL to skip the column checks): each teacher feature
 * covered exactly once, every named feature and head present in the
 * teacher, every column present in the data, forms that fit the heads,
 * output names that collide with nothing. Errors name the map's
 * file:line:col and the offending name. */
cr_status cr_distill_map_bind(cr_distill_map *m, const cr_schema *teacher,
                              const cr_model_cfg *teacher_cfg, const char *teacher_path,
                              const cr_csv *data, cr_error *e);
void      cr_distill_map_free(cr_distill_map *m);

#endif /* CR_RANK_DISTILL_MAP_H */
