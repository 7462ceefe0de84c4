/*
 * dist.c - cr_dist over Open MPI (built with -DCR_MPI, `make MPI=1`) or,
 * without it, a job of one process where sums are identities and gathers
 * are copies. The only file in crossrec that includes mpi.h. MPI errors
 * stay fatal (MPI_ERRORS_ARE_FATAL): a broken peer ends the job instead of
 * leaving the others waiting in a collective.
 */
#include "dist.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef CR_MPI
#include <mpi.h>
#endif

struct cr_dist {
    int rank, size, mpi;
};

int cr_dist_has_mpi(void) {
#ifdef CR_MPI
    return 1;
#else
    return 0;
#endif
}

int cr_dist_rank(const cr_dist *d) { return d ? d->rank : 0; }
int cr_dist_size(const cr_dist *d) { return d ? d->size : 1; }

static int multi(const cr_dist *d) { return d && d->size > 1; }

cr_status cr_dist_init(cr_dist **out, int *argc, char ***argv, cr_error *e) {
    cr_dist *d = calloc(1, sizeof *d);
    if (!d) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    d->size = 1;
#ifdef CR_MPI
    int ok = 0;
    MPI_Initialized(&ok);
    if (!ok && MPI_Init(argc, argv) != MPI_SUCCESS) {
        free(d);
        return cr_err(e, CR_ERR_INTERNAL, "MPI_Init failed");
    }
    d->mpi = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &d->size);
#else
    (void)argc;
    (void)argv;
#endif
    *out = d;
    return CR_OK;
}

void cr_dist_finalize(cr_dist *d) {
    if (!d) return;
#ifdef CR_MPI
    if (d->mpi) MPI_Finalize();
#endif
    free(d);
}

void cr_dist_abort(const cr_dist *d, int status) {
#ifdef CR_MPI
    if (multi(d)) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status); /* Open MPI ends every rank, this one too */
    }
#endif
    (void)d;
    (void)status; /* a job of one: nothing to end; the program exits itself */
}

void cr_dist_split(int64_t n, int r, int size, int64_t *lo, int64_t *hi) {
    *lo = n * r / size;
    *hi = n * (r + 1) / size;
}

#ifdef CR_MPI
static cr_status too_big(size_t n, cr_error *e) {
    return cr_err(e, CR_ERR_LIMIT, "an MPI message of %zu elements (at most %d per call)", n, INT_MAX);
}
#endif

/* The one all-reduce: kind 0 float sum, 1 double sum, 2 int64 sum, 3 double max. */
static cr_status reduce(const cr_dist *d, void *x, size_t n, int kind, cr_error *e) {
#ifdef CR_MPI
    static const int op_max[4] = {0, 0, 0, 1};
    MPI_Datatype t = kind == 0 ? MPI_FLOAT : kind == 2 ? MPI_INT64_T : MPI_DOUBLE;
    if (!multi(d) || n == 0) return CR_OK;
    if (n > INT_MAX) return too_big(n, e);
    MPI_Allreduce(MPI_IN_PLACE, x, (int)n, t, op_max[kind] ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD);
#else
    (void)d, (void)x, (void)n, (void)kind, (void)e;
#endif
    return CR_OK;
}

cr_status cr_dist_sum_f32(const cr_dist *d, float *x, size_t n, cr_error *e) { return reduce(d, x, n, 0, e); }
cr_status cr_dist_sum_f64(const cr_dist *d, double *x, size_t n, cr_error *e) { return reduce(d, x, n, 1, e); }
cr_status cr_dist_sum_i64(const cr_dist *d, int64_t *x, size_t n, cr_error *e) { return reduce(d, x, n, 2, e); }
cr_status cr_dist_max_f64(const cr_dist *d, double *x, size_t n, cr_error *e) { return reduce(d, x, n, 3, e); }

cr_status cr_dist_isum_f32(const cr_dist *d, float *x, size_t n, cr_dist_req *r, cr_error *e) {
    r->h = NULL;
#ifdef CR_MPI
    if (!multi(d) || n == 0) return CR_OK;
    if (n > INT_MAX) return too_big(n, e);
    MPI_Request *q = malloc(sizeof *q);
    if (!q) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    MPI_Iallreduce(MPI_IN_PLACE, x, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, q);
    r->h = q;
#else
    (void)d, (void)x, (void)n, (void)e;
#endif
    return CR_OK;
}

cr_status cr_dist_wait(cr_dist_req *r, cr_error *e) {
    (void)e;
#ifdef CR_MPI
    if (r->h) {
        MPI_Wait((MPI_Request *)r->h, MPI_STATUS_IGNORE);
        free(r->h);
    }
#endif
    r->h = NULL;
    return CR_OK;
}

cr_status cr_dist_bcast(const cr_dist *d, void *buf, size_t bytes, int root, cr_error *e) {
#ifdef CR_MPI
    if (!multi(d) || bytes == 0) return CR_OK;
    if (bytes > INT_MAX) return too_big(bytes, e);
    MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD);
#else
    (void)d, (void)buf, (void)bytes, (void)root, (void)e;
#endif
    return CR_OK;
}

cr_status cr_dist_allgatherv(const cr_dist *d, const void *send, size_t bytes, void *recv,
                             size_t *counts, cr_error *e) {
    if (!multi(d)) {
        if (counts) counts[0] = bytes;
        if (recv && bytes && recv != send) memmove(recv, send, bytes);
        return CR_OK;
    }
#ifdef CR_MPI
    int P = d->size;
    uint64_t mine = bytes, *all = malloc((size_t)P * sizeof *all);
    int *cnt = malloc((size_t)P * sizeof *cnt), *dsp = malloc((size_t)P * sizeof *dsp);
    cr_status s = CR_OK;
    if (!all || !cnt || !dsp) {
        s = cr_err(e, CR_ERR_NOMEM, "out of memory");
        goto done;
    }
    MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, MPI_COMM_WORLD);
    uint64_t tot = 0;
    for (int r = 0; r < P; r++) {
        if (counts) counts[r] = (size_t)all[r];
        cnt[r] = (int)all[r];
        dsp[r] = (int)tot;
        tot += all[r];
    }
    if (!recv) goto done;
    if (tot > INT_MAX) {
        s = too_big((size_t)tot, e);
        goto done;
    }
    MPI_Allgatherv(send, (int)bytes, MPI_BYTE, recv, cnt, dsp, MPI_BYTE, MPI_COMM_WORLD);
done:
    free(all);
    free(cnt);
    free(dsp);
    return s;
#else
    return CR_OK;
#endif
}

cr_status cr_dist_barrier(const cr_dist *d, cr_error *e) {
    (void)e;
#ifdef CR_MPI
    if (multi(d)) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)d;
#endif
    return CR_OK;
}

void cr_dist_part_path(const cr_dist *d, const char *out, char *buf, size_t cap) {
    if (!multi(d)) snprintf(buf, cap, "%s", out);
    else { /* dir/.partR-name: beside the output, with its extension (a TSV stays one) */
        const char *slash = strrchr(out, '/');
        int dn = slash ? (int)(slash - out + 1) : 0;
        snprintf(buf, cap, "%.*s.part%d-%s", dn, out, d->rank, out + dn);
    }
}

#define CONCAT_CHUNK ((size_t)1 << 20)

#ifdef CR_MPI
/* Append the file at path to a (rank 0's own part). */
static cr_status append_file(cr_atomic_file *a, const char *path, char *buf, cr_error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return cr_err(e, CR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    cr_status s = CR_OK;
    size_t n;
    while (!s && (n = fread(buf, 1, CONCAT_CHUNK, f)) > 0) s = cr_atomic_write(a, buf, n, e);
    if (!s && ferror(f)) s = cr_err(e, CR_ERR_IO, "%s: read failed", path);
    fclose(f);
    return s;
}
#endif

cr_status cr_dist_concat(const cr_dist *d, const char *part, const char *out, cr_error *e) {
    if (!multi(d)) return CR_OK; /* the part is the output */
#ifdef CR_MPI
    char *buf = malloc(CONCAT_CHUNK);
    if (!buf) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    cr_status s = CR_OK;
    if (d->rank == 0) {
        cr_atomic_file a;
        if ((s = cr_atomic_open(&a, out, e))) goto done;
        if (part) s = append_file(&a, part, buf, e);
        for (int r = 1; r < d->size && !s; r++) {
            int64_t left = 0;
            MPI_Recv(&left, 1, MPI_INT64_T, r, 71, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            while (left > 0 && !s) {
                int n = (int)(left < (int64_t)CONCAT_CHUNK ? left : (int64_t)CONCAT_CHUNK);
                MPI_Recv(buf, n, MPI_BYTE, r, 72, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                s = cr_atomic_write(&a, buf, (size_t)n, e);
                left -= n;
            }
        }
        if (!s) s = cr_atomic_commit(&a, e);
        else cr_atomic_abort(&a);
    } else {
        FILE *f = part ? fopen(part, "rb") : NULL;
        int64_t size = 0;
        if (part && !f) {
            s = cr_err(e, CR_ERR_IO, "%s: cannot open: %s", part, strerror(errno));
            goto done; /* the caller ends the job: rank 0 never waits forever */
        }
        if (f && (fseeko(f, 0, SEEK_END) != 0 || (size = ftello(f)) < 0 || fseeko(f, 0, SEEK_SET) != 0)) {
            fclose(f);
            s = cr_err(e, CR_ERR_IO, "%s: cannot seek: %s", part, strerror(errno));
            goto done;
        }
        MPI_Send(&size, 1, MPI_INT64_T, 0, 71, MPI_COMM_WORLD);
        while (size > 0) {
            size_t want = size < (int64_t)CONCAT_CHUNK ? (size_t)size : CONCAT_CHUNK;
            size_t n = fread(buf, 1, want, f);
            if (n != want) {
                fclose(f);
                s = cr_err(e, CR_ERR_IO, "%s: read failed", part);
                goto done;
            }
            MPI_Send(buf, (int)n, MPI_BYTE, 0, 72, MPI_COMM_WORLD);
            size -= (int64_t)n;
        }
        if (f) fclose(f);
    }
    if (part) unlink(part);
    /* nobody returns before the output exists: a caller may read it next */
    MPI_Barrier(MPI_COMM_WORLD);
done:
    free(buf);
    return s;
#else
    (void)part, (void)out, (void)e;
    return CR_OK;
#endif
}
