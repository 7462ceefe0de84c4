/*
 * experiment_report.c - results.json as people read it: a plain-text table
 * and a self-contained report.html (inline CSS, SVG bar charts with
 * interval whiskers; no script, no fonts or images from the network). Reads
 * only results.json, so a report can be rebuilt from it at any time.
 */
#include "report.h"
#include "stats.h"

#include <cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>


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


cr_status cr_experiment_print_table(FILE *f, const char *results_json, cr_error *e) {
    cJSON *root = cJSON_Parse(results_json);
    if (!root) return cr_err(e, CR_ERR_PARSE, "results: not JSON");
    if (!strcmp(str(root, "format"), "crossrec.sweep")) {
        cr_sweep_table(f, root);
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

void cr_sbuf_put(cr_sbuf *b, const char *fmt_, ...) {
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
void cr_sbuf_esc(cr_sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': cr_sbuf_put(b, "&lt;"); break;
        case '>': cr_sbuf_put(b, "&gt;"); break;
        case '&': cr_sbuf_put(b, "&amp;"); break;
        case '"': cr_sbuf_put(b, "&quot;"); break;
        case '\'': cr_sbuf_put(b, "&#39;"); break;
        default: cr_sbuf_put(b, "%c", *s);
        }
    }
}

const char *const cr_report_css =
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
static void chart(cr_sbuf *b, const bar *bars, int n, double a, double z, const char *vfmt,
                  const char *title, const char *axis) {
    const int W = 600, left = 170, plot = 340, vx = left + plot + 12, bh = 16, gap = 8, top = 24;
    int ya = top + n * (bh + gap);
    int H = ya + 40;
    double sx = plot / (z - a);
#define CX(x) (left + (fmin(fmax((x), a), z) - a) * sx)
    cr_sbuf_put(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\">", W, H);
    cr_sbuf_put(b, "<text x=\"%d\" y=\"14\" class=\"ct\">", left);
    cr_sbuf_esc(b, title);
    cr_sbuf_put(b, "</text>");
    for (int i = 0; i < n; i++) {
        const bar *r = &bars[i];
        int y = top + i * (bh + gap);
        cr_sbuf_put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" class=\"cl\">", left - 6, y + bh - 4);
        cr_sbuf_esc(b, r->name);
        cr_sbuf_put(b, "</text>");
        if (isnan(r->v)) {
            cr_sbuf_put(b, "<text x=\"%d\" y=\"%d\" class=\"cv\">-</text>", vx, y + bh - 4);
            continue;
        }
        double x0 = CX(0.0), x1 = CX(r->v);
        cr_sbuf_put(b, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" class=\"%s\"/>",
            fmin(x0, x1), y, fmax(1.0, fabs(x1 - x0)), bh, r->cls);
        if (!isnan(r->lo) && !isnan(r->hi) && r->hi > r->lo) {
            /* a whisker past the axis is cut there and has no cap at that end */
            double w1 = CX(r->lo), w2 = CX(r->hi), yc = y + bh / 2.0;
            cr_sbuf_put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"w\"/>", w1, yc, w2, yc);
            if (r->lo >= a)
                cr_sbuf_put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>", w1, y + 3, w1, y + bh - 3);
            if (r->hi <= z)
                cr_sbuf_put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"w\"/>", w2, y + 3, w2, y + bh - 3);
        }
        cr_sbuf_put(b, "<text x=\"%d\" y=\"%d\" class=\"cv\">", vx, y + bh - 4);
        cr_sbuf_put(b, vfmt, r->v);
        cr_sbuf_put(b, "</text>");
    }
    double x0 = CX(0.0);
    cr_sbuf_put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"zl\"/>", x0, top - 4, x0, ya);
    cr_sbuf_put(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"ax\"/>", left, ya, left + plot, ya);
    for (int i = 0; i <= 4; i++) {
        double v = a + (z - a) * i / 4, x = CX(v);
        cr_sbuf_put(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" class=\"ax\"/>", x, ya, x, ya + 4);
        cr_sbuf_put(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" class=\"cl\">%.3g</text>", x,
            ya + 15, fabs(v) < 1e-12 ? 0.0 : v);
    }
    cr_sbuf_put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" class=\"cl\">", left + plot / 2, ya + 31);
    cr_sbuf_esc(b, axis);
    cr_sbuf_put(b, "</text></svg>\n");
#undef CX
}

/* The metric itself, bars from 0: AUC on [0, 1]; R2 on [min(0, means),
 * max(0, means)] rounded out to tenths. Intervals do not stretch the axis
 * (two seeds can give a whisker of +-190 in R2): they are cut at its ends. */
static void chart_values(cr_sbuf *b, const row *rows, int n, int auc, const char *title,
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
static void chart_diffs(cr_sbuf *b, const row *rows, int n, int slice, const char *title,
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
static void tune_html(cr_sbuf *b, const cJSON *stu) {
    const cJSON *tj = get(stu, "tune"), *so, *v, *pk = get(tj, "pick");
    if (!tj) return;
    cr_sbuf_put(b, "<h3>The control's learning rate and width, chosen on validation</h3>\n"
        "<p class=\"note\">Fraction %g; ", num(tj, "fraction"));
    cr_sbuf_esc(b, str(tj, "criterion"));
    cr_sbuf_put(b, ". The pick trains the control and every variant; no test row is read.</p>\n"
        "<table><tr><th>lr</th><th>width</th>");
    const cJSON *first = cJSON_GetArrayItem(get(tj, "settings"), 0);
    cJSON_ArrayForEach(v, get(first, "valid")) {
        cr_sbuf_put(b, "<th>valid ");
        cr_sbuf_esc(b, v->string);
        cr_sbuf_put(b, "</th>");
    }
    cr_sbuf_put(b, "<th>score</th><th></th></tr>\n");
    cJSON_ArrayForEach(so, get(tj, "settings")) {
        int picked = num(so, "lr") == num(pk, "lr") && num(so, "width") == num(pk, "width");
        cr_sbuf_put(b, "<tr class=\"%s\"><td>%g</td><td>%g</td>", picked ? "control" : "", num(so, "lr"),
            num(so, "width"));
        cJSON_ArrayForEach(v, get(so, "valid")) cr_sbuf_put(b, "<td>%.4f</td>", v->valuedouble);
        cr_sbuf_put(b, "<td>%.4f</td><td>%s</td></tr>\n", num(so, "score"), picked ? "picked" : "");
    }
    cr_sbuf_put(b, "</table>\n");
}


/* The class of a verdict's table cells. */
static const char *verdict_cell(const char *v) {
    return !strcmp(v, "significant") ? "vs" : !strcmp(v, "not significant") ? "vn" : v[0] ? "vf" : "";
}


cr_status cr_experiment_report_html(const char *results_json, const char *path, cr_error *e) {
    cJSON *root = cJSON_Parse(results_json);
    if (!root) return cr_err(e, CR_ERR_PARSE, "results: not JSON");
    cr_sbuf b = {0};
    if (!strcmp(str(root, "format"), "crossrec.sweep")) {
        cr_sweep_html(&b, root);
        goto write;
    }
    const char *sl = slice_name(root);
    double level = 100 * num(root, "level"), minpos = num(root, "min_positives");
    cr_sbuf_put(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>crossrec "
        "distillation study</title><style>%s</style></head><body>\n", cr_report_css);
    cr_sbuf_put(&b, "<h1>Distillation study</h1>\n<p class=\"note\">Study ");
    cr_sbuf_esc(&b, str(root, "study"));
    cr_sbuf_put(&b, "; %d seeds; teacher ", cJSON_GetArraySize(get(root, "seeds")));
    cr_sbuf_esc(&b, str(get(root, "teacher"), "model"));
    const cJSON *cov = get(get(root, "teacher"), "coverage");
    if (cov) cr_sbuf_put(&b, " (%.0f%% of its features defaulted on the target)",
                 100 * num(cov, "defaulted_share"));
    cr_sbuf_put(&b, ". Values are means over seeds &plusmn; the half-width of the %.0f%% t-interval; "
        "&Delta; is the mean paired difference from the control with the paired t-test's p "
        "and a %.0f%% percentile bootstrap interval over %.0f resamples of test requests. "
        "The verdict is the paired t-test's at the %.0f%% level; with fewer than %d seeds it "
        "is &ldquo;not enough seeds&rdquo;, whatever p is. In the charts, bars start at 0 and "
        "a dark bar is a significant difference from the control, a pale one is not (or has "
        "too few seeds); the direction is read on the axis. &ldquo;Too few&rdquo;: fewer than "
        "%.0f positives (binary tasks) or rows (regression) to rest a metric on. The teacher "
        "row scores the teacher's own predictions, zero-shot, on the same rows.</p>\n",
        level, level, num(get(root, "bootstrap"), "resamples"), level, CR_MIN_SEEDS, minpos);
    cr_sbuf_put(&b, "<p class=\"note\">Compared with: <i>Zero-shot Cross-domain Knowledge Distillation: "
        "A Case Study on YouTube Music</i> (Ranganathan et al., arXiv 2603.28994), a YouTube "
        "teacher distilled, never fine-tuned, into YouTube Music's multi-task rankers. Its "
        "findings read here as directions: a distilled student beats the control without a "
        "teacher (&Delta; and its verdict), while the teacher alone does not beat a "
        "well-trained control (the teacher row against the control row). Its numbers are on "
        "production data and are not comparable in size with these.</p>\n");
    char conv[300];
    convergence_line(root, conv, sizeof conv);
    cr_sbuf_put(&b, "<p class=\"note\">");
    cr_sbuf_esc(&b, conv);
    cr_sbuf_put(&b, ".</p>\n");
    const cJSON *stu;
    cJSON_ArrayForEach(stu, get(root, "students")) {
        cr_sbuf_put(&b, "<h2>Student ");
        cr_sbuf_esc(&b, str(stu, "name"));
        cr_sbuf_put(&b, "</h2>\n");
        tune_html(&b, stu);
        const cJSON *fr;
        cJSON_ArrayForEach(fr, get(stu, "fractions")) {
            const cJSON *task;
            cJSON_ArrayForEach(task, get(stu, "tasks")) {
                const char *pm = str(task, "primary"), *tn = str(task, "name");
                int auc = !strcmp(pm, "auc");
                const char *pml = auc ? "AUC" : "R&sup2;";
                const cJSON *tc = get(task, "teacher_column");
                cr_sbuf_put(&b, "<h3>");
                cr_sbuf_esc(&b, tn);
                cr_sbuf_put(&b, " (%s) &middot; fraction %g, %.0f training rows &middot; ", str(task, "kind"),
                    num(fr, "fraction"), num(fr, "train_rows"));
                if (cJSON_IsString(tc)) {
                    cr_sbuf_put(&b, "distilled from <code>");
                    cr_sbuf_esc(&b, tc->valuestring);
                    cr_sbuf_put(&b, "</code>");
                } else {
                    cr_sbuf_put(&b, "not distilled");
                }
                cr_sbuf_put(&b, "</h3>\n");
                double n0 = task_count(stu, tn, "metrics"), n1 = sl ? task_count(stu, tn, "slice") : NAN;
                for (int q = 0; q < 2; q++) {
                    double cnt = q ? n1 : n0;
                    if (!(cnt < minpos)) continue;
                    cr_sbuf_put(&b, "<p class=\"note\">Too few %s on ", auc ? "positives" : "rows");
                    cr_sbuf_esc(&b, q ? sl : "the test rows");
                    cr_sbuf_put(&b, " for a metric: %.0f (fewer than %.0f); shown as &ldquo;too few&rdquo;."
                        "</p>\n", cnt, minpos);
                }
                char check[256];
                control_line(fr, tn, check, sizeof check);
                if (check[0]) {
                    cr_sbuf_put(&b, "<p class=\"note\">");
                    cr_sbuf_esc(&b, check);
                    cr_sbuf_put(&b, "</p>\n");
                }
                cr_sbuf_put(&b, "<table><tr><th>variant</th><th>%s</th><th>GAUC</th><th>NDCG@k</th>"
                    "<th>calibration</th><th>&Delta; %s</th><th>p</th><th>bootstrap %.0f%% CI</th>",
                    pml, pml, level);
                if (sl) {
                    cr_sbuf_put(&b, "<th>");
                    cr_sbuf_esc(&b, sl);
                    cr_sbuf_put(&b, " %s</th><th>&Delta; ", pml);
                    cr_sbuf_esc(&b, sl);
                    cr_sbuf_put(&b, "</th><th>p</th>");
                }
                cr_sbuf_put(&b, "<th>agreement</th><th>verdict</th></tr>\n");
                row rows[8];
                int n = collect(stu, fr, task, rows, 8);
                for (int i = 0; i < n; i++) {
                    const row *r = &rows[i];
                    row_text t;
                    row_format(r, &t);
                    const char *vc = verdict_cell(r->verdict);
                    cr_sbuf_put(&b, "<tr class=\"%s\"><td>", r->teacher ? "teacher" : r->control ? "control" : "");
                    cr_sbuf_esc(&b, r->name);
                    cr_sbuf_put(&b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"%s\">%s</td>"
                        "<td>%s</td><td>%s</td>", t.prim, t.gauc, t.ndcg, t.calib, vc, t.diff, t.p,
                        t.boot);
                    if (sl)
                        cr_sbuf_put(&b, "<td>%s</td><td class=\"%s\">%s</td><td>%s</td>", t.slice,
                            verdict_cell(r->sverdict), t.sdiff, t.sp);
                    cr_sbuf_put(&b, "<td>%s</td><td class=\"%s\">%s</td></tr>\n", t.agree, vc,
                        r->verdict[0] ? r->verdict : "-");
                }
                cr_sbuf_put(&b, "</table>\n<div class=\"charts\">");
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
                cr_sbuf_put(&b, "</div>\n");
            }
        }
    }
write:
    cr_sbuf_put(&b, "</body></html>\n");
    cJSON_Delete(root);
    if (b.oom) {
        free(b.p);
        return cr_err(e, CR_ERR_NOMEM, "out of memory writing %s", path);
    }
    cr_status s = cr_write_file_atomic(path, b.p, b.n, e);
    free(b.p);
    return s;
}
