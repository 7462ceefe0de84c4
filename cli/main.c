/*
 * main.c - the `crossrec` command: dispatches subcommands. The only place
 * in crossrec that prints errors for people and exits.
 */
#include "crossrec.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec <command> [options]\n"
            "\n"
            "commands:\n"
            "  version    print the version\n"
            "\n"
            "Run 'crossrec <command> --help' for a command's options.\n");
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
    if (!strcmp(argv[1], "version")) {
        printf("crossrec %s\n", CR_VERSION);
        return 0;
    }
    fprintf(stderr, "crossrec: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
