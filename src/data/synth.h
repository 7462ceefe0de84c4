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

/* cr_synth_domain, cr_synth_cfg, cr_synth_stats, cr_synth_defaults and
 * cr_synth_cfg_load are public (crossrec.h). The defaults
 * (a small 100x study): 2,000 users, dim 8, 16 genres, 360 days,
 * valid/test 0.1/0.1, noise 0.5, skew 1.0, new releases 30 days boosted 3x,
 * no overlap, 2 signals; source 100,000 requests over 4,000 items, target
 * 1,000 requests over 400 items with specific 0.5, 5 candidates each. */
/* Check ranges and cross-field rules (enough released items for a request). */
cr_status cr_synth_check(const cr_synth_cfg *c, cr_error *e);

/* Write out_dir/<source>.csv and out_dir/<target>.csv (atomically, streamed)
 * and fill st (may be NULL). log (may be NULL) gets a progress line per
 * million rows. Same config and seed, same bytes. */
cr_status cr_synth_write(const cr_synth_cfg *c, const char *out_dir, FILE *log,
                         cr_synth_stats *st, cr_error *e);

#endif /* CR_DATA_SYNTH_H */
