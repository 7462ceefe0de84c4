/*
 * api_ilm_train.c - the public entry points that build an item-language
 * model (crossrec.h): BPR vectors with their next-item quality, phase 1
 * (the item encoder alone), phase 2 (encoder and adapter before a frozen
 * LM), the evaluation of a phase-2 directory and the whole study. Each
 * checks its arguments, brackets the work with the context and calls into
 * src/ilm; nothing here prints except through the context's log.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../ilm/ilm_eval.h"
#include "../ilm/ilm_study.h"
#include "../ilm/mf.h"
#include "../ilm/phase1.h"
#include "../ilm/phase2.h"

#include <string.h>

cr_status cr_ilm_mf(cr_ctx *ctx, const char *ratings, const char *out, const cr_mf_cfg *c,
                    int negatives, cr_ilm_mf_result *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!ratings || !out || !c || !r)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_mf: ratings, out, c and r are required");
    if (negatives < 1 || negatives > 100000)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_mf: negatives: expected 1 to 100000, got %d", negatives);
    if (c->dim < 1 || c->dim > 4096 || c->epochs < 0 || !(c->lr > 0) || !(c->reg >= 0))
        return cr_err(e, CR_ERR_ARG, "cr_mf_cfg: expected dim 1..4096, epochs >= 0, lr > 0 and "
                      "reg >= 0");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_ilm_mf", e));
    cr_interactions x;
    cr_loo_split sp;
    cr_mf m;
    cr_status s = cr_mf_fit_file(ratings, out, c, cr_ctx_log(k.ctx), &x, &sp, &m, &r->loss, e);
    if (!s) {
        r->interactions = x.n;
        r->users = x.n_users;
        r->items = x.n_items;
        for (int t = 0; t < 2 && !s; t++) {
            s = cr_mf_evaluate(&m, &x, &sp, t, negatives, 7, &r->bpr[t], e);
            if (!s) s = cr_mf_evaluate(NULL, &x, &sp, t, negatives, 7, &r->pop[t], e);
        }
        cr_mf_free(&m);
        cr_loo_split_free(&sp);
        cr_interactions_free(&x);
    }
    cr_call_end(&k);
    return s;
}

cr_status cr_ilm_phase1(cr_ctx *ctx, const cr_phase1_opts *o, cr_phase1_result *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!o || !r || !o->mf_path || !o->data_dir || !o->out_dir)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_phase1: o, r, o->mf_path, o->data_dir and o->out_dir "
                      "are required");
    if (o->steps < 0 || o->batch < 2 || o->log_every < 1 || o->ckpt_every < 0 ||
        !(o->held_frac > 0 && o->held_frac < 0.9))
        return cr_err(e, CR_ERR_ARG, "cr_phase1_opts: expected steps >= 0, batch >= 2, log_every "
                      ">= 1, ckpt_every >= 0 and held_frac in (0, 0.9)");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_ilm_phase1", e));
    cr_status s = cr_phase1_run(o, r, e);
    cr_call_end(&k);
    return s;
}

cr_status cr_ilm_phase2(cr_ctx *ctx, const cr_phase2_opts *o, cr_phase2_result *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!o || !r || !o->lm || !o->tokenizer || !o->mf_path || !o->data_dir || !o->out_dir)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_phase2: o, r, o->lm, o->tokenizer, o->mf_path, "
                      "o->data_dir and o->out_dir are required");
    if (o->steps < 0 || o->batch < 1 || o->hist < 1 || o->max_seq < 8 || o->log_every < 1)
        return cr_err(e, CR_ERR_ARG, "cr_phase2_opts: expected steps >= 0, batch >= 1, hist >= 1, "
                      "max_seq >= 8 and log_every >= 1");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_ilm_phase2", e));
    cr_status s = cr_phase2_run(o, r, e);
    cr_call_end(&k);
    return s;
}

cr_status cr_ilm_eval(cr_ctx *ctx, const char *dir, const cr_ilm_eval_opts *o,
                      cr_ilm_eval_result *r, cr_error *e) {
    if (r) memset(r, 0, sizeof *r);
    if (!dir || !o || !r) return cr_err(e, CR_ERR_ARG, "cr_ilm_eval: dir, o and r are required");
    if (o->users < 0 || o->negatives < 1 || o->hist < 0 || o->items < 0 || o->batch < 1)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_eval_opts: expected users >= 0, negatives >= 1, "
                      "hist >= 0, items >= 0 and batch >= 1");
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_ilm_eval", e));
    cr_p2_bundle b;
    cr_status s = cr_p2_bundle_open(&b, dir, e);
    if (!s) {
        cr_ilm_eval_opts oo = *o;
        if (!oo.hist) oo.hist = b.hist;
        oo.max_seq = b.max_seq;
        s = cr_ilm_evaluate(&b.m, &b.lm, &b.tok, &b.d, &oo, r, e);
        cr_p2_bundle_free(&b);
    }
    cr_call_end(&k);
    return s;
}

/* The study's log lines, one per finished step, to the context's sink. */
static void study_line(void *user, const char *line) {
    FILE *f = user;
    if (f) {
        fprintf(f, "%s\n", line);
        fflush(f);
    }
}

cr_status cr_ilm_study(cr_ctx *ctx, const char *config, const char *out_dir, char **table,
                       double *seconds, cr_error *e) {
    if (table) *table = NULL;
    if (seconds) *seconds = 0;
    if (!config || !out_dir)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_study: config and out_dir are required");
    cr_ilm_study_cfg c;
    CR_TRY(cr_ilm_study_load(&c, config, e));
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_ilm_study", e));
    cr_ilm_study_result r;
    memset(&r, 0, sizeof r);
    cr_status s = cr_ilm_study_run(&c, out_dir, study_line, cr_ctx_log(k.ctx), &r, e);
    if (!s && table) s = cr_ilm_study_table(&c, &r, table, e);
    if (!s && seconds) *seconds = r.seconds;
    cr_ilm_study_result_free(&r);
    cr_call_end(&k);
    return s;
}
