/*
 * mem.c - aligned allocation and parameter tables (one slab per role).
 * A parameter table names every tensor of a model and where it lives inside
 * one contiguous float block; gradients and optimizer moments reuse the
 * offsets in their own blocks. Never hand out pointers before cr_ptable_alloc.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void *cr_alloc(size_t bytes) {
    if (bytes == 0) return NULL;
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void cr_free(void *p) { free(p); }

void *cr_alloc_e(size_t bytes, cr_error *e, const char *what) {
    void *p = cr_alloc(bytes);
    if (!p && bytes)
        cr_err(e, CR_ERR_NOMEM, "out of memory allocating %zu bytes for %s",
               bytes, what ? what : "a buffer");
    return p;
}

cr_status cr_grow(void **p, size_t *cap, size_t need, size_t elt, cr_error *e) {
    if (need <= *cap) return CR_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * elt);
    if (!q) return cr_err(e, CR_ERR_NOMEM, "out of memory growing an array to %zu", nc);
    *p = q;
    *cap = nc;
    return CR_OK;
}

void cr_ptable_init(cr_ptable *pt) { memset(pt, 0, sizeof *pt); }

int cr_ptable_add(cr_ptable *pt, const char *name, int ndim, const int64_t *shape,
                  int flags) {
    CR_ASSERT(pt->data == NULL);
    CR_ASSERT(ndim >= 1 && ndim <= CR_MAX_DIMS);
    if (pt->n == pt->cap) {
        int nc = pt->cap ? pt->cap * 2 : 32;
        cr_tensor_info *t = realloc(pt->t, (size_t)nc * sizeof *t);
        if (!t) return -1;
        pt->t = t;
        pt->cap = nc;
    }
    cr_tensor_info *ti = &pt->t[pt->n];
    memset(ti, 0, sizeof *ti);
    snprintf(ti->name, sizeof ti->name, "%s", name);
    ti->ndim = ndim;
    ti->numel = 1;
    for (int i = 0; i < ndim; i++) {
        ti->shape[i] = shape[i];
        ti->numel *= (size_t)shape[i];
    }
    ti->flags = flags;
    ti->offset = pt->total;
    pt->total += (ti->numel + 15) & ~(size_t)15;
    return pt->n++;
}

cr_status cr_ptable_alloc(cr_ptable *pt, cr_error *e) {
    CR_ASSERT(pt->data == NULL);
    pt->data = cr_alloc_e((pt->total ? pt->total : 16) * sizeof(float), e,
                          "model parameters");
    return pt->data ? CR_OK : CR_ERR_NOMEM;
}

float *cr_ptable_ptr(const cr_ptable *pt, float *slab, int idx) {
    CR_ASSERT(idx >= 0 && idx < pt->n);
    return slab ? slab + pt->t[idx].offset : NULL;
}

int cr_ptable_find(const cr_ptable *pt, const char *name) {
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->t[i].name, name) == 0) return i;
    return -1;
}

void cr_ptable_free(cr_ptable *pt) {
    free(pt->t);
    cr_free(pt->data);
    memset(pt, 0, sizeof *pt);
}
