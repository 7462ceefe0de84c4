/*
 * crossrec/ilm.h - part of the public API (include <crossrec.h>, which
 * includes every part in order): the item-language model: its training phases, evaluation, study and chat.
 */
#ifndef CROSSREC_ILM_H
#define CROSSREC_ILM_H

#ifndef CROSSREC_H
#error "include <crossrec.h>, not its parts"
#endif

/* ---- training the item-language model ----------------------------------------------
 * The steps `crossrec ilm` runs (docs/ilm.md): BPR collaborative-filtering
 * vectors (cr_ilm_mf), the item encoder's phase 1 without a language model
 * (cr_ilm_phase1), the encoder and an adapter in front of a frozen decoder
 * LM (cr_ilm_phase2), its evaluation (cr_ilm_eval) and the whole study over
 * variants and seeds (cr_ilm_study). Each writes its files atomically into
 * the directory it is given, takes the context (threads set and restored;
 * log lines to its sink) and checks its options first (CR_ERR_ARG naming
 * the field). Progress of the two phases goes to the opts' callback, called
 * on the calling thread every log_every steps. Start every option struct
 * from its _default. */
typedef struct cr_next_item_metrics {
    int64_t users;
    double  hr5, hr10, ndcg5, ndcg10;
} cr_next_item_metrics;

typedef struct cr_mf_cfg {
    int      dim;         /* factors (default 32) */
    int      epochs;      /* passes over the training interactions (default 20) */
    float    lr;          /* SGD step (default 0.05) */
    float    reg;         /* L2 on the factors touched by a step (default 0.001) */
    float    min_rating;  /* interactions below this are not positives (default 0) */
    uint64_t seed;        /* default 1 */
} cr_mf_cfg;
CR_API void cr_mf_cfg_default(cr_mf_cfg *c);

typedef struct cr_qformer_cfg {
    int nq;        /* learned queries (default 8) */
    int layers;    /* (default 2) */
    int width;     /* W (default 64) */
    int heads;     /* NH, divides W (default 4) */
    int ffn;       /* F (default 4W) */
    int n_kv;      /* CF key/value tokens (default 4) */
    int d_cf;      /* D: the MF vectors' size (no default: from the MF file) */
    int vocab;     /* V including the three specials at V-3, V-2, V-1 */
    int max_text;  /* longest text in tokens, specials included (default 32) */
    int embed;     /* E: contrastive projection size (default 64) */
} cr_qformer_cfg;

typedef enum { CR_P1_ITC = 0, CR_P1_ITM, CR_P1_ITG, CR_P1_II, CR_P1_UI } cr_p1_loss;
#define CR_P1_NLOSS 5
CR_API const char *cr_p1_loss_name(int k); /* "itc", "itm", "itg", "ii", "ui"; "?" out of range */
/* Parse "itc,itm,itg,ii,ui" (any subset, any order) into weights 1 / 0;
 * an unknown name is CR_ERR_ARG naming it. */
CR_API cr_status cr_p1_parse_losses(const char *s, float w[CR_P1_NLOSS], cr_error *e);

typedef struct cr_phase1_report {
    int64_t step, steps;
    double  loss[CR_P1_NLOSS]; /* running means since the last report (NaN = not run) */
    float   lr;
    double  seconds;
} cr_phase1_report;

typedef struct cr_phase1_opts {
    const char *mf_path;     /* from `crossrec ilm mf` (required) */
    const char *data_dir;    /* ratings.csv, movies.csv, optional movies-extra.tsv */
    const char *out_dir;     /* tokenizer/, qformer.safetensors, metrics.json */
    cr_qformer_cfg model;    /* d_cf and vocab are filled in from the data */
    int      steps;          /* optimizer steps (default 600); 0 = ILM-rand: save the init */
    int      batch;          /* pairs per batch (default 32) */
    cr_optim_cfg optim;      /* AdamW, peak lr 1e-3, weight decay 0.05, 50 warmup steps,
                                then cosine to 0.1 lr; gradient norm clipped to 1 */
    float    weight[CR_P1_NLOSS]; /* default all 1 */
    int      bpe_vocab;      /* BPE trained on the training items' texts (default 2048) */
    double   held_frac;      /* items whose texts are held out (default 0.1) */
    int      eval_items;     /* held-out items ranked in retrieval (default 1000, <= all) */
    int      log_every;      /* reports (default 50) */
    int      ckpt_every;     /* checkpoints (default 0 = only at the end) */
    uint64_t seed;           /* default 1 */
    void   (*progress)(void *ctx, const cr_phase1_report *r);
    void    *ctx;
} cr_phase1_opts;

typedef struct cr_phase1_result {
    int     vocab, items, train_items, held_items, ii_pairs, ui_pairs, truncated;
    double  first[CR_P1_NLOSS], last[CR_P1_NLOSS]; /* first and last report's losses */
    double  recall1, recall10;                     /* held-out item -> text retrieval */
    double  recall1_init, recall10_init;           /* the same before training */
    int     eval_n;                                /* candidates ranked */
    double  seconds;
} cr_phase1_result;

CR_API void cr_phase1_opts_default(cr_phase1_opts *o);

typedef enum {
    CR_P2_DESCRIBE = 0, /* {item} -> its whole text */
    CR_P2_GENRE,        /* {item} -> its genres */
    CR_P2_YEAR,         /* {item} -> its year */
    CR_P2_DIRECTOR,     /* {item} -> its director */
    CR_P2_NEXT,         /* {user} + {history} -> the next item's title */
    CR_P2_SIMILAR       /* {item} -> the title of an item co-consumed with it */
} cr_p2_task;
#define CR_P2_NTASK 6
CR_API const char *cr_p2_task_name(int task); /* "describe", "genre", ...; "?" out of range */

typedef struct cr_phase2_report {
    int64_t step, steps;
    double  loss;          /* mean since the last report */
    float   lr;
    double  seconds;
} cr_phase2_report;

typedef struct cr_phase2_opts {
    const char *encoder;   /* phase-1 qformer.safetensors; NULL = the MLP baseline */
    const char *lm;        /* decoder file (cr_dec_open) */
    const char *tokenizer; /* the LM's tokenizer */
    const char *mf_path, *data_dir, *out_dir;
    const char *lm_text;   /* held-out text for the perplexity check (NULL = skip) */
    int      steps;        /* default 300 */
    int      batch;        /* sequences per step (default 8) */
    int      hist;         /* history items in {history} (default 3) */
    int      max_seq;      /* tokens per row (default 96, <= the LM's max_seq) */
    cr_optim_cfg optim;    /* AdamW, peak lr 1e-3, weight decay 0.01, 20 warmup steps, then
                              cosine to 0.1 lr; the global norm over encoder + adapter
                              clipped to 1 */
    int      mlp_nq;       /* MLP baseline: soft tokens per entity (default 8) */
    int      mlp_hidden;   /* (default 256) */
    float    task_w[CR_P2_NTASK]; /* sampling weights (default all 1) */
    double   held_frac;    /* phase 1's held-out share (default 0.1) */
    uint64_t seed;         /* phase 1's seed: the held-out items and the draws (default 1) */
    int      log_every;    /* default 50 */
    void   (*progress)(void *ctx, const cr_phase2_report *r);
    void    *ctx;
} cr_phase2_opts;

typedef struct cr_phase2_result {
    double   first_loss, last_loss;   /* first and last report */
    uint64_t lm_hash_before, lm_hash_after;
    double   lm_ppl_before, lm_ppl_after; /* NaN without lm_text */
    int64_t  trainable;
    int      truncated;
    double   seconds;
} cr_phase2_result;

CR_API void cr_phase2_opts_default(cr_phase2_opts *o);

typedef struct cr_ilm_eval_opts {
    int      users;      /* evaluated users, a seeded sample (default 200; 0 = all) */
    int      negatives;  /* never-rated candidates per user (default 49) */
    int      hist;       /* items in {history} (default 3) */
    int      max_seq;    /* tokens per row (default 96) */
    int      items;      /* held-out items for perplexity and genres (default 200; 0 = all) */
    int      batch;      /* rows per LM forward (default 16) */
    int      use_test;   /* 1: each user's last rating (default); 0: the one before */
    uint64_t seed;       /* users and candidates: the same lists for every model (default 7) */
} cr_ilm_eval_opts;

typedef struct cr_ilm_eval_result {
    cr_next_item_metrics lm;        /* candidates ranked by title likelihood */
    cr_next_item_metrics bpr, pop;  /* the same candidates, CF and popularity scores */
    int     per;                    /* candidates per user (1 + negatives) */
    double  desc_ppl;               /* held-out items' description perplexity */
    int64_t desc_tokens;
    int     desc_items;
    double  genre_acc, genre_chance; /* share of held-out items whose top genre is theirs */
    int     genre_items, n_genres;
    double  seconds;
} cr_ilm_eval_result;

CR_API void cr_ilm_eval_opts_default(cr_ilm_eval_opts *o);


/* Next-item quality of cr_ilm_mf: [0] the validation split, [1] the test
 * split, each for BPR and for popularity on the same candidates. */
typedef struct cr_ilm_mf_result {
    int64_t              interactions;
    int32_t              users, items;
    double               loss;         /* BPR loss of the last epoch */
    cr_next_item_metrics bpr[2], pop[2];
} cr_ilm_mf_result;

/* BPR on a time-ordered leave-one-out split of ratings (userId, movieId,
 * rating, timestamp), saved to out (safetensors), then evaluated among the
 * held-out item and `negatives` never-rated ones (1..100000). */
CR_API cr_status cr_ilm_mf(cr_ctx *ctx, const char *ratings, const char *out, const cr_mf_cfg *c,
                           int negatives, cr_ilm_mf_result *r, cr_error *e);
/* Phase 1: o->mf_path, o->data_dir and o->out_dir are required. */
CR_API cr_status cr_ilm_phase1(cr_ctx *ctx, const cr_phase1_opts *o, cr_phase1_result *r,
                               cr_error *e);
/* Phase 2: lm, tokenizer, mf_path, data_dir and out_dir are required;
 * encoder NULL trains the MLP baseline. The frozen LM's weights are hashed
 * before and after (a change is CR_ERR_INTERNAL). */
CR_API cr_status cr_ilm_phase2(cr_ctx *ctx, const cr_phase2_opts *o, cr_phase2_result *r,
                               cr_error *e);
/* Evaluate a phase-2 directory through its frozen LM. o->hist 0 = the
 * directory's; o->max_seq is always the directory's. */
CR_API cr_status cr_ilm_eval(cr_ctx *ctx, const char *dir, const cr_ilm_eval_opts *o,
                             cr_ilm_eval_result *r, cr_error *e);
/* The whole ILM study from its YAML (e.g. examples/movielens/ilm.yaml) into
 * out_dir: results.json, report.html and every run's files. Each finished
 * step is one log line. *table (may be NULL; free with cr_free) receives
 * the table of means and intervals; *seconds (may be NULL) the time taken. */
CR_API cr_status cr_ilm_study(cr_ctx *ctx, const char *config, const char *out_dir, char **table,
                              double *seconds, cr_error *e);
/* "1:15", "1:02:03": a duration for progress lines, as the library's own
 * progress lines print it. */
CR_API void      cr_meter_clock(char *buf, size_t n, double seconds);

/* ---- the item-language model --------------------------------------------------------
 * A trained ILM (crossrec ilm phase2 writes its directory): the Q-Former
 * over collaborative-filtering item vectors and the frozen decoder LM it
 * feeds. Items are named by their catalogue id (MovieLens movieId). One
 * cr_ilm serves one call at a time. */
typedef struct cr_ilm cr_ilm;

CR_API cr_status   cr_ilm_open(cr_ilm **out, const char *dir, cr_error *e);
CR_API void        cr_ilm_close(cr_ilm *m);
CR_API int64_t     cr_ilm_n_items(const cr_ilm *m);
/* The catalogue: item i's id and title (NULL when unknown), i in [0, n). */
CR_API int64_t     cr_ilm_item_id(const cr_ilm *m, int64_t i);
CR_API const char *cr_ilm_item_title(const cr_ilm *m, int64_t i);
/* The catalogue id whose title best matches a name a person typed, or -1. */
CR_API int64_t     cr_ilm_find(const cr_ilm *m, const char *name);
/* Recommend k items (ids, best first; scores: the frozen LM's mean
 * log-likelihood per title token, may be NULL) to a person who liked the
 * given items. *n_out may be below k for a small catalogue. An unknown
 * liked id is CR_ERR_NOT_FOUND naming it. */
CR_API cr_status   cr_ilm_recommend(cr_ctx *ctx, cr_ilm *m, const int64_t *liked, int n_liked,
                                    int k, int64_t *items, double *scores, int *n_out,
                                    cr_error *e);
/* One conversational turn: a line may name liked movies ("I liked Heat"),
 * ask for suggestions, both, or say "reset"; the conversation's state
 * lives in m. *reply: text (free with cr_free). */
CR_API cr_status   cr_ilm_chat(cr_ctx *ctx, cr_ilm *m, const char *line, char **reply,
                               cr_error *e);
typedef struct cr_chat_opts {
    int   k;          /* suggestions per answer (default 3) */
    int   shortlist;  /* nearest items re-ranked by the LM (default 30) */
    int   describe;   /* tokens the LM writes about the top pick (default 24; 0 = none) */
    float min_match;  /* fuzzy-match score a name needs (0..1, default 0.55) */
} cr_chat_opts;

CR_API void cr_chat_opts_default(cr_chat_opts *o);
/* cr_ilm_open with conversation options (cr_ilm_open uses the defaults). */
CR_API cr_status   cr_ilm_open_chat(cr_ilm **out, const char *dir, const cr_chat_opts *o,
                                    cr_error *e);
/* A whole conversation: one turn per line of in until its end or "quit",
 * each reply written to out (in and out are FILE *); prompt = 1 prints a
 * "> " before each line (for a terminal). */
CR_API cr_status   cr_ilm_chat_loop(cr_ctx *ctx, cr_ilm *m, void *in, void *out, int prompt,
                                    cr_error *e);

#endif /* CROSSREC_ILM_H */
