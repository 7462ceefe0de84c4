/*
 * experiment_report.c - results.json as people read it: a plain-text table
 * and a self-contained report.html (inline CSS, SVG bar charts with
 * interval whiskers; no script, no fonts or images from the network). Reads
 * only results.json, so a report can be rebuilt from it at any time.
 */
#include "experiment.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }
static double num(const cJSON *o, const char *k) {
    const cJSON *x = get(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}
static const char *str(const cJSON *o, const char *k) {
    const cJSON *x = get(o, k);
    return cJSON_IsString(x) ? x->valuestring : "";
}

/* The row a table shows for one variant (or the teacher) and one task. */
typedef struct row {
    char   name[64];
    double prim, lo, hi;        /* primary metric, interval over seeds */
    double gauc, ndcg, calib;   /* means */
    double slice, slo, shi;     /* primary metric on the slice */
    double diff, p, blo, bhi;   /* vs control: mean difference, paired p, bootstrap interval */
    double sdiff, sp;           /* the same on the slice (p only) */
    double agree;
} row;

static void row_init(row *r, const char *name) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->prim = r->lo = r->hi = r->gauc = r->ndcg = r->calib = r->slice = r->slo = r->shi = NAN;
    r->diff = r->p = r->blo = r->bhi = r->sdiff = r->sp = r->agree = NAN;
}

static void row_from_variant(row *r, const cJSON *t, const char *pm, const char *name) {
    row_init(r, name);
    const cJSON *m = get(t, "metrics"), *sl = get(t, "slice"), *vc = get(t, "vs_control");
    r->prim = num(get(m, pm), "mean");
    r->lo = num(get(m, pm), "lo");
    r->hi = num(get(m, pm), "hi");
    r->gauc = num(get(m, "gauc"), "mean");
    r->ndcg = num(get(m, "ndcg"), "mean");
    r->calib = num(get(m, "calibration"), "mean");
    r->slice = num(get(sl, pm), "mean");
    r->slo = num(get(sl, pm), "lo");
    r->shi = num(get(sl, pm), "hi");
    r->agree = num(get(t, "agreement"), "mean");
    if (vc) {
        r->diff = num(vc, "mean_diff");
        r->p = num(vc, "p");
        r->blo = num(get(vc, "bootstrap"), "lo");
        r->bhi = num(get(vc, "bootstrap"), "hi");
        r->sdiff = num(get(vc, "slice"), "mean_diff");
        r->sp = num(get(vc, "slice"), "p");
    }
}

static void row_from_teacher(row *r, const cJSON *t, const char *pm) {
    row_init(r, "teacher (zero-shot)");
    const cJSON *m = get(t, "metrics"), *sl = get(t, "slice");
    r->prim = r->lo = r->hi = num(m, pm);
    r->gauc = num(m, "gauc");
    r->ndcg = num(m, "ndcg");
    r->calib = num(m, "calibration");
    r->slice = r->slo = r->shi = num(sl, pm);
}

/* Rows of one (student, fraction, task): the teacher first if it has the task. */
static int collect(const cJSON *stu, const cJSON *fr, const cJSON *task, row *rows, int cap) {
    const char *tn = str(task, "name"), *pm = str(task, "primary");
    int n = 0;
    const cJSON *tz = get(get(stu, "teacher_zero_shot"), tn);
    if (tz && n < cap) row_from_teacher(&rows[n++], tz, pm);
    const cJSON *v;
    cJSON_ArrayForEach(v, get(fr, "variants")) {
        if (n >= cap) break;
        const cJSON *t = get(get(v, "tasks"), tn);
        char name[64];
        snprintf(name, sizeof name, "%s%s", str(v, "technique"),
                 cJSON_IsTrue(get(v, "control")) ? " (control)" : "");
        row_from_variant(&rows[n++], t, pm, name);
    }
    return n;
}

static void fmt(char *b, size_t n, const char *f, double x) {
    if (isnan(x)) snprintf(b, n, "-");
    else snprintf(b, n, f, x);
}

static void fmt_ci(char *b, size_t n, double m, double lo, double hi) {
    if (isnan(m)) snprintf(b, n, "-");
    else if (isnan(hi) || hi == lo) snprintf(b, n, "%.4f", m);
    else snprintf(b, n, "%.4f ± %.4f", m, hi - m);
}

static void fmt_iv(char *b, size_t n, double lo, double hi) {
    if (isnan(lo) || isnan(hi)) snprintf(b, n, "-");
    else snprintf(b, n, "[%+.4f, %+.4f]", lo, hi);
}

/* One table row's cells as text, shared by the terminal table and the HTML. */
typedef struct row_text {
    char prim[40], slice[40], gauc[16], ndcg[16], calib[16], diff[16], p[16], boot[40],
        sdiff[16], sp[16], agree[16];
} row_text;

static void row_format(const row *r, row_text *t) {
    fmt_ci(t->prim, sizeof t->prim, r->prim, r->lo, r->hi);
    fmt_ci(t->slice, sizeof t->slice, r->slice, r->slo, r->shi);
    fmt(t->gauc, sizeof t->gauc, "%.4f", r->gauc);
    fmt(t->ndcg, sizeof t->ndcg, "%.4f", r->ndcg);
    fmt(t->calib, sizeof t->calib, "%.3f", r->calib);
    fmt(t->diff, sizeof t->diff, "%+.4f", r->diff);
    fmt(t->p, sizeof t->p, "%.3f", r->p);
    fmt_iv(t->boot, sizeof t->boot, r->blo, r->bhi);
    fmt(t->sdiff, sizeof t->sdiff, "%+.4f", r->sdiff);
    fmt(t->sp, sizeof t->sp, "%.3f", r->sp);
    fmt(t->agree, sizeof t->agree, "%.3f", r->agree);
}

cr_status cr_experiment_print_table(FILE *f, const char *results_json, cr_error *e) {
    cJSON *root = cJSON_Parse(results_json);
    if (!root) return cr_err(e, CR_ERR_PARSE, "results: not JSON");
    const char *sl = str(root, "slice");
    const cJSON *stu;
    cJSON_ArrayForEach(stu, get(root, "students")) {
        const cJSON *fr;
        cJSON_ArrayForEach(fr, get(stu, "fractions")) {
            const cJSON *task;
            cJSON_ArrayForEach(task, get(stu, "tasks")) {
                const char *pm = str(task, "primary");
                const cJSON *tc = get(task, "teacher_column");
                fprintf(f, "\n%s | fraction %g (%.0f training rows) | %s (%s%s%s)\n",
                        str(stu, "name"), num(fr, "fraction"), num(fr, "train_rows"),
                        str(task, "name"), str(task, "kind"),
                        cJSON_IsString(tc) ? ", teacher: " : ", not distilled",
                        cJSON_IsString(tc) ? tc->valuestring : "");
                char h1[32], h2[48];
                snprintf(h1, sizeof h1, "%s", !strcmp(pm, "auc") ? "AUC" : "R2");
                snprintf(h2, sizeof h2, "%s %s", sl, h1);
                fprintf(f, "  %-26s %-18s %7s %7s %7s %-18s %9s %7s %-20s %9s %7s %6s\n", "variant",
                        h1, "GAUC", "NDCG", "calib", h2, "diff", "p", "bootstrap CI", "sl.diff",
                        "sl.p", "agree");
                row rows[8];
                int n = collect(stu, fr, task, rows, 8);
                for (int i = 0; i < n; i++) {
                    const row *r = &rows[i];
                    row_text t;
                    row_format(r, &t);
                    fprintf(f, "  %-26s %-18s %7s %7s %7s %-18s %9s %7s %-20s %9s %7s %6s\n",
                            r->name, t.prim, t.gauc, t.ndcg, t.calib, t.slice, t.diff, t.p,
                            t.boot, t.sdiff, t.sp, t.agree);
                }
            }
        }
    }
    fprintf(f, "\nmean ± half-width of the %.0f%% t-interval over %d seeds; diff = mean paired "
            "difference from the control, p = paired t-test; bootstrap CI over test requests "
            "(%.0f resamples)\n", 100 * num(root, "level"), cJSON_GetArraySize(get(root, "seeds")),
            num(get(root, "bootstrap"), "resamples"));
    cJSON_Delete(root);
    return CR_OK;
}

/* ---- HTML ---------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *fmt_, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt_, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt_);
        int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt_, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 65536) + (size_t)k;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* Text into HTML: the five characters that could break out of it. */
static void esc(sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': put(b, "&lt;"); break;
        case '>': put(b, "&gt;"); break;
        case '&': put(b, "&amp;"); break;
        case '"': put(b, "&quot;"); break;
        case '\'': put(b, "&#39;"); break;
        default: put(b, "%c", *s);
        }
    }
}

/* A horizontal bar chart: one bar per row at its mean, whiskers to the
 * interval. The axis starts near the smallest lower bound, not at 0, since
 * the differences that matter are a fraction of the value: the axis is
 * labelled at both ends so no one reads the bar lengths as ratios. */
static void chart(sbuf *b, const row *rows, int n, int slice, const char *label) {
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        double m = slice ? rows[i].slice : rows[i].prim;
        double l = slice ? rows[i].slo : rows[i].lo, h = slice ? rows[i].shi : rows[i].hi;
        if (isnan(m)) continue;
        lo = fmin(lo, isnan(l) ? m : l);
        hi = fmax(hi, isnan(h) ? m : h);
    }
    if (!isfinite(lo)) return;
    double span = hi - lo > 1e-9 ? hi - lo : 0.01;
    lo -= 0.25 * span;
    hi += 0.1 * span;
    const int W = 560, left = 170, right = 20, bh = 18, gap = 8, top = 24;
    int H = top + n * (bh + gap) + 28;
    double sx = (double)(W - left - right) / (hi - lo);
    put(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">", W, H);
    put(b, "<text x=\"%d\" y=\"14\" class=\"ct\">", left);
    esc(b, label);
    put(b, "</text>");
    for (int i = 0; i < n; i++) {
        double m = slice ? rows[i].slice : rows[i].prim;
        double l = slice ? rows[i].slo : rows[i].lo, h = slice ? rows[i].shi : rows[i].hi;
        int y = top + i * (bh + gap);
        put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"cl\">", left - 6, y + bh - 5);
        esc(b, rows[i].name);
        put(b, "</text>");
        if (isnan(m)) continue;
        int teacher = !strncmp(rows[i].name, "teacher", 7), ctrl = strstr(rows[i].name, "control") != NULL;
        put(b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" class=\"%s\"/>", left, y,
            fmax(1.0, (m - lo) * sx), bh, teacher ? "bt" : ctrl ? "bc" : "bv");
        if (!isnan(l) && !isnan(h) && h > l) {
            double x1 = left + (l - lo) * sx, x2 = left + (h - lo) * sx, yc = y + bh / 2.0;
            put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"w\"/>", x1, yc, x2, yc);
            put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>", x1, y + 3, x1, y + bh - 3);
            put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>", x2, y + 3, x2, y + bh - 3);
        }
        put(b, "<text x=\"%.1f\" y=\"%d\" class=\"cv\">%.4f</text>",
            fmin(left + (m - lo) * sx + 4, (double)W - right - 40), y + bh - 5, m);
    }
    int ya = top + n * (bh + gap) + 4;
    put(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"ax\"/>", left, ya, W - right, ya);
    put(b, "<text x=\"%d\" y=\"%d\" class=\"cl\">%.4f</text>", left, ya + 16, lo);
    put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"cl\">%.4f</text>", W - right, ya + 16, hi);
    put(b, "</svg>\n");
}

static const char *css =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}"
    "h3{font-size:1.05em;margin-top:1.5em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #eee;"
    "text-align:right;font-variant-numeric:tabular-nums}td:first-child,th:first-child{text-align:left}"
    "tr.teacher td{color:#7a4b00}tr.control td{font-weight:600}.pos{color:#0a6b2b}.neg{color:#a11}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}.ct{font-size:12px;font-weight:600}.cl,.cv{font-size:11px}"
    ".bt{fill:#e0a040}.bc{fill:#8a8a8a}.bv{fill:#3b7dd8}.w{stroke:#111;stroke-width:1.2}.ax{stroke:#999}"
    ".note{color:#555;font-size:.9em}";

cr_status cr_experiment_report_html(const char *results_json, const char *path, cr_error *e) {
    cJSON *root = cJSON_Parse(results_json);
    if (!root) return cr_err(e, CR_ERR_PARSE, "results: not JSON");
    sbuf b = {0};
    const char *sl = str(root, "slice");
    double level = 100 * num(root, "level");
    put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>crossrec "
        "distillation study</title><style>%s</style></head><body>\n", css);
    put(&b, "<h1>Distillation study</h1>\n<p class=\"note\">Study ");
    esc(&b, str(root, "study"));
    put(&b, "; %d seeds; teacher ", cJSON_GetArraySize(get(root, "seeds")));
    esc(&b, str(get(root, "teacher"), "model"));
    const cJSON *cov = get(get(root, "teacher"), "coverage");
    if (cov) put(&b, " (%.0f%% of its features defaulted on the target)",
                 100 * num(cov, "defaulted_share"));
    put(&b, ". Values are means over seeds &plusmn; the half-width of the %.0f%% t-interval; "
        "&Delta; is the mean paired difference from the control with the paired t-test's p "
        "and a %.0f%% percentile bootstrap interval over %.0f resamples of test requests. "
        "The teacher row scores the teacher's own predictions, zero-shot, on the same rows.</p>\n",
        level, level, num(get(root, "bootstrap"), "resamples"));
    const cJSON *stu;
    cJSON_ArrayForEach(stu, get(root, "students")) {
        put(&b, "<h2>Student ");
        esc(&b, str(stu, "name"));
        put(&b, "</h2>\n");
        const cJSON *fr;
        cJSON_ArrayForEach(fr, get(stu, "fractions")) {
            const cJSON *task;
            cJSON_ArrayForEach(task, get(stu, "tasks")) {
                const char *pm = str(task, "primary");
                const char *pml = !strcmp(pm, "auc") ? "AUC" : "R&sup2;";
                const cJSON *tc = get(task, "teacher_column");
                put(&b, "<h3>");
                esc(&b, str(task, "name"));
                put(&b, " (%s) &middot; fraction %g, %.0f training rows &middot; ", str(task, "kind"),
                    num(fr, "fraction"), num(fr, "train_rows"));
                if (cJSON_IsString(tc)) {
                    put(&b, "distilled from <code>");
                    esc(&b, tc->valuestring);
                    put(&b, "</code>");
                } else {
                    put(&b, "not distilled");
                }
                put(&b, "</h3>\n<table><tr><th>variant</th><th>%s</th><th>GAUC</th><th>NDCG@k</th>"
                    "<th>calibration</th><th>", pml);
                esc(&b, sl);
                put(&b, " %s</th><th>&Delta; %s</th><th>p</th><th>bootstrap %.0f%% CI</th>"
                    "<th>&Delta; ", pml, pml, level);
                esc(&b, sl);
                put(&b, "</th><th>p</th><th>agreement</th></tr>\n");
                row rows[8];
                int n = collect(stu, fr, task, rows, 8);
                for (int i = 0; i < n; i++) {
                    const row *r = &rows[i];
                    row_text t;
                    row_format(r, &t);
                    const char *cls = !strncmp(r->name, "teacher", 7) ? "teacher"
                                      : strstr(r->name, "control") ? "control" : "";
                    const char *dc = isnan(r->diff) ? "" : r->diff > 0 ? "pos" : "neg";
                    put(&b, "<tr class=\"%s\"><td>", cls);
                    esc(&b, r->name);
                    put(&b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                        "<td class=\"%s\">%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                        "<td>%s</td></tr>\n", t.prim, t.gauc, t.ndcg, t.calib, t.slice, dc, t.diff,
                        t.p, t.boot, t.sdiff, t.sp, t.agree);
                }
                put(&b, "</table>\n<div class=\"charts\">");
                char lab[160];
                snprintf(lab, sizeof lab, "%s: %s on test", str(task, "name"),
                         !strcmp(pm, "auc") ? "AUC" : "R2");
                chart(&b, rows, n, 0, lab);
                snprintf(lab, sizeof lab, "%s: %s on %s", str(task, "name"),
                         !strcmp(pm, "auc") ? "AUC" : "R2", sl);
                chart(&b, rows, n, 1, lab);
                put(&b, "</div>\n");
            }
        }
    }
    put(&b, "</body></html>\n");
    cJSON_Delete(root);
    if (b.oom) {
        free(b.p);
        return cr_err(e, CR_ERR_NOMEM, "out of memory writing %s", path);
    }
    cr_status s = cr_write_file_atomic(path, b.p, b.n, e);
    free(b.p);
    return s;
}
