/*
 * movielens.c - MovieLens ratings -> ranking impressions (docs/movielens.md):
 * the options and names of `crossrec movielens`, and the adapter that reads
 * the MovieLens files into an interaction log and hands it to the one
 * impression builder (impressions.c) with MovieLens' labels and column
 * names. It computes no feature itself.
 */
#include "movielens.h"

#include <string.h>

void cr_ml_opts_default(cr_ml_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    cr_imp_opts d;
    cr_imp_opts_default(&d);
    o->negatives = d.negatives;
    o->protocol = d.protocol;
    o->seed = d.seed;
    o->valid_frac = d.valid_frac;
    o->test_frac = d.test_frac;
    o->history = d.history;
    o->keep_fraction = d.keep_fraction;
    o->return_days = d.return_days;
}

const char *cr_ml_protocol_name(cr_ml_protocol p) {
    return p == CR_ML_UNIFORM ? "uniform" : p == CR_ML_PERIOD ? "period" : "popularity";
}

const char *cr_ml_history_name(cr_ml_history h) {
    return h == CR_ML_HISTORY_ALL ? "all" : "domain";
}

cr_status cr_ml_protocol_parse(const char *s, cr_ml_protocol *out, cr_error *e) {
    if (!out) return cr_err(e, CR_ERR_ARG, "cr_ml_protocol_parse: out is NULL");
    if (s && !strcmp(s, "popularity")) *out = CR_ML_POPULARITY;
    else if (s && !strcmp(s, "uniform")) *out = CR_ML_UNIFORM;
    else if (s && !strcmp(s, "period")) *out = CR_ML_PERIOD;
    else
        return cr_err(e, CR_ERR_ARG, "protocol: expected popularity, uniform or period, got '%s'",
                      s ? s : "");
    return CR_OK;
}

cr_status cr_ml_history_parse(const char *s, cr_ml_history *out, cr_error *e) {
    if (!out) return cr_err(e, CR_ERR_ARG, "cr_ml_history_parse: out is NULL");
    if (s && !strcmp(s, "domain")) *out = CR_ML_HISTORY_DOMAIN;
    else if (s && !strcmp(s, "all")) *out = CR_ML_HISTORY_ALL;
    else return cr_err(e, CR_ERR_ARG, "history: expected all or domain, got '%s'", s ? s : "");
    return CR_OK;
}

/* MovieLens' labels, as a log description would write them
 * (examples/movielens/log.yaml holds the same five). */
static const cr_imp_label cr_ml_labels[] = {
    {"rating", "rating"},
    {"like", "rating >= 4"},
    {"engagement", "rating / 5"},
    {"discovery", "discovery"},
    {"genre_return", "category_return"},
};
enum { CR_ML_RATING, CR_ML_LIKE, CR_ML_ENGAGEMENT, CR_ML_DISCOVERY, CR_ML_RETURN, CR_ML_NLABELS };

/* The builder's options for o. */
static void cr_ml_imp_opts(const cr_ml_opts *o, cr_imp_opts *io) {
    cr_imp_opts_default(io);
    io->out_path = o->out_path;
    io->negatives = o->negatives;
    io->protocol = o->protocol;
    io->seed = o->seed;
    io->valid_frac = o->valid_frac;
    io->test_frac = o->test_frac;
    io->include_cat = o->include_genre;
    io->exclude_cat = o->exclude_genre;
    io->history = o->history;
    io->strict = o->strict;
    io->return_days = o->return_days;
    io->keep_fraction = o->keep_fraction;
    io->n_labels = CR_ML_NLABELS;
    memcpy(io->labels, cr_ml_labels, sizeof cr_ml_labels);
    io->colname[CR_IMP_COL_ITEM_ID] = "movie_id";
    io->colname[CR_IMP_COL_CATS] = "genres";
    io->colname[CR_IMP_COL_HIST_TOP] = "hist_top_genres";
    io->colname[CR_IMP_COL_OVERLAP] = "genre_overlap";
}

cr_status cr_ml_build(const cr_ml_opts *o, cr_ml_stats *stats, cr_error *e) {
    cr_ml_stats local;
    cr_ml_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (!o->in_dir || !*o->in_dir)
        return cr_err(e, CR_ERR_ARG, "in_dir: expected a directory, got none");
    cr_imp_opts io;
    cr_ml_imp_opts(o, &io);
    CR_TRY(cr_imp_opts_check(&io, e));
    cr_imp_log g;
    CR_TRY(cr_ml_log_load(&g, o->in_dir, &st->extra_movies, e));
    cr_impressions_stats is;
    cr_status s = cr_imp_build(&g, &io, &is, e);
    cr_imp_log_free(&g);
    if (s) return s;
    st->ratings = is.events;
    st->movies = is.catalogue;
    st->domain_ratings = is.domain_events;
    st->requests = is.requests;
    st->rows = is.rows;
    memcpy(st->requests_split, is.requests_split, sizeof st->requests_split);
    memcpy(st->rows_split, is.rows_split, sizeof st->rows_split);
    st->dropped = is.dropped;
    st->users = is.users;
    st->items = is.items;
    st->pool = is.pool;
    st->t_valid = is.t_valid;
    st->t_test = is.t_test;
    st->hidden_ratings = is.hidden_events;
    st->new_release_rate = is.new_release_rate;
    st->like_rate = is.label_mean[CR_ML_LIKE];
    st->mean_engagement = is.label_mean[CR_ML_ENGAGEMENT];
    st->discovery_rate = is.label_mean[CR_ML_DISCOVERY];
    st->return_rate = is.label_mean[CR_ML_RETURN];
    st->return_undefined = is.requests - is.label_defined[CR_ML_RETURN];
    return CR_OK;
}
