/*
 * generate.c - continue a text prompt with a decoder language model and its
 * tokenizer, through the public API only.
 *
 *   cc generate.c $(pkg-config --cflags --libs crossrec) -o generate
 *   ./generate MODEL TOKENIZER "Emma was" [N_TOKENS]
 */
#include <crossrec.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL TOKENIZER PROMPT [N_TOKENS]\n", argv[0]);
        return 2;
    }
    cr_error e = {0};
    cr_lm_load_opts lo;
    cr_lm_load_opts_init(&lo);
    lo.tokenizer = argv[2];
    cr_lm *lm;
    if (cr_lm_load(&lm, argv[1], &lo, &e)) {
        fprintf(stderr, "generate: %s\n", e.msg);
        return 1;
    }
    cr_gen_opts g;
    cr_gen_opts_init(&g);
    g.n_tokens = argc > 4 ? atoi(argv[4]) : 32;
    g.temperature = 0.8f;
    g.top_k = 40;
    g.seed = 7;
    char *text;
    if (cr_lm_generate(NULL, lm, argv[3], &g, &text, &e)) {
        fprintf(stderr, "generate: %s\n", e.msg);
        cr_lm_free(lm);
        return 1;
    }
    printf("%s%s\n", argv[3], text);
    cr_free(text);
    cr_lm_free(lm);
    return 0;
}
