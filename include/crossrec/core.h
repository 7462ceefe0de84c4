/*
 * crossrec/core.h - part of the public API (include <crossrec.h>, which
 * includes every part in order): status, errors, memory, files, the CPU's kernel sets and the context.
 */
#ifndef CROSSREC_CORE_H
#define CROSSREC_CORE_H

#ifndef CROSSREC_H
#error "include <crossrec.h>, not its parts"
#endif

/* ---- status and errors ------------------------------------------------ */

typedef enum cr_status {
    CR_OK = 0,
    CR_ERR_NOMEM,     /* an allocation failed */
    CR_ERR_IO,        /* open/read/write/rename failed (errno text in message) */
    CR_ERR_PARSE,     /* malformed text input: CSV, YAML, JSON */
    CR_ERR_CONFIG,    /* a well-formed config that says something invalid */
    CR_ERR_FORMAT,    /* a binary file (checkpoint) that is truncated or corrupt */
    CR_ERR_SHAPE,     /* tensor shapes or sizes that do not agree */
    CR_ERR_ARG,       /* a bad argument from the caller */
    CR_ERR_MISMATCH,  /* two valid things that do not belong together */
    CR_ERR_NOT_FOUND, /* a named thing (column, tensor, feature) is absent */
    CR_ERR_LIMIT,     /* a size limit was exceeded */
    CR_ERR_INTERNAL,  /* a bug: please report it */
    CR_ERR_CANCELLED  /* stopped by cr_ctx_cancel (work done so far is kept as documented) */
} cr_status;

/* What went wrong, in words: "data.csv:12:3: expected a number in column
 * 'rating', got 'abc'". Functions taking a cr_error* accept NULL. */
typedef struct cr_error {
    cr_status status;
    char msg[1024];
} cr_error;

CR_API const char *cr_strerror(cr_status s);

/* ---- memory ------------------------------------------------------------------ */

/* Frees a buffer the library returned (text, ids, JSON); NULL is a no-op. */
CR_API void cr_free(void *p);

/* ---- files ------------------------------------------------------------------- */

/* A whole file into *out, NUL-terminated (free with cr_free); *len (may be
 * NULL) receives its size. Errors name the path and errno's text. Thread-safe. */
CR_API cr_status cr_read_file(const char *path, char **out, size_t *len, cr_error *e);
/* Write n bytes to path atomically: to a temporary name beside it, flushed,
 * fsynced and renamed over path, so a reader (or a crash) sees the old file
 * or the new one, never half of one. "-" writes to standard output; an
 * existing path that is not a regular file is CR_ERR_IO. Thread-safe for
 * distinct paths. */
CR_API cr_status cr_write_file_atomic(const char *path, const void *buf, size_t n, cr_error *e);

/* ---- kernels and the CPU ------------------------------------------------------
 * The hot kernels come in sets, one per instruction-set level: scalar,
 * avx2, avx512 or avx512bf16 (x86-64), scalar or neon (arm64). A process
 * uses the best its CPU runs, or the lower one the environment variable
 * CROSSREC_ISA forces; a context may name another for its calls
 * (cr_ctx_params.kernels, docs/kernels.md). */
/* The set in use on the calling thread ("avx2", ...): inside a call (in its
 * log or progress callback) the context's, else the process's; and the
 * CPU's model name. */
CR_API const char *cr_kernel_set_name(void);
CR_API const char *cr_cpu_name(void);
/* CR_OK, or why CROSSREC_ISA cannot be honoured (an unknown name, or the
 * CPU feature the set needs and lacks); a program may refuse to start on
 * it (the library alone falls back to the best set, with one warning). */
CR_API cr_status cr_kernels_check(cr_error *e);
/* "cpu:", "features:", "kernels:" (the set in use and its GEMM, bf16 and
 * int8 paths) and "kernel sets:" (each set, and what this CPU lacks for
 * the ones it cannot run) lines; f is a FILE *. */
CR_API void cr_kernels_print(void *f);

/* ---- the context --------------------------------------------------------------
 * A cr_ctx holds what a computation may depend on besides its inputs: the
 * thread count, the kernel set, the arithmetic precision, where log lines
 * go, a progress callback and a cancel flag. Every entry point that
 * computes (train, evaluate, label, experiment, generate) takes one; NULL
 * means a default context (all of the process's CPUs, the process's kernel set,
 * fp32, log to stderr, no progress).
 *
 * No call leaves process-wide state changed: the thread count and the
 * kernel set are set for the calling thread for the duration of the call
 * (and for the threads it forks) and restored after it,
 * so two contexts used from two threads at once each get the results they
 * would get alone. One context serves one call at a time: using it from a
 * second thread while a call runs is CR_ERR_ARG (make one per thread).
 *
 * Threads: 0 means the CPUs of the process's affinity mask (taskset,
 * cpusets), capped by its cgroup v1/v2 CPU quota rounded up (a container
 * limited to 2 CPUs on a 64-core host gets 2). Waiting threads: libgomp
 * reads OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded, and by
 * default an idle thread spins before it sleeps, which makes training many
 * times slower when another process shares the cores (docs/bench.md). A
 * library cannot change that afterwards: a program that links crossrec
 * should start with OMP_WAIT_POLICY=passive in its environment (the crossrec
 * command re-executes itself with it when neither variable is set). */
typedef struct cr_ctx cr_ctx;

/* Arithmetic of the heavy products. For scoring, bf16 rounds weights and
 * inputs to bfloat16 and sums in fp32 (AVX-512 BF16 when the CPU has it,
 * the same rounding in plain C otherwise); int8 quantises weights per output
 * row and inputs per row (symmetric) and sums integer products (AVX-512
 * VNNI when available). For training only fp32 and bf16 exist (bf16 mixed
 * precision: master weights and optimizer state stay fp32). */
typedef enum cr_precision { CR_PRECISION_FP32 = 0, CR_PRECISION_BF16 = 1, CR_PRECISION_INT8 = 2 } cr_precision;

/* Log levels of the sink. */
typedef enum cr_log_level { CR_LOG_INFO = 0, CR_LOG_WARN = 1 } cr_log_level;

/* One line of log text, without its newline. Called on the thread that made
 * the library call. */
typedef void (*cr_log_fn)(void *user, cr_log_level level, const char *line);

/* Where a long job is. total is 0 when unknown; unit names what done counts
 * ("steps", "rows", "runs", "tokens"). */
typedef struct cr_progress_info {
    const char *stage;   /* "train", "label", "experiment", ... */
    int64_t     done;
    int64_t     total;
    const char *unit;
    double      seconds; /* since the stage started */
    double      loss;    /* the running training loss, NaN when there is none */
} cr_progress_info;

/* Called now and then (at most a few times a second) on the calling thread.
 * Returning non-zero cancels the job, as cr_ctx_cancel does. */
typedef int (*cr_progress_fn)(void *user, const cr_progress_info *p);

/* A job of one or more processes (MPI ranks). Built with `make MPI=1`,
 * cr_dist_init joins the job mpirun started (MPI_Init); otherwise, or
 * without mpirun, it is a job of one. A context whose params name a job
 * trains data-parallel over its ranks: every rank makes the same calls
 * (docs/distributed.md). NULL everywhere means this process alone. */
typedef struct cr_dist cr_dist;
CR_API cr_status cr_dist_init(cr_dist **out, int *argc, char ***argv, cr_error *e);
/* Leave the job (MPI_Finalize) and free d. */
CR_API void      cr_dist_finalize(cr_dist *d);
/* End every rank of a job of several processes at once with this exit
 * status (MPI_Abort, which does not return). For a job of one it does
 * nothing and returns: the program exits by itself. For a program's main. */
CR_API void      cr_dist_abort(const cr_dist *d, int status);
CR_API int       cr_dist_rank(const cr_dist *d); /* 0 for NULL */
CR_API int       cr_dist_size(const cr_dist *d); /* 1 for NULL */
CR_API int       cr_dist_has_mpi(void);          /* 1 when built with MPI=1 */

typedef struct cr_ctx_params {
    int            threads;        /* 0 = the CPUs this process may use (affinity, quota) */
    cr_precision   precision;      /* default fp32; training takes fp32 or bf16 */
    cr_log_fn      log;            /* NULL = lines to stderr */
    void          *log_user;
    int            quiet;          /* 1 = no log lines at all (warnings included) */
    cr_progress_fn progress;       /* NULL = none */
    void          *progress_user;
    const cr_dist *dist;           /* the job training runs over; NULL = this process alone */
    const char    *kernels;        /* the kernel set: "scalar", "avx2", "avx512", "avx512bf16",
                                    * "neon"; NULL, "" or "auto" = the process's (the best the
                                    * CPU runs, or CROSSREC_ISA). Read by cr_ctx_new only. */
} cr_ctx_params;

/* The defaults above; always start from these (fields may be added). */
CR_API void      cr_ctx_params_init(cr_ctx_params *p);
/* p NULL = the defaults. A bad value (threads < 0 or > 4096, a precision
 * out of range, a kernel set that is unknown, not in this build or beyond
 * this CPU) is CR_ERR_ARG naming the field and, for kernels, why. */
CR_API cr_status cr_ctx_new(cr_ctx **out, const cr_ctx_params *p, cr_error *e);
CR_API void      cr_ctx_free(cr_ctx *c);
/* Ask the running job to stop at its next safe point; it then returns
 * CR_ERR_CANCELLED. Safe from any thread and from a signal handler. The
 * flag stays set until cr_ctx_reset_cancel. */
CR_API void      cr_ctx_cancel(cr_ctx *c);
CR_API void      cr_ctx_reset_cancel(cr_ctx *c);
/* The thread count calls on this context use (threads 0 resolved; a
 * config's `threads` key applies only where the context leaves it 0). */
CR_API int       cr_ctx_threads(const cr_ctx *c);
/* The kernel set calls on this context use ("avx2", ...): its own, or the
 * process's (cr_kernel_set_name() outside any call). NULL = the defaults. */
CR_API const char *cr_ctx_kernels(const cr_ctx *c);

/* The calling thread's thread count for calls that take no context
 * (cr_model_score and friends); 0 = all CPUs this process may use.
 * Prefer a cr_ctx. Results are bit-identical for a given seed and thread
 * count. */
CR_API void cr_set_threads(int n);
CR_API int  cr_get_threads(void);

#endif /* CROSSREC_CORE_H */
