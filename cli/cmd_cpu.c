/*
 * cmd_cpu.c - `crossrec cpu`: the CPU's model and instruction-set features,
 * every kernel set of this build with whether this CPU runs it, and the set
 * chosen (the best, or the one CROSSREC_ISA forces). Reads only.
 */
#include "cli.h"

#include <string.h>

int cr_cli_cpu(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: crossrec cpu\n"
               "\n"
               "Prints the CPU, the instruction-set features found, every kernel set\n"
               "with whether this CPU can run it, and the set chosen: the best one, or\n"
               "the one CROSSREC_ISA=scalar|avx2|avx512|avx512bf16|neon|auto forces.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "crossrec cpu: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    cr_kernels_print(stdout);
    return 0;
}
