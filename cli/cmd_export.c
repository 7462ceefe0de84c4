/*
 * cmd_export.c - `crossrec export`: the model for serving, without its
 * never-served (distillation) heads, as safetensors (served scores stay
 * bit-identical) or as an ONNX graph with its vocabulary file.
 */
#include "cli.h"

#include <getopt.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec export --model IN.safetensors --out OUT [--format F]\n"
            "\n"
            "Writes IN without every never-served head (parameters and config) and\n"
            "without training-only soft-label blends: what is served, and nothing else.\n"
            "With --format onnx: an ONNX graph (opset 13, fp32) taking the features\n"
            "after vocabulary lookup and giving one output per served task, and beside\n"
            "it the vocabularies (docs/formats.md).\n"
            "  --model FILE   the trained model (required)\n"
            "  --out FILE     the exported model, written atomically (required)\n"
            "  --format F     safetensors or onnx [safetensors]\n"
            "  --vocab FILE   onnx: the vocabulary file [OUT without .onnx + .vocab.json]\n"
            "  --weights P    onnx: fp32, or bf16 (matrices and tables as bfloat16, each\n"
            "                 read through a Cast to float; biases fp32) [fp32]\n"
            "  --help         this text\n");
}

int cr_cli_export(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"out", required_argument, 0, 'o'},
                                         {"format", required_argument, 0, 'f'},
                                         {"vocab", required_argument, 0, 'v'},
                                         {"weights", required_argument, 0, 'w'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *in = NULL, *out = NULL, *format = "safetensors", *vocab = NULL,
               *weights = NULL;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': in = optarg; break;
        case 'o': out = optarg; break;
        case 'f': format = optarg; break;
        case 'v': vocab = optarg; break;
        case 'w': weights = optarg; break;
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
    int onnx = !strcmp(format, "onnx");
    if (!onnx && strcmp(format, "safetensors")) {
        fprintf(stderr, "crossrec export: --format must be safetensors or onnx, not '%s'\n",
                format);
        return 2;
    }
    if (vocab && (!strcmp(vocab, in) || !strcmp(vocab, out))) {
        fprintf(stderr, "crossrec export: --vocab must differ from --model and --out\n");
        return 2;
    }
    if ((vocab || weights) && !onnx) {
        fprintf(stderr, "crossrec export: --vocab and --weights go with --format onnx\n");
        return 2;
    }
    cr_precision prec = CR_PRECISION_FP32;
    if (weights && !strcmp(weights, "bf16")) prec = CR_PRECISION_BF16;
    else if (weights && strcmp(weights, "fp32")) {
        fprintf(stderr, "crossrec export: --weights must be fp32 or bf16, not '%s'\n", weights);
        return 2;
    }
    cr_error e = {0};
    int dropped = 0;
    if (onnx ? cr_export_onnx(in, out, vocab, prec, &dropped, &e)
             : cr_export(in, out, "safetensors", &dropped, &e))
        return cr_cli_fail("export", &e);
    fprintf(stderr, "exported %s to %s (%d never-served head%s dropped)\n", in, out, dropped,
            dropped == 1 ? "" : "s");
    return 0;
}
