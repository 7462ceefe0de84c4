/*
 * impressions.c - an interaction log -> ranking impressions with past-only
 * features: the one builder, for MovieLens and any YAML-described log
 * (docs/impressions.md, docs/movielens.md for the protocol and columns).
 * It must never let a row see its own event or a later one, and never
 * offer a negative the user interacted with at any time.
 */
#include "impressions.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CR_IMP_TOP  3     /* hist_top_categories length */
#define CR_IMP_LAST 5     /* last_items length */
#define CR_IMP_UNDEFINED 2 /* category_return left empty */

/* Running state, separate from the log so the log stays read-only. */
typedef struct cr_imp_istate {
    int64_t pop;         /* events so far in the global order */
    int64_t rated;       /* those with a rating */
    double  sum;         /* their rating sum */
    int64_t train_count; /* events before the valid cut-off */
    int     in_domain;
    int     hidden;      /* strict: of the excluded category, never read at all */
    int     positive;    /* seen as a positive (stats) */
} cr_imp_istate;

typedef struct cr_imp_ustate {
    int64_t  count, rated; /* past events in the history scope, those with a rating */
    double   sum;
    int64_t  first_ts;
    int32_t  last[CR_IMP_LAST]; /* ring of item indices */
    int      last_pos;
    uint64_t cats;              /* categories ever seen in the scope */
    int      requested;         /* has a request (stats) */
} cr_imp_ustate;

typedef struct cr_imp_event {
    int64_t ts;
    int32_t idx; /* row in file order: the tie-break */
} cr_imp_event;

typedef struct cr_imp_b {
    const cr_imp_log  *g;
    const cr_imp_opts *o;
    cr_imp_istate *is;
    cr_imp_ustate *us;
    int32_t       *gcount;    /* (n_users, n_cats) past events per category */
    uint8_t       *r_return;  /* (n_events) category_return: 0, 1, CR_IMP_UNDEFINED */
    cr_imp_event  *order;     /* (n_events) by (timestamp, file order) */
    int64_t       *rated_off; /* (n_users + 1) CSR of the items each user interacted with */
    int32_t       *rated;
    /* Candidate items for negatives: pool 0 is the training period's; with
     * the period protocol pools 1.. are one per calendar period of the
     * domain's events, period first_period + (i - 1). */
    int            n_pools;
    int64_t        first_period;
    int32_t      **pool;     /* (n_pools) */
    int64_t      **cum;      /* (n_pools) (n_pool[i]) cumulative sampling weight */
    size_t        *n_pool;   /* (n_pools) */
    int32_t       *fb_item;  /* (n_pool) fallback scratch */
    int64_t       *fb_cum;
    /* labels */
    cr_expr      **lx;       /* (n_labels) */
    uint64_t      *lreads;   /* (n_labels) bit per variable read */
    /* output columns */
    int            ncol;
    int            pos[CR_IMP_NCOL]; /* first output column of each entry */
    const char   **names;    /* (ncol) */
} cr_imp_b;

/* ---- random streams ------------------------------------------------------ */

/* A counter-based random stream per request: a request's keep decision and
 * negatives depend only on (seed, its row in the log), so a smaller
 * keep_fraction keeps a subset of a larger one's requests, each with the
 * same negatives. State is explicit; nothing global. */
typedef struct cr_imp_stream {
    uint64_t s;
} cr_imp_stream;

static uint64_t cr_imp_hash(uint64_t x) { /* splitmix64's finaliser */
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t cr_imp_next(cr_imp_stream *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    return cr_imp_hash(r->s);
}

static uint64_t cr_imp_below(cr_imp_stream *r, uint64_t n) {
    CR_ASSERT(n > 0);
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = cr_imp_next(r); while (x >= lim);
    return x % n;
}

/* ---- the domain, the time split and the candidate pool --------------------- */

static int cr_imp_find_cat(const cr_imp_log *g, const char *name) {
    for (int i = 0; i < g->n_cats; i++)
        if (!strcmp(g->cat[i], name)) return i;
    return -1;
}

static cr_status cr_imp_unknown_cat(const cr_imp_log *g, const char *opt, const char *name,
                                    cr_error *e) {
    char list[CR_IMP_MAX_CATS * 66] = "";
    size_t n = 0;
    for (int i = 0; i < g->n_cats; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", g->cat[i]);
    return cr_err(e, CR_ERR_NOT_FOUND, "%s: expected a %s of %s (%s), got '%s'", opt, g->noun_cat,
                  g->items_path[0] ? g->items_path : g->path, list, name);
}

/* Marks the domain's items and returns how many events fall in it. */
static cr_status cr_imp_domain(cr_imp_b *x, int64_t *n_domain, cr_error *e) {
    const cr_imp_opts *o = x->o;
    const cr_imp_log *g = x->g;
    int inc = -1, exc = -1;
    if (o->include_cat && *o->include_cat && (inc = cr_imp_find_cat(g, o->include_cat)) < 0)
        return cr_imp_unknown_cat(g, "include", o->include_cat, e);
    if (o->exclude_cat && *o->exclude_cat && (exc = cr_imp_find_cat(g, o->exclude_cat)) < 0)
        return cr_imp_unknown_cat(g, "exclude", o->exclude_cat, e);
    if (o->strict && exc < 0)
        return cr_err(e, CR_ERR_ARG, "strict: expected an excluded %s (the %s whose %ss "
                      "the build must never read), got none", g->noun_cat, g->noun_cat,
                      g->noun_item);
    for (size_t i = 0; i < g->n_items; i++) {
        uint64_t c = g->items[i].cats;
        x->is[i].in_domain = (inc < 0 || (c >> inc & 1)) && (exc < 0 || !(c >> exc & 1));
        x->is[i].hidden = o->strict && (c >> exc & 1);
    }
    *n_domain = 0;
    for (size_t i = 0; i < g->n_events; i++) *n_domain += x->is[g->ev_item[i]].in_domain;
    if (*n_domain == 0)
        return cr_err(e, CR_ERR_CONFIG,
                      "%s: no %s is of a%s %s in the domain (include '%s', exclude '%s')",
                      g->path, g->noun_event, strchr("aeiou", g->noun_item[0]) ? "n" : "",
                      g->noun_item, o->include_cat ? o->include_cat : "",
                      o->exclude_cat ? o->exclude_cat : "");
    return CR_OK;
}

static int cr_imp_cmp_event(const void *a, const void *b) {
    const cr_imp_event *p = a, *q = b;
    if (p->ts != q->ts) return p->ts < q->ts ? -1 : 1;
    return (p->idx > q->idx) - (p->idx < q->idx);
}

static int cr_imp_cmp_i32(const void *a, const void *b) {
    int32_t p = *(const int32_t *)a, q = *(const int32_t *)b;
    return (p > q) - (p < q);
}

/* The one total order of events, (timestamp, file order): an event's past is
 * everything before it here, for users and items alike. Also the per-user
 * sorted list of every item the user had, at any time, for negatives. */
static cr_status cr_imp_index(cr_imp_b *x, cr_error *e) {
    const cr_imp_log *g = x->g;
    size_t n = g->n_events;
    x->order = cr_alloc_e(n * sizeof *x->order, e, "the event order");
    x->rated_off = cr_alloc_e((g->n_users + 1) * sizeof *x->rated_off, e, "rated offsets");
    x->rated = cr_alloc_e(n * sizeof *x->rated, e, "rated items");
    if (!x->order || !x->rated_off || !x->rated) return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    for (size_t i = 0; i < n; i++) {
        x->order[i].ts = g->ev_ts[i];
        x->order[i].idx = (int32_t)i;
        x->rated_off[g->ev_user[i] + 1]++;
    }
    qsort(x->order, n, sizeof *x->order, cr_imp_cmp_event);
    for (size_t u = 0; u < g->n_users; u++) x->rated_off[u + 1] += x->rated_off[u];
    int64_t *fill = cr_alloc_e(g->n_users * sizeof *fill + 1, e, "rated fill");
    if (!fill) return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    memcpy(fill, x->rated_off, g->n_users * sizeof *fill);
    for (size_t i = 0; i < n; i++) x->rated[fill[g->ev_user[i]]++] = g->ev_item[i];
    cr_free(fill);
    for (size_t u = 0; u < g->n_users; u++)
        qsort(x->rated + x->rated_off[u], (size_t)(x->rated_off[u + 1] - x->rated_off[u]),
              sizeof *x->rated, cr_imp_cmp_i32);
    return CR_OK;
}

/* Cut-offs at timestamp quantiles of the domain's events: train is
 * ts < t_valid, valid t_valid <= ts < t_test, test ts >= t_test. Events at
 * one timestamp never straddle a cut. */
static void cr_imp_split(cr_imp_b *x, int64_t n_domain, int64_t *t_valid, int64_t *t_test) {
    int64_t n_test = llround(x->o->test_frac * (double)n_domain);
    int64_t n_valid = llround(x->o->valid_frac * (double)n_domain);
    int64_t at_test = n_domain - n_test, at_valid = n_domain - n_test - n_valid;
    *t_test = *t_valid = INT64_MAX;
    int64_t k = 0;
    for (size_t i = 0; i < x->g->n_events; i++) {
        const cr_imp_event *ev = &x->order[i];
        if (!x->is[x->g->ev_item[ev->idx]].in_domain) continue;
        if (k == at_valid && n_valid > 0) *t_valid = ev->ts;
        if (k == at_test && n_test > 0) *t_test = ev->ts;
        k++;
    }
    if (n_valid == 0) *t_valid = *t_test;
}

/* The calendar period (UTC) of ts: a year, a month (year * 12 + month) or
 * a day since 1970. */
static int64_t cr_imp_period_of(cr_imp_period p, int64_t ts) {
    if (p == CR_IMP_PERIOD_DAY) return ts >= 0 ? ts / 86400 : -((-ts + 86399) / 86400);
    time_t tt = (time_t)ts;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) return 1970;
    return p == CR_IMP_PERIOD_MONTH ? (int64_t)(tm.tm_year + 1900) * 12 + tm.tm_mon
                                    : tm.tm_year + 1900;
}

/* One weighted pool from per-item counts (weight = count, or 1 if uniform). */
static cr_status cr_imp_pool_one(cr_imp_b *x, int i, const int64_t *count, cr_error *e) {
    size_t np = 0, n_items = x->g->n_items;
    for (size_t m = 0; m < n_items; m++) np += x->is[m].in_domain && count[m] > 0;
    if (np == 0) return CR_OK;
    x->pool[i] = cr_alloc_e(np * sizeof *x->pool[i], e, "the candidate pool");
    x->cum[i] = cr_alloc_e(np * sizeof *x->cum[i], e, "the candidate weights");
    if (!x->pool[i] || !x->cum[i]) return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    int64_t acc = 0;
    for (size_t m = 0; m < n_items; m++) {
        if (!x->is[m].in_domain || count[m] == 0) continue;
        acc += x->o->protocol == CR_ML_UNIFORM ? 1 : count[m];
        x->pool[i][x->n_pool[i]] = (int32_t)m;
        x->cum[i][x->n_pool[i]++] = acc;
    }
    return CR_OK;
}

/* Candidates for negatives. popularity: the domain's items seen in its
 * training period, weighted by that count; uniform: the same items alike;
 * period: the items seen in the request's calendar period, weighted by
 * their count then (the training-period pool is the fallback when a
 * period has too few allowed candidates). */
static cr_status cr_imp_pool(cr_imp_b *x, int64_t t_valid, cr_error *e) {
    const cr_imp_log *g = x->g;
    int64_t p0 = INT64_MAX, p1 = INT64_MIN;
    int period = x->o->protocol == CR_ML_PERIOD;
    for (size_t i = 0; i < g->n_events; i++) {
        if (g->ev_ts[i] < t_valid) x->is[g->ev_item[i]].train_count++;
        if (period && x->is[g->ev_item[i]].in_domain) {
            int64_t p = cr_imp_period_of(x->o->period, g->ev_ts[i]);
            if (p < p0) p0 = p;
            if (p > p1) p1 = p;
        }
    }
    if (period && p1 >= p0 && p1 - p0 >= 1000000)
        return cr_err(e, CR_ERR_LIMIT, "%s: the %ss span %lld %ss; the period protocol keeps "
                      "at most 1000000 pools (use a longer period)", g->path, g->noun_event,
                      (long long)(p1 - p0 + 1), cr_imp_period_names[x->o->period]);
    x->n_pools = period && p1 >= p0 ? 1 + (int)(p1 - p0 + 1) : 1;
    x->first_period = p0;
    x->pool = calloc((size_t)x->n_pools, sizeof *x->pool);
    x->cum = calloc((size_t)x->n_pools, sizeof *x->cum);
    x->n_pool = calloc((size_t)x->n_pools, sizeof *x->n_pool);
    int64_t *count = calloc(g->n_items ? g->n_items : 1, sizeof *count);
    if (!x->pool || !x->cum || !x->n_pool || !count) {
        free(count);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for the candidate pools");
    }
    for (size_t m = 0; m < g->n_items; m++) count[m] = x->is[m].train_count;
    cr_status s = cr_imp_pool_one(x, 0, count, e);
    for (int p = 1; !s && p < x->n_pools; p++) {
        memset(count, 0, g->n_items * sizeof *count);
        for (size_t i = 0; i < g->n_events; i++)
            if (cr_imp_period_of(x->o->period, g->ev_ts[i]) == p0 + p - 1) count[g->ev_item[i]]++;
        s = cr_imp_pool_one(x, p, count, e);
    }
    free(count);
    if (s) return s;
    if (x->n_pool[0] == 0 && x->o->negatives > 0)
        return cr_err(e, CR_ERR_CONFIG,
                      "%s: no %s of the domain falls before the validation "
                      "cut-off, so there is nothing to draw negatives from (lower valid/test fractions)",
                      g->path, g->noun_event);
    size_t fb = 0;
    for (int p = 0; p < x->n_pools; p++)
        if (x->n_pool[p] > fb) fb = x->n_pool[p];
    if (fb) {
        x->fb_item = cr_alloc_e(fb * sizeof *x->fb_item, e, "the fallback pool");
        x->fb_cum = cr_alloc_e(fb * sizeof *x->fb_cum, e, "the fallback weights");
        if (!x->fb_item || !x->fb_cum) return CR_ERR_NOMEM;
    }
    return CR_OK;
}

/* ---- negatives ------------------------------------------------------------- */

static int cr_imp_rated(const cr_imp_b *x, int32_t u, int32_t m) {
    const int32_t *a = x->rated + x->rated_off[u];
    size_t lo = 0, hi = (size_t)(x->rated_off[u + 1] - x->rated_off[u]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a[mid] < m) lo = mid + 1;
        else hi = mid;
    }
    return lo < (size_t)(x->rated_off[u + 1] - x->rated_off[u]) && a[lo] == m;
}

/* First index whose cumulative weight exceeds w. */
static size_t cr_imp_upper(const int64_t *cum, size_t n, int64_t w) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] <= w) lo = mid + 1;
        else hi = mid;
    }
    CR_ASSERT(lo < n);
    return lo;
}

/* A negative is never the positive, never an item the user had at any
 * time, never drawn twice, and never released after the request's year
 * (a 2010 film cannot have been shown in 1997: without this rule,
 * "not released yet" would give negatives away). */
static int cr_imp_allowed(const cr_imp_b *x, int32_t u, int32_t pos, int32_t year, int32_t m,
                          const int32_t *got, int n_got) {
    if (m == pos) return 0;
    if (x->g->items[m].year > year) return 0;
    for (int i = 0; i < n_got; i++)
        if (got[i] == m) return 0;
    return !cr_imp_rated(x, u, m);
}

/* Draw k distinct allowed negatives from pool p: rejection sampling
 * (exact for the restricted distribution and fast while most of the
 * weight is allowed), then, if that keeps failing, the allowed candidates
 * listed with the same weights. Returns how many it got (< k only when
 * the pool runs out of allowed items). */
static int cr_imp_draw(cr_imp_b *x, cr_imp_stream *r, int p, int32_t u, int32_t pos, int32_t year,
                       int32_t *out, int got, int k) {
    const int32_t *pool = x->pool[p];
    const int64_t *cum = x->cum[p];
    size_t n_pool = x->n_pool[p];
    if (n_pool == 0) return got;
    int64_t total = cum[n_pool - 1];
    for (int tries = 0; got < k && tries < 32 + 16 * k; tries++) {
        int32_t m = pool[cr_imp_upper(cum, n_pool, (int64_t)cr_imp_below(r, (uint64_t)total))];
        if (cr_imp_allowed(x, u, pos, year, m, out, got)) out[got++] = m;
    }
    while (got < k) {
        size_t nf = 0;
        int64_t acc = 0;
        for (size_t j = 0; j < n_pool; j++) {
            int32_t m = pool[j];
            if (!cr_imp_allowed(x, u, pos, year, m, out, got)) continue;
            acc += cum[j] - (j ? cum[j - 1] : 0);
            x->fb_item[nf] = m;
            x->fb_cum[nf++] = acc;
        }
        if (nf == 0) break;
        out[got++] = x->fb_item[cr_imp_upper(x->fb_cum, nf, (int64_t)cr_imp_below(r, (uint64_t)acc))];
    }
    return got;
}

static cr_status cr_imp_negatives(cr_imp_b *x, cr_imp_stream *r, int32_t ri, const struct tm *tm,
                                  int32_t *out, cr_error *e) {
    const cr_imp_log *g = x->g;
    int k = x->o->negatives;
    if (k == 0) return CR_OK;
    int32_t u = g->ev_user[ri], pos = g->ev_item[ri], year = tm->tm_year + 1900;
    int64_t p = x->n_pools > 1 ? cr_imp_period_of(x->o->period, g->ev_ts[ri]) - x->first_period + 1
                               : 0;
    if (p < 0 || p >= x->n_pools) p = 0;
    int got = cr_imp_draw(x, r, (int)p, u, pos, year, out, 0, k);
    if (got < k && p != 0) got = cr_imp_draw(x, r, 0, u, pos, year, out, got, k);
    if (got < k)
        return cr_err(e, CR_ERR_LIMIT, "%s:%lld: user %s: only %d candidate %ss are "
                      "new to the user and released by %d; cannot draw %d negatives "
                      "(use fewer negatives or a wider domain)", g->path,
                      (long long)g->ev_line[ri], cr_imp_str(g, g->users[u].key), got,
                      g->noun_item, year, k);
    return CR_OK;
}

/* ---- the one label from the future ------------------------------------------------ */

/* category_return of every domain event: does the same user have another
 * item of the domain that shares a category with this one, later in the
 * event order and at most return_days after it? Computed once, walking the
 * order backwards with the earliest later timestamp per (user, category),
 * before any row is written. It is a label only: no feature reads r_return,
 * so the future it looks at never reaches a row's inputs. Undefined (empty)
 * for an item without categories and when the horizon runs past the log's
 * last event (the answer is not in the data: censored). Dropped requests
 * (keep_fraction) still happened, so they count as returns. */
static cr_status cr_imp_returns(cr_imp_b *x, cr_error *e) {
    const cr_imp_log *g = x->g;
    size_t n = g->n_events, nc = (size_t)(g->n_cats ? g->n_cats : 1);
    x->r_return = cr_alloc_e(n ? n : 1, e, "category_return labels");
    int64_t *next = cr_alloc_e(g->n_users * nc * sizeof *next + 1, e, "next event per category");
    if (!x->r_return || !next) {
        cr_free(next);
        return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    }
    for (size_t i = 0; i < g->n_users * nc; i++) next[i] = INT64_MAX;
    int64_t end = INT64_MIN, horizon = (int64_t)x->o->return_days * 86400;
    for (size_t i = 0; i < n; i++)
        if (g->ev_ts[i] > end) end = g->ev_ts[i];
    for (size_t i = n; i-- > 0;) {
        int32_t ri = x->order[i].idx;
        uint64_t cats = g->items[g->ev_item[ri]].cats;
        x->r_return[ri] = CR_IMP_UNDEFINED;
        if (!x->is[g->ev_item[ri]].in_domain || !cats) continue;
        int64_t t = g->ev_ts[ri], *nu = next + (size_t)g->ev_user[ri] * nc;
        if (t <= end - horizon) {
            int back = 0;
            for (int c = 0; c < g->n_cats; c++) back |= (cats >> c & 1) && nu[c] - t <= horizon;
            x->r_return[ri] = (uint8_t)back;
        }
        for (int c = 0; c < g->n_cats; c++)
            if (cats >> c & 1) nu[c] = t;
    }
    cr_free(next);
    return CR_OK;
}

/* ---- labels and columns ---------------------------------------------------------- */

static cr_status cr_imp_labels(cr_imp_b *x, cr_error *e) {
    const cr_imp_opts *o = x->o;
    x->lx = calloc((size_t)o->n_labels + 1, sizeof *x->lx);
    x->lreads = calloc((size_t)o->n_labels + 1, sizeof *x->lreads);
    if (!x->lx || !x->lreads) return cr_err(e, CR_ERR_NOMEM, "out of memory for the labels");
    for (int l = 0; l < o->n_labels; l++)
        CR_TRY(cr_imp_label_parse(&o->labels[l], x->g->n_values,
                                  (const char (*)[CR_IMP_NAME])x->g->value, &x->lx[l],
                                  &x->lreads[l], e));
    return CR_OK;
}

/* The header: the fixed columns (renamed by o->colname), with the user
 * attributes, the written item attributes and the labels in their places.
 * Names must not repeat. */
static cr_status cr_imp_columns(cr_imp_b *x, cr_error *e) {
    const cr_imp_log *g = x->g;
    const cr_imp_opts *o = x->o;
    int n_item = 0;
    for (int a = 0; a < g->n_item_attrs; a++) n_item += !g->item_attr_hidden[a];
    x->names = calloc(CR_IMP_NCOL + (size_t)(g->n_user_attrs + n_item + o->n_labels), sizeof *x->names);
    if (!x->names) return cr_err(e, CR_ERR_NOMEM, "out of memory for the columns");
    int n = 0;
    for (int c = 0; c < CR_IMP_NCOL; c++) {
        x->pos[c] = n;
        if (c == CR_IMP_COL_USER_ATTRS)
            for (int a = 0; a < g->n_user_attrs; a++) x->names[n++] = g->user_attr[a];
        else if (c == CR_IMP_COL_ITEM_ATTRS)
            for (int a = 0; a < g->n_item_attrs; a++) {
                if (!g->item_attr_hidden[a]) x->names[n++] = g->item_attr[a];
            }
        else if (c == CR_IMP_COL_LABELS)
            for (int l = 0; l < o->n_labels; l++) x->names[n++] = o->labels[l].name;
        else x->names[n++] = o->colname[c] ? o->colname[c] : cr_imp_colnames[c];
    }
    x->ncol = n;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(x->names[i], x->names[j]))
                return cr_err(e, CR_ERR_ARG, "the output would have two columns named '%s' "
                              "(rename a label, an attribute or a fixed column)", x->names[i]);
    return CR_OK;
}

/* ---- writing ----------------------------------------------------------------- */

static char *cr_imp_i64(char *buf, int64_t v) {
    char tmp[24];
    int n = 0;
    uint64_t a = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do tmp[n++] = (char)('0' + a % 10); while (a /= 10);
    char *p = buf;
    if (v < 0) *p++ = '-';
    while (n) *p++ = tmp[--n];
    *p = '\0';
    return buf;
}

static char *cr_imp_f(char *buf, size_t n, double v) {
    snprintf(buf, n, "%.6g", v);
    return buf;
}

/* The user's most frequent past categories, ties by name. */
static void cr_imp_top_cats(const cr_imp_b *x, int32_t u, char *buf, size_t n) {
    const cr_imp_log *g = x->g;
    const int32_t *gc = x->gcount + (size_t)u * (size_t)g->n_cats;
    int top[CR_IMP_TOP], nt = 0;
    for (int c = 0; c < g->n_cats; c++) {
        if (gc[c] == 0) continue;
        int at = nt;
        while (at > 0 && (gc[top[at - 1]] < gc[c] ||
                          (gc[top[at - 1]] == gc[c] && g->cat_rank[top[at - 1]] > g->cat_rank[c])))
            at--;
        if (at >= CR_IMP_TOP) continue;
        int last = nt < CR_IMP_TOP ? nt : CR_IMP_TOP - 1;
        for (int i = last; i > at; i--) top[i] = top[i - 1];
        top[at] = c;
        if (nt < CR_IMP_TOP) nt++;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < nt && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "|" : "", g->cat[top[i]]);
}

/* The user's last items, most recent first; NULL if they do not fit. */
static const char *cr_imp_last_items(const cr_imp_b *x, const cr_imp_ustate *us, char *buf,
                                     size_t cap) {
    int64_t nl = us->count < CR_IMP_LAST ? us->count : CR_IMP_LAST;
    size_t len = 0;
    buf[0] = '\0';
    for (int64_t k = 0; k < nl; k++) {
        int slot = (int)((us->last_pos - 1 - k + 2 * CR_IMP_LAST) % CR_IMP_LAST);
        int w = snprintf(buf + len, cap - len, "%s%s", k ? "|" : "",
                         cr_imp_str(x->g, x->g->items[us->last[slot]].key));
        if (w < 0 || (size_t)w >= cap - len) return NULL;
        len += (size_t)w;
    }
    return buf;
}

typedef struct cr_imp_row {
    const char **f;     /* (ncol) */
    char (*num)[32];    /* (ncol) numbers are formatted here */
    char top[CR_IMP_TOP * 66];
    char *last;         /* last_items */
    size_t last_cap;
    double vars[CR_IMP_NVAR + CR_IMP_MAX_VALUES];
} cr_imp_row;

#define F(c) row->f[x->pos[CR_IMP_COL_##c]]
#define NUM(c) row->num[x->pos[CR_IMP_COL_##c]]

/* Writes one request: the positive, then its negatives. Only state from
 * before the event is read here; the caller updates it afterwards. */
static cr_status cr_imp_request(cr_imp_b *x, cr_csv_writer *w, cr_imp_row *row, int64_t rid,
                                int32_t ri, int split, const struct tm *tm, const int32_t *neg,
                                cr_impressions_stats *st, cr_error *e) {
    static const char *const split_name[3] = {"train", "valid", "test"};
    const cr_imp_log *g = x->g;
    const cr_imp_opts *o = x->o;
    int32_t u = g->ev_user[ri], pos = g->ev_item[ri];
    const cr_imp_ustate *us = &x->us[u];
    int64_t t = g->ev_ts[ri];
    for (int c = 0; c < x->ncol; c++) row->f[c] = "";
    F(REQUEST_ID) = cr_imp_i64(NUM(REQUEST_ID), rid);
    F(USER_ID) = cr_imp_str(g, g->users[u].key);
    F(TIMESTAMP) = cr_imp_i64(NUM(TIMESTAMP), t);
    F(SPLIT) = split_name[split];
    F(HIST_COUNT) = cr_imp_i64(NUM(HIST_COUNT), us->count);
    if (us->rated > 0) F(HIST_MEAN) = cr_imp_f(NUM(HIST_MEAN), 32, us->sum / (double)us->rated);
    F(DAYS_FIRST) = us->count > 0 ? cr_imp_f(NUM(DAYS_FIRST), 32, (double)(t - us->first_ts) / 86400.0)
                                  : "0";
    cr_imp_top_cats(x, u, row->top, sizeof row->top);
    F(HIST_TOP) = row->top;
    if (!(F(LAST_ITEMS) = cr_imp_last_items(x, us, row->last, row->last_cap)))
        return cr_err(e, CR_ERR_LIMIT, "%s:%lld: last_items is longer than %zu bytes (keys "
                      "are at most 255 bytes)", g->path, (long long)g->ev_line[ri], row->last_cap);
    F(HOUR) = cr_imp_i64(NUM(HOUR), tm->tm_hour);
    F(DOW) = cr_imp_i64(NUM(DOW), tm->tm_wday);
    for (int a = 0; a < g->n_user_attrs; a++)
        row->f[x->pos[CR_IMP_COL_USER_ATTRS] + a] = cr_imp_str(g, g->users[u].attr[a]);
    int32_t year_t = tm->tm_year + 1900;
    double r = g->ev_rating[ri];
    for (int k = 0; k <= o->negatives; k++) {
        int32_t mi = k == 0 ? pos : neg[k - 1];
        const cr_imp_item *m = &g->items[mi];
        const cr_imp_istate *ms = &x->is[mi];
        F(ITEM_ID) = cr_imp_str(g, m->key);
        F(CATS) = cr_imp_str(g, m->cats_text);
        F(YEAR) = m->year ? cr_imp_i64(NUM(YEAR), m->year) : "";
        F(ITEM_AGE) = m->year ? cr_imp_i64(NUM(ITEM_AGE), year_t - m->year) : "";
        F(ITEM_POP) = cr_imp_i64(NUM(ITEM_POP), ms->pop);
        F(ITEM_MEAN) = ms->rated ? cr_imp_f(NUM(ITEM_MEAN), 32, ms->sum / (double)ms->rated) : "";
        for (int a = 0, c = x->pos[CR_IMP_COL_ITEM_ATTRS]; a < g->n_item_attrs; a++)
            if (!g->item_attr_hidden[a]) row->f[c++] = cr_imp_str(g, m->attr[a]);
        int nc = __builtin_popcountll(m->cats);
        F(OVERLAP) = nc ? cr_imp_f(NUM(OVERLAP), 32,
                                   (double)__builtin_popcountll(m->cats & us->cats) / nc)
                        : "";
        int new_release = m->year && m->year >= year_t - 1;
        F(NEW_RELEASE) = new_release ? "1" : "0";
        F(CLICK) = k == 0 ? "1" : "0";
        int c0 = x->pos[CR_IMP_COL_LABELS];
        if (k == 0) { /* labels exist only on the positive */
            double *v = row->vars;
            int back = x->r_return[ri];
            v[CR_IMP_VAR_RATING] = r;
            v[CR_IMP_VAR_DISCOVERY] = (m->cats & ~us->cats) != 0;
            v[CR_IMP_VAR_RETURN] = back == CR_IMP_UNDEFINED ? NAN : back;
            v[CR_IMP_VAR_NEW_RELEASE] = new_release;
            v[CR_IMP_VAR_HIST_COUNT] = (double)us->count;
            v[CR_IMP_VAR_ITEM_POP] = (double)ms->pop;
            for (int j = 0; j < g->n_values; j++)
                v[CR_IMP_NVAR + j] = g->ev_value[(size_t)ri * (size_t)g->n_values + j];
            for (int l = 0; l < o->n_labels; l++) {
                int defined = 1;
                for (int j = 0; j < CR_IMP_NVAR + g->n_values; j++)
                    if ((x->lreads[l] >> j & 1) && isnan(v[j])) defined = 0;
                double y = defined ? cr_expr_eval(x->lx[l], v) : NAN;
                if (!isfinite(y)) { /* a label reading an empty field is empty */
                    row->f[c0 + l] = "";
                    continue;
                }
                row->f[c0 + l] = cr_imp_f(row->num[c0 + l], 32, y);
                if (l < CR_IMPRESSIONS_MAX_LABELS) {
                    st->label_sum[l] += y;
                    st->label_defined[l]++;
                }
            }
            st->new_release_rate += new_release;
        } else {
            for (int l = 0; l < o->n_labels; l++) row->f[c0 + l] = "";
        }
        CR_TRY(cr_csv_write_row(w, x->ncol, row->f, e));
    }
    st->requests++;
    st->rows += o->negatives + 1;
    st->requests_split[split]++;
    st->rows_split[split] += o->negatives + 1;
    return CR_OK;
}

#undef F
#undef NUM

/* After the event: it becomes part of the past. */
static void cr_imp_update(cr_imp_b *x, int32_t ri) {
    const cr_imp_log *g = x->g;
    int32_t u = g->ev_user[ri], mi = g->ev_item[ri];
    cr_imp_istate *m = &x->is[mi];
    double r = g->ev_rating[ri];
    if (m->hidden) return; /* strict: as if it never happened */
    m->pop++;
    if (!isnan(r)) {
        m->rated++;
        m->sum += r;
    }
    if (x->o->history == CR_ML_HISTORY_DOMAIN && !m->in_domain) return;
    cr_imp_ustate *us = &x->us[u];
    if (us->count == 0) us->first_ts = g->ev_ts[ri];
    us->count++;
    if (!isnan(r)) {
        us->rated++;
        us->sum += r;
    }
    us->last[us->last_pos] = mi;
    us->last_pos = (us->last_pos + 1) % CR_IMP_LAST;
    uint64_t cats = g->items[mi].cats;
    us->cats |= cats;
    int32_t *gc = x->gcount + (size_t)u * (size_t)g->n_cats;
    for (int c = 0; c < g->n_cats; c++) gc[c] += (int32_t)(cats >> c & 1);
}

/* ---- the build ------------------------------------------------------------------- */

/* Creates the output's directory, so "build/x/impressions.csv" works in a
 * fresh tree. */
static cr_status cr_imp_out_dir(const char *path, cr_error *e) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return CR_OK;
    char dir[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return cr_err(e, CR_ERR_ARG, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return cr_mkdirs(dir, e);
}

static void cr_imp_b_free(cr_imp_b *x) {
    free(x->is);
    free(x->us);
    cr_free(x->gcount);
    cr_free(x->r_return);
    cr_free(x->order);
    cr_free(x->rated_off);
    cr_free(x->rated);
    for (int p = 0; x->pool && x->cum && p < x->n_pools; p++) {
        cr_free(x->pool[p]);
        cr_free(x->cum[p]);
    }
    free(x->pool);
    free(x->cum);
    free(x->n_pool);
    cr_free(x->fb_item);
    cr_free(x->fb_cum);
    for (int l = 0; x->lx && l < x->o->n_labels; l++) cr_expr_free(x->lx[l]);
    free(x->lx);
    free(x->lreads);
    free(x->names);
}

/* Everything before the first row: state, order, labels, split, pools. */
static cr_status cr_imp_prepare(cr_imp_b *x, cr_impressions_stats *st, cr_error *e) {
    const cr_imp_log *g = x->g;
    int64_t n_domain = 0;
    x->is = calloc(g->n_items ? g->n_items : 1, sizeof *x->is);
    x->us = calloc(g->n_users ? g->n_users : 1, sizeof *x->us);
    if (!x->is || !x->us) return cr_err(e, CR_ERR_NOMEM, "out of memory for %zu items and %zu "
                                        "users", g->n_items, g->n_users);
    CR_TRY(cr_imp_columns(x, e));
    CR_TRY(cr_imp_labels(x, e));
    CR_TRY(cr_imp_domain(x, &n_domain, e));
    st->domain_events = n_domain;
    CR_TRY(cr_imp_index(x, e));
    CR_TRY(cr_imp_returns(x, e));
    for (size_t i = 0; i < g->n_events; i++) st->hidden_events += x->is[g->ev_item[i]].hidden;
    cr_imp_split(x, n_domain, &st->t_valid, &st->t_test);
    CR_TRY(cr_imp_pool(x, st->t_valid, e));
    st->pool = (int64_t)x->n_pool[0];
    if (g->n_cats > 0) {
        x->gcount = cr_alloc_e(g->n_users * (size_t)g->n_cats * sizeof *x->gcount, e,
                               "per-user category counts");
        if (!x->gcount) return CR_ERR_NOMEM;
    }
    return CR_OK;
}

cr_status cr_imp_build(const cr_imp_log *g, const cr_imp_opts *o, cr_impressions_stats *stats,
                       cr_error *e) {
    cr_impressions_stats local;
    cr_impressions_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    CR_TRY(cr_imp_opts_check(o, e));
    st->events = (int64_t)g->n_events;
    st->catalogue = (int64_t)g->n_items;
    st->n_labels = o->n_labels;
    cr_imp_b x = {.g = g, .o = o};
    cr_csv_writer *w = NULL;
    cr_imp_row row = {0};
    int32_t *neg = NULL;
    cr_status s;
    if ((s = cr_imp_prepare(&x, st, e)) != CR_OK) goto fail;
    row.f = calloc((size_t)x.ncol, sizeof *row.f);
    row.num = calloc((size_t)x.ncol, sizeof *row.num);
    row.last_cap = CR_IMP_LAST * 257;
    row.last = malloc(row.last_cap);
    neg = calloc((size_t)o->negatives + 1, sizeof *neg);
    if (!row.f || !row.num || !row.last || !neg) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory for a row");
        goto fail;
    }
    if ((s = cr_imp_out_dir(o->out_path, e)) != CR_OK) goto fail;
    if ((s = cr_csv_writer_open(&w, o->out_path, ',', e)) != CR_OK) goto fail;
    if ((s = cr_csv_write_row(w, x.ncol, x.names, e)) != CR_OK) goto fail;
    for (size_t i = 0; i < g->n_events; i++) {
        int32_t ri = x.order[i].idx;
        if (x.is[g->ev_item[ri]].in_domain) {
            int64_t t = g->ev_ts[ri];
            int split = t < st->t_valid ? CR_SPLIT_TRAIN : t < st->t_test ? CR_SPLIT_VALID
                                                                          : CR_SPLIT_TEST;
            cr_imp_stream r = {cr_imp_hash(o->seed ^ cr_imp_hash((uint64_t)ri + 1))};
            double keep_u = (double)(cr_imp_next(&r) >> 11) * 0x1.0p-53;
            if (split == CR_SPLIT_TRAIN && !(keep_u < o->keep_fraction)) {
                st->dropped++;
            } else {
                time_t tt = (time_t)t;
                struct tm tm;
                if (!gmtime_r(&tt, &tm)) {
                    s = cr_err(e, CR_ERR_PARSE, "%s:%lld: timestamp %lld is out of range",
                               g->path, (long long)g->ev_line[ri], (long long)t);
                    goto fail;
                }
                if ((s = cr_imp_negatives(&x, &r, ri, &tm, neg, e)) != CR_OK) goto fail;
                if ((s = cr_imp_request(&x, w, &row, st->requests, ri, split, &tm, neg, st, e)) !=
                    CR_OK)
                    goto fail;
                x.us[g->ev_user[ri]].requested = 1;
                x.is[g->ev_item[ri]].positive = 1;
            }
        }
        cr_imp_update(&x, ri);
    }
    s = cr_csv_writer_commit(w, e);
    w = NULL;
    if (s != CR_OK) goto fail;
    for (size_t u = 0; u < g->n_users; u++) st->users += x.us[u].requested;
    for (size_t m = 0; m < g->n_items; m++) st->items += x.is[m].positive;
    for (int l = 0; l < o->n_labels && l < CR_IMPRESSIONS_MAX_LABELS; l++) {
        snprintf(st->label[l], sizeof st->label[l], "%s", o->labels[l].name);
        if (st->label_defined[l]) st->label_mean[l] = st->label_sum[l] / (double)st->label_defined[l];
    }
    if (st->requests > 0) st->new_release_rate /= (double)st->requests;
fail:
    if (w) cr_csv_writer_abort(w);
    free(row.f);
    free(row.num);
    free(row.last);
    free(neg);
    cr_imp_b_free(&x);
    return s;
}
