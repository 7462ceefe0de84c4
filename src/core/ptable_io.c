/*
 * ptable_io.c - parameter tables to and from safetensors, and conversion
 * of stored dtypes to float. Loading validates the whole checkpoint against
 * the table first and only then writes the slab: all or nothing.
 */
#include "ptable_io.h"

#include <string.h>

/* prefix + name into buf; 0 if it does not fit a tensor name. */
static int pio_name(char *buf, const char *prefix, const char *name) {
    int n = snprintf(buf, CR_MAX_NAME, "%s%s", prefix ? prefix : "", name);
    return n >= 0 && n < CR_MAX_NAME;
}

cr_status cr_ptable_to_st(const cr_ptable *pt, const float *slab, const char *prefix,
                          cr_st_writer *w, cr_error *e) {
    CR_ASSERT(slab != NULL || pt->n == 0);
    char name[CR_MAX_NAME];
    for (int i = 0; i < pt->n; i++) {
        const cr_tensor_info *ti = &pt->t[i];
        if (!pio_name(name, prefix, ti->name))
            return cr_err(e, CR_ERR_ARG, "tensor '%s%s': name longer than %d bytes",
                          prefix ? prefix : "", ti->name, CR_MAX_NAME - 1);
        CR_TRY(cr_st_add(w, name, CR_DT_F32, ti->ndim, ti->shape, slab + ti->offset, e));
    }
    return CR_OK;
}

static int pio_is_float(cr_dtype dt) {
    return dt == CR_DT_F32 || dt == CR_DT_F16 || dt == CR_DT_BF16 || dt == CR_DT_F64;
}

cr_status cr_ptable_from_st(const cr_ptable *pt, float *slab, const char *prefix,
                            const cr_st_file *f, int allow_missing, cr_error *e) {
    char name[CR_MAX_NAME];
    /* Pass 1: check everything. */
    for (int i = 0; i < pt->n; i++) {
        const cr_tensor_info *ti = &pt->t[i];
        if (!pio_name(name, prefix, ti->name))
            return cr_err(e, CR_ERR_ARG, "tensor '%s%s': name longer than %d bytes",
                          prefix ? prefix : "", ti->name, CR_MAX_NAME - 1);
        const cr_st_tensor *t = cr_st_find(f, name);
        if (!t) {
            if (allow_missing) continue;
            return cr_err(e, CR_ERR_NOT_FOUND,
                          "%s: no tensor '%s', which the model needs (is this checkpoint from "
                          "a different configuration?)", f->path, name);
        }
        if (!pio_is_float(t->dtype))
            return cr_err(e, CR_ERR_MISMATCH,
                          "%s: tensor '%s' has dtype %s, expected a float type (F32, BF16, F16, F64)",
                          f->path, name, cr_dtype_name(t->dtype));
        /* cr_st_expect with the tensor's own dtype checks just the shape. */
        CR_TRY(cr_st_expect(f, name, t->dtype, ti->ndim, ti->shape, NULL, e));
    }
    /* Pass 2: copy. */
    for (int i = 0; i < pt->n; i++) {
        const cr_tensor_info *ti = &pt->t[i];
        pio_name(name, prefix, ti->name);
        const cr_st_tensor *t = cr_st_find(f, name);
        if (t) cr_st_to_f32(t, slab + ti->offset);
    }
    return CR_OK;
}

/* IEEE half to float, exactly (every half is a float). */
static float pio_half(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, ex = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (ex == 0) {
        float v = (float)man * 0x1p-24f; /* zero or subnormal */
        return sign ? -v : v;
    }
    if (ex == 31)
        bits = sign | 0x7f800000u | (man << 13); /* inf or NaN */
    else
        bits = sign | ((ex + 112) << 23) | (man << 13); /* rebias 15 -> 127 */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void cr_st_to_f32(const cr_st_tensor *t, float *out) {
    const uint8_t *p = t->data;
    size_t n = t->numel;
    switch (t->dtype) {
    case CR_DT_F32:
        if (n) memcpy(out, p, n * 4);
        return;
    case CR_DT_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16; /* bf16 is the top half of a float */
            memcpy(&out[i], &bits, 4);
        }
        return;
    case CR_DT_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            out[i] = pio_half(h);
        }
        return;
    case CR_DT_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            out[i] = (float)d;
        }
        return;
    case CR_DT_I8:
        for (size_t i = 0; i < n; i++) out[i] = (float)(int8_t)p[i];
        return;
    case CR_DT_U8:
        for (size_t i = 0; i < n; i++) out[i] = (float)p[i];
        return;
    case CR_DT_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            out[i] = (float)v;
        }
        return;
    case CR_DT_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            out[i] = (float)v;
        }
        return;
    }
    CR_ASSERT(0);
}
