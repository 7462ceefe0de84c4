/*
 * ranker.c - the multi-task ranker's construction, workspaces and forward
 * pass: features -> x -> shared bottom | MMoE | PLE -> towers -> heads.
 * The model is read-only after creation so many workspaces (threads) can
 * score with it; forward must never allocate, print, or write the model.
 *
 * Legend: B batch rows, C_in model input width, K tasks (= towers),
 * E experts, S experts one gate mixes, He expert output width, NH heads.
 */
#include "ranker.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- configuration ------------------------------------------------------------ */

const char *cr_arch_name(cr_arch a) {
    switch (a) {
    case CR_ARCH_SHARED_BOTTOM: return "shared_bottom";
    case CR_ARCH_MMOE: return "mmoe";
    case CR_ARCH_PLE: return "ple";
    }
    return "unknown";
}

void cr_model_cfg_default_heads(cr_model_cfg *c, const cr_schema *s) {
    c->n_heads = 0;
    for (int k = 0; k < s->n_tasks && k < CR_MODEL_MAX_HEADS; k++) {
        cr_head *h = &c->heads[c->n_heads++];
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", s->tasks[k].name);
        h->tower = k;
        h->kind = s->tasks[k].kind == CR_TASK_BINARY ? CR_HEAD_BINARY : CR_HEAD_REGRESSION;
        h->served = 1;
        h->target_kind = CR_TARGET_LABEL;
        h->target = k;
        h->mask_task = k;
        h->weight = s->tasks[k].weight;
    }
}

void cr_model_cfg_defaults(cr_model_cfg *c, const cr_schema *s) {
    memset(c, 0, sizeof *c);
    c->arch = CR_ARCH_MMOE;
    c->n_bottom = 2;
    c->bottom_layers[0] = 128;
    c->bottom_layers[1] = 64;
    c->n_experts = 4;
    c->shared_experts = 2;
    c->task_experts = 1;
    c->n_expert_layers = 2;
    c->expert_layers[0] = 64;
    c->expert_layers[1] = 32;
    c->n_tower = 1;
    c->tower_layers[0] = 32;
    c->loss_weighting = CR_LOSS_FIXED;
    c->emb_init = 0.05f;
    cr_model_cfg_default_heads(c, s);
}

/* A head name becomes part of parameter names and of JSON: keep it to
 * letters, digits, '_' and '-'. */
static int cr_name_ok(const char *n) {
    if (!n[0]) return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return 0;
    return 1;
}

static cr_status cr_check_heads(const cr_model_cfg *c, int K, cr_error *e) {
    if (c->n_heads < 1 || c->n_heads > CR_MODEL_MAX_HEADS)
        return cr_err(e, CR_ERR_CONFIG, "model: %d heads, expected 1 to %d", c->n_heads,
                      CR_MODEL_MAX_HEADS);
    int served = 0;
    for (int i = 0; i < c->n_heads; i++) {
        const cr_head *h = &c->heads[i];
        if (!cr_name_ok(h->name) || strlen(h->name) > 48)
            return cr_err(e, CR_ERR_CONFIG,
                          "model.heads[%d]: name '%s' must be 1-48 letters, digits, '_' or '-'",
                          i, h->name);
        for (int j = 0; j < i; j++)
            if (strcmp(c->heads[j].name, h->name) == 0)
                return cr_err(e, CR_ERR_CONFIG, "model.heads[%d]: name '%s' is used twice", i,
                              h->name);
        if (h->tower < 0 || h->tower >= K)
            return cr_err(e, CR_ERR_CONFIG,
                          "model.heads[%d] '%s': tower %d, expected a task index in [0, %d)", i,
                          h->name, h->tower, K);
        if (h->kind != CR_HEAD_BINARY && h->kind != CR_HEAD_REGRESSION)
            return cr_err(e, CR_ERR_CONFIG, "model.heads[%d] '%s': unknown kind %d", i, h->name,
                          (int)h->kind);
        if (h->target_kind == CR_TARGET_LABEL) {
            if (h->target < 0 || h->target >= K)
                return cr_err(e, CR_ERR_CONFIG,
                              "model.heads[%d] '%s': target task %d, expected [0, %d)", i,
                              h->name, h->target, K);
        } else if (h->target_kind == CR_TARGET_EXTRA) {
            if (h->target < 0)
                return cr_err(e, CR_ERR_CONFIG,
                              "model.heads[%d] '%s': extra column %d, expected >= 0", i, h->name,
                              h->target);
        } else {
            return cr_err(e, CR_ERR_CONFIG, "model.heads[%d] '%s': unknown target kind %d", i,
                          h->name, (int)h->target_kind);
        }
        if (h->mask_task < -1 || h->mask_task >= K)
            return cr_err(e, CR_ERR_CONFIG,
                          "model.heads[%d] '%s': mask task %d, expected -1 or [0, %d)", i,
                          h->name, h->mask_task, K);
        if (!(h->weight >= 0.0f) || !isfinite(h->weight))
            return cr_err(e, CR_ERR_CONFIG,
                          "model.heads[%d] '%s': loss weight %g, expected finite and >= 0", i,
                          h->name, (double)h->weight);
        served += h->served != 0;
    }
    if (c->loss_weighting == CR_LOSS_UNCERTAINTY && served == 0)
        return cr_err(e, CR_ERR_CONFIG,
                      "model: uncertainty loss weighting needs at least one served head");
    return CR_OK;
}

static cr_status cr_check_cfg(const cr_model_cfg *c, int K, cr_error *e) {
    if (c->n_bottom < 0 || c->n_bottom > CR_MODEL_MAX_LAYERS || c->n_tower < 0 ||
        c->n_tower > CR_MODEL_MAX_LAYERS || c->n_expert_layers < 0 ||
        c->n_expert_layers > CR_MODEL_MAX_LAYERS)
        return cr_err(e, CR_ERR_CONFIG,
                      "model: bottom %d, expert %d and tower %d layers, expected 0 to %d each",
                      c->n_bottom, c->n_expert_layers, c->n_tower, CR_MODEL_MAX_LAYERS);
    switch (c->arch) {
    case CR_ARCH_SHARED_BOTTOM: break;
    case CR_ARCH_MMOE:
        if (c->n_experts < 1 || c->n_experts > 1024)
            return cr_err(e, CR_ERR_CONFIG, "model: mmoe needs 1 to 1024 experts, got %d",
                          c->n_experts);
        break;
    case CR_ARCH_PLE:
        if (c->shared_experts < 0 || c->task_experts < 0 ||
            c->shared_experts + c->task_experts < 1 ||
            (int64_t)c->shared_experts + (int64_t)K * c->task_experts > 1024)
            return cr_err(e, CR_ERR_CONFIG,
                          "model: ple needs shared_experts, task_experts >= 0 with at least one "
                          "expert per gate and at most 1024 in all, got %d shared, %d per task",
                          c->shared_experts, c->task_experts);
        break;
    default:
        return cr_err(e, CR_ERR_CONFIG,
                      "model: unknown architecture %d, expected shared_bottom, mmoe or ple",
                      (int)c->arch);
    }
    if (c->arch != CR_ARCH_SHARED_BOTTOM && c->n_expert_layers < 1)
        return cr_err(e, CR_ERR_CONFIG, "model: %s experts need at least one layer",
                      cr_arch_name(c->arch));
    if (c->loss_weighting != CR_LOSS_FIXED && c->loss_weighting != CR_LOSS_UNCERTAINTY)
        return cr_err(e, CR_ERR_CONFIG,
                      "model: unknown loss weighting %d, expected fixed or uncertainty",
                      (int)c->loss_weighting);
    if (!(c->emb_init >= 0.0f) || !isfinite(c->emb_init))
        return cr_err(e, CR_ERR_CONFIG, "model: emb_init %g, expected finite and >= 0",
                      (double)c->emb_init);
    return cr_check_heads(c, K, e);
}

/* ---- construction --------------------------------------------------------------- */

/* Copy what the model needs of the schema: slots, their tables and widths. */
static cr_status cr_ranker_take_schema(cr_ranker *m, const cr_schema *s, cr_error *e) {
    if (s->n_tasks < 1 || s->n_tasks > CR_MODEL_MAX_HEADS)
        return cr_err(e, CR_ERR_CONFIG, "schema: %d tasks, a ranker takes 1 to %d",
                      s->n_tasks, CR_MODEL_MAX_HEADS);
    if (s->n_tables < 0 || s->n_cat < 0 || s->n_multi < 0 || s->n_dense < 0)
        return cr_err(e, CR_ERR_INTERNAL, "schema: negative counts (not finished?)");
    m->K = s->n_tasks;
    m->n_cat = s->n_cat;
    m->n_multi = s->n_multi;
    m->n_dense = s->n_dense;
    m->n_tables = s->n_tables;
    int nt = s->n_tables > 0 ? s->n_tables : 1;
    int nc = s->n_cat > 0 ? s->n_cat : 1, nm = s->n_multi > 0 ? s->n_multi : 1;
    m->cat_table = calloc((size_t)nc, sizeof(int));
    m->cat_col = calloc((size_t)nc, sizeof(int));
    m->multi_table = calloc((size_t)nm, sizeof(int));
    m->multi_col = calloc((size_t)nm, sizeof(int));
    m->multi_pool = calloc((size_t)nm, sizeof(cr_pooling));
    m->table_rows = calloc((size_t)nt, sizeof(int64_t));
    m->table_dim = calloc((size_t)nt, sizeof(int));
    m->table_param = calloc((size_t)nt, sizeof(int));
    m->table_readers = calloc((size_t)nt, sizeof(int));
    if (!m->cat_table || !m->cat_col || !m->multi_table || !m->multi_col || !m->multi_pool ||
        !m->table_rows || !m->table_dim || !m->table_param || !m->table_readers)
        return cr_err(e, CR_ERR_NOMEM, "out of memory copying the schema into the model");
    for (int t = 0; t < s->n_tables; t++) {
        if (s->table_rows[t] < 1 || s->table_rows[t] > INT32_MAX)
            return cr_err(e, CR_ERR_CONFIG,
                          "schema: table '%s' has %lld rows, expected 1 to %d (ids are int32)",
                          s->table_name[t], (long long)s->table_rows[t], INT32_MAX);
        if (s->table_dim[t] < 1 || s->table_dim[t] > 65536)
            return cr_err(e, CR_ERR_CONFIG, "schema: table '%s' has dim %d, expected 1 to 65536",
                          s->table_name[t], s->table_dim[t]);
        m->table_rows[t] = s->table_rows[t];
        m->table_dim[t] = s->table_dim[t];
    }
    int64_t col = 0;
    for (int i = 0; i < s->n_cat; i++) {
        const cr_feature *f = &s->features[s->cat_feat[i]];
        if (f->table < 0 || f->table >= s->n_tables)
            return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' reads table %d of %d", f->name,
                          f->table, s->n_tables);
        m->cat_table[i] = f->table;
        m->cat_col[i] = (int)col;
        m->table_readers[f->table]++;
        col += m->table_dim[f->table];
    }
    for (int i = 0; i < s->n_multi; i++) {
        const cr_feature *f = &s->features[s->multi_feat[i]];
        if (f->table < 0 || f->table >= s->n_tables)
            return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' reads table %d of %d", f->name,
                          f->table, s->n_tables);
        if (f->pooling != CR_POOL_SUM && f->pooling != CR_POOL_MEAN)
            return cr_err(e, CR_ERR_CONFIG, "schema: feature '%s' has unknown pooling %d",
                          f->name, (int)f->pooling);
        m->multi_table[i] = f->table;
        m->multi_col[i] = (int)col;
        m->multi_pool[i] = f->pooling;
        m->table_readers[f->table]++;
        col += m->table_dim[f->table];
    }
    m->dense_col = (int)col;
    col += s->n_dense;
    if (col < 1 || col > (1 << 20))
        return cr_err(e, CR_ERR_CONFIG,
                      "schema: model input width %lld, expected 1 to %d (features to embed?)",
                      (long long)col, 1 << 20);
    m->C_in = (int)col;
    return CR_OK;
}

static cr_status cr_ranker_register(cr_ranker *m, const cr_schema *s, cr_error *e) {
    const cr_model_cfg *c = &m->cfg;
    const int K = m->K;
    char name[CR_MAX_NAME];
    int tower_in = m->C_in;
    m->log_var = -1;
    if (c->arch == CR_ARCH_SHARED_BOTTOM) {
        CR_TRY(cr_mlp_register(&m->bottom, &m->params, "bottom", m->C_in, c->n_bottom,
                               c->bottom_layers, e));
        tower_in = cr_mlp_out_dim(&m->bottom);
    } else {
        int E = c->arch == CR_ARCH_MMOE ? c->n_experts : c->shared_experts + K * c->task_experts;
        CR_TRY(cr_experts_register(&m->experts, &m->params, "experts", E, m->C_in,
                                   c->n_expert_layers, c->expert_layers, e));
        tower_in = c->expert_layers[c->n_expert_layers - 1];
        m->S = c->arch == CR_ARCH_MMOE ? E : c->shared_experts + c->task_experts;
        m->gate_w = calloc((size_t)K, sizeof(int));
        m->gate_b = calloc((size_t)K, sizeof(int));
        if (!m->gate_w || !m->gate_b) return cr_err(e, CR_ERR_NOMEM, "out of memory (gates)");
        if (c->arch == CR_ARCH_PLE) {
            /* gate k mixes the shared experts 0..SH-1, then task k's own
             * experts SH + k*TE .. SH + (k+1)*TE - 1 */
            m->gate_sel = calloc((size_t)K * m->S, sizeof(int));
            if (!m->gate_sel) return cr_err(e, CR_ERR_NOMEM, "out of memory (gates)");
            for (int k = 0; k < K; k++) {
                int *sel = m->gate_sel + (size_t)k * m->S;
                for (int j = 0; j < c->shared_experts; j++) sel[j] = j;
                for (int j = 0; j < c->task_experts; j++)
                    sel[c->shared_experts + j] = c->shared_experts + k * c->task_experts + j;
            }
        }
        for (int k = 0; k < K; k++) {
            int64_t ws[2] = {m->S, m->C_in}, bs[1] = {m->S};
            snprintf(name, sizeof name, "gates.%d.weight", k);
            CR_TRY(cr_nn_add(&m->params, &m->gate_w[k], name, 2, ws, 0, e));
            snprintf(name, sizeof name, "gates.%d.bias", k);
            CR_TRY(cr_nn_add(&m->params, &m->gate_b[k], name, 1, bs, CR_PARAM_NO_DECAY, e));
        }
    }
    m->towers = calloc((size_t)K, sizeof(cr_mlp));
    if (!m->towers) return cr_err(e, CR_ERR_NOMEM, "out of memory (towers)");
    for (int k = 0; k < K; k++) {
        snprintf(name, sizeof name, "towers.%d", k);
        CR_TRY(cr_mlp_register(&m->towers[k], &m->params, name, tower_in, c->n_tower,
                               c->tower_layers, e));
    }
    m->head_w = calloc((size_t)c->n_heads, sizeof(int));
    m->head_b = calloc((size_t)c->n_heads, sizeof(int));
    m->head_served = calloc((size_t)c->n_heads, sizeof(int));
    if (!m->head_w || !m->head_b || !m->head_served)
        return cr_err(e, CR_ERR_NOMEM, "out of memory (heads)");
    m->n_served = 0;
    for (int h = 0; h < c->n_heads; h++) {
        const cr_head *hd = &c->heads[h];
        int64_t ws[2] = {1, cr_mlp_out_dim(&m->towers[hd->tower])}, bs[1] = {1};
        snprintf(name, sizeof name, "heads.%s.weight", hd->name);
        CR_TRY(cr_nn_add(&m->params, &m->head_w[h], name, 2, ws, 0, e));
        snprintf(name, sizeof name, "heads.%s.bias", hd->name);
        CR_TRY(cr_nn_add(&m->params, &m->head_b[h], name, 1, bs, CR_PARAM_NO_DECAY, e));
        m->head_served[h] = hd->served ? m->n_served++ : -1;
    }
    if (c->loss_weighting == CR_LOSS_UNCERTAINTY) {
        int64_t ls[1] = {m->n_served};
        CR_TRY(cr_nn_add(&m->params, &m->log_var, "loss.log_var", 1, ls, CR_PARAM_NO_DECAY, e));
    }
    for (int t = 0; t < m->n_tables; t++) {
        int64_t ts[2] = {m->table_rows[t], m->table_dim[t]};
        snprintf(name, sizeof name, "emb.%s", s->table_name[t]);
        CR_TRY(cr_nn_add(&m->tables, &m->table_param[t], name, 2, ts, CR_PARAM_SPARSE, e));
    }
    CR_TRY(cr_ptable_alloc(&m->params, e));
    return cr_ptable_alloc(&m->tables, e);
}

void cr_ranker_init_params(cr_ranker *m, uint64_t seed) {
    cr_ranker_unpack(m); /* it would score the old weights */
    cr_rng r;
    cr_rng_seed(&r, seed);
    /* Registration order: the trunk, gates, towers, heads, then tables. */
    if (m->cfg.arch == CR_ARCH_SHARED_BOTTOM) {
        cr_mlp_init(&m->bottom, &m->params, m->params.data, &r);
    } else {
        cr_experts_init(&m->experts, &m->params, m->params.data, &r);
        for (int k = 0; k < m->K; k++)
            cr_nn_init_linear(&m->params, m->params.data, m->gate_w[k], m->gate_b[k], m->C_in,
                              &r);
    }
    for (int k = 0; k < m->K; k++) cr_mlp_init(&m->towers[k], &m->params, m->params.data, &r);
    for (int h = 0; h < m->cfg.n_heads; h++)
        cr_nn_init_linear(&m->params, m->params.data, m->head_w[h], m->head_b[h],
                          cr_mlp_out_dim(&m->towers[m->cfg.heads[h].tower]), &r);
    if (m->log_var >= 0) /* s_k = 0: every task starts at weight exp(0) = 1 */
        memset(cr_ptable_ptr(&m->params, m->params.data, m->log_var), 0,
               m->params.t[m->log_var].numel * sizeof(float));
    for (int t = 0; t < m->n_tables; t++) {
        int i = m->table_param[t];
        cr_rng_fill_uniform(&r, cr_ptable_ptr(&m->tables, m->tables.data, i),
                            m->tables.t[i].numel, m->cfg.emb_init);
    }
}

cr_status cr_ranker_create(cr_ranker **out, const cr_schema *s, const cr_model_cfg *cfg,
                           uint64_t seed, cr_error *e) {
    *out = NULL;
    cr_status st;
    cr_ranker *m = calloc(1, sizeof *m);
    if (!m) return cr_err(e, CR_ERR_NOMEM, "out of memory allocating the model");
    m->cfg = *cfg;
    cr_ptable_init(&m->params);
    cr_ptable_init(&m->tables);
    if ((st = cr_ranker_take_schema(m, s, e)) != CR_OK) goto fail;
    if ((st = cr_check_cfg(cfg, m->K, e)) != CR_OK) goto fail;
    if ((st = cr_ranker_register(m, s, e)) != CR_OK) goto fail;
    cr_ranker_init_params(m, seed);
    *out = m;
    return CR_OK;
fail:
    cr_ranker_free(m);
    return st;
}

static int cr_is_moe(const cr_ranker *m) { return m->cfg.arch != CR_ARCH_SHARED_BOTTOM; }

cr_status cr_ranker_pack(cr_ranker *m, cr_error *e) {
    cr_nn_packed *pk = calloc(1, sizeof *pk);
    if (!pk) return cr_err(e, CR_ERR_NOMEM, "out of memory (packed weights)");
    cr_status st = cr_nn_pack(pk, &m->params, m->params.data, e);
    if (st) {
        free(pk);
        return st;
    }
    cr_ranker_unpack(m);
    m->packed = pk;
    if (cr_is_moe(m)) {
        /* The gates all read x: stacked into one layer, x streams through
         * once for the K of them instead of once per gate (each output is
         * the same sum as in its own gate: the same bits). */
        const int K = m->K, S = m->S, C = m->C_in;
        size_t wn = cr_linear_pack_floats(K * S, C);
        float *stack = malloc((size_t)K * S * C * sizeof(float));
        float *gp = cr_alloc_e((wn + (size_t)K * S) * sizeof(float), e, "packed gates");
        if (!stack || !gp) {
            free(stack);
            cr_free(gp);
            cr_ranker_unpack(m);
            return cr_err(e, CR_ERR_NOMEM, "out of memory (packed gates)");
        }
        float *P = m->params.data;
        for (int k = 0; k < K; k++) {
            memcpy(stack + (size_t)k * S * C, cr_ptable_ptr(&m->params, P, m->gate_w[k]),
                   (size_t)S * C * sizeof(float));
            memcpy(gp + wn + (size_t)k * S, cr_ptable_ptr(&m->params, P, m->gate_b[k]),
                   (size_t)S * sizeof(float));
        }
        cr_linear_pack(gp, stack, K * S, C);
        free(stack);
        m->gates_packed = gp;
    }
    return CR_OK;
}

void cr_ranker_unpack(cr_ranker *m) {
    cr_free(m->gates_packed);
    m->gates_packed = NULL;
    if (!m->packed) return;
    cr_nn_packed_free(m->packed);
    free(m->packed);
    m->packed = NULL;
}

void cr_ranker_free(cr_ranker *m) {
    if (!m) return;
    cr_ranker_unpack(m);
    free(m->cat_table);
    free(m->cat_col);
    free(m->multi_table);
    free(m->multi_col);
    free(m->multi_pool);
    free(m->table_rows);
    free(m->table_dim);
    free(m->table_param);
    free(m->table_readers);
    free(m->gate_sel);
    free(m->gate_w);
    free(m->gate_b);
    free(m->towers);
    free(m->head_w);
    free(m->head_b);
    free(m->head_served);
    cr_ptable_free(&m->params);
    cr_ptable_free(&m->tables);
    free(m);
}

/* ---- workspaces ----------------------------------------------------------------- */

static size_t cr_round16(size_t n) { return (n + 15) & ~(size_t)15; }


/* Widest activation block any backward step runs its ReLU/softmax over. */
static int cr_ranker_max_width(const cr_ranker *m) {
    int w = cr_is_moe(m) ? cr_experts_max_width(&m->experts) : cr_mlp_max_width(&m->bottom);
    if (m->S > w) w = m->S;
    for (int k = 0; k < m->K; k++) {
        int t = cr_mlp_max_width(&m->towers[k]);
        w = t > w ? t : w;
    }
    return w > 1 ? w : 1;
}

/* Sparse-gradient sizes: a slot's backward yields at most min(rows, ids)
 * unique rows; a table's merged gradient at most min(rows, sum over its
 * readers). All counts stay below INT32_MAX/2 (checked at creation). */
static void cr_ws_sparse_caps(const cr_ranker *m, const cr_ranker_ws *ws, int64_t *table_cap,
                              int64_t *emb_rows_cap, int64_t *emb_ids_cap, int64_t *merge_cap) {
    *emb_rows_cap = 1;
    *emb_ids_cap = 1;
    *merge_cap = 1;
    for (int t = 0; t < m->n_tables; t++) table_cap[t] = 0;
    for (int i = 0; i < m->n_cat + m->n_multi; i++) {
        int t = i < m->n_cat ? m->cat_table[i] : m->multi_table[i - m->n_cat];
        int64_t n = i < m->n_cat ? ws->max_B : ws->max_bag_ids;
        int64_t r = n < m->table_rows[t] ? n : m->table_rows[t];
        table_cap[t] += n;
        if (r > *emb_rows_cap) *emb_rows_cap = r;
        if (n > *emb_ids_cap) *emb_ids_cap = n;
    }
    for (int t = 0; t < m->n_tables; t++) {
        if (table_cap[t] > m->table_rows[t]) table_cap[t] = m->table_rows[t];
        if (table_cap[t] < 1) table_cap[t] = 1;
        if (table_cap[t] > *merge_cap) *merge_cap = table_cap[t];
    }
}

static cr_status cr_ws_alloc_train(const cr_ranker *m, cr_ranker_ws *ws, cr_error *e) {
    int maxD = 1;
    for (int t = 0; t < m->n_tables; t++) maxD = m->table_dim[t] > maxD ? m->table_dim[t] : maxD;
    ws->dacts = cr_alloc_e(ws->acts_n * sizeof(float), e, "activation gradients");
    ws->dpre = cr_alloc_e((size_t)ws->max_B * cr_ranker_max_width(m) * sizeof(float), e,
                          "backward scratch");
    ws->dout = cr_alloc_e((size_t)m->cfg.n_heads * ws->max_B * sizeof(float), e,
                          "output gradients");
    ws->grads = cr_alloc_e(m->params.total * sizeof(float) + 64, e, "parameter gradients");
    if (!ws->dacts || !ws->dpre || !ws->dout || !ws->grads) return CR_ERR_NOMEM;
    int nt = m->n_tables > 0 ? m->n_tables : 1;
    int64_t *tcap = calloc((size_t)nt, sizeof(int64_t));
    ws->sgrads = calloc((size_t)nt, sizeof(cr_sparse_grad));
    if (!tcap || !ws->sgrads) {
        free(tcap);
        return cr_err(e, CR_ERR_NOMEM, "out of memory (sparse gradients)");
    }
    int64_t rows_cap, ids_cap, merge_cap;
    cr_ws_sparse_caps(m, ws, tcap, &rows_cap, &ids_cap, &merge_cap);
    cr_status st = CR_OK;
    ws->n_sgrads = m->n_tables;
    for (int t = 0; t < m->n_tables && st == CR_OK; t++)
        st = cr_sparse_grad_init(&ws->sgrads[t], (int)tcap[t], m->table_dim[t], e);
    free(tcap);
    if (st != CR_OK) return st;
    ws->emb_cap = (int)rows_cap;
    ws->emb_rows = cr_alloc_e((size_t)rows_cap * sizeof(int32_t), e, "embedding rows");
    ws->emb_vals = cr_alloc_e((size_t)rows_cap * maxD * sizeof(float), e, "embedding grads");
    ws->emb_scratch = cr_alloc_e((size_t)ids_cap * 2 * sizeof(int32_t), e, "embedding scratch");
    ws->merge_cap = (int)merge_cap;
    ws->merge_rows = cr_alloc_e((size_t)merge_cap * sizeof(int32_t), e, "merge rows");
    ws->merge_vals = cr_alloc_e((size_t)merge_cap * maxD * sizeof(float), e, "merge values");
    if (!ws->emb_rows || !ws->emb_vals || !ws->emb_scratch || !ws->merge_rows ||
        !ws->merge_vals)
        return CR_ERR_NOMEM;
    return CR_OK;
}

cr_status cr_ranker_ws_create(cr_ranker_ws **out, const cr_ranker *m, int max_B, int train,
                              int64_t max_bag_ids, cr_error *e) {
    *out = NULL;
    const int K = m->K;
    if (max_B < 1 || max_B > (1 << 24))
        return cr_err(e, CR_ERR_ARG, "workspace: max_B %d, expected 1 to %d", max_B, 1 << 24);
    if (max_bag_ids == 0) max_bag_ids = (int64_t)32 * max_B;
    if (max_bag_ids < 1 || max_bag_ids > INT32_MAX / 4)
        return cr_err(e, CR_ERR_ARG, "workspace: max_bag_ids %lld, expected 1 to %d",
                      (long long)max_bag_ids, INT32_MAX / 4);
    cr_status st = CR_OK;
    cr_ranker_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return cr_err(e, CR_ERR_NOMEM, "out of memory allocating a workspace");
    ws->max_B = max_B;
    ws->train = train != 0;
    ws->max_bag_ids = max_bag_ids;
    ws->off_gate = calloc((size_t)K, sizeof(size_t));
    ws->off_mix = calloc((size_t)K, sizeof(size_t));
    ws->off_tower = calloc((size_t)K, sizeof(size_t));
    if (!ws->off_gate || !ws->off_mix || !ws->off_tower) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory allocating a workspace");
        goto fail;
    }
    /* One slab for every activation; blocks start on cache lines. */
    size_t B = (size_t)max_B, n = 0;
    ws->off_x = n;
    n += cr_round16(B * m->C_in);
    ws->off_trunk = n;
    n += cr_round16(B * (cr_is_moe(m) ? cr_experts_act_width(&m->experts)
                                      : cr_mlp_act_width(&m->bottom)));
    for (int k = 0; k < K; k++) {
        if (cr_is_moe(m)) {
            ws->off_gate[k] = n;
            n += cr_round16(B * m->S);
            ws->off_mix[k] = n;
            n += cr_round16(B * m->experts.dims[m->experts.n_layers - 1]);
        }
        ws->off_tower[k] = n;
        n += cr_round16(B * cr_mlp_act_width(&m->towers[k]));
    }
    ws->acts_n = n;
    ws->acts = cr_alloc_e(n * sizeof(float), e, "activations");
    ws->out = cr_alloc_e((size_t)m->cfg.n_heads * B * sizeof(float), e, "head outputs");
    ws->ids = cr_alloc_e((size_t)(m->n_cat > 0 ? m->n_cat : 1) * B * sizeof(int32_t), e,
                         "categorical ids");
    ws->gate_logits = cr_alloc_e(B * (size_t)(m->S > 0 ? m->S * K : 1) * sizeof(float), e,
                                 "gate logits");
    if (!ws->acts || !ws->out || !ws->ids || !ws->gate_logits) {
        st = CR_ERR_NOMEM;
        goto fail;
    }
    if (ws->train && (st = cr_ws_alloc_train(m, ws, e)) != CR_OK) goto fail;
    *out = ws;
    return CR_OK;
fail:
    cr_ranker_ws_free(ws);
    return st;
}

void cr_ranker_ws_free(cr_ranker_ws *ws) {
    if (!ws) return;
    free(ws->off_gate);
    free(ws->off_mix);
    free(ws->off_tower);
    cr_free(ws->acts);
    cr_free(ws->gate_logits);
    cr_free(ws->ids);
    cr_free(ws->out);
    cr_free(ws->dacts);
    cr_free(ws->dpre);
    cr_free(ws->dout);
    cr_free(ws->grads);
    if (ws->sgrads) {
        for (int t = 0; t < ws->n_sgrads; t++) cr_sparse_grad_free(&ws->sgrads[t]);
        free(ws->sgrads);
    }
    cr_free(ws->emb_rows);
    cr_free(ws->emb_vals);
    cr_free(ws->emb_scratch);
    cr_free(ws->merge_rows);
    cr_free(ws->merge_vals);
    free(ws);
}

/* ---- forward -------------------------------------------------------------------- */

float *cr_ranker_tower_in(const cr_ranker *m, const cr_ranker_ws *ws, float *base, int k,
                          int *ld) {
    if (cr_is_moe(m)) {
        *ld = m->experts.dims[m->experts.n_layers - 1];
        return base + ws->off_mix[k];
    }
    if (m->bottom.n_layers > 0) {
        *ld = cr_mlp_out_dim(&m->bottom);
        return cr_mlp_out(&m->bottom, base + ws->off_trunk, ws->max_B);
    }
    *ld = m->C_in; /* no bottom: every tower reads x */
    return base + ws->off_x;
}

float *cr_ranker_head_in(const cr_ranker *m, const cr_ranker_ws *ws, float *base, int h,
                         int *ld) {
    int k = m->cfg.heads[h].tower;
    const cr_mlp *t = &m->towers[k];
    if (t->n_layers == 0) return cr_ranker_tower_in(m, ws, base, k, ld);
    *ld = cr_mlp_out_dim(t);
    return cr_mlp_out(t, base + ws->off_tower[k], ws->max_B);
}

/* Bad ids would read outside a table, so every id and bag offset is checked
 * here (a few comparisons per id, nothing next to the GEMMs). Cat ids are
 * gathered from the batch's (B, n_cat) rows into one contiguous column per
 * slot, the layout the embedding kernels take; backward reuses them. */
static cr_status cr_check_batch(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                                cr_error *e) {
    if (b->B < 1 || b->B > ws->max_B)
        return cr_err(e, CR_ERR_ARG, "batch of %d rows, expected 1 to the workspace's %d",
                      b->B, ws->max_B);
    if (b->n_cat != m->n_cat || b->n_multi != m->n_multi || b->n_dense != m->n_dense)
        return cr_err(e, CR_ERR_MISMATCH,
                      "batch has %d categorical, %d multi and %d dense features; the model "
                      "expects %d, %d and %d",
                      b->n_cat, b->n_multi, b->n_dense, m->n_cat, m->n_multi, m->n_dense);
    const int B = b->B;
    for (int i = 0; i < m->n_cat; i++) {
        int64_t rows = m->table_rows[m->cat_table[i]];
        int32_t *col = ws->ids + (size_t)i * ws->max_B;
        for (int r = 0; r < B; r++) {
            int32_t id = b->cat[(size_t)r * m->n_cat + i];
            if (id < 0 || id >= rows)
                return cr_err(e, CR_ERR_ARG,
                              "batch row %d: categorical slot %d has id %d, outside its "
                              "table of %lld rows",
                              r, i, (int)id, (long long)rows);
            col[r] = id;
        }
    }
    for (int i = 0; i < m->n_multi; i++) {
        int64_t rows = m->table_rows[m->multi_table[i]];
        const int64_t *off = b->bag_off[i];
        const int32_t *ids = b->bag_ids[i];
        if (off[0] < 0)
            return cr_err(e, CR_ERR_ARG, "batch: multi slot %d starts at offset %lld", i,
                          (long long)off[0]);
        for (int r = 0; r < B; r++) {
            if (off[r + 1] < off[r])
                return cr_err(e, CR_ERR_ARG,
                              "batch row %d: multi slot %d has offsets %lld > %lld (must not "
                              "decrease)",
                              r, i, (long long)off[r], (long long)off[r + 1]);
            for (int64_t j = off[r]; j < off[r + 1]; j++)
                if (ids[j] < 0 || ids[j] >= rows)
                    return cr_err(e, CR_ERR_ARG,
                                  "batch row %d: multi slot %d has id %d, outside its table "
                                  "of %lld rows",
                                  r, i, (int)ids[j], (long long)rows);
        }
    }
    return CR_OK;
}

/* Rows r0 .. r0+n-1 of the forward, every stage: each block of ws->acts
 * is (max_B, width) row-major, so a row range is a pointer offset per block
 * and ranges write disjoint memory. */
static void cr_ranker_forward_range(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                                    int r0, int n) {
    const int B = b->B, C = m->C_in, cap = ws->max_B;
    float *P = m->params.data, *T = m->tables.data;
    float *x = ws->acts + ws->off_x + (size_t)r0 * C;

    /* An inference workspace promises batch-independent scores: a row's
     * predictions are the same bits whatever else is in its batch (and
     * whatever the batch size), which BLAS and the small-matrix GEMM path
     * do not give. Training keeps the fastest product. */
    const int rows = !ws->train;
    /* the weights packed once for scoring, when the model has them (the
     * same bits as the rows path, without repacking on every call) */
    const cr_nn_packed *pk = rows ? m->packed : NULL;
    const cr_ptable *pt = &m->params;

    /* x = [cat embeddings | pooled bags | dense], each written in place */
    for (int i = 0; i < m->n_cat; i++) {
        int t = m->cat_table[i];
        cr_embedding_forward(x + m->cat_col[i], ws->ids + (size_t)i * cap + r0,
                             cr_ptable_ptr(&m->tables, T, m->table_param[t]), n,
                             m->table_dim[t], C);
    }
    for (int i = 0; i < m->n_multi; i++) {
        int t = m->multi_table[i];
        cr_bag_forward(x + m->multi_col[i], b->bag_off[i] + r0, b->bag_ids[i],
                       cr_ptable_ptr(&m->tables, T, m->table_param[t]), n, m->table_dim[t], C,
                       m->multi_pool[i]);
    }
    for (int r = 0; r < n && m->n_dense > 0; r++)
        memcpy(x + (size_t)r * C + m->dense_col, b->dense + (size_t)(r0 + r) * m->n_dense,
               (size_t)m->n_dense * sizeof(float));

    if (!cr_is_moe(m)) {
        cr_mlp_forward(&m->bottom, pt, P, ws->acts + ws->off_trunk, x, C, n, cap, rows, pk, r0);
    } else {
        const cr_experts *X = &m->experts;
        const int S = m->S, E = X->E, He = X->dims[X->n_layers - 1];
        cr_experts_forward(X, pt, P, ws->acts + ws->off_trunk, x, C, n, cap, rows, pk, r0);
        const float *ex = cr_experts_out(X, ws->acts + ws->off_trunk, cap) + (size_t)r0 * E * He;
        const int KS = m->K * S;
        const float *gates = pk ? m->gates_packed : NULL;
        float *gall = ws->gate_logits + (size_t)r0 * KS;
        if (gates) {
            /* (n, K*S) is (n*K, S): every gate's softmax in one call */
            cr_linear_forward_packed(gall, x, gates, gates + cr_linear_pack_floats(KS, C), n, C,
                                     KS, C, KS, 0);
            cr_softmax_forward(gall, gall, n * m->K, S);
        }
        for (int k = 0; k < m->K; k++) {
            /* gate_k = softmax(x Wg_k^T + bg_k), mix_k = sum_s gate_k[s] expert[sel_k[s]] */
            float *g = ws->acts + ws->off_gate[k] + (size_t)r0 * S;
            if (gates) {
                for (int r = 0; r < n; r++)
                    for (int j = 0; j < S; j++)
                        g[(size_t)r * S + j] = gall[(size_t)r * KS + (size_t)k * S + j];
            } else {
                float *gl = ws->gate_logits + (size_t)r0 * S;
                cr_nn_linear(pk, rows, pt, P, m->gate_w[k], m->gate_b[k], 0, gl, x, n, C, S, C,
                             S, 0);
                cr_softmax_forward(g, gl, n, S);
            }
            cr_moe_mix_forward(ws->acts + ws->off_mix[k] + (size_t)r0 * He, g, ex,
                               m->gate_sel ? m->gate_sel + (size_t)k * S : NULL, n, S, E, He);
        }
    }
    for (int k = 0; k < m->K; k++) {
        int ld;
        const float *tin = cr_ranker_tower_in(m, ws, ws->acts, k, &ld) + (size_t)r0 * ld;
        cr_mlp_forward(&m->towers[k], pt, P, ws->acts + ws->off_tower[k], tin, ld, n, cap, rows,
                       pk, r0);
    }
    for (int h = 0; h < m->cfg.n_heads; h++) {
        int ld;
        const float *hin = cr_ranker_head_in(m, ws, ws->acts, h, &ld) + (size_t)r0 * ld;
        /* one output column: out row h is (B) with stride 1 */
        cr_nn_linear(pk, rows, pt, P, m->head_w[h], m->head_b[h], 0,
                     ws->out + (size_t)h * B + r0, hin, n, ld, 1, ld, 1, 0);
    }
}

/* Rows per thread below which an inference forward stays in one piece. */
#define CR_FWD_SPLIT_MIN_ROWS 64

cr_status cr_ranker_forward(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                            cr_error *e) {
    CR_TRY(cr_check_batch(m, ws, b, e));
    const int B = b->B;
    ws->B = B;
    int nt = cr_get_threads();
    /* Inference on several threads splits the batch by rows, each thread
     * running the whole network on its rows with one-thread kernels: one
     * fork per call instead of one per layer, and no layer too narrow to
     * share. Rows are batch-independent, so the split changes no bit.
     * Training keeps threads inside each kernel (its backward needs
     * whole-batch reductions in a fixed order). */
    if (ws->train || nt < 2 || B < nt * CR_FWD_SPLIT_MIN_ROWS) {
        cr_ranker_forward_range(m, ws, b, 0, B);
        return CR_OK;
    }
    /* chunks in whole register tiles (12 rows) where the batch allows */
    int per = ((B + nt - 1) / nt + 11) / 12 * 12, isa = cr_thread_isa();
#ifdef _OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(nt)
#endif
    for (int t = 0; t < nt; t++) {
        int r0 = t * per, n = B - r0 < per ? B - r0 : per;
        if (n <= 0) continue;
        cr_set_threads(1), cr_set_thread_isa(isa); /* one thread, the call's set (per task) */
        cr_ranker_forward_range(m, ws, b, r0, n);
    }
    return CR_OK;
}

void cr_ranker_predict(const cr_ranker *m, const cr_ranker_ws *ws, float *pred) {
    const size_t B = (size_t)ws->B;
    for (int h = 0; h < m->cfg.n_heads; h++) {
        const float *o = ws->out + h * B;
        if (m->cfg.heads[h].kind == CR_HEAD_BINARY)
            cr_sigmoid_forward(pred + h * B, o, B);
        else
            memcpy(pred + h * B, o, B * sizeof(float));
    }
}
