/*
 * fuzz_util.h - what the libFuzzer harnesses of tests/fuzz share: the
 * input written to a file of this process (most loaders take paths), and
 * an abort that turns a broken property into a crash the fuzzer keeps.
 * Built only by `make fuzz` (clang, -fsanitize=fuzzer,address,undefined).
 */
#ifndef CR_FUZZ_UTIL_H
#define CR_FUZZ_UTIL_H

#include "../../src/core/core.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The path of this process's scratch file called tag (in /tmp). */
static inline const char *fuzz_path(const char *tag, char *buf, size_t cap) {
    snprintf(buf, cap, "/tmp/crossrec-fuzz-%ld-%s", (long)getpid(), tag);
    return buf;
}

/* Write d to this process's scratch file called tag; returns its path. */
static inline const char *fuzz_file(const char *tag, const uint8_t *d, size_t n, char *buf,
                                    size_t cap) {
    fuzz_path(tag, buf, cap);
    FILE *f = fopen(buf, "wb");
    if (!f) abort();
    if (n && fwrite(d, 1, n, f) != n) abort();
    fclose(f);
    return buf;
}

#define FUZZ_CHECK(cond)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

#endif
