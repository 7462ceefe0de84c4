/*
 * cmd_export.c - `crossrec export`: the model for serving, without its
 * never-served (distillation) heads. Served scores stay bit-identical.
 */
#include "cli.h"

#include "../src/rank/checkpoint.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec export --model IN.safetensors --out OUT.safetensors\n"
            "\n"
            "Writes IN without every never-served head (parameters and config) and\n"
            "without training-only soft-label blends: what is served, and nothing else.\n"
            "  --model FILE   the trained model (required)\n"
            "  --out FILE     the exported model, written atomically (required)\n"
            "  --help         this text\n");
}

int cr_cli_export(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *in = NULL, *out = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': in = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec export: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!in || !out) {
        fprintf(stderr, "crossrec export: --model and --out are required (see --help)\n");
        return 2;
    }
    if (!strcmp(in, out)) {
        fprintf(stderr, "crossrec export: --out must differ from --model\n");
        return 2;
    }
    cr_error e = {0};
    int dropped = 0;
    if (cr_ranker_export(in, out, &dropped, &e)) return cr_cli_fail("export", &e);
    fprintf(stderr, "exported %s to %s (%d never-served head%s dropped)\n", in, out, dropped,
            dropped == 1 ? "" : "s");
    return 0;
}
