/*
 * cmd_ilm.c - `crossrec ilm ...`: the Item-Language Model's commands. So
 * far `ilm mf`, the collaborative-filtering embeddings the item encoder
 * reads, with their own next-item quality next to a popularity baseline.
 */
#include "cli.h"

#include "../src/ilm/mf.h"

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

int cr_cli_ilm(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: crossrec ilm <command> [options]\n\ncommands:\n"
                   "  mf     collaborative-filtering embeddings (BPR) and their next-item quality\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "mf")) return cmd_mf(argc - 1, argv + 1);
    fprintf(stderr, "crossrec ilm: unknown command '%s'\n", argv[1]);
    return 2;
}
