/*
 * main.c - the `crossrec` command: dispatches subcommands. The only place
 * in crossrec, with the rest of cli/, that prints errors for people and
 * exits.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
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
    {"encode", cr_cli_encode, "rows as the inputs of an exported ONNX graph"},
    {"tokenize", cr_cli_tokenize, "text to token ids and back (GPT-2 BPE, llama2.c tokenizer.bin)"},
    {"lm", cr_cli_lm, "decoder language models: generate, train, eval"},
    {"ilm", cr_cli_ilm, "item-language model: mf, phase1, phase2, eval, study, chat"},
    {"movielens", cr_cli_movielens, "turn MovieLens ratings into ranking impressions"},
    {"impressions", cr_cli_impressions, "turn any interaction log (described in YAML) into impressions"},
    {"cpu", cr_cli_cpu, "the CPU's features and the kernel set chosen"},
    {"config", cr_cli_config, "every config key with its default (--defaults, --reference)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: crossrec [--kernels SET] <command> [options]\n\n"
               "  --kernels SET  the kernel set of every command: scalar, avx2, avx512,\n"
               "                 avx512bf16, neon or auto (the same as CROSSREC_ISA=SET) [auto]\n"
               "\ncommands:\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].help);
    fprintf(f, "  %-11s %s\n", "version", "print the version");
    fprintf(f, "\nRun 'crossrec <command> --help' for a command's options and defaults.\n");
}

static cr_dist *g_dist; /* the job this process belongs to (one process without MPI) */

const cr_dist *cr_cli_dist(void) { return g_dist; }

/* A command's status under MPI: a rank that failed ends the whole job with
 * its own status (its message is already on stderr, naming the rank), so
 * no other rank waits forever in a collective. */
static int finish(int rc) {
    if (rc && cr_dist_size(g_dist) > 1) cr_dist_abort(g_dist, rc);
    cr_dist_finalize(g_dist);
    return rc;
}

static int dispatch(int argc, char **argv) {
    /* --kernels SET before the command sets the process's kernel set, as
     * CROSSREC_ISA does (checked below with it, before any kernel runs) */
    if (argc >= 2 && !strncmp(argv[1], "--kernels", 9)) {
        const char *set = NULL;
        int used = 0;
        if (!strcmp(argv[1], "--kernels") && argc >= 3) set = argv[2], used = 2;
        else if (!strncmp(argv[1], "--kernels=", 10)) set = argv[1] + 10, used = 1;
        if (!set || !*set) {
            fprintf(stderr, "crossrec: --kernels needs a set: scalar, avx2, avx512, avx512bf16, "
                            "neon or auto\n");
            return 2;
        }
        if (setenv("CROSSREC_ISA", set, 1)) {
            fprintf(stderr, "crossrec: --kernels %s: cannot set CROSSREC_ISA\n", set);
            return 2;
        }
        argv[used] = argv[0];
        argv += used;
        argc -= used;
    }
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
    const char *names[sizeof cmds / sizeof cmds[0] + 1];
    size_t n = 0;
    for (; n < sizeof cmds / sizeof cmds[0]; n++) names[n] = cmds[n].name;
    names[n++] = "version";
    const char *near = cr_cli_suggest(argv[1], names, (int)n);
    fprintf(stderr, "crossrec: unknown command '%s'", argv[1]);
    if (near) fprintf(stderr, "; did you mean '%s'?\n", near);
    else {
        fprintf(stderr, "\n");
        usage(stderr);
    }
    return 2;
}

int main(int argc, char **argv) {
    cr_cli_wait_policy(argv); /* before anything starts OpenMP or MPI */
    cr_error e = {0};
    if (cr_dist_init(&g_dist, &argc, &argv, &e)) return cr_cli_fail("mpi", &e);
    return finish(dispatch(argc, argv));
}
