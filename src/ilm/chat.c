/*
 * chat.c - conversational recommendation over a trained Item-Language
 * Model. Names typed by a person are matched to catalogue titles (Dice
 * coefficient of character bigrams, after reading "Matrix, The (1999)" as
 * "the matrix"); suggestions are catalogue items only: a shortlist of the
 * nearest items to the liked ones in the encoder's soft-token space,
 * re-ranked by the frozen LM's likelihood of each title after the
 * next-item prompt (the person becomes a {user} whose CF vector is the
 * mean of the liked items'), phrased by a template; the LM adds a line
 * about the top pick generated from its soft tokens. Only writes to the
 * FILE* it is given.
 */
#include "chat.h"

#include "ilm_eval.h"

#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CR_CHAT_MAX_LIKED 32

struct cr_chat {
    cr_p2_bundle b;
    cr_chat_opts o;
    char       **key;        /* (n_items) normalised titles, or NULL */
    float       *space;      /* (n_items, C) unit mean soft token per item */
    int32_t      liked[CR_CHAT_MAX_LIKED];
    int          n_liked;
    float       *user_cf;    /* (1, D) the person as a CF vector */
};

void cr_chat_opts_default(cr_chat_opts *o) {
    if (!o) return;
    o->k = 3;
    o->shortlist = 30;
    o->describe = 24;
    o->min_match = 0.55f;
}

/* ---- fuzzy titles ------------------------------------------------------------------------- */
/* Lowercase letters and digits, single spaces; a trailing "(YYYY)" dropped
 * and "x, the" read as "the x" (also a, an). Returns a heap string. */
static char *cr_chat_norm(const char *s) {
    size_t n = strlen(s);
    char *t = cr_alloc(n + 8), *o = cr_alloc(n + 8);
    if (!t || !o) {
        cr_free(t), cr_free(o);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (isalnum(ch)) t[k++] = (char)tolower(ch);
        else if (ch == ',') t[k++] = ',';
        else if (k && t[k - 1] != ' ') t[k++] = ' ';
    }
    while (k && t[k - 1] == ' ') k--;
    t[k] = '\0';
    /* "toy story 1995": drop a final four-digit year when the title had one in parentheses */
    const char *par = strrchr(s, '(');
    if (par && strlen(par) >= 6 && isdigit((unsigned char)par[1]) && k >= 5 && t[k - 5] == ' ')
        t[k -= 5] = '\0';
    static const char *const art[] = {", the", ", a", ", an"};
    o[0] = '\0';
    for (int a = 0; a < 3; a++) {
        size_t al = strlen(art[a]);
        if (k > al && !strcmp(t + k - al, art[a])) {
            snprintf(o, n + 8, "%s %.*s", art[a] + 2, (int)(k - al), t);
            break;
        }
    }
    if (!o[0]) memcpy(o, t, k + 1);
    for (char *p = o; *p; p++)
        if (*p == ',') *p = ' ';
    cr_free(t);
    return o;
}

/* Dice coefficient of the two strings' character bigrams (multisets). */
static double cr_chat_dice(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na < 2 || nb < 2) return !strcmp(a, b);
    uint8_t used[512] = {0};
    if (nb - 1 > sizeof used) nb = sizeof used + 1;
    int hit = 0;
    for (size_t i = 0; i + 1 < na; i++)
        for (size_t j = 0; j + 1 < nb; j++)
            if (!used[j] && a[i] == b[j] && a[i + 1] == b[j + 1]) {
                used[j] = 1, hit++;
                break;
            }
    return 2.0 * hit / (double)(na - 1 + nb - 1);
}

static int32_t cr_chat_match_keys(const cr_p2_data *d, char *const *key, const char *name,
                                  double min, double *score) {
    char *q = cr_chat_norm(name);
    int32_t best = -1;
    double bs = -1;
    for (int32_t i = 0; q && q[0] && i < d->mf.n_items; i++) {
        if (!key[i]) continue;
        double s = cr_chat_dice(q, key[i]);
        if (s > bs || (s == bs && best >= 0 && d->pop[i] > d->pop[best])) bs = s, best = i;
    }
    cr_free(q);
    if (score) *score = bs;
    return bs >= min ? best : -1;
}

int32_t cr_chat_match(const cr_p2_data *d, const char *name, double min, double *score) {
    char **key = cr_alloc(sizeof(char *) * (size_t)d->mf.n_items);
    if (!key) return -1;
    for (int32_t i = 0; i < d->mf.n_items; i++) key[i] = d->title[i] ? cr_chat_norm(d->title[i]) : NULL;
    int32_t r = cr_chat_match_keys(d, key, name, min, score);
    for (int32_t i = 0; i < d->mf.n_items; i++) cr_free(key[i]);
    cr_free(key);
    return r;
}

/* ---- open ---------------------------------------------------------------------------------- */
/* Every item's mean soft token, normalised: the space the shortlist comes from. */
static cr_status cr_chat_space(cr_chat *c, cr_error *e) {
    cr_p2_model *m = &c->b.m;
    const cr_p2_data *d = &c->b.d;
    int32_t N = d->mf.n_items;
    int B = 64, C = m->C;
    cr_p2_enc_ws w;
    CR_TRY(cr_p2_enc_ws_init(&w, m, B, e));
    uint8_t kind[64] = {0};
    c->space = cr_alloc(sizeof(float) * (size_t)N * C);
    if (!c->space) {
        cr_p2_enc_ws_free(&w);
        return cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    }
    for (int32_t i0 = 0; i0 < N; i0 += B) {
        int nb = N - i0 < B ? N - i0 : B;
        cr_p2_encode(m, &w, d->mf.item + (size_t)i0 * m->D, kind, nb);
        for (int i = 0; i < nb; i++) {
            float *z = c->space + (size_t)(i0 + i) * C;
            double nn = 0;
            for (int q = 0; q < m->nq; q++)
                for (int k = 0; k < C; k++) z[k] += w.soft[((size_t)i * m->nq + q) * C + k];
            for (int k = 0; k < C; k++) nn += (double)z[k] * z[k];
            float inv = nn > 0 ? (float)(1 / sqrt(nn)) : 0;
            for (int k = 0; k < C; k++) z[k] *= inv;
        }
    }
    cr_p2_enc_ws_free(&w);
    return CR_OK;
}

cr_status cr_chat_open(cr_chat **out, const char *dir, const cr_chat_opts *o, cr_error *e) {
    *out = NULL;
    cr_chat *c = cr_alloc(sizeof *c);
    if (!c) return cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    if (o) c->o = *o;
    else cr_chat_opts_default(&c->o);
    if (c->o.k < 1 || c->o.shortlist < c->o.k || c->o.describe < 0)
        return cr_free(c), cr_err(e, CR_ERR_ARG, "chat: need 1 <= k <= shortlist, describe >= 0");
    cr_status s = cr_p2_bundle_open(&c->b, dir, e);
    if (s != CR_OK) {
        cr_free(c);
        return s;
    }
    int32_t N = c->b.d.mf.n_items;
    c->key = cr_alloc(sizeof(char *) * (size_t)N);
    c->user_cf = cr_alloc(sizeof(float) * (size_t)c->b.m.D);
    if (!c->key || !c->user_cf) s = cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    for (int32_t i = 0; s == CR_OK && i < N; i++)
        if (c->b.d.title[i] && !(c->key[i] = cr_chat_norm(c->b.d.title[i])))
            s = cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    if (s == CR_OK) s = cr_chat_space(c, e);
    if (s != CR_OK) {
        cr_chat_free(c);
        return s;
    }
    *out = c;
    return CR_OK;
}

void cr_chat_free(cr_chat *c) {
    if (!c) return;
    for (int32_t i = 0; c->key && i < c->b.d.mf.n_items; i++) cr_free(c->key[i]);
    cr_free(c->key), cr_free(c->space), cr_free(c->user_cf);
    cr_p2_bundle_free(&c->b);
    cr_free(c);
}

/* ---- suggestions ----------------------------------------------------------------------- */
/* The shortlist: items nearest (cosine) to the mean of the liked items'
 * vectors, liked ones and items without a title excluded. */
static int cr_chat_shortlist(const cr_chat *c, const int32_t *liked, int n_liked, int32_t *out,
                             int k) {
    const cr_p2_data *d = &c->b.d;
    int C = c->b.m.C, n = 0;
    int32_t N = d->mf.n_items;
    float *q = cr_alloc(sizeof(float) * (size_t)C);
    double *best = cr_alloc(sizeof(double) * (size_t)k);
    if (!q || !best) {
        cr_free(q), cr_free(best);
        return 0;
    }
    for (int l = 0; l < n_liked; l++)
        for (int j = 0; j < C; j++) q[j] += c->space[(size_t)liked[l] * C + j];
    for (int32_t i = 0; i < N; i++) {
        if (!d->title[i]) continue;
        int skip = 0;
        for (int l = 0; l < n_liked; l++) skip |= liked[l] == i;
        if (skip) continue;
        double s = 0;
        for (int j = 0; j < C; j++) s += (double)q[j] * c->space[(size_t)i * C + j];
        int p = n < k ? n++ : k; /* insertion into the top k */
        while (p > 0 && best[p - 1] < s) {
            if (p < k) best[p] = best[p - 1], out[p] = out[p - 1];
            p--;
        }
        if (p < k) best[p] = s, out[p] = i;
    }
    cr_free(q), cr_free(best);
    return n;
}

/* Greedy continuation of the describe prompt for one item: the LM speaks
 * about the item from its soft tokens alone. */
static cr_status cr_chat_describe(cr_chat *c, int32_t item, char **text, cr_error *e) {
    cr_p2_bundle *b = &c->b;
    int n_new = c->o.describe, cap_T = b->max_seq + n_new;
    if (cap_T > b->lm.cfg.max_seq) cap_T = b->lm.cfg.max_seq;
    cr_p2_batch bt;
    cr_p2_enc_ws w = {0};
    cr_dec_ws ws = {0};
    int C = b->m.C, V = b->lm.cfg.vocab;
    float *emb = cr_alloc(sizeof(float) * (size_t)cap_T * C);
    int32_t *gen = cr_alloc(sizeof(int32_t) * (size_t)(n_new ? n_new : 1));
    CR_TRY(cr_p2_batch_init(&bt, 1, cap_T, 1, b->m.nq, e));
    cr_p2_example x = {.tmpl = cr_p2_template(CR_P2_DESCRIBE), .item = item, .user = -1};
    cr_status s = (emb && gen) ? CR_OK : cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    if (s == CR_OK) s = cr_p2_batch_add(&bt, &b->tok, &x, e);
    if (s == CR_OK) s = cr_p2_enc_ws_init(&w, &b->m, 1, e);
    if (s == CR_OK) s = cr_dec_ws_create(&ws, &b->lm, 1, cap_T, CR_DEC_WS_KV_CACHE, e);
    int T = bt.len[0], n = 0;
    if (s == CR_OK) {
        uint8_t kind = CR_QF_ITEM;
        cr_p2_encode(&b->m, &w, b->d.mf.item + (size_t)item * b->m.D, &kind, 1);
        s = cr_dec_embed(&b->lm, emb, bt.ids, T, e);
        for (int t = 0; s == CR_OK && t < T; t++)
            if (bt.soft[t] >= 0) memcpy(emb + (size_t)t * C, w.soft + (size_t)bt.soft[t] * C, sizeof(float) * C);
    }
    if (s == CR_OK) s = cr_dec_forward(&b->lm, &ws, NULL, emb, NULL, 1, T, 0, e);
    const float *last = s == CR_OK ? ws.logits + (size_t)(T - 1) * V : NULL;
    for (int pos = T; s == CR_OK && n < n_new && pos < cap_T; pos++) {
        int32_t id = 0;
        for (int v = 1; v < V; v++) id = last[v] > last[id] ? v : id;
        if (id == b->tok.eos) break;
        gen[n++] = id;
        if ((s = cr_dec_embed(&b->lm, emb, &id, 1, e)) ||
            (s = cr_dec_forward(&b->lm, &ws, NULL, emb, NULL, 1, 1, pos, e)))
            break;
        last = ws.logits;
    }
    if (s == CR_OK) s = cr_p2_tok_decode(&b->tok, gen, (size_t)n, text, e);
    cr_dec_ws_free(&ws);
    cr_p2_enc_ws_free(&w);
    cr_p2_batch_free(&bt);
    cr_free(emb), cr_free(gen);
    return s;
}

typedef struct { char *s; size_t n, cap; } cr_chat_str;

static void cr_chat_cat(cr_chat_str *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cr_chat_cat(cr_chat_str *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->s + r->n, r->cap - r->n, fmt, ap);
    va_end(ap);
    if (k > 0) r->n += (size_t)k < r->cap - r->n ? (size_t)k : r->cap - r->n - 1;
}

cr_status cr_chat_recommend(cr_chat *c, const int32_t *liked, int n_liked, int k, int32_t *items,
                            double *scores, int *n_out, cr_error *e) {
    *n_out = 0;
    cr_p2_bundle *b = &c->b;
    const cr_p2_data *d = &b->d;
    int K = c->o.shortlist > k ? c->o.shortlist : k, D = b->m.D;
    if (n_liked < 1 || n_liked > CR_CHAT_MAX_LIKED)
        return cr_err(e, CR_ERR_ARG, "recommend: expected 1 to %d liked items, got %d",
                      CR_CHAT_MAX_LIKED, n_liked);
    for (int l = 0; l < n_liked; l++)
        if (liked[l] < 0 || liked[l] >= d->mf.n_items)
            return cr_err(e, CR_ERR_ARG, "recommend: liked item %d is outside the catalogue [0, %d)",
                          (int)liked[l], (int)d->mf.n_items);
    int32_t *sl = cr_alloc(sizeof(int32_t) * (size_t)K);
    if (!sl) return cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    int n = cr_chat_shortlist(c, liked, n_liked, sl, K);
    /* the person as a {user}: the mean CF vector of what they liked */
    memset(c->user_cf, 0, sizeof(float) * (size_t)D);
    for (int l = 0; l < n_liked; l++)
        for (int j = 0; j < D; j++) c->user_cf[j] += d->mf.item[(size_t)liked[l] * D + j] / n_liked;
    int H = n_liked < b->hist ? n_liked : b->hist;
    const int32_t *hist = liked + (n_liked - H);
    cr_p2_batch bt;
    cr_p2_step st;
    double *score = cr_alloc(sizeof(double) * (size_t)(n ? n : 1));
    double sum[16];
    int32_t cnt[16];
    char buf[512];
    cr_status s = cr_p2_batch_init(&bt, 16, b->max_seq, 16 * (H + 1), b->m.nq, e);
    if (s == CR_OK) s = cr_p2_step_init(&st, &b->m, &b->lm, 16, b->max_seq, 16 * (H + 1), 0, e);
    else memset(&st, 0, sizeof st);
    if (s == CR_OK && !score) s = cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    for (int i0 = 0; s == CR_OK && i0 < n; i0 += 16) {
        int nb = n - i0 < 16 ? n - i0 : 16;
        cr_p2_batch_clear(&bt);
        for (int q = 0; s == CR_OK && q < nb; q++) {
            snprintf(buf, sizeof buf, " %s.", d->title[sl[i0 + q]]);
            cr_p2_example x = {.tmpl = cr_p2_template(CR_P2_NEXT), .item = -1, .user = 0,
                               .hist = hist, .n_hist = H, .target = buf, .eos = 1};
            s = cr_p2_batch_add(&bt, &b->tok, &x, e);
        }
        double loss;
        if (s == CR_OK) s = cr_p2_forward(&b->m, &st, &b->lm, &bt, d->mf.item, c->user_cf, 0, &loss, e);
        if (s != CR_OK) break;
        cr_p2_row_logprob(&st, &bt, b->lm.cfg.vocab, sum, cnt);
        for (int q = 0; q < nb; q++) score[i0 + q] = cnt[q] ? sum[q] / cnt[q] : -INFINITY;
    }
    /* the top k by likelihood, in order (selection: k is small) */
    int kk = k < n ? k : n;
    for (int i = 0; s == CR_OK && i < kk; i++) {
        int bi = i;
        for (int j = i + 1; j < n; j++) bi = score[j] > score[bi] ? j : bi;
        double ts = score[i];
        int32_t ti = sl[i];
        score[i] = score[bi], sl[i] = sl[bi], score[bi] = ts, sl[bi] = ti;
        items[i] = sl[i];
        if (scores) scores[i] = score[i];
    }
    if (s == CR_OK) *n_out = kk;
    cr_p2_step_free(&st);
    cr_p2_batch_free(&bt);
    cr_free(score), cr_free(sl);
    return s;
}

static cr_status cr_chat_suggest(cr_chat *c, cr_chat_str *out, cr_error *e) {
    const cr_p2_data *d = &c->b.d;
    int32_t top[64];
    int k = 0;
    CR_TRY(cr_chat_recommend(c, c->liked, c->n_liked, c->o.k < 64 ? c->o.k : 64, top, NULL, &k, e));
    cr_status s = CR_OK;
    if (k > 0) {
        cr_chat_cat(out, "Since you liked ");
        for (int l = 0; l < c->n_liked; l++)
            cr_chat_cat(out, "%s%s", l ? (l + 1 == c->n_liked ? " and " : ", ") : "", d->title[c->liked[l]]);
        cr_chat_cat(out, ", you might enjoy: ");
        for (int i = 0; i < k; i++)
            cr_chat_cat(out, "%s%s", i ? (i + 1 == k ? " and " : ", ") : "", d->title[top[i]]);
        cr_chat_cat(out, ".");
        char *about = NULL;
        if (c->o.describe > 0 && (s = cr_chat_describe(c, top[0], &about, e)) == CR_OK) {
            for (char *p = about; *p; p++)
                if (*p == '\n' || *p == '\r') *p = ' ';
            cr_chat_cat(out, "\nAbout %s, the model says:%s", d->title[top[0]], about);
        }
        cr_free(about);
    }
    return s;
}

/* The catalogue as the chat knows it: dense item ids, their MovieLens ids
 * and titles. */
int32_t cr_chat_n_items(const cr_chat *c) { return c->b.d.mf.n_items; }
int64_t cr_chat_raw_item(const cr_chat *c, int32_t i) { return c->b.d.raw_item[i]; }
const char *cr_chat_title(const cr_chat *c, int32_t i) { return c->b.d.title[i]; }
int32_t cr_chat_item_of_raw(const cr_chat *c, int64_t raw) {
    for (int32_t i = 0; i < c->b.d.mf.n_items; i++)
        if (c->b.d.raw_item[i] == raw) return i;
    return -1;
}
int32_t cr_chat_find(const cr_chat *c, const char *name, double *score) {
    return cr_chat_match_keys(&c->b.d, c->key, name, c->o.min_match, score);
}

/* ---- turns ---------------------------------------------------------------------------- */
static int cr_chat_has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

/* Add the item a piece of text names (or report it unknown). */
static void cr_chat_take(cr_chat *c, char *piece, cr_chat_str *noted, cr_chat_str *missed) {
    while (*piece == ' ') piece++;
    size_t n = strlen(piece);
    while (n && (piece[n - 1] == ' ' || piece[n - 1] == '.' || piece[n - 1] == '!')) piece[--n] = '\0';
    if (n < 2) return;
    double sc;
    int32_t it = cr_chat_match_keys(&c->b.d, c->key, piece, c->o.min_match, &sc);
    char *and = strstr(piece, " and ");
    if ((it < 0 || sc < 0.8) && and) { /* "Heat and Casino": two names, unless the whole matched well */
        *and = '\0';
        cr_chat_take(c, piece, noted, missed);
        cr_chat_take(c, and + 5, noted, missed);
        return;
    }
    if (it < 0) {
        cr_chat_cat(missed, "%s'%s'", missed->n ? ", " : "", piece);
        return;
    }
    for (int l = 0; l < c->n_liked; l++)
        if (c->liked[l] == it) return;
    if (c->n_liked == CR_CHAT_MAX_LIKED) {
        memmove(c->liked, c->liked + 1, sizeof(int32_t) * (CR_CHAT_MAX_LIKED - 1));
        c->n_liked--;
    }
    c->liked[c->n_liked++] = it;
    cr_chat_cat(noted, "%s%s", noted->n ? ", " : "", c->b.d.title[it]);
}

cr_status cr_chat_turn(cr_chat *c, const char *line, char **reply, cr_error *e) {
    *reply = NULL;
    size_t n = strlen(line);
    char *low = cr_alloc(n + 1);
    cr_chat_str out = {cr_alloc(8192), 0, 8192}, noted = {cr_alloc(2048), 0, 2048},
                missed = {cr_alloc(1024), 0, 1024};
    if (!low || !out.s || !noted.s || !missed.s) {
        cr_free(low), cr_free(out.s), cr_free(noted.s), cr_free(missed.s);
        return cr_err(e, CR_ERR_NOMEM, "chat: out of memory");
    }
    for (size_t i = 0; i < n; i++) low[i] = (char)tolower((unsigned char)line[i]);
    low[n] = '\0';
    cr_status s = CR_OK;
    int ask = cr_chat_has(low, "suggest") || cr_chat_has(low, "recommend") ||
              cr_chat_has(low, "what should") || cr_chat_has(low, "what to watch") ||
              cr_chat_has(low, "?");
    if (cr_chat_has(low, "reset") || cr_chat_has(low, "start over")) {
        c->n_liked = 0;
        cr_chat_cat(&out, "Forgotten. Which movies did you like?");
        goto done;
    }
    /* names follow "liked", "loved", ... (or are the whole line when it asks nothing) */
    static const char *const cue[] = {"i liked ", "i loved ", "i enjoyed ", "i like ", "i love ",
                                      "liked ", "loved ", "enjoyed ", "i watched ", "i saw "};
    char *names = NULL;
    for (size_t k = 0; !names && k < sizeof cue / sizeof *cue; k++) {
        char *p = strstr(low, cue[k]);
        if (p) names = p + strlen(cue[k]);
    }
    if (!names && !ask) names = low;
    if (names) {
        static const char *const stop[] = {"what should", "can you", "could you", "any ", "?",
                                           " suggest", " recommend", ". "};
        for (size_t k = 0; k < sizeof stop / sizeof *stop; k++) {
            char *p = strstr(names, stop[k]);
            if (p) *p = '\0';
        }
        for (char *save = NULL, *t = strtok_r(names, ",;", &save); t; t = strtok_r(NULL, ",;", &save))
            cr_chat_take(c, t, &noted, &missed);
    }
    if (noted.n) cr_chat_cat(&out, "Noted: %s.", noted.s);
    if (missed.n) cr_chat_cat(&out, "%sI could not find %s in the catalogue.", out.n ? " " : "", missed.s);
    if (ask && c->n_liked) {
        if (out.n) cr_chat_cat(&out, "\n");
        s = cr_chat_suggest(c, &out, e);
    } else if (ask) {
        cr_chat_cat(&out, "%sTell me a few movies you liked first.", out.n ? " " : "");
    } else if (!out.n) {
        cr_chat_cat(&out, "Tell me movies you liked (\"I liked Toy Story and Heat\"), then ask "
                          "\"what should I watch?\"");
    }
done:
    cr_free(low), cr_free(noted.s), cr_free(missed.s);
    if (s != CR_OK) {
        cr_free(out.s);
        return s;
    }
    *reply = out.s;
    return CR_OK;
}

cr_status cr_chat_loop(cr_chat *c, FILE *in, FILE *out, int prompt, cr_error *e) {
    char line[4096];
    for (;;) {
        if (prompt) fputs("> ", out), fflush(out);
        if (!fgets(line, sizeof line, in)) break;
        line[strcspn(line, "\r\n")] = '\0';
        if (!strcmp(line, "quit") || !strcmp(line, "exit")) break;
        if (!line[0]) continue;
        char *reply;
        CR_TRY(cr_chat_turn(c, line, &reply, e));
        fprintf(out, "%s\n", reply);
        fflush(out);
        cr_free(reply);
    }
    return CR_OK;
}
