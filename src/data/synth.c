/*
 * synth.c - two-domain impression logs from a known generative model (the
 * model is written out in docs/experiment.md). One world of users with a
 * shared taste vector feeds both domains; the source sees much more traffic
 * and logs user signals the target lacks, so a model trained on it knows
 * user tastes the scarce target data cannot teach. Rows stream to CSV: the
 * only memory is per user and per item, never per row.
 */
#include "synth.h"

#include "../core/yaml.h"
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N_ITEM_FEAT = 3, TOP_GENRES = 3, DAY0 = 1600000000 };

void cr_synth_defaults(cr_synth_cfg *c) {
    if (!c) return;
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->users = 2000;
    c->dim = 8;
    c->genres = 16;
    c->days = 360;
    c->valid = 0.1;
    c->test = 0.1;
    c->label_noise = 0.5;
    c->popularity_skew = 1.0;
    c->new_release_days = 30;
    c->new_release_boost = 3;
    c->item_overlap = 0;
    c->user_signals = 2;
    cr_synth_domain s = {"source", 100000, 4000, 5, -1.5, 0.0, 0.5};
    cr_synth_domain t = {"target", 1000, 400, 5, -1.2, 0.5, 0.5};
    c->source = s;
    c->target = t;
}

static cr_status load_domain(const cr_yaml_node *root, const char *key, cr_synth_domain *d,
                             cr_error *e) {
    static const char *const keys[] = {"name",       "requests", "items",     "candidates",
                                       "click_bias", "specific", "catalogue", NULL};
    const cr_yaml_node *m = cr_yaml_get(root, key);
    if (!m || cr_yaml_is_null(m)) return CR_OK;
    CR_TRY(cr_yaml_expect(m, CR_YAML_MAP, key, e));
    CR_TRY(cr_yaml_check_keys(m, keys, key, e));
    char def[32];
    snprintf(def, sizeof def, "%s", d->name);
    CR_TRY(cr_yaml_str(m, "name", key, 0, def, d->name, sizeof d->name, e));
    CR_TRY(cr_yaml_int(m, "requests", key, 0, d->requests, 1, (int64_t)1 << 40, &d->requests, e));
    CR_TRY(cr_yaml_int32(m, "items", key, 0, d->items, 1, 1 << 26, &d->items, e));
    CR_TRY(cr_yaml_int32(m, "candidates", key, 0, d->candidates, 1, 1000, &d->candidates, e));
    CR_TRY(cr_yaml_double(m, "click_bias", key, 0, d->click_bias, -20, 20, &d->click_bias, e));
    CR_TRY(cr_yaml_double(m, "specific", key, 0, d->specific, 0, 10, &d->specific, e));
    CR_TRY(cr_yaml_double(m, "catalogue", key, 0, d->catalogue, 0, 1, &d->catalogue, e));
    for (const char *p = d->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(m, "name"), key,
                               "name: '%s' becomes a file name; use letters, digits, _ and -",
                               d->name);
    return CR_OK;
}

cr_status cr_synth_cfg_load(cr_synth_cfg *c, const char *path, cr_error *e) {
    static const char *const keys[] = {
        "seed",  "users",       "dim",           "genres",          "days",
        "valid", "test",        "label_noise",   "popularity_skew", "new_release_days",
        "new_release_boost",    "item_overlap",  "user_signals",    "source",
        "target", NULL};
    if (!c || !path) return cr_err(e, CR_ERR_ARG, "cr_synth_cfg_load: c and path must not be NULL");
    cr_synth_defaults(c);
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, path, e));
    const cr_yaml_node *r = cr_yaml_root(doc);
    cr_status s;
    int64_t seed;
    if ((s = cr_yaml_check_keys(r, keys, "", e))) goto done;
    if ((s = cr_yaml_int(r, "seed", "", 0, 1, 0, INT64_MAX, &seed, e))) goto done;
    c->seed = (uint64_t)seed;
    if ((s = cr_yaml_int32(r, "users", "", 0, c->users, 1, 1 << 26, &c->users, e))) goto done;
    if ((s = cr_yaml_int32(r, "dim", "", 0, c->dim, 1, 256, &c->dim, e))) goto done;
    if ((s = cr_yaml_int32(r, "genres", "", 0, c->genres, TOP_GENRES + 1, 10000, &c->genres, e)))
        goto done;
    if ((s = cr_yaml_double(r, "days", "", 0, c->days, 1, 1e5, &c->days, e))) goto done;
    if ((s = cr_yaml_double(r, "valid", "", 0, c->valid, 0, 0.9, &c->valid, e))) goto done;
    if ((s = cr_yaml_double(r, "test", "", 0, c->test, 0, 0.9, &c->test, e))) goto done;
    if ((s = cr_yaml_double(r, "label_noise", "", 0, c->label_noise, 0, 100, &c->label_noise, e)))
        goto done;
    if ((s = cr_yaml_double(r, "popularity_skew", "", 0, c->popularity_skew, 0, 5,
                            &c->popularity_skew, e)))
        goto done;
    if ((s = cr_yaml_double(r, "new_release_days", "", 0, c->new_release_days, 0, 1e5,
                            &c->new_release_days, e)))
        goto done;
    if ((s = cr_yaml_double(r, "new_release_boost", "", 0, c->new_release_boost, 1, 1000,
                            &c->new_release_boost, e)))
        goto done;
    if ((s = cr_yaml_double(r, "item_overlap", "", 0, c->item_overlap, 0, 1, &c->item_overlap, e)))
        goto done;
    if ((s = cr_yaml_int32(r, "user_signals", "", 0, c->user_signals, 0, CR_SYNTH_MAX_SIGNALS,
                           &c->user_signals, e)))
        goto done;
    if ((s = load_domain(r, "source", &c->source, e))) goto done;
    if ((s = load_domain(r, "target", &c->target, e))) goto done;
    s = cr_synth_check(c, e);
    if (s) cr_err_prefix(e, "%s", path);
done:
    cr_yaml_free(doc);
    return s;
}

cr_status cr_synth_check(const cr_synth_cfg *c, cr_error *e) {
    if (c->users < 1 || c->dim < 1 || c->genres < 1 || !(c->days > 0))
        return cr_err(e, CR_ERR_CONFIG, "users, dim and genres must be >= 1 and days > 0, got "
                      "%d, %d, %d and %g", c->users, c->dim, c->genres, c->days);
    if (!(c->valid >= 0 && c->test >= 0 && c->valid + c->test < 1))
        return cr_err(e, CR_ERR_CONFIG, "valid + test must be below 1, got %g + %g", c->valid,
                      c->test);
    if (!strcmp(c->source.name, c->target.name))
        return cr_err(e, CR_ERR_CONFIG, "source and target are both named '%s'", c->source.name);
    if (c->user_signals < 0 || c->user_signals > CR_SYNTH_MAX_SIGNALS)
        return cr_err(e, CR_ERR_CONFIG, "user_signals must be in [0, %d]", CR_SYNTH_MAX_SIGNALS);
    const cr_synth_domain *d[2] = {&c->source, &c->target};
    for (int i = 0; i < 2; i++) {
        int64_t released = (int64_t)ceil(d[i]->catalogue * d[i]->items);
        if (released < d[i]->candidates)
            return cr_err(e, CR_ERR_CONFIG,
                          "%s: %lld items are released on day 0 (catalogue %g of %d), fewer than "
                          "the %d candidates of a request",
                          d[i]->name, (long long)released, d[i]->catalogue, d[i]->items,
                          d[i]->candidates);
        if (d[i]->requests < 1 || d[i]->items < 1 || d[i]->candidates < 1)
            return cr_err(e, CR_ERR_CONFIG, "%s: requests, items and candidates must be >= 1",
                          d[i]->name);
        if ((double)d[i]->requests * (1 - c->valid - c->test) < 1)
            return cr_err(e, CR_ERR_CONFIG, "%s: no training request at %lld requests",
                          d[i]->name, (long long)d[i]->requests);
    }
    if (c->item_overlap * c->target.items > c->source.items)
        return cr_err(e, CR_ERR_CONFIG, "item_overlap %g of %d target items exceeds the %d source "
                      "items", c->item_overlap, c->target.items, c->source.items);
    return CR_OK;
}

/* ---- the world: users and genres, shared by both domains ---------------------- */

typedef struct world {
    int U, d, G, F;
    float *taste;    /* (U, d) shared taste */
    float *spec;     /* (U, d) the target's own taste component */
    float *sig;      /* (U, F) what the source logs about the user */
    double *act_cum; /* (U) cumulative activity */
    int *top;        /* (U, TOP_GENRES) the user's favourite genres */
    int *segment;    /* (U) a coarse, noisy view of the taste both domains log */
    float *centroid; /* (G, d) */
    float *proj;     /* (N_ITEM_FEAT, d) item latent -> observed item features */
} world;

typedef struct catalogue {
    int n;
    int *genre;
    float *v;        /* (n, d) */
    float *q;        /* (n) quality */
    float *qobs;     /* (n) a noisy editorial score of the quality, logged by both */
    float *release;  /* (n) day */
    float *feat;     /* (n, N_ITEM_FEAT) */
    double *cum;     /* (n) cumulative Zipf exposure weight */
    int *source_id;  /* (n) id in the source catalogue, or -1 */
    int64_t *clicks; /* running state */
} catalogue;

static void world_free(world *w) {
    free(w->taste); free(w->spec); free(w->sig); free(w->act_cum); free(w->top); free(w->segment);
    free(w->centroid); free(w->proj);
}

static void cat_free(catalogue *c) {
    free(c->genre); free(c->v); free(c->q); free(c->qobs); free(c->release); free(c->feat); free(c->cum);
    free(c->source_id); free(c->clicks);
}

static float dot(const float *a, const float *b, int d) {
    float s = 0;
    for (int i = 0; i < d; i++) s += a[i] * b[i];
    return s;
}

static cr_status world_make(world *w, const cr_synth_cfg *c, cr_error *e) {
    memset(w, 0, sizeof *w);
    w->U = c->users; w->d = c->dim; w->G = c->genres; w->F = c->user_signals;
    size_t U = (size_t)w->U, d = (size_t)w->d;
    w->taste = malloc(U * d * sizeof(float));
    w->spec = malloc(U * d * sizeof(float));
    w->sig = malloc(U * (size_t)(w->F ? w->F : 1) * sizeof(float));
    w->act_cum = malloc(U * sizeof(double));
    w->top = malloc(U * TOP_GENRES * sizeof(int));
    w->segment = malloc(U * sizeof(int));
    w->centroid = malloc((size_t)w->G * d * sizeof(float));
    w->proj = malloc(N_ITEM_FEAT * d * sizeof(float));
    float *sproj = malloc((size_t)(w->F ? w->F : 1) * d * sizeof(float));
    if (!w->taste || !w->spec || !w->sig || !w->act_cum || !w->top || !w->segment || !w->centroid || !w->proj ||
        !sproj) {
        free(sproj);
        world_free(w);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for %d synthetic users", w->U);
    }
    cr_rng r;
    cr_rng_seed(&r, c->seed * 0x9E3779B97F4A7C15ULL + 1);
    float sd = (float)(1.0 / sqrt((double)d)); /* unit-norm vectors on average */
    cr_rng_fill_normal(&r, w->centroid, (size_t)w->G * d, sd);
    cr_rng_fill_normal(&r, w->proj, N_ITEM_FEAT * d, 1.0f);
    cr_rng_fill_normal(&r, sproj, (size_t)(w->F ? w->F : 1) * d, 1.0f);
    double acc = 0;
    for (size_t u = 0; u < U; u++) {
        float *t = w->taste + u * d;
        /* a user leans towards one genre: tastes cluster, as real ones do */
        int g = (int)cr_rng_below(&r, (uint64_t)w->G);
        for (size_t i = 0; i < d; i++)
            t[i] = 0.7f * w->centroid[(size_t)g * d + i] + 0.7f * sd * (float)cr_rng_normal(&r);
        for (size_t i = 0; i < d; i++) w->spec[u * d + i] = sd * (float)cr_rng_normal(&r);
        for (int f = 0; f < w->F; f++)
            w->sig[u * (size_t)w->F + (size_t)f] =
                dot(sproj + (size_t)f * d, t, w->d) + 0.3f * (float)cr_rng_normal(&r);
        acc += exp(cr_rng_normal(&r)); /* log-normal activity: a few heavy users */
        w->act_cum[u] = acc;
        /* favourite genres by affinity to the centroids (ties: lower genre) */
        int *top = w->top + u * TOP_GENRES;
        float best[TOP_GENRES];
        for (int j = 0; j < TOP_GENRES; j++) top[j] = -1, best[j] = -INFINITY;
        for (int gg = 0; gg < w->G; gg++) {
            float a = dot(t, w->centroid + (size_t)gg * d, w->d);
            for (int j = 0; j < TOP_GENRES; j++)
                if (a > best[j]) {
                    for (int k = TOP_GENRES - 1; k > j; k--) best[k] = best[k - 1], top[k] = top[k - 1];
                    best[j] = a;
                    top[j] = gg;
                    break;
                }
        }
        /* the segment is the favourite genre 60% of the time: a demographic
         * both domains know, far coarser than the taste itself */
        w->segment[u] = cr_rng_uniform(&r) < 0.6 ? top[0] : (int)cr_rng_below(&r, (uint64_t)w->G);
    }
    free(sproj);
    return CR_OK;
}

static cr_status cat_make(catalogue *ct, const world *w, const cr_synth_cfg *c,
                          const cr_synth_domain *dm, uint64_t stream, const catalogue *src,
                          int n_shared, cr_error *e) {
    memset(ct, 0, sizeof *ct);
    size_t n = (size_t)dm->items, d = (size_t)w->d;
    ct->n = dm->items;
    ct->genre = malloc(n * sizeof(int));
    ct->v = malloc(n * d * sizeof(float));
    ct->q = malloc(n * sizeof(float));
    ct->qobs = malloc(n * sizeof(float));
    ct->release = malloc(n * sizeof(float));
    ct->feat = malloc(n * N_ITEM_FEAT * sizeof(float));
    ct->cum = malloc(n * sizeof(double));
    ct->source_id = malloc(n * sizeof(int));
    ct->clicks = calloc(n, sizeof(int64_t));
    uint32_t *rank = malloc(n * sizeof(uint32_t));
    if (!ct->genre || !ct->v || !ct->q || !ct->qobs || !ct->release || !ct->feat || !ct->cum ||
        !ct->source_id || !ct->clicks || !rank) {
        free(rank);
        cat_free(ct);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for %zu synthetic items", n);
    }
    cr_rng r;
    cr_rng_seed(&r, c->seed * 0x9E3779B97F4A7C15ULL + stream);
    float sd = (float)(1.0 / sqrt((double)d));
    size_t released0 = (size_t)ceil(dm->catalogue * dm->items);
    for (size_t i = 0; i < n; i++) {
        if ((int)i < n_shared) { /* the same item, seen in both domains */
            ct->source_id[i] = (int)i;
            ct->genre[i] = src->genre[i];
            memcpy(ct->v + i * d, src->v + i * d, d * sizeof(float));
            ct->q[i] = src->q[i];
            ct->qobs[i] = src->qobs[i];
            ct->release[i] = src->release[i];
            memcpy(ct->feat + i * N_ITEM_FEAT, src->feat + i * N_ITEM_FEAT,
                   N_ITEM_FEAT * sizeof(float));
            continue;
        }
        ct->source_id[i] = -1;
        int g = (int)cr_rng_below(&r, (uint64_t)w->G);
        ct->genre[i] = g;
        for (size_t j = 0; j < d; j++)
            ct->v[i * d + j] = 0.8f * w->centroid[(size_t)g * d + j] + 0.6f * sd * (float)cr_rng_normal(&r);
        ct->q[i] = 0.5f * (float)cr_rng_normal(&r);
        ct->qobs[i] = ct->q[i] + 0.3f * (float)cr_rng_normal(&r);
        /* the first share is the back catalogue; the rest is released over the period */
        ct->release[i] = i < released0 ? -(float)(cr_rng_uniform(&r) * c->days)
                                       : (float)(cr_rng_uniform(&r) * c->days);
        for (int f = 0; f < N_ITEM_FEAT; f++)
            ct->feat[i * N_ITEM_FEAT + (size_t)f] =
                dot(w->proj + (size_t)f * d, ct->v + i * d, w->d) + 0.2f * (float)cr_rng_normal(&r);
    }
    /* Zipf exposure over a random order of the items: popularity is not quality */
    for (size_t i = 0; i < n; i++) rank[i] = (uint32_t)i;
    cr_rng_shuffle_u32(&r, rank, n);
    double acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc += pow((double)rank[i] + 1.0, -c->popularity_skew);
        ct->cum[i] = acc;
    }
    free(rank);
    return CR_OK;
}

/* First index with cum[i] > x (cum increasing, x < cum[n-1]). */
static int64_t upper(const double *cum, int64_t n, double x) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (cum[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

/* Draw k distinct released items: Zipf exposure, new releases boosted by
 * accepting the others with probability 1 / boost. Rejection is exact;
 * after many rejections (early days, tiny catalogues) a scan of the
 * eligible items finishes the draw with the same weights. */
static void draw_candidates(cr_rng *r, const catalogue *ct, const cr_synth_cfg *c, double t,
                            int k, int *out) {
    int got = 0, tries = 0;
    while (got < k && tries < 64 * k) {
        tries++;
        int64_t i = upper(ct->cum, ct->n, cr_rng_uniform(r) * ct->cum[ct->n - 1]);
        if (ct->release[i] > t) continue;
        int fresh = t - ct->release[i] < c->new_release_days;
        if (!fresh && cr_rng_uniform(r) * c->new_release_boost >= 1.0) continue;
        int dup = 0;
        for (int j = 0; j < got; j++) dup |= out[j] == (int)i;
        if (!dup) out[got++] = (int)i;
    }
    while (got < k) { /* rare fallback: weighted draw over the eligible, not yet drawn */
        double tot = 0;
        for (int i = 0; i < ct->n; i++) {
            int dup = 0;
            for (int j = 0; j < got; j++) dup |= out[j] == i;
            if (ct->release[i] > t || dup) continue;
            double wgt = ct->cum[i] - (i ? ct->cum[i - 1] : 0);
            tot += t - ct->release[i] < c->new_release_days ? wgt : wgt / c->new_release_boost;
        }
        double x = cr_rng_uniform(r) * tot, acc = 0;
        int pick = -1;
        for (int i = 0; i < ct->n && pick < 0; i++) {
            int dup = 0;
            for (int j = 0; j < got; j++) dup |= out[j] == i;
            if (ct->release[i] > t || dup) continue;
            double wgt = ct->cum[i] - (i ? ct->cum[i - 1] : 0);
            acc += t - ct->release[i] < c->new_release_days ? wgt : wgt / c->new_release_boost;
            if (acc > x) pick = i;
        }
        if (pick < 0) /* rounding at the very end of the scan */
            for (int i = ct->n - 1; i >= 0 && pick < 0; i--) {
                int dup = 0;
                for (int j = 0; j < got; j++) dup |= out[j] == i;
                if (ct->release[i] <= t && !dup) pick = i;
            }
        out[got++] = pick; /* cr_synth_check guarantees k released items on day 0 */
    }
}

static const char *const split_names[3] = {"train", "valid", "test"};

/* Stream one domain. is_target selects the labels and blanks the source-only
 * signals; the columns before the labels are the same in both files, so one
 * teacher reads either. */
static cr_status write_domain(const world *w, catalogue *ct, const cr_synth_cfg *c,
                              const cr_synth_domain *dm, int is_target, const char *path,
                              uint64_t stream, FILE *log, cr_synth_stats *st, cr_error *e) {
    enum { MAXF = 32 };
    const char *hdr[MAXF];
    char sig_names[CR_SYNTH_MAX_SIGNALS][24]; /* "user_sig" + any int */
    int nf = 0;
    const char *base[] = {"request_id", "user_id", "item_id", "timestamp", "split", "hour",
                          "genre", "item_f1", "item_f2", "item_f3", "item_quality", "item_age",
                          "item_popularity", "hist_count", "user_segment"};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) hdr[nf++] = base[i];
    for (int f = 0; f < w->F; f++) {
        snprintf(sig_names[f], sizeof sig_names[f], "user_sig%d", f + 1);
        hdr[nf++] = sig_names[f];
    }
    hdr[nf++] = "new_release";
    hdr[nf++] = "click";
    if (is_target) {
        hdr[nf++] = "engagement";
        hdr[nf++] = "discovery";
        hdr[nf++] = "complete";
    } else {
        hdr[nf++] = "watch_time";
    }
    int64_t *hist = calloc((size_t)w->U, sizeof(int64_t));
    int *cand = malloc((size_t)dm->candidates * sizeof(int));
    if (!hist || !cand) {
        free(hist);
        free(cand);
        return cr_err(e, CR_ERR_NOMEM, "out of memory for %s", path);
    }
    cr_csv_writer *wr = NULL;
    cr_status s = cr_csv_writer_open(&wr, path, ',', e);
    if (!s) s = cr_csv_write_row(wr, nf, hdr, e);
    cr_rng r;
    cr_rng_seed(&r, c->seed * 0x9E3779B97F4A7C15ULL + stream);
    char buf[MAXF][40];
    const char *fields[MAXF];
    int dom = is_target;
    int64_t R = dm->requests, n_train = (int64_t)floor((double)R * (1 - c->valid - c->test));
    int64_t n_valid = (int64_t)floor((double)R * c->valid);
    size_t d = (size_t)w->d;
    double spec_norm = 1.0 / sqrt(1.0 + dm->specific * dm->specific);
    double scale = sqrt((double)w->d); /* tastes and items are unit-norm: dot ~ 1/sqrt(d) */
    cr_meter pm;
    cr_meter_start(&pm, log, dm->name, R, "requests");
    for (int64_t q = 0; q < R && !s; q++) {
        cr_meter_update(&pm, q, (double)st->rows[is_target], "rows", NULL, 0);
        /* requests are spread evenly in time, so a time split is a request split */
        double t = c->days * ((double)q + cr_rng_uniform(&r)) / (double)R;
        int sp = q < n_train ? 0 : q < n_train + n_valid ? 1 : 2;
        int u = (int)upper(w->act_cum, w->U, cr_rng_uniform(&r) * w->act_cum[w->U - 1]);
        double hour = floor((t - floor(t)) * 24.0);
        double ctx = 0.3 * cos(2 * M_PI * (hour - 20) / 24); /* evenings click more */
        draw_candidates(&r, ct, c, t, dm->candidates, cand);
        const float *tu = w->taste + (size_t)u * d, *su = w->spec + (size_t)u * d;
        int clicked[1000];
        for (int j = 0; j < dm->candidates && !s; j++) {
            int i = cand[j];
            const float *v = ct->v + (size_t)i * d;
            double aff = scale * spec_norm * (dot(tu, v, w->d) + dm->specific * dot(su, v, w->d));
            double logit = dm->click_bias + 1.5 * aff + 0.5 * ct->q[i] + ctx +
                           c->label_noise * cr_rng_normal(&r);
            int click = cr_rng_uniform(&r) < sigm(logit);
            clicked[j] = click;
            double age = t - ct->release[i];
            int nf2 = 0;
            snprintf(buf[nf2], 40, "%lld", (long long)(dom ? q + 1000000000LL : q)); nf2++;
            snprintf(buf[nf2], 40, "u%d", u); nf2++;
            if (ct->source_id[i] >= 0) snprintf(buf[nf2], 40, "s%d", ct->source_id[i]);
            else snprintf(buf[nf2], 40, "%c%d", dom ? 't' : 's', i);
            nf2++;
            snprintf(buf[nf2], 40, "%lld", (long long)(DAY0 + (int64_t)floor(t * 86400.0))); nf2++;
            snprintf(buf[nf2], 40, "%s", split_names[sp]); nf2++;
            snprintf(buf[nf2], 40, "%d", (int)hour); nf2++;
            snprintf(buf[nf2], 40, "g%d", ct->genre[i]); nf2++;
            for (int f = 0; f < N_ITEM_FEAT; f++, nf2++)
                snprintf(buf[nf2], 40, "%.4f", (double)ct->feat[(size_t)i * N_ITEM_FEAT + (size_t)f]);
            snprintf(buf[nf2], 40, "%.4f", (double)ct->qobs[i]); nf2++;
            snprintf(buf[nf2], 40, "%d", (int)floor(age)); nf2++;
            snprintf(buf[nf2], 40, "%lld", (long long)ct->clicks[i]); nf2++;
            snprintf(buf[nf2], 40, "%lld", (long long)hist[u]); nf2++;
            snprintf(buf[nf2], 40, "seg%d", w->segment[u]); nf2++;
            for (int f = 0; f < w->F; f++, nf2++) {
                if (dom) buf[nf2][0] = 0; /* the target never logs these */
                else snprintf(buf[nf2], 40, "%.4f", (double)w->sig[(size_t)u * (size_t)w->F + (size_t)f]);
            }
            int fresh = age < c->new_release_days;
            snprintf(buf[nf2], 40, "%d", fresh); nf2++;
            snprintf(buf[nf2], 40, "%d", click); nf2++;
            /* how much the user liked what they opened: the same affinity,
             * with its own noise; defined only on clicks */
            double sat = 0.8 * aff + 0.8 * ct->q[i] + c->label_noise * cr_rng_normal(&r);
            if (!is_target) {
                if (click) snprintf(buf[nf2], 40, "%.4f", sigm(sat));
                else buf[nf2][0] = 0;
                nf2++;
            } else {
                int outside = 1;
                for (int g = 0; g < TOP_GENRES; g++) outside &= w->top[(size_t)u * TOP_GENRES + (size_t)g] != ct->genre[i];
                double pdisc = outside ? 0.85 : 0.1;
                int disc = cr_rng_uniform(&r) < pdisc;
                int comp = cr_rng_uniform(&r) < sigm(1.5 * sat - 0.5);
                if (click) {
                    snprintf(buf[nf2], 40, "%.4f", sigm(sat));
                    snprintf(buf[nf2 + 1], 40, "%d", disc);
                    snprintf(buf[nf2 + 2], 40, "%d", comp);
                } else {
                    buf[nf2][0] = buf[nf2 + 1][0] = buf[nf2 + 2][0] = 0;
                }
                nf2 += 3;
            }
            for (int f = 0; f < nf2; f++) fields[f] = buf[f];
            s = cr_csv_write_row(wr, nf2, fields, e);
            st->rows[dom]++;
            st->split_rows[dom][sp]++;
            st->clicks[dom] += click;
            st->new_release_rows[dom] += fresh;
        }
        /* state moves only after the request is written: features read the past */
        for (int j = 0; j < dm->candidates; j++) ct->clicks[cand[j]] += clicked[j];
        hist[u]++;
        st->requests[dom]++;
    }
    if (pm.printed) cr_meter_update(&pm, R, (double)st->rows[is_target], "rows", NULL, 1);
    cr_meter_done(&pm);
    free(hist);
    free(cand);
    if (s) {
        if (wr) cr_csv_writer_abort(wr);
        return s;
    }
    return cr_csv_writer_commit(wr, e);
}

cr_status cr_synth_write(const cr_synth_cfg *c, const char *out_dir, FILE *log,
                         cr_synth_stats *st, cr_error *e) {
    cr_synth_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    CR_TRY(cr_synth_check(c, e));
    if (c->target.candidates > 1000 || c->source.candidates > 1000)
        return cr_err(e, CR_ERR_CONFIG, "at most 1000 candidates per request");
    CR_TRY(cr_mkdirs(out_dir, e));
    double t0 = cr_now();
    world w;
    CR_TRY(world_make(&w, c, e));
    catalogue cs, ctg;
    int n_shared = (int)floor(c->item_overlap * c->target.items);
    cr_status s = cat_make(&cs, &w, c, &c->source, 2, NULL, 0, e);
    if (s) {
        world_free(&w);
        return s;
    }
    if ((s = cat_make(&ctg, &w, c, &c->target, 3, &cs, n_shared, e))) {
        cat_free(&cs);
        world_free(&w);
        return s;
    }
    st->shared_items = n_shared;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.csv", out_dir, c->source.name);
    s = write_domain(&w, &cs, c, &c->source, 0, path, 4, log, st, e);
    if (!s) {
        snprintf(path, sizeof path, "%s/%s.csv", out_dir, c->target.name);
        s = write_domain(&w, &ctg, c, &c->target, 1, path, 5, log, st, e);
    }
    st->seconds = cr_now() - t0;
    cat_free(&cs);
    cat_free(&ctg);
    world_free(&w);
    return s;
}
