/*
 * sweep_report.c - a sweep's results.json (format "crossrec.sweep", sweep.c)
 * as people read it: a text grid per map and technique, and report.html's
 * heatmaps (inline SVG; no script, nothing fetched). Reads only the JSON.
 */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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

void cr_sweep_table(FILE *f, const cJSON *root) {
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

void cr_sweep_html(cr_sbuf *b, const cJSON *root) {
    const char *techs[8];
    int nt = sweep_techs(root, techs, 8);
    cr_sbuf_put(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>crossrec "
        "sweep</title><style>%s</style></head><body>\n<h1>When distillation pays</h1>\n"
        "<p class=\"note\">Sweep of ", cr_report_css);
    cr_sbuf_esc(b, str(root, "study"));
    cr_sbuf_put(b, " over the synthetic generator ");
    cr_sbuf_esc(b, str(root, "synth"));
    cr_sbuf_put(b, ": student ");
    cr_sbuf_esc(b, str(root, "student"));
    cr_sbuf_put(b, ", task ");
    cr_sbuf_esc(b, str(root, "task"));
    cr_sbuf_put(b, ", fraction %g, %.0f seeds per cell, %.0f cells in %.0f s. Each cell is a whole "
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
        cr_sbuf_put(b, first ? "" : ", ");
        cr_sbuf_esc(b, cJSON_IsString(d) ? d->valuestring : "");
        first = 0;
    }
    cr_sbuf_put(b, ".</p>\n");
    const int CW = 92, CH = 34, ML = 120, MT = 30, MB = 50;
    for (int t = 0; t < nt; t++) {
        double amax = 0;
        const cJSON *m, *c;
        cJSON_ArrayForEach(m, get(root, "maps")) cJSON_ArrayForEach(c, get(m, "cells")) {
            sw_val v = sweep_val(c, techs[t]);
            if (!v.few && !v.none && fabs(v.d) > amax) amax = fabs(v.d);
        }
        if (!(amax > 0)) amax = 1;
        cr_sbuf_put(b, "<h2>");
        cr_sbuf_esc(b, techs[t]);
        cr_sbuf_put(b, " against the control</h2>\n<div class=\"charts\">");
        cJSON_ArrayForEach(m, get(root, "maps")) {
            const cJSON *xv = get(m, "x_values"), *yv = get(m, "y_values");
            int nx = cJSON_GetArraySize(xv), ny = cJSON_GetArraySize(yv);
            char title[256];
            snprintf(title, sizeof title, "%s (rows) by %s", sweep_knob_text(str(m, "y")),
                     sweep_knob_text(str(m, "x")));
            /* wide enough for the title (about 7 px a character at 12 px) */
            int W = ML + nx * CW + 10, H = MT + ny * CH + MB, TW = (int)(7.2 * strlen(title));
            if (TW > W) W = TW;
            cr_sbuf_put(b, "<svg width=\"%d\" height=\"%d\" role=\"img\"><text class=\"ct\" x=\"0\" "
                "y=\"14\">", W, H);
            cr_sbuf_esc(b, title);
            cr_sbuf_put(b, "</text>\n");
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
                cr_sbuf_put(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" "
                    "stroke=\"%s\" stroke-width=\"%d\"><title>p %.3g, t-interval [%+.4f, %+.4f], "
                    "bootstrap [%+.4f, %+.4f]</title></rect>", x, y, CW - 2, CH - 2, fill,
                    v.sig ? "#000" : "#fff", v.sig ? 3 : 1, v.p, v.lo, v.hi, v.blo, v.bhi);
                cr_sbuf_put(b, "<text class=\"cv\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n",
                    x + CW / 2, y + CH / 2 + 4, lab);
            }
            for (int i = 0; i < nx; i++) {
                char tick[48];
                sweep_tick(tick, sizeof tick, root, str(m, "x"), cJSON_GetArrayItem(xv, i)->valuedouble);
                cr_sbuf_put(b, "<text class=\"cl\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>",
                    ML + i * CW + CW / 2, MT + ny * CH + 14, tick);
            }
            for (int j = 0; j < ny; j++) {
                char tick[48];
                sweep_tick(tick, sizeof tick, root, str(m, "y"), cJSON_GetArrayItem(yv, j)->valuedouble);
                cr_sbuf_put(b, "<text class=\"cl\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>",
                    ML - 6, MT + (ny - 1 - j) * CH + CH / 2 + 4, tick);
            }
            cr_sbuf_put(b, "<text class=\"cl\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", ML + nx * CW / 2,
                MT + ny * CH + 34);
            cr_sbuf_esc(b, sweep_knob_text(str(m, "x")));
            cr_sbuf_put(b, "</text></svg>\n");
        }
        cr_sbuf_put(b, "</div>\n");
    }
}
