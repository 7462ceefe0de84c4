/*
 * serve_request.c - score one serving request in-process: one context (the
 * user's side) and several candidates, ranked best first, through the
 * public API only.
 *
 *   cc serve_request.c $(pkg-config --cflags --libs crossrec) -o serve_request
 *   ./serve_request MODEL.safetensors "col=value,col=value" CANDIDATE_COLUMN v1 v2 ...
 *
 * The candidate column's input varies per candidate; every other input is
 * the context's (missing when the context does not name it).
 */
#include <crossrec.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of column col in "a=1,b=2" (copied into buf), or "". */
static const char *lookup(const char *spec, const char *col, char *buf, size_t cap) {
    size_t n = strlen(col);
    for (const char *s = spec; s && *s;) {
        const char *end = strchr(s, ',');
        size_t len = end ? (size_t)(end - s) : strlen(s);
        if (len > n && !strncmp(s, col, n) && s[n] == '=') {
            snprintf(buf, cap, "%.*s", (int)(len - n - 1), s + n + 1);
            return buf;
        }
        s = end ? end + 1 : NULL;
    }
    return "";
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s MODEL \"col=value,...\" CANDIDATE_COLUMN v1 [v2 ...]\n", argv[0]);
        return 2;
    }
    cr_error e = {0};
    cr_model *m;
    if (cr_model_load(&m, argv[1], &e)) {
        fprintf(stderr, "serve_request: %s\n", e.msg);
        return 1;
    }
    int ni = cr_model_n_inputs(m), no = cr_model_n_outputs(m), nc = argc - 4, cand_in = -1;
    const char **context = calloc((size_t)ni, sizeof *context);
    const char **cands = calloc((size_t)ni * (size_t)nc, sizeof *cands);
    char (*bufs)[256] = calloc((size_t)ni, sizeof *bufs);
    float *scores = calloc((size_t)nc * (size_t)no, sizeof *scores), *ranking = calloc((size_t)nc, sizeof *ranking);
    int64_t *order = calloc((size_t)nc, sizeof *order);
    if (!context || !cands || !bufs || !scores || !ranking || !order) return 1;
    for (int i = 0; i < ni; i++) {
        const char *col = cr_model_input_column(m, i);
        if (!strcmp(col, argv[3])) {
            cand_in = i;
            context[i] = NULL; /* a candidate input */
            for (int c = 0; c < nc; c++) cands[(size_t)c * ni + i] = argv[4 + c];
        } else {
            context[i] = lookup(argv[2], col, bufs[i], sizeof bufs[i]);
        }
    }
    int rc = 0;
    cr_request rq = {.context = context, .n_candidates = nc, .candidates = cands};
    cr_response rs = {.scores = scores, .ranking = ranking, .order = order};
    if (cand_in < 0) {
        fprintf(stderr, "serve_request: the model has no input reading column '%s'\n", argv[3]);
        rc = 2;
    } else if (cr_model_score_request(m, &rq, &rs, &e)) {
        fprintf(stderr, "serve_request: %s\n", e.msg);
        rc = 1;
    }
    for (int r = 0; !rc && r < nc; r++) {
        int64_t c = order[r];
        printf("%d %s %.6f", r + 1, argv[4 + c], ranking[c]);
        for (int k = 0; k < no; k++) printf(" %s=%.6f", cr_model_output_name(m, k), scores[c * no + k]);
        printf("\n");
    }
    free(context);
    free(cands);
    free(bufs);
    free(scores);
    free(ranking);
    free(order);
    cr_model_free(m);
    return rc;
}
