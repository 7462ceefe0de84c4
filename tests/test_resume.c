/*
 * test_resume.c - a run stopped part-way and resumed ends exactly like an
 * uninterrupted one; a resume with another config is refused; a bad or
 * mismatched checkpoint fails with a clear error; a failed save never
 * damages a file already written. Data: tests/util/fit_fixture.h.
 */
#include "util/fit_fixture.h"

static int resume_case(const fixture *f, const char *tag, const cfg_opts *o, int64_t stop,
                       char **log_ref, char **log_cut, char **log_resumed) {
    char cfg[512], ref[512], cut[512], p[600], q[600], name[64];
    snprintf(name, sizeof name, "%s.yaml", tag);
    write_cfg(f->dir, name, o, cfg, sizeof cfg);
    snprintf(ref, sizeof ref, "%s/out_%s_ref", f->dir, tag);
    snprintf(cut, sizeof cut, "%s/out_%s_cut", f->dir, tag);
    fit_ok(cfg, ref, 0, log_ref);

    cr_error e = {0};
    cr_status s = fit(cfg, cut, 0, stop, log_cut, &e);
    if (s != CR_ERR_LIMIT) fprintf(stderr, "%s: stop after %lld: status %d: %s\n", tag,
                                   (long long)stop, (int)s, e.msg);
    assert_int_equal(s, CR_ERR_LIMIT);
    char want[64];
    snprintf(want, sizeof want, "%lld", (long long)stop);
    assert_non_null(strstr(e.msg, want));
    /* stopped "as if killed": no final metrics yet */
    snprintf(p, sizeof p, "%s/metrics.json", cut);
    assert_false(cr_file_exists(p));

    fit_ok(cfg, cut, 1, log_resumed);
    snprintf(p, sizeof p, "%s/model.safetensors", ref);
    snprintf(q, sizeof q, "%s/model.safetensors", cut);
    if (!same_bytes(p, q)) {
        fprintf(stderr, "%s: resumed after step %lld, the model differs from an uninterrupted run\n",
                tag, (long long)stop);
        return 0;
    }
    snprintf(p, sizeof p, "%s/metrics.json", ref);
    snprintf(q, sizeof q, "%s/metrics.json", cut);
    cJSON *x = read_json(p), *y = read_json(q);
    char *sx = cJSON_PrintUnformatted(jget(x, "test"));
    char *sy = cJSON_PrintUnformatted(jget(y, "test"));
    int same = jnum(x, "train.steps") == jnum(y, "train.steps") &&
               jnum(x, "train.examples") == jnum(y, "train.examples") && !strcmp(sx, sy);
    if (!same) fprintf(stderr, "%s: the resumed run's metrics.json differs\n", tag);
    free(sx);
    free(sy);
    cJSON_Delete(x);
    cJSON_Delete(y);
    return same;
}

/* Stopped inside the second epoch, between two checkpoints: the resumed
 * run restarts from the checkpoint at step 20 and redoes steps 21-22. */

static void test_resume_inside_epoch(void **state) {
    cfg_opts o = defaults();
    o.epochs = 3;
    o.eval_every = 4;
    assert_true(resume_case(*state, "mid", &o, 22, NULL, NULL, NULL));
}

/* Plain SGD keeps no moments: its checkpoint holds none and resumes all the
 * same (it once failed to save, asking for moments SGD never allocates). */

static void test_resume_sgd(void **state) {
    cfg_opts o = defaults();
    o.optimizer = "sgd";
    o.lr = "0.05";
    o.epochs = 3;
    o.eval_every = 4;
    assert_true(resume_case(*state, "sgd", &o, 22, NULL, NULL, NULL));
}

/* Stopped right after the checkpoint that ends the first epoch. */

static void test_resume_epoch_boundary(void **state) {
    cfg_opts o = defaults();
    o.epochs = 3;
    o.eval_every = 5;
    assert_true(resume_case(*state, "edge", &o, STEPS_PER_EPOCH, NULL, NULL, NULL));
}

/* Evaluating once per epoch, the checkpoint is taken after the epoch's last
 * step; stopping one step into the next epoch resumes from there. */

static void test_resume_after_epoch_checkpoint(void **state) {
    cfg_opts o = defaults();
    o.epochs = 3;
    o.eval_every = 0;
    assert_true(resume_case(*state, "epoch", &o, STEPS_PER_EPOCH + 1, NULL, NULL, NULL));
}

/* Resuming must continue the run, not replay part of it: the evaluations
 * of the stopped run plus those of the resumed one are exactly those of an
 * uninterrupted run. An evaluation repeated at the resume point counts
 * once more against early stopping's patience (sum_loss, per_task), so
 * the resumed run could stop or freeze a task earlier. */

static void test_resume_no_repeated_eval(void **state) {
    cfg_opts o = defaults();
    o.es = "sum_loss";
    o.patience = 100; /* never stops: both runs take every step */
    o.epochs = 3;
    o.eval_every = 0;
    char *lr = NULL, *lc = NULL, *lres = NULL;
    /* the models are compared by the tests above; here only the evaluations */
    (void)resume_case(*state, "evals", &o, STEPS_PER_EPOCH + 1, &lr, &lc, &lres);
    long ref[64], got[64];
    int nr = eval_steps(lr, ref, 64);
    int nc = eval_steps(lc, got, 64);
    nc += eval_steps(lres, got + nc, 64 - nc);
    int same = nr == nc;
    for (int i = 0; same && i < nr; i++) same = ref[i] == got[i];
    if (!same) {
        fprintf(stderr, "evaluations: uninterrupted at steps");
        for (int i = 0; i < nr; i++) fprintf(stderr, " %ld", ref[i]);
        fprintf(stderr, "; stopped + resumed at steps");
        for (int i = 0; i < nc; i++) fprintf(stderr, " %ld", got[i]);
        fprintf(stderr, "\n");
    }
    free(lr);
    free(lc);
    free(lres);
    assert_true(same);
}

static void test_resume_mismatch(void **state) {
    const fixture *f = *state;
    char a[512], b[512], c2[512], out[512], p[600];
    cfg_opts o = defaults();
    o.epochs = 2;
    o.eval_every = 5;
    write_cfg(f->dir, "rm_a.yaml", &o, a, sizeof a);
    snprintf(out, sizeof out, "%s/out_rm", f->dir);
    cr_error e = {0};
    assert_int_equal(fit(a, out, 0, 12, NULL, &e), CR_ERR_LIMIT);
    snprintf(p, sizeof p, "%s/last.safetensors", out);
    assert_true(cr_file_exists(p));
    size_t n0, n1;
    char *before = slurp(p, &n0);
    int failures = 0;

    /* another schema: a feature of another width */
    cfg_opts ob = o;
    ob.category_dim = 5;
    write_cfg(f->dir, "rm_b.yaml", &ob, b, sizeof b);
    cr_status s = fit(b, out, 1, 0, NULL, &e);
    if (s != CR_ERR_MISMATCH || !strstr(e.msg, "last.safetensors")) {
        fprintf(stderr, "resume with another schema: status %d (want %d): %s\n", (int)s,
                (int)CR_ERR_MISMATCH, e.msg);
        failures++;
    }

    /* the same schema, another model: a wider tower */
    cfg_opts oc = o;
    oc.tower = 6;
    write_cfg(f->dir, "rm_c.yaml", &oc, c2, sizeof c2);
    s = fit(c2, out, 1, 0, NULL, &e);
    if (s != CR_ERR_MISMATCH || !strstr(e.msg, "last.safetensors")) {
        fprintf(stderr, "resume with another model section: status %d (want %d): %s\n", (int)s,
                (int)CR_ERR_MISMATCH, e.msg);
        failures++;
    }

    /* neither failed attempt touched the checkpoint */
    char *after = slurp(p, &n1);
    int same = n0 == n1 && memcmp(before, after, n0) == 0;
    cr_free(before);
    cr_free(after);
    assert_true(same);
    assert_int_equal(failures, 0);
}

/* A finished run resumed trains nothing, says so, and leaves its files as
 * they were (it once trained on and overwrote model and metrics); a model
 * file in the checkpoint's place is refused with a clear message; stray
 * temporary files of a killed run are swept. */
static void test_resume_finished(void **state) {
    const fixture *f = *state;
    char cfg[512], out[512], p[600], q[600];
    cfg_opts o = defaults();
    o.epochs = 6;
    o.es = "sum_loss";
    o.patience = 1;
    o.eval_every = 6;
    write_cfg(f->dir, "fin.yaml", &o, cfg, sizeof cfg);
    snprintf(out, sizeof out, "%s/out_fin", f->dir);
    fit_ok(cfg, out, 0, NULL);
    const char *files[] = {"model.safetensors", "metrics.json", "last.safetensors"};
    char *before[3];
    size_t nb[3], na;
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        before[i] = slurp(p, &nb[i]);
    }
    snprintf(p, sizeof p, "%s/last.safetensors.tmp.4242", out);
    spit(p, "half", 4);
    char *log = NULL;
    int finished = 0;
    cr_rank_config c;
    load_cfg(cfg, &c);
    size_t ll = 0;
    FILE *lf = open_memstream(&log, &ll);
    char *metrics = NULL;
    cr_fit_opts fo = {.out_dir = out, .resume = 1, .log = lf, .finished = &finished};
    cr_error e = {0};
    assert_int_equal(cr_rank_fit(&c, &fo, &metrics, &e), CR_OK);
    fclose(lf);
    cr_rank_config_free(&c);
    assert_int_equal(finished, 1);
    if (!strstr(log, "finished at step")) fail_msg("log: %s", log);
    assert_null(strstr(log, "eval step"));
    assert_non_null(metrics);
    free(metrics);
    free(log);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        char *after = slurp(p, &na);
        assert_true(na == nb[i] && !memcmp(after, before[i], na));
        cr_free(after);
        cr_free(before[i]);
    }
    snprintf(p, sizeof p, "%s/last.safetensors.tmp.4242", out);
    assert_false(cr_file_exists(p));
    /* a model where the checkpoint should be: refused, naming the file */
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    snprintf(q, sizeof q, "%s/last.safetensors", out);
    size_t n;
    char *m = slurp(p, &n);
    spit(q, m, n);
    cr_free(m);
    assert_int_equal(fit(cfg, out, 1, 0, NULL, &e), CR_ERR_FORMAT);
    if (!strstr(e.msg, "last.safetensors: holds no training state")) fail_msg("%s", e.msg);
}

/* ---- per-task early stopping ------------------------------------------------------- */

static void expect_load_error(const char *path, cr_status want, const char *what,
                              const char *sub) {
    cr_ranker *m = (cr_ranker *)1;
    cr_schema s;
    cr_error e = {0};
    cr_status st = cr_ranker_load(&m, &s, path, &e);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (st != want || !strstr(e.msg, base) || (sub && !strstr(e.msg, sub))) {
        fprintf(stderr, "%s: status %d (want %d): %s\n", what, (int)st, (int)want, e.msg);
        if (st == CR_OK) {
            cr_ranker_free(m);
            cr_schema_free(&s);
        }
        fail();
    }
    assert_null(m);
}

static void test_load_errors(void **state) {
    const fixture *f = *state;
    char cfg[512], p[600], cut[600], out[512];
    fit_one_epoch(f->dir, "le", cfg, sizeof cfg, p, sizeof p);
    snprintf(out, sizeof out, "%s/out_le", f->dir);
    size_t n;
    char *bytes = slurp(p, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (uint8_t)bytes[i];
    assert_true(8 + hl < n);

    /* truncated anywhere: inside the length, the header, the data, or one byte short */
    snprintf(cut, sizeof cut, "%s/cut.safetensors", f->dir);
    size_t at[] = {0, 3, 8, 9, 8 + (size_t)hl / 2, 8 + (size_t)hl - 1, 8 + (size_t)hl,
                   8 + (size_t)hl + 5, (8 + (size_t)hl + n) / 2, n - 4, n - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        spit(cut, bytes, at[i]);
        char what[64];
        snprintf(what, sizeof what, "cut at %zu of %zu bytes", at[i], n);
        expect_load_error(cut, CR_ERR_FORMAT, what, NULL);
    }
    cr_free(bytes);

    /* a valid safetensors file that is not a ranker: no format tag ... */
    char other[600];
    snprintf(other, sizeof other, "%s/plain.safetensors", f->dir);
    cr_st_writer w;
    cr_st_writer_init(&w);
    float v[4] = {1, 2, 3, 4};
    int64_t sh[1] = {4};
    cr_error e = {0};
    assert_int_equal(cr_st_add(&w, "towers.0.l0.weight", CR_DT_F32, 1, sh, v, &e), CR_OK);
    assert_int_equal(cr_st_save(&w, other, &e), CR_OK);
    cr_st_writer_free(&w);
    expect_load_error(other, CR_ERR_FORMAT, "no format tag", "format");
    /* the checkpoint loads as a model: its training state is skipped ... */
    snprintf(other, sizeof other, "%s/last.safetensors", out);
    cr_ranker *lm = NULL;
    cr_schema ls;
    assert_int_equal(cr_ranker_load(&lm, &ls, other, &e), CR_OK);
    cr_ranker_free(lm);
    cr_schema_free(&ls);
    /* ... but only there: the same tensors in a plain model are refused */
    cr_st_file sf;
    assert_int_equal(cr_st_open(&sf, other, &e), CR_OK);
    cr_st_writer_init(&w);
    for (int i = 0; i < sf.n; i++)
        assert_int_equal(cr_st_add(&w, sf.t[i].name, sf.t[i].dtype, sf.t[i].ndim, sf.t[i].shape,
                                   sf.t[i].data, &e), CR_OK);
    for (int i = 0; i < sf.n_meta; i++)
        if (strcmp(sf.meta_key[i], "train_state"))
            assert_int_equal(cr_st_add_meta(&w, sf.meta_key[i], sf.meta_val[i], &e), CR_OK);
    snprintf(other, sizeof other, "%s/nostate.safetensors", f->dir);
    assert_int_equal(cr_st_save(&w, other, &e), CR_OK);
    cr_st_writer_free(&w);
    cr_st_close(&sf);
    expect_load_error(other, CR_ERR_FORMAT, "state tensors without the state tag", "train_state.");
    /* a missing file names itself too */
    snprintf(other, sizeof other, "%s/absent.safetensors", f->dir);
    cr_ranker *m = NULL;
    cr_schema s;
    assert_int_not_equal(cr_ranker_load(&m, &s, other, &e), CR_OK);
    assert_non_null(strstr(e.msg, "absent.safetensors"));
}

static void test_schema_mismatch(void **state) {
    const fixture *f = *state;
    char cfg[512], cfg2[512], p[600];
    fit_one_epoch(f->dir, "sm", cfg, sizeof cfg, p, sizeof p);
    cfg_opts o = defaults();
    o.epochs = 1;
    cr_error e = {0};
    cr_ranker *m = NULL;
    cr_schema ms;
    assert_int_equal(cr_ranker_load(&m, &ms, p, &e), CR_OK);

    cr_rank_config c;
    /* a feature of another width */
    cfg_opts o2 = o;
    o2.category_dim = 5;
    write_cfg(f->dir, "sm2.yaml", &o2, cfg2, sizeof cfg2);
    load_cfg(cfg2, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "category"));
    assert_non_null(strstr(e.msg, "model.safetensors"));
    cr_rank_config_free(&c);
    /* another task list */
    o2 = o;
    o2.coin = 1;
    write_cfg(f->dir, "sm3.yaml", &o2, cfg2, sizeof cfg2);
    load_cfg(cfg2, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_ERR_MISMATCH);
    assert_non_null(strstr(e.msg, "task"));
    cr_rank_config_free(&c);
    /* the same config matches */
    load_cfg(cfg, &c);
    assert_int_equal(cr_schema_check_same(&ms, &c.schema, p, &e), CR_OK);
    cr_rank_config_free(&c);
    cr_schema_free(&ms);
    cr_ranker_free(m);
}

/* ---- a failed save damages nothing --------------------------------------------------- */

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *x; (x = readdir(d));) n += strstr(x->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static void test_failed_save(void **state) {
    const fixture *f = *state;
    char cfg[512], p[600], dst[600], out[512];
    fit_one_epoch(f->dir, "fs", cfg, sizeof cfg, p, sizeof p);
    snprintf(out, sizeof out, "%s/out_fs", f->dir);
    cr_error e = {0};
    cr_ranker *m = NULL;
    cr_schema ms;
    assert_int_equal(cr_ranker_load(&m, &ms, p, &e), CR_OK);
    size_t n0, n1;
    char *before = slurp(p, &n0);

    /* The disk fills up half-way through the write (a file-size limit far
     * below the model's size): the save fails and the model already there
     * is untouched, with no temporary file left behind. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 1000;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    cr_status s = cr_ranker_save(m, &ms, p, NULL, &e);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(s, CR_ERR_IO);
    assert_non_null(strstr(e.msg, "model.safetensors"));
    char *after = slurp(p, &n1);
    assert_true(n0 == n1 && memcmp(before, after, n0) == 0);
    cr_free(after);
    assert_int_equal(count_tmp_files(out), 0);

    /* A directory path that cannot be written (its parent is a file). */
    snprintf(dst, sizeof dst, "%s/config.yaml/model.safetensors", out);
    s = cr_ranker_save(m, &ms, dst, NULL, &e);
    assert_int_equal(s, CR_ERR_IO);
    assert_non_null(strstr(e.msg, "config.yaml/model.safetensors"));
    /* and a fit whose output directory cannot be made fails before training */
    snprintf(dst, sizeof dst, "%s/config.yaml/sub", out);
    s = fit(cfg, dst, 0, 0, NULL, &e);
    assert_int_equal(s, CR_ERR_IO);
    assert_non_null(strstr(e.msg, "config.yaml"));
    after = slurp(p, &n1);
    assert_true(n0 == n1 && memcmp(before, after, n0) == 0);
    cr_free(after);
    cr_free(before);
    cr_schema_free(&ms);
    cr_ranker_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resume_inside_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_epoch_boundary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_sgd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_epoch_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_no_repeated_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_save, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
