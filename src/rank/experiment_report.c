/*
 * experiment_report.c - results.json as people read it: a plain-text table
 * and a self-contained report.html (inline CSS, SVG bar charts with
 * interval whiskers; no script, no fonts or images from the network). Reads
 * only results.json, so a report can be rebuilt from it at any time.
 */
#include "experiment.h"
#include "stats.h"

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
    int    teacher, control;
    int    few, sfew;           /* too few positives (rows) on test / on the slice */
    double prim, lo, hi;        /* primary metric, interval over seeds */
    double gauc, ndcg, calib;   /* means */
    double slice, slo, shi;     /* primary metric on the slice */
    double diff, dlo, dhi, p;   /* vs control: mean difference, its t-interval, paired p */
    double blo, bhi;            /* bootstrap interval of the difference */
    double sdiff, sdlo, sdhi, sp; /* the same on the slice */
    char   verdict[24], sverdict[24];
    double agree;
} row;

static void row_init(row *r, const char *name) {
    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "%s", name);
    r->prim = r->lo = r->hi = r->gauc = r->ndcg = r->calib = r->slice = r->slo = r->shi = NAN;
    r->diff = r->dlo = r->dhi = r->p = r->blo = r->bhi = NAN;
    r->sdiff = r->sdlo = r->sdhi = r->sp = r->agree = NAN;
}

static void row_from_variant(row *r, const cJSON *t, const char *pm, const char *name) {
    row_init(r, name);
    const cJSON *m = get(t, "metrics"), *sl = get(t, "slice"), *vc = get(t, "vs_control");
    r->few = cJSON_IsTrue(get(m, "too_few"));
    r->sfew = cJSON_IsTrue(get(sl, "too_few"));
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
        const cJSON *vs = get(vc, "slice");
        r->diff = num(vc, "mean_diff");
        r->dlo = num(vc, "lo");
        r->dhi = num(vc, "hi");
        r->p = num(vc, "p");
        r->blo = num(get(vc, "bootstrap"), "lo");
        r->bhi = num(get(vc, "bootstrap"), "hi");
        snprintf(r->verdict, sizeof r->verdict, "%s", str(vc, "verdict"));
        r->sdiff = num(vs, "mean_diff");
        r->sdlo = num(vs, "lo");
        r->sdhi = num(vs, "hi");
        r->sp = num(vs, "p");
        snprintf(r->sverdict, sizeof r->sverdict, "%s", str(vs, "verdict"));
    }
}

static void row_from_teacher(row *r, const cJSON *t, const char *pm) {
    row_init(r, "teacher (zero-shot)");
    r->teacher = 1;
    const cJSON *m = get(t, "metrics"), *sl = get(t, "slice");
    r->few = cJSON_IsTrue(get(m, "too_few"));
    r->sfew = cJSON_IsTrue(get(sl, "too_few"));
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
        int ctrl = cJSON_IsTrue(get(v, "control"));
        snprintf(name, sizeof name, "%s%s", str(v, "technique"), ctrl ? " (control)" : "");
        row_from_variant(&rows[n], t, pm, name);
        rows[n++].control = ctrl;
    }
    return n;
}

/* The counts behind a task's metrics, from the control's row of the first
 * fraction (every variant is scored on the same rows). */
static double task_count(const cJSON *stu, const char *tn, const char *part) {
    const cJSON *v = get(cJSON_GetArrayItem(get(stu, "fractions"), 0), "variants");
    const cJSON *m = get(get(get(cJSON_GetArrayItem(v, 0), "tasks"), tn), part);
    double x = num(m, "positives");
    return isnan(x) ? num(m, "rows") : x;
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
    if (r->few) snprintf(t->prim, sizeof t->prim, "too few");
    if (r->sfew) snprintf(t->slice, sizeof t->slice, "too few");
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

/* The slice the study compares on, or NULL (results.json's "slice": null). */
/* The control's check against a model-free predictor (results.json
 * control_check of the control variant), as one sentence; "" if none. */
static void control_line(const cJSON *fr, const char *tn, char *out, size_t cap) {
    out[0] = 0;
    const cJSON *v, *cc = NULL;
    cJSON_ArrayForEach(v, get(fr, "variants"))
        if (cJSON_IsTrue(get(v, "control"))) cc = get(get(get(v, "tasks"), tn), "control_check");
    if (!cc) return;
    int pass = cJSON_IsTrue(get(cc, "passes")), pop = !strcmp(str(cc, "baseline"), "popularity");
    double ctl = num(cc, "control"), base = num(cc, "baseline_value");
    const cJSON *nm = get(cc, "no_model");
    char extra[200] = "";
    if (nm)
        snprintf(extra, sizeof extra, "; %s the no-model linear fit on %s %.4f",
                 ctl > num(nm, "value") ? ">" : "<=", str(nm, "feature"), num(nm, "value"));
    snprintf(out, cap, "control check: %s %.4f %s %s %.4f%s: %s", pop ? "AUC" : "R2", ctl,
             ctl > base ? ">" : "<=", pop ? "popularity" : "the constant predictor", base, extra,
             pass ? "passes" : "FAILS (a model-free predictor does as well; a gain over this "
                               "control says little)");
}

/* The study's convergence rule, as one sentence. */
static void convergence_line(const cJSON *root, char *out, size_t cap) {
    const cJSON *cv = get(root, "convergence");
    if (!cJSON_IsNumber(get(cv, "patience")))
        snprintf(out, cap, "convergence: each student config's own train.early_stopping");
    else
        snprintf(out, cap, "convergence (control and every variant): early_stopping %s, "
                 "patience %.0f, at most %.0f epochs; each run keeps its best-validation weights",
                 str(cv, "mode"), num(cv, "patience"), num(cv, "max_epochs"));
}

/* The control's search (results.json students[].tune) as text lines. */
static void tune_text(FILE *f, const cJSON *stu) {
    const cJSON *tj = get(stu, "tune"), *so, *pk = get(tj, "pick");
    if (!tj) return;
    fprintf(f, "\n%s | tune: the control at fraction %g, picked on validation (%s)\n",
            str(stu, "name"), num(tj, "fraction"), str(tj, "criterion"));
    cJSON_ArrayForEach(so, get(tj, "settings")) {
        int picked = num(so, "lr") == num(pk, "lr") && num(so, "width") == num(pk, "width");
        fprintf(f, "  lr %-8g width %-5g valid", num(so, "lr"), num(so, "width"));
        const cJSON *v;
        cJSON_ArrayForEach(v, get(so, "valid")) fprintf(f, " %s %.4f", v->string, v->valuedouble);
        fprintf(f, " | score %.4f%s\n", num(so, "score"), picked ? "  <- picked" : "");
    }
}

static const char *slice_name(const cJSON *root) {
    const cJSON *x = get(root, "slice");
    return cJSON_IsString(x) && x->valuestring[0] ? x->valuestring : NULL;
}

static void sweep_table(FILE *f, const cJSON *root);

cr_status cr_experiment_print_table(FILE *f, const char *results_json, cr_error *e) {
    cJSON *root = cJSON_Parse(results_json);
    if (!root) return cr_err(e, CR_ERR_PARSE, "results: not JSON");
    if (!strcmp(str(root, "format"), "crossrec.sweep")) {
        sweep_table(f, root);
        cJSON_Delete(root);
        return CR_OK;
    }
    const char *sl = slice_name(root);
    double minpos = num(root, "min_positives");
    const cJSON *stu;
    char conv[300];
    convergence_line(root, conv, sizeof conv);
    fprintf(f, "%s\n", conv);
    cJSON_ArrayForEach(stu, get(root, "students")) {
        const cJSON *fr;
        tune_text(f, stu);
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
                const char *unit = !strcmp(pm, "auc") ? "positives" : "rows";
                double n0 = task_count(stu, str(task, "name"), "metrics");
                double n1 = sl ? task_count(stu, str(task, "name"), "slice") : NAN;
                if (n0 < minpos)
                    fprintf(f, "  too few %s on test for a metric: %.0f (fewer than %.0f)\n", unit,
                            n0, minpos);
                if (n1 < minpos)
                    fprintf(f, "  too few %s on %s for a metric: %.0f (fewer than %.0f)\n", unit,
                            sl, n1, minpos);
                char check[256];
                control_line(fr, str(task, "name"), check, sizeof check);
                if (check[0]) fprintf(f, "  %s\n", check);
                char h1[32], h2[48];
                snprintf(h1, sizeof h1, "%s", !strcmp(pm, "auc") ? "AUC" : "R2");
                snprintf(h2, sizeof h2, "%s %s", sl ? sl : "", h1);
                fprintf(f, "  %-26s %-18s %7s %7s %7s %9s %7s %-20s", "variant", h1, "GAUC",
                        "NDCG", "calib", "diff", "p", "bootstrap CI");
                if (sl) fprintf(f, " %-18s %9s %7s", h2, "sl.diff", "sl.p");
                fprintf(f, " %6s  %s\n", "agree", "verdict");
                row rows[8];
                int n = collect(stu, fr, task, rows, 8);
                for (int i = 0; i < n; i++) {
                    const row *r = &rows[i];
                    row_text t;
                    row_format(r, &t);
                    fprintf(f, "  %-26s %-18s %7s %7s %7s %9s %7s %-20s", r->name, t.prim, t.gauc,
                            t.ndcg, t.calib, t.diff, t.p, t.boot);
                    if (sl) fprintf(f, " %-18s %9s %7s", t.slice, t.sdiff, t.sp);
                    fprintf(f, " %6s  %s\n", t.agree, r->verdict[0] ? r->verdict : "-");
                }
            }
        }
    }
    fprintf(f, "\nmean ± half-width of the %.0f%% t-interval over %d seeds; diff = mean paired "
            "difference from the control, p = paired t-test, verdict at the %.0f%% level (\"not "
            "enough seeds\" below %d seeds); bootstrap CI over test requests (%.0f resamples); "
            "\"too few\": fewer than %.0f positives (binary) or rows (regression)\n",
            100 * num(root, "level"), cJSON_GetArraySize(get(root, "seeds")),
            100 * num(root, "level"), CR_MIN_SEEDS, num(get(root, "bootstrap"), "resamples"),
            minpos);
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

/* One bar of a chart: a value, its interval and its CSS class. */
typedef struct bar {
    const char *name, *cls;
    double v, lo, hi;
} bar;

/* The class of a variant's bar or cell: colour says whether the paired
 * test found a difference, never which way it went (the axis says that). */
static const char *verdict_class(const row *r, int slice) {
    const char *v = slice ? r->sverdict : r->verdict;
    return !strcmp(v, "significant") ? "bs" : "bn";
}

/* A horizontal bar chart on the axis [a, z], which holds 0: each bar runs
 * from 0 to its value with whiskers over its interval. Values are printed
 * in a column right of the plot, so no label meets a whisker; the bottom
 * axis has five ticks with their values, and a line marks 0. */
static void chart(sbuf *b, const bar *bars, int n, double a, double z, const char *vfmt,
                  const char *title, const char *axis) {
    const int W = 600, left = 170, plot = 340, vx = left + plot + 12, bh = 16, gap = 8, top = 24;
    int ya = top + n * (bh + gap);
    int H = ya + 40;
    double sx = plot / (z - a);
#define CX(x) (left + (fmin(fmax((x), a), z) - a) * sx)
    put(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">", W, H);
    put(b, "<text x=\"%d\" y=\"14\" class=\"ct\">", left);
    esc(b, title);
    put(b, "</text>");
    for (int i = 0; i < n; i++) {
        const bar *r = &bars[i];
        int y = top + i * (bh + gap);
        put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"cl\">", left - 6, y + bh - 4);
        esc(b, r->name);
        put(b, "</text>");
        if (isnan(r->v)) {
            put(b, "<text x=\"%d\" y=\"%d\" class=\"cv\">-</text>", vx, y + bh - 4);
            continue;
        }
        double x0 = CX(0.0), x1 = CX(r->v);
        put(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" class=\"%s\"/>",
            fmin(x0, x1), y, fmax(1.0, fabs(x1 - x0)), bh, r->cls);
        if (!isnan(r->lo) && !isnan(r->hi) && r->hi > r->lo) {
            /* a whisker past the axis is cut there and has no cap at that end */
            double w1 = CX(r->lo), w2 = CX(r->hi), yc = y + bh / 2.0;
            put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"w\"/>", w1, yc, w2, yc);
            if (r->lo >= a)
                put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>", w1, y + 3, w1, y + bh - 3);
            if (r->hi <= z)
                put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>", w2, y + 3, w2, y + bh - 3);
        }
        put(b, "<text x=\"%d\" y=\"%d\" class=\"cv\">", vx, y + bh - 4);
        put(b, vfmt, r->v);
        put(b, "</text>");
    }
    double x0 = CX(0.0);
    put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"zl\"/>", x0, top - 4, x0, ya);
    put(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"ax\"/>", left, ya, left + plot, ya);
    for (int i = 0; i <= 4; i++) {
        double v = a + (z - a) * i / 4, x = CX(v);
        put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"ax\"/>", x, ya, x, ya + 4);
        put(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"cl\">%.3g</text>", x,
            ya + 15, fabs(v) < 1e-12 ? 0.0 : v);
    }
    put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"cl\">", left + plot / 2, ya + 31);
    esc(b, axis);
    put(b, "</text></svg>\n");
#undef CX
}

/* The metric itself, bars from 0: AUC on [0, 1]; R2 on [min(0, means),
 * max(0, means)] rounded out to tenths. Intervals do not stretch the axis
 * (two seeds can give a whisker of +-190 in R2): they are cut at its ends. */
static void chart_values(sbuf *b, const row *rows, int n, int auc, const char *title,
                         const char *axis) {
    bar bars[8];
    double a = 0, z = auc ? 1 : 0;
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        bars[i] = (bar){r->name, r->teacher ? "bt" : r->control ? "bc" : verdict_class(r, 0),
                        r->few ? NAN : r->prim, r->lo, r->hi};
        if (isnan(bars[i].v) || auc) continue;
        a = fmin(a, r->prim);
        z = fmax(z, r->prim);
    }
    if (!auc) {
        a = floor(a * 10 - 1e-9) / 10;
        z = ceil(z * 10 + 1e-9) / 10;
    }
    if (z - a < 1e-9) z = a + 1;
    chart(b, bars, n, a, z, "%.4f", title, axis);
}

/* Each technique's difference from the control with its paired t-interval,
 * on an axis symmetric about 0 that holds every interval, but no more than
 * three times the largest difference (wider whiskers are cut). */
static void chart_diffs(sbuf *b, const row *rows, int n, int slice, const char *title,
                        const char *axis) {
    bar bars[8];
    int m = 0;
    double h = 0, hv = 0;
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        if (r->teacher || r->control) continue;
        double v = slice ? r->sdiff : r->diff, lo = slice ? r->sdlo : r->dlo,
               hi = slice ? r->sdhi : r->dhi;
        bars[m++] = (bar){r->name, verdict_class(r, slice), v, lo, hi};
        for (int k = 0; k < 3; k++) {
            double x = k == 0 ? v : k == 1 ? lo : hi;
            if (isfinite(x)) h = fmax(h, fabs(x));
        }
        if (isfinite(v)) hv = fmax(hv, fabs(v));
    }
    if (m == 0) return;
    if (hv > 0) h = fmin(h, 3 * hv);
    h = h > 0 ? 1.1 * h : 0.01;
    chart(b, bars, m, -h, h, "%+.4f", title, axis);
}

/* The control's search: one row per setting, its validation metrics and
 * score, the pick marked. */
static void tune_html(sbuf *b, const cJSON *stu) {
    const cJSON *tj = get(stu, "tune"), *so, *v, *pk = get(tj, "pick");
    if (!tj) return;
    put(b, "<h3>The control's learning rate and width, chosen on validation</h3>\n"
        "<p class=\"note\">Fraction %g; ", num(tj, "fraction"));
    esc(b, str(tj, "criterion"));
    put(b, ". The pick trains the control and every variant; no test row is read.</p>\n"
        "<table><tr><th>lr</th><th>width</th>");
    const cJSON *first = cJSON_GetArrayItem(get(tj, "settings"), 0);
    cJSON_ArrayForEach(v, get(first, "valid")) {
        put(b, "<th>valid ");
        esc(b, v->string);
        put(b, "</th>");
    }
    put(b, "<th>score</th><th></th></tr>\n");
    cJSON_ArrayForEach(so, get(tj, "settings")) {
        int picked = num(so, "lr") == num(pk, "lr") && num(so, "width") == num(pk, "width");
        put(b, "<tr class=\"%s\"><td>%g</td><td>%g</td>", picked ? "control" : "", num(so, "lr"),
            num(so, "width"));
        cJSON_ArrayForEach(v, get(so, "valid")) put(b, "<td>%.4f</td>", v->valuedouble);
        put(b, "<td>%.4f</td><td>%s</td></tr>\n", num(so, "score"), picked ? "picked" : "");
    }
    put(b, "</table>\n");
}

static const char *css =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}"
    "h3{font-size:1.05em;margin-top:1.5em}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 8px;border-bottom:1px solid #eee;"
    "text-align:right;font-variant-numeric:tabular-nums}td:first-child,th:first-child{text-align:left}"
    "tr.teacher td{color:#7a4b00}tr.control td{font-weight:600}"
    "td.vs{color:#1a4fa0;font-weight:600}td.vn,td.vf{color:#777}td.vf{font-style:italic}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}.ct{font-size:12px;font-weight:600}.cl,.cv{font-size:11px}"
    ".bt{fill:#e0a040}.bc{fill:#8a8a8a}.bs{fill:#1a4fa0}.bn{fill:#b9cbe6}"
    ".w{stroke:#111;stroke-width:1.2}.ax{stroke:#999}.zl{stroke:#444;stroke-dasharray:2,2}"
    ".note{color:#555;font-size:.9em}";

/* The class of a verdict's table cells. */
static const char *verdict_cell(const char *v) {
    return !strcmp(v, "significant") ? "vs" : !strcmp(v, "not significant") ? "vn" : v[0] ? "vf" : "";
}

static void sweep_html(sbuf *b, const cJSON *root);

cr_status cr_experiment_report_html(const char *results_json, const char *path, cr_error *e) {
    cJSON *root = cJSON_Parse(results_json);
    if (!root) return cr_err(e, CR_ERR_PARSE, "results: not JSON");
    sbuf b = {0};
    if (!strcmp(str(root, "format"), "crossrec.sweep")) {
        sweep_html(&b, root);
        goto write;
    }
    const char *sl = slice_name(root);
    double level = 100 * num(root, "level"), minpos = num(root, "min_positives");
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
        "The verdict is the paired t-test's at the %.0f%% level; with fewer than %d seeds it "
        "is &ldquo;not enough seeds&rdquo;, whatever p is. In the charts, bars start at 0 and "
        "a dark bar is a significant difference from the control, a pale one is not (or has "
        "too few seeds); the direction is read on the axis. &ldquo;Too few&rdquo;: fewer than "
        "%.0f positives (binary tasks) or rows (regression) to rest a metric on. The teacher "
        "row scores the teacher's own predictions, zero-shot, on the same rows.</p>\n",
        level, level, num(get(root, "bootstrap"), "resamples"), level, CR_MIN_SEEDS, minpos);
    put(&b, "<p class=\"note\">Compared with: <i>Zero-shot Cross-domain Knowledge Distillation: "
        "A Case Study on YouTube Music</i> (Ranganathan et al., arXiv 2603.28994), a YouTube "
        "teacher distilled, never fine-tuned, into YouTube Music's multi-task rankers. Its "
        "findings read here as directions: a distilled student beats the control without a "
        "teacher (&Delta; and its verdict), while the teacher alone does not beat a "
        "well-trained control (the teacher row against the control row). Its numbers are on "
        "production data and are not comparable in size with these.</p>\n");
    char conv[300];
    convergence_line(root, conv, sizeof conv);
    put(&b, "<p class=\"note\">");
    esc(&b, conv);
    put(&b, ".</p>\n");
    const cJSON *stu;
    cJSON_ArrayForEach(stu, get(root, "students")) {
        put(&b, "<h2>Student ");
        esc(&b, str(stu, "name"));
        put(&b, "</h2>\n");
        tune_html(&b, stu);
        const cJSON *fr;
        cJSON_ArrayForEach(fr, get(stu, "fractions")) {
            const cJSON *task;
            cJSON_ArrayForEach(task, get(stu, "tasks")) {
                const char *pm = str(task, "primary"), *tn = str(task, "name");
                int auc = !strcmp(pm, "auc");
                const char *pml = auc ? "AUC" : "R&sup2;";
                const cJSON *tc = get(task, "teacher_column");
                put(&b, "<h3>");
                esc(&b, tn);
                put(&b, " (%s) &middot; fraction %g, %.0f training rows &middot; ", str(task, "kind"),
                    num(fr, "fraction"), num(fr, "train_rows"));
                if (cJSON_IsString(tc)) {
                    put(&b, "distilled from <code>");
                    esc(&b, tc->valuestring);
                    put(&b, "</code>");
                } else {
                    put(&b, "not distilled");
                }
                put(&b, "</h3>\n");
                double n0 = task_count(stu, tn, "metrics"), n1 = sl ? task_count(stu, tn, "slice") : NAN;
                for (int q = 0; q < 2; q++) {
                    double cnt = q ? n1 : n0;
                    if (!(cnt < minpos)) continue;
                    put(&b, "<p class=\"note\">Too few %s on ", auc ? "positives" : "rows");
                    esc(&b, q ? sl : "the test rows");
                    put(&b, " for a metric: %.0f (fewer than %.0f); shown as &ldquo;too few&rdquo;."
                        "</p>\n", cnt, minpos);
                }
                char check[256];
                control_line(fr, tn, check, sizeof check);
                if (check[0]) {
                    put(&b, "<p class=\"note\">");
                    esc(&b, check);
                    put(&b, "</p>\n");
                }
                put(&b, "<table><tr><th>variant</th><th>%s</th><th>GAUC</th><th>NDCG@k</th>"
                    "<th>calibration</th><th>&Delta; %s</th><th>p</th><th>bootstrap %.0f%% CI</th>",
                    pml, pml, level);
                if (sl) {
                    put(&b, "<th>");
                    esc(&b, sl);
                    put(&b, " %s</th><th>&Delta; ", pml);
                    esc(&b, sl);
                    put(&b, "</th><th>p</th>");
                }
                put(&b, "<th>agreement</th><th>verdict</th></tr>\n");
                row rows[8];
                int n = collect(stu, fr, task, rows, 8);
                for (int i = 0; i < n; i++) {
                    const row *r = &rows[i];
                    row_text t;
                    row_format(r, &t);
                    const char *vc = verdict_cell(r->verdict);
                    put(&b, "<tr class=\"%s\"><td>", r->teacher ? "teacher" : r->control ? "control" : "");
                    esc(&b, r->name);
                    put(&b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td>"
                        "<td>%s</td><td>%s</td>", t.prim, t.gauc, t.ndcg, t.calib, vc, t.diff, t.p,
                        t.boot);
                    if (sl)
                        put(&b, "<td>%s</td><td class=\"%s\">%s</td><td>%s</td>", t.slice,
                            verdict_cell(r->sverdict), t.sdiff, t.sp);
                    put(&b, "<td>%s</td><td class=\"%s\">%s</td></tr>\n", t.agree, vc,
                        r->verdict[0] ? r->verdict : "-");
                }
                put(&b, "</table>\n<div class=\"charts\">");
                char lab[160], ax[160];
                snprintf(lab, sizeof lab, "%s: %s on test", tn, auc ? "AUC" : "R2");
                snprintf(ax, sizeof ax, "%s (mean over seeds, %.0f%% t-interval)", auc ? "AUC" : "R2",
                         level);
                chart_values(&b, rows, n, auc, lab, ax);
                snprintf(lab, sizeof lab, "%s: difference from the control on test", tn);
                snprintf(ax, sizeof ax, "%s minus the control's (paired, %.0f%% t-interval)",
                         auc ? "AUC" : "R2", level);
                chart_diffs(&b, rows, n, 0, lab, ax);
                if (sl) {
                    snprintf(lab, sizeof lab, "%s: difference from the control on %s", tn, sl);
                    chart_diffs(&b, rows, n, 1, lab, ax);
                }
                put(&b, "</div>\n");
            }
        }
    }
write:
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

/* ---- a sweep: the gain over the control per cell --------------------------------- */

/* A cell's verdict for technique tn: the difference and whether both the
 * paired t-test and the bootstrap interval say it is not zero. */
typedef struct sw_val {
    double d, lo, hi, p, blo, bhi;
    int    sig, few, none;
} sw_val;

static sw_val sweep_val(const cJSON *cell, const char *tn) {
    sw_val v = {NAN, NAN, NAN, NAN, NAN, NAN, 0, 0, 0};
    const cJSON *vc = get(get(cell, "techniques"), tn);
    if (!cJSON_IsObject(vc)) {
        v.none = 1;
        return v;
    }
    v.few = cJSON_IsTrue(get(vc, "too_few"));
    v.d = num(vc, "mean_diff");
    v.lo = num(vc, "lo");
    v.hi = num(vc, "hi");
    v.p = num(vc, "p");
    v.blo = num(get(vc, "bootstrap"), "lo");
    v.bhi = num(get(vc, "bootstrap"), "hi");
    v.sig = !strcmp(str(vc, "verdict"), "significant") && (v.blo > 0 || v.bhi < 0);
    return v;
}

/* An axis value as the knob reads: traffic as requests and the share of
 * the source's, the defaulted knob as a percentage. */
static void sweep_tick(char *b, size_t n, const cJSON *root, const char *knob, double x) {
    double src = num(get(root, "base"), "source_requests");
    if (!strcmp(knob, "target_requests")) snprintf(b, n, "%.0f (1/%.0f)", x, src / x);
    else if (!strcmp(knob, "defaulted")) snprintf(b, n, "%.0f%%", 100 * x);
    else snprintf(b, n, "%g", x);
}

static const char *sweep_knob_text(const char *k) {
    return !strcmp(k, "target_requests") ? "target requests (share of the source's)"
           : !strcmp(k, "source_requests") ? "source requests (teacher quality)"
           : !strcmp(k, "specific") ? "target-only taste weight (domain shift)"
           : !strcmp(k, "defaulted") ? "teacher features defaulted on the target"
                                     : k;
}

/* The techniques the cells compare, from the first cell. */
static int sweep_techs(const cJSON *root, const char **names, int cap) {
    const cJSON *c0 = get(cJSON_GetArrayItem(get(root, "maps"), 0), "cells");
    const cJSON *t;
    int n = 0;
    cJSON_ArrayForEach(t, get(cJSON_GetArrayItem(c0, 0), "techniques")) if (n < cap) names[n++] = t->string;
    return n;
}

static void sweep_table(FILE *f, const cJSON *root) {
    const char *techs[8];
    int nt = sweep_techs(root, techs, 8);
    fprintf(f, "\nsweep of %s: student %s, task %s, fraction %g, %.0f seeds per cell, %.0f cells "
            "in %.0f s\n", str(root, "study"), str(root, "student"), str(root, "task"),
            num(root, "fraction"), num(root, "seeds"), num(root, "cells"), num(root, "seconds"));
    fprintf(f, "entries: mean difference from the control's primary metric; * significant "
            "(paired t-test and bootstrap interval agree); - too few or none\n");
    const cJSON *m;
    cJSON_ArrayForEach(m, get(root, "maps")) {
        const cJSON *xv = get(m, "x_values"), *yv = get(m, "y_values");
        int nx = cJSON_GetArraySize(xv);
        for (int t = 0; t < nt; t++) {
            fprintf(f, "\n%s | rows: %s, columns: %s\n%-14s", techs[t], str(m, "y"), str(m, "x"), "");
            for (int i = 0; i < nx; i++) {
                char tick[48];
                sweep_tick(tick, sizeof tick, root, str(m, "x"), cJSON_GetArrayItem(xv, i)->valuedouble);
                fprintf(f, " %14s", tick);
            }
            fprintf(f, "\n");
            const cJSON *c;
            int col = 0;
            cJSON_ArrayForEach(c, get(m, "cells")) {
                if (col == 0) {
                    char tick[48];
                    sweep_tick(tick, sizeof tick, root, str(m, "y"),
                               cJSON_GetArrayItem(yv, (int)num(c, "j"))->valuedouble);
                    fprintf(f, "%-14s", tick);
                }
                sw_val v = sweep_val(c, techs[t]);
                char cellt[32];
                if (v.none || v.few || isnan(v.d)) snprintf(cellt, sizeof cellt, "-");
                else snprintf(cellt, sizeof cellt, "%+.4f%s", v.d, v.sig ? "*" : "");
                fprintf(f, " %14s", cellt);
                if (++col == nx) {
                    fprintf(f, "\n");
                    col = 0;
                }
            }
        }
    }
}

static void sweep_html(sbuf *b, const cJSON *root) {
    const char *techs[8];
    int nt = sweep_techs(root, techs, 8);
    put(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>crossrec "
        "sweep</title><style>%s</style></head><body>\n<h1>When distillation pays</h1>\n"
        "<p class=\"note\">Sweep of ", css);
    esc(b, str(root, "study"));
    put(b, " over the synthetic generator ");
    esc(b, str(root, "synth"));
    put(b, ": student ");
    esc(b, str(root, "student"));
    put(b, ", task ");
    esc(b, str(root, "task"));
    put(b, ", fraction %g, %.0f seeds per cell, %.0f cells in %.0f s. Each cell is a whole "
        "study on its own generated data with its own teacher. A cell shows the mean paired "
        "difference of the technique's primary metric (AUC or R&sup2;) from the control's; "
        "blue is a gain, orange a loss, the shade its size on one scale per technique; a "
        "black frame and * mark a difference the paired t-test (5%%) and the bootstrap "
        "interval both find; grey: too few positives or no result. Defaulted features, in "
        "order: ", num(root, "fraction"), num(root, "seeds"), num(root, "cells"),
        num(root, "seconds"));
    const cJSON *d;
    int first = 1;
    cJSON_ArrayForEach(d, get(root, "defaultable")) {
        put(b, first ? "" : ", ");
        esc(b, cJSON_IsString(d) ? d->valuestring : "");
        first = 0;
    }
    put(b, ".</p>\n");
    const int CW = 92, CH = 34, ML = 120, MT = 30, MB = 50;
    for (int t = 0; t < nt; t++) {
        double amax = 0;
        const cJSON *m, *c;
        cJSON_ArrayForEach(m, get(root, "maps")) cJSON_ArrayForEach(c, get(m, "cells")) {
            sw_val v = sweep_val(c, techs[t]);
            if (!v.few && !v.none && fabs(v.d) > amax) amax = fabs(v.d);
        }
        if (!(amax > 0)) amax = 1;
        put(b, "<h2>");
        esc(b, techs[t]);
        put(b, " against the control</h2>\n<div class=\"charts\">");
        cJSON_ArrayForEach(m, get(root, "maps")) {
            const cJSON *xv = get(m, "x_values"), *yv = get(m, "y_values");
            int nx = cJSON_GetArraySize(xv), ny = cJSON_GetArraySize(yv);
            char title[256];
            snprintf(title, sizeof title, "%s (rows) by %s", sweep_knob_text(str(m, "y")),
                     sweep_knob_text(str(m, "x")));
            /* wide enough for the title (about 7 px a character at 12 px) */
            int W = ML + nx * CW + 10, H = MT + ny * CH + MB, TW = (int)(7.2 * strlen(title));
            if (TW > W) W = TW;
            put(b, "<svg width=\"%d\" height=\"%d\" role=\"img\"><text class=\"ct\" x=\"0\" "
                "y=\"14\">", W, H);
            esc(b, title);
            put(b, "</text>\n");
            cJSON_ArrayForEach(c, get(m, "cells")) {
                int i = (int)num(c, "i"), j = (int)num(c, "j");
                int x = ML + i * CW, y = MT + (ny - 1 - j) * CH; /* y grows upwards */
                sw_val v = sweep_val(c, techs[t]);
                char fill[48], lab[40];
                if (v.few || v.none || isnan(v.d)) {
                    snprintf(fill, sizeof fill, "#ddd");
                    snprintf(lab, sizeof lab, "%s", v.few ? "too few" : "-");
                } else {
                    double a = fmin(1.0, fabs(v.d) / amax);
                    snprintf(fill, sizeof fill, v.d >= 0 ? "rgba(26,79,160,%.2f)" : "rgba(214,110,30,%.2f)",
                             0.1 + 0.85 * a);
                    snprintf(lab, sizeof lab, "%+.4f%s", v.d, v.sig ? "*" : "");
                }
                put(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                    "stroke=\"%s\" stroke-width=\"%d\"><title>p %.3g, t-interval [%+.4f, %+.4f], "
                    "bootstrap [%+.4f, %+.4f]</title></rect>", x, y, CW - 2, CH - 2, fill,
                    v.sig ? "#000" : "#fff", v.sig ? 3 : 1, v.p, v.lo, v.hi, v.blo, v.bhi);
                put(b, "<text class=\"cv\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                    x + CW / 2, y + CH / 2 + 4, lab);
            }
            for (int i = 0; i < nx; i++) {
                char tick[48];
                sweep_tick(tick, sizeof tick, root, str(m, "x"), cJSON_GetArrayItem(xv, i)->valuedouble);
                put(b, "<text class=\"cl\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                    ML + i * CW + CW / 2, MT + ny * CH + 14, tick);
            }
            for (int j = 0; j < ny; j++) {
                char tick[48];
                sweep_tick(tick, sizeof tick, root, str(m, "y"), cJSON_GetArrayItem(yv, j)->valuedouble);
                put(b, "<text class=\"cl\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>",
                    ML - 6, MT + (ny - 1 - j) * CH + CH / 2 + 4, tick);
            }
            put(b, "<text class=\"cl\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", ML + nx * CW / 2,
                MT + ny * CH + 34);
            esc(b, sweep_knob_text(str(m, "x")));
            put(b, "</text></svg>\n");
        }
        put(b, "</div>\n");
    }
}
