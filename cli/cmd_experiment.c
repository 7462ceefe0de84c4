/*
 * cmd_experiment.c - `crossrec experiment`: run a distillation study
 * (docs/experiment.md) and print its comparison table; progress on stderr.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec experiment --config study.yaml --out DIR [options]\n"
            "\n"
            "Trains (or loads) the teacher, labels the target data with it, trains every\n"
            "student's control and distillation techniques per seed and data fraction, and\n"
            "writes DIR/results.json and DIR/report.html. Finished runs in DIR whose inputs\n"
            "are unchanged are reused.\n"
            "\n"
            "options (defaults in brackets):\n"
            "  --config FILE     the study YAML (required)\n"
            "  --out DIR         output directory (required; created if missing)\n"
            "  --threads N       threads for every run, 0 = the usable CPUs [the study's, else each config's]\n"
            "  --fresh           retrain everything, even finished runs [off]\n"
            "  --report-only     rebuild report.html and the table from DIR/results.json [off]\n"
            "  --quiet           no progress lines\n"
            "  --help            this text\n");
}

int cr_cli_experiment(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},
        {"threads", required_argument, 0, 't'}, {"fresh", no_argument, 0, 'f'},
        {"report-only", no_argument, 0, 'r'},  {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *config = NULL, *out = NULL;
    long long threads = -1;
    int fresh = 0, quiet = 0, report_only = 0, ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'f': fresh = 1; break;
        case 'r': report_only = 1; break;
        case 'q': quiet = 1; break;
        case 't': if (cr_cli_int("experiment", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec experiment: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!out || (!config && !report_only)) {
        fprintf(stderr, "crossrec experiment: --config and --out are required (see --help)\n");
        return 2;
    }
    cr_error e = {0};
    char *results = NULL, *table = NULL;
    if (report_only) {
        char path[4096];
        snprintf(path, sizeof path, "%s/results.json", out);
        if (cr_read_file(path, &results, NULL, &e)) return cr_cli_fail("experiment", &e);
        snprintf(path, sizeof path, "%s/report.html", out);
        cr_status s = cr_experiment_report(results, path, &e);
        if (!s) s = cr_experiment_table(results, &table, &e);
        if (!s) fputs(table, stdout);
        cr_free(table);
        cr_free(results);
        return s ? cr_cli_fail("experiment", &e) : 0;
    }
    const cr_dist *dist = cr_cli_dist();
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    /* 0 = the usable CPUs, named as a count: the context's 0 means "each config's" */
    cp.threads = threads < 0 ? 0 : threads == 0 ? cr_ctx_threads(NULL) : (int)threads;
    cp.quiet = quiet || cr_dist_rank(dist);
    cp.dist = dist;
    cr_ctx *ctx = NULL;
    if (cr_ctx_new(&ctx, &cp, &e)) return cr_cli_fail("experiment", &e);
    cr_status s = cr_experiment(ctx, config, out, fresh, &results, &e);
    cr_ctx_free(ctx);
    if (s) return cr_cli_fail("experiment", &e);
    if (!results) return 0; /* ranks other than 0 under mpirun */
    s = cr_experiment_table(results, &table, &e);
    if (!s) fputs(table, stdout);
    cr_free(table);
    cr_free(results);
    if (s) return cr_cli_fail("experiment", &e);
    printf("\nwrote %s/results.json and %s/report.html\n", out, out);
    return 0;
}
