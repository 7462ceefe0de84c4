/*
 * embedding.c - embedding lookups and bags (sum or mean pooling), with
 * row-sparse backward: the gradient of a table with millions of rows is
 * the list of rows a batch touched, each once, in ascending order. Never
 * allocates (the caller's scratch holds the sort) and never writes a dense
 * table-sized gradient.
 *
 * Legend: B examples, D embedding dim, NNZ ids in a bag batch; ldo is the
 * row stride of out/dout, so features land in a slice of a wider input.
 */
#include "level.h"

#include <string.h>

void CR_ISA(cr_embedding_forward)(float *out, const int32_t *ids, const float *table, int B, int D,
                          int ldo) {
    CR_ASSERT(out && ids && table && B >= 0 && D >= 0 && ldo >= D);
    /* Rows are scattered over a table larger than the caches: asking for a
     * row a few iterations ahead hides most of the miss, and a short row
     * (16 floats is the common width) is copied inline, not by a call. */
    enum { AHEAD = 8 };
    CR_PARALLEL_FOR((size_t)B * D > CR_PAR_MIN_WORK)
    for (int r = 0; r < B; r++) {
        CR_ASSERT(ids[r] >= 0); /* ids are validated by the data layer */
        if (r + AHEAD < B) __builtin_prefetch(table + (size_t)ids[r + AHEAD] * D);
        const float *src = table + (size_t)ids[r] * D;
        float *dst = out + (size_t)r * ldo;
        if (D <= 16) {
            for (int d = 0; d < D; d++) dst[d] = src[d];
        } else {
            memcpy(dst, src, (size_t)D * sizeof(float));
        }
    }
}

void CR_ISA(cr_bag_forward)(float *out, const int64_t *off, const int32_t *ids, const float *table,
                    int B, int D, int ldo, cr_pooling mode) {
    CR_ASSERT(out && off && table && B >= 0 && D >= 0 && ldo >= D);
    CR_ASSERT(mode == CR_POOL_SUM || mode == CR_POOL_MEAN);
    CR_PARALLEL_FOR((size_t)(off[B] - off[0]) * D > CR_PAR_MIN_WORK)
    for (int r = 0; r < B; r++) {
        float *o = out + (size_t)r * ldo;
        for (int d = 0; d < D; d++) o[d] = 0.0f;
        int64_t a = off[r], z = off[r + 1];
        CR_ASSERT(z >= a);
        for (int64_t j = a; j < z; j++) {
            CR_ASSERT(ids[j] >= 0);
            const float *t = table + (size_t)ids[j] * D;
            for (int d = 0; d < D; d++) o[d] += t[d];
        }
        if (mode == CR_POOL_MEAN && z > a) {
            float inv = 1.0f / (float)(z - a);
            for (int d = 0; d < D; d++) o[d] *= inv;
        }
    }
}

/* Stable LSD radix sort of the positions 0..n-1 by key[pos], one byte per
 * pass, ping-ponging between a and tmp (both n long). Stability makes
 * equal ids keep ascending positions, which fixes the order in which their
 * gradients are summed. Passes over bytes that are zero in every key are
 * skipped, so small vocabularies cost one or two passes. Returns whichever
 * buffer holds the result. */
static int32_t *cr_sort_positions(int32_t *a, int32_t *tmp, const int32_t *key, int32_t n) {
    int32_t maxk = 0;
    for (int32_t i = 0; i < n; i++) {
        CR_ASSERT(key[i] >= 0);
        a[i] = i;
        maxk = key[i] > maxk ? key[i] : maxk;
    }
    int32_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 31 && (maxk >> shift) != 0; shift += 8) {
        int32_t count[257] = {0};
        for (int32_t i = 0; i < n; i++) count[((key[src[i]] >> shift) & 0xff) + 1]++;
        for (int k = 0; k < 256; k++) count[k + 1] += count[k];
        for (int32_t i = 0; i < n; i++) dst[count[(key[src[i]] >> shift) & 0xff]++] = src[i];
        int32_t *t = src;
        src = dst;
        dst = t;
    }
    return src;
}

/* The bag (example) that position j of the flat id list belongs to: the
 * last b with off[b] <= j, by binary search (bags may be empty, so several
 * offsets can be equal; the last one is the bag that is not empty). */
static int cr_bag_of(const int64_t *off, int B, int64_t j) {
    int lo = 0, hi = B - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (off[mid] <= j) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Shared by lookups (off == NULL: position j is example j) and bags.
 * Sort positions by id, record where each run of equal ids starts, then
 * sum each run's dout rows in position order. Runs write disjoint rows of
 * drows, so they can be split across threads, and each run's sum has the
 * same order whatever the thread count. */
static void cr_sparse_grad(int32_t *rows, float *drows, int *n_rows, const int64_t *off,
                           const int32_t *ids, const float *dout, int B, int D, int ldo,
                           cr_pooling mode, int32_t *scratch) {
    int64_t base = off ? off[0] : 0;
    int64_t nnz64 = off ? off[B] - off[0] : B;
    CR_ASSERT(nnz64 >= 0 && nnz64 <= INT32_MAX);
    int32_t n = (int32_t)nnz64;
    const int32_t *key = ids + base;
    int32_t *sorted = cr_sort_positions(scratch, scratch + n, key, n);
    int32_t *starts = sorted == scratch ? scratch + n : scratch; /* the free half */

    int nu = 0;
    for (int32_t i = 0; i < n; i++) {
        if (i == 0 || key[sorted[i]] != key[sorted[i - 1]]) {
            rows[nu] = key[sorted[i]];
            starts[nu] = i;
            nu++;
        }
    }
    *n_rows = nu;

    CR_PARALLEL_FOR((size_t)n * D > CR_PAR_MIN_WORK)
    for (int u = 0; u < nu; u++) {
        float *g = drows + (size_t)u * D;
        for (int d = 0; d < D; d++) g[d] = 0.0f;
        int32_t end = u + 1 < nu ? starts[u + 1] : n;
        for (int32_t i = starts[u]; i < end; i++) {
            int32_t j = sorted[i];
            int ex = off ? cr_bag_of(off, B, base + j) : j;
            const float *dy = dout + (size_t)ex * ldo;
            if (off && mode == CR_POOL_MEAN) {
                /* mean pooling: each of the bag's ids received 1/count */
                float s = 1.0f / (float)(off[ex + 1] - off[ex]);
                for (int d = 0; d < D; d++) g[d] += s * dy[d];
            } else {
                for (int d = 0; d < D; d++) g[d] += dy[d];
            }
        }
    }
}

/* rows, drows and n_rows are outputs of this call (written, not added to):
 * the optimizer applies them row by row. Calling it again for another
 * batch gives a fresh list. */
void CR_ISA(cr_embedding_backward)(int32_t *rows, float *drows, int *n_rows, const int32_t *ids,
                           const float *dout, int B, int D, int ldo, int32_t *scratch) {
    CR_ASSERT(rows && drows && n_rows && ids && dout && scratch && B >= 0 && ldo >= D);
    cr_sparse_grad(rows, drows, n_rows, NULL, ids, dout, B, D, ldo, CR_POOL_SUM, scratch);
}

void CR_ISA(cr_bag_backward)(int32_t *rows, float *drows, int *n_rows, const int64_t *off,
                     const int32_t *ids, const float *dout, int B, int D, int ldo,
                     cr_pooling mode, int32_t *scratch) {
    CR_ASSERT(rows && drows && n_rows && off && dout && scratch && B >= 0 && ldo >= D);
    CR_ASSERT(mode == CR_POOL_SUM || mode == CR_POOL_MEAN);
    if (B == 0 || off[B] == off[0]) {
        *n_rows = 0;
        return;
    }
    CR_ASSERT(ids);
    cr_sparse_grad(rows, drows, n_rows, off, ids, dout, B, D, ldo, mode, scratch);
}
