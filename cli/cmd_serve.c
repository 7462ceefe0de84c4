/*
 * cmd_serve.c - `crossrec serve`: the HTTP scoring server in the
 * foreground. Options override the `serve:` section of --config, which
 * overrides the defaults. Signals are taken synchronously: blocked in every
 * thread, waited for here, so SIGHUP reloads the model and SIGTERM/SIGINT
 * stop the server gracefully without any handler or global.
 */
#include "cli.h"

#include "../src/serve/server.h"

#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: crossrec serve --model FILE.safetensors [options]\n"
            "\n"
            "Serves POST /v1/score, POST /v1/reload, GET /healthz and GET /metrics\n"
            "(docs/serving.md). SIGHUP reloads the model file; SIGTERM or SIGINT stop\n"
            "accepting connections and finish the requests in flight.\n"
            "  --model FILE          the checkpoint (required)\n"
            "  --config FILE         a YAML file with a serve: section [none]\n"
            "  --host ADDR           IPv4 address to bind [0.0.0.0]\n"
            "  --port N              port, 0 = any free one [8080]\n"
            "  --threads N           HTTP worker threads [4]\n"
            "  --kernel-threads N    threads inside one request, 0 = all cores [1]\n"
            "  --precision P         fp32, bf16 or int8 for the dense layers [fp32]\n"
            "  --max-body N          largest request body in bytes [1048576]\n"
            "  --max-candidates N    most candidates in one request [10000]\n"
            "  --help                this text\n");
}

int cr_cli_serve(int argc, char **argv) {
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},          {"config", required_argument, 0, 'c'},
        {"host", required_argument, 0, 'H'},           {"port", required_argument, 0, 'p'},
        {"threads", required_argument, 0, 't'},        {"kernel-threads", required_argument, 0, 'k'},
        {"precision", required_argument, 0, 'P'},      {"max-body", required_argument, 0, 'b'},
        {"max-candidates", required_argument, 0, 'n'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    /* options are read twice: --config first, then the rest over it */
    const char *model = NULL, *config = NULL;
    int ch;
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
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'c': break;
        case 'H': snprintf(c.host, sizeof c.host, "%s", optarg); break;
        case 'p': if (cr_cli_int("serve", "--port", optarg, 0, 65535, &v)) return 2; c.port = (int)v; break;
        case 't': if (cr_cli_int("serve", "--threads", optarg, 1, 1024, &v)) return 2; c.threads = (int)v; break;
        case 'k': if (cr_cli_int("serve", "--kernel-threads", optarg, 0, 1024, &v)) return 2; c.kernel_threads = (int)v; break;
        case 'b': if (cr_cli_int("serve", "--max-body", optarg, 1, 1LL << 34, &v)) return 2; c.max_body = v; break;
        case 'n': if (cr_cli_int("serve", "--max-candidates", optarg, 1, 10000000, &v)) return 2; c.max_candidates = v; break;
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
    if (!model) {
        fprintf(stderr, "crossrec serve: --model is required (see --help)\n");
        return 2;
    }
    snprintf(c.model_path, sizeof c.model_path, "%s", model);

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
    fprintf(stderr, "crossrec serve: %s (version %s, %s) on http://%s:%d with %d threads\n",
            c.model_path, ver, cr_precision_name(c.model.precision), c.host, cr_server_port(s),
            c.threads);
    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig)) continue;
        if (sig == SIGHUP) {
            cr_error re = {0};
            if (cr_server_reload(s, &re)) {
                fprintf(stderr, "crossrec serve: reload rejected, still serving %s: %s\n", ver, re.msg);
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
