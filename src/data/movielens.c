/*
 * movielens.c - MovieLens ratings -> ranking impressions with past-only
 * features (see docs/movielens.md for the protocol and every column).
 * It must never let a row see its own rating or a later one, and never
 * offer a negative the user rated at any time.
 */
#include "movielens_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CR_ML_TOP 3         /* hist_top_genres length */

/* One list of output columns, so the header and the row can never drift. */
#define CR_ML_COLUMNS(X)                                                                       \
    X(REQUEST_ID, "request_id") X(USER_ID, "user_id") X(MOVIE_ID, "movie_id")                  \
    X(TIMESTAMP, "timestamp") X(SPLIT, "split") X(HIST_COUNT, "hist_count")                    \
    X(HIST_MEAN, "hist_mean_rating") X(HIST_TOP, "hist_top_genres") X(LAST_ITEMS, "last_items") \
    X(DAYS_FIRST, "days_since_first") X(HOUR, "hour_of_day") X(DOW, "day_of_week")             \
    X(GENRES, "genres") X(YEAR, "year") X(ITEM_POP, "item_popularity")                         \
    X(ITEM_MEAN, "item_mean_rating") X(ITEM_AGE, "item_age") X(DIRECTOR, "director")           \
    X(MPAA, "mpaa") X(MAJOR, "major_genre") X(IMDB, "imdb_rating")                             \
    X(RUNTIME, "running_time") X(OVERLAP, "genre_overlap") X(CLICK, "click")                   \
    X(RATING, "rating") X(LIKE, "like") X(ENGAGEMENT, "engagement") X(DISCOVERY, "discovery")  \
    X(GENRE_RETURN, "genre_return") X(NEW_RELEASE, "new_release")

enum {
#define CR_ML_ENUM(id, name) CR_ML_COL_##id,
    CR_ML_COLUMNS(CR_ML_ENUM)
#undef CR_ML_ENUM
    CR_ML_NCOL
};

static const char *const cr_ml_colnames[CR_ML_NCOL] = {
#define CR_ML_NAME(id, name) name,
    CR_ML_COLUMNS(CR_ML_NAME)
#undef CR_ML_NAME
};
/* ---- random streams ------------------------------------------------------ */

/* A counter-based random stream per request: a request's keep decision and
 * negatives depend only on (seed, its line in ratings.csv), so a smaller
 * keep_fraction keeps a subset of a larger one's requests, each with the
 * same negatives. State is explicit; nothing global. */
typedef struct cr_ml_stream {
    uint64_t s;
} cr_ml_stream;

static uint64_t cr_ml_next(cr_ml_stream *r) {
    r->s += 0x9E3779B97F4A7C15ull;
    return cr_ml_hash(r->s);
}

static uint64_t cr_ml_below(cr_ml_stream *r, uint64_t n) {
    CR_ASSERT(n > 0);
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
    do x = cr_ml_next(r); while (x >= lim);
    return x % n;
}
/* ---- the domain, the time split and the candidate pool --------------------- */

static int cr_ml_find_genre(const cr_ml_ctx *x, const char *name) {
    for (int i = 0; i < x->n_genres; i++)
        if (!strcmp(x->genre[i], name)) return i;
    return -1;
}

static cr_status cr_ml_unknown_genre(const cr_ml_ctx *x, const char *opt, const char *name,
                                     cr_error *e) {
    char list[CR_ML_MAX_GENRES * 66] = "";
    size_t n = 0;
    for (int i = 0; i < x->n_genres; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", x->genre[i]);
    return cr_err(e, CR_ERR_NOT_FOUND, "%s: expected a genre of %s (%s), got '%s'", opt,
                  x->path_movies, list, name);
}

/* Marks the domain's movies and returns how many ratings fall in it. */
static cr_status cr_ml_domain(cr_ml_ctx *x, int64_t *n_domain, cr_error *e) {
    const cr_ml_opts *o = x->o;
    int inc = -1, exc = -1;
    if (o->include_genre && *o->include_genre &&
        (inc = cr_ml_find_genre(x, o->include_genre)) < 0)
        return cr_ml_unknown_genre(x, "include_genre", o->include_genre, e);
    if (o->exclude_genre && *o->exclude_genre &&
        (exc = cr_ml_find_genre(x, o->exclude_genre)) < 0)
        return cr_ml_unknown_genre(x, "exclude_genre", o->exclude_genre, e);
    if (o->strict && exc < 0)
        return cr_err(e, CR_ERR_ARG, "strict: expected exclude_genre (the genre whose movies "
                      "the build must never read), got none");
    for (size_t i = 0; i < x->n_movies; i++) {
        uint64_t g = x->movies[i].genres;
        x->movies[i].in_domain = (inc < 0 || (g >> inc & 1)) && (exc < 0 || !(g >> exc & 1));
        x->movies[i].hidden = o->strict && (g >> exc & 1);
    }
    *n_domain = 0;
    for (size_t i = 0; i < x->n_ratings; i++) *n_domain += x->movies[x->r_movie[i]].in_domain;
    if (*n_domain == 0)
        return cr_err(e, CR_ERR_CONFIG,
                      "%s: no rating is of a movie in the domain "
                      "(include_genre '%s', exclude_genre '%s')",
                      x->path_ratings, o->include_genre ? o->include_genre : "",
                      o->exclude_genre ? o->exclude_genre : "");
    return CR_OK;
}

static int cr_ml_cmp_event(const void *a, const void *b) {
    const cr_ml_event *p = a, *q = b;
    if (p->ts != q->ts) return p->ts < q->ts ? -1 : 1;
    return (p->idx > q->idx) - (p->idx < q->idx);
}

static int cr_ml_cmp_i32(const void *a, const void *b) {
    int32_t p = *(const int32_t *)a, q = *(const int32_t *)b;
    return (p > q) - (p < q);
}

/* The one total order of events, (timestamp, file order): an event's past is
 * everything before it here, for users and items alike. Also the per-user
 * sorted list of every movie the user rated, at any time, for negatives. */
static cr_status cr_ml_index(cr_ml_ctx *x, cr_error *e) {
    size_t n = x->n_ratings;
    x->order = cr_alloc_e(n * sizeof *x->order, e, "the event order");
    x->rated_off = cr_alloc_e((x->n_users + 1) * sizeof *x->rated_off, e, "rated offsets");
    x->rated = cr_alloc_e(n * sizeof *x->rated, e, "rated movies");
    if (!x->order || !x->rated_off || !x->rated) return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    for (size_t i = 0; i < n; i++) {
        x->order[i].ts = x->r_ts[i];
        x->order[i].idx = (int32_t)i;
        x->rated_off[x->r_user[i] + 1]++;
    }
    qsort(x->order, n, sizeof *x->order, cr_ml_cmp_event);
    for (size_t u = 0; u < x->n_users; u++) x->rated_off[u + 1] += x->rated_off[u];
    int64_t *fill = cr_alloc_e(x->n_users * sizeof *fill, e, "rated fill");
    if (!fill) return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    memcpy(fill, x->rated_off, x->n_users * sizeof *fill);
    for (size_t i = 0; i < n; i++) x->rated[fill[x->r_user[i]]++] = x->r_movie[i];
    cr_free(fill);
    for (size_t u = 0; u < x->n_users; u++)
        qsort(x->rated + x->rated_off[u], (size_t)(x->rated_off[u + 1] - x->rated_off[u]),
              sizeof *x->rated, cr_ml_cmp_i32);
    return CR_OK;
}

/* Cut-offs at timestamp quantiles of the domain's ratings: train is
 * ts < t_valid, valid t_valid <= ts < t_test, test ts >= t_test. Ratings at
 * one timestamp never straddle a cut. */
static void cr_ml_split(cr_ml_ctx *x, int64_t n_domain, int64_t *t_valid, int64_t *t_test) {
    int64_t n_test = llround(x->o->test_frac * (double)n_domain);
    int64_t n_valid = llround(x->o->valid_frac * (double)n_domain);
    int64_t at_test = n_domain - n_test, at_valid = n_domain - n_test - n_valid;
    *t_test = *t_valid = INT64_MAX;
    int64_t k = 0;
    for (size_t i = 0; i < x->n_ratings; i++) {
        const cr_ml_event *ev = &x->order[i];
        if (!x->movies[x->r_movie[ev->idx]].in_domain) continue;
        if (k == at_valid && n_valid > 0) *t_valid = ev->ts;
        if (k == at_test && n_test > 0) *t_test = ev->ts;
        k++;
    }
    if (n_valid == 0) *t_valid = *t_test;
}

static int cr_ml_year(int64_t ts) {
    time_t tt = (time_t)ts;
    struct tm tm;
    return gmtime_r(&tt, &tm) ? tm.tm_year + 1900 : 1970;
}

/* One weighted pool from per-movie counts (weight = count, or 1 if uniform). */
static cr_status cr_ml_pool_one(cr_ml_ctx *x, int i, const int64_t *count, cr_error *e) {
    size_t np = 0;
    for (size_t m = 0; m < x->n_movies; m++) np += x->movies[m].in_domain && count[m] > 0;
    if (np == 0) return CR_OK;
    x->pool[i] = cr_alloc_e(np * sizeof *x->pool[i], e, "the candidate pool");
    x->cum[i] = cr_alloc_e(np * sizeof *x->cum[i], e, "the candidate weights");
    if (!x->pool[i] || !x->cum[i]) return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    int64_t acc = 0;
    for (size_t m = 0; m < x->n_movies; m++) {
        if (!x->movies[m].in_domain || count[m] == 0) continue;
        acc += x->o->protocol == CR_ML_UNIFORM ? 1 : count[m];
        x->pool[i][x->n_pool[i]] = (int32_t)m;
        x->cum[i][x->n_pool[i]++] = acc;
    }
    return CR_OK;
}

/* Candidates for negatives. popularity: the domain's movies rated in its
 * training period, weighted by that count; uniform: the same movies alike;
 * period: the movies rated in the request's calendar year, weighted by
 * their count that year (the training-period pool is the fallback when a
 * year has too few allowed candidates). */
static cr_status cr_ml_pool(cr_ml_ctx *x, int64_t t_valid, cr_error *e) {
    int y0 = 1 << 30, y1 = -(1 << 30);
    int period = x->o->protocol == CR_ML_PERIOD;
    for (size_t i = 0; i < x->n_ratings; i++) {
        if (x->r_ts[i] < t_valid) x->movies[x->r_movie[i]].train_count++;
        if (period && x->movies[x->r_movie[i]].in_domain) {
            int y = cr_ml_year(x->r_ts[i]);
            if (y < y0) y0 = y;
            if (y > y1) y1 = y;
        }
    }
    x->n_pools = period && y1 >= y0 ? 1 + (y1 - y0 + 1) : 1;
    x->first_year = y0;
    x->pool = calloc((size_t)x->n_pools, sizeof *x->pool);
    x->cum = calloc((size_t)x->n_pools, sizeof *x->cum);
    x->n_pool = calloc((size_t)x->n_pools, sizeof *x->n_pool);
    int64_t *count = calloc(x->n_movies ? x->n_movies : 1, sizeof *count);
    if (!x->pool || !x->cum || !x->n_pool || !count) {
        free(count);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for the candidate pools");
    }
    for (size_t m = 0; m < x->n_movies; m++) count[m] = x->movies[m].train_count;
    cr_status s = cr_ml_pool_one(x, 0, count, e);
    for (int p = 1; !s && p < x->n_pools; p++) {
        memset(count, 0, x->n_movies * sizeof *count);
        for (size_t i = 0; i < x->n_ratings; i++)
            if (cr_ml_year(x->r_ts[i]) == y0 + p - 1) count[x->r_movie[i]]++;
        s = cr_ml_pool_one(x, p, count, e);
    }
    free(count);
    if (s) return s;
    if (x->n_pool[0] == 0 && x->o->negatives > 0)
        return cr_err(e, CR_ERR_CONFIG,
                      "%s: no rating of the domain falls before the validation "
                      "cut-off, so there is nothing to draw negatives from (lower valid/test fractions)",
                      x->path_ratings);
    size_t fb = 0;
    for (int p = 0; p < x->n_pools; p++)
        if (x->n_pool[p] > fb) fb = x->n_pool[p];
    if (fb) {
        x->fb_movie = cr_alloc_e(fb * sizeof *x->fb_movie, e, "the fallback pool");
        x->fb_cum = cr_alloc_e(fb * sizeof *x->fb_cum, e, "the fallback weights");
        if (!x->fb_movie || !x->fb_cum) return CR_ERR_NOMEM;
    }
    return CR_OK;
}

/* ---- negatives ------------------------------------------------------------- */

static int cr_ml_rated(const cr_ml_ctx *x, int32_t u, int32_t m) {
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
static size_t cr_ml_upper(const int64_t *cum, size_t n, int64_t w) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cum[mid] <= w) lo = mid + 1;
        else hi = mid;
    }
    CR_ASSERT(lo < n);
    return lo;
}

/* A negative is never the positive, never a movie the user rated at any
 * time, never drawn twice, and never released after the request's year
 * (a 2010 film cannot have been shown in 1997: without this rule,
 * "not released yet" would give negatives away). */
static int cr_ml_allowed(const cr_ml_ctx *x, int32_t u, int32_t pos, int32_t year, int32_t m,
                         const int32_t *got, int n_got) {
    if (m == pos) return 0;
    if (x->movies[m].year > year) return 0;
    for (int i = 0; i < n_got; i++)
        if (got[i] == m) return 0;
    return !cr_ml_rated(x, u, m);
}

/* Draw k distinct allowed negatives from pool p: rejection sampling
 * (exact for the restricted distribution and fast while most of the
 * weight is allowed), then, if that keeps failing, the allowed candidates
 * listed with the same weights. Returns how many it got (< k only when
 * the pool runs out of allowed movies). */
static int cr_ml_draw(cr_ml_ctx *x, cr_ml_stream *r, int p, int32_t u, int32_t pos, int32_t year,
                      int32_t *out, int got, int k) {
    const int32_t *pool = x->pool[p];
    const int64_t *cum = x->cum[p];
    size_t n_pool = x->n_pool[p];
    if (n_pool == 0) return got;
    int64_t total = cum[n_pool - 1];
    for (int tries = 0; got < k && tries < 32 + 16 * k; tries++) {
        int32_t m = pool[cr_ml_upper(cum, n_pool, (int64_t)cr_ml_below(r, (uint64_t)total))];
        if (cr_ml_allowed(x, u, pos, year, m, out, got)) out[got++] = m;
    }
    while (got < k) {
        size_t nf = 0;
        int64_t acc = 0;
        for (size_t j = 0; j < n_pool; j++) {
            int32_t m = pool[j];
            if (!cr_ml_allowed(x, u, pos, year, m, out, got)) continue;
            acc += cum[j] - (j ? cum[j - 1] : 0);
            x->fb_movie[nf] = m;
            x->fb_cum[nf++] = acc;
        }
        if (nf == 0) break;
        out[got++] =
            x->fb_movie[cr_ml_upper(x->fb_cum, nf, (int64_t)cr_ml_below(r, (uint64_t)acc))];
    }
    return got;
}

static cr_status cr_ml_negatives(cr_ml_ctx *x, cr_ml_stream *r, int32_t ri, int32_t year,
                                 int32_t *out, cr_error *e) {
    int k = x->o->negatives;
    if (k == 0) return CR_OK;
    int32_t u = x->r_user[ri], pos = x->r_movie[ri];
    int p = x->n_pools > 1 ? year - x->first_year + 1 : 0;
    if (p < 0 || p >= x->n_pools) p = 0;
    int got = cr_ml_draw(x, r, p, u, pos, year, out, 0, k);
    if (got < k && p != 0) got = cr_ml_draw(x, r, 0, u, pos, year, out, got, k);
    if (got < k)
        return cr_err(e, CR_ERR_LIMIT, "%s:%lld: user %lld: only %d candidate movies are "
                      "unrated by the user and released by %d; cannot draw %d negatives "
                      "(use fewer negatives or a wider domain)", x->path_ratings,
                      (long long)x->r_line[ri], (long long)x->users[u].id, got, year, k);
    return CR_OK;
}

/* ---- the one label from the future ------------------------------------------------ */

/* genre_return of every domain rating: does the same user rate another
 * movie of the domain that shares a genre with this one, later in the event
 * order and at most return_days after it? Computed once, walking the order
 * backwards with the earliest later timestamp per (user, genre), before any
 * row is written. It is a label only: no feature reads r_return, so the
 * future it looks at never reaches a row's inputs. Undefined (empty) for a
 * movie without genres and when the horizon runs past the log's last
 * rating (the answer is not in the data: censored). Dropped requests
 * (keep_fraction) still happened, so they count as returns. */
static cr_status cr_ml_returns(cr_ml_ctx *x, cr_error *e) {
    size_t n = x->n_ratings, ng = (size_t)(x->n_genres ? x->n_genres : 1);
    x->r_return = cr_alloc_e(n ? n : 1, e, "genre_return labels");
    int64_t *next = cr_alloc_e(x->n_users * ng * sizeof *next, e, "next rating per genre");
    if (!x->r_return || !next) {
        cr_free(next);
        return CR_ERR_NOMEM; /* cr_alloc_e filled e */
    }
    for (size_t i = 0; i < x->n_users * ng; i++) next[i] = INT64_MAX;
    int64_t end = INT64_MIN, horizon = (int64_t)x->o->return_days * 86400;
    for (size_t i = 0; i < n; i++)
        if (x->r_ts[i] > end) end = x->r_ts[i];
    for (size_t i = n; i-- > 0;) {
        int32_t ri = x->order[i].idx;
        const cr_ml_movie *m = &x->movies[x->r_movie[ri]];
        x->r_return[ri] = CR_ML_UNDEFINED;
        if (!m->in_domain || !m->genres) continue;
        int64_t t = x->r_ts[ri], *nu = next + (size_t)x->r_user[ri] * ng;
        if (t <= end - horizon) {
            int back = 0;
            for (int g = 0; g < x->n_genres; g++)
                back |= (m->genres >> g & 1) && nu[g] - t <= horizon;
            x->r_return[ri] = (uint8_t)back;
        }
        for (int g = 0; g < x->n_genres; g++)
            if (m->genres >> g & 1) nu[g] = t;
    }
    cr_free(next);
    return CR_OK;
}

/* ---- writing ----------------------------------------------------------------- */

static char *cr_ml_i64(char *buf, int64_t v) {
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

static char *cr_ml_f(char *buf, size_t n, double v) {
    snprintf(buf, n, "%.6g", v);
    return buf;
}

/* The user's most frequent past genres, ties by genre name. */
static void cr_ml_top_genres(const cr_ml_ctx *x, int32_t u, char *buf, size_t n) {
    const int32_t *gc = x->gcount + (size_t)u * (size_t)x->n_genres;
    int top[CR_ML_TOP], nt = 0;
    for (int g = 0; g < x->n_genres; g++) {
        if (gc[g] == 0) continue;
        int at = nt;
        while (at > 0 &&
               (gc[top[at - 1]] < gc[g] ||
                (gc[top[at - 1]] == gc[g] && x->genre_rank[top[at - 1]] > x->genre_rank[g])))
            at--;
        if (at >= CR_ML_TOP) continue;
        int last = nt < CR_ML_TOP ? nt : CR_ML_TOP - 1;
        for (int i = last; i > at; i--) top[i] = top[i - 1];
        top[at] = g;
        if (nt < CR_ML_TOP) nt++;
    }
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < nt && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? "|" : "", x->genre[top[i]]);
}

static void cr_ml_last_items(const cr_ml_ctx *x, const cr_ml_user *us, char *buf) {
    int64_t nl = us->count < CR_ML_LAST ? us->count : CR_ML_LAST;
    char *p = buf;
    *p = '\0';
    for (int64_t k = 0; k < nl; k++) {
        int slot = (int)((us->last_pos - 1 - k + 2 * CR_ML_LAST) % CR_ML_LAST);
        if (k) *p++ = '|';
        cr_ml_i64(p, x->movies[us->last[slot]].id);
        p += strlen(p);
    }
}

typedef struct cr_ml_row {
    const char *f[CR_ML_NCOL];
    char num[CR_ML_NCOL][32]; /* numbers are formatted here */
    char top[CR_ML_TOP * 66];
    char last[CR_ML_LAST * 22];
} cr_ml_row;

/* Writes one request: the positive, then its negatives. Only state from
 * before the event is read here; the caller updates it afterwards. */
static cr_status cr_ml_request(cr_ml_ctx *x, cr_csv_writer *w, cr_ml_row *row, int64_t rid,
                               int32_t ri, int split, const struct tm *tm, const int32_t *neg,
                               cr_ml_stats *st, cr_error *e) {
    static const char *const split_name[3] = {"train", "valid", "test"};
    int32_t u = x->r_user[ri], pos = x->r_movie[ri];
    const cr_ml_user *us = &x->users[u];
    int64_t t = x->r_ts[ri];
    const char **f = row->f;
    char (*num)[32] = row->num;
    for (int c = 0; c < CR_ML_NCOL; c++) f[c] = "";
    f[CR_ML_COL_REQUEST_ID] = cr_ml_i64(num[CR_ML_COL_REQUEST_ID], rid);
    f[CR_ML_COL_USER_ID] = cr_ml_i64(num[CR_ML_COL_USER_ID], us->id);
    f[CR_ML_COL_TIMESTAMP] = cr_ml_i64(num[CR_ML_COL_TIMESTAMP], t);
    f[CR_ML_COL_SPLIT] = split_name[split];
    f[CR_ML_COL_HIST_COUNT] = cr_ml_i64(num[CR_ML_COL_HIST_COUNT], us->count);
    if (us->count > 0) {
        f[CR_ML_COL_HIST_MEAN] = cr_ml_f(num[CR_ML_COL_HIST_MEAN], 32, us->sum / (double)us->count);
        f[CR_ML_COL_DAYS_FIRST] = cr_ml_f(num[CR_ML_COL_DAYS_FIRST], 32,
                                          (double)(t - us->first_ts) / 86400.0);
    } else {
        f[CR_ML_COL_DAYS_FIRST] = "0";
    }
    cr_ml_top_genres(x, u, row->top, sizeof row->top);
    f[CR_ML_COL_HIST_TOP] = row->top;
    cr_ml_last_items(x, us, row->last);
    f[CR_ML_COL_LAST_ITEMS] = row->last;
    f[CR_ML_COL_HOUR] = cr_ml_i64(num[CR_ML_COL_HOUR], tm->tm_hour);
    f[CR_ML_COL_DOW] = cr_ml_i64(num[CR_ML_COL_DOW], tm->tm_wday);
    int32_t year_t = tm->tm_year + 1900;
    double r = x->r_rating[ri];
    for (int k = 0; k <= x->o->negatives; k++) {
        int32_t mi = k == 0 ? pos : neg[k - 1];
        const cr_ml_movie *m = &x->movies[mi];
        const char *tx = x->text.buf;
        f[CR_ML_COL_MOVIE_ID] = cr_ml_i64(num[CR_ML_COL_MOVIE_ID], m->id);
        f[CR_ML_COL_GENRES] = tx + m->genres_text;
        f[CR_ML_COL_YEAR] = m->year ? cr_ml_i64(num[CR_ML_COL_YEAR], m->year) : "";
        f[CR_ML_COL_ITEM_AGE] = m->year ? cr_ml_i64(num[CR_ML_COL_ITEM_AGE], year_t - m->year) : "";
        f[CR_ML_COL_ITEM_POP] = cr_ml_i64(num[CR_ML_COL_ITEM_POP], m->pop);
        f[CR_ML_COL_ITEM_MEAN] =
            m->pop ? cr_ml_f(num[CR_ML_COL_ITEM_MEAN], 32, m->sum / (double)m->pop) : "";
        f[CR_ML_COL_DIRECTOR] = tx + m->director;
        f[CR_ML_COL_MPAA] = tx + m->mpaa;
        f[CR_ML_COL_MAJOR] = tx + m->major;
        f[CR_ML_COL_IMDB] = tx + m->imdb;
        f[CR_ML_COL_RUNTIME] = tx + m->runtime;
        int ng = __builtin_popcountll(m->genres);
        f[CR_ML_COL_OVERLAP] =
            ng ? cr_ml_f(num[CR_ML_COL_OVERLAP], 32,
                         (double)__builtin_popcountll(m->genres & us->genres) / ng)
               : "";
        int new_release = m->year && m->year >= year_t - 1;
        f[CR_ML_COL_NEW_RELEASE] = new_release ? "1" : "0";
        if (k == 0) {
            int like = r >= 4.0, discovery = (m->genres & ~us->genres) != 0;
            f[CR_ML_COL_CLICK] = "1";
            f[CR_ML_COL_RATING] = cr_ml_f(num[CR_ML_COL_RATING], 32, r);
            f[CR_ML_COL_LIKE] = like ? "1" : "0";
            f[CR_ML_COL_ENGAGEMENT] = cr_ml_f(num[CR_ML_COL_ENGAGEMENT], 32, r / 5.0);
            f[CR_ML_COL_DISCOVERY] = discovery ? "1" : "0";
            int back = x->r_return[ri];
            f[CR_ML_COL_GENRE_RETURN] = back == CR_ML_UNDEFINED ? "" : back ? "1" : "0";
            if (back == CR_ML_UNDEFINED) st->return_undefined++;
            else st->return_rate += back;
            st->like_rate += like;
            st->mean_engagement += r / 5.0;
            st->discovery_rate += discovery;
            st->new_release_rate += new_release;
        } else {
            f[CR_ML_COL_CLICK] = "0";
            f[CR_ML_COL_RATING] = f[CR_ML_COL_LIKE] = f[CR_ML_COL_ENGAGEMENT] = "";
            f[CR_ML_COL_DISCOVERY] = f[CR_ML_COL_GENRE_RETURN] = "";
        }
        CR_TRY(cr_csv_write_row(w, CR_ML_NCOL, f, e));
    }
    st->requests++;
    st->rows += x->o->negatives + 1;
    st->requests_split[split]++;
    st->rows_split[split] += x->o->negatives + 1;
    return CR_OK;
}

/* After the event: it becomes part of the past. */
static void cr_ml_update(cr_ml_ctx *x, int32_t ri) {
    int32_t u = x->r_user[ri], mi = x->r_movie[ri];
    cr_ml_movie *m = &x->movies[mi];
    if (m->hidden) return; /* strict: as if never rated */
    m->pop++;
    m->sum += x->r_rating[ri];
    if (x->o->history == CR_ML_HISTORY_DOMAIN && !m->in_domain) return;
    cr_ml_user *us = &x->users[u];
    if (us->count == 0) us->first_ts = x->r_ts[ri];
    us->count++;
    us->sum += x->r_rating[ri];
    us->last[us->last_pos] = mi;
    us->last_pos = (us->last_pos + 1) % CR_ML_LAST;
    us->genres |= m->genres;
    int32_t *gc = x->gcount + (size_t)u * (size_t)x->n_genres;
    for (int g = 0; g < x->n_genres; g++) gc[g] += (int32_t)(m->genres >> g & 1);
}

/* ---- the build ------------------------------------------------------------------- */

void cr_ml_opts_default(cr_ml_opts *o) {
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->negatives = 4;
    o->protocol = CR_ML_POPULARITY;
    o->seed = 1;
    o->valid_frac = 0.1;
    o->test_frac = 0.1;
    o->history = CR_ML_HISTORY_DOMAIN;
    o->keep_fraction = 1.0;
    o->return_days = 30;
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

#define CR_ML_MAX_NEGATIVES 1000
#define CR_ML_MAX_RETURN_DAYS 3650

static cr_status cr_ml_check_opts(const cr_ml_opts *o, cr_error *e) {
    if (!o->in_dir || !*o->in_dir)
        return cr_err(e, CR_ERR_ARG, "in_dir: expected a directory, got none");
    if (!o->out_path || !*o->out_path)
        return cr_err(e, CR_ERR_ARG, "out_path: expected a file, got none");
    if (o->negatives < 0 || o->negatives > CR_ML_MAX_NEGATIVES)
        return cr_err(e, CR_ERR_ARG, "negatives: expected 0 to %d, got %d", CR_ML_MAX_NEGATIVES,
                      o->negatives);
    if (o->protocol != CR_ML_POPULARITY && o->protocol != CR_ML_UNIFORM && o->protocol != CR_ML_PERIOD)
        return cr_err(e, CR_ERR_ARG, "protocol: expected popularity, uniform or period, got %d",
                      (int)o->protocol);
    if (o->history != CR_ML_HISTORY_DOMAIN && o->history != CR_ML_HISTORY_ALL)
        return cr_err(e, CR_ERR_ARG, "history: expected all or domain, got %d", (int)o->history);
    if (!(o->valid_frac >= 0 && o->valid_frac < 1))
        return cr_err(e, CR_ERR_ARG, "valid_frac: expected a fraction in [0, 1), got %g",
                      o->valid_frac);
    if (!(o->test_frac >= 0 && o->test_frac < 1))
        return cr_err(e, CR_ERR_ARG, "test_frac: expected a fraction in [0, 1), got %g",
                      o->test_frac);
    if (!(o->valid_frac + o->test_frac < 1))
        return cr_err(e, CR_ERR_ARG, "valid_frac + test_frac: expected less than 1, got %g",
                      o->valid_frac + o->test_frac);
    if (o->return_days < 1 || o->return_days > CR_ML_MAX_RETURN_DAYS)
        return cr_err(e, CR_ERR_ARG, "return_days: expected 1 to %d, got %d",
                      CR_ML_MAX_RETURN_DAYS, o->return_days);
    if (!(o->keep_fraction >= 0 && o->keep_fraction <= 1))
        return cr_err(e, CR_ERR_ARG, "keep_fraction: expected a fraction in [0, 1], got %g",
                      o->keep_fraction);
    return CR_OK;
}
/* Creates the output's directory, so "build/movielens/impressions.csv"
 * works in a fresh tree. */
static cr_status cr_ml_out_dir(const char *path, cr_error *e) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return CR_OK;
    char dir[4096];
    size_t n = (size_t)(slash - path);
    if (n >= sizeof dir) return cr_err(e, CR_ERR_ARG, "%s: path too long", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    return cr_mkdirs(dir, e);
}

cr_status cr_ml_build(const cr_ml_opts *o, cr_ml_stats *stats, cr_error *e) {
    cr_ml_stats local;
    cr_ml_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    CR_TRY(cr_ml_check_opts(o, e));
    cr_ml_ctx *x = calloc(1, sizeof *x);
    if (!x) return cr_err(e, CR_ERR_NOMEM, "out of memory for the MovieLens builder");
    x->o = o;
    cr_csv_writer *w = NULL;
    cr_ml_row *row = NULL;
    int32_t *neg = NULL;
    int64_t n_domain = 0;
    cr_status s;
    if ((s = cr_ml_load(x, st, e)) != CR_OK) goto fail;
    if ((s = cr_ml_domain(x, &n_domain, e)) != CR_OK) goto fail;
    st->domain_ratings = n_domain;
    if ((s = cr_ml_index(x, e)) != CR_OK) goto fail;
    if ((s = cr_ml_returns(x, e)) != CR_OK) goto fail;
    for (size_t i = 0; i < x->n_ratings; i++) st->hidden_ratings += x->movies[x->r_movie[i]].hidden;
    cr_ml_split(x, n_domain, &st->t_valid, &st->t_test);
    if ((s = cr_ml_pool(x, st->t_valid, e)) != CR_OK) goto fail;
    st->pool = (int64_t)x->n_pool[0];
    if (x->n_genres > 0) {
        x->gcount = cr_alloc_e(x->n_users * (size_t)x->n_genres * sizeof *x->gcount, e,
                               "per-user genre counts");
        if (!x->gcount) { s = CR_ERR_NOMEM; goto fail; }
    }
    row = calloc(1, sizeof *row);
    neg = calloc((size_t)o->negatives + 1, sizeof *neg);
    if (!row || !neg) { s = cr_err(e, CR_ERR_NOMEM, "out of memory for a row"); goto fail; }

    if ((s = cr_ml_out_dir(o->out_path, e)) != CR_OK) goto fail;
    if ((s = cr_csv_writer_open(&w, o->out_path, ',', e)) != CR_OK) goto fail;
    if ((s = cr_csv_write_row(w, CR_ML_NCOL, cr_ml_colnames, e)) != CR_OK) goto fail;
    for (size_t i = 0; i < x->n_ratings; i++) {
        int32_t ri = x->order[i].idx;
        if (x->movies[x->r_movie[ri]].in_domain) {
            int64_t t = x->r_ts[ri];
            int split = t < st->t_valid  ? CR_SPLIT_TRAIN
                        : t < st->t_test ? CR_SPLIT_VALID
                                         : CR_SPLIT_TEST;
            cr_ml_stream r = {cr_ml_hash(o->seed ^ cr_ml_hash((uint64_t)ri + 1))};
            double keep_u = (double)(cr_ml_next(&r) >> 11) * 0x1.0p-53;
            if (split == CR_SPLIT_TRAIN && !(keep_u < o->keep_fraction)) {
                st->dropped++;
            } else {
                time_t tt = (time_t)t;
                struct tm tm;
                if (!gmtime_r(&tt, &tm)) {
                    s = cr_err(e, CR_ERR_PARSE, "%s:%lld: timestamp %lld is out of range",
                               x->path_ratings, (long long)x->r_line[ri], (long long)t);
                    goto fail;
                }
                if ((s = cr_ml_negatives(x, &r, ri, tm.tm_year + 1900, neg, e)) != CR_OK) goto fail;
                if ((s = cr_ml_request(x, w, row, st->requests, ri, split, &tm, neg, st, e)) !=
                    CR_OK)
                    goto fail;
                x->users[x->r_user[ri]].requested = 1;
                x->movies[x->r_movie[ri]].positive = 1;
            }
        }
        cr_ml_update(x, ri);
    }
    s = cr_csv_writer_commit(w, e);
    w = NULL;
    if (s != CR_OK) goto fail;
    for (size_t u = 0; u < x->n_users; u++) st->users += x->users[u].requested;
    for (size_t m = 0; m < x->n_movies; m++) st->items += x->movies[m].positive;
    if (st->requests > 0) {
        double n = (double)st->requests;
        st->like_rate /= n;
        st->mean_engagement /= n;
        st->discovery_rate /= n;
        if (st->requests > st->return_undefined)
            st->return_rate /= (double)(st->requests - st->return_undefined);
        st->new_release_rate /= n;
    }
    free(row);
    free(neg);
    cr_ml_ctx_free(x);
    free(x);
    return CR_OK;
fail:
    if (w) cr_csv_writer_abort(w);
    free(row);
    free(neg);
    cr_ml_ctx_free(x);
    free(x);
    return s;
}
