/*
 * cmd_encode.c - `crossrec encode`: CSV/TSV rows as the inputs of the ONNX
 * graph `crossrec export --format onnx` writes, encoded by the model's own
 * schema, so a serving stack can check its encoder (and tests can feed
 * ONNX Runtime exactly what crossrec scores).
 */
#include "cli.h"

#include <getopt.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec encode --model FILE.safetensors --data IN.csv --out OUT.safetensors\n"
            "\n"
            "Encodes every row of IN with the model's vocabularies into the inputs of\n"
            "its exported ONNX graph, one tensor per graph input under the input's name\n"
            "(int64 ids; multi features int64 ids padded with 0 and a float mask;\n"
            "numeric and bucketized features float64 as read, NaN where empty), rows\n"
            "in input order. docs/formats.md describes them.\n"
            "  --model FILE   the trained or exported model (required)\n"
            "  --data FILE    rows with the model's feature columns (required)\n"
            "  --out FILE     the tensors as safetensors, written atomically (required)\n"
            "  --help         this text\n");
}

int cr_cli_encode(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"data", required_argument, 0, 'd'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *data = NULL, *out = NULL;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec encode: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !data || !out) {
        fprintf(stderr, "crossrec encode: --model, --data and --out are required (see --help)\n");
        return 2;
    }
    cr_error e = {0};
    int64_t n = 0;
    if (cr_encode_csv(model, data, out, &n, &e)) return cr_cli_fail("encode", &e);
    fprintf(stderr, "encoded %lld rows of %s into %s\n", (long long)n, data, out);
    return 0;
}
