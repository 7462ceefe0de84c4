/*
 * api_ilm.c - the public item-language-model entry points (crossrec.h):
 * open a trained ILM, look items up, recommend for a set of liked items,
 * take a conversational turn or a whole conversation. Catalogue ids (MovieLens movieId) outside,
 * the model's dense ids inside; nothing else happens here.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../ilm/chat.h"

#include <stdlib.h>

struct cr_ilm {
    cr_chat *chat;
};

cr_status cr_ilm_open(cr_ilm **out, const char *dir, cr_error *e) {
    return cr_ilm_open_chat(out, dir, NULL, e);
}

cr_status cr_ilm_open_chat(cr_ilm **out, const char *dir, const cr_chat_opts *o, cr_error *e) {
    if (out) *out = NULL;
    if (!out || !dir) return cr_err(e, CR_ERR_ARG, "cr_ilm_open: out and dir are required");
    if (o && (o->k < 1 || o->k > 100 || o->shortlist < o->k || o->describe < 0 ||
              !(o->min_match >= 0 && o->min_match <= 1)))
        return cr_err(e, CR_ERR_ARG, "cr_chat_opts: expected k in 1..100, shortlist >= k, "
                      "describe >= 0 and min_match in [0, 1]");
    cr_ilm *m = calloc(1, sizeof *m);
    if (!m) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    cr_status s = cr_chat_open(&m->chat, dir, o, e);
    if (s) {
        free(m);
        return s;
    }
    *out = m;
    return CR_OK;
}

void cr_ilm_close(cr_ilm *m) {
    if (!m) return;
    cr_chat_free(m->chat);
    free(m);
}

int64_t cr_ilm_n_items(const cr_ilm *m) { return m ? cr_chat_n_items(m->chat) : 0; }

int64_t cr_ilm_item_id(const cr_ilm *m, int64_t i) {
    return m && i >= 0 && i < cr_chat_n_items(m->chat) ? cr_chat_raw_item(m->chat, (int32_t)i) : -1;
}

const char *cr_ilm_item_title(const cr_ilm *m, int64_t i) {
    return m && i >= 0 && i < cr_chat_n_items(m->chat) ? cr_chat_title(m->chat, (int32_t)i) : NULL;
}

int64_t cr_ilm_find(const cr_ilm *m, const char *name) {
    if (!m || !name) return -1;
    int32_t i = cr_chat_find(m->chat, name, NULL);
    return i >= 0 ? cr_chat_raw_item(m->chat, i) : -1;
}

cr_status cr_ilm_recommend(cr_ctx *ctx, cr_ilm *m, const int64_t *liked, int n_liked, int k,
                           int64_t *items, double *scores, int *n_out, cr_error *e) {
    if (n_out) *n_out = 0;
    if (!m || !liked || !items || !n_out)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_recommend: m, liked, items and n_out are required");
    if (n_liked < 1 || n_liked > 32)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_recommend: expected 1 to 32 liked items, got %d", n_liked);
    if (k < 1 || k > 1000)
        return cr_err(e, CR_ERR_ARG, "cr_ilm_recommend: k must be 1 to 1000, got %d", k);
    int32_t dense[32];
    for (int l = 0; l < n_liked; l++)
        if ((dense[l] = cr_chat_item_of_raw(m->chat, liked[l])) < 0)
            return cr_err(e, CR_ERR_NOT_FOUND, "cr_ilm_recommend: liked[%d]: item %lld is not in "
                          "the catalogue", l, (long long)liked[l]);
    int32_t *top = malloc((size_t)k * sizeof *top);
    if (!top) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    cr_call c;
    cr_status s = cr_call_begin(&c, ctx, "cr_ilm_recommend", e);
    if (!s) {
        s = cr_chat_recommend(m->chat, dense, n_liked, k, top, scores, n_out, e);
        cr_call_end(&c);
    }
    for (int i = 0; !s && i < *n_out; i++) items[i] = cr_chat_raw_item(m->chat, top[i]);
    free(top);
    return s;
}

cr_status cr_ilm_chat(cr_ctx *ctx, cr_ilm *m, const char *line, char **reply, cr_error *e) {
    if (reply) *reply = NULL;
    if (!m || !line || !reply) return cr_err(e, CR_ERR_ARG, "cr_ilm_chat: m, line and reply are required");
    cr_call c;
    CR_TRY(cr_call_begin(&c, ctx, "cr_ilm_chat", e));
    cr_status s = cr_chat_turn(m->chat, line, reply, e);
    cr_call_end(&c);
    return s;
}

cr_status cr_ilm_chat_loop(cr_ctx *ctx, cr_ilm *m, void *in, void *out, int prompt, cr_error *e) {
    if (!m || !in || !out) return cr_err(e, CR_ERR_ARG, "cr_ilm_chat_loop: m, in and out are required");
    cr_call c;
    CR_TRY(cr_call_begin(&c, ctx, "cr_ilm_chat_loop", e));
    cr_status s = cr_chat_loop(m->chat, in, out, prompt != 0, e);
    cr_call_end(&c);
    return s;
}
