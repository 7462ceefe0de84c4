/*
 * cmd_movielens.c - `crossrec movielens`: builds the impressions CSV from a
 * MovieLens directory and prints what it wrote. Parsing and printing only;
 * the work is cr_movielens_prepare. Bad values are rejected, never clamped.
 */
#include "cli.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>

static void cr_ml_usage(FILE *f) {
    cr_ml_opts d;
    cr_ml_opts_default(&d);
    fprintf(f,
            "usage: crossrec movielens --in DIR --out FILE [options]\n"
            "\n"
            "Turns MovieLens ratings into a ranking impression log: every rating in the\n"
            "domain is a request with the rated movie (click=1) and K movies the user never\n"
            "rated (click=0); every feature uses only what happened before the rating.\n"
            "See docs/movielens.md.\n"
            "\n"
            "  --in DIR              ratings.csv, movies.csv and optional movies-extra.tsv\n"
            "  --out FILE            the impressions CSV (directories are created)\n"
            "  --negatives K         negatives per request, 0 to 1000 (default %d)\n"
            "  --protocol P          popularity: negatives in proportion to their training-\n"
            "                        period rating count; uniform: over movies rated in the\n"
            "                        training period; period: in proportion to their count\n"
            "                        in the request's calendar year, so new movies are\n"
            "                        negatives as often as they are rated (default %s)\n"
            "  --seed S              seed for negatives and --keep-fraction (default %llu)\n"
            "  --valid F             validation share, by timestamp quantile (default %g)\n"
            "  --test F              test share, the latest ratings (default %g)\n"
            "  --include-genre G     domain: only movies with genre G (default: all)\n"
            "  --exclude-genre G     domain: only movies without genre G (default: none)\n"
            "  --history H           user history from all past ratings or only the\n"
            "                        domain's: all|domain (default %s)\n"
            "  --strict              the --exclude-genre movies vanish from the input: no\n"
            "                        row, history (--history all too), feature or candidate\n"
            "                        reads them; the source of a zero-shot study, whose\n"
            "                        teacher must never see a target item (default off)\n"
            "  --return-days N       genre_return's horizon: the user rates another movie\n"
            "                        of the domain sharing a genre within N days, 1 to 3650\n"
            "                        (default %d)\n"
            "  --keep-fraction F     share of training requests kept, 0 to 1 (default %g)\n"
            "  -h, --help            this help\n",
            d.negatives, cr_ml_protocol_name(d.protocol), (unsigned long long)d.seed,
            d.valid_frac, d.test_frac, cr_ml_history_name(d.history), d.return_days,
            d.keep_fraction);
}

static int cr_ml_bad(const char *opt, const char *want, const char *got) {
    fprintf(stderr, "crossrec movielens: %s: expected %s, got '%s'\n", opt, want, got);
    return 1;
}

static void cr_ml_print_stats(const cr_ml_opts *o, const cr_ml_stats *st) {
    static const char *const split[3] = {"train", "valid", "test"};
    printf("read %lld ratings of %lld movies (%lld with extra metadata)\n",
           (long long)st->ratings, (long long)st->movies, (long long)st->extra_movies);
    printf("domain: %lld ratings (include_genre %s, exclude_genre %s, history %s)\n",
           (long long)st->domain_ratings, o->include_genre ? o->include_genre : "-",
           o->exclude_genre ? o->exclude_genre : "-", cr_ml_history_name(o->history));
    if (o->strict)
        printf("strict: %lld ratings of %s movies never read (no row, history or feature)\n",
               (long long)st->hidden_ratings, o->exclude_genre);
    printf("wrote %s: %lld requests, %lld rows, %lld users, %lld items, %d negatives "
           "(%s, %lld candidates)\n",
           o->out_path, (long long)st->requests, (long long)st->rows, (long long)st->users,
           (long long)st->items, o->negatives, cr_ml_protocol_name(o->protocol),
           (long long)st->pool);
    for (int i = 0; i < 3; i++)
        printf("  %-5s %lld requests, %lld rows\n", split[i], (long long)st->requests_split[i],
               (long long)st->rows_split[i]);
    printf("cut-offs: valid from timestamp %lld, test from %lld\n", (long long)st->t_valid,
           (long long)st->t_test);
    if (st->dropped)
        printf("dropped %lld training requests (keep_fraction %g)\n", (long long)st->dropped,
               o->keep_fraction);
    printf("positives: like %.4f, mean engagement %.4f, discovery %.4f, new_release %.4f\n",
           st->like_rate, st->mean_engagement, st->discovery_rate, st->new_release_rate);
    printf("genre_return (%d days): %.4f where defined, %lld positives undefined "
           "(horizon past the log's end, or no genre)\n",
           o->return_days, st->return_rate, (long long)st->return_undefined);
}

int cr_cli_movielens(int argc, char **argv) {
    enum { O_IN = 1, O_OUT, O_NEG, O_PROTO, O_SEED, O_VALID, O_TEST, O_INC, O_EXC, O_HIST, O_KEEP,
           O_STRICT, O_RETURN };
    static const struct option longopts[] = {
        {"in", required_argument, NULL, O_IN},
        {"out", required_argument, NULL, O_OUT},
        {"negatives", required_argument, NULL, O_NEG},
        {"protocol", required_argument, NULL, O_PROTO},
        {"seed", required_argument, NULL, O_SEED},
        {"valid", required_argument, NULL, O_VALID},
        {"test", required_argument, NULL, O_TEST},
        {"include-genre", required_argument, NULL, O_INC},
        {"exclude-genre", required_argument, NULL, O_EXC},
        {"history", required_argument, NULL, O_HIST},
        {"keep-fraction", required_argument, NULL, O_KEEP},
        {"strict", no_argument, NULL, O_STRICT},
        {"return-days", required_argument, NULL, O_RETURN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    cr_ml_opts o;
    cr_ml_opts_default(&o);
    cr_error e = {0};
    optind = 1;
    opterr = 0; /* our own messages, with the command's name */
    const char *cmd = "movielens";
    long long v;
    int c;
    while ((c = cr_cli_getopt(argc, argv, ":h", longopts)) != -1) {
        switch (c) {
        case O_IN: o.in_dir = optarg; break;
        case O_OUT: o.out_path = optarg; break;
        case O_NEG:
            if (cr_cli_int(cmd, "--negatives", optarg, 0, 1000, &v)) return 1;
            o.negatives = (int)v;
            break;
        case O_PROTO:
            if (cr_ml_protocol_parse(optarg, &o.protocol, &e) != CR_OK)
                return cr_ml_bad("--protocol", "popularity, uniform or period", optarg);
            break;
        case O_SEED:
            if (cr_cli_int(cmd, "--seed", optarg, 0, LLONG_MAX, &v)) return 1;
            o.seed = (uint64_t)v;
            break;
        case O_VALID:
            if (cr_cli_num(cmd, "--valid", optarg, 0, 1, &o.valid_frac)) return 1;
            break;
        case O_TEST:
            if (cr_cli_num(cmd, "--test", optarg, 0, 1, &o.test_frac)) return 1;
            break;
        case O_INC:
            if (!*optarg) return cr_ml_bad("--include-genre", "a genre name", optarg);
            o.include_genre = optarg;
            break;
        case O_EXC:
            if (!*optarg) return cr_ml_bad("--exclude-genre", "a genre name", optarg);
            o.exclude_genre = optarg;
            break;
        case O_HIST:
            if (cr_ml_history_parse(optarg, &o.history, &e) != CR_OK)
                return cr_ml_bad("--history", "all or domain", optarg);
            break;
        case O_KEEP:
            if (cr_cli_num(cmd, "--keep-fraction", optarg, 0, 1, &o.keep_fraction)) return 1;
            break;
        case O_STRICT: o.strict = 1; break;
        case O_RETURN:
            if (cr_cli_int(cmd, "--return-days", optarg, 1, 3650, &v)) return 1;
            o.return_days = (int)v;
            break;
        case 'h': cr_ml_usage(stdout); return 0;
        case ':':
            fprintf(stderr, "crossrec movielens: %s needs a value\n", argv[optind - 1]);
            return 1;
        default:
            fprintf(stderr, "crossrec movielens: unknown option '%s' (see --help)\n",
                    argv[optind - 1]);
            return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec movielens: unexpected argument '%s' (see --help)\n",
                argv[optind]);
        return 1;
    }
    if (!o.in_dir || !o.out_path) {
        fprintf(stderr, "crossrec movielens: --in and --out are required (see --help)\n");
        return 1;
    }
    cr_ml_stats st;
    if (cr_movielens_prepare(NULL, &o, &st, &e) != CR_OK) return cr_cli_fail(cmd, &e);
    cr_ml_print_stats(&o, &st);
    return 0;
}
