/*
 * ilm_study.h - the Item-Language Model study: CF embeddings, then for
 * each seed and variant phase 1 (or none), phase 2 with the frozen LM and
 * the evaluation of ilm_eval.h; means and 95% intervals over seeds,
 * paired t-tests, the paper's findings checked one by one, results.json
 * and a self-contained report.html. Variants: the MLP adapter, ILM-rand,
 * ILM (all five phase-1 losses), IT only (itc,itm,itg), IT + item-item,
 * IT + user-item. Progress goes through a callback; nothing prints.
 */
#ifndef CR_ILM_STUDY_H
#define CR_ILM_STUDY_H

#include "ilm_eval.h"
#include "phase1.h"

enum { CR_ILM_V_MLP = 0, CR_ILM_V_RAND, CR_ILM_V_ILM, CR_ILM_V_IT, CR_ILM_V_IT_II,
       CR_ILM_V_IT_UI, CR_ILM_NVAR };
const char *cr_ilm_variant_name(int v); /* "mlp", "ilm-rand", "ilm", "it", "it+ii", "it+ui" */
int         cr_ilm_variant_parse(const char *s); /* -1 if unknown */

#define CR_ILM_MAX_SEEDS 16
#define CR_ILM_PATH 1024

typedef struct cr_ilm_study_cfg {
    char             data[CR_ILM_PATH];      /* ratings.csv, movies.csv, movies-extra.tsv */
    char             lm[CR_ILM_PATH];        /* the frozen decoder */
    char             tokenizer[CR_ILM_PATH]; /* its tokenizer */
    char             lm_text[CR_ILM_PATH];   /* held-out text for the perplexity check ("" = none) */
    cr_mf_cfg        mf;
    cr_phase1_opts   p1;                     /* paths filled in per run */
    cr_phase2_opts   p2;
    cr_ilm_eval_opts ev;
    int              n_seeds;
    uint64_t         seeds[CR_ILM_MAX_SEEDS];
    int              n_var;
    int              variants[CR_ILM_NVAR];
} cr_ilm_study_cfg;

/* Defaults, then the YAML (docs/ilm.md lists every key); relative paths
 * are relative to the file. Unknown keys are errors. */
void      cr_ilm_study_cfg_default(cr_ilm_study_cfg *c);
cr_status cr_ilm_study_load(cr_ilm_study_cfg *c, const char *path, cr_error *e);
cr_status cr_ilm_study_parse(cr_ilm_study_cfg *c, const char *text, const char *name,
                             const char *base_dir, cr_error *e);

typedef struct cr_ilm_run_result {
    int                variant;
    uint64_t           seed;
    cr_phase1_result   p1;   /* zero for the MLP */
    cr_phase2_result   p2;
    cr_ilm_eval_result ev;
} cr_ilm_run_result;

typedef struct cr_ilm_study_result {
    int                n;     /* runs: n_seeds * n_var, seed-major */
    cr_ilm_run_result *runs;
    double             mf_loss;
    double             seconds;
} cr_ilm_study_result;

/* Run everything into out_dir: mf.safetensors, seed<S>/<variant>/phase1,
 * .../phase2, then results.json and report.html (atomic). log(ctx, line)
 * receives progress lines (may be NULL). */
cr_status cr_ilm_study_run(const cr_ilm_study_cfg *c, const char *out_dir,
                           void (*log)(void *ctx, const char *line), void *ctx,
                           cr_ilm_study_result *r, cr_error *e);
void      cr_ilm_study_result_free(cr_ilm_study_result *r);

/* The table of means and 95% intervals as text (cr_free). */
cr_status cr_ilm_study_table(const cr_ilm_study_cfg *c, const cr_ilm_study_result *r,
                             char **text, cr_error *e);
/* results.json and report.html into out_dir (ilm_report.c). */
cr_status cr_ilm_study_write(const cr_ilm_study_cfg *c, const cr_ilm_study_result *r,
                             const char *out_dir, cr_error *e);

#endif /* CR_ILM_STUDY_H */
