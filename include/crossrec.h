/*
 * crossrec.h - the public API of crossrec, and its manual (the parts in
 * include/crossrec/, one concept each, are included here in order).
 *
 * crossrec trains small multi-task rankers on recommendation logs, distils a
 * large source-domain ranker into them zero-shot, and serves them. Every
 * function that can fail returns a cr_status; details go to a cr_error the
 * caller owns. The library never exits and never prints unless asked to.
 */
#ifndef CROSSREC_H
#define CROSSREC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header. cr_version() gives the library's, which may
 * be newer within the same major version (the SONAME is libcrossrec.so.MAJOR). */
#define CR_VERSION_MAJOR 0
#define CR_VERSION_MINOR 2
#define CR_VERSION_PATCH 0
#define CR_VERSION "0.2.0"

/* Every entry point of the shared library carries CR_API; nothing else is
 * exported (the library is built with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define CR_API __attribute__((visibility("default")))
#else
#define CR_API
#endif

/* "0.2.0": the version of the library actually loaded. */
CR_API const char *cr_version(void);

#include "crossrec/core.h"
#include "crossrec/rank.h"
#include "crossrec/data.h"
#include "crossrec/lm.h"
#include "crossrec/ilm.h"

#ifdef __cplusplus
}
#endif
#endif /* CROSSREC_H */
