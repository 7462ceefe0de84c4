/*
 * config_write.c - the config saved beside a trained model (OUT/config.yaml).
 * A verbatim copy broke as soon as it moved: data.path is relative to the
 * file that names it. So the saved file is the original document re-emitted
 * with data.path absolute, and the features, tasks, model, train and eval
 * sections written from the parsed config with every default, so `eval
 * --config OUT/config.yaml` works from anywhere and the file says what was
 * trained.
 * It writes; it never decides a value (the parsers did).
 */
#define _GNU_SOURCE
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A scalar as a double-quoted YAML string (quoting never changes what the
 * parsers read: numbers and booleans are parsed from the text), or ~ for a
 * plain null. */
static void emit_scalar(FILE *f, const cr_yaml_node *n) {
    if (cr_yaml_is_null(n)) {
        fputs("~", f);
        return;
    }
    fputc('"', f);
    for (const char *p = n->value; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch == '\t') fputs("\\t", f);
        else if (ch < 0x20) fprintf(f, "\\x%02x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* Any node in flow style ({k: v}, [a, b]). */
static void emit_flow(FILE *f, const cr_yaml_node *n) {
    if (n->kind == CR_YAML_SCALAR) {
        emit_scalar(f, n);
    } else if (n->kind == CR_YAML_SEQ) {
        fputc('[', f);
        for (int i = 0; i < n->n; i++) {
            if (i) fputs(", ", f);
            emit_flow(f, n->items[i]);
        }
        fputc(']', f);
    } else {
        fputc('{', f);
        for (int i = 0; i < n->n; i++) {
            if (i) fputs(", ", f);
            fprintf(f, "%s: ", n->keys[i]->value);
            emit_flow(f, n->items[i]);
        }
        fputc('}', f);
    }
}

/* "  key: v" with the shortest decimal that reads back as the same float
 * (0.05, not 0.0500000007). */
static void emit_float(FILE *f, const char *key, float v) {
    char b[32];
    for (int p = 6; p <= 9; p++) {
        snprintf(b, sizeof b, "%.*g", p, (double)v);
        if (strtof(b, NULL) == v) break;
    }
    fprintf(f, "  %s: %s\n", key, b);
}

static void emit_layers(FILE *f, const char *key, const int *v, int n) {
    fprintf(f, "  %s: [", key);
    for (int i = 0; i < n; i++) fprintf(f, i ? ", %d" : "%d", v[i]);
    fputs("]\n", f);
}

/* A string as a quoted scalar (labels and masks may hold any character). */
static void emit_str(FILE *f, const char *v) {
    cr_yaml_node n;
    memset(&n, 0, sizeof n);
    n.kind = CR_YAML_SCALAR;
    n.value = v;
    n.quoted = 1;
    emit_scalar(f, &n);
}

/* data: the absolute path and the split with its defaults from the parsed
 * config; the other keys as written (data.extra too: the columns distill:
 * appends to it are appended again on every load). */
static void emit_data(FILE *f, const cr_yaml_node *n, const cr_data_cfg *d, const char *abs) {
    fputs("data: {path: ", f);
    emit_str(f, abs);
    fprintf(f, ", split: {by: %s", cr_split_kind_names[d->split]);
    if (d->split != CR_SPLIT_FRACTION) {
        fputs(", column: ", f);
        emit_str(f, d->split_column);
    }
    if (d->split != CR_SPLIT_COLUMN)
        fprintf(f, ", valid: %.17g, test: %.17g", d->valid_frac, d->test_frac);
    if (d->split == CR_SPLIT_FRACTION) fprintf(f, ", seed: %llu", (unsigned long long)d->split_seed);
    fputc('}', f);
    for (int i = 0; n && n->kind == CR_YAML_MAP && i < n->n; i++) {
        const char *k = n->keys[i]->value;
        if (!strcmp(k, "path") || !strcmp(k, "split")) continue;
        fprintf(f, ", %s: ", k);
        emit_flow(f, n->items[i]);
    }
    fputs("}\n", f);
}

/* Every feature and task from the parsed schema, each key that applies to
 * its type with its value (defaults included), in the forms the parser
 * takes: a shared feature names its owner and nothing of the vocabulary. */
static void emit_schema(FILE *f, const cr_schema *s) {
    fputs("features:\n", f);
    for (int i = 0; i < s->n_features; i++) {
        const cr_feature *x = &s->features[i];
        fprintf(f, "  - {name: %s, type: %s, column: ", x->name, cr_feat_kind_names[x->kind]);
        emit_str(f, x->column);
        int ids = x->kind == CR_FEAT_CATEGORICAL || x->kind == CR_FEAT_MULTI;
        if (x->kind != CR_FEAT_NUMERIC) fprintf(f, ", dim: %d", x->dim);
        if (ids && x->share[0]) fprintf(f, ", share: %s", x->share);
        else if (ids && x->hash_buckets) fprintf(f, ", hash_buckets: %lld", (long long)x->hash_buckets);
        else if (ids)
            fprintf(f, ", min_count: %lld, max_vocab: %lld", (long long)x->min_count,
                    (long long)x->max_vocab);
        if (ids) {
            char b[32];
            snprintf(b, sizeof b, "%.9g", (double)x->id_dropout);
            fprintf(f, ", id_dropout: %s", b);
        }
        if (x->kind == CR_FEAT_MULTI) {
            char sep[2] = {x->sep, 0};
            fputs(", sep: ", f);
            emit_str(f, sep);
            fprintf(f, ", pooling: %s", cr_pooling_names[x->pooling]);
        }
        if (x->kind == CR_FEAT_NUMERIC)
            fprintf(f, ", transform: %s, default: %.17g", cr_transform_names[x->transform],
                    x->default_value);
        if (x->kind == CR_FEAT_BUCKET) {
            fputs(", boundaries: [", f);
            for (int b = 0; b < x->n_boundaries; b++) fprintf(f, b ? ", %.17g" : "%.17g", x->boundaries[b]);
            fputc(']', f);
        }
        fputs("}\n", f);
    }
    fputs("tasks:\n", f);
    for (int k = 0; k < s->n_tasks; k++) {
        const cr_task *t = &s->tasks[k];
        fprintf(f, "  - {name: %s, type: %s, label: ", t->name, cr_task_kind_names[t->kind]);
        emit_str(f, t->label);
        if (t->mask[0]) {
            fputs(", mask: ", f);
            emit_str(f, t->mask);
        }
        char b[32];
        snprintf(b, sizeof b, "%.9g", (double)t->weight);
        fprintf(f, ", weight: %s}\n", b);
    }
}

static void emit_sections(FILE *f, const cr_rank_config *c) {
    const cr_model_cfg *m = &c->model;
    fprintf(f, "model:\n  type: %s\n", cr_arch_names[m->arch]);
    emit_layers(f, "bottom_layers", m->bottom_layers, m->n_bottom);
    fprintf(f, "  experts: %d\n", m->n_experts);
    emit_layers(f, "expert_layers", m->expert_layers, m->n_expert_layers);
    fprintf(f, "  shared_experts: %d\n  task_experts: %d\n", m->shared_experts, m->task_experts);
    emit_layers(f, "tower_layers", m->tower_layers, m->n_tower);
    fprintf(f, "  loss_weighting: %s\n", cr_loss_weighting_names[m->loss_weighting]);
    emit_float(f, "emb_init", m->emb_init);
    const cr_train_cfg *t = &c->train;
    static const char *const precision[] = {"fp32", "bf16"};
    fprintf(f, "train:\n  optimizer: %s\n", cr_dense_opt_names[t->opt.kind]);
    emit_float(f, "lr", t->opt.lr);
    emit_float(f, "beta1", t->opt.beta1);
    emit_float(f, "beta2", t->opt.beta2);
    emit_float(f, "eps", t->opt.eps);
    emit_float(f, "weight_decay", t->opt.weight_decay);
    fprintf(f, "  sparse_optimizer: %s\n", cr_sparse_opt_names[t->opt.sparse_kind]);
    emit_float(f, "sparse_lr", t->opt.sparse_lr);
    emit_float(f, "adagrad_init", t->opt.adagrad_init);
    fprintf(f, "  batch_size: %d\n  epochs: %d\n  max_steps: %lld\n  schedule: %s\n"
               "  warmup_steps: %lld\n",
            t->batch_size, t->epochs, (long long)t->max_steps, cr_sched_names[t->opt.schedule],
            (long long)t->opt.warmup);
    emit_float(f, "min_lr_frac", t->opt.min_lr_frac);
    emit_float(f, "clip_norm", t->opt.clip);
    fprintf(f,
            "  seed: %llu\n  threads: %d\n"
            "  early_stopping: {mode: %s, patience: %d, eval_every: %lld}\n"
            "  checkpoint_every: %d\n  precision: %s\n",
            (unsigned long long)t->seed, t->threads, cr_es_names[t->early_stopping], t->patience,
            (long long)t->eval_every, t->checkpoint_every, precision[t->precision ? 1 : 0]);
    fprintf(f, "eval:\n  k: %d\n  baseline: %s\n", c->eval.k, c->eval.baseline ? "true" : "false");
    if (c->eval.popularity_feature[0])
        fprintf(f, "  popularity_feature: %s\n", c->eval.popularity_feature);
}

cr_status cr_rank_config_save(const cr_rank_config *c, const char *out_path, cr_error *e) {
    char abs[PATH_MAX];
    if (!realpath(c->data.path, abs))
        snprintf(abs, sizeof abs, "%s", c->data.path); /* checked when the data was read */
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load(&doc, c->path, e));
    const cr_yaml_node *root = cr_yaml_root(doc);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        cr_yaml_free(doc);
        return cr_err(e, CR_ERR_NOMEM, "%s: out of memory", out_path);
    }
    fprintf(f, "# Saved by crossrec train from %s: data.path made absolute; the split,\n"
               "# features, tasks, model, train and eval hold every value used, defaults\n"
               "# included.\n", c->path);
    for (int i = 0; root->kind == CR_YAML_MAP && i < root->n; i++) {
        const char *k = root->keys[i]->value;
        const cr_yaml_node *v = root->items[i];
        if (!strcmp(k, "model") || !strcmp(k, "train") || !strcmp(k, "eval")) continue;
        if (!strcmp(k, "features") || !strcmp(k, "tasks")) {
            if (!strcmp(k, "features")) emit_schema(f, &c->schema);
            continue;
        }
        if (!strcmp(k, "data")) {
            emit_data(f, v, &c->data, abs);
            continue;
        }
        fprintf(f, "%s:", k);
        if (v->kind == CR_YAML_SEQ) {
            fputc('\n', f);
            for (int j = 0; j < v->n; j++) {
                fputs("  - ", f);
                emit_flow(f, v->items[j]);
                fputc('\n', f);
            }
        } else {
            fputc(' ', f);
            emit_flow(f, v);
            fputc('\n', f);
        }
    }
    emit_sections(f, c);
    cr_yaml_free(doc);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return cr_err(e, CR_ERR_NOMEM, "%s: out of memory", out_path);
    }
    cr_status s = cr_write_file_atomic(out_path, buf, len, e);
    free(buf);
    return s;
}
