/*
 * report.h - what the study's and the sweep's reports share
 * (experiment_report.c, sweep_report.c): reading results.json's fields, a
 * growing HTML buffer and the page's stylesheet. Internal to src/rank.
 */
#ifndef CR_RANK_REPORT_H
#define CR_RANK_REPORT_H

#include "experiment.h"

#include <cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>

static inline const cJSON *get(const cJSON *o, const char *k) {
    return cJSON_GetObjectItemCaseSensitive(o, k);
}
static inline double num(const cJSON *o, const char *k) {
    const cJSON *x = get(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}
static inline const char *str(const cJSON *o, const char *k) {
    const cJSON *x = get(o, k);
    return cJSON_IsString(x) ? x->valuestring : "";
}

/* An HTML page being written; oom is set (and further writes dropped) when
 * memory runs out. */
typedef struct cr_sbuf {
    char  *p;
    size_t n, cap;
    int    oom;
} cr_sbuf;
void cr_sbuf_put(cr_sbuf *b, const char *fmt_, ...) __attribute__((format(printf, 2, 3)));
/* Text into HTML: the five characters that could break out of it escaped. */
void cr_sbuf_esc(cr_sbuf *b, const char *s);
extern const char *const cr_report_css;

/* A sweep's results (sweep_report.c): the text grids, and the page body. */
void cr_sweep_table(FILE *f, const cJSON *root);
void cr_sweep_html(cr_sbuf *b, const cJSON *root);

#endif /* CR_RANK_REPORT_H */
