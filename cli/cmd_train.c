/*
 * cmd_train.c - `crossrec train`: fit a ranker from a YAML config and
 * write the model, the config it used and metrics.json to --out.
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec train --config FILE.yaml --out DIR [options]\n"
            "\n"
            "Trains the ranker the config describes on its data and writes\n"
            "DIR/model.safetensors, DIR/config.yaml and DIR/metrics.json (validation\n"
            "and test metrics per task), plus DIR/last.safetensors (the checkpoint:\n"
            "weights and training state in one file) for --resume.\n"
            "\n"
            "options (defaults in brackets; they override the config's train section):\n"
            "  --config FILE     the YAML config (required)\n"
            "  --out DIR         output directory (required; created if missing)\n"
            "  --resume          continue from DIR/last.safetensors if present; a run\n"
            "                    that finished is left as it is [off]\n"
            "  --threads N       threads, 0 = the usable CPUs [config, else 0]\n"
            "  --seed S          random seed [config, else 1]\n"
            "  --epochs N        maximum epochs [config, else 10]\n"
            "  --max-steps N     stop after N steps, 0 = no limit [config, else 0]\n"
            "  --quiet           no progress output\n"
            "  --help            this text\n");
}

int cr_cli_train(int argc, char **argv) {
    static const struct option opts[] = {
        {"config", required_argument, 0, 'c'}, {"out", required_argument, 0, 'o'},
        {"resume", no_argument, 0, 'r'},        {"threads", required_argument, 0, 't'},
        {"seed", required_argument, 0, 's'},    {"epochs", required_argument, 0, 'e'},
        {"max-steps", required_argument, 0, 'm'}, {"quiet", no_argument, 0, 'q'},
        {"stop-after-steps", required_argument, 0, 'K'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *config = NULL, *out = NULL;
    int resume = 0, quiet = 0;
    long long threads = -1, seed = -1, epochs = -1, max_steps = -1, stop_after = 0;
    optind = 1;
    int ch;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'c': config = optarg; break;
        case 'o': out = optarg; break;
        case 'r': resume = 1; break;
        case 'q': quiet = 1; break;
        case 't': if (cr_cli_int("train", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 's': if (cr_cli_int("train", "--seed", optarg, 0, INT64_MAX, &seed)) return 2; break;
        case 'e': if (cr_cli_int("train", "--epochs", optarg, 1, 100000, &epochs)) return 2; break;
        case 'm': if (cr_cli_int("train", "--max-steps", optarg, 0, INT64_MAX / 2, &max_steps)) return 2; break;
        case 'K': if (cr_cli_int("train", "--stop-after-steps", optarg, 1, INT64_MAX / 2, &stop_after)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec train: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!config || !out) {
        fprintf(stderr, "crossrec train: --config and --out are required (see --help)\n");
        return 2;
    }
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = (int)(threads > 0 ? threads : 0);
    cp.quiet = quiet;
    cr_train_opts to;
    cr_train_opts_init(&to);
    to.resume = resume;
    to.seed = seed;
    to.epochs = epochs > 0 ? (int)epochs : 0;
    to.max_steps = max_steps;
    cr_error e = {0};
    cr_ctx *ctx = NULL;
    cr_run *run = NULL;
    cp.dist = cr_cli_dist(); /* under mpirun: data-parallel over the job's ranks */
    if (cr_ctx_new(&ctx, &cp, &e)) return cr_cli_fail("train", &e);
    to.stop_after_steps = stop_after;
    cr_status s = cr_train(ctx, config, out, &to, &run, &e);
    cr_ctx_free(ctx);
    if (s) return cr_cli_fail("train", &e);
    if (cr_run_metrics_json(run)) { /* rank 0 speaks for the job */
        cr_cli_print_metrics(stdout, cr_run_metrics_json(run));
        if (cr_run_finished(run))
            printf("\n%s holds a finished run: nothing trained, nothing written\n", out);
        else
            printf("\nwrote %s and %s/metrics.json\n", cr_run_model_path(run), out);
    }
    cr_run_free(run);
    return 0;
}
