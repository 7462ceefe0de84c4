/*
 * cmd_impressions.c - `crossrec impressions`: builds the impressions CSV from
 * any interaction log described in YAML and prints what it wrote. Parsing
 * and printing only; the work is cr_impressions_cfg_load and cr_impressions.
 */
#include "cli.h"

#include <getopt.h>
#include <stdio.h>

static void cr_imp_usage(FILE *f) {
    fprintf(f,
            "usage: crossrec impressions --config FILE --out FILE\n"
            "\n"
            "Turns any interaction log (user, item, time, optional rating, item and user\n"
            "attribute files) into a ranking impression log with MovieLens' protocol: every\n"
            "event of the domain is a request with its item (click=1) and K items the user\n"
            "never had (click=0), features from the past only, a time split and labels from\n"
            "expressions. The YAML names the files, columns, protocol and labels; every key\n"
            "and default is in docs/config-reference.md, the guide in docs/impressions.md.\n"
            "\n"
            "  --config FILE   the log description (YAML; relative paths from its directory)\n"
            "  --out FILE      the impressions CSV (directories are created)\n"
            "  -h, --help      this help\n");
}

static void cr_imp_print_stats(const char *out, const cr_impressions_stats *st) {
    static const char *const split[3] = {"train", "valid", "test"};
    printf("read %lld events, %lld items in the catalogue; %lld in the domain\n",
           (long long)st->events, (long long)st->catalogue, (long long)st->domain_events);
    if (st->hidden_events)
        printf("strict: %lld events of excluded items never read\n", (long long)st->hidden_events);
    printf("wrote %s: %lld requests, %lld rows, %lld users, %lld items (%lld candidates)\n", out,
           (long long)st->requests, (long long)st->rows, (long long)st->users,
           (long long)st->items, (long long)st->pool);
    for (int i = 0; i < 3; i++)
        printf("  %-5s %lld requests, %lld rows\n", split[i], (long long)st->requests_split[i],
               (long long)st->rows_split[i]);
    printf("cut-offs: valid from timestamp %lld, test from %lld\n", (long long)st->t_valid,
           (long long)st->t_test);
    if (st->dropped) printf("dropped %lld training requests (keep_fraction)\n", (long long)st->dropped);
    printf("positives: new_release %.4f\n", st->new_release_rate);
    for (int l = 0; l < st->n_labels && l < CR_IMPRESSIONS_MAX_LABELS; l++)
        printf("  label %-16s mean %.4f over %lld positives where defined\n", st->label[l],
               st->label_mean[l], (long long)st->label_defined[l]);
}

int cr_cli_impressions(int argc, char **argv) {
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *out = NULL, *cmd = "impressions";
    optind = 1;
    opterr = 0; /* our own messages, with the command's name */
    int c;
    while ((c = cr_cli_getopt(argc, argv, ":h", longopts)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'h': cr_imp_usage(stdout); return 0;
        case ':':
            fprintf(stderr, "crossrec impressions: %s needs a value\n", argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "crossrec impressions: unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec impressions: unexpected argument '%s' (see --help)\n",
                argv[optind]);
        return 1;
    }
    if (!config || !out) {
        fprintf(stderr, "crossrec impressions: --config and --out are required (see --help)\n");
        return 1;
    }
    cr_error e = {0};
    cr_impressions_cfg *cfg = NULL;
    if (cr_impressions_cfg_load(&cfg, config, &e) != CR_OK) return cr_cli_fail(cmd, &e);
    cr_impressions_stats st;
    cr_status s = cr_impressions(NULL, cfg, out, &st, &e);
    cr_impressions_cfg_free(cfg);
    if (s != CR_OK) return cr_cli_fail(cmd, &e);
    cr_imp_print_stats(out, &st);
    return 0;
}
