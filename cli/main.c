/*
 * main.c - the `crossrec` command: dispatches subcommands. The only place
 * in crossrec, with the rest of cli/, that prints errors for people and
 * exits.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} cr_cmd;

static const cr_cmd cmds[] = {
    {"train", cr_cli_train, "train a ranker from a YAML config"},
    {"eval", cr_cli_eval, "metrics of a saved ranker on a data split"},
    {"score", cr_cli_score, "score a CSV/TSV with a saved ranker"},
    {"serve", cr_cli_serve, "serve a saved ranker over HTTP (JSON)"},
    {"inspect", cr_cli_inspect, "tensors and metadata of a checkpoint"},
    {"synth", cr_cli_synth, "write a synthetic two-domain log with known structure"},
    {"experiment", cr_cli_experiment, "run a distillation study: results.json and report.html"},
    {"label", cr_cli_label, "write a frozen teacher's predictions as soft-label columns"},
    {"export", cr_cli_export, "drop never-served (distillation) heads for serving"},
    {"tokenize", cr_cli_tokenize, "text to token ids and back (GPT-2 BPE, llama2.c tokenizer.bin)"},
    {"lm", cr_cli_lm, "generate tokens with a decoder language model"},
    {"ilm", cr_cli_ilm, "item-language model: CF embeddings (ilm mf)"},
    {"movielens", cr_cli_movielens, "turn MovieLens ratings into ranking impressions"},
    {"cpu", cr_cli_cpu, "the CPU's features and the kernel set chosen"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: crossrec <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-10s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "  %-10s %s\n", "version", "print the version");
    fprintf(f, "\nRun 'crossrec <command> --help' for a command's options and defaults.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
        printf("crossrec %s\n", CR_VERSION);
        cr_kernels_print(stdout);
        return 0;
    }
    /* A forced kernel set this CPU cannot run is refused here, by name,
     * before any kernel runs (the library would fall back with a warning). */
    cr_error e = {0};
    if (cr_kernels_check(&e) != CR_OK) {
        fprintf(stderr, "crossrec: %s\n", e.msg);
        return 2;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "crossrec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
