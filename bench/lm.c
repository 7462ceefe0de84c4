/*
 * lm.c - the decoder language-model benchmark: training tokens/s (forward,
 * backward, clipping, AdamW), forward + backward in full and in frozen mode
 * (input-embedding gradient only), one forward over a T-token prompt, and
 * greedy generation tokens/s with the key/value cache, in float32 and with
 * bf16 copies of the matrices, on a GPT-2-small-shaped stack, the
 * austen-small shape or llama2.c's 110M shape with an untied classifier
 * (llama134m), random weights, random ids; with one thread's streaming read
 * bandwidth and the generation rate it allows. bench/lm_torch.py is its PyTorch twin (same
 * shapes, same output names); scripts/bench_lm.sh sets them side by side.
 * A bench, not a test: it measures time, checks only that losses are
 * finite, and never tunes the library it measures.
 *
 * Legend: B sequences, T tokens, C dim, H hidden, V vocab, L layers.
 */
#include "../src/kernels/kernels.h"
#include "../src/nn/decoder.h"
#include "../src/train/optim.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct shape {
    const char *name;
    cr_dec_cfg  cfg;
    int         B, T;
    int         train; /* 0: the training parts are skipped unless --train */
} shape;

static int pick_shape(const char *name, shape *s) {
    memset(s, 0, sizeof *s);
    if (!strcmp(name, "gpt2s")) { /* GPT-2 small's width and vocabulary, 2 of its 12 layers */
        *s = (shape){"gpt2s", {CR_DEC_GPT2, 768, 3072, 2, 12, 12, 50257, 256, 1e-5f, 1}, 4, 256, 1};
        return 0;
    }
    if (!strcmp(name, "austen")) { /* examples/lm/austen.yaml */
        *s = (shape){"austen", {CR_DEC_LLAMA, 192, 512, 4, 6, 6, 4096, 256, 1e-5f, 1}, 16, 256, 1};
        return 0;
    }
    if (!strcmp(name, "llama134m")) {
        /* llama2.c's 110M model with an untied classifier: 134M parameters.
         * Generation is what this shape measures; a training step of one
         * 256-token sequence takes seconds, so it runs only with --train. */
        *s = (shape){"llama134m", {CR_DEC_LLAMA, 768, 2048, 12, 12, 12, 32000, 256, 1e-5f, 0},
                     1, 256, 0};
        return 0;
    }
    return 1;
}

/* Multiply-adds x 2 per token of one forward through the matrices (the
 * classifier included, the embedding lookup not), and PaLM's attention term:
 * training is 3x forward, i.e. 6N + 12LTC per token. */
static double fwd_flops_per_token(const cr_dec_cfg *c, int T) {
    double C = c->dim, H = c->hidden_dim, KV = C / c->n_heads * c->n_kv_heads;
    double per_layer = C * (C + 2 * KV) + C * C + (c->arch == CR_DEC_GPT2 ? 2 : 3) * C * H;
    return 2 * (c->n_layers * per_layer + (double)c->vocab * C) + 4.0 * c->n_layers * T * C;
}

static double sgemm_peak(double min_s) {
    const int n = 1024;
    size_t nn = (size_t)n * n;
    float *A = cr_alloc(nn * 4), *Bm = cr_alloc(nn * 4), *Cm = cr_alloc(nn * 4);
    if (!A || !Bm || !Cm) {
        cr_free(A), cr_free(Bm), cr_free(Cm);
        return 0;
    }
    cr_rng r;
    cr_rng_seed(&r, 7);
    cr_rng_fill_uniform(&r, A, nn, 1.0f);
    cr_rng_fill_uniform(&r, Bm, nn, 1.0f);
    cr_sgemm(0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, Cm, n);
    double best = 1e30, total = 0;
    for (int reps = 0; total < min_s || reps < 3; reps++) {
        double t0 = cr_now();
        cr_sgemm(0, 0, n, n, n, 1.0f, A, n, Bm, n, 0.0f, Cm, n);
        double dt = cr_now() - t0;
        best = dt < best ? dt : best;
        total += dt;
    }
    cr_free(A), cr_free(Bm), cr_free(Cm);
    return 2.0 * n * n * n / best * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of repeated runs of one part: at least 3, until `seconds` pass. */
typedef struct timer {
    double t[256];
    int    n;
    double start, total;
} timer;

static int timer_more(const timer *t, double seconds) {
    return t->n < 3 || (t->total < seconds && t->n < 256);
}
static void timer_add(timer *t, double dt) {
    t->t[t->n++] = dt;
    t->total += dt;
}
static double timer_median(timer *t) {
    qsort(t->t, (size_t)t->n, sizeof t->t[0], cmp_d);
    return t->t[t->n / 2];
}

#define CHECK(x)                                                                       \
    do {                                                                               \
        if ((x) != CR_OK) {                                                            \
            fprintf(stderr, "bench lm: %s\n", e.msg);                                  \
            return 1;                                                                  \
        }                                                                              \
    } while (0)

/* A streaming read of a buffer far larger than the caches, on this thread:
 * the memory bandwidth a single-token decode step can use at best. 64
 * independent sums so the adds never wait on each other (the compiler
 * vectorises them); the result is printed so the loop cannot vanish. */
static double mem_read_gbs(double min_s, double *sink) {
    const size_t n = (size_t)256 << 20; /* 1 GiB of floats */
    float *buf = cr_alloc(n * sizeof(float));
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 1023) * 1e-3f;
    double best = 1e30, total = 0;
    for (int reps = 0; total < min_s || reps < 3; reps++) {
        float acc[64] = {0};
        double t0 = cr_now();
        for (size_t i = 0; i < n; i += 64)
            for (int j = 0; j < 64; j++) acc[j] += buf[i + j];
        double dt = cr_now() - t0;
        for (int j = 0; j < 64; j++) *sink += acc[j];
        best = dt < best ? dt : best;
        total += dt;
    }
    cr_free(buf);
    return (double)n * sizeof(float) / best * 1e-9;
}

/* Bytes one decode step reads at least: every matrix of the blocks and the
 * classifier (wbytes per weight), one embedding row, the norms, and the
 * key/value cache up to the mean position of a `gen`-token run. */
static double gen_bytes_per_token(const cr_dec_cfg *c, int gen, double wbytes) {
    double C = c->dim, H = c->hidden_dim, KV = C / c->n_heads * c->n_kv_heads;
    double per_layer = C * (C + 2 * KV) + C * C + (c->arch == CR_DEC_GPT2 ? 2 : 3) * C * H;
    double mats = c->n_layers * per_layer + (double)c->vocab * C;
    double small = 4 * (C + 2.0 * c->n_layers * C + C);
    double cache = 4 * 2.0 * c->n_layers * KV * (gen / 2.0);
    return wbytes * mats + small + cache;
}

int main(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"threads", required_argument, 0, 't'},
        {"seconds", required_argument, 0, 's'}, {"batch", required_argument, 0, 'B'},
        {"gen", required_argument, 0, 'g'},   {"no-peak", no_argument, 0, 'P'},
        {"train", no_argument, 0, 'T'},       {"no-train", no_argument, 0, 'N'},
        {"no-bandwidth", no_argument, 0, 'W'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = "austen";
    int threads = 1, gen = 128, peak = 1, batch = 0, train = -1, bw = 1, ch;
    double seconds = 3;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 't': threads = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'B': batch = atoi(optarg); break;
        case 'g': gen = atoi(optarg); break;
        case 'P': peak = 0; break;
        case 'T': train = 1; break;
        case 'N': train = 0; break;
        case 'W': bw = 0; break;
        case 'h':
            printf("usage: lm [--model gpt2s|austen|llama134m] [--threads N] [--seconds S]\n"
                   "          [--batch B] [--gen N] [--train | --no-train] [--no-peak]\n"
                   "          [--no-bandwidth]\n"
                   "defaults: austen, 1 thread, 3 s per part, the shape's batch (gpt2s 4,\n"
                   "austen 16, llama134m 1), 128 generated tokens; the training parts run\n"
                   "for gpt2s and austen, not for llama134m (--train adds them); prints\n"
                   "`name: value` lines, with the memory read bandwidth of one thread and\n"
                   "the generation rate it allows\n");
            return 0;
        default: return 2;
        }
    }
    shape sh;
    if (pick_shape(model, &sh) || threads < 1 || gen < 1 || gen > 255 || seconds <= 0) {
        fprintf(stderr, "bench lm: bad arguments (model gpt2s|austen|llama134m, gen 1..255)\n");
        return 2;
    }
    if (batch > 0) sh.B = batch;
    if (train < 0) train = sh.train;
    cr_set_threads(threads);
    cr_error e = {0};
    const cr_dec_cfg *c = &sh.cfg;
    int B = sh.B, T = sh.T, V = c->vocab, C = c->dim;
    size_t N = (size_t)B * T;
    cr_decoder d;
    cr_rng r;
    cr_rng_seed(&r, 1);
    CHECK(cr_dec_create(&d, c, &e));
    cr_dec_init(&d, &r);
    int32_t *ids = malloc(N * 4), *tgt = malloc(N * 4);
    float *emb = cr_alloc(N * C * 4), *demb = cr_alloc(N * C * 4);
    if (!ids || !tgt || !emb || !demb) return 1;
    for (size_t i = 0; i < N; i++) ids[i] = (int32_t)cr_rng_below(&r, (uint64_t)V);
    for (size_t i = 0; i < N; i++) tgt[i] = (int32_t)cr_rng_below(&r, (uint64_t)V);
    cr_dec_ws ws;

    double step_s = 0, full_s = 0, frozen_s = 0;
    if (train) {
        /* 1. a training step */
        cr_adam adam;
        CHECK(cr_dec_ws_create(&ws, &d, B, T, CR_DEC_WS_BACKWARD, &e));
        CHECK(cr_adam_init(&adam, &d.pt, CR_OPT_ADAMW, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, &e));
        timer tr = {0};
        for (int warm = 1; warm || timer_more(&tr, seconds); warm = 0) {
            double t0 = cr_now();
            cr_dec_zero_grad(&d, &ws);
            CHECK(cr_dec_forward(&d, &ws, ids, NULL, tgt, B, T, 0, &e));
            CHECK(cr_dec_backward(&d, &ws, NULL, &e));
            cr_clip_grad_norm(&d.pt, ws.grads, 1.0f);
            cr_adam_step(&adam, &d.pt, d.pt.data, ws.grads, 1e-4f);
            if (!warm) timer_add(&tr, cr_now() - t0);
            if (!isfinite(ws.loss)) {
                fprintf(stderr, "bench lm: loss %g\n", (double)ws.loss);
                return 1;
            }
        }
        step_s = timer_median(&tr);

        /* 2. forward + backward, full (weight gradients) and from embeddings */
        timer tf = {0}, tz = {0};
        CHECK(cr_dec_embed(&d, emb, ids, (int)N, &e));
        for (int warm = 1; warm || timer_more(&tf, seconds / 2); warm = 0) {
            double t0 = cr_now();
            cr_dec_zero_grad(&d, &ws);
            CHECK(cr_dec_forward(&d, &ws, NULL, emb, tgt, B, T, 0, &e));
            CHECK(cr_dec_backward(&d, &ws, demb, &e));
            if (!warm) timer_add(&tf, cr_now() - t0);
        }
        cr_dec_ws_free(&ws);
        cr_adam_free(&adam);
        CHECK(cr_dec_ws_create(&ws, &d, B, T, CR_DEC_WS_BACKWARD | CR_DEC_WS_FROZEN, &e));
        for (int warm = 1; warm || timer_more(&tz, seconds / 2); warm = 0) {
            double t0 = cr_now();
            CHECK(cr_dec_forward(&d, &ws, NULL, emb, tgt, B, T, 0, &e));
            CHECK(cr_dec_backward(&d, &ws, demb, &e));
            if (!warm) timer_add(&tz, cr_now() - t0);
        }
        cr_dec_ws_free(&ws);
        full_s = timer_median(&tf), frozen_s = timer_median(&tz);
    }

    /* 3. one forward over a prompt of T tokens (prefill), inference buffers */
    timer tp = {0};
    CHECK(cr_dec_ws_create(&ws, &d, 1, T, 0, &e));
    for (int warm = 1; warm || timer_more(&tp, seconds / 2); warm = 0) {
        double t0 = cr_now();
        CHECK(cr_dec_forward(&d, &ws, ids, NULL, NULL, 1, T, 0, &e));
        if (!warm) timer_add(&tp, cr_now() - t0);
    }
    cr_dec_ws_free(&ws);
    double prefill_s = timer_median(&tp);

    /* 4. greedy generation after a one-token prompt, with the cache */
    timer tg = {0};
    int32_t *out = malloc((size_t)gen * 4);
    CHECK(cr_dec_ws_create(&ws, &d, 1, gen, CR_DEC_WS_KV_CACHE, &e));
    cr_dec_sampler smp = {0.0f, 0, 1.0f};
    for (int warm = 1; warm || timer_more(&tg, seconds / 2); warm = 0) {
        double t0 = cr_now();
        CHECK(cr_dec_generate(&d, &ws, ids, 1, gen, &smp, NULL, out, &e));
        if (!warm) timer_add(&tg, cr_now() - t0);
    }
    double gen_s = timer_median(&tg);

    /* 5. generation and prefill with bf16 copies of the matrices */
    timer tb = {0};
    CHECK(cr_dec_bf16_make(&d, &e));
    for (int warm = 1; warm || timer_more(&tb, seconds / 2); warm = 0) {
        double t0 = cr_now();
        CHECK(cr_dec_generate(&d, &ws, ids, 1, gen, &smp, NULL, out, &e));
        if (!warm) timer_add(&tb, cr_now() - t0);
    }
    cr_dec_ws_free(&ws);
    double gen_bf16_s = timer_median(&tb);
    timer tq = {0};
    CHECK(cr_dec_ws_create(&ws, &d, 1, T, 0, &e));
    for (int warm = 1; warm || timer_more(&tq, seconds / 2); warm = 0) {
        double t0 = cr_now();
        CHECK(cr_dec_forward(&d, &ws, ids, NULL, NULL, 1, T, 0, &e));
        if (!warm) timer_add(&tq, cr_now() - t0);
    }
    cr_dec_ws_free(&ws);
    cr_dec_bf16_drop(&d);
    double prefill_bf16_s = timer_median(&tq);

    double fpt = fwd_flops_per_token(c, T);
    double tps = (double)N / step_s;
    printf("model: %s\n", sh.name);
    printf("shape: %s C=%d L=%d NH=%d H=%d V=%d B=%d T=%d%s\n", cr_dec_arch_name(c->arch), C,
           c->n_layers, c->n_heads, c->hidden_dim, V, B, T, c->tied ? "" : " untied");
    printf("params: %zu\n", d.pt.total);
    printf("threads: %d\n", threads);
    printf("gemm_backend: %s\n", cr_sgemm_backend_name());
    cr_kernels_print(stdout);
    if (train) {
        printf("train_step_ms: %.2f\n", step_s * 1e3);
        printf("train_tokens_per_s: %.1f\n", tps);
        printf("train_gflops: %.2f\n", tps * 3 * fpt * 1e-9);
        printf("fwd_bwd_full_ms: %.2f\n", full_s * 1e3);
        printf("fwd_bwd_frozen_ms: %.2f\n", frozen_s * 1e3);
        printf("frozen_over_full: %.3f\n", frozen_s / full_s);
    } else {
        printf("train: skipped (generation shape; --train adds the training parts)\n");
    }
    printf("prefill_%d_ms: %.2f\n", T, prefill_s * 1e3);
    printf("gen_tokens_per_s: %.1f\n", gen / gen_s);
    printf("prefill_%d_bf16_ms: %.2f\n", T, prefill_bf16_s * 1e3);
    printf("gen_bf16_tokens_per_s: %.1f\n", gen / gen_bf16_s);
    printf("gen_bf16_over_f32: %.3f\n", gen_s / gen_bf16_s);
    double bpt32 = gen_bytes_per_token(c, gen, 4), bpt16 = gen_bytes_per_token(c, gen, 2);
    printf("gen_bytes_per_token_f32: %.0f\n", bpt32);
    printf("gen_bytes_per_token_bf16: %.0f\n", bpt16);
    if (bw) {
        double sink = 0, gbs = mem_read_gbs(1.0, &sink);
        printf("mem_read_gbs: %.2f\n", gbs);
        printf("gen_bandwidth_limit_f32_tokens_per_s: %.1f\n", gbs * 1e9 / bpt32);
        printf("gen_bandwidth_limit_bf16_tokens_per_s: %.1f\n", gbs * 1e9 / bpt16);
        printf("gen_f32_over_bandwidth_limit: %.3f\n", gen / gen_s / (gbs * 1e9 / bpt32));
        printf("gen_bf16_over_bandwidth_limit: %.3f\n", gen / gen_bf16_s / (gbs * 1e9 / bpt16));
        if (sink == 12345.0) printf("sink: %g\n", sink);
    }
    if (peak) printf("sgemm_peak_gflops: %.2f\n", sgemm_peak(0.3));
    free(ids), free(tgt), free(out);
    cr_free(emb), cr_free(demb);
    cr_dec_free(&d);
    return 0;
}
