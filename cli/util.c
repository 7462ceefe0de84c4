/*
 * util.c - helpers shared by the subcommands: error reporting, strict
 * number parsing (bad values are rejected, never clamped) and the metrics
 * table printed at the end of training and evaluation.
 */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* libgomp reads OMP_WAIT_POLICY and GOMP_SPINCOUNT in its constructor,
 * before main, and by default a waiting thread spins for a while before it
 * sleeps: on cores shared with another busy process that spinning steals the
 * time the working threads need (a 3-epoch training took 30 times longer).
 * So when the user set neither, run this same program again with
 * OMP_WAIT_POLICY=passive; the variable being set ends the recursion, and if
 * the exec fails we simply go on with the default policy. */
void cr_cli_wait_policy(char **argv) {
#ifdef _OPENMP
    if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
#else
    (void)argv;
#endif
}

/* Levenshtein distance of two short words (longer ones: a large number). */
static int edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63) return 1 << 20;
    int row[64];
    for (size_t j = 0; j <= m; j++) row[j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= m; j++) {
            int up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[m];
}

const char *cr_cli_suggest(const char *word, const char *const *names, int n) {
    const char *best = NULL;
    int bd = 1 << 20;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(word, names[i]);
        if (d < bd) {
            bd = d;
            best = names[i];
        }
    }
    int len = (int)strlen(word), limit = len < 4 ? 1 : len < 8 ? 2 : 3;
    return bd <= limit ? best : NULL;
}

int cr_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts) {
    int ch = getopt_long(argc, argv, shortopts, opts, NULL);
    if (ch == '?' && optopt == 0 && optind > 0 && optind <= argc &&
        !strncmp(argv[optind - 1], "--", 2)) {
        char word[64];
        snprintf(word, sizeof word, "%s", argv[optind - 1] + 2);
        word[strcspn(word, "=")] = 0;
        const char *names[128];
        int n = 0;
        for (const struct option *o = opts; o->name && n < 128; o++) names[n++] = o->name;
        const char *s = cr_cli_suggest(word, names, n);
        if (s) fprintf(stderr, "did you mean --%s?\n", s);
    }
    return ch;
}

int cr_cli_fail(const char *cmd, const cr_error *e) {
    const char *msg = e->msg[0] ? e->msg : cr_strerror(e->status);
    if (cr_dist_size(cr_cli_dist()) > 1)
        fprintf(stderr, "crossrec %s: rank %d: %s\n", cmd, cr_dist_rank(cr_cli_dist()), msg);
    else
        fprintf(stderr, "crossrec %s: %s\n", cmd, msg);
    return 1;
}

int cr_cli_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
               long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "crossrec %s: %s expects an integer in [%lld, %lld], got '%s'\n", cmd,
                opt, lo, hi, s);
        return 1;
    }
    *out = v;
    return 0;
}

int cr_cli_num(const char *cmd, const char *opt, const char *s, double lo, double hi,
               double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi) {
        fprintf(stderr, "crossrec %s: %s expects a number in [%g, %g], got '%s'\n", cmd, opt, lo,
                hi, s);
        return 1;
    }
    *out = v;
    return 0;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void print_split(FILE *f, const cJSON *split, const char *name) {
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(split, "tasks");
    if (!tasks) return;
    fprintf(f, "\n%s (%.0f rows)\n", name, num(split, "rows"));
    fprintf(f, "  %-14s %8s %8s %8s %8s %8s %8s %8s %10s\n", "task", "AUC", "GAUC", "logloss",
            "calib", "RMSE", "R2", "NDCG@k", "pop.AUC");
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "model");
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "baseline_popularity");
        fprintf(f, "  %-14s %8.4f %8.4f %8.4f %8.3f %8.4f %8.4f %8.4f %10.4f\n", t->string,
                num(m, "auc"), num(m, "gauc"), num(m, "logloss"), num(m, "calibration"),
                num(m, "rmse"), num(m, "r2"), num(m, "ndcg"), b ? num(b, "auc") : NAN);
        const cJSON *sl = cJSON_GetObjectItemCaseSensitive(t, "slices"), *q;
        cJSON_ArrayForEach(q, sl) {
            fprintf(f, "    %-12s %8.4f %8.4f %8.4f %8.3f %8.4f %8.4f %8.4f   (n=%.0f)\n",
                    q->string, num(q, "auc"), num(q, "gauc"), num(q, "logloss"),
                    num(q, "calibration"), num(q, "rmse"), num(q, "r2"), num(q, "ndcg"),
                    num(q, "n"));
        }
    }
}

void cr_cli_print_metrics(FILE *f, const char *json) {
    cJSON *root = cJSON_Parse(json);
    if (!root) return;
    print_split(f, cJSON_GetObjectItemCaseSensitive(root, "valid"), "validation");
    print_split(f, cJSON_GetObjectItemCaseSensitive(root, "test"), "test");
    print_split(f, cJSON_GetObjectItemCaseSensitive(root, "eval"), "evaluation");
    cJSON_Delete(root);
}
