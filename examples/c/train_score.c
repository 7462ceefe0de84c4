/*
 * train_score.c - train a ranker from a YAML config, then load the model it
 * wrote and score one row, through the public API only.
 *
 *   cc train_score.c $(pkg-config --cflags --libs crossrec) -o train_score
 *   ./train_score CONFIG.yaml OUT_DIR [column=value ...]
 *
 * Columns the row does not name are missing (the schema's defaults).
 */
#include <crossrec.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const cr_error *e) {
    fprintf(stderr, "train_score: %s: %s\n", what, e->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG.yaml OUT_DIR [column=value ...]\n", argv[0]);
        return 2;
    }
    cr_error e = {0};
    cr_ctx_params p;
    cr_ctx_params_init(&p);
    p.threads = 1;
    p.quiet = 1;
    cr_ctx *ctx;
    if (cr_ctx_new(&ctx, &p, &e)) return fail("context", &e);

    cr_run *run;
    if (cr_train(ctx, argv[1], argv[2], NULL, &run, &e)) return fail("train", &e);
    printf("trained: %s\n", cr_run_model_path(run));

    cr_model *m;
    if (cr_model_load(&m, cr_run_model_path(run), &e)) return fail("load", &e);
    int ni = cr_model_n_inputs(m), no = cr_model_n_outputs(m);
    const char **row = calloc((size_t)ni, sizeof *row);
    float *scores = calloc((size_t)no, sizeof *scores);
    if (!row || !scores) return 1;
    for (int i = 0; i < ni; i++) {
        row[i] = "";
        const char *col = cr_model_input_column(m, i);
        for (int a = 3; a < argc; a++) {
            size_t n = strlen(col);
            if (!strncmp(argv[a], col, n) && argv[a][n] == '=') row[i] = argv[a] + n + 1;
        }
    }
    if (cr_model_score(m, 1, row, scores, &e)) return fail("score", &e);
    for (int k = 0; k < no; k++) printf("%s %.6f\n", cr_model_output_name(m, k), scores[k]);

    free(row);
    free(scores);
    cr_model_free(m);
    cr_run_free(run);
    cr_ctx_free(ctx);
    return 0;
}
