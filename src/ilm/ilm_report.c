/*
 * ilm_report.c - what the Item-Language Model study leaves behind:
 * results.json (every run, means with 95% t-intervals over seeds, the
 * paper's findings checked with paired t-tests) and report.html, one
 * self-contained page with inline SVG bar charts (no script, no network).
 * Both are written atomically. The schema is in docs/ilm.md.
 */
#include "ilm_study.h"

#include "../rank/stats.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- a growing string -------------------------------------------------------------------- */
typedef struct { char *s; size_t n, cap; int oom; } cr_ilm_buf;

static void cr_ilm_put(cr_ilm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cr_ilm_put(cr_ilm_buf *b, const char *fmt, ...) {
    if (!b->s && !b->oom) {
        b->cap = 4096;
        if (!(b->s = cr_alloc(b->cap))) b->oom = 1;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = b->oom ? 0 : vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (b->oom || k < 0) return;
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t nc = b->cap * 2 + (size_t)k + 1024;
        char *p = cr_alloc(nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        memcpy(p, b->s, b->n);
        cr_free(b->s);
        b->s = p, b->cap = nc;
    }
}

static void cr_ilm_num(cr_ilm_buf *b, double v) {
    if (isfinite(v)) cr_ilm_put(b, "%.6g", v);
    else cr_ilm_put(b, "null");
}

/* ---- metrics --------------------------------------------------------------------------- */
enum { M_HR5, M_HR10, M_NDCG5, M_NDCG10, M_PPL, M_GENRE, M_P2LOSS, M_P1R10, M_N };
static const char *const cr_ilm_mname[M_N] = {"hr5", "hr10", "ndcg5", "ndcg10", "desc_ppl",
                                              "genre_acc", "phase2_loss", "phase1_recall10"};
static const char *const cr_ilm_mlabel[M_N] = {"HR@5", "HR@10", "NDCG@5", "NDCG@10",
                                               "description perplexity (lower is better)",
                                               "genre accuracy", "phase-2 final loss",
                                               "phase-1 recall@10"};

static double cr_ilm_metric(const cr_ilm_run_result *r, int m) {
    switch (m) {
    case M_HR5: return r->ev.lm.hr5;
    case M_HR10: return r->ev.lm.hr10;
    case M_NDCG5: return r->ev.lm.ndcg5;
    case M_NDCG10: return r->ev.lm.ndcg10;
    case M_PPL: return r->ev.desc_ppl;
    case M_GENRE: return r->ev.genre_acc;
    case M_P2LOSS: return r->p2.last_loss;
    default: return r->variant == CR_ILM_V_MLP ? NAN : r->p1.recall10;
    }
}

/* Mean and 95% interval of metric m over seeds: a perplexity is positive
 * and multiplicative, so its interval is taken on the log scale (and its
 * mean is the geometric one); everything else on its own scale. */
static void cr_ilm_ci(const double *x, int n, int m, cr_mean_ci *ci) {
    if (m == M_PPL) cr_mean_ci_log_of(x, n, 0.95, ci);
    else cr_mean_ci_of(x, n, 0.95, ci);
}

/* Values of metric m for variant v, in seed order. */
static int cr_ilm_values(const cr_ilm_study_result *r, int v, int m, double *x) {
    int k = 0;
    for (int i = 0; i < r->n; i++)
        if (r->runs[i].variant == v && k < CR_ILM_MAX_SEEDS) x[k++] = cr_ilm_metric(&r->runs[i], m);
    return k;
}

static int cr_ilm_has(const cr_ilm_study_cfg *c, int v) {
    for (int i = 0; i < c->n_var; i++)
        if (c->variants[i] == v) return 1;
    return 0;
}

/* The paper's claims, as pairs (better, worse). */
static const int cr_ilm_claims[4][2] = {{CR_ILM_V_ILM, CR_ILM_V_RAND}, {CR_ILM_V_RAND, CR_ILM_V_MLP},
                                        {CR_ILM_V_IT_II, CR_ILM_V_IT}, {CR_ILM_V_IT_UI, CR_ILM_V_IT}};
static const int cr_ilm_claim_metrics[4] = {M_HR10, M_NDCG10, M_PPL, M_GENRE};

/* ---- results.json ----------------------------------------------------------------------- */
static void cr_ilm_json(cr_ilm_buf *b, const cr_ilm_study_cfg *c, const cr_ilm_study_result *r) {
    const cr_ilm_eval_result *e0 = r->n ? &r->runs[0].ev : NULL;
    cr_ilm_put(b, "{\n  \"format\": \"crossrec.ilm_study\",\n  \"version\": 1,\n");
    cr_ilm_put(b, "  \"config\": {\"data\": \"%s\", \"lm\": \"%s\", \"tokenizer\": \"%s\", "
               "\"mf_dim\": %d, \"phase1_steps\": %d, \"queries\": %d, \"phase2_steps\": %d, "
               "\"phase2_batch\": %d, \"hist\": %d, \"eval_users\": %d, \"negatives\": %d, "
               "\"eval_items\": %d, \"eval_seed\": %llu, \"seeds\": [", c->data, c->lm,
               c->tokenizer, c->mf.dim, c->p1.steps, c->p1.model.nq, c->p2.steps, c->p2.batch,
               c->p2.hist, c->ev.users, c->ev.negatives, c->ev.items,
               (unsigned long long)c->ev.seed);
    for (int i = 0; i < c->n_seeds; i++)
        cr_ilm_put(b, "%s%llu", i ? ", " : "", (unsigned long long)c->seeds[i]);
    cr_ilm_put(b, "]},\n  \"ranking\": \"mean log-probability per token of ' <title>.' + EOS "
               "after the next-item prompt\",\n");
    if (e0) {
        cr_ilm_put(b, "  \"references\": {\"candidates\": %d, \"users\": %lld, \"bpr\": {\"hr10\": ",
                   e0->per, (long long)e0->lm.users);
        cr_ilm_num(b, e0->bpr.hr10), cr_ilm_put(b, ", \"ndcg10\": "), cr_ilm_num(b, e0->bpr.ndcg10);
        cr_ilm_put(b, "}, \"popularity\": {\"hr10\": "), cr_ilm_num(b, e0->pop.hr10);
        cr_ilm_put(b, ", \"ndcg10\": "), cr_ilm_num(b, e0->pop.ndcg10);
        cr_ilm_put(b, "}, \"random_hr10\": %.6g},\n", 10.0 / e0->per);
        cr_ilm_put(b, "  \"lm\": {\"hash_before\": \"%016llx\", \"hash_after\": \"%016llx\", "
                   "\"ppl_before\": ", (unsigned long long)r->runs[0].p2.lm_hash_before,
                   (unsigned long long)r->runs[0].p2.lm_hash_after);
        cr_ilm_num(b, r->runs[0].p2.lm_ppl_before), cr_ilm_put(b, ", \"ppl_after\": ");
        cr_ilm_num(b, r->runs[0].p2.lm_ppl_after);
        int same = 1;
        for (int i = 0; i < r->n; i++)
            same &= r->runs[i].p2.lm_hash_after == r->runs[0].p2.lm_hash_before;
        cr_ilm_put(b, ", \"unchanged_in_every_run\": %s},\n", same ? "true" : "false");
    }
    cr_ilm_put(b, "  \"variants\": [\n");
    double x[CR_ILM_MAX_SEEDS];
    for (int vi = 0; vi < c->n_var; vi++) {
        int v = c->variants[vi];
        cr_ilm_put(b, "    {\"name\": \"%s\", \"runs\": [", cr_ilm_variant_name(v));
        int k = 0;
        for (int i = 0; i < r->n; i++) {
            const cr_ilm_run_result *u = &r->runs[i];
            if (u->variant != v) continue;
            cr_ilm_put(b, "%s\n      {\"seed\": %llu", k++ ? "," : "", (unsigned long long)u->seed);
            for (int m = 0; m < M_N; m++) {
                cr_ilm_put(b, ", \"%s\": ", cr_ilm_mname[m]);
                cr_ilm_num(b, cr_ilm_metric(u, m));
            }
            cr_ilm_put(b, ", \"phase2_first_loss\": "), cr_ilm_num(b, u->p2.first_loss);
            cr_ilm_put(b, ", \"trainable\": %lld, \"seconds\": %.1f}", (long long)u->p2.trainable,
                       u->p1.seconds + u->p2.seconds + u->ev.seconds);
        }
        cr_ilm_put(b, "],\n     \"summary\": {");
        for (int m = 0; m < M_N; m++) {
            cr_mean_ci ci;
            cr_ilm_ci(x, cr_ilm_values(r, v, m, x), m, &ci);
            cr_ilm_put(b, "%s\"%s\": {\"n\": %d, %s\"mean\": ", m ? ", " : "", cr_ilm_mname[m],
                       ci.n, m == M_PPL ? "\"scale\": \"log\", " : "");
            cr_ilm_num(b, ci.mean), cr_ilm_put(b, ", \"lo\": "), cr_ilm_num(b, ci.lo);
            cr_ilm_put(b, ", \"hi\": "), cr_ilm_num(b, ci.hi), cr_ilm_put(b, "}");
        }
        cr_ilm_put(b, "}}%s\n", vi + 1 < c->n_var ? "," : "");
    }
    cr_ilm_put(b, "  ],\n  \"findings\": [");
    int first = 1;
    for (int k = 0; k < 4; k++) {
        int a = cr_ilm_claims[k][0], z = cr_ilm_claims[k][1];
        if (!cr_ilm_has(c, a) || !cr_ilm_has(c, z)) continue;
        for (int j = 0; j < 4; j++) {
            int m = cr_ilm_claim_metrics[j];
            double xa[CR_ILM_MAX_SEEDS], xz[CR_ILM_MAX_SEEDS];
            int na = cr_ilm_values(r, a, m, xa), nz = cr_ilm_values(r, z, m, xz);
            cr_paired_t t;
            cr_paired_t_test(xa, xz, na < nz ? na : nz, 0.95, &t);
            int lower = m == M_PPL;
            int holds = isfinite(t.mean_diff) && (lower ? t.mean_diff < 0 : t.mean_diff > 0);
            cr_ilm_put(b, "%s\n    {\"claim\": \"%s %s %s\", \"metric\": \"%s\", \"mean_diff\": ",
                       first ? "" : ",", cr_ilm_variant_name(a), lower ? "<" : ">",
                       cr_ilm_variant_name(z), cr_ilm_mname[m]);
            cr_ilm_num(b, t.mean_diff), cr_ilm_put(b, ", \"p\": "), cr_ilm_num(b, t.p);
            cr_ilm_put(b, ", \"n\": %d, \"direction_holds\": %s, \"verdict\": \"%s\"}", t.n,
                       holds ? "true" : "false", cr_verdict_name(cr_paired_verdict(&t, 0.95)));
            first = 0;
        }
    }
    cr_ilm_put(b, "\n  ],\n  \"seconds\": %.1f\n}\n", r->seconds);
}

/* ---- report.html ---------------------------------------------------------------------------- */
/* One horizontal bar per variant run, from 0, with its 95% interval as a
 * whisker; the same bar colour for every variant (which differences hold
 * is the findings table's verdict, not a colour); a ticked axis from 0;
 * for the ranking metrics the references on the same candidates (BPR,
 * popularity, chance) as labelled dashed lines. Values sit in a column
 * right of the plot, clear of the whiskers. */
static void cr_ilm_svg(cr_ilm_buf *b, const cr_ilm_study_cfg *c, const cr_ilm_study_result *r,
                       int m) {
    double mean[CR_ILM_NVAR], lo[CR_ILM_NVAR], hi[CR_ILM_NVAR], top = 0, x[CR_ILM_MAX_SEEDS];
    const cr_ilm_eval_result *e0 = r->n ? &r->runs[0].ev : NULL;
    const char *rname[3] = {"BPR", "popularity", "chance"};
    double ref[3] = {NAN, NAN, NAN};
    if (e0 && m == M_HR10) ref[0] = e0->bpr.hr10, ref[1] = e0->pop.hr10, ref[2] = 10.0 / e0->per;
    if (e0 && m == M_NDCG10) ref[0] = e0->bpr.ndcg10, ref[1] = e0->pop.ndcg10;
    if (e0 && m == M_GENRE) ref[2] = e0->genre_chance;
    for (int vi = 0; vi < c->n_var; vi++) {
        cr_mean_ci ci;
        cr_ilm_ci(x, cr_ilm_values(r, c->variants[vi], m, x), m, &ci);
        mean[vi] = ci.mean, lo[vi] = ci.lo, hi[vi] = ci.hi;
        double t = isfinite(hi[vi]) ? hi[vi] : mean[vi];
        if (isfinite(t) && t > top) top = t;
    }
    for (int k = 0; k < 3; k++)
        if (isfinite(ref[k]) && ref[k] > top) top = ref[k];
    if (!(top > 0)) top = 1;
    top *= 1.05;
    const int L = 90, W = 420, VX = L + W + 10;
    int ya = 10 + 26 * c->n_var, H = ya + 40;
    cr_ilm_put(b, "<h3>%s</h3>\n<svg width=\"%d\" height=\"%d\" xmlns=\"http://www.w3.org/2000/svg\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", cr_ilm_mlabel[m], VX + 140, H);
    for (int vi = 0; vi < c->n_var; vi++) {
        int y = 10 + 26 * vi;
        cr_ilm_put(b, "<text x=\"0\" y=\"%d\">%s</text>", y + 14, cr_ilm_variant_name(c->variants[vi]));
        if (!isfinite(mean[vi])) {
            cr_ilm_put(b, "<text x=\"%d\" y=\"%d\">-</text>\n", VX, y + 14);
            continue;
        }
        cr_ilm_put(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"#7a9cc6\"/>", L, y,
                   fmax(1.0, mean[vi] / top * W));
        if (isfinite(lo[vi]) && isfinite(hi[vi]) && hi[vi] > lo[vi])
            cr_ilm_put(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"black\"/>",
                       L + fmax(lo[vi], 0) / top * W, L + hi[vi] / top * W, y + 9, y + 9);
        cr_ilm_put(b, "<text x=\"%d\" y=\"%d\">%.4g [%.4g, %.4g]</text>\n", VX, y + 14, mean[vi],
                   lo[vi], hi[vi]);
    }
    for (int k = 0; k < 3; k++) {
        if (!isfinite(ref[k])) continue;
        double rx = L + ref[k] / top * W;
        cr_ilm_put(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"4\" y2=\"%d\" stroke=\"#b05000\" "
                   "stroke-dasharray=\"4,3\"/><text x=\"%.1f\" y=\"%d\" fill=\"#b05000\" "
                   "font-size=\"10\">%s %.3g</text>\n", rx, rx, ya, rx + 2, ya - 4 - 10 * k, rname[k],
                   ref[k]);
    }
    cr_ilm_put(b, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>", L, L + W, ya, ya);
    for (int i = 0; i <= 4; i++) {
        double v = top * i / 4, tx = L + W * i / 4.0;
        cr_ilm_put(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#999\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%.3g</text>",
                   tx, tx, ya, ya + 4, tx, ya + 15, v);
    }
    cr_ilm_put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"10\">%s, mean over "
               "seeds%s, 95%% interval</text>\n</svg>\n", L + W / 2, ya + 30, cr_ilm_mlabel[m],
               m == M_PPL ? " (geometric)" : "");
}

static void cr_ilm_html(cr_ilm_buf *b, const cr_ilm_study_cfg *c, const cr_ilm_study_result *r,
                        const char *table) {
    cr_ilm_put(b, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>ILM study</title>"
               "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto}"
               "pre{background:#f4f4f4;padding:1em;overflow-x:auto}td,th{padding:2px 8px}"
               "</style></head><body>\n<h1>Item-Language Model study</h1>\n");
    static const char *const what[CR_ILM_NVAR] = {
        "MLP adapter (CF vector to soft tokens, no Q-Former)", "ILM-rand (Q-Former without phase 1)",
        "ILM (all five phase-1 losses)", "IT (itc, itm, itg)", "IT + item-item", "IT + user-item"};
    cr_ilm_put(b, "<p>Variants run:");
    for (int vi = 0; vi < c->n_var; vi++)
        cr_ilm_put(b, "%s %s", vi ? ";" : "", what[c->variants[vi]]);
    cr_ilm_put(b, ". Phase 2 trains only the encoder and adapter; "
               "the LM (%s) is frozen. Next-item candidates are ranked by the LM's likelihood of "
               "their titles. Bars: mean over %d seed(s), from 0; whiskers: 95%% t-interval (the "
               "perplexity's on the log scale); dashed lines: the BPR vectors, popularity and "
               "chance on the same candidates.</p>\n",
               c->lm, c->n_seeds);
    cr_ilm_put(b, "<p>Compared with: <i>Item-Language Model for Conversational "
               "Recommendation</i> (Yang et al., arXiv 2406.02844), whose frozen LM is PaLM 2. "
               "Its findings are checked below as claims with paired tests: ILM beats ILM-rand, "
               "ILM-rand beats the MLP adapter, and IT with an item-item or a user-item loss "
               "beats IT. "
               "Its numbers come from a far larger LM and other benchmarks, so only the "
               "directions compare.</p>\n");
    cr_ilm_put(b, "<pre>");
    for (const char *p = table; *p; p++) {
        if (*p == '<') cr_ilm_put(b, "&lt;");
        else if (*p == '&') cr_ilm_put(b, "&amp;");
        else cr_ilm_put(b, "%c", *p);
    }
    cr_ilm_put(b, "</pre>\n");
    const int ms[] = {M_HR10, M_NDCG10, M_PPL, M_GENRE, M_P2LOSS};
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) cr_ilm_svg(b, c, r, ms[i]);
    cr_ilm_put(b, "<h2>The paper's findings, here</h2>\n<table><tr><th>claim</th><th>metric</th>"
               "<th>mean difference</th><th>p (paired t)</th><th>direction holds</th><th>verdict</th>"
               "</tr>\n");
    for (int k = 0; k < 4; k++) {
        int a = cr_ilm_claims[k][0], z = cr_ilm_claims[k][1];
        if (!cr_ilm_has(c, a) || !cr_ilm_has(c, z)) continue;
        for (int j = 0; j < 4; j++) {
            int m = cr_ilm_claim_metrics[j];
            double xa[CR_ILM_MAX_SEEDS], xz[CR_ILM_MAX_SEEDS];
            int na = cr_ilm_values(r, a, m, xa), nz = cr_ilm_values(r, z, m, xz);
            cr_paired_t t;
            cr_paired_t_test(xa, xz, na < nz ? na : nz, 0.95, &t);
            int holds = m == M_PPL ? t.mean_diff < 0 : t.mean_diff > 0;
            cr_ilm_put(b, "<tr><td>%s %s %s</td><td>%s</td><td>%.4g</td><td>%.3g</td><td>%s</td>"
                       "<td>%s</td></tr>\n", cr_ilm_variant_name(a), m == M_PPL ? "&lt;" : "&gt;",
                       cr_ilm_variant_name(z), cr_ilm_mlabel[m], t.mean_diff, t.p,
                       holds ? "yes" : "no", cr_verdict_name(cr_paired_verdict(&t, 0.95)));
        }
    }
    cr_ilm_put(b, "</table>\n<p>%.0f s in all.</p>\n</body></html>\n", r->seconds);
}

cr_status cr_ilm_study_write(const cr_ilm_study_cfg *c, const cr_ilm_study_result *r,
                             const char *out_dir, cr_error *e) {
    char path[CR_ILM_PATH + 32], *table = NULL;
    cr_ilm_buf b = {0};
    cr_ilm_json(&b, c, r);
    if (b.oom || !b.s) return cr_err(e, CR_ERR_NOMEM, "ILM study: out of memory for results");
    snprintf(path, sizeof path, "%s/results.json", out_dir);
    cr_status s = cr_write_file_atomic(path, b.s, b.n, e);
    b.n = 0;
    if (s == CR_OK) s = cr_ilm_study_table(c, r, &table, e);
    if (s == CR_OK) {
        cr_ilm_html(&b, c, r, table);
        snprintf(path, sizeof path, "%s/report.html", out_dir);
        s = b.oom ? cr_err(e, CR_ERR_NOMEM, "ILM study: out of memory for the report")
                  : cr_write_file_atomic(path, b.s, b.n, e);
    }
    cr_free(table);
    cr_free(b.s);
    return s;
}
