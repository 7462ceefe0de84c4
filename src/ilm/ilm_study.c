/*
 * ilm_study.c - the Item-Language Model study: the recipe (YAML), the run
 * (CF embeddings once, then per seed and variant phase 1, phase 2 and the
 * evaluation, each into its own directory) and the table of means with
 * 95% intervals over seeds. The JSON and HTML writers are in
 * ilm_report.c. Progress goes through a callback; nothing prints.
 */
#include "ilm_study.h"

#include "../core/yaml.h"
#include "../rank/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const cr_ilm_vnames[CR_ILM_NVAR] = {"mlp", "ilm-rand", "ilm", "it", "it+ii",
                                                       "it+ui"};

const char *cr_ilm_variant_name(int v) { return v >= 0 && v < CR_ILM_NVAR ? cr_ilm_vnames[v] : "?"; }

int cr_ilm_variant_parse(const char *s) {
    for (int v = 0; v < CR_ILM_NVAR; v++)
        if (!strcmp(s, cr_ilm_vnames[v])) return v;
    return -1;
}

void cr_ilm_study_cfg_default(cr_ilm_study_cfg *c) {
    memset(c, 0, sizeof *c);
    cr_mf_cfg_default(&c->mf);
    cr_phase1_opts_default(&c->p1);
    cr_phase2_opts_default(&c->p2);
    cr_ilm_eval_opts_default(&c->ev);
    c->n_seeds = 2;
    c->seeds[0] = 1, c->seeds[1] = 2;
    c->n_var = CR_ILM_NVAR;
    for (int v = 0; v < CR_ILM_NVAR; v++) c->variants[v] = v;
}

/* A path relative to the recipe's directory. */
static void cr_ilm_rel(char *out, const char *base, const char *p) {
    char tmp[CR_ILM_PATH];
    if (!p[0] || p[0] == '/' || !base || !base[0]) snprintf(tmp, sizeof tmp, "%s", p);
    else snprintf(tmp, sizeof tmp, "%s/%s", base, p);
    memcpy(out, tmp, CR_ILM_PATH);
}

static cr_status cr_ilm_parse_root(cr_ilm_study_cfg *c, const cr_yaml_node *root,
                                   const char *base, cr_error *e) {
    static const char *const keys[] = {"data", "lm", "tokenizer", "lm_text", "seeds", "variants",
                                       "mf", "phase1", "phase2", "eval", NULL};
    CR_TRY(cr_yaml_check_keys(root, keys, "", e));
    char tmp[CR_ILM_PATH];
    CR_TRY(cr_yaml_str(root, "data", "", 1, "", tmp, sizeof tmp, e));
    cr_ilm_rel(c->data, base, tmp);
    CR_TRY(cr_yaml_str(root, "lm", "", 1, "", tmp, sizeof tmp, e));
    cr_ilm_rel(c->lm, base, tmp);
    CR_TRY(cr_yaml_str(root, "tokenizer", "", 1, "", tmp, sizeof tmp, e));
    cr_ilm_rel(c->tokenizer, base, tmp);
    CR_TRY(cr_yaml_str(root, "lm_text", "", 0, "", tmp, sizeof tmp, e));
    cr_ilm_rel(c->lm_text, base, tmp);
    int64_t seeds[CR_ILM_MAX_SEEDS];
    int n = 0;
    CR_TRY(cr_yaml_ints(root, "seeds", "", 0, 0, INT64_MAX, seeds, CR_ILM_MAX_SEEDS, &n, e));
    if (n) {
        c->n_seeds = n;
        for (int i = 0; i < n; i++) c->seeds[i] = (uint64_t)seeds[i];
    }
    char vn[CR_ILM_NVAR][16];
    CR_TRY(cr_yaml_strs(root, "variants", "", 0, &vn[0][0], 16, CR_ILM_NVAR, &n, e));
    if (n) {
        c->n_var = n;
        for (int i = 0; i < n; i++)
            if ((c->variants[i] = cr_ilm_variant_parse(vn[i])) < 0)
                return cr_yaml_err(e, CR_ERR_CONFIG, cr_yaml_get(root, "variants"), "variants",
                                   "unknown variant '%s'; expected mlp, ilm-rand, ilm, it, "
                                   "it+ii or it+ui", vn[i]);
    }
    const cr_yaml_node *m = cr_yaml_get(root, "mf");
    static const char *const mk[] = {"dim", "epochs", "lr", "seed", NULL};
    CR_TRY(cr_yaml_check_keys(m, mk, "mf", e));
    double x;
    int64_t s64;
    CR_TRY(cr_yaml_int32(m, "dim", "mf", 0, c->mf.dim, 1, 4096, &c->mf.dim, e));
    CR_TRY(cr_yaml_int32(m, "epochs", "mf", 0, c->mf.epochs, 0, 100000, &c->mf.epochs, e));
    CR_TRY(cr_yaml_double(m, "lr", "mf", 0, c->mf.lr, 1e-9, 10, &x, e));
    c->mf.lr = (float)x;
    CR_TRY(cr_yaml_int(m, "seed", "mf", 0, (int64_t)c->mf.seed, 0, INT64_MAX, &s64, e));
    c->mf.seed = (uint64_t)s64;
    const cr_yaml_node *p = cr_yaml_get(root, "phase1");
    static const char *const pk[] = {"steps", "batch", "queries", "layers", "width", "heads",
                                     "lr", "warmup", "bpe_vocab", "held", NULL};
    cr_phase1_opts *o1 = &c->p1;
    CR_TRY(cr_yaml_check_keys(p, pk, "phase1", e));
    CR_TRY(cr_yaml_int32(p, "steps", "phase1", 0, o1->steps, 1, 10000000, &o1->steps, e));
    CR_TRY(cr_yaml_int32(p, "batch", "phase1", 0, o1->batch, 2, 4096, &o1->batch, e));
    CR_TRY(cr_yaml_int32(p, "queries", "phase1", 0, o1->model.nq, 1, 256, &o1->model.nq, e));
    CR_TRY(cr_yaml_int32(p, "layers", "phase1", 0, o1->model.layers, 1, 64, &o1->model.layers, e));
    CR_TRY(cr_yaml_int32(p, "width", "phase1", 0, o1->model.width, 2, 8192, &o1->model.width, e));
    CR_TRY(cr_yaml_int32(p, "heads", "phase1", 0, o1->model.heads, 1, 256, &o1->model.heads, e));
    o1->model.ffn = 4 * o1->model.width;
    /* the optimizer keys a phase's section accepts */
    static const char *const ok[] = {"lr", "warmup", NULL};
    CR_TRY(cr_optim_cfg_parse(&o1->optim, p, "phase1", ok, e));
    CR_TRY(cr_yaml_int32(p, "bpe_vocab", "phase1", 0, o1->bpe_vocab, 260, 1 << 20, &o1->bpe_vocab, e));
    CR_TRY(cr_yaml_double(p, "held", "phase1", 0, o1->held_frac, 1e-6, 0.89, &o1->held_frac, e));
    const cr_yaml_node *q = cr_yaml_get(root, "phase2");
    static const char *const qk[] = {"steps", "batch", "hist", "max_seq", "lr", "warmup",
                                     "mlp_hidden", NULL};
    cr_phase2_opts *o2 = &c->p2;
    CR_TRY(cr_yaml_check_keys(q, qk, "phase2", e));
    CR_TRY(cr_yaml_int32(q, "steps", "phase2", 0, o2->steps, 0, 10000000, &o2->steps, e));
    CR_TRY(cr_yaml_int32(q, "batch", "phase2", 0, o2->batch, 1, 4096, &o2->batch, e));
    CR_TRY(cr_yaml_int32(q, "hist", "phase2", 0, o2->hist, 1, 64, &o2->hist, e));
    CR_TRY(cr_yaml_int32(q, "max_seq", "phase2", 0, o2->max_seq, 8, 65536, &o2->max_seq, e));
    CR_TRY(cr_optim_cfg_parse(&o2->optim, q, "phase2", ok, e));
    CR_TRY(cr_yaml_int32(q, "mlp_hidden", "phase2", 0, o2->mlp_hidden, 1, 65536, &o2->mlp_hidden, e));
    const cr_yaml_node *v = cr_yaml_get(root, "eval");
    static const char *const vk[] = {"users", "negatives", "items", "batch", "seed", NULL};
    cr_ilm_eval_opts *ev = &c->ev;
    CR_TRY(cr_yaml_check_keys(v, vk, "eval", e));
    CR_TRY(cr_yaml_int32(v, "users", "eval", 0, ev->users, 0, 100000000, &ev->users, e));
    CR_TRY(cr_yaml_int32(v, "negatives", "eval", 0, ev->negatives, 1, 100000, &ev->negatives, e));
    CR_TRY(cr_yaml_int32(v, "items", "eval", 0, ev->items, 0, 100000000, &ev->items, e));
    CR_TRY(cr_yaml_int32(v, "batch", "eval", 0, ev->batch, 1, 4096, &ev->batch, e));
    CR_TRY(cr_yaml_int(v, "seed", "eval", 0, (int64_t)ev->seed, 0, INT64_MAX, &s64, e));
    ev->seed = (uint64_t)s64;
    /* the same prompts at evaluation as in training; the MLP writes as many
     * soft tokens per entity as the Q-Former has queries */
    ev->hist = o2->hist, ev->max_seq = o2->max_seq;
    o2->mlp_nq = o1->model.nq;
    o2->held_frac = o1->held_frac;
    /* four reports a run: first and last are then means over a quarter each */
    o1->log_every = o1->steps / 4 > 0 ? o1->steps / 4 : 1;
    o2->log_every = o2->steps / 4 > 0 ? o2->steps / 4 : 1;
    return CR_OK;
}

cr_status cr_ilm_study_parse(cr_ilm_study_cfg *c, const char *text, const char *name,
                             const char *base_dir, cr_error *e) {
    cr_ilm_study_cfg_default(c);
    cr_yaml_doc *doc;
    CR_TRY(cr_yaml_load_string(&doc, text, name, e));
    cr_status s = cr_ilm_parse_root(c, cr_yaml_root(doc), base_dir, e);
    cr_yaml_free(doc);
    return s;
}

cr_status cr_ilm_study_load(cr_ilm_study_cfg *c, const char *path, cr_error *e) {
    char *text, base[CR_ILM_PATH];
    size_t len;
    CR_TRY(cr_read_file(path, &text, &len, e));
    snprintf(base, sizeof base, "%s", path);
    char *slash = strrchr(base, '/');
    if (slash) *slash = '\0';
    else snprintf(base, sizeof base, ".");
    cr_status s = cr_ilm_study_parse(c, text, path, base, e);
    cr_free(text);
    return s;
}

/* ---- the run -------------------------------------------------------------------------------- */
static void cr_ilm_log(void (*log)(void *, const char *), void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cr_ilm_log(void (*log)(void *, const char *), void *ctx, const char *fmt, ...) {
    if (!log) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log(ctx, buf);
}

/* CF embeddings once for the whole study: every variant reads the same vectors. */
static cr_status study_mf(const cr_ilm_study_cfg *c, const char *path, double *loss,
                          cr_error *e) {
    char rp[CR_ILM_PATH + 16];
    snprintf(rp, sizeof rp, "%s/ratings.csv", c->data);
    cr_interactions x;
    cr_loo_split s;
    cr_mf m;
    CR_TRY(cr_mf_fit_file(rp, path, &c->mf, NULL, &x, &s, &m, loss, e));
    cr_mf_free(&m);
    cr_loo_split_free(&s);
    cr_interactions_free(&x);
    return CR_OK;
}

static cr_status cr_ilm_one(const cr_ilm_study_cfg *c, const char *out_dir, const char *mf,
                            int v, uint64_t seed, cr_ilm_run_result *r, cr_error *e) {
    char dir[CR_ILM_PATH + 64], p1dir[CR_ILM_PATH + 80], p2dir[CR_ILM_PATH + 80];
    char enc[CR_ILM_PATH + 128];
    snprintf(dir, sizeof dir, "%s/seed%llu/%s", out_dir, (unsigned long long)seed,
             cr_ilm_variant_name(v));
    snprintf(p1dir, sizeof p1dir, "%s/phase1", dir);
    snprintf(p2dir, sizeof p2dir, "%s/phase2", dir);
    snprintf(enc, sizeof enc, "%s/qformer.safetensors", p1dir);
    memset(r, 0, sizeof *r);
    r->variant = v, r->seed = seed;
    if (v != CR_ILM_V_MLP) {
        cr_phase1_opts o1 = c->p1;
        o1.mf_path = mf, o1.data_dir = c->data, o1.out_dir = p1dir, o1.seed = seed;
        o1.progress = NULL;
        static const float w[CR_ILM_NVAR][CR_P1_NLOSS] = {
            {0}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, {1, 1, 1, 0, 0}, {1, 1, 1, 1, 0}, {1, 1, 1, 0, 1}};
        memcpy(o1.weight, w[v], sizeof o1.weight);
        if (v == CR_ILM_V_RAND) o1.steps = 0;
        CR_TRY(cr_phase1_run(&o1, &r->p1, e));
    }
    cr_phase2_opts o2 = c->p2;
    o2.encoder = v == CR_ILM_V_MLP ? NULL : enc;
    o2.lm = c->lm, o2.tokenizer = c->tokenizer, o2.mf_path = mf, o2.data_dir = c->data;
    o2.out_dir = p2dir, o2.lm_text = c->lm_text[0] ? c->lm_text : NULL, o2.seed = seed;
    o2.progress = NULL;
    CR_TRY(cr_phase2_run(&o2, &r->p2, e));
    return cr_ilm_eval_dir(p2dir, &c->ev, &r->ev, e);
}

cr_status cr_ilm_study_run(const cr_ilm_study_cfg *c, const char *out_dir,
                           void (*log)(void *ctx, const char *line), void *ctx,
                           cr_ilm_study_result *r, cr_error *e) {
    memset(r, 0, sizeof *r);
    double t0 = cr_now();
    if (c->n_seeds < 1 || c->n_var < 1)
        return cr_err(e, CR_ERR_ARG, "ILM study: at least one seed and one variant");
    CR_TRY(cr_mkdirs(out_dir, e));
    char mf[CR_ILM_PATH + 32];
    snprintf(mf, sizeof mf, "%s/mf.safetensors", out_dir);
    cr_ilm_log(log, ctx, "CF embeddings: BPR dim %d, %d epochs -> %s", c->mf.dim, c->mf.epochs, mf);
    CR_TRY(study_mf(c, mf, &r->mf_loss, e));
    r->runs = cr_alloc(sizeof *r->runs * (size_t)c->n_seeds * c->n_var);
    if (!r->runs) return cr_err(e, CR_ERR_NOMEM, "ILM study: out of memory");
    for (int si = 0; si < c->n_seeds; si++)
        for (int vi = 0; vi < c->n_var; vi++) {
            int v = c->variants[vi];
            double t1 = cr_now();
            cr_ilm_run_result *x = &r->runs[r->n];
            cr_status s = cr_ilm_one(c, out_dir, mf, v, c->seeds[si], x, e);
            if (s != CR_OK) {
                cr_err_prefix(e, "seed %llu, variant %s", (unsigned long long)c->seeds[si],
                              cr_ilm_variant_name(v));
                return s;
            }
            r->n++;
            cr_ilm_log(log, ctx, "seed %llu %-8s  phase2 loss %.3f -> %.3f  HR@10 %.4f  "
                       "NDCG@10 %.4f  desc ppl %.1f  genre %.3f  (%.0fs)",
                       (unsigned long long)c->seeds[si], cr_ilm_variant_name(v),
                       x->p2.first_loss, x->p2.last_loss, x->ev.lm.hr10, x->ev.lm.ndcg10,
                       x->ev.desc_ppl, x->ev.genre_acc, cr_now() - t1);
        }
    r->seconds = cr_now() - t0;
    return cr_ilm_study_write(c, r, out_dir, e);
}

void cr_ilm_study_result_free(cr_ilm_study_result *r) {
    cr_free(r->runs);
    memset(r, 0, sizeof *r);
}

/* ---- the table ------------------------------------------------------------------------------- */
cr_status cr_ilm_study_table(const cr_ilm_study_cfg *c, const cr_ilm_study_result *r,
                             char **text, cr_error *e) {
    size_t cap = 8192 + 512 * (size_t)c->n_var;
    char *t = cr_alloc(cap);
    if (!t) return cr_err(e, CR_ERR_NOMEM, "ILM study: out of memory");
    size_t n = 0;
    const int per = r->n ? r->runs[0].ev.per : 0;
    n += (size_t)snprintf(t + n, cap - n, "mean [95%% CI] over %d seed(s) (desc ppl: geometric "
                          "mean, interval on the log scale); next item among %d "
                          "candidates (%d users), ranked by title likelihood\n", c->n_seeds, per,
                          r->n ? (int)r->runs[0].ev.lm.users : 0);
    n += (size_t)snprintf(t + n, cap - n, "%-9s %-22s %-22s %-20s %-20s\n", "variant", "HR@10",
                          "NDCG@10", "desc ppl", "genre acc");
    double x[4][CR_ILM_MAX_SEEDS];
    for (int vi = 0; vi < c->n_var; vi++) {
        int k = 0;
        for (int i = 0; i < r->n; i++)
            if (r->runs[i].variant == c->variants[vi]) {
                const cr_ilm_eval_result *ev = &r->runs[i].ev;
                x[0][k] = ev->lm.hr10, x[1][k] = ev->lm.ndcg10;
                x[2][k] = ev->desc_ppl, x[3][k] = ev->genre_acc;
                k++;
            }
        n += (size_t)snprintf(t + n, cap - n, "%-9s", cr_ilm_variant_name(c->variants[vi]));
        for (int m = 0; m < 4; m++) {
            cr_mean_ci ci; /* the perplexity's interval on the log scale: it stays positive */
            if (m == 2) cr_mean_ci_log_of(x[m], k, 0.95, &ci);
            else cr_mean_ci_of(x[m], k, 0.95, &ci);
            const char *f = m == 2 ? " %7.1f [%6.1f,%6.1f]" : " %6.4f [%6.4f,%6.4f]";
            n += (size_t)snprintf(t + n, cap - n, f, ci.mean, ci.lo, ci.hi);
        }
        n += (size_t)snprintf(t + n, cap - n, "\n");
    }
    if (r->n) {
        const cr_ilm_eval_result *ev = &r->runs[0].ev;
        n += (size_t)snprintf(t + n, cap - n, "%-9s  HR@10 %.4f  NDCG@10 %.4f (same candidates)\n"
                              "%-9s  HR@10 %.4f  NDCG@10 %.4f\n%-9s  HR@10 %.4f (chance)\n",
                              "bpr", ev->bpr.hr10, ev->bpr.ndcg10, "popular", ev->pop.hr10,
                              ev->pop.ndcg10, "random", per ? 10.0 / per : 0.0);
    }
    *text = t;
    return CR_OK;
}
