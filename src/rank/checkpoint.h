/*
 * checkpoint.h - a ranker on disk: one safetensors file with every dense
 * parameter and embedding table, and in __metadata__ the format tag, the
 * schema (vocabularies included) and the model config as JSON, so the file
 * alone can encode new data and score it. A training checkpoint is the same
 * file with the training state added (tensors under "train_state."), so one
 * atomic rename commits weights and optimizer state together.
 */
#ifndef CR_RANK_CHECKPOINT_H
#define CR_RANK_CHECKPOINT_H

#include "../train/train.h"
#include "config.h"
#include "ranker.h"

#define CR_RANKER_FORMAT "crossrec.ranker"
#define CR_RANKER_FORMAT_VERSION "1"

/* extra_meta: optional NULL-terminated key/value pairs added to __metadata__. */
cr_status cr_ranker_save(const cr_ranker *m, const cr_schema *s, const char *path,
                         const char *const *extra_meta, cr_error *e);
/* Load a model and its schema; *s is filled and must be freed with
 * cr_schema_free. Errors name the file and the tensor or field. */
cr_status cr_ranker_load(cr_ranker **m, cr_schema *s, const char *path, cr_error *e);
/* For serving: the model at in_path without its never-served heads
 * (distillation heads: their parameters and their config) and without the
 * training-only soft-label blends, saved atomically to out_path. The
 * served heads, trunk, towers and tables are copied bit for bit, so served
 * scores are identical and the file equals one trained without the heads.
 * *dropped (may be NULL) receives the number of heads removed. */
cr_status cr_ranker_export(const char *in_path, const char *out_path, int *dropped, cr_error *e);
/* The rule both exports (safetensors above, ONNX in export_onnx.c) apply:
 * a new model holding only m's served heads, without soft-label blends,
 * and a bit-for-bit copy of every tensor it keeps. Free with cr_ranker_free. */
cr_status cr_ranker_served(const cr_ranker *m, const cr_schema *s, cr_ranker **out,
                           cr_error *e);
/* A config's schema must describe the same features and tasks as the
 * model's (names, kinds, columns, widths) for the model to read its data. */
cr_status cr_schema_check_same(const cr_schema *model, const cr_schema *cfg, const char *model_path,
                               cr_error *e);

/* Everything needed to continue a run exactly where it stopped. */
typedef struct cr_train_state {
    int64_t       step;          /* optimizer steps done */
    int           epoch;         /* epoch in progress (0-based) */
    int64_t       epoch_step;    /* steps done inside that epoch */
    cr_rng        epoch_rng;     /* the shuffling stream as it was when the epoch began */
    cr_early_stop es;
    cr_adam       adam;          /* borrowed pointers when saving */
    int           n_sparse;
    cr_sparse_opt *sparse;       /* (n_sparse) */
    int64_t       examples;      /* examples seen */
} cr_train_state;

#define CR_TRAIN_STATE_PREFIX "train_state."
#define CR_TRAIN_STATE_FORMAT "crossrec.train_state/2"

/* The model and its training state in one file, written atomically;
 * finished marks the checkpoint of a run that ended (resuming it trains
 * nothing). The file also loads as a model (cr_ranker_load skips the state). */
cr_status cr_rank_checkpoint_save(const cr_ranker *m, const cr_schema *s, const cr_train_state *t,
                                  int finished, const char *path, cr_error *e);
/* Restores the training state of a checkpoint into t, whose optimizers must
 * already be initialised with the right sizes (it checks them); *finished
 * (may be NULL) tells whether the run had ended. */
cr_status cr_train_state_load(cr_train_state *t, int *finished, const char *path, cr_error *e);
/* Remove the temporary files a killed run left in its output directory
 * (NAME.tmp.PID for the files training writes). */
void      cr_checkpoint_sweep(const char *dir);

#endif /* CR_RANK_CHECKPOINT_H */
