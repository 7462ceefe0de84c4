/*
 * cmd_score.c - `crossrec score`: batch scoring of a CSV/TSV with a saved
 * ranker. The file needs the feature columns only (no labels); the output
 * has one row per input row with each served task's prediction.
 */
#include "cli.h"
#include "../src/core/dist.h" /* the parts of a sharded output */

#include "../src/rank/checkpoint.h"
#include "../src/rank/evaluate.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec score --model FILE.safetensors --data IN.csv --out OUT.csv [options]\n"
            "\n"
            "Writes one row per input row: the --id-column values (if given) and one\n"
            "column per served task with its prediction (a probability for binary\n"
            "tasks, a value for regression tasks), in input order.\n"
            "  --model FILE       the checkpoint (required)\n"
            "  --data FILE        rows to score, with the model's feature columns (required)\n"
            "  --out FILE         output CSV (required; written atomically; - = stdout)\n"
            "  --id-column NAME   copy this input column to the output; repeat for\n"
            "                     several, up to 16, in the order given [none]\n"
            "  --batch N          rows per forward pass [1024]\n"
            "  --threads N        threads, 0 = the usable CPUs [0]\n"
            "  --help             this text\n");
}

int cr_cli_score(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},   {"id-column", required_argument, 0, 'i'},
        {"batch", required_argument, 0, 'b'}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    enum { MAX_IDS = 16 };
    const char *model = NULL, *data = NULL, *out = NULL, *idcol[MAX_IDS];
    int nid = 0;
    long long batch = 1024, threads = 0;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'i':
            if (nid == MAX_IDS) {
                fprintf(stderr, "crossrec score: at most %d --id-column options\n", MAX_IDS);
                return 2;
            }
            idcol[nid++] = optarg;
            break;
        case 'b': if (cr_cli_int("score", "--batch", optarg, 1, 1 << 20, &batch)) return 2; break;
        case 't': if (cr_cli_int("score", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec score: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !data || !out) {
        fprintf(stderr, "crossrec score: --model, --data and --out are required (see --help)\n");
        return 2;
    }
    cr_set_threads((int)threads);
    cr_error e = {0};
    cr_schema ms;
    cr_ranker *m = NULL;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    cr_data_cfg dc;
    memset(&dc, 0, sizeof dc);
    snprintf(dc.path, sizeof dc.path, "%s", data);
    dc.split = CR_SPLIT_FRACTION; /* every row lands in "train": score them all */
    dc.no_labels = 1;
    /* under mpirun each rank scores its byte range; rank 0 joins the parts */
    const cr_dist *dist = cr_cli_dist();
    int rank = cr_dist_rank(dist);
    dc.shard = rank;
    dc.n_shards = cr_dist_size(dist);
    char part[4200];
    cr_dist_part_path(dist, out, part, sizeof part);
    uint32_t *rows = NULL;
    int64_t n = 0;
    float *pred = NULL;
    cr_csv *in = NULL;
    cr_csv_writer *w = NULL;
    int rc = 1;
    if (cr_ranker_load(&m, &ms, model, &e)) goto done;
    if (cr_dataset_load(&ds, &ms, &dc, 0, &e)) goto done;
    if (cr_dataset_rows(&ds, CR_SPLIT_TRAIN, &rows, &n, &e)) goto done;
    int NH = m->cfg.n_heads;
    pred = malloc((size_t)NH * (size_t)(n ? n : 1) * sizeof(float));
    if (!pred) {
        cr_err(&e, CR_ERR_NOMEM, "out of memory for %lld predictions", (long long)n);
        goto done;
    }
    /* In chunks, for the progress line; pred is (NH, n), a chunk (NH, cnt). */
    const int64_t CH = 65536;
    cr_meter pm;
    cr_meter_start(&pm, stderr, "score", n, "rows");
    for (int64_t i0 = 0; i0 < n; i0 += CH) {
        int64_t cnt = n - i0 < CH ? n - i0 : CH;
        float *chunk = n <= CH ? pred : malloc((size_t)NH * (size_t)cnt * sizeof(float));
        if (!chunk) {
            cr_err(&e, CR_ERR_NOMEM, "out of memory for %lld predictions", (long long)cnt);
            goto done;
        }
        cr_status ps = cr_rank_predict_rows(m, &ds, rows + i0, cnt, (int)batch, chunk, NULL, &e);
        if (chunk != pred) {
            for (int h = 0; h < NH && !ps; h++)
                memcpy(pred + (size_t)h * (size_t)n + (size_t)i0, chunk + (size_t)h * (size_t)cnt,
                       (size_t)cnt * sizeof(float));
            free(chunk);
        }
        if (ps) goto done;
        cr_meter_update(&pm, i0 + cnt, (double)(i0 + cnt), NULL, NULL, i0 + cnt == n && pm.printed);
    }
    cr_meter_done(&pm);
    int idc[MAX_IDS];
    if (nid) {
        if (cr_csv_open(&in, data, 0, &e)) goto done;
        if (cr_csv_shard(in, rank, dc.n_shards, &e)) goto done;
        for (int k = 0; k < nid; k++)
            if ((idc[k] = cr_csv_find(in, idcol[k])) < 0) {
                cr_err(&e, CR_ERR_NOT_FOUND, "%s: no column '%s' for --id-column", data, idcol[k]);
                goto done;
            }
    }
    if (cr_csv_writer_open(&w, part, 0, &e)) goto done;
    const char *hdr[CR_MODEL_MAX_HEADS + MAX_IDS];
    int nf = 0, hs[CR_MODEL_MAX_HEADS], ns = 0;
    for (int k = 0; k < nid; k++) hdr[nf++] = idcol[k];
    for (int h = 0; h < NH; h++)
        if (m->cfg.heads[h].served) {
            hs[ns++] = h;
            hdr[nf++] = m->cfg.heads[h].name;
        }
    if (rank == 0 && cr_csv_write_row(w, nf, hdr, &e)) goto done;
    char buf[CR_MODEL_MAX_HEADS][32];
    const char *fields[CR_MODEL_MAX_HEADS + MAX_IDS];
    for (int64_t i = 0; i < n; i++) {
        int f = 0;
        if (in) {
            int done_in = 0;
            if (cr_csv_next(in, &done_in, &e)) goto done;
            if (done_in) {
                cr_err(&e, CR_ERR_INTERNAL, "%s: fewer rows than were scored", data);
                goto done;
            }
            for (int k = 0; k < nid; k++) fields[f++] = cr_csv_field(in, idc[k], NULL);
        }
        for (int j = 0; j < ns; j++) {
            snprintf(buf[j], sizeof buf[j], "%.7g", (double)pred[(size_t)hs[j] * (size_t)n + (size_t)i]);
            fields[f++] = buf[j];
        }
        if (cr_csv_write_row(w, f, fields, &e)) goto done;
    }
    rc = cr_csv_writer_commit(w, &e) ? 1 : 0;
    w = NULL;
    if (!rc) rc = cr_dist_concat(dist, part, out, &e) || cr_dist_sum_i64(dist, &n, 1, &e);
    if (!rc && rank == 0)
        fprintf(stderr, "scored %lld rows into %s\n", (long long)n,
                strcmp(out, "-") ? out : "standard output");
done:
    if (w) cr_csv_writer_abort(w);
    if (in) cr_csv_close(in);
    free(pred);
    free(rows);
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&ms);
    return rc ? cr_cli_fail("score", &e) : 0;
}
