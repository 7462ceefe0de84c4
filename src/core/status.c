/*
 * status.c - status codes, error messages and the invariant check.
 * Library code reports through cr_error and returns; it never exits.
 * Only a broken invariant (a bug, not bad input) aborts, with file:line.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

#define CR_STR_(x) #x
#define CR_STR(x) CR_STR_(x)
_Static_assert(sizeof CR_VERSION == sizeof(CR_STR(CR_VERSION_MAJOR) "." CR_STR(CR_VERSION_MINOR) "." CR_STR(CR_VERSION_PATCH)),
               "CR_VERSION must spell CR_VERSION_MAJOR.MINOR.PATCH");

const char *cr_version(void) { return CR_VERSION; }

const char *cr_strerror(cr_status s) {
    switch (s) {
    case CR_OK: return "ok";
    case CR_ERR_NOMEM: return "out of memory";
    case CR_ERR_IO: return "input/output error";
    case CR_ERR_PARSE: return "malformed input";
    case CR_ERR_CONFIG: return "invalid configuration";
    case CR_ERR_FORMAT: return "corrupt or truncated file";
    case CR_ERR_SHAPE: return "shape mismatch";
    case CR_ERR_ARG: return "invalid argument";
    case CR_ERR_MISMATCH: return "mismatch";
    case CR_ERR_NOT_FOUND: return "not found";
    case CR_ERR_LIMIT: return "limit exceeded";
    case CR_ERR_INTERNAL: return "internal error";
    case CR_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

cr_status cr_err(cr_error *e, cr_status s, const char *fmt, ...) {
    if (!e) return s;
    e->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return s;
}

cr_status cr_err_prefix(cr_error *e, const char *fmt, ...) {
    if (!e) return CR_ERR_INTERNAL;
    char pre[512], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    snprintf(e->msg, sizeof e->msg, "%.400s: %.600s", pre, old);
    return e->status;
}

void cr_err_clear(cr_error *e) {
    if (!e) return;
    e->status = CR_OK;
    e->msg[0] = 0;
}

void cr_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "crossrec: internal invariant failed at %s:%d: %s\n", file,
            line, expr);
    abort();
}
