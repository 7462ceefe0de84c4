/*
 * synth.h - a generator of two-domain impression logs with known structure:
 * users with latent tastes shared by both domains, disjoint (or partly
 * shared) catalogues, a traffic ratio, features only the source logs, related
 * but different tasks, label noise, popularity skew and new releases. It
 * streams rows to CSV in the trainer's format and never holds the log in
 * memory. See docs/experiment.md for the generative model.
 */
#ifndef CR_DATA_SYNTH_H
#define CR_DATA_SYNTH_H

#include "../core/core.h"

#define CR_SYNTH_MAX_SIGNALS 8

typedef struct cr_synth_domain {
    char    name[32];        /* file stem: <name>.csv */
    int64_t requests;        /* requests in the whole period */
    int     items;           /* catalogue size */
    int     candidates;      /* impressions per request */
    double  click_bias;      /* intercept of the click logit */
    double  specific;        /* weight of the domain's own taste component (0 = none) */
    double  catalogue;       /* share of items already released on day 0 */
} cr_synth_domain;

typedef struct cr_synth_cfg {
    uint64_t seed;
    int      users;
    int      dim;               /* taste dimensions */
    int      genres;
    double   days;              /* length of the logged period */
    double   valid, test;       /* latest shares of requests, by time */
    double   label_noise;       /* std of the Gaussian noise on every logit */
    double   popularity_skew;   /* Zipf exponent of item exposure */
    double   new_release_days;  /* an item younger than this is a new release */
    double   new_release_boost; /* exposure multiplier of new releases */
    double   item_overlap;      /* share of target items that are source items */
    int      user_signals;      /* source-only user features (noisy views of the taste) */
    cr_synth_domain source, target;
} cr_synth_cfg;

typedef struct cr_synth_stats {
    int64_t requests[2], rows[2];          /* [0] source, [1] target */
    int64_t split_rows[2][3];              /* train, valid, test */
    int64_t clicks[2];
    int64_t new_release_rows[2];
    int64_t shared_items;                  /* target items that are source items */
    double  seconds;
} cr_synth_stats;

/* Defaults (a small 100x study): 2,000 users, dim 8, 16 genres, 360 days,
 * valid/test 0.1/0.1, noise 0.5, skew 1.0, new releases 30 days boosted 3x,
 * no overlap, 2 signals; source 100,000 requests over 4,000 items, target
 * 1,000 requests over 400 items with specific 0.5, 5 candidates each. */
void cr_synth_defaults(cr_synth_cfg *c);
/* Read a synth YAML (keys as the struct; `source:` and `target:` maps);
 * absent keys keep the defaults. Errors name file:line:col and the field. */
cr_status cr_synth_cfg_load(cr_synth_cfg *c, const char *path, cr_error *e);
/* Check ranges and cross-field rules (enough released items for a request). */
cr_status cr_synth_check(const cr_synth_cfg *c, cr_error *e);

/* Write out_dir/<source>.csv and out_dir/<target>.csv (atomically, streamed)
 * and fill st (may be NULL). log (may be NULL) gets a progress line per
 * million rows. Same config and seed, same bytes. */
cr_status cr_synth_write(const cr_synth_cfg *c, const char *out_dir, FILE *log,
                         cr_synth_stats *st, cr_error *e);

#endif /* CR_DATA_SYNTH_H */
