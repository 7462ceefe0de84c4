/*
 * impressions.h - an interaction log in memory (users, items, timed events
 * with an optional rating, item categories, a release year and attributes)
 * and the one builder that turns it into a ranking impression log: a
 * request per event, sampled negatives, a time split, past-only features
 * and labels from expressions. Readers fill the log (the MovieLens adapter,
 * the YAML-described reader); only impressions.c computes a row.
 */
#ifndef CR_DATA_IMPRESSIONS_H
#define CR_DATA_IMPRESSIONS_H

#include "data.h"

#include <math.h>

#define CR_IMP_MAX_CATS   64 /* a category set is one uint64_t bit mask */
#define CR_IMP_MAX_ATTRS  16 /* attribute columns per side (items, users) */
#define CR_IMP_MAX_VALUES 16 /* numeric event columns for label expressions */
#define CR_IMP_MAX_LABELS 16
#define CR_IMP_NAME       64

/* All text (keys, category strings, attributes) lives in one arena and is
 * referred to by offset, because the arena moves when it grows. Offset 0
 * is the empty string. */
typedef struct cr_imp_arena {
    char  *buf;
    size_t len, cap;
} cr_imp_arena;

/* Open-addressing map from a key's text to a dense index; capacity stays a
 * power of two at most half full. */
typedef struct cr_imp_map {
    uint64_t *hash;
    int32_t  *vals; /* -1 = empty slot */
    size_t    cap, n;
} cr_imp_map;

typedef struct cr_imp_item {
    size_t   key;                    /* arena offset of the id as written out */
    int32_t  year;                   /* release year; 0 = unknown */
    uint64_t cats;                   /* bit per category id */
    size_t   cats_text;              /* the categories as read ("Comedy|Drama") */
    size_t   attr[CR_IMP_MAX_ATTRS]; /* arena offsets; 0 = empty */
} cr_imp_item;

typedef struct cr_imp_user {
    size_t key;
    size_t attr[CR_IMP_MAX_ATTRS];
} cr_imp_user;

typedef struct cr_imp_log {
    char         path[4096];       /* the events' file, for messages */
    char         items_path[4096]; /* the catalogue's file ("" = built from the events) */
    const char  *noun_event;       /* "rating" | "event" in messages */
    const char  *noun_item;        /* "movie" | "item" */
    const char  *noun_cat;         /* "genre" | "category" */
    cr_imp_arena text;
    cr_imp_map   item_map, user_map;
    int          n_cats;
    char         cat[CR_IMP_MAX_CATS][CR_IMP_NAME];
    int          cat_rank[CR_IMP_MAX_CATS]; /* alphabetical rank (cr_imp_log_finish) */
    int          n_item_attrs, n_user_attrs;
    char         item_attr[CR_IMP_MAX_ATTRS][CR_IMP_NAME]; /* output column names */
    char         user_attr[CR_IMP_MAX_ATTRS][CR_IMP_NAME];
    int          item_attr_hidden[CR_IMP_MAX_ATTRS]; /* kept for readers, never written */
    cr_imp_item *items;
    size_t       n_items, cap_items;
    cr_imp_user *users;
    size_t       n_users, cap_users;
    /* events in file order: the file order breaks timestamp ties */
    int32_t     *ev_user, *ev_item;
    int64_t     *ev_ts, *ev_line;
    double      *ev_rating; /* NaN = none */
    int          has_rating;
    int          n_values;
    char         value[CR_IMP_MAX_VALUES][CR_IMP_NAME];
    double      *ev_value; /* (n_events, n_values); NaN = empty */
    size_t       n_events, cap_events;
} cr_imp_log;

/* An empty log (the arena's offset 0 is ""); nouns default to the generic ones. */
cr_status cr_imp_log_init(cr_imp_log *g, cr_error *e);
void      cr_imp_log_free(cr_imp_log *g);
cr_status cr_imp_text(cr_imp_log *g, const char *s, size_t n, size_t *off, cr_error *e);
static inline const char *cr_imp_str(const cr_imp_log *g, size_t off) { return g->text.buf + off; }

/* A new catalogue item; *idx = -1 (and CR_OK) when the key is already
 * there, so the caller can name its line. */
cr_status cr_imp_item_add(cr_imp_log *g, const char *key, size_t n, int32_t *idx, cr_error *e);
int32_t   cr_imp_item_find(const cr_imp_log *g, const char *key, size_t n);
/* The user's index, adding the user on first sight. */
cr_status cr_imp_user_get(cr_imp_log *g, const char *key, size_t n, int32_t *idx, cr_error *e);
int32_t   cr_imp_user_find(const cr_imp_log *g, const char *key, size_t n);
/* The item's categories from a sep-joined text; `none` (may be NULL) is a
 * text meaning "no categories". where names file:line for messages. */
cr_status cr_imp_item_cats(cr_imp_log *g, int32_t item, const char *text, size_t n, char sep,
                           const char *none, const char *where, cr_error *e);
/* "Toy Story (1995)" -> 1995; 0 when the text does not end in "(dddd)". */
int32_t   cr_imp_title_year(const char *t, size_t n);
/* Append an event; values has g->n_values entries (NULL when none). */
cr_status cr_imp_event_add(cr_imp_log *g, int32_t user, int32_t item, int64_t ts, double rating,
                           int64_t line, const double *values, cr_error *e);
/* After the last event: category ranks, and the checks every reader shares. */
cr_status cr_imp_log_finish(cr_imp_log *g, cr_error *e);

/* ---- the builder ------------------------------------------------------------------ */

/* The output columns, in order; attribute and label columns are inserted
 * where their X-macro entries stand (USER_ATTRS, ITEM_ATTRS, LABELS). */
#define CR_IMP_COLUMNS(X)                                                                       \
    X(REQUEST_ID, "request_id") X(USER_ID, "user_id") X(ITEM_ID, "item_id")                    \
    X(TIMESTAMP, "timestamp") X(SPLIT, "split") X(HIST_COUNT, "hist_count")                    \
    X(HIST_MEAN, "hist_mean_rating") X(HIST_TOP, "hist_top_categories")                        \
    X(LAST_ITEMS, "last_items") X(DAYS_FIRST, "days_since_first") X(HOUR, "hour_of_day")       \
    X(DOW, "day_of_week") X(USER_ATTRS, "") X(CATS, "categories") X(YEAR, "year")              \
    X(ITEM_POP, "item_popularity") X(ITEM_MEAN, "item_mean_rating") X(ITEM_AGE, "item_age")    \
    X(ITEM_ATTRS, "") X(OVERLAP, "category_overlap") X(CLICK, "click") X(LABELS, "")           \
    X(NEW_RELEASE, "new_release")

enum {
#define CR_IMP_ENUM(id, name) CR_IMP_COL_##id,
    CR_IMP_COLUMNS(CR_IMP_ENUM)
#undef CR_IMP_ENUM
    CR_IMP_NCOL
};
/* The fixed columns' default names ("" for the three inserted groups). */
extern const char *const cr_imp_colnames[CR_IMP_NCOL];

typedef enum { CR_IMP_PERIOD_YEAR, CR_IMP_PERIOD_MONTH, CR_IMP_PERIOD_DAY } cr_imp_period;
extern const char *const cr_imp_period_names[]; /* year, month, day; NULL-terminated */

typedef struct cr_imp_label {
    char name[CR_IMP_NAME];
    char expr[256];
} cr_imp_label;

/* The variables a label expression reads besides the log's values. */
#define CR_IMP_VARS(X)                                                                           \
    X(RATING, "rating") X(DISCOVERY, "discovery") X(RETURN, "category_return")                  \
    X(NEW_RELEASE, "new_release") X(HIST_COUNT, "hist_count") X(ITEM_POP, "item_popularity")

enum {
#define CR_IMP_VENUM(id, name) CR_IMP_VAR_##id,
    CR_IMP_VARS(CR_IMP_VENUM)
#undef CR_IMP_VENUM
    CR_IMP_NVAR
};

typedef struct cr_imp_opts {
    const char    *out_path;
    int            negatives;
    cr_ml_protocol protocol;
    cr_imp_period  period;        /* the period protocol's period (UTC calendar) */
    uint64_t       seed;
    double         valid_frac, test_frac;
    const char    *include_cat, *exclude_cat; /* NULL = none */
    cr_ml_history  history;
    int            strict;
    int            return_days;   /* category_return's horizon */
    double         keep_fraction;
    int            n_labels;
    cr_imp_label   labels[CR_IMP_MAX_LABELS];
    const char    *colname[CR_IMP_NCOL]; /* NULL = the default name */
} cr_imp_opts;

/* A label's expression over the variables above and the log's values
 * (CR_IMP_NVAR + i is values[i]); *reads gets a bit per variable it reads.
 * An error names the label and lists the variables. */
cr_status cr_imp_label_parse(const cr_imp_label *l, int n_values,
                             const char (*values)[CR_IMP_NAME], cr_expr **out, uint64_t *reads,
                             cr_error *e);

void      cr_imp_opts_default(cr_imp_opts *o);
/* Every field in range, as a CR_ERR_ARG naming it. */
cr_status cr_imp_opts_check(const cr_imp_opts *o, cr_error *e);
/* Write o->out_path atomically (its directory created). Deterministic: the
 * same log and options give the same bytes. st may be NULL. */
cr_status cr_imp_build(const cr_imp_log *g, const cr_imp_opts *o, cr_impressions_stats *st,
                       cr_error *e);

/* ---- a log described in YAML (impressions_cfg.c, impressions_read.c) ------------------ */

#define CR_IMP_MAX_FILES 4 /* item files: the catalogue, then files joined to it */

typedef enum { CR_IMP_TIME_UNIX, CR_IMP_TIME_DATE } cr_imp_time_format;
typedef enum { CR_IMP_YEAR_NUMBER, CR_IMP_YEAR_TITLE } cr_imp_year_format;

typedef struct cr_imp_attr {
    char out[CR_IMP_NAME];    /* the impressions' column */
    char column[CR_IMP_NAME]; /* the file's column */
} cr_imp_attr;

/* An item or user file. where: "log.yaml:12:5: items[1]", for messages. */
typedef struct cr_imp_file {
    char        path[4096];
    char        where[4200];
    char        sep;                   /* 0 = by extension */
    char        key[CR_IMP_NAME];
    char        categories[CR_IMP_NAME]; /* "" = none (items) */
    char        cat_sep;
    char        no_categories[CR_IMP_NAME]; /* a value meaning "none" ("" = only empty) */
    char        year[CR_IMP_NAME];     /* "" = none (items) */
    int         year_format;           /* cr_imp_year_format */
    int         optional;              /* an absent file is skipped (not the catalogue) */
    int         n_attrs;
    cr_imp_attr attrs[CR_IMP_MAX_ATTRS];
} cr_imp_file;

struct cr_impressions_cfg {
    char         yaml[4096];
    char         log_path[4096], log_where[4200];
    char         log_sep;
    char         user[CR_IMP_NAME], item[CR_IMP_NAME], time[CR_IMP_NAME], rating[CR_IMP_NAME];
    int          time_format;          /* cr_imp_time_format */
    int          n_values;
    char         values[CR_IMP_MAX_VALUES][CR_IMP_NAME];
    int          n_item_files;
    cr_imp_file  items[CR_IMP_MAX_FILES];
    int          has_users;
    cr_imp_file  users;
    cr_imp_opts  opts;                 /* out_path unset; strings point into this struct */
    char         include[CR_IMP_NAME], exclude[CR_IMP_NAME];
    char         rename[CR_IMP_NCOL][CR_IMP_NAME];
};

/* Seconds since 1970 (UTC) of "YYYY-MM-DD", optionally followed by 'T' or
 * ' ' and "HH:MM" or "HH:MM:SS", optionally 'Z'. 0 if s is not such a date. */
int       cr_imp_parse_date(const char *s, int64_t *out);
/* The files c names into g; the caller frees g with cr_imp_log_free (on
 * error nothing needs freeing). */
cr_status cr_imp_read(const cr_impressions_cfg *c, cr_imp_log *g, cr_error *e);
/* cr_imp_read, then cr_imp_build with c's options writing out_path. */
cr_status cr_imp_run(const cr_impressions_cfg *c, const char *out_path,
                     cr_impressions_stats *st, cr_error *e);

#endif /* CR_DATA_IMPRESSIONS_H */
