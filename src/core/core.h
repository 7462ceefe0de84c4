/*
 * core.h - the bottom layer: status and error messages, aligned memory,
 * parameter slabs, random numbers, checked file I/O, safetensors, threads.
 * Nothing here knows about machine learning models; nothing here exits.
 */
#ifndef CR_CORE_H
#define CR_CORE_H

#include "crossrec.h"
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

/* ---- errors ------------------------------------------------------------ */

/* Set e (if not NULL) to status s with a printf-style message; returns s so
 * callers write `return cr_err(e, CR_ERR_IO, "%s: %s", path, strerror(errno));` */
cr_status cr_err(cr_error *e, cr_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "while loading model.st: <old message>" (the
 * ": " is added here; fmt must not end with one). Returns e->status, or
 * CR_ERR_INTERNAL when e is NULL: callers that return a status they hold
 * return that, not this. */
cr_status cr_err_prefix(cr_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cr_err_clear(cr_error *e);

/* Invariant check: a failure is a bug, so it aborts with file:line. */
#define CR_ASSERT(cond)                                                       \
    do {                                                                      \
        if (!(cond)) cr_assert_fail(#cond, __FILE__, __LINE__);               \
    } while (0)
void cr_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

/* Propagate a failure: `CR_TRY(cr_foo(..., e));` inside a function whose
 * cleanup needs no goto. */
#define CR_TRY(x)                                                             \
    do {                                                                      \
        cr_status cr_try_s_ = (x);                                            \
        if (cr_try_s_ != CR_OK) return cr_try_s_;                             \
    } while (0)

/* ---- memory -------------------------------------------------------------- */

/* 64-byte aligned, zeroed; NULL on failure (or size 0). Free with cr_free. */
void *cr_alloc(size_t bytes);
void  cr_free(void *p);
/* Like cr_alloc but reports failure through e. */
void *cr_alloc_e(size_t bytes, cr_error *e, const char *what);
/* Growable array helper: ensure *cap >= need elements of size elt. */
cr_status cr_grow(void **p, size_t *cap, size_t need, size_t elt, cr_error *e);

/* ---- parameter tables ----------------------------------------------------
 * One slab per role (llm.c): every float parameter of a model lives in one
 * block, and a table of names, shapes and offsets describes it. Gradients,
 * Adam's m and v are further slabs with the same offsets. A checkpoint is
 * this table written as safetensors. Register all tensors first, then call
 * cr_ptable_alloc once; offsets are 16-float aligned so each tensor starts
 * on a cache line. */
#define CR_MAX_NAME 96
#define CR_MAX_DIMS 4

typedef struct cr_tensor_info {
    char    name[CR_MAX_NAME];
    int     ndim;
    int64_t shape[CR_MAX_DIMS];
    size_t  numel;
    size_t  offset;   /* in floats from the start of the slab */
    int     flags;    /* CR_PARAM_* */
} cr_tensor_info;

enum {
    CR_PARAM_NO_DECAY = 1, /* biases, norms: AdamW skips weight decay */
    CR_PARAM_FROZEN   = 2, /* not updated by the optimizer */
    CR_PARAM_SPARSE   = 4, /* embedding table: row-sparse gradients */
};

typedef struct cr_ptable {
    cr_tensor_info *t;
    int     n, cap;
    size_t  total;    /* floats */
    float  *data;     /* the parameter slab (NULL until allocated) */
} cr_ptable;

void      cr_ptable_init(cr_ptable *pt);
/* Register a tensor; returns its index, or -1 on allocation failure. */
int       cr_ptable_add(cr_ptable *pt, const char *name, int ndim,
                        const int64_t *shape, int flags);
cr_status cr_ptable_alloc(cr_ptable *pt, cr_error *e);
float    *cr_ptable_ptr(const cr_ptable *pt, float *slab, int idx);
int       cr_ptable_find(const cr_ptable *pt, const char *name);
void      cr_ptable_free(cr_ptable *pt);

/* ---- random numbers -------------------------------------------------------
 * Mersenne Twister mt19937 (the generator PyTorch's CPU generator uses),
 * with explicit state: no hidden globals. */
typedef struct cr_rng {
    uint32_t mt[624];
    int      idx;
    int      has_spare;
    double   spare;
} cr_rng;

void     cr_rng_seed(cr_rng *r, uint64_t seed);
uint32_t cr_rng_u32(cr_rng *r);
uint64_t cr_rng_u64(cr_rng *r);
double   cr_rng_uniform(cr_rng *r);            /* [0, 1) with 53 bits */
double   cr_rng_normal(cr_rng *r);             /* N(0, 1) */
uint64_t cr_rng_below(cr_rng *r, uint64_t n);  /* uniform in [0, n), unbiased */
void     cr_rng_shuffle_u32(cr_rng *r, uint32_t *a, size_t n);
/* Fill w with U(-a, a); Kaiming/Xavier callers pick a. */
void     cr_rng_fill_uniform(cr_rng *r, float *w, size_t n, float a);
void     cr_rng_fill_normal(cr_rng *r, float *w, size_t n, float std);

/* ---- files ------------------------------------------------------------- */

/* cr_read_file and cr_write_file_atomic are public (crossrec.h). */

/* Read-only memory map of a whole file. */
typedef struct cr_mmap {
    const uint8_t *data;
    size_t         size;
} cr_mmap;
cr_status cr_mmap_open(cr_mmap *m, const char *path, cr_error *e);
void      cr_mmap_close(cr_mmap *m);

/* Atomic file writer: writes to "<path>.tmp.<pid>", and cr_atomic_commit
 * flushes, fsyncs and renames over path. cr_atomic_abort removes the
 * temporary. A kill at any point leaves either the old file or the new
 * one, never half of one. The path "-" writes to standard output; an
 * existing path that is not a regular file (a symlink such as /dev/stdout,
 * a device, a directory) is an error. */
typedef struct cr_atomic_file {
    FILE *f;
    char  path[4096];
    char  tmp[4200];
} cr_atomic_file;
cr_status cr_atomic_open(cr_atomic_file *a, const char *path, cr_error *e);
cr_status cr_atomic_write(cr_atomic_file *a, const void *buf, size_t n, cr_error *e);
cr_status cr_atomic_commit(cr_atomic_file *a, cr_error *e);
void      cr_atomic_abort(cr_atomic_file *a);
/* mkdir -p */
cr_status cr_mkdirs(const char *path, cr_error *e);
bool      cr_file_exists(const char *path);

/* ---- time ---------------------------------------------------------------- */
double cr_now(void); /* monotonic seconds */

/* ---- progress lines (progress.c) --------------------------------------------
 * "NAME done/total UNIT | rate UNIT/s | extra | 0:12 elapsed, eta 0:31":
 * redrawn in place on a terminal (every 0.2 s), a whole line every
 * CR_METER_LOG_SECONDS otherwise (logs). out NULL = silent; total 0 =
 * unknown (no eta). */
#define CR_METER_LOG_SECONDS 5.0
typedef struct cr_meter {
    FILE   *out;
    int     tty, printed;
    double  t0, last;
    int64_t total;
    char    label[64], unit[16];
} cr_meter;
void cr_meter_start(cr_meter *m, FILE *out, const char *label, int64_t total, const char *unit);
/* done: units finished; rate_count / elapsed is the rate shown, in
 * rate_unit (NULL = the unit); force: print now, whatever the interval. */
void cr_meter_update(cr_meter *m, int64_t done, double rate_count, const char *rate_unit,
                     const char *extra, int force);
void cr_meter_done(cr_meter *m); /* ends a redrawn line */
/* 12345 -> "12.3k"; 75 s -> "1:15" (h:mm:ss past an hour). */
void cr_meter_count(char *buf, size_t n, double v);
/* cr_meter_clock (a duration) is public: crossrec.h. */

/* ---- the CPU and the kernel levels (cpu.c) ---------------------------------------
 * What the CPU can run and which instruction-set level a caller asks for.
 * The kernels themselves, one table per level, live a layer up
 * (src/kernels/isa.h); this part only names the levels, so that a context
 * can check the one it is given without reaching the kernels. */
/* Levels, lowest first. Each x86 level includes the ones before it. */
typedef enum {
    CR_ISA_SCALAR = 0, /* the baseline: plain C, auto-vectorised for SSE4.2 or NEON */
    CR_ISA_AVX2,       /* + AVX2, FMA (Haswell, Zen 1-3) */
    CR_ISA_AVX512,     /* + AVX-512 F, BW, VL, DQ (Skylake-X, Zen 4) */
    CR_ISA_AVX512BF16, /* + AVX512_BF16, AVX512_VNNI (Cooper Lake, Sapphire Rapids, Zen 4) */
    CR_ISA_NEON,       /* arm64 Advanced SIMD (every arm64 CPU) */
    CR_ISA_COUNT
} cr_isa;
/* Whether this CPU (and its OS, for the wider registers) can run `isa`;
 * if not and missing is non-NULL, *missing names the first feature lacking. */
int         cr_isa_supported(cr_isa isa, const char **missing);
/* Whether this build compiles the kernels of `isa` (the Makefile's
 * ISA_LEVELS: the x86-64 levels, or scalar and neon on arm64). */
int         cr_isa_built(cr_isa isa);
const char *cr_isa_name(cr_isa isa);
/* cr_isa by name; -1 if unknown. */
int         cr_isa_parse(const char *name);
/* The best level this build has and this CPU can run. */
cr_isa      cr_isa_best(void);
/* The level `name` asks for: NULL, "" and "auto" are the best one; else
 * CR_ERR_ARG saying why it cannot be run (an unknown name, a level this
 * build lacks, the CPU feature missing), each message starting with
 * `what` ("CROSSREC_ISA=avx9", "cr_ctx_params.kernels 'avx9'"). */
cr_status   cr_isa_request(const char *name, const char *what, cr_isa *isa, cr_error *e);
/* The process's level: CROSSREC_ISA when this CPU can honour it, else the
 * best (a bad CROSSREC_ISA is reported once on stderr). Read once. */
cr_isa      cr_isa_default(void);
/* The features found, space-separated ("sse4.2 avx avx2 fma avx512f ..."),
 * and the CPU's model name, for `crossrec cpu` and bench outputs. */
const char *cr_cpu_features(void);
const char *cr_cpu_model(void);

/* ---- threads and the context ---------------------------------------------------
 * cr_set_threads/cr_get_threads (crossrec.h) act on the calling thread's
 * OpenMP setting only. */
int cr_threads_available(void); /* CPUs this process may use */
/* The kernel level the calling thread asks for: a cr_isa, or -1 for the
 * process's (cr_isa_default). cr_call_begin sets it from the context and
 * cr_call_end restores it; the kernels' dispatch reads it on every call.
 * Like any thread-local it is not inherited by OpenMP's worker threads: a
 * parallel region whose body calls a dispatching kernel captures it before
 * the region and sets it inside (src/kernels/kernels.h, CR_KERNELS_*). */
int  cr_thread_isa(void);
void cr_set_thread_isa(int isa);

struct cr_ctx {
    cr_ctx_params p;
    FILE         *log;       /* stderr, the sink (fopencookie), or NULL when quiet */
    int           own_log;
    _Atomic int   cancel;
    _Atomic int   busy;      /* a call is running on it */
    int           isa;       /* the kernel level p.kernels names; -1 = the process's */
    double        last_progress;
    char          line[1024]; /* the sink's partial line */
    size_t        line_len;
};

/* One public call's bracket: takes ctx (NULL = defaults in k itself), marks
 * it busy (a second concurrent user gets CR_ERR_ARG naming `what`), sets the
 * calling thread's thread count and kernel level from the context;
 * cr_call_end restores everything. k->ctx is
 * the context to use in between. */
typedef struct cr_call {
    cr_ctx *ctx;
    cr_ctx  local;
    int     saved_threads;
    int     saved_isa;
} cr_call;
cr_status cr_call_begin(cr_call *k, cr_ctx *ctx, const char *what, cr_error *e);
void      cr_call_end(cr_call *k);
/* The thread count of a call whose config has a `threads` key: the
 * context's when it sets one (> 0), else config_threads when > 0, else
 * every CPU the process may use. The entry point sets it (cr_set_threads)
 * inside the bracket; cr_call_end restores the caller's. */
int       cr_ctx_threads_for(const cr_ctx *c, int config_threads);
/* Report progress (rate-limited to the callback) and say whether the job
 * should stop: 1 once cr_ctx_cancel was called or the callback asked. */
int       cr_ctx_poll(cr_ctx *c, const cr_progress_info *p);
int       cr_ctx_cancelled(const cr_ctx *c);
/* Where log lines go: NULL when the context is quiet. */
FILE     *cr_ctx_log(const cr_ctx *c);

/* ---- safetensors ----------------------------------------------------------
 * The checkpoint format: an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
 * then the raw tensor bytes. The reader maps the file and checks every
 * offset, size and shape against the file before trusting it. The writer
 * goes through cr_atomic_file. Tensor data is borrowed: the writer copies
 * nothing until cr_st_save, so keep the buffers alive until then. */
typedef enum cr_dtype {
    CR_DT_F32, CR_DT_F16, CR_DT_BF16, CR_DT_F64,
    CR_DT_I8, CR_DT_U8, CR_DT_I32, CR_DT_I64
} cr_dtype;

size_t      cr_dtype_size(cr_dtype dt);
const char *cr_dtype_name(cr_dtype dt); /* "F32", "BF16", ... as in safetensors */

typedef struct cr_st_tensor {
    char        name[CR_MAX_NAME];
    cr_dtype    dtype;
    int         ndim;
    int64_t     shape[CR_MAX_DIMS];
    size_t      numel;
    const void *data;    /* into the map; 8-byte aligned is not guaranteed */
    size_t      nbytes;
} cr_st_tensor;

typedef struct cr_st_file {
    char          path[1024];
    cr_mmap       map;
    int           n;
    cr_st_tensor *t;
    int           n_meta;
    char        **meta_key; /* __metadata__ entries, in file order */
    char        **meta_val;
} cr_st_file;

cr_status           cr_st_open(cr_st_file *f, const char *path, cr_error *e);
const cr_st_tensor *cr_st_find(const cr_st_file *f, const char *name);
const char         *cr_st_meta(const cr_st_file *f, const char *key); /* NULL if absent */
/* Find a tensor that must exist with this dtype and shape; a clear error
 * names the file, the tensor and what was expected otherwise. */
cr_status cr_st_expect(const cr_st_file *f, const char *name, cr_dtype dt, int ndim,
                       const int64_t *shape, const cr_st_tensor **out, cr_error *e);
void      cr_st_close(cr_st_file *f);

typedef struct cr_st_writer {
    int           n, cap;
    cr_st_tensor *t;
    int           n_meta, cap_meta;
    char        **meta_key;
    char        **meta_val;
} cr_st_writer;

void      cr_st_writer_init(cr_st_writer *w);
cr_status cr_st_add(cr_st_writer *w, const char *name, cr_dtype dt, int ndim,
                    const int64_t *shape, const void *data, cr_error *e);
cr_status cr_st_add_meta(cr_st_writer *w, const char *key, const char *value, cr_error *e);
cr_status cr_st_save(const cr_st_writer *w, const char *path, cr_error *e);
void      cr_st_writer_free(cr_st_writer *w);

#endif /* CR_CORE_H */
