/*
 * cmd_label.c - `crossrec label`: a frozen source-domain teacher labels a
 * target-domain CSV through a map file; its predictions become soft-label
 * columns. Prints the coverage table (how much of the teacher's input the
 * target could fill) on stderr.
 */
#include "cli.h"

#include <cJSON.h>
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

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The coverage table from cr_label's report (its JSON, docs/distillation.md). */
static void print_coverage(FILE *f, const cJSON *r) {
    double rows = num(r, "rows");
    fprintf(f, "teacher features: %.0f (%.0f from columns, %.0f constant, %.0f defaulted = %.1f%%)\n",
            num(r, "features"), num(r, "features_from_columns"), num(r, "features_constant"),
            num(r, "features_defaulted"), 100.0 * num(r, "defaulted_share"));
    fprintf(f, "  %-20s %-11s %-9s %-20s %8s %8s\n", "feature", "type", "source", "from",
            "empty", "OOV");
    const cJSON *x;
    cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r, "per_feature")) {
        int dflt = !strcmp(str(x, "source"), "default");
        char empty[16] = "-", oov[16] = "-";
        if (!dflt && rows > 0) snprintf(empty, sizeof empty, "%.1f%%", 100.0 * num(x, "empty_share"));
        if (!dflt && cJSON_GetObjectItemCaseSensitive(x, "oov_rate") && num(x, "values") > 0)
            snprintf(oov, sizeof oov, "%.1f%%", 100.0 * num(x, "oov_rate"));
        fprintf(f, "  %-20s %-11s %-9s %-20s %8s %8s\n", str(x, "feature"), str(x, "type"),
                str(x, "source"), str(x, "from"), empty, oov);
    }
}

int cr_cli_label(int argc, char **argv) {
    static const struct option opts[] = {
        {"teacher", required_argument, 0, 'T'}, {"map", required_argument, 0, 'M'},
        {"data", required_argument, 0, 'd'},    {"out", required_argument, 0, 'o'},
        {"coverage", required_argument, 0, 'c'}, {"batch", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    cr_label_args o;
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
    o.batch = (int)batch;
    const cr_dist *dist = cr_cli_dist();
    int rank = cr_dist_rank(dist);
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = (int)threads;
    cp.quiet = quiet || rank;
    cp.dist = dist;
    cr_error e = {0};
    cr_ctx *ctx = NULL;
    char *json = NULL;
    cr_status s = cr_ctx_new(&ctx, &cp, &e);
    if (!s) s = cr_label(ctx, &o, &json, &e);
    cr_ctx_free(ctx);
    if (s) return cr_cli_fail("label", &e);
    cJSON *r = rank ? NULL : cJSON_Parse(json); /* rank 0 speaks for the job */
    cr_free(json);
    if (!r) return 0;
    if (!quiet) print_coverage(stderr, r);
    fprintf(stderr, "labelled %.0f rows into %s (%d teacher tasks, %.1f s)\n", num(r, "rows"),
            strcmp(o.out, "-") ? o.out : "standard output",
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "teacher_tasks")),
            num(r, "seconds"));
    cJSON_Delete(r);
    return 0;
}
