/*
 * ilm_eval.h - how well an Item-Language Model (phase 2's encoder +
 * adapter in front of the frozen LM) does: next-item HR@5/10 and NDCG@5/10
 * on the time-ordered leave-one-out split of mf.h, ranking a fixed list of
 * candidates per user by the LM's likelihood of each candidate's title
 * given the prompt with {user} and {history}; the description perplexity
 * of held-out items; attribute-question accuracy (the genre picked by
 * likelihood among all genres). BPR and popularity are scored on the same
 * candidates for reference. Never prints.
 */
#ifndef CR_ILM_EVAL_H
#define CR_ILM_EVAL_H

#include "phase2.h"

/* cr_ilm_eval_opts, _result and cr_ilm_eval_opts_default are public (crossrec.h). */

/* Fixed candidate lists: n users, each with per = 1 + negatives items,
 * item[u * per + 0] the held-out one, the rest items the user never rated
 * (with a title), drawn without replacement. Only users whose held-out
 * item has a title are eligible; a seeded sample of `users` of them is
 * kept, in ascending id order. */
typedef struct cr_ilm_cands {
    int32_t  n, per;
    int32_t *user;   /* (n) */
    int32_t *item;   /* (n, per) */
    int64_t *pos;    /* (n) position of the held-out interaction in d->x */
} cr_ilm_cands;

cr_status cr_ilm_cands_make(cr_ilm_cands *c, const cr_p2_data *d, int users, int negatives,
                            int use_test, uint64_t seed, cr_error *e);
void      cr_ilm_cands_free(cr_ilm_cands *c);

/* HR@k / NDCG@k from scores (n, per) whose column 0 is the held-out item;
 * rank = how many others score >= it (ties count against). */
void      cr_ilm_rank_metrics(const double *score, int64_t n, int per, cr_next_item_metrics *out);

/* Rank the candidates by the mean log-probability per token of
 * " <title>." + EOS after the next-item prompt (length-normalised so
 * long titles are not penalised): score (c->n, c->per). */
cr_status cr_ilm_score_next(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                            const cr_p2_data *d, const cr_ilm_cands *c, int hist, int max_seq,
                            int batch, double *score, cr_error *e);

cr_status cr_ilm_evaluate(cr_p2_model *m, const cr_decoder *lm, const cr_p2_tok *tok,
                          const cr_p2_data *d, const cr_ilm_eval_opts *o, cr_ilm_eval_result *r,
                          cr_error *e);

/* Load a phase-2 directory (adapter, encoder, and the LM, tokenizer, MF and
 * data it names) and evaluate it. */
cr_status cr_ilm_eval_dir(const char *dir, const cr_ilm_eval_opts *o, cr_ilm_eval_result *r,
                          cr_error *e);

#endif /* CR_ILM_EVAL_H */
