/*
 * cli.h - the subcommands of the crossrec command and the helpers they
 * share. Only code under cli/ prints errors for people and exits.
 */
#ifndef CR_CLI_H
#define CR_CLI_H

#include "crossrec.h"

#include <stdio.h>

int cr_cli_train(int argc, char **argv);
int cr_cli_eval(int argc, char **argv);
int cr_cli_score(int argc, char **argv);
int cr_cli_inspect(int argc, char **argv);
int cr_cli_movielens(int argc, char **argv);
int cr_cli_impressions(int argc, char **argv);
int cr_cli_ilm(int argc, char **argv);
int cr_cli_lm(int argc, char **argv);
int cr_cli_serve(int argc, char **argv);
int cr_cli_synth(int argc, char **argv);
int cr_cli_experiment(int argc, char **argv);
int cr_cli_label(int argc, char **argv);
int cr_cli_export(int argc, char **argv);
int cr_cli_encode(int argc, char **argv);
int cr_cli_tokenize(int argc, char **argv);
int cr_cli_cpu(int argc, char **argv);
int cr_cli_config(int argc, char **argv);

/* The job this process runs in (MPI ranks, or a job of one). */
const cr_dist *cr_cli_dist(void);
/* Re-executes the program once with OMP_WAIT_POLICY=passive unless the user
 * set OMP_WAIT_POLICY or GOMP_SPINCOUNT (see util.c); returns otherwise. */
void cr_cli_wait_policy(char **argv);
/* The closest of names[0..n) to a mistyped word (edit distance at most 1-3
 * by its length), or NULL: the "did you mean" of commands and options. */
const char *cr_cli_suggest(const char *word, const char *const *names, int n);
/* getopt_long for every subcommand: an unknown --option also gets a "did
 * you mean --X?" line on stderr when one of opts is close. */
struct option;
int cr_cli_getopt(int argc, char **argv, const char *shortopts, const struct option *opts);
/* "crossrec CMD: message" on stderr ("crossrec CMD: rank R: message" in a
 * job of several); returns 1 (the exit status). */
int cr_cli_fail(const char *cmd, const cr_error *e);
/* Parse a whole-string integer / number option or complain. */
int cr_cli_int(const char *cmd, const char *opt, const char *s, long long lo, long long hi,
               long long *out);
int cr_cli_num(const char *cmd, const char *opt, const char *s, double lo, double hi,
               double *out);
/* Print a metrics.json document as a table (one line per task). */
void cr_cli_print_metrics(FILE *f, const char *json);

#endif
