/*
 * cmd_eval.c - `crossrec eval`: metrics of a saved ranker on a split of
 * the data its config names (or another file with the same columns).
 */
#include "cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec eval --model FILE.safetensors --config FILE.yaml [options]\n"
            "\n"
            "Scores a split with a saved model and prints per-task metrics.\n"
            "  --model FILE    the checkpoint (required)\n"
            "  --config FILE   the config naming the data, split and eval settings (required)\n"
            "  --data FILE     evaluate this CSV/TSV instead of the config's data.path\n"
            "  --split NAME    test | valid | train [test]\n"
            "  --out FILE      also write the metrics as JSON\n"
            "  --threads N     threads, 0 = the usable CPUs [0]\n"
            "  --help          this text\n");
}

int cr_cli_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"config", required_argument, 0, 'c'},
        {"data", required_argument, 0, 'd'},  {"split", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},   {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *config = NULL, *data = NULL, *out = NULL, *split = "test";
    long long threads = 0;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'c': config = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'o': out = optarg; break;
        case 't': if (cr_cli_int("eval", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec eval: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !config) {
        fprintf(stderr, "crossrec eval: --model and --config are required (see --help)\n");
        return 2;
    }
    if (strcmp(split, "test") && strcmp(split, "valid") && strcmp(split, "train")) {
        fprintf(stderr, "crossrec eval: --split expects test, valid or train, got '%s'\n", split);
        return 2;
    }
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.threads = (int)threads;
    cr_error e = {0};
    cr_ctx *ctx = NULL;
    char *txt = NULL;
    if (cr_ctx_new(&ctx, &cp, &e) || cr_evaluate(ctx, model, config, data, split, &txt, &e) ||
        (out && cr_write_file_atomic(out, txt, strlen(txt), &e))) {
        cr_free(txt);
        cr_ctx_free(ctx);
        return cr_cli_fail("eval", &e);
    }
    cr_cli_print_metrics(stdout, txt);
    cr_free(txt);
    cr_ctx_free(ctx);
    return 0;
}
