/*
 * cmd_score.c - `crossrec score`: batch scoring of a CSV/TSV with a saved
 * ranker. The file needs the feature columns only (no labels); the output
 * has one row per input row with each served task's prediction.
 */
#include "cli.h"

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
    enum { MAX_IDS = CR_SCORE_MAX_IDS };
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
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = (int)threads;
    cp.dist = cr_cli_dist();
    cr_score_csv_opts o;
    cr_score_csv_opts_init(&o);
    o.model = model;
    o.data = data;
    o.out = out;
    o.id_columns = idcol;
    o.n_id_columns = nid;
    o.batch = (int)batch;
    cr_error e = {0};
    cr_ctx *ctx = NULL;
    int64_t n = 0;
    cr_status s = cr_ctx_new(&ctx, &cp, &e);
    if (!s) s = cr_score_csv(ctx, &o, &n, &e);
    cr_ctx_free(ctx);
    if (s) return cr_cli_fail("score", &e);
    if (cr_dist_rank(cp.dist) == 0)
        fprintf(stderr, "scored %lld rows into %s\n", (long long)n,
                strcmp(out, "-") ? out : "standard output");
    return 0;
}
