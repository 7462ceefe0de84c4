/*
 * tiny_log.h - a small impression log (6 feature columns: categorical,
 * hashed, multi-valent, shared-table multi, bucketised, numeric; a binary
 * and a masked regression task) written into a test's temporary directory
 * with its config, then fitted: what the model-API, request and server
 * tests score. Test-only code.
 */
#ifndef CR_TINY_LOG_H
#define CR_TINY_LOG_H

#include "../../src/data/config.h"

#define CR_TINY_NI 6 /* feature columns, in feature order */

extern const char *const cr_tiny_cols[CR_TINY_NI]; /* user, item, tags, hist, age, pop */

typedef struct cr_tiny_log {
    char        dir[256], csv[512], cfg[512];
    int         n;
    char      (*text)[CR_TINY_NI][32]; /* (n) each row's feature fields */
    cr_data_cfg dc;
    cr_schema   s;                     /* fitted on the log's training split */
} cr_tiny_log;

/* Write n rows (fixed seed) and the config into a fresh temporary directory,
 * parse the config and fit the schema. 0 on success (a message on stderr
 * otherwise). */
int  cr_tiny_log_make(cr_tiny_log *t, int n);
void cr_tiny_log_free(cr_tiny_log *t); /* also removes the directory */

#endif
