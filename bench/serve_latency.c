/*
 * serve_latency.c - the crossrec side of the in-process serving comparison
 * (scripts/bench_serve.sh sets it beside bench/serve_torch.py and
 * bench/serve_onnx.js): p50/p99 of scoring 10, 100 and 1000 candidates on
 * the reference ranker shape of docs/bench.md (synthetic, random weights)
 * or on a trained checkpoint (the MovieLens model, real rows), through
 * every scoring path crossrec has:
 *
 *   fwd_fp32   cr_ranker_forward + cr_ranker_predict: every input per
 *              candidate, the same computation and FLOPs as the twins;
 *   req_<p>    cr_req_forward in fp32, bf16, int8: the request forward
 *              (the context part once; no context for the reference shape,
 *              which has no user/item split, so the same FLOPs again);
 *   api_<p>    cr_model_score_request from text values, the C call behind
 *              `crossrec serve` (checkpoints only: it needs vocabularies).
 *
 * It prints `name: value` lines, the GEMM FLOPs per call counted as
 * bench/rank.c counts them and the 1024^3 sgemm peak, so each path's share
 * of the machine's peak can be read off. A bench, not a test: it must never
 * tune the library it measures.
 *
 *   build/bench/serve_latency --model reference [--threads N] [--seconds S]
 *   build/bench/serve_latency --model out/movielens/model.safetensors \
 *       --config examples/movielens/ranker.yaml [--data rows.csv]
 */
#include "../src/data/config.h"
#include "../src/rank/checkpoint.h"
#include "../src/rank/config.h"
#include "../src/rank/ranker.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { NMAX = 1000, NSIZES = 3 };
static const int sizes[NSIZES] = {10, 100, 1000};

#define DIE(...)                                                                            \
    do {                                                                                    \
        fprintf(stderr, "serve_latency: " __VA_ARGS__);                                     \
        fputc('\n', stderr);                                                                \
        exit(1);                                                                            \
    } while (0)

/* ---- the reference shape (as bench/rank.c's bench_reference) -------------------
 * 26 categorical features with 10,000-row tables of 16 dims, 13 dense,
 * MMoE 4 x [256, 128], 3 binary tasks with [64] towers: C_in = 429. */
static void reference_model(cr_ranker **m, cr_schema *s) {
    cr_error e = {0};
    memset(s, 0, sizeof *s);
    s->n_features = 39;
    s->n_tasks = 3;
    s->features = calloc(39, sizeof *s->features);
    s->tasks = calloc(3, sizeof *s->tasks);
    if (!s->features || !s->tasks) DIE("out of memory");
    for (int i = 0; i < 39; i++) {
        cr_feature *f = &s->features[i];
        snprintf(f->name, sizeof f->name, i < 26 ? "c%02d" : "d%02d", i < 26 ? i + 1 : i - 25);
        snprintf(f->column, sizeof f->column, "%s", f->name);
        f->kind = i < 26 ? CR_FEAT_CATEGORICAL : CR_FEAT_NUMERIC;
        f->dim = i < 26 ? 16 : 0;
        f->rows = i < 26 ? 10000 : 0;
        f->sep = '|';
        f->pooling = CR_POOL_MEAN;
        f->min_count = 1;
    }
    static const char *tn[3] = {"click", "like", "share"};
    for (int k = 0; k < 3; k++) {
        snprintf(s->tasks[k].name, sizeof s->tasks[k].name, "%s", tn[k]);
        snprintf(s->tasks[k].label, sizeof s->tasks[k].label, "%s", tn[k]);
        s->tasks[k].kind = CR_TASK_BINARY;
        s->tasks[k].weight = 1.0f;
    }
    if (cr_schema_finish(s, &e)) DIE("%s", e.msg);
    cr_model_cfg cfg;
    cr_model_cfg_defaults(&cfg, s);
    cfg.arch = CR_ARCH_MMOE;
    cfg.n_experts = 4;
    cfg.n_expert_layers = 2;
    cfg.expert_layers[0] = 256;
    cfg.expert_layers[1] = 128;
    cfg.n_tower = 1;
    cfg.tower_layers[0] = 64;
    if (cr_ranker_create(m, s, &cfg, 42, &e)) DIE("%s", e.msg);
}

/* Ids Zipf(1.05) per table with rank r at row (r * 2654435761) mod V, dense
 * values N(0, 1): the law of bench/rank.c and the twins. */
static void reference_batch(cr_batch *b, const cr_ranker *m, int B, cr_rng *rng) {
    memset(b, 0, sizeof *b);
    b->B = b->max_B = B;
    b->n_cat = m->n_cat;
    b->n_dense = m->n_dense;
    b->cat = cr_alloc((size_t)B * m->n_cat * sizeof(int32_t));
    b->dense = cr_alloc((size_t)B * m->n_dense * sizeof(float));
    if (!b->cat || !b->dense) DIE("out of memory");
    const int64_t V = 10000;
    double *cdf = malloc((size_t)V * sizeof(double)), s = 0;
    if (!cdf) DIE("out of memory");
    for (int64_t r = 0; r < V; r++) cdf[r] = (s += pow((double)(r + 1), -1.05));
    for (int64_t r = 0; r < V; r++) cdf[r] /= s;
    for (size_t j = 0; j < (size_t)B * m->n_cat; j++) {
        double u = cr_rng_uniform(rng);
        int64_t lo = 0, hi = V - 1;
        while (lo < hi) {
            int64_t mid = (lo + hi) / 2;
            if (cdf[mid] > u) hi = mid;
            else lo = mid + 1;
        }
        b->cat[j] = (int32_t)(((uint64_t)lo * 2654435761u) % (uint64_t)V);
    }
    for (size_t j = 0; j < (size_t)B * m->n_dense; j++) b->dense[j] = (float)cr_rng_normal(rng);
    free(cdf);
}

/* ---- FLOPs (bench/rank.c's bench_fwd_macs, MMoE and PLE) ------------------------
 * Multiply-adds of the forward GEMMs for B rows; first_cols is the width of
 * x the first layers read per candidate (C_in for the plain forward, the
 * candidate columns for a split request, whose context row is added once). */
static double fwd_macs(const cr_ranker *m, int B, int first_cols) {
    const cr_experts *X = &m->experts;
    int first_out = X->E * X->dims[0] + m->K * m->S;
    double macs = (double)B * first_cols * first_out;
    if (first_cols < m->C_in) macs += (double)(m->C_in - first_cols) * first_out;
    for (int i = 1; i < X->n_layers; i++) macs += (double)X->E * B * X->dims[i] * X->dims[i - 1];
    for (int k = 0; k < m->K; k++) {
        int t = X->dims[X->n_layers - 1];
        for (int i = 0; i < m->towers[k].n_layers; i++) {
            macs += (double)B * t * m->towers[k].dims[i];
            t = m->towers[k].dims[i];
        }
    }
    for (int h = 0; h < m->cfg.n_heads; h++)
        macs += (double)B * cr_mlp_out_dim(&m->towers[m->cfg.heads[h].tower]);
    return macs;
}

static double sgemm_peak(double min_s) {
    const int n = 1024;
    size_t nn = (size_t)n * n;
    float *A = cr_alloc(nn * 4), *Bm = cr_alloc(nn * 4), *C = cr_alloc(nn * 4);
    if (!A || !Bm || !C) DIE("out of memory");
    cr_rng r;
    cr_rng_seed(&r, 7);
    cr_rng_fill_uniform(&r, A, nn, 1.0f);
    cr_rng_fill_uniform(&r, Bm, nn, 1.0f);
    cr_sgemm(0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, C, n);
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

/* ---- timing ------------------------------------------------------------------------ */

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One scoring path, one call = one request of B candidates. */
typedef struct path {
    const cr_ranker   *m;
    cr_ranker_ws      *ws;
    const cr_req_plan *plan;
    cr_req_ws         *rws;
    const uint8_t     *slot_ctx;
    const cr_batch    *ctx, *cand;
    const cr_model    *api;
    const cr_request  *rq;
    cr_response       *rs;
    float             *pred;
} path;

static void call(const path *p) {
    cr_error e = {0};
    if (p->api) {
        if (cr_model_score_request(p->api, p->rq, p->rs, &e)) DIE("%s", e.msg);
    } else if (p->plan) {
        const float *out;
        if (cr_req_forward(p->plan, p->rws, p->slot_ctx, p->ctx, p->cand, 0, &out, &e))
            DIE("%s", e.msg);
        /* predictions as cr_ranker_predict makes them, so every path ends alike */
        const int B = p->cand->B;
        for (int h = 0; h < p->m->cfg.n_heads; h++)
            for (int i = 0; i < B; i++) {
                float v = out[(size_t)h * B + i];
                p->pred[(size_t)h * B + i] =
                    p->m->cfg.heads[h].kind == CR_HEAD_BINARY ? 1.0f / (1.0f + expf(-v)) : v;
            }
    } else {
        if (cr_ranker_forward(p->m, p->ws, p->cand, &e)) DIE("%s", e.msg);
        cr_ranker_predict(p->m, p->ws, p->pred);
    }
}

static double g_cpu, g_wall; /* totals over every measurement, for cpu_util */

/* Warm up (3 calls and 5% of the time), then time every call for `seconds`
 * (at least 20 calls): p50 and p99 in ms. */
static void measure(const path *p, double seconds, double *lat, size_t cap, double q[2]) {
    double w0 = cr_now();
    for (int i = 0; i < 3 || cr_now() - w0 < 0.05 * seconds; i++) call(p);
    size_t n = 0;
    double s0 = cr_now(), c0 = cpu_now();
    while ((cr_now() - s0 < seconds || n < 20) && n < cap) {
        double t0 = cr_now();
        call(p);
        lat[n++] = 1e3 * (cr_now() - t0);
    }
    g_wall += cr_now() - s0;
    g_cpu += cpu_now() - c0;
    qsort(lat, n, sizeof *lat, cmp_d);
    q[0] = lat[(n - 1) / 2];
    q[1] = lat[(size_t)((double)(n - 1) * 0.99)];
}

/* ---- MovieLens rows --------------------------------------------------------------- */

/* Inputs the request carries once: the user's side of the impressions
 * (bench/serve.c and `crossrec serve` clients use the same split). */
static int is_context_column(const char *c) {
    static const char *const ctx[] = {"user_id", "hist_count", "hist_mean_rating",
                                      "hist_top_genres", "last_items", "days_since_first",
                                      "hour_of_day", "day_of_week", NULL};
    for (int i = 0; ctx[i]; i++)
        if (!strcmp(c, ctx[i])) return 1;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "usage: serve_latency [options]\n"
               "  --model reference|PATH  the reference shape, or a checkpoint (default reference)\n"
               "  --config YAML           the checkpoint's job config (its data: section)\n"
               "  --data CSV              rows to score instead of the config's data path\n"
               "  --threads N             kernel threads (default 1)\n"
               "  --seconds S             measuring time of each path and size (default 1)\n"
               "  --no-peak               skip the 1024^3 sgemm peak\n");
}

int main(int argc, char **argv) {
    const char *model = "reference", *config = NULL, *data = NULL;
    int threads = 1, peak = 1;
    double seconds = 1.0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"config", required_argument, 0, 'c'},
        {"data", required_argument, 0, 'd'},    {"threads", required_argument, 0, 't'},
        {"seconds", required_argument, 0, 's'}, {"no-peak", no_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'c': config = optarg; break;
        case 'd': data = optarg; break;
        case 't':
            threads = atoi(optarg);
            if (threads < 1 || threads > 1024) DIE("--threads '%s': expected 1 to 1024", optarg);
            break;
        case 's':
            seconds = atof(optarg);
            if (!(seconds > 0 && seconds <= 3600)) DIE("--seconds '%s': expected (0, 3600]", optarg);
            break;
        case 'P': peak = 0; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) DIE("unexpected argument '%s' (see --help)", argv[optind]);
    int is_ref = !strcmp(model, "reference");
    if (!is_ref && !config) DIE("--config is required with a checkpoint");
    cr_set_threads(threads);

    cr_error e = {0};
    cr_schema schema;
    cr_ranker *m = NULL;
    cr_batch cand[NSIZES], ctx;
    cr_dataset ds;
    cr_rank_config cfg;
    uint8_t *slot_ctx;
    cr_rng rng;
    cr_rng_seed(&rng, 1234);
    if (is_ref) {
        reference_model(&m, &schema);
        reference_batch(&ctx, m, 1, &rng); /* read by no slot: nothing is context */
        for (int s = 0; s < NSIZES; s++) reference_batch(&cand[s], m, sizes[s], &rng);
    } else {
        if (cr_rank_config_load(&cfg, config, &e) || cr_ranker_load(&m, &schema, model, &e))
            DIE("%s", e.msg);
        if (data) snprintf(cfg.data.path, sizeof cfg.data.path, "%s", data);
        if (cr_dataset_load(&ds, &schema, &cfg.data, 0, &e)) DIE("%s", e.msg);
        if (ds.n < NMAX) DIE("%s: %lld rows, need %d", cfg.data.path, (long long)ds.n, NMAX);
        uint32_t rows[NMAX];
        for (uint32_t r = 0; r < NMAX; r++) rows[r] = r; /* the file's first rows */
        if (cr_batch_init(&ctx, &ds, 1, &e) || cr_batch_gather(&ctx, &ds, rows, 1, &e))
            DIE("%s", e.msg);
        for (int s = 0; s < NSIZES; s++)
            if (cr_batch_init(&cand[s], &ds, sizes[s], &e) ||
                cr_batch_gather(&cand[s], &ds, rows, sizes[s], &e))
                DIE("%s", e.msg);
    }
    /* what a scoring process does once after loading (the api_ paths load
     * their own model, and cr_model_load packs it the same way) */
    if (cr_ranker_pack(m, &e)) DIE("%s", e.msg);
    /* which slots are context, and how wide the candidate part of x is */
    int n_slots = m->n_cat + m->n_multi + m->n_dense, cand_cols = 0;
    slot_ctx = calloc((size_t)n_slots, 1);
    if (!slot_ctx) DIE("out of memory");
    for (int s = 0; s < n_slots; s++) {
        int f, w;
        if (s < m->n_cat) f = schema.cat_feat[s], w = m->table_dim[m->cat_table[s]];
        else if (s < m->n_cat + m->n_multi)
            f = schema.multi_feat[s - m->n_cat], w = m->table_dim[m->multi_table[s - m->n_cat]];
        else f = schema.dense_feat[s - m->n_cat - m->n_multi], w = 1;
        slot_ctx[s] = !is_ref && is_context_column(schema.features[f].column);
        if (!slot_ctx[s]) cand_cols += w;
    }

    /* text rows for the request API: the same rows, read as `crossrec serve` gets them */
    cr_model *api[3] = {0};
    char **text = NULL;
    const char **context = NULL;
    int NI = 0;
    if (!is_ref) {
        for (int p = 0; p < 3; p++) {
            cr_model_opts o;
            cr_model_opts_defaults(&o);
            o.precision = (cr_precision)p;
            if (cr_model_load_opts(&api[p], model, &o, &e)) DIE("%s", e.msg);
        }
        cr_csv *in;
        if (cr_csv_open(&in, cfg.data.path, 0, &e)) DIE("%s", e.msg);
        NI = cr_model_n_inputs(api[0]);
        text = calloc((size_t)NMAX * NI, sizeof(char *));
        context = calloc((size_t)NI, sizeof(char *));
        if (!text || !context) DIE("out of memory");
        for (int r = 0; r < NMAX; r++) {
            int done;
            if (cr_csv_next(in, &done, &e) || done) DIE("%s: too few rows", cfg.data.path);
            for (int i = 0; i < NI; i++) {
                int col = cr_csv_find(in, cr_model_input_column(api[0], i));
                text[(size_t)r * NI + i] = strdup(col >= 0 ? cr_csv_field(in, col, NULL) : "");
            }
        }
        cr_csv_close(in);
        for (int i = 0; i < NI; i++)
            context[i] = is_context_column(cr_model_input_column(api[0], i)) ? text[i] : NULL;
    }

    cr_ranker_ws *ws;
    cr_req_plan *plan[3];
    cr_req_ws *rws[3];
    if (cr_ranker_ws_create(&ws, m, NMAX, 0, 0, &e)) DIE("%s", e.msg);
    for (int p = 0; p < 3; p++)
        if (cr_req_plan_create(&plan[p], m, (cr_precision)p, &e) ||
            cr_req_ws_create(&rws[p], plan[p], NMAX, &e))
            DIE("%s", e.msg);
    float *pred = malloc((size_t)m->cfg.n_heads * NMAX * sizeof(float));
    float *rank = malloc(NMAX * sizeof(float));
    int64_t *order = malloc(NMAX * sizeof(int64_t));
    size_t cap = 1 << 20;
    double *lat = malloc(cap * sizeof(double));
    if (!pred || !rank || !order || !lat) DIE("out of memory");

    double peak_gflops = peak ? sgemm_peak(0.3) : 0;
    printf("impl: crossrec\n");
    printf("model: %s\n", is_ref ? "reference" : "movielens");
    printf("threads: %d\n", cr_get_threads());
    printf("gemm_backend: %s\n", cr_sgemm_backend_name());
    cr_kernels_print(stdout);
    printf("lowp_isa: bf16 %s, int8 %s\n", cr_lp_isa(CR_PRECISION_BF16), cr_lp_isa(CR_PRECISION_INT8));
    printf("input_width: %d\n", m->C_in);
    printf("candidate_width: %d\n", cand_cols);
    if (peak) printf("sgemm_peak_gflops: %.2f\n", peak_gflops);
    static const char *prec[3] = {"fp32", "bf16", "int8"};
    for (int s = 0; s < NSIZES; s++) {
        const int N = sizes[s];
        double flops = 2.0 * fwd_macs(m, N, m->C_in), rflops = 2.0 * fwd_macs(m, N, cand_cols);
        printf("n%d_gflop_per_call: %.6f\n", N, flops * 1e-9);
        if (!is_ref) printf("n%d_req_gflop_per_call: %.6f\n", N, rflops * 1e-9);
        /* 0 the plain forward, 1-3 request forward, 4-6 the text API */
        for (int k = 0; k < 7; k++) {
            if (k >= 4 && is_ref) break;
            path pa = {.m = m, .ws = ws, .ctx = &ctx, .cand = &cand[s], .slot_ctx = slot_ctx,
                       .pred = pred};
            cr_request rq = {context, N, (const char *const *)text};
            cr_response rs = {pred, rank, order, 0};
            char name[32];
            if (k == 0) snprintf(name, sizeof name, "fwd_fp32");
            else if (k < 4) {
                pa.plan = plan[k - 1], pa.rws = rws[k - 1];
                snprintf(name, sizeof name, "req_%s", prec[k - 1]);
            } else {
                pa.api = api[k - 4], pa.rq = &rq, pa.rs = &rs;
                snprintf(name, sizeof name, "api_%s", prec[k - 4]);
            }
            double q[2];
            measure(&pa, seconds, lat, cap, q);
            double f = k == 0 ? flops : rflops;
            printf("%s_n%d_p50_ms: %.4f\n", name, N, q[0]);
            printf("%s_n%d_p99_ms: %.4f\n", name, N, q[1]);
            printf("%s_n%d_gflops: %.2f\n", name, N, f / (q[0] * 1e-3) * 1e-9);
            if (peak) printf("%s_n%d_peak_share: %.4f\n", name, N, f / (q[0] * 1e-3) * 1e-9 / peak_gflops);
        }
    }
    printf("cpu_util: %.2f\n", g_wall > 0 ? g_cpu / g_wall : 0);

    free(lat), free(pred), free(rank), free(order), free(slot_ctx);
    for (int p = 0; p < 3; p++) {
        cr_req_ws_free(rws[p]);
        cr_req_plan_free(plan[p]);
        cr_model_free(api[p]);
    }
    cr_ranker_ws_free(ws);
    if (is_ref) {
        cr_free(ctx.cat), cr_free(ctx.dense);
        for (int s = 0; s < NSIZES; s++) cr_free(cand[s].cat), cr_free(cand[s].dense);
    } else {
        cr_batch_free(&ctx);
        for (int s = 0; s < NSIZES; s++) cr_batch_free(&cand[s]);
        cr_dataset_free(&ds);
        cr_rank_config_free(&cfg);
        for (int i = 0; i < NMAX * NI; i++) free(text[i]);
        free(text);
        free(context);
    }
    cr_ranker_free(m);
    cr_schema_free(&schema);
    return 0;
}
