/*
 * cmd_inspect.c - `crossrec inspect FILE`: the tensors and metadata of a
 * safetensors checkpoint, readable by a person. Reads only.
 */
#include "cli.h"

#include <cJSON.h>
#include <getopt.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec inspect [--meta] FILE.safetensors\n"
            "\n"
            "Prints the metadata keys, the model config and schema summary (for a\n"
            "crossrec ranker), and every tensor with its dtype and shape.\n"
            "  --meta    print every metadata value in full [off: values are shortened]\n"
            "  --help    this text\n");
}

static void print_schema(const char *json) {
    cJSON *o = cJSON_Parse(json);
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(o, "features"), *f;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "tasks"), *t;
    if (fs) {
        printf("features (%d):\n", cJSON_GetArraySize(fs));
        cJSON_ArrayForEach(f, fs) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(f, "name");
            const cJSON *kd = cJSON_GetObjectItemCaseSensitive(f, "type");
            const cJSON *col = cJSON_GetObjectItemCaseSensitive(f, "column");
            const cJSON *rows = cJSON_GetObjectItemCaseSensitive(f, "rows");
            const cJSON *dim = cJSON_GetObjectItemCaseSensitive(f, "dim");
            printf("  %-20s %-12s column %-18s", cJSON_IsString(nm) ? nm->valuestring : "?",
                   cJSON_IsString(kd) ? kd->valuestring : "?",
                   cJSON_IsString(col) ? col->valuestring : "?");
            if (cJSON_IsNumber(rows) && rows->valuedouble > 0)
                printf(" rows %-8.0f dim %.0f", rows->valuedouble,
                       cJSON_IsNumber(dim) ? dim->valuedouble : 0.0);
            printf("\n");
        }
    }
    if (ts) {
        printf("tasks (%d):\n", cJSON_GetArraySize(ts));
        cJSON_ArrayForEach(t, ts) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(t, "name");
            const cJSON *kd = cJSON_GetObjectItemCaseSensitive(t, "type");
            printf("  %-20s %s\n", cJSON_IsString(nm) ? nm->valuestring : "?",
                   cJSON_IsString(kd) ? kd->valuestring : "?");
        }
    }
    cJSON_Delete(o);
}

int cr_cli_inspect(int argc, char **argv) {
    static const struct option opts[] = {{"meta", no_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int full = 0, ch;
    optind = 1;
    while ((ch = cr_cli_getopt(argc, argv, "", opts)) != -1) {
        if (ch == 'm') full = 1;
        else if (ch == 'h') { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    cr_error e = {0};
    char *json = NULL;
    if (cr_inspect(path, &json, &e)) return cr_cli_fail("inspect", &e);
    cJSON *o = cJSON_Parse(json);
    cr_free(json);
    if (!o) {
        fprintf(stderr, "crossrec inspect: out of memory\n");
        return 1;
    }
    printf("%s\n", path);
    printf("metadata:\n");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "metadata"), *m;
    cJSON_ArrayForEach(m, meta) {
        const char *v = m->valuestring;
        size_t n = strlen(v);
        if (!full && n > 100) printf("  %-18s %.80s... (%zu bytes)\n", m->string, v, n);
        else printf("  %-18s %s\n", m->string, v);
    }
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(meta, "schema");
    if (cJSON_IsString(schema)) print_schema(schema->valuestring);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "tensors"), *t;
    size_t total = 0, bytes = 0;
    printf("tensors (%d):\n", cJSON_GetArraySize(ts));
    cJSON_ArrayForEach(t, ts) {
        const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape"), *d;
        char shape[128];
        int off = snprintf(shape, sizeof shape, "[");
        int first = 1;
        cJSON_ArrayForEach(d, sh) {
            off += snprintf(shape + off, sizeof shape - (size_t)off, "%s%lld", first ? "" : ", ",
                            (long long)d->valuedouble);
            first = 0;
        }
        snprintf(shape + off, sizeof shape - (size_t)off, "]");
        size_t numel = (size_t)cJSON_GetObjectItemCaseSensitive(t, "numel")->valuedouble;
        printf("  %-40s %-5s %-18s %zu\n", cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring,
               cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring, shape, numel);
        total += numel;
        bytes += (size_t)cJSON_GetObjectItemCaseSensitive(t, "bytes")->valuedouble;
    }
    printf("total: %zu values, %zu bytes of tensor data\n", total, bytes);
    cJSON_Delete(o);
    return 0;
}
