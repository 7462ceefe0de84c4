/*
 * cmd_ilm.c - `crossrec ilm ...`: the Item-Language Model's commands:
 * `ilm mf`, the collaborative-filtering embeddings the item encoder reads,
 * with their own next-item quality next to a popularity baseline, and
 * `ilm phase1`, the item encoder's training without a language model.
 */
#include "cli.h"

#include "../src/ilm/mf.h"
#include "../src/ilm/phase1.h"

#include <math.h>

#include <getopt.h>
#include <string.h>

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
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
    cr_interactions x;
    cr_loo_split s = {0};
    cr_mf m = {0};
    int rc = 1;
    if (cr_interactions_load(&x, ratings, &e)) return cr_cli_fail("ilm mf", &e);
    if (cr_loo_split_make(&s, &x, &e)) goto done;
    fprintf(stderr, "%lld interactions, %d users, %d items; training dim %d for %d epochs\n",
            (long long)x.n, x.n_users, x.n_items, c.dim, c.epochs);
    double loss;
    if (cr_mf_train(&m, &x, &s, &c, &loss, &e)) goto done;
    if (cr_mf_save(&m, &x, out, &e)) goto done;
    printf("BPR loss (last epoch) %.4f; wrote %s\n", loss, out);
    printf("next item among the held-out one and %lld never-rated items\n", negs);
    printf("  %-12s %6s %6s %7s %7s\n", "", "HR@5", "HR@10", "NDCG@5", "NDCG@10");
    for (int t = 0; t < 2; t++) {
        cr_next_item_metrics mm, pm;
        if (cr_mf_evaluate(&m, &x, &s, t, (int)negs, 7, &mm, &e)) goto done;
        if (cr_mf_evaluate(NULL, &x, &s, t, (int)negs, 7, &pm, &e)) goto done;
        printf("%s\n", t ? "test" : "valid");
        print_row("bpr", &mm);
        print_row("popularity", &pm);
    }
    rc = 0;
done:
    cr_mf_free(&m);
    cr_loo_split_free(&s);
    cr_interactions_free(&x);
    return rc ? cr_cli_fail("ilm mf", &e) : 0;
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
            "  --warmup N       [%d]\n"
            "  --held F         share of items whose texts are held out [%g]\n"
            "  --log-every N    [%d]\n"
            "  --ckpt-every N   checkpoint every N steps (0 = at the end) [0]\n"
            "  --seed S         [%llu]\n"
            "  --help           this text\n",
            o.steps, o.model.nq, o.model.layers, o.model.width, o.model.heads, o.model.ffn,
            o.model.n_kv, o.model.max_text, o.bpe_vocab, o.batch, (double)o.lr, o.warmup,
            o.held_frac, o.log_every, (unsigned long long)o.seed);
}

static void phase1_progress(void *ctx, const cr_phase1_report *r) {
    (void)ctx;
    printf("step %5lld/%lld", (long long)r->step, (long long)r->steps);
    for (int k = 0; k < CR_P1_NLOSS; k++)
        if (!isnan(r->loss[k])) printf("  %s %.4f", cr_p1_loss_name(k), r->loss[k]);
    printf("  lr %.2e  %.0fs\n", (double)r->lr, r->seconds);
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
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
        case 'r': if (cr_cli_num(C, "--lr", optarg, 1e-9, 10, &x)) return 2; o.lr = (float)x; break;
        case 'u': if (cr_cli_int(C, "--warmup", optarg, 0, 10000000, &v)) return 2; o.warmup = (int)v; break;
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
    if (cr_phase1_run(&o, &r, &e)) return cr_cli_fail(C, &e);
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

int cr_cli_ilm(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: crossrec ilm <command> [options]\n\ncommands:\n"
                   "  mf      collaborative-filtering embeddings (BPR) and their next-item quality\n"
                   "  phase1  train the item encoder (Q-Former) on item texts and interactions\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "mf")) return cmd_mf(argc - 1, argv + 1);
    if (!strcmp(argv[1], "phase1")) return cmd_phase1(argc - 1, argv + 1);
    fprintf(stderr, "crossrec ilm: unknown command '%s'\n", argv[1]);
    return 2;
}
