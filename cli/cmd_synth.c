/*
 * cmd_synth.c - `crossrec synth`: write a synthetic source and target
 * domain (docs/experiment.md) as impression CSVs the trainer reads.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    cr_synth_cfg d;
    cr_synth_defaults(&d);
    fprintf(f,
            "usage: crossrec synth --out DIR [--config synth.yaml] [options]\n"
            "\n"
            "Writes DIR/<source>.csv and DIR/<target>.csv: two domains whose users share\n"
            "a latent taste, with the source holding --ratio times the target's traffic\n"
            "and logging user signals the target lacks. Same config and seed, same bytes.\n"
            "\n"
            "options (defaults in brackets; they override the config):\n"
            "  --config FILE        a synth YAML (keys: docs/experiment.md) [built-in defaults]\n"
            "  --out DIR            output directory (required; created if missing)\n"
            "  --seed S             random seed [%llu]\n"
            "  --source-requests N  source requests [%lld]\n"
            "  --target-requests N  target requests [%lld]\n"
            "  --quiet              no progress lines\n"
            "  --help               this text\n",
            (unsigned long long)d.seed, (long long)d.source.requests, (long long)d.target.requests);
}

int cr_cli_synth(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'},          {"out", required_argument, 0, 'o'},
        {"seed", required_argument, 0, 's'},            {"source-requests", required_argument, 0, 'S'},
        {"target-requests", required_argument, 0, 'T'}, {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},                  {0, 0, 0, 0}};
    const char *config = NULL, *out = NULL;
    long long seed = -1, sreq = 0, treq = 0;
    int quiet = 0, ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'q': quiet = 1; break;
        case 's': if (cr_cli_int("synth", "--seed", optarg, 0, INT64_MAX, &seed)) return 2; break;
        case 'S': if (cr_cli_int("synth", "--source-requests", optarg, 1, 1LL << 40, &sreq)) return 2; break;
        case 'T': if (cr_cli_int("synth", "--target-requests", optarg, 1, 1LL << 40, &treq)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec synth: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "crossrec synth: --out is required (see --help)\n");
        return 2;
    }
    cr_error e = {0};
    cr_synth_cfg c;
    cr_synth_defaults(&c);
    if (config && cr_synth_cfg_load(&c, config, &e)) return cr_cli_fail("synth", &e);
    if (seed >= 0) c.seed = (uint64_t)seed;
    if (sreq > 0) c.source.requests = sreq;
    if (treq > 0) c.target.requests = treq;
    cr_synth_stats st;
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.quiet = quiet;
    cr_ctx *ctx = NULL;
    cr_status s = cr_ctx_new(&ctx, &cp, &e);
    if (!s) s = cr_synth(ctx, &c, out, &st, &e);
    cr_ctx_free(ctx);
    if (s) return cr_cli_fail("synth", &e);
    const cr_synth_domain *d[2] = {&c.source, &c.target};
    printf("%-10s %10s %12s %10s %10s %10s %8s %12s\n", "domain", "requests", "rows", "train",
           "valid", "test", "CTR", "new_release");
    for (int i = 0; i < 2; i++)
        printf("%-10s %10lld %12lld %10lld %10lld %10lld %8.4f %12.4f\n", d[i]->name,
               (long long)st.requests[i], (long long)st.rows[i], (long long)st.split_rows[i][0],
               (long long)st.split_rows[i][1], (long long)st.split_rows[i][2],
               st.rows[i] ? (double)st.clicks[i] / (double)st.rows[i] : 0.0,
               st.rows[i] ? (double)st.new_release_rows[i] / (double)st.rows[i] : 0.0);
    printf("traffic ratio %.1f, %lld shared items, %.1f s\nwrote %s/%s.csv and %s/%s.csv\n",
           st.requests[1] ? (double)st.requests[0] / (double)st.requests[1] : 0.0,
           (long long)st.shared_items, st.seconds, out, c.source.name, out, c.target.name);
    return 0;
}
