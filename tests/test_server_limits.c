/*
 * test_server_limits.c - the server under attack, each defence against
 * the defect it fixes: 1,100 idle connections no longer lock clients out
 * (connection limit, eviction of the longest header wait); a per-address
 * limit; header and whole-request deadlines against a slowloris; a chunked
 * body cut off at max_body instead of read to the end; framing a proxy
 * could read otherwise (two Content-Lengths, Content-Length with
 * Transfer-Encoding); JSON that is not one clean value (bytes after it, a
 * key twice, bad UTF-8), and error bodies that stay valid UTF-8 and name
 * no file or schema; admin reload off by default, then behind a bearer
 * token and a rate limit, and validated (NaN weights, another schema)
 * before it swaps. Loops are bounded by counts; the few waits are far
 * above the deadlines they wait for, and nothing asserts a duration.
 */
#include "util/serve_fixture.h"
#include "util/testutil.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static cr_sf F;

static int setup(void **state) {
    (void)state;
    return cr_sf_init(&F);
}

static int teardown(void **state) {
    (void)state;
    cr_sf_free(&F);
    return 0;
}

static int healthz(void) {
    char *raw;
    const char *body;
    int st = cr_sf_http(F.port, "GET", "/healthz", NULL, "", 0, &raw, &body);
    free(raw);
    return st;
}

/* Whether the server closed fd within about 20 s, sending `drip` one byte
 * every 200 ms meanwhile (the slow client keeps talking). */
static int closed_while_dripping(int fd, const char *drip) {
    struct timeval tv = {0, 200 * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 100; i++) {
        if (send(fd, drip + (size_t)i % strlen(drip), 1, MSG_NOSIGNAL) < 0) return 1;
        char buf[512];
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) return 1;
    }
    return 0;
}

static long metric(const char *name) {
    char *raw;
    const char *body;
    assert_int_equal(cr_sf_http(F.port, "GET", "/metrics", NULL, "", 0, &raw, &body), 200);
    const char *at = strstr(body, name);
    long v = at ? atol(at + strlen(name)) : -1;
    free(raw);
    return v;
}

/* ---- connections ------------------------------------------------------------------------ */

/* 1,100 idle connections once kept /healthz from answering (libmicrohttpd's
 * default limit is about FD_SETSIZE): with the limit and eviction, every
 * client request still gets its answer. */
static void test_idle_flood(void **state) {
    (void)state;
    enum { N = 1100 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 256 && rl.rlim_max >= 2 * N + 256) {
        rl.rlim_cur = 2 * N + 256;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    cr_server_cfg c;
    cr_sf_cfg(&F, &c);
    c.max_connections = 64;
    c.max_per_ip = 0; /* one address on loopback: this tests the global limit */
    assert_int_equal(cr_sf_start(&F, &c), 0);
    int *fd = malloc(N * sizeof *fd), open = 0;
    for (int i = 0; i < N; i++)
        if ((fd[i] = cr_sf_connect(F.port)) >= 0) open++;
    assert_true(open > N / 2);
    usleep(600 * 1000); /* the idle ones age past the eviction floor (0.25 s) */
    int ok = 0;
    for (int i = 0; i < 20; i++) ok += healthz() == 200;
    assert_int_equal(ok, 20);
    assert_true(metric("crossrec_connections_closed_total{reason=\"evicted\"} ") > 0);
    assert_true(metric("crossrec_connections_closed_total{reason=\"limit\"} ") > 0);
    long open_now = metric("\ncrossrec_connections_open ");
    assert_true(open_now >= 1 && open_now <= 64 + 16);
    for (int i = 0; i < N; i++)
        if (fd[i] >= 0) close(fd[i]);
    free(fd);
    cr_sf_stop(&F);
}

static void test_per_ip_limit(void **state) {
    (void)state;
    cr_server_cfg c;
    cr_sf_cfg(&F, &c);
    c.max_per_ip = 4;
    assert_int_equal(cr_sf_start(&F, &c), 0);
    int fd[4];
    for (int i = 0; i < 4; i++) assert_true((fd[i] = cr_sf_connect(F.port)) >= 0);
    /* the fifth from the same address is closed without an answer */
    char *raw;
    const char *body;
    int st = cr_sf_http(F.port, "GET", "/healthz", NULL, "", 0, &raw, &body);
    free(raw);
    assert_int_equal(st, -1);
    for (int i = 0; i < 4; i++) close(fd[i]);
    int ok = 0;
    for (int i = 0; i < 50 && !ok; i++) { /* the server notices the closes */
        ok = healthz() == 200;
        if (!ok) usleep(20 * 1000);
    }
    assert_true(ok);
    cr_sf_stop(&F);
}

/* A byte every 200 ms beats an idle timeout but not the header deadline
 * (headers) or the request deadline (a body). */
static void test_slowloris_deadlines(void **state) {
    (void)state;
    cr_server_cfg c;
    cr_sf_cfg(&F, &c);
    c.header_timeout_s = 1;
    c.request_timeout_s = 2;
    assert_int_equal(cr_sf_start(&F, &c), 0);
    int fd = cr_sf_connect(F.port);
    assert_true(fd >= 0);
    const char *start = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    assert_true(send(fd, start, strlen(start), MSG_NOSIGNAL) > 0);
    assert_true(closed_while_dripping(fd, "X-Slow: aaaaaaaaaaaaaaaaaaaaaaa\r\n"));
    close(fd);
    fd = cr_sf_connect(F.port);
    const char *post = "POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{";
    assert_true(send(fd, post, strlen(post), MSG_NOSIGNAL) > 0);
    assert_true(closed_while_dripping(fd, "                "));
    close(fd);
    assert_true(metric("crossrec_connections_closed_total{reason=\"deadline\"} ") >= 2);
    assert_int_equal(healthz(), 200);
    cr_sf_stop(&F);
}

/* A chunked body stops being read at max_body (it was read to the end,
 * 4.6 GB in 8 s, before the 413). */
static void test_chunked_cap(void **state) {
    (void)state;
    cr_server_cfg c;
    cr_sf_cfg(&F, &c); /* max_body 64 KiB */
    assert_int_equal(cr_sf_start(&F, &c), 0);
    int fd = cr_sf_connect(F.port);
    int small = 16 << 10;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const char *h = "POST /v1/score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_true(send(fd, h, strlen(h), MSG_NOSIGNAL) > 0);
    char chunk[4096 + 16];
    int hl = snprintf(chunk, sizeof chunk, "1000\r\n");
    memset(chunk + hl, ' ', 4096);
    memcpy(chunk + hl + 4096, "\r\n", 2);
    size_t sent = 0, limit = (size_t)256 << 20; /* 4096 times max_body */
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    while (sent < limit) {
        ssize_t k = send(fd, chunk, (size_t)hl + 4098, MSG_NOSIGNAL);
        if (k <= 0) break;
        sent += (size_t)k;
    }
    assert_true(sent < limit);
    char buf[512] = {0};
    ssize_t k = recv(fd, buf, sizeof buf - 1, 0);
    if (k > 0) assert_non_null(strstr(buf, " 413 "));
    close(fd);
    assert_int_equal(healthz(), 200);
    cr_sf_stop(&F);
}

/* ---- framing and JSON ------------------------------------------------------------------- */

static int raw(const char *req, char **r, const char **body) {
    return cr_sf_raw(F.port, req, strlen(req), r, body);
}

static void expect_400(const char *what, int st, const char *body, const char *needle) {
    if (st != 400 || !strstr(body, needle) || cr_utf8_check(body, strlen(body)) != strlen(body))
        fail_msg("%s: status %d, body %s", what, st, body);
}

static void test_framing_and_json(void **state) {
    (void)state;
    cr_server_cfg c;
    cr_sf_cfg(&F, &c);
    assert_int_equal(cr_sf_start(&F, &c), 0);
    char *r;
    const char *body;
    int st = raw("POST /v1/score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n"
                 "Content-Length: 40\r\n\r\n{}", &r, &body);
    expect_400("two Content-Lengths", st, body, "two Content-Length");
    free(r);
    st = raw("POST /v1/score HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &r, &body);
    expect_400("Content-Length and Transfer-Encoding", st, body, "Transfer-Encoding");
    free(r);
    int rows[2] = {1, 2};
    char *good = cr_sf_request_json(&F, 3, rows, 2), buf[8192];
    snprintf(buf, sizeof buf, "%s{\"candidates\":[{}]}", good);
    st = cr_sf_http(F.port, "POST", "/v1/score", NULL, buf, strlen(buf), &r, &body);
    expect_400("bytes after the JSON", st, body, "more than one JSON value");
    free(r);
    snprintf(buf, sizeof buf, "%s   \n", good); /* whitespace after it is fine */
    assert_int_equal(cr_sf_http(F.port, "POST", "/v1/score", NULL, buf, strlen(buf), &r, &body), 200);
    free(r);
    free(good);
    const char *dup = "{\"candidates\":[{\"item\":\"i1\",\"item\":\"i2\"}]}";
    st = cr_sf_http(F.port, "POST", "/v1/score", NULL, dup, strlen(dup), &r, &body);
    expect_400("a key twice", st, body, "'item' appears twice");
    free(r);
    const char *dup2 = "{\"candidates\":[{}],\"candidates\":[{}]}";
    st = cr_sf_http(F.port, "POST", "/v1/score", NULL, dup2, strlen(dup2), &r, &body);
    expect_400("a top-level key twice", st, body, "appears twice");
    free(r);
    const char *bad_utf8 = "{\"candidates\":[{\"it\xff\xfe\":\"x\"}]}";
    st = cr_sf_http(F.port, "POST", "/v1/score", NULL, bad_utf8, strlen(bad_utf8), &r, &body);
    expect_400("invalid UTF-8", st, body, "not valid UTF-8");
    free(r);
    /* a long unknown key of two-byte characters: the message cuts it, and
     * the cut never splits a character into invalid UTF-8 */
    char key[600] = "{\"candidates\":[{\"x", *p = key + strlen(key);
    for (int i = 0; i < 150; i++) p += sprintf(p, "\xc3\xa9");
    sprintf(p, "\":1}]}");
    st = cr_sf_http(F.port, "POST", "/v1/score", NULL, key, strlen(key), &r, &body);
    expect_400("a cut unknown key", st, body, "unknown feature");
    /* no schema dump: the model's other columns are not listed */
    assert_null(strstr(body, "\"user"));
    assert_null(strstr(body, "hist"));
    free(r);
    const char *huge = "{\"candidates\":[{\"pop\":1e300}]}";
    st = cr_sf_http(F.port, "POST", "/v1/score", NULL, huge, strlen(huge), &r, &body);
    expect_400("an absurd number", st, body, "'pop'");
    free(r);
    cr_sf_stop(&F);
}

/* ---- admin ------------------------------------------------------------------------------- */

static int reload(const char *headers, char **r, const char **body) {
    return cr_sf_http(F.port, "POST", "/v1/reload", headers, "", 0, r, body);
}

static void test_admin_reload(void **state) {
    (void)state;
    cr_server_cfg c;
    cr_sf_cfg(&F, &c);
    assert_int_equal(cr_sf_start(&F, &c), 0);
    char *r;
    const char *body;
    assert_int_equal(reload(NULL, &r, &body), 404); /* off unless enabled */
    free(r);
    cr_sf_stop(&F);

    snprintf(c.admin_token, sizeof c.admin_token, "s3cret-token-0123456789");
    c.reload_interval_s = 3600;
    assert_int_equal(cr_sf_start(&F, &c), 0);
    assert_int_equal(reload(NULL, &r, &body), 401);
    assert_non_null(strstr(r, "WWW-Authenticate: Bearer"));
    free(r);
    assert_int_equal(reload("Authorization: Bearer s3cret-token-012345678\r\n", &r, &body), 403);
    free(r);
    assert_int_equal(reload("Authorization: Bearer s3cret-token-0123456789x\r\n", &r, &body), 403);
    free(r);
    const char *auth = "Authorization: Bearer s3cret-token-0123456789\r\n";
    assert_int_equal(reload(auth, &r, &body), 200);
    free(r);
    /* forty at once: one per interval */
    int limited = 0;
    for (int i = 0; i < 40; i++) {
        int st = reload(auth, &r, &body);
        limited += st == 429 && strstr(r, "Retry-After:");
        free(r);
    }
    assert_int_equal(limited, 40);
    cr_sf_stop(&F);

    /* validation before the swap: NaN weights, then another schema, are
     * refused (the old model keeps serving, the client never sees a path);
     * with allow_schema_change the other schema is taken */
    c.reload_interval_s = 0;
    assert_int_equal(cr_sf_start(&F, &c), 0);
    char v0[64], v1[64], keep[600], next[600];
    cr_server_version(F.srv, v0, sizeof v0);
    snprintf(keep, sizeof keep, "%s/keep.safetensors", F.log.dir);
    snprintf(next, sizeof next, "%s/next.safetensors", F.log.dir);
    assert_int_equal(rename(F.model, keep), 0);
    for (int bad = 0; bad < 2; bad++) {
        cr_sf_save_model(&F, next, 9, bad == 0 ? 17 : -1, bad == 1);
        assert_int_equal(rename(next, F.model), 0);
        assert_int_equal(reload(auth, &r, &body), 500);
        assert_non_null(strstr(body, "still serving"));
        assert_null(strstr(body, F.log.dir)); /* no path to the client */
        assert_null(strstr(body, "safetensors"));
        free(r);
        cr_server_version(F.srv, v1, sizeof v1);
        assert_string_equal(v0, v1);
    }
    int rows[2] = {1, 2};
    char *req = cr_sf_request_json(&F, 3, rows, 2);
    assert_int_equal(cr_sf_http(F.port, "POST", "/v1/score", NULL, req, strlen(req), &r, &body), 200);
    free(r);
    cr_sf_stop(&F);
    c.allow_schema_change = 1;
    assert_int_equal(rename(keep, F.model), 0);
    assert_int_equal(cr_sf_start(&F, &c), 0);
    cr_sf_save_model(&F, next, 9, -1, 1);
    assert_int_equal(rename(next, F.model), 0);
    assert_int_equal(reload(auth, &r, &body), 200);
    free(r);
    cr_sf_stop(&F);
    cr_sf_save_model(&F, F.model, 5, -1, 0); /* the fixture's model again */
    free(req);
    /* a NaN model is refused at start too */
    cr_sf_save_model(&F, next, 9, 3, 0);
    cr_server_cfg bad;
    cr_sf_cfg(&F, &bad);
    snprintf(bad.models[0].path, sizeof bad.models[0].path, "%s", next);
    cr_server *s = NULL;
    cr_error e = {0};
    assert_int_equal(cr_server_start(&s, &bad, &e), CR_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "next.safetensors"));
}

/* ---- binding ---------------------------------------------------------------------------- */

static void test_hosts(void **state) {
    (void)state;
    cr_server_cfg c;
    cr_server_cfg_defaults(&c);
    assert_string_equal(c.host, "127.0.0.1"); /* loopback unless told otherwise */
    assert_int_equal(c.admin_token[0], 0);    /* no admin endpoints */
    cr_sf_cfg(&F, &c);
    snprintf(c.host, sizeof c.host, "localhost");
    assert_int_equal(cr_sf_start(&F, &c), 0);
    assert_int_equal(healthz(), 200); /* localhost is 127.0.0.1 here */
    cr_sf_stop(&F);
    if (access("/proc/net/if_inet6", R_OK) == 0) {
        snprintf(c.host, sizeof c.host, "::1");
        cr_server *s = NULL;
        cr_error e = {0};
        cr_status st = cr_server_start(&s, &c, &e);
        if (st) fprintf(stderr, "::1: %s\n", e.msg);
        assert_int_equal(st, CR_OK);
        cr_server_stop(s);
    }
    snprintf(c.host, sizeof c.host, "no-such-host.invalid");
    cr_server *s = NULL;
    cr_error e = {0};
    assert_int_equal(cr_server_start(&s, &c, &e), CR_ERR_ARG);
    assert_non_null(strstr(e.msg, "no-such-host.invalid"));
    /* model names */
    cr_server_cfg_defaults(&c);
    assert_int_equal(cr_server_cfg_add_model(&c, "dir/ranker.safetensors", &e), CR_OK);
    assert_string_equal(c.models[0].name, "ranker");
    assert_int_equal(cr_server_cfg_add_model(&c, "b=x.safetensors", &e), CR_OK);
    assert_int_equal(cr_server_cfg_add_model(&c, "b=y.safetensors", &e), CR_ERR_ARG);
    assert_int_equal(cr_server_cfg_add_model(&c, "a/b=y.safetensors", &e), CR_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_framing_and_json),
        cmocka_unit_test(test_admin_reload),
        cmocka_unit_test(test_chunked_cap),
        cmocka_unit_test(test_per_ip_limit),
        cmocka_unit_test(test_slowloris_deadlines),
        cmocka_unit_test(test_idle_flood),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
