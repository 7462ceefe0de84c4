/*
 * test_ilm_eval.c - the Item-Language Model's evaluation, study and chat:
 * HR/NDCG on hand-made score lists (ties count against), fixed candidate
 * lists, fuzzy title matching, then a tiny end-to-end study on a synthetic
 * MovieLens-shaped set with a random LM (results.json names every variant,
 * the LM is unchanged in every run, report.html is self-contained), and a
 * scripted chat through a pipe whose answers name catalogue items; then
 * the public entry points (mf, both phases, eval, study, chat loop) on the
 * same set.
 */
#include "util/testutil.h"

#include "../src/ilm/chat.h"
#include "../src/ilm/ilm_eval.h"
#include "../src/ilm/ilm_study.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_rank_metrics(void **state) {
    (void)state;
    /* three users, four candidates, column 0 the held-out item:
     *   u0: best            rank 0: HR@5 1, NDCG 1
     *   u1: one tie above   rank 2 (the tie counts against): NDCG 1/log2(4) = 0.5
     *   u2: NaN held-out    rank 3 (never ranked above anything): NDCG 1/log2(5) */
    double s[12] = {0.9, 0.1, 0.2, 0.3, 0.5, 0.5, 0.7, 0.1, NAN, 0.1, 0.2, 0.3};
    cr_next_item_metrics m;
    cr_ilm_rank_metrics(s, 3, 4, &m);
    assert_int_equal(m.users, 3);
    assert_true(fabs(m.hr5 - 1.0) < 1e-12 && fabs(m.hr10 - 1.0) < 1e-12);
    double nd = (1 + 0.5 + 1 / log2(5.0)) / 3;
    assert_true(fabs(m.ndcg5 - nd) < 1e-12 && fabs(m.ndcg10 - nd) < 1e-12);
    /* 12 candidates: a held-out item ranked 6th is in the top 10, not the top 5 */
    double t[12] = {0.5, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    cr_ilm_rank_metrics(t, 1, 12, &m);
    assert_true(m.hr5 == 0 && m.hr10 == 1 && m.ndcg5 == 0);
    assert_true(fabs(m.ndcg10 - 1 / log2(7.0)) < 1e-12);
}

/* ---- a synthetic MovieLens-shaped set and a random LM ------------------------------------ */
enum { NM = 40, NUS = 24, PER_USER = 10 };
static const char *const genres[] = {"Action", "Comedy", "Drama", "Romance", "Thriller"};

static void title_of(int i, char *buf, size_t n) {
    static const char *const known[] = {"Toy Story (1995)", "\"Matrix, The (1999)\"", "Heat (1995)",
                                        "Sense and Sensibility (1995)"};
    static const char *const words[] = {"River", "Night", "Garden", "Stone", "Winter", "Harbor",
                                        "Silver", "Castle", "Meadow", "Thunder"};
    if (i < 4) snprintf(buf, n, "%s", known[i]);
    else snprintf(buf, n, "%s %s (%d)", words[i % 10], words[(i / 10 + 3) % 10], 1960 + i);
}

static void write_data(const char *dir) {
    char p[512], t[128];
    snprintf(p, sizeof p, "%s/movies.csv", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "movieId,title,genres\n");
    for (int i = 0; i < NM; i++) {
        title_of(i, t, sizeof t);
        fprintf(f, "%d,%s,%s|%s\n", i + 1, t, genres[i % 5], genres[(i / 5) % 5]);
    }
    fclose(f);
    snprintf(p, sizeof p, "%s/movies-extra.tsv", dir);
    f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "movieId\tdirector\tmpaa_rating\n");
    for (int i = 0; i < NM; i += 2) fprintf(f, "%d\tDirector %c\tPG\n", i + 1, 'A' + i % 7);
    fclose(f);
    snprintf(p, sizeof p, "%s/ratings.csv", dir);
    f = fopen(p, "w");
    assert_non_null(f);
    fprintf(f, "userId,movieId,rating,timestamp\n");
    for (int u = 0; u < NUS; u++) /* users walk through a block of movies in order */
        for (int k = 0; k < PER_USER; k++)
            fprintf(f, "%d,%d,%d.0,%d\n", u + 1, (u * 3 + k * (1 + u % 3)) % NM + 1, 3 + (u + k) % 3,
                    1000000 + u * 100 + k);
    fclose(f);
}

/* A BPE over the texts and a random Llama of width 16, saved under dir. */
static void write_lm(const char *dir) {
    cr_error e = {0};
    cr_bpe_trainer *tr;
    char t[128], p[512];
    assert_int_equal(cr_bpe_trainer_new(&tr, &e), CR_OK);
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < NM; i++) {
            title_of(i, t, sizeof t);
            char s[256];
            int n = snprintf(s, sizeof s, "The movie %s is described as: %s. %s, %s. Next they will "
                             "watch it.", t, t, genres[i % 5], genres[(i / 5) % 5]);
            assert_int_equal(cr_bpe_trainer_add(tr, s, (size_t)n, &e), CR_OK);
        }
    cr_bpe_train_opts o;
    cr_bpe_train_opts_default(&o);
    o.vocab_size = 400;
    snprintf(p, sizeof p, "%s/tok", dir);
    assert_int_equal(cr_bpe_trainer_fit(tr, &o, &e), CR_OK);
    assert_int_equal(cr_bpe_trainer_save(tr, p, &e), CR_OK);
    int V = cr_bpe_trainer_vocab_size(tr);
    cr_bpe_trainer_free(tr);
    cr_dec_cfg c = {.arch = CR_DEC_LLAMA, .dim = 16, .hidden_dim = 32, .n_layers = 1,
                    .n_heads = 2, .n_kv_heads = 2, .vocab = V, .max_seq = 160,
                    .norm_eps = 1e-5f, .tied = 1};
    cr_decoder d;
    cr_rng r;
    cr_rng_seed(&r, 1);
    assert_int_equal(cr_dec_create(&d, &c, &e), CR_OK);
    cr_dec_init(&d, &r);
    snprintf(p, sizeof p, "%s/lm.safetensors", dir);
    assert_int_equal(cr_dec_save(&d, p, &e), CR_OK);
    cr_dec_free(&d);
    snprintf(p, sizeof p, "%s/held.txt", dir);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 40; i++) fprintf(f, "The movie is described as a drama. Next they watch it.\n");
    fclose(f);
}

static int contains_catalogue_titles(const char *s, int exclude_below) {
    int n = 0;
    char t[128];
    for (int i = exclude_below; i < NM; i++) {
        title_of(i, t, sizeof t);
        if (t[0] == '"') { /* the CSV quoting is not part of the title */
            memmove(t, t + 1, strlen(t));
            t[strlen(t) - 1] = '\0';
        }
        n += strstr(s, t) != NULL;
    }
    return n;
}

/* The public entry points that build an ILM (crossrec.h), on the tiny set of
 * the study above with its settings: each step once, then its refusals. */
static void public_training(const char *dir, const cr_ilm_study_cfg *c) {
    char rp[512], mf[512], p1[512], enc[600], p2[512], lm[512], tok[512], cfg[512], st[512];
    snprintf(rp, sizeof rp, "%s/ratings.csv", dir);
    snprintf(mf, sizeof mf, "%s/pub_mf.safetensors", dir);
    cr_error e = {0};
    cr_ilm_mf_result mr;
    assert_int_equal(cr_ilm_mf(NULL, rp, mf, &c->mf, 4, &mr, &e), CR_OK);
    assert_true(mr.users > 0 && mr.items > 0 && isfinite(mr.loss));
    assert_int_equal(mr.bpr[1].users, mr.pop[1].users);
    assert_int_equal(cr_ilm_mf(NULL, rp, mf, &c->mf, 0, &mr, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "negatives"));
    assert_int_equal(cr_ilm_mf(NULL, NULL, mf, &c->mf, 4, &mr, &e), CR_ERR_ARG);

    cr_phase1_opts o1 = c->p1;
    snprintf(p1, sizeof p1, "%s/pub_p1", dir);
    o1.mf_path = mf, o1.data_dir = dir, o1.out_dir = p1, o1.progress = NULL;
    cr_phase1_result r1;
    assert_int_equal(cr_ilm_phase1(NULL, &o1, &r1, &e), CR_OK);
    assert_true(r1.items > 0 && r1.eval_n > 0);
    o1.batch = 1;
    assert_int_equal(cr_ilm_phase1(NULL, &o1, &r1, &e), CR_ERR_ARG);
    assert_int_equal(cr_ilm_phase1(NULL, NULL, &r1, &e), CR_ERR_ARG);

    cr_phase2_opts o2 = c->p2;
    snprintf(enc, sizeof enc, "%s/qformer.safetensors", p1);
    snprintf(p2, sizeof p2, "%s/pub_p2", dir);
    snprintf(lm, sizeof lm, "%s/lm.safetensors", dir);
    snprintf(tok, sizeof tok, "%s/tok", dir);
    o2.encoder = enc, o2.lm = lm, o2.tokenizer = tok, o2.mf_path = mf, o2.data_dir = dir;
    o2.out_dir = p2, o2.lm_text = NULL, o2.progress = NULL;
    cr_phase2_result r2;
    assert_int_equal(cr_ilm_phase2(NULL, &o2, &r2, &e), CR_OK);
    assert_true(r2.lm_hash_before == r2.lm_hash_after && r2.trainable > 0);
    o2.tokenizer = NULL;
    assert_int_equal(cr_ilm_phase2(NULL, &o2, &r2, &e), CR_ERR_ARG);

    cr_ilm_eval_opts eo = c->ev;
    eo.hist = 0; /* the directory's */
    cr_ilm_eval_result er;
    assert_int_equal(cr_ilm_eval(NULL, p2, &eo, &er, &e), CR_OK);
    assert_int_equal(er.lm.users, 5);
    assert_int_equal(er.per, 5);
    eo.negatives = 0;
    assert_int_equal(cr_ilm_eval(NULL, p2, &eo, &er, &e), CR_ERR_ARG);
    assert_int_equal(cr_ilm_eval(NULL, NULL, &c->ev, &er, &e), CR_ERR_ARG);

    snprintf(cfg, sizeof cfg, "%s/one.yaml", dir);
    FILE *f = fopen(cfg, "w");
    assert_non_null(f);
    fprintf(f, "data: %s\nlm: %s\ntokenizer: %s\nseeds: [1]\nvariants: [mlp]\n"
               "mf: {dim: 4, epochs: 2}\nphase2: {steps: 2, batch: 2, hist: 2, max_seq: 120, "
               "warmup: 1, mlp_hidden: 8}\neval: {users: 3, negatives: 2, items: 2, batch: 8}\n",
            dir, lm, tok);
    fclose(f);
    snprintf(st, sizeof st, "%s/pub_study", dir);
    cr_ctx_params cp;
    cr_ctx_params_init(&cp);
    cp.quiet = 1;
    cr_ctx *ctx = NULL;
    assert_int_equal(cr_ctx_new(&ctx, &cp, &e), CR_OK);
    char *table = NULL;
    double secs = -1;
    cr_status s = cr_ilm_study(ctx, cfg, st, &table, &secs, &e);
    if (s) fprintf(stderr, "cr_ilm_study: %s\n", e.msg);
    assert_int_equal(s, CR_OK);
    assert_non_null(strstr(table, "mlp"));
    assert_true(secs >= 0);
    cr_free(table);
    assert_int_equal(cr_ilm_study(ctx, NULL, st, &table, NULL, &e), CR_ERR_ARG);
    assert_null(table);
    assert_int_equal(cr_ilm_study(ctx, "no/such.yaml", st, NULL, NULL, &e), CR_ERR_IO);
    cr_ctx_free(ctx);
    char clk[16];
    cr_meter_clock(clk, sizeof clk, 75);
    assert_string_equal(clk, "1:15");

    /* the defaults and names the command prints in its --help */
    cr_mf_cfg mc;
    cr_mf_cfg_default(&mc);
    assert_int_equal(mc.dim, 32);
    cr_phase1_opts d1;
    cr_phase1_opts_default(&d1);
    assert_true(d1.steps > 0 && d1.model.nq > 0 && d1.weight[CR_P1_UI] == 1);
    cr_phase2_opts d2;
    cr_phase2_opts_default(&d2);
    assert_true(d2.steps > 0 && d2.task_w[CR_P2_SIMILAR] == 1);
    cr_ilm_eval_opts de;
    cr_ilm_eval_opts_default(&de);
    assert_true(de.negatives > 0 && de.use_test == 1);
    assert_string_equal(cr_p1_loss_name(CR_P1_ITG), "itg");
    assert_string_equal(cr_p1_loss_name(CR_P1_NLOSS), "?");
    assert_string_equal(cr_p2_task_name(CR_P2_NEXT), "next");
    float w[CR_P1_NLOSS];
    assert_int_equal(cr_p1_parse_losses("itc,ui", w, &e), CR_OK);
    assert_true(w[CR_P1_ITC] == 1 && w[CR_P1_UI] == 1 && w[CR_P1_ITM] == 0);
    assert_int_equal(cr_p1_parse_losses("itc,nope", w, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "nope"));
    assert_int_equal(cr_p1_parse_losses(NULL, w, &e), CR_ERR_ARG);
}

static void test_study_and_chat(void **state) {
    (void)state;
    char dir[256], cfg[4096], out[512], p[700];
    cr_test_tmpdir(dir, sizeof dir);
    write_data(dir);
    write_lm(dir);
    snprintf(cfg, sizeof cfg,
             "data: %s\nlm: %s/lm.safetensors\ntokenizer: %s/tok\nlm_text: %s/held.txt\n"
             "seeds: [1, 2]\n"
             "mf: {dim: 4, epochs: 3}\n"
             "phase1: {steps: 4, batch: 4, queries: 2, layers: 1, width: 8, heads: 2, warmup: 1,"
             " bpe_vocab: 300, held: 0.2}\n"
             "phase2: {steps: 3, batch: 2, hist: 2, max_seq: 120, warmup: 1, mlp_hidden: 8}\n"
             "eval: {users: 5, negatives: 4, items: 3, batch: 8}\n",
             dir, dir, dir, dir);
    cr_ilm_study_cfg c;
    cr_error e = {0};
    assert_int_equal(cr_ilm_study_parse(&c, cfg, "tiny.yaml", "", &e), CR_OK);
    assert_int_equal(c.n_var, CR_ILM_NVAR);
    assert_int_equal(c.p2.mlp_nq, 2);
    /* a typo is an error naming the key */
    cr_ilm_study_cfg bad;
    assert_int_equal(cr_ilm_study_parse(&bad, "data: x\nlm: y\ntokenizer: z\nphase2: {stpes: 3}\n",
                                        "bad.yaml", "", &e), CR_ERR_CONFIG);
    assert_non_null(strstr(e.msg, "stpes"));
    snprintf(out, sizeof out, "%s/study", dir);
    cr_ilm_study_result r;
    cr_status s = cr_ilm_study_run(&c, out, NULL, NULL, &r, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    assert_int_equal(r.n, 2 * CR_ILM_NVAR);
    for (int i = 0; i < r.n; i++) {
        assert_true(r.runs[i].p2.lm_hash_before == r.runs[i].p2.lm_hash_after);
        assert_true(r.runs[i].p2.lm_ppl_before == r.runs[i].p2.lm_ppl_after);
        assert_int_equal(r.runs[i].ev.lm.users, 5);
        assert_int_equal(r.runs[i].ev.per, 5);
        assert_true(isfinite(r.runs[i].ev.desc_ppl));
    }
    /* the same users and candidates for every variant: BPR agrees across runs */
    for (int i = 1; i < r.n; i++) assert_true(r.runs[i].ev.bpr.ndcg10 == r.runs[0].ev.bpr.ndcg10);
    char *js, *html;
    size_t n;
    snprintf(p, sizeof p, "%s/results.json", out);
    assert_int_equal(cr_read_file(p, &js, &n, &e), CR_OK);
    for (int v = 0; v < CR_ILM_NVAR; v++) {
        char k[64];
        snprintf(k, sizeof k, "\"name\": \"%s\"", cr_ilm_variant_name(v));
        assert_non_null(strstr(js, k));
    }
    assert_non_null(strstr(js, "\"unchanged_in_every_run\": true"));
    assert_non_null(strstr(js, "\"claim\": \"ilm > ilm-rand\""));
    /* two seeds: every finding says so instead of "significant" */
    assert_non_null(strstr(js, "\"verdict\": \"not enough seeds\""));
    assert_null(strstr(js, "\"verdict\": \"significant\""));
    assert_null(strstr(js, "\"verdict\": \"not significant\""));
    /* the perplexity's interval is on the log scale: positive, around the geometric mean */
    cJSON *jr = cJSON_Parse(js);
    assert_non_null(jr);
    const cJSON *var;
    int ppl_checked = 0;
    cJSON_ArrayForEach(var, cJSON_GetObjectItem(jr, "variants")) {
        const cJSON *pp = cJSON_GetObjectItem(cJSON_GetObjectItem(var, "summary"), "desc_ppl");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(pp, "scale")), "log");
        double mean = cJSON_GetNumberValue(cJSON_GetObjectItem(pp, "mean"));
        double lo = cJSON_GetNumberValue(cJSON_GetObjectItem(pp, "lo"));
        double hi = cJSON_GetNumberValue(cJSON_GetObjectItem(pp, "hi"));
        assert_true(lo > 0 && lo <= mean && mean <= hi);
        ppl_checked++;
    }
    assert_int_equal(ppl_checked, CR_ILM_NVAR);
    cJSON_Delete(jr);
    snprintf(p, sizeof p, "%s/report.html", out);
    assert_int_equal(cr_read_file(p, &html, &n, &e), CR_OK);
    assert_non_null(strstr(html, "<svg"));
    assert_non_null(strstr(html, "not enough seeds"));
    assert_non_null(strstr(html, "BPR "));   /* the reference lines */
    assert_non_null(strstr(html, "IT + user-item"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "https://"));
    cr_free(js), cr_free(html);
    /* a report of fewer variants names only those */
    cr_ilm_study_cfg two = c;
    two.n_var = 2, two.variants[0] = CR_ILM_V_MLP, two.variants[1] = CR_ILM_V_ILM;
    assert_int_equal(cr_ilm_study_write(&two, &r, out, &e), CR_OK);
    assert_int_equal(cr_read_file(p, &html, &n, &e), CR_OK);
    assert_non_null(strstr(html, "MLP adapter"));
    assert_null(strstr(html, "IT + user-item"));
    cr_free(html);
    char *table;
    assert_int_equal(cr_ilm_study_table(&c, &r, &table, &e), CR_OK);
    assert_non_null(strstr(table, "it+ui"));
    cr_free(table);
    cr_ilm_study_result_free(&r);

    /* chat through a pipe: the answers name catalogue items */
    cr_chat_opts o;
    cr_chat_opts_default(&o);
    o.k = 2, o.shortlist = 6, o.describe = 4;
    cr_chat *ch;
    snprintf(p, sizeof p, "%s/seed1/ilm/phase2", out);
    s = cr_chat_open(&ch, p, &o, &e);
    if (s) fprintf(stderr, "%s\n", e.msg);
    assert_int_equal(s, CR_OK);
    const char *script = "what should I watch?\n"
                         "I liked toy story and the matrix\n"
                         "I loved Heat. What should I watch?\n"
                         "I liked Zzqx Qqvv\n"
                         "quit\n"
                         "I liked Sense and Sensibility\n";
    FILE *in = fmemopen((void *)script, strlen(script), "r");
    char *buf = NULL;
    size_t blen = 0;
    FILE *mem = open_memstream(&buf, &blen);
    assert_non_null(in);
    assert_non_null(mem);
    assert_int_equal(cr_chat_loop(ch, in, mem, 0, &e), CR_OK);
    fclose(in);
    fclose(mem);
    fprintf(stderr, "%s", buf);
    assert_non_null(strstr(buf, "Tell me a few movies you liked first."));
    assert_non_null(strstr(buf, "Noted: Toy Story (1995), Matrix, The (1999)."));
    assert_non_null(strstr(buf, "Noted: Heat (1995)."));
    assert_non_null(strstr(buf, "I could not find 'zzqx qqvv'"));
    assert_null(strstr(buf, "Sense and Sensibility")); /* after quit */
    const char *sug = strstr(buf, "you might enjoy: ");
    assert_non_null(sug);
    char line[1024];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(sug, "\n"), sug);
    assert_int_equal(contains_catalogue_titles(line, 3), 2); /* k = 2, none of the liked three */
    assert_null(strstr(line, "Toy Story")); /* liked items are never suggested */
    /* fuzzy matching on its own */
    double sc;
    snprintf(p, sizeof p, "%s/seed1/ilm/phase2", out);
    cr_p2_bundle b;
    assert_int_equal(cr_p2_bundle_open(&b, p, &e), CR_OK);
    int32_t it = cr_chat_match(&b.d, "Toy Stroy", 0.5, &sc);
    assert_true(it >= 0 && !strcmp(b.d.title[it], "Toy Story (1995)"));
    it = cr_chat_match(&b.d, "THE MATRIX", 0.5, &sc);
    assert_true(it >= 0 && !strcmp(b.d.title[it], "Matrix, The (1999)") && sc == 1.0);
    assert_int_equal(cr_chat_match(&b.d, "qqqq", 0.5, &sc), -1);
    cr_p2_bundle_free(&b);
    free(buf);
    cr_chat_free(ch);

    /* the public entry points over the same directory */
    cr_ilm *im = NULL;
    assert_int_not_equal(cr_ilm_open(&im, "no/such/dir", &e), CR_OK);
    assert_non_null(strstr(e.msg, "no/such/dir"));
    assert_null(im);
    assert_int_equal(cr_ilm_open(&im, p, &e), CR_OK);
    assert_true(cr_ilm_n_items(im) > 3);
    int64_t toy = cr_ilm_find(im, "Toy Stroy"), mat = cr_ilm_find(im, "the matrix");
    assert_true(toy >= 0 && mat >= 0 && toy != mat);
    assert_int_equal(cr_ilm_find(im, "qqqq"), -1);
    int64_t found = -1;
    for (int64_t i = 0; i < cr_ilm_n_items(im); i++)
        if (cr_ilm_item_id(im, i) == toy) found = i;
    assert_true(found >= 0);
    assert_string_equal(cr_ilm_item_title(im, found), "Toy Story (1995)");
    assert_null(cr_ilm_item_title(im, -1));
    int64_t liked[2] = {toy, mat}, rec[3];
    double rs[3];
    int nr = 0;
    assert_int_equal(cr_ilm_recommend(NULL, im, liked, 2, 3, rec, rs, &nr, &e), CR_OK);
    assert_int_equal(nr, 3);
    for (int i = 0; i < nr; i++) {
        assert_true(rec[i] != toy && rec[i] != mat);
        if (i) assert_true(rs[i] <= rs[i - 1]);
    }
    /* a chat turn suggests the same items, in the same order */
    char *reply = NULL;
    assert_int_equal(cr_ilm_chat(NULL, im, "I liked toy story and the matrix. What should I watch?",
                                 &reply, &e), CR_OK);
    const char *at_title = reply;
    for (int i = 0; i < nr; i++) {
        const char *title = NULL;
        for (int64_t j = 0; j < cr_ilm_n_items(im); j++)
            if (cr_ilm_item_id(im, j) == rec[i]) title = cr_ilm_item_title(im, j);
        assert_non_null(title);
        const char *hit = strstr(at_title, title);
        if (!hit) fprintf(stderr, "'%s' not after position %d of: %s\n", title, (int)(at_title - reply), reply);
        assert_non_null(hit);
        at_title = hit + strlen(title);
    }
    cr_free(reply);
    liked[1] = 999999999;
    assert_int_equal(cr_ilm_recommend(NULL, im, liked, 2, 3, rec, rs, &nr, &e), CR_ERR_NOT_FOUND);
    assert_non_null(strstr(e.msg, "999999999"));
    assert_int_equal(cr_ilm_recommend(NULL, im, liked, 1, 0, rec, rs, &nr, &e), CR_ERR_ARG);
    assert_int_equal(cr_ilm_chat(NULL, im, NULL, &reply, &e), CR_ERR_ARG);
    /* a whole conversation through the public loop */
    const char *turns = "I liked Heat\nquit\n";
    in = fmemopen((void *)turns, strlen(turns), "r");
    buf = NULL;
    mem = open_memstream(&buf, &blen);
    assert_int_equal(cr_ilm_chat_loop(NULL, im, in, mem, 0, &e), CR_OK);
    fclose(in);
    fclose(mem);
    assert_non_null(strstr(buf, "Noted: Heat (1995)."));
    free(buf);
    assert_int_equal(cr_ilm_chat_loop(NULL, im, NULL, stdout, 0, &e), CR_ERR_ARG);
    cr_ilm_close(im);
    o.shortlist = 1; /* below k */
    assert_int_equal(cr_ilm_open_chat(&im, p, &o, &e), CR_ERR_ARG);
    assert_null(im);
    public_training(dir, &c);
    cr_test_rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_metrics),
        cmocka_unit_test(test_study_and_chat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
