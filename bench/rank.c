/*
 * rank.c - the ranker benchmark: examples/s of one full training step
 * (forward, loss, backward, dense Adam, sparse Adagrad or lazy Adam) and the
 * latency of scoring 1000 candidates, on the spec's reference model or a
 * MovieLens-shaped one, with synthetic ids, dense values and labels drawn
 * once up front. bench/rank_torch.py is its PyTorch twin (same models, same
 * data distribution, same output names) and scripts/bench.sh sets the two
 * side by side. A bench, not a test: it measures time and checks only that
 * the loss stays finite; it must never tune the library it measures.
 *
 * Legend: B batch rows, C_in model input width, E experts, K tasks,
 * V table rows, D embedding dim, L ids in one bag.
 */
#include "../src/rank/loss.h"
#include "../src/rank/ranker.h"
#include "../src/train/optim.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the two models ---------------------------------------------------------- */

enum { BENCH_ALL = 0, BENCH_TRAIN = 1, BENCH_SCORE = 2 };
enum { BENCH_TRAIN_B = 512, BENCH_SCORE_B = 1000, BENCH_POOL = 8, BENCH_MAX_FEATS = 64 };

typedef struct bench_feat {
    const char  *name;
    cr_feat_kind kind;  /* categorical, multi or numeric */
    int64_t      rows;  /* table rows (0 when shared or numeric) */
    int          dim;
    const char  *share; /* the feature whose table it reads, or NULL */
    int          bag;   /* multi: ids per example */
} bench_feat;

typedef struct bench_model {
    const char  *name;
    int          n_feats;
    bench_feat   feats[BENCH_MAX_FEATS];
    int          n_tasks;
    cr_task_kind task_kind[8];
    const char  *task_name[8];
    int          n_expert_layers, expert_layers[4], n_tower, tower_layers[4], n_experts;
} bench_model;

/* The spec's reference ranker: a Criteo-like 26 categorical + 13 dense
 * input (C_in = 26*16 + 13 = 429), MMoE 4 x [256, 128], 3 binary tasks
 * with [64] towers. */
static void bench_reference(bench_model *bm) {
    static char names[39][8];
    memset(bm, 0, sizeof *bm);
    bm->name = "reference";
    for (int i = 0; i < 26; i++) {
        snprintf(names[i], sizeof names[i], "c%02d", i + 1);
        bm->feats[bm->n_feats++] = (bench_feat){names[i], CR_FEAT_CATEGORICAL, 10000, 16, NULL, 0};
    }
    for (int i = 0; i < 13; i++) {
        snprintf(names[26 + i], sizeof names[0], "d%02d", i + 1);
        bm->feats[bm->n_feats++] = (bench_feat){names[26 + i], CR_FEAT_NUMERIC, 0, 0, NULL, 0};
    }
    bm->n_tasks = 3;
    static const char *tn[3] = {"click", "like", "share"};
    for (int k = 0; k < 3; k++) {
        bm->task_name[k] = tn[k];
        bm->task_kind[k] = CR_TASK_BINARY;
    }
    bm->n_experts = 4;
    bm->n_expert_layers = 2;
    bm->expert_layers[0] = 256;
    bm->expert_layers[1] = 128;
    bm->n_tower = 1;
    bm->tower_layers[0] = 64;
}

/* Shaped like examples/movielens (user and item tables of MovieLens-small,
 * the last five movies pooled from the item table, genres as a bag), with
 * 10 categorical features of dims 8-16, 10 dense, MMoE 4 x [64, 32], [32]
 * towers and the example's 4 tasks (engagement is a regression). */
static void bench_movielens(bench_model *bm) {
    memset(bm, 0, sizeof *bm);
    bm->name = "movielens";
    static const bench_feat f[] = {
        {"user", CR_FEAT_CATEGORICAL, 671, 16, NULL, 0},
        {"item", CR_FEAT_CATEGORICAL, 9066, 16, NULL, 0},
        {"last_items", CR_FEAT_MULTI, 0, 0, "item", 5},
        {"genres", CR_FEAT_MULTI, 20, 8, NULL, 5},
        {"hour_of_day", CR_FEAT_CATEGORICAL, 25, 8, NULL, 0},
        {"day_of_week", CR_FEAT_CATEGORICAL, 8, 8, NULL, 0},
        {"year", CR_FEAT_CATEGORICAL, 12, 8, NULL, 0},
        {"director", CR_FEAT_CATEGORICAL, 1000, 8, NULL, 0},
        {"mpaa", CR_FEAT_CATEGORICAL, 8, 8, NULL, 0},
        {"major_genre", CR_FEAT_CATEGORICAL, 21, 8, NULL, 0},
        {"language", CR_FEAT_CATEGORICAL, 40, 8, NULL, 0},
        {"country", CR_FEAT_CATEGORICAL, 60, 8, NULL, 0},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) bm->feats[bm->n_feats++] = f[i];
    static const char *dn[10] = {"hist_count",   "hist_mean_rating", "days_since_first",
                                 "item_popularity", "item_mean_rating", "item_age",
                                 "imdb_rating",  "running_time",     "genre_overlap",
                                 "user_age"};
    for (int i = 0; i < 10; i++)
        bm->feats[bm->n_feats++] = (bench_feat){dn[i], CR_FEAT_NUMERIC, 0, 0, NULL, 0};
    static const char *tn[4] = {"click", "like", "engagement", "discovery"};
    for (int k = 0; k < 4; k++) {
        bm->task_name[k] = tn[k];
        bm->task_kind[k] = k == 2 ? CR_TASK_REGRESSION : CR_TASK_BINARY;
    }
    bm->n_tasks = 4;
    bm->n_experts = 4;
    bm->n_expert_layers = 2;
    bm->expert_layers[0] = 64;
    bm->expert_layers[1] = 32;
    bm->n_tower = 1;
    bm->tower_layers[0] = 32;
}

/* The schema straight from the model description: no CSV, no vocabulary;
 * a categorical feature without one keeps the rows we give it. */
static cr_status bench_schema(cr_schema *s, const bench_model *bm, cr_error *e) {
    memset(s, 0, sizeof *s);
    s->features = calloc((size_t)bm->n_feats, sizeof *s->features);
    s->tasks = calloc((size_t)bm->n_tasks, sizeof *s->tasks);
    if (!s->features || !s->tasks) return cr_err(e, CR_ERR_NOMEM, "out of memory (schema)");
    s->n_features = bm->n_feats;
    s->n_tasks = bm->n_tasks;
    for (int i = 0; i < bm->n_feats; i++) {
        const bench_feat *bf = &bm->feats[i];
        cr_feature *f = &s->features[i];
        snprintf(f->name, sizeof f->name, "%s", bf->name);
        snprintf(f->column, sizeof f->column, "%s", bf->name);
        f->kind = bf->kind;
        f->dim = bf->dim;
        f->rows = bf->rows;
        f->sep = '|';
        f->pooling = CR_POOL_MEAN;
        f->min_count = 1;
        if (bf->share) {
            snprintf(f->share, sizeof f->share, "%s", bf->share);
            /* validated before the owner's width is copied over */
            for (int j = 0; j < i; j++)
                if (!strcmp(bm->feats[j].name, bf->share)) f->dim = bm->feats[j].dim;
        }
    }
    for (int k = 0; k < bm->n_tasks; k++) {
        cr_task *t = &s->tasks[k];
        snprintf(t->name, sizeof t->name, "%s", bm->task_name[k]);
        snprintf(t->label, sizeof t->label, "%s", bm->task_name[k]);
        t->kind = bm->task_kind[k];
        t->weight = 1.0f;
    }
    return cr_schema_finish(s, e);
}

/* ---- synthetic data ------------------------------------------------------------- */

/* Ids follow a Zipf law of exponent z over each table (z = 0: uniform),
 * the way recommender traffic is skewed: a few hot items, a long tail.
 * Rank r becomes row (r * 2654435761) mod V, a permutation (the multiplier
 * is a prime above any table size), so hot rows are spread over the table
 * instead of sharing its first cache lines. */
typedef struct bench_zipf {
    int64_t V;
    double *cdf; /* (V) */
} bench_zipf;

static int bench_zipf_init(bench_zipf *zf, int64_t V, double z) {
    zf->V = V;
    zf->cdf = malloc((size_t)V * sizeof(double));
    if (!zf->cdf) return 0;
    double s = 0;
    for (int64_t r = 0; r < V; r++) zf->cdf[r] = (s += pow((double)(r + 1), -z));
    for (int64_t r = 0; r < V; r++) zf->cdf[r] /= s;
    return 1;
}

static int32_t bench_zipf_draw(const bench_zipf *zf, cr_rng *rng) {
    double u = cr_rng_uniform(rng);
    int64_t lo = 0, hi = zf->V - 1;
    while (lo < hi) { /* first rank with cdf > u */
        int64_t mid = (lo + hi) / 2;
        if (zf->cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return (int32_t)(((uint64_t)lo * 2654435761u) % (uint64_t)zf->V);
}

/* A batch whose buffers we own (cr_batch_init wants a dataset). */
static void bench_batch_free(cr_batch *b) {
    cr_free(b->cat);
    for (int i = 0; i < b->n_multi; i++) {
        if (b->bag_off) cr_free(b->bag_off[i]);
        if (b->bag_ids) cr_free(b->bag_ids[i]);
    }
    free(b->bag_off);
    free(b->bag_ids);
    cr_free(b->dense);
    cr_free(b->label);
    cr_free(b->mask);
    memset(b, 0, sizeof *b);
}

/* Random ids (Zipf per table), bags of a fixed length, N(0, 1) dense
 * values, Bernoulli(0.5) binary labels and N(0, 1) regression labels, and
 * every mask 1 (each task defined on each row, the most work per batch). */
static int bench_batch_make(cr_batch *b, const cr_schema *s, const bench_model *bm,
                            const bench_zipf *zf, int B, cr_rng *rng) {
    memset(b, 0, sizeof *b);
    b->B = b->max_B = B;
    b->n_cat = s->n_cat;
    b->n_multi = s->n_multi;
    b->n_dense = s->n_dense;
    b->n_tasks = s->n_tasks;
    b->cat = cr_alloc((size_t)B * (s->n_cat ? s->n_cat : 1) * sizeof(int32_t));
    b->dense = cr_alloc((size_t)B * (s->n_dense ? s->n_dense : 1) * sizeof(float));
    b->label = cr_alloc((size_t)B * s->n_tasks * sizeof(float));
    b->mask = cr_alloc((size_t)B * s->n_tasks * sizeof(float));
    b->bag_off = calloc((size_t)(s->n_multi ? s->n_multi : 1), sizeof *b->bag_off);
    b->bag_ids = calloc((size_t)(s->n_multi ? s->n_multi : 1), sizeof *b->bag_ids);
    if (!b->cat || !b->dense || !b->label || !b->mask || !b->bag_off || !b->bag_ids) return 0;
    for (int r = 0; r < B; r++)
        for (int i = 0; i < s->n_cat; i++) {
            const cr_feature *f = &s->features[s->cat_feat[i]];
            b->cat[(size_t)r * s->n_cat + i] = bench_zipf_draw(&zf[f->table], rng);
        }
    for (int i = 0; i < s->n_multi; i++) {
        const cr_feature *f = &s->features[s->multi_feat[i]];
        int L = bm->feats[s->multi_feat[i]].bag;
        b->bag_off[i] = cr_alloc((size_t)(B + 1) * sizeof(int64_t));
        b->bag_ids[i] = cr_alloc((size_t)B * (L ? L : 1) * sizeof(int32_t));
        if (!b->bag_off[i] || !b->bag_ids[i]) return 0;
        for (int r = 0; r <= B; r++) b->bag_off[i][r] = (int64_t)r * L;
        for (int64_t j = 0; j < (int64_t)B * L; j++)
            b->bag_ids[i][j] = bench_zipf_draw(&zf[f->table], rng);
    }
    for (size_t j = 0; j < (size_t)B * s->n_dense; j++) b->dense[j] = (float)cr_rng_normal(rng);
    for (int k = 0; k < s->n_tasks; k++)
        for (int r = 0; r < B; r++) {
            size_t j = (size_t)k * B + r;
            b->label[j] = s->tasks[k].kind == CR_TASK_BINARY ? (float)(cr_rng_u32(rng) & 1)
                                                             : (float)cr_rng_normal(rng);
            b->mask[j] = 1.0f;
        }
    return 1;
}

/* ---- FLOPs ---------------------------------------------------------------------- */

/* Multiply-adds of the forward GEMMs for B rows: every cr_linear_forward
 * the model runs (experts or bottom, gates, towers, heads). Backward runs
 * two GEMMs of the same size per layer (dW and dinp; x needs dinp because
 * it feeds the tables), so a training step is 3x this. Not counted: the
 * MoE mix, softmax, ReLU, embeddings, loss and optimizers. */
static double bench_fwd_macs(const cr_ranker *m, int B) {
    const cr_model_cfg *c = &m->cfg;
    double macs = 0;
    int in = m->C_in, tower_in;
    if (c->arch == CR_ARCH_SHARED_BOTTOM) {
        for (int i = 0; i < m->bottom.n_layers; i++) {
            macs += (double)B * in * m->bottom.dims[i];
            in = m->bottom.dims[i];
        }
        tower_in = in;
    } else {
        const cr_experts *X = &m->experts;
        macs += (double)B * m->C_in * X->E * X->dims[0];
        for (int i = 1; i < X->n_layers; i++) macs += (double)X->E * B * X->dims[i] * X->dims[i - 1];
        macs += (double)m->K * B * m->S * m->C_in; /* gates */
        tower_in = X->dims[X->n_layers - 1];
    }
    for (int k = 0; k < m->K; k++) {
        int t = tower_in;
        for (int i = 0; i < m->towers[k].n_layers; i++) {
            macs += (double)B * t * m->towers[k].dims[i];
            t = m->towers[k].dims[i];
        }
    }
    for (int h = 0; h < c->n_heads; h++) macs += (double)B * cr_mlp_out_dim(&m->towers[c->heads[h].tower]);
    return macs;
}

/* Parameters in a table, without the slab's alignment padding. */
static size_t bench_numel(const cr_ptable *pt) {
    size_t n = 0;
    for (int i = 0; i < pt->n; i++) n += pt->t[i].numel;
    return n;
}

/* Best rate of cr_sgemm on a 1024^3 product at the current thread count:
 * the ceiling the model's GEMMs could reach on this machine. */
static double bench_sgemm_peak(double min_s) {
    const int n = 1024;
    size_t nn = (size_t)n * n;
    float *A = cr_alloc(nn * sizeof(float)), *Bm = cr_alloc(nn * sizeof(float)),
          *C = cr_alloc(nn * sizeof(float));
    if (!A || !Bm || !C) {
        cr_free(A), cr_free(Bm), cr_free(C);
        return 0;
    }
    cr_rng r;
    cr_rng_seed(&r, 7);
    cr_rng_fill_uniform(&r, A, nn, 1.0f);
    cr_rng_fill_uniform(&r, Bm, nn, 1.0f);
    cr_sgemm(0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n); /* warm up */
    double best = 1e30, total = 0;
    for (int reps = 0; total < min_s || reps < 3; reps++) {
        double t0 = cr_now();
        cr_sgemm(0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
        double dt = cr_now() - t0;
        best = dt < best ? dt : best;
        total += dt;
    }
    cr_free(A), cr_free(Bm), cr_free(C);
    return 2.0 * n * n * n / best * 1e-9;
}

/* ---- output: `name: value` lines or one JSON object -------------------------------- */

typedef struct bench_out {
    int  n, json;
    char name[64][48];
    char val[64][64];
    int  is_str[64];
} bench_out;

static void bench_put(bench_out *o, const char *name, int is_str, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bench_put(bench_out *o, const char *name, int is_str, const char *fmt, ...) {
    if (o->n >= 64) return;
    snprintf(o->name[o->n], sizeof o->name[0], "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->val[o->n], sizeof o->val[0], fmt, ap);
    va_end(ap);
    o->is_str[o->n++] = is_str;
}

static void bench_print(const bench_out *o) {
    if (!o->json) {
        for (int i = 0; i < o->n; i++) printf("%s: %s\n", o->name[i], o->val[i]);
        return;
    }
    printf("{");
    for (int i = 0; i < o->n; i++)
        printf("%s\"%s\": %s%s%s", i ? ", " : "", o->name[i], o->is_str[i] ? "\"" : "", o->val[i],
               o->is_str[i] ? "\"" : "");
    printf("}\n");
}

/* CPU seconds of the whole process: over a wall-clock window, CPU / wall
 * below the thread count means other processes took the cores from us. */
static double bench_cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- main ---------------------------------------------------------------------- */

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: rank [options]\n"
            "  --threads N        threads for kernels and GEMM (default 1)\n"
            "  --model NAME       reference | movielens (default reference)\n"
            "  --seconds S        measuring time of each of training and scoring (default 3)\n"
            "  --zipf Z           id skew: Zipf exponent per table, 0 = uniform (default 1.05)\n"
            "  --sparse-opt NAME  adagrad | lazy_adam, for the tables (default adagrad)\n"
            "  --precision NAME   fp32 | bf16: the training step's products (default fp32;\n"
            "                     scoring is fp32 either way)\n"
            "  --part NAME        all | train | score: what to measure (default all)\n"
            "  --no-peak          skip the 1024^3 sgemm peak measurement\n"
            "  --no-pack          score without packing the weights first (cr_ranker_pack)\n"
            "  --json             one JSON object instead of `name: value` lines\n"
            "  --help             this text\n");
}

static int bench_parse_double(const char *s, double *out) {
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == 0 && isfinite(*out);
}

#define BENCH_DIE(...)                                                                      \
    do {                                                                                    \
        fprintf(stderr, "rank: " __VA_ARGS__);                                              \
        fputc('\n', stderr);                                                                \
        return 1;                                                                           \
    } while (0)

int main(int argc, char **argv) {
    int threads = 1, json = 0, peak = 1, pack = 1, part = BENCH_ALL;
    cr_gemm_precision precision = CR_GEMM_FP32;
    double seconds = 3.0, zipf = 1.05;
    const char *model_name = "reference";
    cr_sparse_opt_kind sparse_kind = CR_SPARSE_ADAGRAD;
    static const struct option opts[] = {
        {"threads", required_argument, 0, 't'},    {"model", required_argument, 0, 'm'},
        {"seconds", required_argument, 0, 's'},    {"zipf", required_argument, 0, 'z'},
        {"sparse-opt", required_argument, 0, 'o'}, {"part", required_argument, 0, 'p'},
        {"no-peak", no_argument, 0, 'P'},          {"json", no_argument, 0, 'j'},
        {"no-pack", no_argument, 0, 'K'},          {"help", no_argument, 0, 'h'},
        {"precision", required_argument, 0, 'r'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        double v;
        switch (c) {
        case 't':
            if (!bench_parse_double(optarg, &v) || v < 1 || v > 1024 || v != floor(v))
                BENCH_DIE("--threads '%s': expected an integer from 1 to 1024", optarg);
            threads = (int)v;
            break;
        case 'm':
            if (strcmp(optarg, "reference") && strcmp(optarg, "movielens"))
                BENCH_DIE("--model '%s': expected reference or movielens", optarg);
            model_name = optarg;
            break;
        case 's':
            if (!bench_parse_double(optarg, &seconds) || seconds <= 0 || seconds > 3600)
                BENCH_DIE("--seconds '%s': expected a number in (0, 3600]", optarg);
            break;
        case 'z':
            if (!bench_parse_double(optarg, &zipf) || zipf < 0 || zipf > 4)
                BENCH_DIE("--zipf '%s': expected a number in [0, 4]", optarg);
            break;
        case 'o':
            if (!strcmp(optarg, "adagrad")) sparse_kind = CR_SPARSE_ADAGRAD;
            else if (!strcmp(optarg, "lazy_adam")) sparse_kind = CR_SPARSE_LAZY_ADAM;
            else BENCH_DIE("--sparse-opt '%s': expected adagrad or lazy_adam", optarg);
            break;
        case 'p':
            if (!strcmp(optarg, "all")) part = BENCH_ALL;
            else if (!strcmp(optarg, "train")) part = BENCH_TRAIN;
            else if (!strcmp(optarg, "score")) part = BENCH_SCORE;
            else BENCH_DIE("--part '%s': expected all, train or score", optarg);
            break;
        case 'r':
            if (!strcmp(optarg, "fp32")) precision = CR_GEMM_FP32;
            else if (!strcmp(optarg, "bf16")) precision = CR_GEMM_BF16;
            else BENCH_DIE("--precision '%s': expected fp32 or bf16", optarg);
            break;
        case 'P': peak = 0; break;
        case 'K': pack = 0; break;
        case 'j': json = 1; break;
        case 'h': bench_usage(stdout); return 0;
        default: bench_usage(stderr); return 2;
        }
    }
    if (optind < argc) BENCH_DIE("unexpected argument '%s' (see --help)", argv[optind]);
    cr_set_threads(threads);

    bench_model bm;
    if (!strcmp(model_name, "reference")) bench_reference(&bm);
    else bench_movielens(&bm);

    cr_error e = {0};
    cr_schema schema;
    if (bench_schema(&schema, &bm, &e) != CR_OK) BENCH_DIE("%s", e.msg);
    cr_model_cfg cfg;
    cr_model_cfg_defaults(&cfg, &schema);
    cfg.arch = CR_ARCH_MMOE;
    cfg.n_experts = bm.n_experts;
    cfg.n_expert_layers = bm.n_expert_layers;
    memcpy(cfg.expert_layers, bm.expert_layers, sizeof bm.expert_layers);
    cfg.n_tower = bm.n_tower;
    memcpy(cfg.tower_layers, bm.tower_layers, sizeof bm.tower_layers);
    cr_ranker *m = NULL;
    if (cr_ranker_create(&m, &schema, &cfg, 42, &e) != CR_OK) BENCH_DIE("%s", e.msg);

    /* Data drawn once: a pool of training batches cycled through (so the
     * ids change from step to step, as in a real epoch) and one request of
     * 1000 candidates. */
    bench_zipf *zf = calloc((size_t)schema.n_tables, sizeof *zf);
    if (!zf) BENCH_DIE("out of memory");
    for (int t = 0; t < schema.n_tables; t++)
        if (!bench_zipf_init(&zf[t], schema.table_rows[t], zipf)) BENCH_DIE("out of memory");
    cr_rng rng;
    cr_rng_seed(&rng, 1234);
    cr_batch pool[BENCH_POOL], req;
    int64_t max_bag = 0;
    for (int i = 0; i < BENCH_POOL; i++)
        if (!bench_batch_make(&pool[i], &schema, &bm, zf, BENCH_TRAIN_B, &rng))
            BENCH_DIE("out of memory (batches)");
    if (!bench_batch_make(&req, &schema, &bm, zf, BENCH_SCORE_B, &rng))
        BENCH_DIE("out of memory (batches)");
    for (int i = 0; i < schema.n_multi; i++) {
        int64_t n = pool[0].bag_off[i][BENCH_TRAIN_B];
        max_bag = n > max_bag ? n : max_bag;
    }

    cr_ranker_ws *tws = NULL, *sws = NULL;
    if (cr_ranker_ws_create(&tws, m, BENCH_TRAIN_B, 1, max_bag ? max_bag : 1, &e) != CR_OK ||
        cr_ranker_ws_create(&sws, m, BENCH_SCORE_B, 0, 0, &e) != CR_OK)
        BENCH_DIE("%s", e.msg);
    /* the training loop's optimizer (train/optim.h) as crossrec train runs
     * it, at a constant rate: Adam on the dense weights, and on the tables
     * torch's defaults: Adagrad lr 0.01 eps 1e-10; SparseAdam lr 1e-3 eps 1e-8 */
    cr_optim_cfg oc;
    cr_optim_cfg_default(&oc);
    oc.sparse_kind = sparse_kind;
    oc.sparse_lr = sparse_kind == CR_SPARSE_ADAGRAD ? 0.01f : 1e-3f;
    cr_optim opt;
    cr_optim_init(&opt, &oc, 0, 0);
    if (cr_optim_add_dense(&opt, &m->params, m->params.data, tws->grads, &e) != CR_OK)
        BENCH_DIE("%s", e.msg);
    for (int t = 0; t < m->n_tables; t++)
        if (cr_optim_add_table(&opt, cr_ptable_ptr(&m->tables, m->tables.data, m->table_param[t]),
                               m->table_rows[t], m->table_dim[t], &e) != CR_OK)
            BENCH_DIE("%s", e.msg);
    const cr_sparse_grad *sg[64];
    if (m->n_tables > 64) BENCH_DIE("more than 64 tables");
    for (int t = 0; t < m->n_tables; t++) sg[t] = &tws->sgrads[t];

    /* ---- training: warm up, then time every step for `seconds` ----
     * examples/s is B over the median step: a step that another process
     * preempted is an outlier the median ignores and the mean does not (both
     * are printed). Phases are means: 0 zero_grad + forward, 1 loss,
     * 2 backward, 3 dense Adam, 4 sparse optimizer. */
    double phase[5] = {0}, loss = 0, train_s = 0, train_cpu = 0;
    size_t cap = 1 << 16, steps = 0, n_lat = 0;
    double *step_t = malloc(cap * sizeof(double)), *lat = malloc(cap * sizeof(double));
    float *pred = malloc((size_t)m->cfg.n_heads * BENCH_SCORE_B * sizeof(float));
    if (!step_t || !lat || !pred) BENCH_DIE("out of memory");
    if (part != BENCH_SCORE) {
        cr_sgemm_set_precision(precision); /* as crossrec train does around its steps */
        double warm_s = seconds * 0.1 < 0.5 ? seconds * 0.1 : 0.5;
        double t_start = cr_now(), t_meas = 0, cpu0 = 0;
        int measuring = 0;
        for (long it = 0;; it++) {
            const cr_batch *b = &pool[it % BENCH_POOL];
            double t0 = cr_now();
            if (!measuring && t0 - t_start >= warm_s && it >= 3) {
                measuring = 1;
                t_meas = t0;
                cpu0 = bench_cpu_now();
            }
            if (measuring && (t0 - t_meas >= seconds || steps == cap)) break;
            cr_ranker_zero_grad(m, tws);
            if (cr_ranker_forward(m, tws, b, &e) != CR_OK) BENCH_DIE("%s", e.msg);
            double t1 = cr_now();
            if (cr_ranker_loss(m, tws, b, NULL, &loss, &e) != CR_OK) BENCH_DIE("%s", e.msg);
            double t2 = cr_now();
            if (cr_ranker_backward(m, tws, b, NULL, &e) != CR_OK) BENCH_DIE("%s", e.msg);
            double t3 = cr_now();
            if (cr_optim_step_dense(&opt, it, &e) != CR_OK) BENCH_DIE("%s", e.msg);
            double t4 = cr_now();
            cr_optim_step_tables(&opt, sg);
            double t5 = cr_now();
            if (measuring) {
                phase[0] += t1 - t0, phase[1] += t2 - t1, phase[2] += t3 - t2;
                phase[3] += t4 - t3, phase[4] += t5 - t4;
                step_t[steps++] = t5 - t0;
            }
        }
        train_s = cr_now() - t_meas;
        train_cpu = bench_cpu_now() - cpu0;
        cr_sgemm_set_precision(CR_GEMM_FP32);
        if (!isfinite(loss)) BENCH_DIE("the training loss is %g", loss);
        qsort(step_t, steps, sizeof *step_t, bench_cmp_double);
    }

    /* ---- scoring 1000 candidates: forward + predictions, one call at a time ---- */
    double score_cpu = 0, score_s = 0;
    if (part != BENCH_TRAIN) {
        /* what a scoring process does once, after loading the model */
        if (pack && cr_ranker_pack(m, &e) != CR_OK) BENCH_DIE("%s", e.msg);
        for (int i = 0; i < 3; i++) {
            if (cr_ranker_forward(m, sws, &req, &e) != CR_OK) BENCH_DIE("%s", e.msg);
            cr_ranker_predict(m, sws, pred);
        }
        double s0 = cr_now(), cpu0 = bench_cpu_now();
        while ((cr_now() - s0 < seconds || n_lat < 20) && n_lat < cap) {
            double t0 = cr_now();
            if (cr_ranker_forward(m, sws, &req, &e) != CR_OK) BENCH_DIE("%s", e.msg);
            cr_ranker_predict(m, sws, pred);
            lat[n_lat++] = cr_now() - t0;
        }
        score_s = cr_now() - s0;
        score_cpu = bench_cpu_now() - cpu0;
        qsort(lat, n_lat, sizeof *lat, bench_cmp_double);
    }

    double train_flops = 3.0 * 2.0 * bench_fwd_macs(m, BENCH_TRAIN_B);
    double score_flops = 2.0 * bench_fwd_macs(m, BENCH_SCORE_B);
    double sgemm_peak = peak ? bench_sgemm_peak(0.3) : 0;

    bench_out o = {.json = json};
    bench_put(&o, "impl", 1, "crossrec");
    bench_put(&o, "model", 1, "%s", bm.name);
    bench_put(&o, "threads", 0, "%d", cr_get_threads());
    bench_put(&o, "gemm_backend", 1, "%s", cr_sgemm_backend_name());
    bench_put(&o, "kernels", 1, "%s", cr_kernel_set_name());
    bench_put(&o, "cpu", 1, "%s", cr_cpu_name());
    if (zipf > 0) bench_put(&o, "ids", 1, "zipf_%.2f", zipf);
    else bench_put(&o, "ids", 1, "uniform");
    bench_put(&o, "precision", 1, "%s",
              precision == CR_GEMM_FP32 ? "fp32" : cr_sgemm_bf16_native() ? "bf16" : "bf16-unavailable");
    bench_put(&o, "sparse_opt", 1, "%s", sparse_kind == CR_SPARSE_ADAGRAD ? "adagrad" : "lazy_adam");
    bench_put(&o, "input_width", 0, "%d", m->C_in);
    bench_put(&o, "dense_params", 0, "%zu", bench_numel(&m->params));
    bench_put(&o, "table_params", 0, "%zu", bench_numel(&m->tables));
    bench_put(&o, "train_batch", 0, "%d", BENCH_TRAIN_B);
    if (steps) {
        double p50 = step_t[(steps - 1) / 2], mean = train_s / (double)steps;
        bench_put(&o, "train_steps", 0, "%zu", steps);
        bench_put(&o, "train_examples_per_s", 0, "%.1f", BENCH_TRAIN_B / p50);
        bench_put(&o, "train_examples_per_s_mean", 0, "%.1f", BENCH_TRAIN_B / mean);
        bench_put(&o, "train_step_p50_ms", 0, "%.3f", 1e3 * p50);
        bench_put(&o, "train_step_mean_ms", 0, "%.3f", 1e3 * mean);
        bench_put(&o, "train_fwd_ms", 0, "%.3f", 1e3 * phase[0] / steps);
        bench_put(&o, "train_loss_ms", 0, "%.3f", 1e3 * phase[1] / steps);
        bench_put(&o, "train_bwd_ms", 0, "%.3f", 1e3 * phase[2] / steps);
        bench_put(&o, "train_dense_opt_ms", 0, "%.3f", 1e3 * phase[3] / steps);
        bench_put(&o, "train_sparse_opt_ms", 0, "%.3f", 1e3 * phase[4] / steps);
        bench_put(&o, "train_cpu_util", 0, "%.2f", train_cpu / train_s);
        bench_put(&o, "train_loss", 0, "%.5f", loss);
        bench_put(&o, "train_gflop_per_step", 0, "%.4f", train_flops * 1e-9);
        bench_put(&o, "train_gflops", 0, "%.2f", train_flops / p50 * 1e-9);
    }
    bench_put(&o, "score_batch", 0, "%d", BENCH_SCORE_B);
    bench_put(&o, "score_packed", 0, "%d", pack && m->packed != NULL);
    if (n_lat) {
        double p50 = lat[(n_lat - 1) / 2], p99 = lat[(size_t)((n_lat - 1) * 0.99)];
        bench_put(&o, "score_calls", 0, "%zu", n_lat);
        bench_put(&o, "score1000_p50_ms", 0, "%.3f", 1e3 * p50);
        bench_put(&o, "score1000_p99_ms", 0, "%.3f", 1e3 * p99);
        bench_put(&o, "score_cpu_util", 0, "%.2f", score_cpu / score_s);
        bench_put(&o, "score_gflop_per_call", 0, "%.4f", score_flops * 1e-9);
        bench_put(&o, "score_gflops", 0, "%.2f", score_flops / p50 * 1e-9);
    }
    if (peak) bench_put(&o, "sgemm_peak_gflops", 0, "%.2f", sgemm_peak);
    bench_print(&o);

    free(lat);
    free(step_t);
    free(pred);
    cr_optim_free(&opt);
    cr_ranker_ws_free(tws);
    cr_ranker_ws_free(sws);
    for (int i = 0; i < BENCH_POOL; i++) bench_batch_free(&pool[i]);
    bench_batch_free(&req);
    for (int t = 0; t < schema.n_tables; t++) free(zf[t].cdf);
    free(zf);
    cr_ranker_free(m);
    cr_schema_free(&schema);
    return 0;
}
