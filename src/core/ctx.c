/*
 * ctx.c - the explicit context every computing entry point takes: thread
 * count, kernel set, precision, the log sink, progress and cancel. A call
 * brackets its work with cr_call_begin/cr_call_end, which set the calling
 * thread's OpenMP thread count and kernel level and restore both after, so
 * no call leaves process-wide state changed. Nothing here may keep a global: the default context of a
 * NULL argument lives in the call's own frame.
 */
#define _GNU_SOURCE /* fopencookie: the log sink as a FILE* for code that prints */
#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- the log sink: a FILE* whose lines go to the callback ------------------- */

static ssize_t sink_write(void *cookie, const char *buf, size_t n) {
    cr_ctx *c = cookie;
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\n' || c->line_len + 1 >= sizeof c->line) {
            c->line[c->line_len] = 0;
            /* a progress bar redraws its line with '\r': keep only the last draw */
            char *l = strrchr(c->line, '\r');
            l = l ? l + 1 : c->line;
            cr_log_level lv = !strncmp(l, "warning", 7) ? CR_LOG_WARN : CR_LOG_INFO;
            if (*l || ch == '\n') c->p.log(c->p.log_user, lv, l);
            c->line_len = 0;
            if (ch == '\n') continue;
        }
        c->line[c->line_len++] = ch;
    }
    return (ssize_t)n;
}

static int sink_close(void *cookie) {
    cr_ctx *c = cookie;
    if (c->line_len) {
        c->line[c->line_len] = 0;
        c->p.log(c->p.log_user, CR_LOG_INFO, c->line);
        c->line_len = 0;
    }
    return 0;
}

/* ---- public: parameters, lifetime, cancel -------------------------------------- */

void cr_ctx_params_init(cr_ctx_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->precision = CR_PRECISION_FP32;
}

static cr_status ctx_setup(cr_ctx *c, const cr_ctx_params *p, cr_error *e) {
    memset(c, 0, sizeof *c);
    if (p) c->p = *p;
    else cr_ctx_params_init(&c->p);
    if (c->p.threads < 0 || c->p.threads > 4096)
        return cr_err(e, CR_ERR_ARG, "cr_ctx_params.threads: expected 0 (all CPUs) to 4096, got %d",
                      c->p.threads);
    if ((int)c->p.precision < CR_PRECISION_FP32 || c->p.precision > CR_PRECISION_INT8)
        return cr_err(e, CR_ERR_ARG,
                      "cr_ctx_params.precision: expected CR_PRECISION_FP32, _BF16 or _INT8, got %d",
                      (int)c->p.precision);
    c->isa = -1;
    const char *k = c->p.kernels;
    if (k && *k && strcmp(k, "auto")) {
        char what[96];
        snprintf(what, sizeof what, "cr_ctx_params.kernels '%.40s'", k);
        cr_isa isa;
        CR_TRY(cr_isa_request(k, what, &isa, e));
        c->isa = (int)isa;
    }
    c->p.kernels = NULL; /* the caller's string need not outlive cr_ctx_new */
    atomic_init(&c->cancel, 0);
    atomic_init(&c->busy, 0);
    c->log = stderr;
    if (c->p.quiet) {
        c->log = NULL;
    } else if (c->p.log) {
        cookie_io_functions_t io = {.write = sink_write, .close = sink_close};
        c->log = fopencookie(c, "w", io);
        if (!c->log) return cr_err(e, CR_ERR_NOMEM, "out of memory for the context's log sink");
        setvbuf(c->log, NULL, _IOLBF, 0);
        c->own_log = 1;
    }
    return CR_OK;
}

cr_status cr_ctx_new(cr_ctx **out, const cr_ctx_params *p, cr_error *e) {
    if (!out) return cr_err(e, CR_ERR_ARG, "cr_ctx_new: out is NULL");
    *out = NULL;
    cr_ctx *c = malloc(sizeof *c);
    if (!c) return cr_err(e, CR_ERR_NOMEM, "out of memory for a context");
    cr_status s = ctx_setup(c, p, e);
    if (s) {
        free(c);
        return s;
    }
    *out = c;
    return CR_OK;
}

static void ctx_teardown(cr_ctx *c) {
    if (c->own_log && c->log) fclose(c->log);
    c->log = NULL;
}

void cr_ctx_free(cr_ctx *c) {
    if (!c) return;
    ctx_teardown(c);
    free(c);
}

void cr_ctx_cancel(cr_ctx *c) {
    if (c) atomic_store(&c->cancel, 1);
}

void cr_ctx_reset_cancel(cr_ctx *c) {
    if (c) atomic_store(&c->cancel, 0);
}

int cr_ctx_threads(const cr_ctx *c) {
    if (c && c->p.threads > 0) return c->p.threads;
    return cr_threads_available();
}

const char *cr_ctx_kernels(const cr_ctx *c) {
    return cr_isa_name(c && c->isa >= 0 ? (cr_isa)c->isa : cr_isa_default());
}

/* ---- inside the library ------------------------------------------------------- */

int cr_ctx_threads_for(const cr_ctx *c, int config_threads) {
    if (c && c->p.threads > 0) return c->p.threads;
    return config_threads > 0 ? config_threads : cr_threads_available();
}

cr_status cr_call_begin(cr_call *k, cr_ctx *ctx, const char *what, cr_error *e) {
    memset(k, 0, sizeof *k);
    if (!ctx) {
        cr_status s = ctx_setup(&k->local, NULL, e);
        if (s) return s;
        ctx = &k->local;
    } else if (atomic_exchange(&ctx->busy, 1)) {
        return cr_err(e, CR_ERR_ARG,
                      "%s: this context is in use by another call; make one context per thread",
                      what);
    }
    k->ctx = ctx;
    k->saved_threads = cr_get_threads();
    k->saved_isa = cr_thread_isa();
    cr_set_threads(ctx->p.threads); /* 0: all CPUs this process may use */
    /* -1 leaves the process's set, also inside an enclosing call's */
    if (ctx->isa >= 0) cr_set_thread_isa(ctx->isa);
    return CR_OK;
}

void cr_call_end(cr_call *k) {
    if (!k->ctx) return;
    if (k->ctx->log) fflush(k->ctx->log);
    cr_set_threads(k->saved_threads);
    cr_set_thread_isa(k->saved_isa);
    if (k->ctx == &k->local) ctx_teardown(&k->local);
    else atomic_store(&k->ctx->busy, 0);
    k->ctx = NULL;
}

int cr_ctx_cancelled(const cr_ctx *c) {
    return c ? atomic_load(&((cr_ctx *)c)->cancel) : 0;
}

int cr_ctx_poll(cr_ctx *c, const cr_progress_info *p) {
    if (!c) return 0;
    if (c->p.progress) {
        double now = cr_now();
        int last = p->total > 0 && p->done >= p->total;
        if (last || now - c->last_progress >= 0.2) {
            c->last_progress = now;
            if (c->p.progress(c->p.progress_user, p)) cr_ctx_cancel(c);
        }
    }
    return cr_ctx_cancelled(c);
}

FILE *cr_ctx_log(const cr_ctx *c) { return c ? c->log : stderr; }
