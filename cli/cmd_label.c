/*
 * cmd_label.c - `crossrec label`: a frozen source-domain teacher labels a
 * target-domain CSV through a map file; its predictions become soft-label
 * columns. Prints the coverage table (how much of the teacher's input the
 * target could fill) on stderr.
 */
#include "cli.h"

#include "../src/data/config.h"
#include "../src/rank/label.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec label --teacher T.safetensors --map M.yaml --data IN.csv --out OUT.csv\n"
            "                      [options]\n"
            "\n"
            "Runs the teacher (never updated) over every row of --data, building its input\n"
            "as the map says, and writes the input columns plus one column per mapped\n"
            "teacher task (docs/distillation.md). Prints feature coverage on stderr.\n"
            "  --teacher FILE    the teacher checkpoint (required)\n"
            "  --map FILE        the map YAML: teacher features and tasks (required)\n"
            "  --data FILE       target-domain rows, CSV or TSV (required; streamed)\n"
            "  --out FILE        output, written atomically (required; - = stdout)\n"
            "  --coverage FILE   also write the coverage report as JSON [none]\n"
            "  --batch N         rows per forward pass [1024]\n"
            "  --threads N       threads, 0 = the usable CPUs [0]\n"
            "  --quiet           no coverage table, no progress\n"
            "  --help            this text\n");
}

static void print_coverage(FILE *f, const cr_label_report *r) {
    fprintf(f, "teacher features: %d (%d from columns, %d constant, %d defaulted = %.1f%%)\n",
            r->n_features, r->n_column, r->n_constant, r->n_defaulted,
            100.0 * r->defaulted_share);
    fprintf(f, "  %-20s %-11s %-9s %-20s %8s %8s\n", "feature", "type", "source", "from",
            "empty", "OOV");
    for (int i = 0; i < r->n_features; i++) {
        const cr_label_feature *x = &r->features[i];
        char empty[16] = "-", oov[16] = "-";
        if (x->source != CR_MAP_DEFAULT && r->rows)
            snprintf(empty, sizeof empty, "%.1f%%", 100.0 * (double)x->empty / (double)r->rows);
        if (x->source != CR_MAP_DEFAULT && x->vocab && x->values)
            snprintf(oov, sizeof oov, "%.1f%%", 100.0 * (double)x->oov / (double)x->values);
        fprintf(f, "  %-20s %-11s %-9s %-20s %8s %8s\n", x->feature,
                cr_feat_kind_names[x->kind], cr_map_source_names[x->source],
                x->source == CR_MAP_DEFAULT ? "" : x->from, empty, oov);
    }
}

int cr_cli_label(int argc, char **argv) {
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'T'}, {"map", required_argument, 0, 'M'},
        {"data", required_argument, 0, 'd'},    {"out", required_argument, 0, 'o'},
        {"coverage", required_argument, 0, 'c'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    cr_label_opts o;
    memset(&o, 0, sizeof o);
    long long batch = 1024, threads = 0;
    int quiet = 0, ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'T': o.teacher = optarg; break;
        case 'M': o.map = optarg; break;
        case 'd': o.data = optarg; break;
        case 'o': o.out = optarg; break;
        case 'c': o.coverage = optarg; break;
        case 'b': if (cr_cli_int("label", "--batch", optarg, 1, 1 << 20, &batch)) return 2; break;
        case 't': if (cr_cli_int("label", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec label: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o.teacher || !o.map || !o.data || !o.out) {
        fprintf(stderr, "crossrec label: --teacher, --map, --data and --out are required (see --help)\n");
        return 2;
    }
    cr_set_threads((int)threads);
    o.batch = (int)batch;
    o.dist = cr_cli_dist();
    int rank = cr_dist_rank(o.dist);
    o.progress = quiet || rank ? NULL : stderr;
    cr_error e = {0};
    cr_label_report r;
    if (cr_distill_label(&o, &r, &e)) return cr_cli_fail("label", &e);
    if (rank) { /* rank 0 speaks for the job */
        cr_label_report_free(&r);
        return 0;
    }
    if (!quiet) print_coverage(stderr, &r);
    fprintf(stderr, "labelled %lld rows into %s (%d teacher tasks, %.1f s)\n", (long long)r.rows,
            strcmp(o.out, "-") ? o.out : "standard output", r.n_tasks, r.seconds);
    cr_label_report_free(&r);
    return 0;
}
