/*
 * serve.c - serving benchmark on a trained ranker (the MovieLens model of
 * `make demo`): (1) the AUC of every binary task on the test split with the
 * dense layers in fp32, bf16 and int8, so the cost of reduced precision is
 * measured on real data; (2) in-process latency of one request of
 * 10/100/1000 candidates (context shared) per precision, against scoring
 * the same rows one by one through cr_model_score. Numbers on a shared
 * machine are noisy: read ratios, not absolutes.
 *
 *   build/bench/serve MODEL CONFIG [REPS]
 */
#include "../src/data/config.h"
#include "../src/rank/checkpoint.h"
#include "../src/rank/config.h"
#include "../src/rank/metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const cr_error *e) {
    fprintf(stderr, "bench/serve: %s\n", e->msg);
    return 1;
}

/* ---- AUC per precision ------------------------------------------------------------ */

static int auc_table(const char *model, const char *config) {
    cr_error e = {0};
    cr_rank_config cfg;
    cr_schema ms;
    cr_ranker *m;
    cr_dataset ds;
    if (cr_rank_config_load(&cfg, config, &e) || cr_ranker_load(&m, &ms, model, &e) ||
        cr_dataset_load(&ds, &ms, &cfg.data, 0, &e))
        return die(&e);
    uint32_t *rows;
    int64_t n;
    if (cr_dataset_rows(&ds, CR_SPLIT_TEST, &rows, &n, &e)) return die(&e);
    const int NH = m->cfg.n_heads, BMAX = 256;
    float *pred[3];
    uint8_t slot[256] = {0}; /* every slot from the candidate rows */
    for (int p = 0; p < 3; p++) {
        pred[p] = malloc((size_t)NH * (size_t)n * sizeof(float));
        cr_req_plan *plan;
        cr_req_ws *ws;
        cr_batch ctx, b;
        if (cr_req_plan_create(&plan, m, (cr_precision)p, &e) ||
            cr_req_ws_create(&ws, plan, BMAX, &e) || cr_batch_init(&ctx, &ds, 1, &e) ||
            cr_batch_init(&b, &ds, BMAX, &e) || cr_batch_gather(&ctx, &ds, rows, 1, &e))
            return die(&e);
        for (int64_t r0 = 0; r0 < n; r0 += BMAX) {
            int B = (int)(n - r0 < BMAX ? n - r0 : BMAX);
            const float *out;
            if (cr_batch_gather(&b, &ds, rows + r0, B, &e) ||
                cr_req_forward(plan, ws, slot, &ctx, &b, 0, &out, &e))
                return die(&e);
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < B; i++) {
                    float v = out[(size_t)h * B + i];
                    if (m->cfg.heads[h].kind == CR_HEAD_BINARY) v = 1.0f / (1.0f + expf(-v));
                    pred[p][(size_t)h * n + r0 + i] = v;
                }
        }
        cr_batch_free(&ctx);
        cr_batch_free(&b);
        cr_req_ws_free(ws);
        cr_req_plan_free(plan);
    }
    cr_kernels_print(stdout);
    printf("test split: %lld rows; lowp kernels: bf16 %s, int8 %s\n", (long long)n,
           cr_lp_isa(CR_PRECISION_BF16), cr_lp_isa(CR_PRECISION_INT8));
    printf("%-12s %10s %10s %10s %12s %12s %14s\n", "task", "auc fp32", "auc bf16", "auc int8",
           "d bf16", "d int8", "max|dp| bf16/int8");
    float *sc = malloc((size_t)n * sizeof(float)), *lb = malloc((size_t)n * sizeof(float));
    for (int h = 0; h < NH; h++) {
        const cr_head *hd = &m->cfg.heads[h];
        if (!hd->served || hd->kind != CR_HEAD_BINARY || hd->target_kind != CR_TARGET_LABEL) continue;
        double auc[3], dmax[3] = {0, 0, 0};
        for (int p = 0; p < 3; p++) {
            int64_t k = 0;
            for (int64_t i = 0; i < n; i++) {
                uint32_t r = rows[i];
                if (hd->mask_task >= 0 && ds.mask[(size_t)hd->mask_task * ds.n + r] == 0) continue;
                sc[k] = pred[p][(size_t)h * n + i];
                lb[k++] = ds.label[(size_t)hd->target * ds.n + r];
                double d = fabs((double)pred[p][(size_t)h * n + i] - pred[0][(size_t)h * n + i]);
                dmax[p] = d > dmax[p] ? d : dmax[p];
            }
            auc[p] = cr_auc(sc, lb, NULL, k);
        }
        printf("%-12s %10.5f %10.5f %10.5f %+12.5f %+12.5f %8.4f/%.4f\n", hd->name, auc[0], auc[1],
               auc[2], auc[1] - auc[0], auc[2] - auc[0], dmax[1], dmax[2]);
    }
    free(sc);
    free(lb);
    for (int p = 0; p < 3; p++) free(pred[p]);
    free(rows);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&ms);
    cr_rank_config_free(&cfg);
    return 0;
}

/* ---- latency --------------------------------------------------------------------- */

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Context columns of the MovieLens impressions: the user's side. */
static int is_context_column(const char *c) {
    static const char *const ctx[] = {"user_id", "hist_count", "hist_mean_rating",
                                      "hist_top_genres", "last_items", "days_since_first",
                                      "hour_of_day", "day_of_week", NULL};
    for (int i = 0; ctx[i]; i++)
        if (!strcmp(c, ctx[i])) return 1;
    return 0;
}

static int latency_table(const char *model, const char *csv, int reps) {
    enum { NMAX = 1000 };
    cr_error e = {0};
    cr_csv *in;
    cr_model *m0;
    if (cr_model_load(&m0, model, &e) || cr_csv_open(&in, csv, 0, &e)) return die(&e);
    const int NI = cr_model_n_inputs(m0);
    char **text = calloc((size_t)NMAX * NI, sizeof(char *));
    for (int r = 0; r < NMAX; r++) {
        int done;
        if (cr_csv_next(in, &done, &e) || done) return die(&e);
        for (int i = 0; i < NI; i++) {
            int c = cr_csv_find(in, cr_model_input_column(m0, i));
            text[(size_t)r * NI + i] = strdup(c >= 0 ? cr_csv_field(in, c, NULL) : "");
        }
    }
    cr_csv_close(in);
    const char **context = calloc((size_t)NI, sizeof(char *));
    const char **merged = calloc((size_t)NMAX * NI, sizeof(char *));
    for (int i = 0; i < NI; i++)
        context[i] = is_context_column(cr_model_input_column(m0, i)) ? text[i] : NULL;
    for (int r = 0; r < NMAX; r++)
        for (int i = 0; i < NI; i++)
            merged[(size_t)r * NI + i] = context[i] ? context[i] : text[(size_t)r * NI + i];
    float *scores = malloc((size_t)NMAX * 8 * sizeof(float)), *rank = malloc(NMAX * sizeof(float));
    int64_t *order = malloc(NMAX * sizeof(int64_t));
    double *t = malloc((size_t)reps * sizeof(double));
    printf("\nlatency of one request, ms (p50 / p99 over %d runs; kernel threads %d)\n", reps,
           cr_get_threads());
    printf("%-10s %-6s %18s %22s\n", "cands", "prec", "request (ctx once)", "cr_model_score rows");
    static const int sizes[] = {10, 100, 1000};
    for (int p = 0; p < 3; p++) {
        cr_model_opts o;
        cr_model_opts_defaults(&o);
        o.precision = (cr_precision)p;
        cr_model *m;
        if (cr_model_load_opts(&m, model, &o, &e)) return die(&e);
        for (int si = 0; si < 3; si++) {
            int N = sizes[si];
            cr_request rq = {context, N, (const char *const *)text};
            cr_response rs = {scores, rank, order, 0};
            double q[2][2];
            for (int mode = 0; mode < 2; mode++) {
                if (mode == 1 && p > 0) { /* cr_model_score is fp32 only */
                    q[1][0] = q[1][1] = NAN;
                    continue;
                }
                for (int i = 0; i < reps + 3; i++) {
                    double t0 = cr_now();
                    if (mode == 0 ? cr_model_score_request(m, &rq, &rs, &e)
                                  : cr_model_score(m, N, merged, scores, &e))
                        return die(&e);
                    if (i >= 3) t[i - 3] = 1e3 * (cr_now() - t0); /* 3 warm-up runs */
                }
                qsort(t, (size_t)reps, sizeof *t, cmp_d);
                q[mode][0] = t[reps / 2];
                q[mode][1] = t[(int)(0.99 * (reps - 1))];
            }
            printf("%-10d %-6s %8.3f / %7.3f %10.3f / %9.3f\n", N,
                   cr_precision_name((cr_precision)p), q[0][0], q[0][1], q[1][0], q[1][1]);
        }
        cr_model_free(m);
    }
    for (int i = 0; i < NMAX * NI; i++) free(text[i]);
    free(text);
    free(context);
    free(merged);
    free(scores);
    free(rank);
    free(order);
    free(t);
    cr_model_free(m0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL CONFIG [REPS] [CSV]\n", argv[0]);
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 200;
    if (reps < 10) reps = 10;
    cr_set_threads(1); /* a serving thread runs its kernels alone */
    if (auc_table(argv[1], argv[2])) return 1;
    cr_rank_config cfg;
    cr_error e = {0};
    if (cr_rank_config_load(&cfg, argv[2], &e)) return die(&e);
    char csv[1024];
    snprintf(csv, sizeof csv, "%s", argc > 4 ? argv[4] : cfg.data.path);
    cr_rank_config_free(&cfg);
    return latency_table(argv[1], csv, reps);
}
