/*
 * cmd_serve.c - `crossrec serve`: the HTTP scoring server in the
 * foreground. Options override the `serve:` section of --config, which
 * overrides the defaults. Signals are taken synchronously: blocked in every
 * thread, waited for here, so SIGHUP reloads the model and SIGTERM/SIGINT
 * stop the server gracefully without any handler or global.
 */
#include "cli.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec serve --model [NAME=]FILE.safetensors [--model ...] [options]\n"
            "\n"
            "Serves POST /v1/score, GET /healthz and GET /metrics, and the Open Inference\n"
            "Protocol (KServe v2): GET /v2, /v2/health/live, /v2/health/ready,\n"
            "/v2/models/NAME[/versions/V][/ready] and POST /v2/models/NAME/infer\n"
            "(docs/serving.md). SIGHUP reloads the model files; SIGTERM or SIGINT stop\n"
            "accepting connections and finish the requests in flight.\n"
            "  --model [NAME=]FILE   a checkpoint, named NAME (default: the file's name\n"
            "                        without .safetensors); repeat for more models; the\n"
            "                        first also answers /v1/score (required)\n"
            "  --config FILE         a YAML file with a serve: section [none]\n"
            "  --host HOST           address or host name to bind: 127.0.0.1, ::1,\n"
            "                        localhost, 0.0.0.0 for every interface [127.0.0.1]\n"
            "  --port N              port, 0 = any free one [8080]\n"
            "  --threads N           HTTP worker threads [4]\n"
            "  --kernel-threads N    threads inside one request, 0 = all cores [1]\n"
            "  --precision P         fp32, bf16 or int8 for the dense layers [fp32]\n"
            "  --max-body N          largest request body in bytes [1048576]\n"
            "  --max-candidates N    most candidates in one request [10000]\n"
            "  --max-connections N   open connections at once [512]\n"
            "  --max-per-ip N        open connections from one address, 0 = no limit [128]\n"
            "  --header-timeout S    seconds for a request's headers [10]\n"
            "  --request-timeout S   seconds for a request's headers and body [60]\n"
            "  --admin               enable POST /v1/reload, behind the bearer token of\n"
            "                        --admin-token-file or $CROSSREC_ADMIN_TOKEN [off]\n"
            "  --admin-token-file F  the token (first line of F, 16 characters or more)\n"
            "  --reload-interval S   at most one admin reload per S seconds [5]\n"
            "  --allow-schema-change a reload may change a model's inputs [off]\n"
            "  --help                this text\n");
}

static void serve_log(void *ctx, const char *msg) {
    (void)ctx;
    fprintf(stderr, "crossrec serve: %s\n", msg);
}

/* The admin token from a file (its first line) or the environment. */
static int read_token(const char *file, char *out, size_t cap) {
    const char *env = getenv("CROSSREC_ADMIN_TOKEN");
    if (file) {
        FILE *f = fopen(file, "r");
        if (!f || !fgets(out, (int)cap, f)) {
            fprintf(stderr, "crossrec serve: --admin-token-file %s: cannot read it\n", file);
            if (f) fclose(f);
            return 2;
        }
        fclose(f);
        out[strcspn(out, "\r\n")] = 0;
    } else if (env) {
        snprintf(out, cap, "%s", env);
    } else {
        fprintf(stderr, "crossrec serve: --admin needs a token: --admin-token-file FILE or "
                        "CROSSREC_ADMIN_TOKEN in the environment\n");
        return 2;
    }
    if (strlen(out) < 16 || strlen(out) >= cap - 1) {
        fprintf(stderr, "crossrec serve: the admin token must have 16 to %zu characters\n", cap - 2);
        return 2;
    }
    return 0;
}

int cr_cli_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"config", required_argument, 0, 'c'},
        {"host", required_argument, 0, 'H'},           {"port", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'},        {"kernel-threads", required_argument, 0, 'k'},
        {"precision", required_argument, 0, 'P'},      {"max-body", required_argument, 0, 'b'},
        {"max-candidates", required_argument, 0, 'n'}, {"max-connections", required_argument, 0, 'C'},
        {"max-per-ip", required_argument, 0, 'I'},     {"header-timeout", required_argument, 0, 'T'},
        {"request-timeout", required_argument, 0, 'R'}, {"admin", no_argument, 0, 'A'},
        {"admin-token-file", required_argument, 0, 'F'}, {"reload-interval", required_argument, 0, 'i'},
        {"allow-schema-change", no_argument, 0, 'S'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    /* options are read twice: --config first, then the rest over it */
    const char *config = NULL, *token_file = NULL;
    int ch, admin = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'c') config = optarg;
        if (ch == 'h') {
            usage(stdout);
            return 0;
        }
    }
    cr_server_cfg c;
    cr_server_cfg_defaults(&c);
    cr_error e = {0};
    if (config && cr_server_cfg_load(&c, config, &e)) return cr_cli_fail("serve", &e);
    optind = 1;
    opterr = 1;
    long long v;
    double d;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': if (cr_server_cfg_add_model(&c, optarg, &e)) return cr_cli_fail("serve", &e); break;
        case 'c': break;
        case 'H':
            if (!*optarg || strlen(optarg) >= sizeof c.host) {
                fprintf(stderr, "crossrec serve: --host: expected an address or host name, got '%s'\n", optarg);
                return 2;
            }
            snprintf(c.host, sizeof c.host, "%s", optarg);
            break;
        case 'p': if (cr_cli_int("serve", "--port", optarg, 0, 65535, &v)) return 2; c.port = (int)v; break;
        case 't': if (cr_cli_int("serve", "--threads", optarg, 1, 1024, &v)) return 2; c.threads = (int)v; break;
        case 'k': if (cr_cli_int("serve", "--kernel-threads", optarg, 0, 1024, &v)) return 2; c.kernel_threads = (int)v; break;
        case 'b': if (cr_cli_int("serve", "--max-body", optarg, 1, 1LL << 34, &v)) return 2; c.max_body = v; break;
        case 'n': if (cr_cli_int("serve", "--max-candidates", optarg, 1, 10000000, &v)) return 2; c.max_candidates = v; break;
        case 'C': if (cr_cli_int("serve", "--max-connections", optarg, 1, 65536, &v)) return 2; c.max_connections = (int)v; break;
        case 'I': if (cr_cli_int("serve", "--max-per-ip", optarg, 0, 65536, &v)) return 2; c.max_per_ip = (int)v; break;
        case 'T': if (cr_cli_num("serve", "--header-timeout", optarg, 0.001, 86400, &d)) return 2; c.header_timeout_s = d; break;
        case 'R': if (cr_cli_num("serve", "--request-timeout", optarg, 0.001, 86400, &d)) return 2; c.request_timeout_s = d; break;
        case 'i': if (cr_cli_num("serve", "--reload-interval", optarg, 0, 86400, &d)) return 2; c.reload_interval_s = d; break;
        case 'A': admin = 1; break;
        case 'F': token_file = optarg; break;
        case 'S': c.allow_schema_change = 1; break;
        case 'P':
            if (!strcmp(optarg, "fp32")) c.model.precision = CR_PRECISION_FP32;
            else if (!strcmp(optarg, "bf16")) c.model.precision = CR_PRECISION_BF16;
            else if (!strcmp(optarg, "int8")) c.model.precision = CR_PRECISION_INT8;
            else {
                fprintf(stderr, "crossrec serve: --precision: expected fp32, bf16 or int8, got '%s'\n", optarg);
                return 2;
            }
            break;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "crossrec serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (c.n_models == 0) {
        fprintf(stderr, "crossrec serve: --model is required (see --help)\n");
        return 2;
    }
    if (token_file && !admin) {
        fprintf(stderr, "crossrec serve: --admin-token-file needs --admin\n");
        return 2;
    }
    if (admin && read_token(token_file, c.admin_token, sizeof c.admin_token)) return 2;
    c.log = serve_log;

    /* Block the signals before any thread exists, so every server thread
     * inherits the mask and only sigwait below sees them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cr_server *s;
    if (cr_server_start(&s, &c, &e)) return cr_cli_fail("serve", &e);
    char ver[64];
    cr_server_version(s, ver, sizeof ver);
    int v6 = strchr(c.host, ':') != NULL;
    fprintf(stderr, "crossrec serve: %d model%s (%s version %s, %s) on http://%s%s%s:%d with %d "
            "threads; admin endpoints %s\n",
            c.n_models, c.n_models > 1 ? "s" : "", c.models[0].name, ver,
            cr_precision_name(c.model.precision), v6 ? "[" : "", c.host, v6 ? "]" : "",
            cr_server_port(s), c.threads, c.admin_token[0] ? "on" : "off");
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig)) continue;
        if (sig == SIGHUP) {
            cr_error re = {0};
            if (cr_server_reload(s, &re)) {
                fprintf(stderr, "crossrec serve: reload rejected, still serving %s\n", ver);
            } else {
                cr_server_version(s, ver, sizeof ver);
                fprintf(stderr, "crossrec serve: reloaded, now serving version %s\n", ver);
            }
            continue;
        }
        fprintf(stderr, "crossrec serve: %s, finishing requests in flight\n",
                sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    cr_server_stop(s);
    fprintf(stderr, "crossrec serve: stopped\n");
    return 0;
}
