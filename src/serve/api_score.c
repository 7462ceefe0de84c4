/*
 * api_score.c - cr_score_csv (crossrec.h): batch scoring of a CSV/TSV with
 * a saved ranker into an output CSV, one row per input row in input order,
 * the id columns copied through. Under a job of several processes each
 * rank scores its byte range of the input and rank 0 joins the parts. The
 * output appears atomically or not at all; progress goes to the context's
 * log, and nothing else is printed.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../core/dist.h"
#include "../rank/checkpoint.h"
#include "../rank/evaluate.h"

#include <stdlib.h>
#include <string.h>

void cr_score_csv_opts_init(cr_score_csv_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->batch = 1024;
}

static cr_status check(const cr_score_csv_opts *o, cr_error *e) {
    if (!o || !o->model || !o->data || !o->out)
        return cr_err(e, CR_ERR_ARG, "cr_score_csv: model, data and out are required");
    if (o->n_id_columns < 0 || o->n_id_columns > CR_SCORE_MAX_IDS || (o->n_id_columns && !o->id_columns))
        return cr_err(e, CR_ERR_ARG, "cr_score_csv_opts.n_id_columns: expected 0 to %d (with "
                      "id_columns), got %d", CR_SCORE_MAX_IDS, o->n_id_columns);
    for (int k = 0; k < o->n_id_columns; k++)
        if (!o->id_columns[k])
            return cr_err(e, CR_ERR_ARG, "cr_score_csv_opts.id_columns[%d] is NULL", k);
    if (o->batch < 1 || o->batch > (1 << 20))
        return cr_err(e, CR_ERR_ARG, "cr_score_csv_opts.batch: expected 1 to %d, got %d", 1 << 20,
                      o->batch);
    return CR_OK;
}

/* Predictions of every row into pred (NH, n), in chunks for the progress line. */
static cr_status predict(cr_ranker *m, cr_dataset *ds, const uint32_t *rows, int64_t n, int batch,
                         float *pred, FILE *log, cr_error *e) {
    int NH = m->cfg.n_heads;
    const int64_t CH = 65536;
    cr_meter pm;
    cr_meter_start(&pm, log, "score", n, "rows");
    for (int64_t i0 = 0; i0 < n; i0 += CH) {
        int64_t cnt = n - i0 < CH ? n - i0 : CH;
        float *chunk = n <= CH ? pred : malloc((size_t)NH * (size_t)cnt * sizeof(float));
        if (!chunk) return cr_err(e, CR_ERR_NOMEM, "out of memory for %lld predictions", (long long)cnt);
        cr_status ps = cr_rank_predict_rows(m, ds, rows + i0, cnt, batch, chunk, NULL, e);
        if (chunk != pred) {
            for (int h = 0; h < NH && !ps; h++)
                memcpy(pred + (size_t)h * (size_t)n + (size_t)i0, chunk + (size_t)h * (size_t)cnt,
                       (size_t)cnt * sizeof(float));
            free(chunk);
        }
        if (ps) return ps;
        cr_meter_update(&pm, i0 + cnt, (double)(i0 + cnt), NULL, NULL, i0 + cnt == n && pm.printed);
    }
    cr_meter_done(&pm);
    return CR_OK;
}

cr_status cr_score_csv(cr_ctx *ctx, const cr_score_csv_opts *o, int64_t *n_rows, cr_error *e) {
    if (n_rows) *n_rows = 0;
    CR_TRY(check(o, e));
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_score_csv", e));
    const char *data = o->data;
    int nid = o->n_id_columns;
    cr_schema ms;
    memset(&ms, 0, sizeof ms);
    cr_ranker *m = NULL;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    cr_data_cfg dc;
    memset(&dc, 0, sizeof dc);
    snprintf(dc.path, sizeof dc.path, "%s", data);
    dc.split = CR_SPLIT_FRACTION; /* every row lands in "train": score them all */
    dc.no_labels = 1;
    /* under mpirun each rank scores its byte range; rank 0 joins the parts */
    const cr_dist *dist = k.ctx->p.dist;
    int rank = cr_dist_rank(dist);
    dc.shard = rank;
    dc.n_shards = cr_dist_size(dist);
    char part[4200];
    cr_dist_part_path(dist, o->out, part, sizeof part);
    uint32_t *rows = NULL;
    int64_t n = 0;
    float *pred = NULL;
    cr_csv *in = NULL;
    cr_csv_writer *w = NULL;
    cr_status s;
    if ((s = cr_ranker_load(&m, &ms, o->model, e))) goto done;
    if ((s = cr_dataset_load(&ds, &ms, &dc, 0, e))) goto done;
    if ((s = cr_dataset_rows(&ds, CR_SPLIT_TRAIN, &rows, &n, e))) goto done;
    int NH = m->cfg.n_heads;
    pred = malloc((size_t)NH * (size_t)(n ? n : 1) * sizeof(float));
    if (!pred) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory for %lld predictions", (long long)n);
        goto done;
    }
    if ((s = predict(m, &ds, rows, n, o->batch, pred, cr_ctx_log(k.ctx), e))) goto done;
    int idc[CR_SCORE_MAX_IDS];
    if (nid) {
        if ((s = cr_csv_open(&in, data, 0, e))) goto done;
        if ((s = cr_csv_shard(in, rank, dc.n_shards, e))) goto done;
        for (int q = 0; q < nid; q++)
            if ((idc[q] = cr_csv_find(in, o->id_columns[q])) < 0) {
                s = cr_err(e, CR_ERR_NOT_FOUND, "%s: no column '%s' for --id-column", data,
                           o->id_columns[q]);
                goto done;
            }
    }
    if ((s = cr_csv_writer_open(&w, part, 0, e))) goto done;
    const char *hdr[CR_MODEL_MAX_HEADS + CR_SCORE_MAX_IDS];
    int nf = 0, hs[CR_MODEL_MAX_HEADS], ns = 0;
    for (int q = 0; q < nid; q++) hdr[nf++] = o->id_columns[q];
    for (int h = 0; h < NH; h++)
        if (m->cfg.heads[h].served) {
            hs[ns++] = h;
            hdr[nf++] = m->cfg.heads[h].name;
        }
    if (rank == 0 && (s = cr_csv_write_row(w, nf, hdr, e))) goto done;
    char buf[CR_MODEL_MAX_HEADS][32];
    const char *fields[CR_MODEL_MAX_HEADS + CR_SCORE_MAX_IDS];
    for (int64_t i = 0; i < n; i++) {
        int f = 0;
        if (in) {
            int done_in = 0;
            if ((s = cr_csv_next(in, &done_in, e))) goto done;
            if (done_in) {
                s = cr_err(e, CR_ERR_INTERNAL, "%s: fewer rows than were scored", data);
                goto done;
            }
            for (int q = 0; q < nid; q++) fields[f++] = cr_csv_field(in, idc[q], NULL);
        }
        for (int j = 0; j < ns; j++) {
            snprintf(buf[j], sizeof buf[j], "%.7g", (double)pred[(size_t)hs[j] * (size_t)n + (size_t)i]);
            fields[f++] = buf[j];
        }
        if ((s = cr_csv_write_row(w, f, fields, e))) goto done;
    }
    s = cr_csv_writer_commit(w, e);
    w = NULL;
    if (!s) s = cr_dist_concat(dist, part, o->out, e);
    if (!s) s = cr_dist_sum_i64(dist, &n, 1, e);
    if (!s && n_rows) *n_rows = n;
done:
    if (w) cr_csv_writer_abort(w);
    if (in) cr_csv_close(in);
    free(pred);
    free(rows);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&ms);
    cr_call_end(&k);
    return s;
}
