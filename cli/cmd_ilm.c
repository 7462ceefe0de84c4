/*
 * cmd_ilm.c - `crossrec ilm ...`: the Item-Language Model's commands:
 * `ilm mf`, the collaborative-filtering embeddings the item encoder reads,
 * with their own next-item quality next to a popularity baseline,
 * `ilm phase1`, the item encoder's training without a language model,
 * `ilm phase2` (encoder + adapter in front of a frozen LM), `ilm eval`,
 * `ilm study` (every variant over seeds) and `ilm chat`.
 */
#include "cli.h"

#include <math.h>

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_mf(FILE *f) {
    fprintf(f,
            "usage: crossrec ilm mf --ratings FILE --out FILE.safetensors [options]\n"
            "\n"
            "Trains BPR matrix factorisation on a time-ordered leave-one-out split (each\n"
            "user's last rating is test, the one before valid) and prints next-item\n"
            "HR@5/10 and NDCG@5/10 among the held-out item and --negatives items the\n"
            "user never rated, next to a popularity baseline on the same candidates.\n"
            "  --ratings FILE   userId,movieId,rating,timestamp (required)\n"
            "  --out FILE       user and item vectors as safetensors (required)\n"
            "  --dim N          factors [32]\n"
            "  --epochs N       passes over the training ratings [20]\n"
            "  --lr X           SGD step [0.05]\n"
            "  --reg X          L2 on touched factors [0.001]\n"
            "  --min-rating X   ratings below X are not positives [0]\n"
            "  --negatives N    sampled candidates per evaluated user [100]\n"
            "  --seed S         [1]\n"
            "  --help           this text\n");
}

static void print_row(const char *name, const cr_next_item_metrics *m) {
    printf("  %-12s %6.4f %6.4f %7.4f %7.4f  (%lld users)\n", name, m->hr5, m->hr10, m->ndcg5,
           m->ndcg10, (long long)m->users);
}

static int cmd_mf(int argc, char **argv) {
    static const struct option opts[] = {
        {"ratings", required_argument, 0, 'r'}, {"out", required_argument, 0, 'o'},
        {"dim", required_argument, 0, 'd'},     {"epochs", required_argument, 0, 'e'},
        {"lr", required_argument, 0, 'l'},      {"reg", required_argument, 0, 'g'},
        {"min-rating", required_argument, 0, 'm'}, {"negatives", required_argument, 0, 'n'},
        {"seed", required_argument, 0, 's'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *ratings = NULL, *out = NULL;
    cr_mf_cfg c;
    cr_mf_cfg_default(&c);
    long long v, negs = 100;
    double d;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'r': ratings = optarg; break;
        case 'o': out = optarg; break;
        case 'd': if (cr_cli_int("ilm mf", "--dim", optarg, 1, 4096, &v)) return 2; c.dim = (int)v; break;
        case 'e': if (cr_cli_int("ilm mf", "--epochs", optarg, 0, 100000, &v)) return 2; c.epochs = (int)v; break;
        case 'l': if (cr_cli_num("ilm mf", "--lr", optarg, 1e-9, 10, &d)) return 2; c.lr = (float)d; break;
        case 'g': if (cr_cli_num("ilm mf", "--reg", optarg, 0, 10, &d)) return 2; c.reg = (float)d; break;
        case 'm': if (cr_cli_num("ilm mf", "--min-rating", optarg, -1e9, 1e9, &d)) return 2; c.min_rating = (float)d; break;
        case 'n': if (cr_cli_int("ilm mf", "--negatives", optarg, 1, 100000, &negs)) return 2; break;
        case 's': if (cr_cli_int("ilm mf", "--seed", optarg, 0, INT64_MAX, &v)) return 2; c.seed = (uint64_t)v; break;
        case 'h': usage_mf(stdout); return 0;
        default: usage_mf(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec ilm mf: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!ratings || !out) {
        fprintf(stderr, "crossrec ilm mf: --ratings and --out are required (see --help)\n");
        return 2;
    }
    cr_error e = {0};
    cr_ilm_mf_result r;
    if (cr_ilm_mf(NULL, ratings, out, &c, (int)negs, &r, &e)) return cr_cli_fail("ilm mf", &e);
    printf("BPR loss (last epoch) %.4f; wrote %s\n", r.loss, out);
    printf("next item among the held-out one and %lld never-rated items\n", negs);
    printf("  %-12s %6s %6s %7s %7s\n", "", "HR@5", "HR@10", "NDCG@5", "NDCG@10");
    for (int t = 0; t < 2; t++) {
        printf("%s\n", t ? "test" : "valid");
        print_row("bpr", &r.bpr[t]);
        print_row("popularity", &r.pop[t]);
    }
    return 0;
}


static void usage_phase1(FILE *f) {
    cr_phase1_opts o;
    cr_phase1_opts_default(&o);
    fprintf(f,
            "usage: crossrec ilm phase1 --mf FILE --data DIR --out DIR [options]\n"
            "\n"
            "Trains the item encoder (a Q-Former over the CF vectors) without a language\n"
            "model: item-text contrastive (itc), matching (itm) and generation (itg) on\n"
            "item descriptions, item-item (ii) and user-item (ui) contrastive on ratings.\n"
            "Prints the losses as they fall, then item->text recall@1/10 on held-out items\n"
            "whose texts were never trained on. Writes DIR/qformer.safetensors,\n"
            "DIR/tokenizer/ (a BPE trained on the training items' texts) and DIR/phase1.json.\n"
            "  --mf FILE        CF vectors from `crossrec ilm mf` (required)\n"
            "  --data DIR       ratings.csv, movies.csv, movies-extra.tsv (required)\n"
            "  --out DIR        output directory (required)\n"
            "  --steps N        optimizer steps, half item-text, half interactions [%d]\n"
            "  --rand           ILM-rand: no training, save the initialised encoder\n"
            "  --losses LIST    any of itc,itm,itg,ii,ui [itc,itm,itg,ii,ui]\n"
            "  --queries NQ     learned queries [%d]\n"
            "  --layers L       [%d]\n"
            "  --width W        [%d]\n"
            "  --heads H        [%d]\n"
            "  --ffn F          feed-forward width [%d]\n"
            "  --kv N           CF key/value tokens [%d]\n"
            "  --max-text T     tokens per text incl. [CLS] and [EOS]; longer texts keep\n"
            "                   their first T-2 tokens [%d]\n"
            "  --cf-dim D       expected CF dimension (0 = take the file's) [0]\n"
            "  --bpe-vocab N    tokenizer size [%d]\n"
            "  --batch B        pairs per batch [%d]\n"
            "  --lr X           AdamW peak rate, warmup then cosine [%g]\n"
            "  --warmup N       [%lld]\n"
            "  --held F         share of items whose texts are held out [%g]\n"
            "  --log-every N    [%d]\n"
            "  --ckpt-every N   checkpoint every N steps (0 = at the end) [0]\n"
            "  --seed S         [%llu]\n"
            "  --help           this text\n",
            o.steps, o.model.nq, o.model.layers, o.model.width, o.model.heads, o.model.ffn,
            o.model.n_kv, o.model.max_text, o.bpe_vocab, o.batch, (double)o.optim.lr,
            (long long)o.optim.warmup,
            o.held_frac, o.log_every, (unsigned long long)o.seed);
}

static void phase1_progress(void *ctx, const cr_phase1_report *r) {
    (void)ctx;
    printf("step %5lld/%lld", (long long)r->step, (long long)r->steps);
    for (int k = 0; k < CR_P1_NLOSS; k++)
        if (!isnan(r->loss[k])) printf("  %s %.4f", cr_p1_loss_name(k), r->loss[k]);
    char el[32], eta[32];
    cr_meter_clock(el, sizeof el, r->seconds);
    cr_meter_clock(eta, sizeof eta, r->step ? r->seconds / (double)r->step * (double)(r->steps - r->step) : 0);
    printf("  lr %.2e  %s elapsed, eta %s\n", (double)r->lr, el, eta);
    fflush(stdout);
}

static int cmd_phase1(int argc, char **argv) {
    static const struct option opts[] = {
        {"mf", required_argument, 0, 'm'},       {"data", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},      {"steps", required_argument, 0, 'n'},
        {"rand", no_argument, 0, 'R'},           {"losses", required_argument, 0, 'L'},
        {"queries", required_argument, 0, 'q'},  {"layers", required_argument, 0, 'l'},
        {"width", required_argument, 0, 'w'},    {"heads", required_argument, 0, 'H'},
        {"ffn", required_argument, 0, 'f'},      {"kv", required_argument, 0, 'k'},
        {"max-text", required_argument, 0, 't'}, {"cf-dim", required_argument, 0, 'c'},
        {"bpe-vocab", required_argument, 0, 'v'}, {"batch", required_argument, 0, 'b'},
        {"lr", required_argument, 0, 'r'},       {"warmup", required_argument, 0, 'u'},
        {"held", required_argument, 0, 'x'},     {"log-every", required_argument, 0, 'g'},
        {"ckpt-every", required_argument, 0, 'C'}, {"seed", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    cr_phase1_opts o;
    cr_phase1_opts_default(&o);
    o.progress = phase1_progress;
    long long v;
    double x;
    int ch, rnd = 0;
    cr_error e = {0};
    const char *C = "ilm phase1";
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': o.mf_path = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 'n': if (cr_cli_int(C, "--steps", optarg, 0, 10000000, &v)) return 2; o.steps = (int)v; break;
        case 'R': rnd = 1; break;
        case 'L': if (cr_p1_parse_losses(optarg, o.weight, &e)) { cr_cli_fail(C, &e); return 2; } break;
        case 'q': if (cr_cli_int(C, "--queries", optarg, 1, 256, &v)) return 2; o.model.nq = (int)v; break;
        case 'l': if (cr_cli_int(C, "--layers", optarg, 1, 64, &v)) return 2; o.model.layers = (int)v; break;
        case 'w': if (cr_cli_int(C, "--width", optarg, 2, 8192, &v)) return 2; o.model.width = (int)v; break;
        case 'H': if (cr_cli_int(C, "--heads", optarg, 1, 256, &v)) return 2; o.model.heads = (int)v; break;
        case 'f': if (cr_cli_int(C, "--ffn", optarg, 1, 65536, &v)) return 2; o.model.ffn = (int)v; break;
        case 'k': if (cr_cli_int(C, "--kv", optarg, 1, 256, &v)) return 2; o.model.n_kv = (int)v; break;
        case 't': if (cr_cli_int(C, "--max-text", optarg, 3, 4096, &v)) return 2; o.model.max_text = (int)v; break;
        case 'c': if (cr_cli_int(C, "--cf-dim", optarg, 0, 65536, &v)) return 2; o.model.d_cf = (int)v; break;
        case 'v': if (cr_cli_int(C, "--bpe-vocab", optarg, 260, 1 << 20, &v)) return 2; o.bpe_vocab = (int)v; break;
        case 'b': if (cr_cli_int(C, "--batch", optarg, 2, 4096, &v)) return 2; o.batch = (int)v; break;
        case 'r': if (cr_cli_num(C, "--lr", optarg, 1e-9, 10, &x)) return 2; o.optim.lr = (float)x; break;
        case 'u': if (cr_cli_int(C, "--warmup", optarg, 0, 10000000, &v)) return 2; o.optim.warmup = v; break;
        case 'x': if (cr_cli_num(C, "--held", optarg, 1e-6, 0.89, &x)) return 2; o.held_frac = x; break;
        case 'g': if (cr_cli_int(C, "--log-every", optarg, 1, 10000000, &v)) return 2; o.log_every = (int)v; break;
        case 'C': if (cr_cli_int(C, "--ckpt-every", optarg, 0, 10000000, &v)) return 2; o.ckpt_every = (int)v; break;
        case 's': if (cr_cli_int(C, "--seed", optarg, 0, INT64_MAX, &v)) return 2; o.seed = (uint64_t)v; break;
        case 'h': usage_phase1(stdout); return 0;
        default: usage_phase1(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec ilm phase1: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o.mf_path || !o.data_dir || !o.out_dir) {
        fprintf(stderr, "crossrec ilm phase1: --mf, --data and --out are required (see --help)\n");
        return 2;
    }
    if (rnd) o.steps = 0;
    fprintf(stderr, "item encoder: %d queries, %d layers, width %d, %d heads; %s\n", o.model.nq,
            o.model.layers, o.model.width, o.model.heads,
            o.steps ? "phase 1" : "ILM-rand (no training)");
    cr_phase1_result r;
    if (cr_ilm_phase1(NULL, &o, &r, &e)) return cr_cli_fail(C, &e);
    printf("%d items (%d train texts, %d held out, %d truncated to %d tokens), vocabulary %d, "
           "%d item-item and %d user-item pairs\n", r.items, r.train_items, r.held_items,
           r.truncated, o.model.max_text, r.vocab, r.ii_pairs, r.ui_pairs);
    if (o.steps)
        for (int k = 0; k < CR_P1_NLOSS; k++)
            if (!isnan(r.first[k]))
                printf("  %-4s first %.4f  last %.4f\n", cr_p1_loss_name(k), r.first[k], r.last[k]);
    printf("held-out item -> text retrieval among %d texts (chance %.4f / %.4f):\n", r.eval_n,
           1.0 / r.eval_n, 10.0 / r.eval_n);
    printf("  at init      recall@1 %.4f  recall@10 %.4f\n", r.recall1_init, r.recall10_init);
    if (o.steps) printf("  after phase1 recall@1 %.4f  recall@10 %.4f\n", r.recall1, r.recall10);
    printf("wrote %s/qformer.safetensors (%.0fs of training)\n", o.out_dir, r.seconds);
    return 0;
}

/* ---- phase 2 ------------------------------------------------------------------------------ */
static void usage_phase2(FILE *f) {
    cr_phase2_opts o;
    cr_phase2_opts_default(&o);
    fprintf(f,
            "usage: crossrec ilm phase2 --lm FILE --tokenizer DIR --mf FILE --data DIR --out DIR\n"
            "                           (--encoder Q.safetensors | --mlp) [options]\n"
            "\n"
            "Trains the item encoder (from phase 1) and a linear adapter into a FROZEN decoder\n"
            "LM: each item or user becomes NQ soft tokens in prompts with {item}, {user} and\n"
            "{history} slots; tasks: describe, genre, year, director, next item, similar item.\n"
            "Loss: the LM's cross-entropy on target tokens. --mlp trains the baseline instead:\n"
            "a 2-layer MLP from the CF vector straight to NQ soft tokens. The LM's weights are\n"
            "hashed (and its perplexity measured on --lm-text) before and after: they must not\n"
            "change. Writes DIR/adapter.safetensors, DIR/qformer.safetensors, DIR/phase2.json.\n"
            "  --encoder FILE   phase-1 qformer.safetensors (ILM, or ILM-rand with --rand's)\n"
            "  --mlp            the MLP-adapter baseline (no Q-Former)\n"
            "  --lm FILE        decoder: crossrec safetensors, GPT-2 safetensors or llama2.c\n"
            "  --tokenizer DIR  the LM's tokenizer (GPT-2 BPE dir or tokenizer.bin)\n"
            "  --mf FILE        CF vectors from `crossrec ilm mf` (required)\n"
            "  --data DIR       ratings.csv, movies.csv, movies-extra.tsv (required)\n"
            "  --out DIR        output directory (required)\n"
            "  --lm-text FILE   held-out text for the LM perplexity check [none]\n"
            "  --steps N        [%d]\n"
            "  --batch B        sequences per step [%d]\n"
            "  --hist N         items in {history} [%d]\n"
            "  --max-seq T      tokens per sequence [%d]\n"
            "  --lr X           AdamW peak, warmup then cosine [%g]\n"
            "  --warmup N       [%lld]\n"
            "  --mlp-nq N       soft tokens per entity for --mlp [%d]\n"
            "  --mlp-hidden H   [%d]\n"
            "  --tasks LIST     weights, e.g. describe=1,genre=1,year=1,director=1,next=2,similar=1\n"
            "  --held F         phase 1's held-out share (same items stay out) [%g]\n"
            "  --seed S         phase 1's seed [%llu]\n"
            "  --log-every N    [%d]\n"
            "  --help           this text\n",
            o.steps, o.batch, o.hist, o.max_seq, (double)o.optim.lr, (long long)o.optim.warmup,
            o.mlp_nq, o.mlp_hidden,
            o.held_frac, (unsigned long long)o.seed, o.log_every);
}

static void phase2_progress(void *ctx, const cr_phase2_report *r) {
    (void)ctx;
    char el[32], eta[32];
    cr_meter_clock(el, sizeof el, r->seconds);
    cr_meter_clock(eta, sizeof eta, r->step ? r->seconds / (double)r->step * (double)(r->steps - r->step) : 0);
    printf("step %5lld/%lld  loss %.4f  lr %.2e  %s elapsed, eta %s\n", (long long)r->step,
           (long long)r->steps, r->loss, (double)r->lr, el, eta);
    fflush(stdout);
}

/* "describe=1,next=2": weights by task name. */
static int parse_tasks(const char *s, float *w) {
    for (int k = 0; k < CR_P2_NTASK; k++) w[k] = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        double v = 1;
        if (eq) *eq = '\0', v = strtod(eq + 1, NULL);
        int k = 0;
        while (k < CR_P2_NTASK && strcmp(cr_p2_task_name(k), t)) k++;
        if (k == CR_P2_NTASK || !(v >= 0)) {
            fprintf(stderr, "crossrec ilm phase2: --tasks: unknown task or bad weight '%s' "
                            "(tasks: describe, genre, year, director, next, similar)\n", t);
            return 1;
        }
        w[k] = (float)v;
    }
    return 0;
}

static int cmd_phase2(int argc, char **argv) {
    static const struct option opts[] = {
        {"encoder", required_argument, 0, 'E'}, {"mlp", no_argument, 0, 'M'},
        {"lm", required_argument, 0, 'L'},      {"tokenizer", required_argument, 0, 'T'},
        {"mf", required_argument, 0, 'm'},      {"data", required_argument, 0, 'd'},
        {"out", required_argument, 0, 'o'},     {"lm-text", required_argument, 0, 'x'},
        {"steps", required_argument, 0, 'n'},   {"batch", required_argument, 0, 'b'},
        {"hist", required_argument, 0, 'H'},    {"max-seq", required_argument, 0, 'S'},
        {"lr", required_argument, 0, 'r'},      {"warmup", required_argument, 0, 'u'},
        {"mlp-nq", required_argument, 0, 'q'},  {"mlp-hidden", required_argument, 0, 'h' + 256},
        {"tasks", required_argument, 0, 'k'},   {"held", required_argument, 0, 'y'},
        {"seed", required_argument, 0, 's'},    {"log-every", required_argument, 0, 'g'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    cr_phase2_opts o;
    cr_phase2_opts_default(&o);
    o.progress = phase2_progress;
    const char *C = "ilm phase2";
    long long v;
    double x;
    int ch, mlp = 0;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'E': o.encoder = optarg; break;
        case 'M': mlp = 1; break;
        case 'L': o.lm = optarg; break;
        case 'T': o.tokenizer = optarg; break;
        case 'm': o.mf_path = optarg; break;
        case 'd': o.data_dir = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 'x': o.lm_text = optarg; break;
        case 'n': if (cr_cli_int(C, "--steps", optarg, 0, 10000000, &v)) return 2; o.steps = (int)v; break;
        case 'b': if (cr_cli_int(C, "--batch", optarg, 1, 4096, &v)) return 2; o.batch = (int)v; break;
        case 'H': if (cr_cli_int(C, "--hist", optarg, 1, 64, &v)) return 2; o.hist = (int)v; break;
        case 'S': if (cr_cli_int(C, "--max-seq", optarg, 8, 65536, &v)) return 2; o.max_seq = (int)v; break;
        case 'r': if (cr_cli_num(C, "--lr", optarg, 1e-9, 10, &x)) return 2; o.optim.lr = (float)x; break;
        case 'u': if (cr_cli_int(C, "--warmup", optarg, 0, 10000000, &v)) return 2; o.optim.warmup = v; break;
        case 'q': if (cr_cli_int(C, "--mlp-nq", optarg, 1, 256, &v)) return 2; o.mlp_nq = (int)v; break;
        case 'h' + 256: if (cr_cli_int(C, "--mlp-hidden", optarg, 1, 65536, &v)) return 2; o.mlp_hidden = (int)v; break;
        case 'k': if (parse_tasks(optarg, o.task_w)) return 2; break;
        case 'y': if (cr_cli_num(C, "--held", optarg, 1e-6, 0.89, &x)) return 2; o.held_frac = x; break;
        case 's': if (cr_cli_int(C, "--seed", optarg, 0, INT64_MAX, &v)) return 2; o.seed = (uint64_t)v; break;
        case 'g': if (cr_cli_int(C, "--log-every", optarg, 1, 10000000, &v)) return 2; o.log_every = (int)v; break;
        case 'h': usage_phase2(stdout); return 0;
        default: usage_phase2(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec ilm phase2: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o.lm || !o.tokenizer || !o.mf_path || !o.data_dir || !o.out_dir || (!o.encoder == !mlp)) {
        fprintf(stderr, "crossrec ilm phase2: --lm, --tokenizer, --mf, --data, --out and one of "
                        "--encoder or --mlp are required (see --help)\n");
        return 2;
    }
    cr_phase2_result r;
    cr_error e = {0};
    if (cr_ilm_phase2(NULL, &o, &r, &e)) return cr_cli_fail(C, &e);
    printf("%s adapter: %lld trainable values; loss %.4f -> %.4f in %.0fs\n",
           mlp ? "MLP" : "Q-Former + linear", (long long)r.trainable, r.first_loss, r.last_loss,
           r.seconds);
    printf("frozen LM: weight hash %016llx before, %016llx after (unchanged)\n",
           (unsigned long long)r.lm_hash_before, (unsigned long long)r.lm_hash_after);
    if (o.lm_text)
        printf("frozen LM: perplexity on %s %.4f before, %.4f after\n", o.lm_text,
               r.lm_ppl_before, r.lm_ppl_after);
    printf("wrote %s/adapter.safetensors and phase2.json\n", o.out_dir);
    return 0;
}

/* ---- eval ------------------------------------------------------------------------------------ */
static void usage_eval(FILE *f) {
    cr_ilm_eval_opts o;
    cr_ilm_eval_opts_default(&o);
    fprintf(f,
            "usage: crossrec ilm eval --model DIR [options]\n"
            "\n"
            "Evaluates a phase-2 directory through its frozen LM: next-item HR@5/10 and\n"
            "NDCG@5/10 over a fixed candidate list per user (the held-out item and\n"
            "--negatives never-rated items, ranked by the LM's mean log-probability per token\n"
            "of each title after the {user}/{history} prompt; BPR and popularity on the same\n"
            "lists for reference), held-out items' description perplexity, and genre accuracy\n"
            "(the likeliest of all genre names after the genre prompt).\n"
            "  --model DIR      from `crossrec ilm phase2` (required)\n"
            "  --users N        evaluated users, a seeded sample (0 = all) [%d]\n"
            "  --negatives N    [%d]\n"
            "  --hist N         [%d]\n"
            "  --items N        held-out items for perplexity and genres (0 = all) [%d]\n"
            "  --batch B        rows per LM forward [%d]\n"
            "  --valid          use each user's second-to-last rating instead of the last\n"
            "  --seed S         users and candidates [%llu]\n"
            "  --help           this text\n",
            o.users, o.negatives, o.hist, o.items, o.batch, (unsigned long long)o.seed);
}

static void print_eval(const cr_ilm_eval_result *r) {
    printf("next item among the held-out one and %d never-rated items\n", r->per - 1);
    printf("  %-12s %6s %6s %7s %7s\n", "", "HR@5", "HR@10", "NDCG@5", "NDCG@10");
    print_row("ilm (LM)", &r->lm);
    print_row("bpr", &r->bpr);
    print_row("popularity", &r->pop);
    printf("held-out descriptions: perplexity %.2f over %lld tokens (%d items)\n", r->desc_ppl,
           (long long)r->desc_tokens, r->desc_items);
    printf("genre questions: accuracy %.4f (chance %.4f) over %d items, %d genres\n",
           r->genre_acc, r->genre_chance, r->genre_items, r->n_genres);
}

static int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"users", required_argument, 0, 'u'},
        {"negatives", required_argument, 0, 'n'}, {"hist", required_argument, 0, 'H'},
        {"items", required_argument, 0, 'i'},   {"batch", required_argument, 0, 'b'},
        {"valid", no_argument, 0, 'v'},         {"seed", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    cr_ilm_eval_opts o;
    cr_ilm_eval_opts_default(&o);
    const char *C = "ilm eval", *dir = NULL;
    long long v;
    int ch, hist = 0;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': dir = optarg; break;
        case 'u': if (cr_cli_int(C, "--users", optarg, 0, 100000000, &v)) return 2; o.users = (int)v; break;
        case 'n': if (cr_cli_int(C, "--negatives", optarg, 1, 100000, &v)) return 2; o.negatives = (int)v; break;
        case 'H': if (cr_cli_int(C, "--hist", optarg, 1, 64, &v)) return 2; hist = (int)v; break;
        case 'i': if (cr_cli_int(C, "--items", optarg, 0, 100000000, &v)) return 2; o.items = (int)v; break;
        case 'b': if (cr_cli_int(C, "--batch", optarg, 1, 4096, &v)) return 2; o.batch = (int)v; break;
        case 'v': o.use_test = 0; break;
        case 's': if (cr_cli_int(C, "--seed", optarg, 0, INT64_MAX, &v)) return 2; o.seed = (uint64_t)v; break;
        case 'h': usage_eval(stdout); return 0;
        default: usage_eval(stderr); return 2;
        }
    }
    if (optind < argc || !dir) {
        fprintf(stderr, "crossrec ilm eval: --model DIR is required (see --help)\n");
        return 2;
    }
    cr_error e = {0};
    o.hist = hist; /* 0 = the directory's */
    cr_ilm_eval_result r;
    if (cr_ilm_eval(NULL, dir, &o, &r, &e)) return cr_cli_fail(C, &e);
    print_eval(&r);
    printf("(%.0fs)\n", r.seconds);
    return 0;
}

/* ---- study ------------------------------------------------------------------------------- */
static void usage_study(FILE *f) {
    fprintf(f,
            "usage: crossrec ilm study --config FILE.yaml --out DIR\n"
            "\n"
            "The ILM study: CF embeddings, then per seed and variant phase 1, phase 2 with the\n"
            "frozen LM and the evaluation (`crossrec ilm eval`). Variants: mlp (MLP adapter,\n"
            "no Q-Former), ilm-rand (Q-Former without phase 1), ilm (all phase-1 losses), it\n"
            "(itc,itm,itg), it+ii, it+ui. Prints the table of means and 95%% intervals over\n"
            "seeds; writes DIR/results.json (docs/ilm.md has the schema), DIR/report.html and\n"
            "every run's files under DIR/seed<S>/<variant>/.\n"
            "  --config FILE    e.g. examples/movielens/ilm.yaml (required)\n"
            "  --out DIR        (required)\n"
            "  --help           this text\n");
}

/* The study's progress lines go to standard output, with the table. */
static void study_log(void *user, cr_log_level level, const char *line) {
    (void)user;
    (void)level;
    printf("%s\n", line);
    fflush(stdout);
}

static int cmd_study(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"out", required_argument, 0, 'o'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *cfg = NULL, *out = NULL, *C = "ilm study";
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'c': cfg = optarg; break;
        case 'o': out = optarg; break;
        case 'h': usage_study(stdout); return 0;
        default: usage_study(stderr); return 2;
        }
    }
    if (optind < argc || !cfg || !out) {
        fprintf(stderr, "crossrec ilm study: --config and --out are required (see --help)\n");
        return 2;
    }
    cr_error e = {0};
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.log = study_log;
    cr_ctx *ctx = NULL;
    char *table = NULL;
    double seconds = 0;
    cr_status s = cr_ctx_new(&ctx, &cp, &e);
    if (!s) s = cr_ilm_study(ctx, cfg, out, &table, &seconds, &e);
    cr_ctx_free(ctx);
    if (s) return cr_cli_fail(C, &e);
    printf("\n%s", table);
    printf("wrote %s/results.json and %s/report.html (%.0fs)\n", out, out, seconds);
    cr_free(table);
    return 0;
}

/* ---- chat --------------------------------------------------------------------------------- */
static void usage_chat(FILE *f) {
    cr_chat_opts o;
    cr_chat_opts_default(&o);
    fprintf(f,
            "usage: crossrec ilm chat --model DIR [options]\n"
            "\n"
            "Talk to a phase-2 model, one line per turn (stdin may be a pipe): name movies\n"
            "you liked (\"I liked Toy Story and Heat\") and ask \"what should I watch?\".\n"
            "Answers name catalogue items only: the nearest items to the liked ones in the\n"
            "encoder's soft-token space, re-ranked by the frozen LM's likelihood of their\n"
            "titles, phrased by a template; the LM then writes a line about the top pick from\n"
            "its soft tokens. \"reset\" forgets, \"quit\" ends.\n"
            "  --model DIR      from `crossrec ilm phase2` (required)\n"
            "  --k N            suggestions per answer [%d]\n"
            "  --shortlist N    nearest items re-ranked by the LM [%d]\n"
            "  --describe N     tokens the LM writes about the top pick (0 = none) [%d]\n"
            "  --help           this text\n",
            o.k, o.shortlist, o.describe);
}

static int cmd_chat(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"k", required_argument, 0, 'k'},
        {"shortlist", required_argument, 0, 's'}, {"describe", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    cr_chat_opts o;
    cr_chat_opts_default(&o);
    const char *dir = NULL, *C = "ilm chat";
    long long v;
    int ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        switch (ch) {
        case 'm': dir = optarg; break;
        case 'k': if (cr_cli_int(C, "--k", optarg, 1, 100, &v)) return 2; o.k = (int)v; break;
        case 's': if (cr_cli_int(C, "--shortlist", optarg, 1, 100000, &v)) return 2; o.shortlist = (int)v; break;
        case 'd': if (cr_cli_int(C, "--describe", optarg, 0, 1024, &v)) return 2; o.describe = (int)v; break;
        case 'h': usage_chat(stdout); return 0;
        default: usage_chat(stderr); return 2;
        }
    }
    if (optind < argc || !dir) {
        fprintf(stderr, "crossrec ilm chat: --model DIR is required (see --help)\n");
        return 2;
    }
    if (o.shortlist < o.k) o.shortlist = o.k;
    cr_error e = {0};
    cr_ilm *c;
    if (cr_ilm_open_chat(&c, dir, &o, &e)) return cr_cli_fail(C, &e);
    int tty = isatty(fileno(stdin));
    if (tty) printf("Which movies did you like? (\"quit\" to end)\n");
    cr_status s = cr_ilm_chat_loop(NULL, c, stdin, stdout, tty, &e);
    cr_ilm_close(c);
    return s ? cr_cli_fail(C, &e) : 0;
}

int cr_cli_ilm(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: crossrec ilm <command> [options]\n\ncommands:\n"
                   "  mf      collaborative-filtering embeddings (BPR) and their next-item quality\n"
                   "  phase1  train the item encoder (Q-Former) on item texts and interactions\n"
                   "  phase2  train encoder + adapter in front of a frozen decoder LM\n"
                   "  eval    next-item ranking by LM likelihood, description perplexity, genres\n"
                   "  study   every variant (MLP, ILM-rand, ILM, loss ablations) over seeds\n"
                   "  chat    name movies you liked, ask for suggestions\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "mf")) return cmd_mf(argc - 1, argv + 1);
    if (!strcmp(argv[1], "phase1")) return cmd_phase1(argc - 1, argv + 1);
    if (!strcmp(argv[1], "phase2")) return cmd_phase2(argc - 1, argv + 1);
    if (!strcmp(argv[1], "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(argv[1], "study")) return cmd_study(argc - 1, argv + 1);
    if (!strcmp(argv[1], "chat")) return cmd_chat(argc - 1, argv + 1);
    static const char *const subs[] = {"mf", "phase1", "phase2", "eval", "study", "chat"};
    const char *near = cr_cli_suggest(argv[1], subs, 6);
    fprintf(stderr, "crossrec ilm: unknown command '%s'", argv[1]);
    if (near) fprintf(stderr, "; did you mean '%s'?", near);
    fprintf(stderr, "\n");
    return 2;
}
