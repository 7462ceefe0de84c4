/*
 * ilm.c - the Item-Language Model's training benchmark: examples/s of one
 * training step, timed as the product runs it, through the library's own
 * functions.
 *
 *   --phase 1  the Q-Former of `crossrec ilm phase1` at its default shape
 *              (8 queries, 2 layers, width 64, 4 heads, 4 CF tokens, CF size
 *              32, text length 32, BPE vocabulary 2048 + 3 specials, batch
 *              32): zero the gradient, all five losses (ITC, ITM with its 3B
 *              sequences, ITG on the text batch; item-item and user-item
 *              InfoNCE on two pair batches), clip, AdamW. The product
 *              alternates text steps and pair steps; one step here does both
 *              so that every loss is in the figure. An example is one of the
 *              B rows of the batch.
 *   --phase 2  examples/movielens/ilm.yaml's phase 2: a Q-Former of 4 queries
 *              plus the linear adapter in front of the frozen austen-small LM
 *              (llama, 4 layers, width 192) on a batch of 8 prompts of at
 *              most 80 tokens (cr_p2_batch_add on the six task templates in
 *              turn), the LM in frozen mode (gradients only into the soft
 *              tokens): zero, forward + backward (cr_p2_forward), the global
 *              clip over encoder + adapter, two AdamW steps. An example is
 *              one prompt row.
 *
 * Random CF vectors and token ids; the LM's weights are the real ones (their
 * values do not change the time). bench/ilm_torch.py is the PyTorch twin at
 * the same shapes with the same output names; scripts/bench_ilm.sh sets them
 * side by side. A bench, not a test: it checks only that losses are finite
 * and never tunes the library it measures.
 */
#include "../src/ilm/phase1.h"
#include "../src/ilm/phase2.h"
#include "../src/kernels/kernels.h"
#include "../src/train/optim.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Step times: at least 5 (after 2 warm-up steps, which fill caches and
 * fault pages in), until `seconds` pass; the median is robust to the other
 * jobs on a shared machine. */
typedef struct timer {
    double t[4096];
    int    n;
    double total;
} timer;

static int timer_more(const timer *t, double seconds) {
    return t->n < 5 || (t->total < seconds && t->n < 4096);
}
static void timer_add(timer *t, double dt) {
    t->t[t->n++] = dt;
    t->total += dt;
}
static double timer_median(timer *t) {
    qsort(t->t, (size_t)t->n, sizeof t->t[0], cmp_d);
    return t->t[t->n / 2];
}

/* CPU seconds of the process, to report the share of the cores the run got. */
static double cpu_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

static void report(const char *ph, int B, timer *t, double wall, double cpu, double loss) {
    double med = timer_median(t);
    printf("%s_examples_per_s: %.1f\n", ph, B / med);
    printf("%s_ms_per_step: %.3f\n", ph, med * 1e3);
    printf("%s_steps: %d\n", ph, t->n);
    printf("%s_cpu_share: %.2f\n", ph, wall > 0 ? cpu / wall : 0);
    printf("%s_last_loss: %.4f\n", ph, loss);
}

#define CHECK(x)                                                                       \
    do {                                                                               \
        if ((x) != CR_OK) {                                                            \
            fprintf(stderr, "bench ilm: %s\n", e.msg);                                 \
            goto done;                                                                 \
        }                                                                              \
    } while (0)

/* ---- phase 1 --------------------------------------------------------------------------- */
static int phase1(double seconds) {
    enum { B = 32, NU = 600, NI = 2000 };
    cr_error e = {0};
    int rc = 1;
    cr_qformer m = {0};
    cr_phase1 p = {0};
    cr_optim opt = {0};
    cr_phase1_opts o;
    cr_phase1_opts_default(&o);
    o.optim.schedule = CR_SCHED_CONSTANT, o.optim.warmup = 0; /* every step at the peak rate */
    cr_qformer_cfg c = o.model;
    c.d_cf = 32;                  /* cr_mf_cfg_default's dim */
    c.vocab = o.bpe_vocab + 3;
    int T = c.max_text, D = c.d_cf;
    float *cf = malloc(sizeof(float) * B * D), *u = malloc(sizeof(float) * 2 * B);
    float *pa[2], *pb[2];
    int32_t *ids = malloc(sizeof(int32_t) * B * T), *len = malloc(sizeof(int32_t) * B);
    int32_t *ka[2], *kb[2];
    for (int k = 0; k < 2; k++) {
        pa[k] = malloc(sizeof(float) * B * D), pb[k] = malloc(sizeof(float) * B * D);
        ka[k] = malloc(sizeof(int32_t) * B), kb[k] = malloc(sizeof(int32_t) * B);
    }
    cr_rng r;
    cr_rng_seed(&r, 1);
    /* text lengths 12..32 tokens ([CLS] .. [EOS]), the same rule as the twin */
    for (int b = 0; b < B; b++) {
        len[b] = 12 + (b * 7) % (T - 11);
        for (int t = 0; t < T; t++) ids[b * T + t] = (int32_t)cr_rng_below(&r, (uint64_t)c.vocab - 3);
        ids[b * T] = CR_QF_CLS(&c);
        ids[b * T + len[b] - 1] = CR_QF_EOS(&c);
    }
    cr_rng_fill_normal(&r, cf, (size_t)B * D, 0.3f);
    for (int i = 0; i < 2 * B; i++) u[i] = (float)cr_rng_uniform(&r);
    for (int k = 0; k < 2; k++) {
        cr_rng_fill_normal(&r, pa[k], (size_t)B * D, 0.3f);
        cr_rng_fill_normal(&r, pb[k], (size_t)B * D, 0.3f);
        for (int i = 0; i < B; i++) {
            ka[k][i] = (int32_t)cr_rng_below(&r, k ? NU : NI);
            kb[k][i] = (int32_t)cr_rng_below(&r, NI);
        }
    }
    CHECK(cr_qformer_init(&m, &c, 1, &e));
    CHECK(cr_qformer_grad_alloc(&m, &e));
    CHECK(cr_phase1_init(&p, &m, B, T, &e));
    cr_optim_init(&opt, &o.optim, 0, 1);
    CHECK(cr_optim_add_dense(&opt, &m.pt, m.pt.data, m.grad, &e));
    printf("phase1_shape: B %d, T %d, NQ %d, W %d, layers %d, heads %d, ffn %d, kv %d, D %d, V %d\n",
           B, T, c.nq, c.width, c.layers, c.heads, c.ffn, c.n_kv, D, c.vocab);
    cr_p1_text_batch tb = {B, T, cf, ids, len, u};
    cr_p1_pair_batch ii = {B, pa[0], pb[0], CR_QF_ITEM, CR_QF_ITEM, ka[0], kb[0]};
    cr_p1_pair_batch ui = {B, pa[1], pb[1], CR_QF_USER, CR_QF_ITEM, ka[1], kb[1]};
    timer t = {0};
    double loss = 0, c0 = 0, w0 = 0;
    for (int step = 0; step < 2 || timer_more(&t, seconds); step++) {
        if (step == 2) c0 = cpu_seconds(), w0 = cr_now();
        double t0 = cr_now(), l[CR_P1_NLOSS];
        cr_qformer_zero_grad(&m);
        cr_phase1_text_losses(&p, &tb, o.weight, l, NULL);
        cr_phase1_pair_loss(&p, &ii, CR_P1_II, o.weight[CR_P1_II], &l[CR_P1_II]);
        cr_phase1_pair_loss(&p, &ui, CR_P1_UI, o.weight[CR_P1_UI], &l[CR_P1_UI]);
        cr_status st = cr_optim_step(&opt, step, NULL, &e);
        double dt = cr_now() - t0;
        loss = 0;
        for (int k = 0; k < CR_P1_NLOSS; k++) loss += l[k];
        if (!isfinite(loss) || st != CR_OK) {
            fprintf(stderr, "bench ilm: phase 1 loss or gradient is not finite\n");
            goto done;
        }
        if (step >= 2) timer_add(&t, dt);
    }
    report("phase1", B, &t, cr_now() - w0, cpu_seconds() - c0, loss);
    rc = 0;
done:
    cr_optim_free(&opt);
    cr_phase1_free(&p);
    cr_qformer_free(&m);
    free(cf), free(u), free(ids), free(len);
    for (int k = 0; k < 2; k++) free(pa[k]), free(pb[k]), free(ka[k]), free(kb[k]);
    return rc;
}

/* ---- phase 2 --------------------------------------------------------------------------- */
static int phase2(double seconds, const char *lm_path, const char *tok_path, const char *tmp) {
    enum { B = 8, MAXSEQ = 80, NQ = 4, HIST = 3, NI = 2000, NU = 600, D = 32 };
    cr_error e = {0};
    int rc = 1;
    cr_qformer q = {0};
    cr_decoder lm = {0};
    cr_p2_tok tok = {0};
    cr_p2_model m = {0};
    cr_p2_batch b = {0};
    cr_p2_step st = {0};
    cr_optim opt = {0};
    char path[4096] = "";
    float *item_cf = malloc(sizeof(float) * NI * D), *user_cf = malloc(sizeof(float) * NU * D);
    cr_rng r;
    cr_rng_seed(&r, 2);
    cr_rng_fill_normal(&r, item_cf, (size_t)NI * D, 0.3f);
    cr_rng_fill_normal(&r, user_cf, (size_t)NU * D, 0.3f);
    /* phase 2 loads the encoder from phase 1's checkpoint: write a fresh one
     * of the recipe's shape (4 queries, BPE vocabulary 1024) */
    cr_phase1_opts o1;
    cr_phase1_opts_default(&o1);
    cr_qformer_cfg c = o1.model;
    c.nq = NQ, c.d_cf = D, c.vocab = 1024 + 3;
    snprintf(path, sizeof path, "%s/crossrec_bench_ilm_%ld.safetensors", tmp, (long)getpid());
    CHECK(cr_qformer_init(&q, &c, 1, &e));
    CHECK(cr_qformer_save(&q, path, NULL, 0, &e));
    CHECK(cr_dec_open(&lm, lm_path, 0, &e));
    CHECK(cr_p2_tok_open(&tok, tok_path, &e));
    CHECK(cr_p2_model_qformer(&m, path, lm.cfg.dim, cr_p2_emb_rms(&lm), 1, &e));
    cr_phase2_opts o;
    cr_phase2_opts_default(&o);
    o.optim.schedule = CR_SCHED_CONSTANT, o.optim.warmup = 0; /* every step at the peak rate */
    int cap_E = B * (HIST + 2);
    CHECK(cr_p2_batch_init(&b, B, MAXSEQ, cap_E, NQ, &e));
    CHECK(cr_p2_step_init(&st, &m, &lm, B, MAXSEQ, cap_E, 1, &e));
    cr_optim_init(&opt, &o.optim, 0, 1); /* phase2.c's optimizer: one norm over both slabs */
    CHECK(cr_optim_add_dense(&opt, &m.pt, m.pt.data, m.grad, &e));
    CHECK(cr_optim_add_dense(&opt, &m.qf.pt, m.qf.pt.data, m.qf.grad, &e));
    /* one row per task in turn; the description is long enough to be cut at
     * max_seq, as MovieLens descriptions are, so the batch is 80 tokens wide */
    static const char *const target[CR_P2_NTASK] = {
        " A cowboy doll is profoundly threatened and jealous when a new spaceman figure "
        "supplants him as top toy in a boy's room. When circumstances separate them from "
        "their owner, the two must put aside their differences and work together to find "
        "their way home before the family moves away. Genres: Adventure, Animation, "
        "Children, Comedy, Fantasy. Directed by John Lasseter.",
        " Adventure, Animation, Children", " 1995", " John Lasseter", " Jumanji (1995)",
        " Grumpier Old Men (1995)"};
    int32_t hist[HIST];
    for (int row = 0; row < B; row++) {
        int task = row % CR_P2_NTASK;
        for (int h = 0; h < HIST; h++) hist[h] = (int32_t)cr_rng_below(&r, NI);
        cr_p2_example x = {cr_p2_template(task), (int32_t)cr_rng_below(&r, NI),
                           (int32_t)cr_rng_below(&r, NU), hist, HIST, target[task], 1};
        CHECK(cr_p2_batch_add(&b, &tok, &x, &e));
    }
    int ntgt = 0;
    for (int i = 0; i < b.B * b.cap_T; i++) ntgt += b.tgt[i] >= 0 && (i % b.cap_T) < b.T;
    printf("phase2_shape: B %d, T %d, entities %d, soft tokens %d, targets %d, NQ %d, LM width %d, "
           "layers %d, V %d\n", b.B, b.T, b.E, b.E * NQ, ntgt, NQ, lm.cfg.dim, lm.cfg.n_layers,
           lm.cfg.vocab);
    printf("phase2_T: %d\nphase2_entities: %d\nphase2_targets: %d\n", b.T, b.E, ntgt);
    printf("phase2_trainable: %lld\n", (long long)cr_p2_model_trainable(&m));
    timer t = {0};
    double loss = 0, c0 = 0, w0 = 0;
    for (int step = 0; step < 2 || timer_more(&t, seconds); step++) {
        if (step == 2) c0 = cpu_seconds(), w0 = cr_now();
        double t0 = cr_now();
        cr_p2_model_zero_grad(&m);
        CHECK(cr_p2_forward(&m, &st, &lm, &b, item_cf, user_cf, 1, &loss, &e));
        cr_status ok = cr_optim_step(&opt, step, NULL, &e);
        double dt = cr_now() - t0;
        if (!isfinite(loss) || ok != CR_OK) {
            fprintf(stderr, "bench ilm: phase 2 loss or gradient is not finite\n");
            goto done;
        }
        if (step >= 2) timer_add(&t, dt);
    }
    report("phase2", B, &t, cr_now() - w0, cpu_seconds() - c0, loss);
    rc = 0;
done:
    if (path[0]) unlink(path);
    cr_optim_free(&opt);
    cr_p2_step_free(&st);
    cr_p2_batch_free(&b);
    cr_p2_model_free(&m);
    cr_p2_tok_free(&tok);
    cr_dec_free(&lm);
    cr_qformer_free(&q);
    free(item_cf), free(user_cf);
    return rc;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"phase", required_argument, 0, 'p'},   {"threads", required_argument, 0, 't'},
        {"seconds", required_argument, 0, 's'}, {"lm", required_argument, 0, 'l'},
        {"tokenizer", required_argument, 0, 'k'}, {"tmp", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    int phase = 1, threads = 1, ch;
    double seconds = 5;
    const char *lm = "data/models/austen-small/model.safetensors";
    const char *tok = "data/models/austen-small/tokenizer", *tmp = "/tmp";
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'p': phase = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'l': lm = optarg; break;
        case 'k': tok = optarg; break;
        case 'd': tmp = optarg; break;
        case 'h':
            printf("usage: ilm [--phase 1|2] [--threads N] [--seconds S] [--lm FILE]\n"
                   "           [--tokenizer DIR] [--tmp DIR]\n"
                   "defaults: phase 1, 1 thread, 5 s of steps, the austen-small LM and\n"
                   "tokenizer under data/models/ (phase 2), /tmp for the encoder checkpoint\n"
                   "phase 2 loads; prints `name: value` lines\n");
            return 0;
        default: return 2;
        }
    }
    if ((phase != 1 && phase != 2) || threads < 1 || seconds <= 0) {
        fprintf(stderr, "bench ilm: bad arguments (--phase 1|2, --threads >= 1, --seconds > 0)\n");
        return 2;
    }
    cr_set_threads(threads);
    printf("threads: %d\n", threads);
    return phase == 1 ? phase1(seconds) : phase2(seconds, lm, tok, tmp);
}
