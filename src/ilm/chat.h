/*
 * chat.h - a conversational front end to a trained Item-Language Model:
 * a person names movies they liked (matched to catalogue titles, fuzzily)
 * and asks for suggestions; the answer names real catalogue items,
 * retrieved through the item encoder (nearest items to the liked ones in
 * the Q-Former's item-item space, or the MLP adapter's soft-token space),
 * re-ranked by the frozen LM's likelihood of each title after the
 * next-item prompt, and phrased by a template; the LM adds one line about
 * the top pick, generated from that item's soft tokens. Reads lines from
 * and writes replies to the FILE* it is given; nothing else is printed.
 */
#ifndef CR_ILM_CHAT_H
#define CR_ILM_CHAT_H

#include "phase2.h"

/* cr_chat_opts and cr_chat_opts_default are public (crossrec.h). */

typedef struct cr_chat cr_chat;

/* Open a phase-2 directory (cr_p2_bundle_open) and embed the catalogue. */
cr_status cr_chat_open(cr_chat **out, const char *dir, const cr_chat_opts *o, cr_error *e);
void      cr_chat_free(cr_chat *c);

/* Best catalogue item for a name typed by a person: titles are compared
 * without their year and with "X, The" read as "The X"; the score is the
 * Dice coefficient of character bigrams (1 = identical), ties going to the
 * more rated item. Returns the item, or -1 when nothing reaches min. */
int32_t   cr_chat_match(const cr_p2_data *d, const char *name, double min, double *score);

/* One turn. A line may name liked movies ("I liked Toy Story and Heat"),
 * ask for suggestions ("what should I watch?"), both, or say "reset".
 * *reply is a heap string (cr_free). */
cr_status cr_chat_turn(cr_chat *c, const char *line, char **reply, cr_error *e);

/* The k best items (dense ids, best first) for a person who liked
 * liked[0..n_liked): the shortlist of items nearest to the liked ones,
 * re-ranked by the frozen LM's mean log-likelihood of each title after the
 * next-item prompt (scores, may be NULL). *n_out may be below k when the
 * catalogue is small. */
cr_status cr_chat_recommend(cr_chat *c, const int32_t *liked, int n_liked, int k, int32_t *items,
                            double *scores, int *n_out, cr_error *e);
int32_t     cr_chat_n_items(const cr_chat *c);
int64_t     cr_chat_raw_item(const cr_chat *c, int32_t i);   /* the MovieLens movieId */
const char *cr_chat_title(const cr_chat *c, int32_t i);      /* NULL when unknown */
int32_t     cr_chat_item_of_raw(const cr_chat *c, int64_t raw); /* -1 when absent */
/* cr_chat_match over this chat's catalogue, with its min_match. */
int32_t     cr_chat_find(const cr_chat *c, const char *name, double *score);
/* Turns from in (one line each) until EOF or "quit"; replies to out, each
 * after "> " when prompt is set (interactive use). */
cr_status cr_chat_loop(cr_chat *c, FILE *in, FILE *out, int prompt, cr_error *e);

#endif /* CR_ILM_CHAT_H */
