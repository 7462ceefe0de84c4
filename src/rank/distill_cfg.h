/*
 * distill_cfg.h - the `distill:` section of a student's job: per student
 * task how a teacher's soft-label column is learnt (a never-served auxiliary
 * head, a blended served target, a tempered auxiliary head, or nothing) and
 * new never-served heads for teacher tasks without a counterpart. Turns
 * into extra heads of the model config and extra data columns; never
 * touches what the student serves. See docs/distillation.md.
 */
#ifndef CR_RANK_DISTILL_CFG_H
#define CR_RANK_DISTILL_CFG_H

#include "../core/yaml.h"
#include "../data/config.h"
#include "ranker.h"

#define CR_DISTILL_MAX 16

typedef enum {
    CR_DISTILL_NONE = 0,        /* the control: nothing from the teacher */
    CR_DISTILL_AUX_HEAD = 1,    /* a second, never-served head on the task's tower */
    CR_DISTILL_SOFT_LABEL = 2,  /* the served head's target blends label and teacher */
    CR_DISTILL_AUX_TEMPERED = 3 /* aux head with Hinton's temperature on logits */
} cr_distill_technique;

typedef enum {
    CR_DISTILL_MASK_AUTO = 0, /* the task's mask if it has one, else every row */
    CR_DISTILL_MASK_TASK = 1, /* the task's mask */
    CR_DISTILL_MASK_NONE = 2  /* every row: the teacher has a prediction everywhere */
} cr_distill_mask;

typedef struct cr_distill_task {
    char  task[64];            /* the student task */
    cr_distill_technique technique;
    char  column[64];          /* the teacher's column (probability, logit or value) */
    char  head[64];            /* aux heads: name (default <task>_distill / <task>_tempered) */
    float weight;              /* aux heads: loss weight (default 0.5) */
    float lambda;              /* soft_label: teacher share of the target (default 0.5) */
    float temperature;         /* aux_head_tempered: T (default 2) */
    cr_distill_mask mask;      /* aux heads */
} cr_distill_task;

typedef struct cr_distill_new_head {
    char  name[64];
    char  column[64];
    cr_head_kind kind;         /* binary: BCE on a probability; regression: MSE */
    float weight;              /* default 0.5 */
    char  tower[64];           /* the student task whose tower it reads */
    char  mask[64];            /* "" = every row; or a student task's mask */
} cr_distill_new_head;

typedef struct cr_distill_cfg {
    int n_tasks;
    cr_distill_task tasks[CR_DISTILL_MAX];
    int n_new;
    cr_distill_new_head new_heads[CR_DISTILL_MAX];
} cr_distill_cfg;

extern const char *const cr_distill_technique_names[]; /* none, aux_head, soft_label, aux_head_tempered */

/* Parse `distill:` (absent = nothing to distil) against the student's
 * tasks. Errors name file:line:col and the field. */
cr_status cr_distill_cfg_parse(const cr_yaml_node *root, const cr_schema *s, cr_distill_cfg *d,
                               cr_error *e);
/* Add the configured heads to m (after its served heads) and every column
 * not yet in data->extra to the end of data->extra. For a config built in
 * C as well as one parsed from YAML. */
cr_status cr_distill_apply(const cr_distill_cfg *d, const cr_schema *s, cr_data_cfg *data,
                           cr_model_cfg *m, cr_error *e);
/* Every column a binary head reads as a probability (aux heads, soft-label
 * blends of binary tasks, binary new heads) must lie in [0, 1]; a logit
 * column given by mistake is an error naming the column and the row. */
cr_status cr_distill_check_data(const cr_model_cfg *m, const cr_dataset *ds, cr_error *e);

#endif /* CR_RANK_DISTILL_CFG_H */
