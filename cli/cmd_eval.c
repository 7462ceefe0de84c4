/*
 * cmd_eval.c - `crossrec eval`: metrics of a saved ranker on a split of
 * the data its config names (or another file with the same columns).
 */
#include "cli.h"

#include "../src/rank/checkpoint.h"
#include "../src/rank/evaluate.h"

#include <cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec eval --model FILE.safetensors --config FILE.yaml [options]\n"
            "\n"
            "Scores a split with a saved model and prints per-task metrics.\n"
            "  --model FILE    the checkpoint (required)\n"
            "  --config FILE   the config naming the data, split and eval settings (required)\n"
            "  --data FILE     evaluate this CSV/TSV instead of the config's data.path\n"
            "  --split NAME    test | valid | train [test]\n"
            "  --out FILE      also write the metrics as JSON\n"
            "  --threads N     threads, 0 = all cores [0]\n"
            "  --help          this text\n");
}

int cr_cli_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"config", required_argument, 0, 'c'},
        {"data", required_argument, 0, 'd'},  {"split", required_argument, 0, 's'},
        {"out", required_argument, 0, 'o'},   {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    const char *model = NULL, *config = NULL, *data = NULL, *out = NULL, *split = "test";
    long long threads = 0;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'c': config = optarg; break;
        case 'd': data = optarg; break;
        case 's': split = optarg; break;
        case 'o': out = optarg; break;
        case 't': if (cr_cli_int("eval", "--threads", optarg, 0, 1024, &threads)) return 2; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec eval: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!model || !config) {
        fprintf(stderr, "crossrec eval: --model and --config are required (see --help)\n");
        return 2;
    }
    int sp = !strcmp(split, "test") ? CR_SPLIT_TEST : !strcmp(split, "valid") ? CR_SPLIT_VALID
             : !strcmp(split, "train") ? CR_SPLIT_TRAIN : -1;
    if (sp < 0) {
        fprintf(stderr, "crossrec eval: --split expects test, valid or train, got '%s'\n", split);
        return 2;
    }
    cr_set_threads((int)threads);
    cr_error e = {0};
    cr_rank_config cfg;
    cr_schema ms;
    cr_ranker *m = NULL;
    cr_dataset ds;
    memset(&ds, 0, sizeof ds);
    int rc = 1;
    if (cr_rank_config_load(&cfg, config, &e)) return cr_cli_fail("eval", &e);
    if (data) snprintf(cfg.data.path, sizeof cfg.data.path, "%s", data);
    if (cr_ranker_load(&m, &ms, model, &e)) goto done_cfg;
    if (cr_ranker_pack(m, &e)) goto done;
    if (cr_schema_check_same(&ms, &cfg.schema, model, &e)) goto done;
    if (cr_dataset_load(&ds, &ms, &cfg.data, 0, &e)) goto done;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "model", model);
    cJSON_AddStringToObject(root, "data", cfg.data.path);
    cJSON_AddStringToObject(root, "split", split);
    cJSON *ev = cJSON_AddObjectToObject(root, "eval");
    if (cr_rank_evaluate(m, &ms, &ds, sp, &cfg.eval, ev, NULL, &e)) {
        cJSON_Delete(root);
        goto done;
    }
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    cr_cli_print_metrics(stdout, txt);
    if (out && cr_write_file_atomic(out, txt, strlen(txt), &e)) {
        free(txt);
        goto done;
    }
    free(txt);
    rc = 0;
done:
    cr_dataset_free(&ds);
    cr_ranker_free(m);
    cr_schema_free(&ms);
done_cfg:
    cr_rank_config_free(&cfg);
    return rc ? cr_cli_fail("eval", &e) : 0;
}
