/*
 * export_onnx.c - the ranker's forward (ranker_forward.c, nn/mlp.c, the embedding
 * and MoE kernels) written out as an ONNX graph of standard opset-13
 * operators, through protobuf-c code generated from Debian's onnx.proto.
 * It mirrors the forward op for op: any layer or feature it cannot mirror
 * is an error naming it, never an approximate graph. The weights are fp32
 * initializers pointing into the model (nothing is copied until packing),
 * or on request bfloat16 ones behind a Cast.
 *
 * Legend: B batch rows, L bag length, C_in model input width, K tasks,
 * E experts, S experts one gate mixes, H layer width.
 */
#include "export_onnx.h"

#include "checkpoint.h"
#include "config.h"

#include "onnx.pb-c.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ONNX raw_data is little-endian: this exporter copies tensors as they are in memory"
#endif

enum {
    OX_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
    OX_INT64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
    OX_DOUBLE = ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE,
    OX_BF16 = ONNX__TENSOR_PROTO__DATA_TYPE__BFLOAT16,
};

/* ---- a graph builder over protobuf-c messages ------------------------------------
 * Every message and string lives in an arena freed at once. Errors are
 * sticky: after the first failure every call is a no-op returning "", and
 * the status is read once at the end, which keeps the graph code below a
 * plain transcription of the forward. */
typedef union ox_blk {
    union ox_blk *next;
    max_align_t   align;
} ox_blk;

typedef struct ox_list {
    void **p;
    size_t n, cap;
} ox_list;

typedef struct ox {
    cr_status        st;
    cr_error        *e;
    ox_blk          *blocks;
    ox_list          nodes, inits, inputs, outputs, meta;
    Onnx__NodeProto *last;
    int              counter;
    int              bf16; /* weight matrices and tables as bfloat16 behind a Cast */
} ox;

static void *ox_alloc(ox *b, size_t n) {
    if (b->st) return NULL;
    ox_blk *k = calloc(1, sizeof *k + n);
    if (!k) {
        b->st = cr_err(b->e, CR_ERR_NOMEM, "out of memory building the ONNX graph");
        return NULL;
    }
    k->next = b->blocks;
    b->blocks = k;
    return k + 1;
}

static char *ox_str(ox *b, const char *s) {
    size_t n = strlen(s) + 1;
    char *c = ox_alloc(b, n);
    if (c) memcpy(c, s, n);
    return c ? c : "";
}

static void ox_push(ox *b, ox_list *l, void *p) {
    if (b->st || !p) return;
    if (cr_grow((void **)&l->p, &l->cap, l->n + 1, sizeof *l->p, b->e)) {
        b->st = CR_ERR_NOMEM;
        return;
    }
    l->p[l->n++] = p;
}

static void ox_free(ox *b) {
    while (b->blocks) {
        ox_blk *k = b->blocks;
        b->blocks = k->next;
        free(k);
    }
    ox_list *ls[5] = {&b->nodes, &b->inits, &b->inputs, &b->outputs, &b->meta};
    for (int i = 0; i < 5; i++) free(ls[i]->p);
}

/* A fresh intermediate name; "/" starts none of the names users choose. */
static char *ox_name(ox *b, const char *what) {
    char buf[96];
    snprintf(buf, sizeof buf, "/%s_%d", what, b->counter++);
    return ox_str(b, buf);
}

/* One node: op over the NULL-terminated inputs, one output named out (or a
 * fresh name). Returns the output's name; attributes go to b->last. */
static const char *ox_op(ox *b, const char *op, const char *out, ...) {
    const char *in[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, out);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        CR_ASSERT(n < 8);
        in[n++] = s;
    }
    va_end(ap);
    Onnx__NodeProto *nd = ox_alloc(b, sizeof *nd);
    char **ins = ox_alloc(b, (n ? n : 1) * sizeof *ins);
    char **outs = ox_alloc(b, sizeof *outs);
    if (!nd || !ins || !outs) return "";
    onnx__node_proto__init(nd);
    for (size_t i = 0; i < n; i++) ins[i] = ox_str(b, in[i]);
    outs[0] = ox_str(b, out ? out : ox_name(b, op));
    nd->n_input = n;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->op_type = ox_str(b, op);
    nd->name = ox_name(b, op);
    ox_push(b, &b->nodes, nd);
    b->last = nd;
    return outs[0];
}

static Onnx__AttributeProto *ox_attr(ox *b, const char *name,
                                     Onnx__AttributeProto__AttributeType type) {
    Onnx__AttributeProto *a = ox_alloc(b, sizeof *a);
    if (!a || !b->last) return NULL;
    onnx__attribute_proto__init(a);
    a->name = ox_str(b, name);
    a->has_type = 1;
    a->type = type;
    Onnx__NodeProto *nd = b->last;
    Onnx__AttributeProto **at = ox_alloc(b, (nd->n_attribute + 1) * sizeof *at);
    if (!at) return NULL;
    for (size_t i = 0; i < nd->n_attribute; i++) at[i] = nd->attribute[i];
    at[nd->n_attribute++] = a;
    nd->attribute = at;
    return a;
}

static void ox_attr_i(ox *b, const char *name, int64_t v) {
    Onnx__AttributeProto *a = ox_attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!a) return;
    a->has_i = 1;
    a->i = v;
}

static void ox_attr_ints(ox *b, const char *name, size_t n, const int64_t *v) {
    Onnx__AttributeProto *a = ox_attr(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *c = ox_alloc(b, n * sizeof *c);
    if (!a || !c) return;
    memcpy(c, v, n * sizeof *c);
    a->n_ints = n;
    a->ints = c;
}

/* An initializer. data is borrowed when copy is 0 (it must outlive the
 * packing), else copied into the arena. name NULL = a fresh name. */
static const char *ox_tensor(ox *b, const char *name, int dtype, int ndim, const int64_t *dims,
                             const void *data, size_t nbytes, int copy) {
    Onnx__TensorProto *t = ox_alloc(b, sizeof *t);
    int64_t *d = ox_alloc(b, (ndim ? (size_t)ndim : 1) * sizeof *d);
    void *buf = copy ? ox_alloc(b, nbytes ? nbytes : 1) : NULL;
    if (!t || !d || (copy && !buf)) return "";
    onnx__tensor_proto__init(t);
    if (ndim) memcpy(d, dims, (size_t)ndim * sizeof *d);
    if (copy) memcpy(buf, data, nbytes);
    t->n_dims = (size_t)ndim;
    t->dims = d;
    t->has_data_type = 1;
    t->data_type = dtype;
    t->name = ox_str(b, name ? name : ox_name(b, "const"));
    t->has_raw_data = 1;
    t->raw_data.len = nbytes;
    t->raw_data.data = (uint8_t *)(copy ? buf : data);
    ox_push(b, &b->inits, t);
    return t->name;
}

static const char *ox_f32(ox *b, float v) { return ox_tensor(b, NULL, OX_FLOAT, 0, NULL, &v, 4, 1); }
static const char *ox_f64(ox *b, double v) { return ox_tensor(b, NULL, OX_DOUBLE, 0, NULL, &v, 8, 1); }
static const char *ox_i64(ox *b, int64_t v) { return ox_tensor(b, NULL, OX_INT64, 0, NULL, &v, 8, 1); }
static const char *ox_i64s(ox *b, int n, const int64_t *v) {
    int64_t d[1] = {n};
    return ox_tensor(b, NULL, OX_INT64, 1, d, v, (size_t)n * 8, 1);
}
static const char *ox_axes(ox *b, int64_t axis) { return ox_i64s(b, 1, &axis); }

/* A graph input or output: dims[i] >= 0 is fixed, -1 takes params[i]. */
static void ox_io(ox *b, int output, const char *name, int dtype, int ndim, const int64_t *dims,
                  const char *const *params) {
    Onnx__ValueInfoProto *v = ox_alloc(b, sizeof *v);
    Onnx__TypeProto *tp = ox_alloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = ox_alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = ox_alloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = ox_alloc(b, (size_t)ndim * sizeof *dd);
    if (!v || !tp || !tt || !sh || !dd) return;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (int i = 0; i < ndim; i++) {
        Onnx__TensorShapeProto__Dimension *d = ox_alloc(b, sizeof *d);
        if (!d) return;
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = ox_str(b, params[i]);
        }
        dd[i] = d;
    }
    sh->n_dim = (size_t)ndim;
    sh->dim = dd;
    tt->has_elem_type = 1;
    tt->elem_type = dtype;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = ox_str(b, name);
    v->type = tp;
    ox_push(b, output ? &b->outputs : &b->inputs, v);
}

/* ---- the ranker's forward as nodes ------------------------------------------------ */

/* A weight as an initializer under its own name, once however often it is
 * read (a shared table). fp32: the floats themselves (borrowed). With
 * b->bf16 every matrix and table (biases stay fp32, as in crossrec's own
 * bf16 path) is rounded to bfloat16 (cr_bf16_from_f32) and read through a
 * Cast to float named "<name>.f32". Returns the name the nodes read. */
static const char *ox_weight(ox *b, const char *name, int ndim, const int64_t *dims,
                             const float *data, size_t n) {
    size_t len = strlen(name);
    int half = b->bf16 && !(len > 5 && !strcmp(name + len - 5, ".bias"));
    char cast[CR_MAX_NAME + 16];
    snprintf(cast, sizeof cast, "%s.f32", name);
    for (size_t i = 0; i < b->inits.n; i++)
        if (!strcmp(((Onnx__TensorProto *)b->inits.p[i])->name, name))
            return ox_str(b, half ? cast : name);
    if (!half) return ox_tensor(b, name, OX_FLOAT, ndim, dims, data, n * sizeof(float), 0);
    uint16_t *h = ox_alloc(b, n * sizeof *h);
    if (!h) return "";
    for (size_t i = 0; i < n; i++) h[i] = cr_bf16_from_f32(data[i]);
    const char *t = ox_tensor(b, name, OX_BF16, ndim, dims, h, n * sizeof *h, 0);
    const char *f = ox_op(b, "Cast", cast, t, NULL);
    ox_attr_i(b, "to", OX_FLOAT);
    return f;
}

/* A parameter of m under its own name; dims NULL = the tensor's shape (a
 * reshaped view otherwise: the same floats). */
static const char *ox_param(ox *b, const cr_ranker *m, const cr_ptable *pt, int idx, int ndim,
                            const int64_t *dims) {
    const cr_tensor_info *t = &pt->t[idx];
    return ox_weight(b, t->name, dims ? ndim : t->ndim, dims ? dims : t->shape,
                     cr_ptable_ptr(pt, pt->data, idx), t->numel);
}

/* relu(x W^T + b), the layer of cr_nn_linear (relu) or a head (no relu). */
static const char *ox_linear(ox *b, const cr_ranker *m, const char *x, int w, int bias, int relu) {
    const char *y = ox_op(b, "Gemm", NULL, x, ox_param(b, m, &m->params, w, 0, NULL),
                          ox_param(b, m, &m->params, bias, 0, NULL), NULL);
    ox_attr_i(b, "transB", 1);
    return relu ? ox_op(b, "Relu", NULL, y, NULL) : y;
}

static const char *ox_mlp(ox *b, const cr_ranker *m, const cr_mlp *p, const char *x) {
    for (int i = 0; i < p->n_layers; i++) x = ox_linear(b, m, x, p->w[i], p->b[i], 1);
    return x;
}

/* One feature's columns of x: (B, dim) or (B, 1) for a numeric one. */
static const char *ox_feature(ox *b, const cr_ranker *m, const cr_schema *s, int fi,
                              cr_error *e) {
    const cr_feature *f = &s->features[fi];
    char in[2][80];
    cr_onnx_input_names(f, in);
    const char *table = NULL;
    if (f->kind != CR_FEAT_NUMERIC) {
        if (f->table < 0 || f->table >= m->n_tables) {
            b->st = cr_err(e, CR_ERR_INTERNAL, "feature '%s' reads table %d of %d", f->name,
                           f->table, m->n_tables);
            return "";
        }
        table = ox_param(b, m, &m->tables, m->table_param[f->table], 0, NULL);
    }
    switch (f->kind) {
    case CR_FEAT_CATEGORICAL: /* cr_embedding_forward: row id of the table */
        return ox_op(b, "Gather", NULL, table, in[0], NULL);
    case CR_FEAT_BUCKET: {
        /* cr_feature_bucket: 1 + the number of boundaries <= x; empty (NaN) -> 0 */
        int64_t nb[1] = {f->n_boundaries};
        const char *bnd = ox_tensor(b, NULL, OX_DOUBLE, 1, nb, f->boundaries,
                                    (size_t)f->n_boundaries * sizeof(double), 1);
        const char *x2 = ox_op(b, "Unsqueeze", NULL, in[0], ox_axes(b, 1), NULL);
        const char *ge = ox_op(b, "GreaterOrEqual", NULL, x2, bnd, NULL);
        const char *gi = ox_op(b, "Cast", NULL, ge, NULL);
        ox_attr_i(b, "to", OX_INT64);
        const char *cnt = ox_op(b, "ReduceSum", NULL, gi, ox_axes(b, 1), NULL);
        ox_attr_i(b, "keepdims", 0);
        const char *id = ox_op(b, "Add", NULL, cnt, ox_i64(b, 1), NULL);
        const char *nan = ox_op(b, "IsNaN", NULL, in[0], NULL);
        id = ox_op(b, "Where", NULL, nan, ox_i64(b, 0), id, NULL);
        return ox_op(b, "Gather", NULL, table, id, NULL);
    }
    case CR_FEAT_MULTI: {
        /* cr_bag_forward over padded bags: sum of the rows the mask keeps,
         * times 1/count for mean (an empty bag stays 0) */
        const char *rows = ox_op(b, "Gather", NULL, table, in[0], NULL);
        const char *m3 = ox_op(b, "Unsqueeze", NULL, in[1], ox_axes(b, 2), NULL);
        const char *kept = ox_op(b, "Mul", NULL, rows, m3, NULL);
        const char *sum = ox_op(b, "ReduceSum", NULL, kept, ox_axes(b, 1), NULL);
        ox_attr_i(b, "keepdims", 0);
        if (f->pooling == CR_POOL_SUM) return sum;
        const char *cnt = ox_op(b, "ReduceSum", NULL, in[1], ox_axes(b, 1), NULL);
        ox_attr_i(b, "keepdims", 1);
        const char *inv = ox_op(b, "Reciprocal", NULL,
                                ox_op(b, "Max", NULL, cnt, ox_f32(b, 1.0f), NULL), NULL);
        return ox_op(b, "Mul", NULL, sum, inv, NULL);
    }
    case CR_FEAT_NUMERIC: break; /* all at once in ox_dense */
    }
    CR_ASSERT(!"ox_feature: an embedded feature (numeric ones go through ox_dense)");
    return "";
}

/* The graph inputs of feature f (docs/formats.md): ids int64 (B), bags
 * int64 ids and a float mask (B, L_<name>), values float64 (B). */
static void ox_declare(ox *b, const cr_feature *f) {
    char in[2][80], L[96];
    cr_onnx_input_names(f, in);
    snprintf(L, sizeof L, "L_%s", f->name);
    const char *dn[2] = {"B", L};
    int64_t dyn[2] = {-1, -1};
    switch (f->kind) {
    case CR_FEAT_CATEGORICAL: ox_io(b, 0, in[0], OX_INT64, 1, dyn, dn); break;
    case CR_FEAT_MULTI:
        ox_io(b, 0, in[0], OX_INT64, 2, dyn, dn);
        ox_io(b, 0, in[1], OX_FLOAT, 2, dyn, dn);
        break;
    case CR_FEAT_NUMERIC:
    case CR_FEAT_BUCKET: ox_io(b, 0, in[0], OX_DOUBLE, 1, dyn, dn); break;
    }
}

/* Concat of parts along axis 1 (Concat takes any number of inputs: the
 * node is built by hand). */
static const char *ox_concat(ox *b, const char *out, int n, const char *const *parts) {
    const char *y = ox_op(b, "Concat", out, NULL);
    char **ins = ox_alloc(b, (size_t)(n ? n : 1) * sizeof *ins);
    if (b->st || !ins) return "";
    for (int i = 0; i < n; i++) ins[i] = (char *)parts[i];
    b->last->n_input = (size_t)n;
    b->last->input = ins;
    ox_attr_i(b, "axis", 1);
    return y;
}

/* The dense block of x (B, n_dense), every numeric feature at once, each
 * column as dataset.c computes it in double: empty (NaN) -> default, log1p
 * where the transform takes it, then (x - mean) / std (mean 0 and std 1 for
 * the columns without a z-score: the value itself), then float. */
static const char *ox_dense(ox *b, const cr_schema *s) {
    const int nd = s->n_dense;
    const char **cols = ox_alloc(b, (size_t)nd * sizeof *cols);
    double *def = ox_alloc(b, (size_t)nd * sizeof *def), *mean = ox_alloc(b, (size_t)nd * sizeof *mean);
    double *sd = ox_alloc(b, (size_t)nd * sizeof *sd);
    uint8_t *takes_log = ox_alloc(b, (size_t)nd);
    if (!cols || !def || !mean || !sd || !takes_log) return "";
    int any_log = 0, any_z = 0;
    for (int i = 0; i < nd; i++) {
        const cr_feature *f = &s->features[s->dense_feat[i]];
        int z = f->transform == CR_TX_ZSCORE || f->transform == CR_TX_LOG1P_ZSCORE;
        char in[2][80];
        cr_onnx_input_names(f, in);
        cols[i] = ox_op(b, "Unsqueeze", NULL, in[0], ox_axes(b, 1), NULL);
        def[i] = f->default_value;
        mean[i] = z ? f->mean : 0.0;
        sd[i] = z && f->std > 0 ? f->std : 1.0;
        takes_log[i] = (uint8_t)cr_feature_takes_log(f);
        any_log |= takes_log[i];
        any_z |= z;
    }
    int64_t dn[1] = {nd};
    const size_t bytes = (size_t)nd * sizeof(double);
    const char *x = ox_concat(b, NULL, nd, cols);
    const char *nan = ox_op(b, "IsNaN", NULL, x, NULL);
    x = ox_op(b, "Where", NULL, nan, ox_tensor(b, NULL, OX_DOUBLE, 1, dn, def, bytes, 1), x, NULL);
    if (any_log) {
        const char *l = ox_op(b, "Log", NULL, ox_op(b, "Add", NULL, x, ox_f64(b, 1.0), NULL), NULL);
        const char *sel = ox_tensor(b, NULL, ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 1, dn, takes_log,
                                    (size_t)nd, 1);
        x = ox_op(b, "Where", NULL, sel, l, x, NULL);
    }
    if (any_z) {
        x = ox_op(b, "Sub", NULL, x, ox_tensor(b, NULL, OX_DOUBLE, 1, dn, mean, bytes, 1), NULL);
        x = ox_op(b, "Div", NULL, x, ox_tensor(b, NULL, OX_DOUBLE, 1, dn, sd, bytes, 1), NULL);
    }
    x = ox_op(b, "Cast", NULL, x, NULL);
    ox_attr_i(b, "to", OX_FLOAT);
    return x;
}

/* x = [cat embeddings | pooled bags | dense], in the model's slot order;
 * the inputs are declared in feature order. */
static const char *ox_input(ox *b, const cr_ranker *m, const cr_schema *s, cr_error *e) {
    for (int i = 0; i < s->n_features; i++) ox_declare(b, &s->features[i]);
    int n = s->n_cat + s->n_multi + (s->n_dense > 0);
    const char **parts = ox_alloc(b, (size_t)(n ? n : 1) * sizeof *parts);
    if (!parts) return "";
    int k = 0;
    for (int i = 0; i < s->n_cat; i++) parts[k++] = ox_feature(b, m, s, s->cat_feat[i], e);
    for (int i = 0; i < s->n_multi; i++) parts[k++] = ox_feature(b, m, s, s->multi_feat[i], e);
    if (s->n_dense) parts[k++] = ox_dense(b, s);
    return b->st ? "" : ox_concat(b, "/x", n, parts);
}

/* The experts (cr_experts_forward) as (E, B, H): layer 0 one stacked Gemm,
 * later layers one batched MatMul over the experts. */
static const char *ox_experts(ox *b, const cr_ranker *m, const char *x) {
    const cr_experts *X = &m->experts;
    const int E = X->E;
    const char *h = ox_linear(b, m, x, X->w[0], X->b[0], 1);
    int64_t shape[3] = {-1, E, X->dims[0]}, perm[3] = {1, 0, 2};
    h = ox_op(b, "Reshape", NULL, h, ox_i64s(b, 3, shape), NULL);
    h = ox_op(b, "Transpose", NULL, h, NULL);
    ox_attr_ints(b, "perm", 3, perm);
    for (int i = 1; i < X->n_layers; i++) {
        int H = X->dims[i], Hp = X->dims[i - 1];
        /* W (E, H, Hp) stored transposed as (E, Hp, H) for MatMul */
        size_t n = (size_t)E * H * Hp;
        float *wt = ox_alloc(b, n * sizeof *wt);
        if (!wt) return "";
        const float *w = cr_ptable_ptr(&m->params, m->params.data, X->w[i]);
        for (int ex = 0; ex < E; ex++)
            for (int o = 0; o < H; o++)
                for (int c = 0; c < Hp; c++)
                    wt[((size_t)ex * Hp + c) * H + o] = w[((size_t)ex * H + o) * Hp + c];
        char name[CR_MAX_NAME + 8];
        snprintf(name, sizeof name, "%s.T", m->params.t[X->w[i]].name);
        int64_t wd[3] = {E, Hp, H}, bd[3] = {E, 1, H};
        const char *W = ox_weight(b, name, 3, wd, wt, n);
        const char *y = ox_op(b, "MatMul", NULL, h, W, NULL);
        y = ox_op(b, "Add", NULL, y, ox_param(b, m, &m->params, X->b[i], 3, bd), NULL);
        h = ox_op(b, "Relu", NULL, y, NULL);
    }
    return h;
}

/* Every task's mixture at once, (B, K, H): mix_k = sum_s gate_k[s]
 * expert[sel_k[s]] (cr_moe_mix_forward) with gate_k = softmax(x Wg_k^T +
 * bg_k), the K gates stacked into one layer as cr_ranker_pack stacks them.
 * PLE's selection becomes a one-hot (K, S, E) product, so each task weighs
 * all E experts with 0 for those its gate does not mix. */
static const char *ox_mix(ox *b, const cr_ranker *m, const char *x, const char *ex) {
    const int K = m->K, S = m->S, E = m->experts.E, C = m->C_in;
    float *w = ox_alloc(b, (size_t)K * S * C * sizeof *w);
    float *bias = ox_alloc(b, (size_t)K * S * sizeof *bias);
    if (!w || !bias) return "";
    for (int k = 0; k < K; k++) {
        memcpy(w + (size_t)k * S * C, cr_ptable_ptr(&m->params, m->params.data, m->gate_w[k]),
               (size_t)S * C * sizeof *w);
        memcpy(bias + (size_t)k * S, cr_ptable_ptr(&m->params, m->params.data, m->gate_b[k]),
               (size_t)S * sizeof *bias);
    }
    int64_t wd[2] = {(int64_t)K * S, C}, bd[1] = {(int64_t)K * S}, gshape[3] = {0, K, S};
    const char *g = ox_op(b, "Gemm", NULL, x, ox_weight(b, "gates.weight", 2, wd, w, (size_t)K * S * C),
                          ox_weight(b, "gates.bias", 1, bd, bias, (size_t)K * S), NULL);
    ox_attr_i(b, "transB", 1);
    g = ox_op(b, "Reshape", NULL, g, ox_i64s(b, 3, gshape), NULL);
    g = ox_op(b, "Softmax", NULL, g, NULL);
    ox_attr_i(b, "axis", 2);
    if (m->gate_sel) {
        float *P = ox_alloc(b, (size_t)K * S * E * sizeof *P);
        if (!P) return "";
        for (int k = 0; k < K; k++)
            for (int j = 0; j < S; j++) P[((size_t)k * S + j) * E + m->gate_sel[(size_t)k * S + j]] = 1;
        int64_t pd[3] = {K, S, E}, eshape[3] = {0, K, E};
        const char *sel = ox_tensor(b, "gates.select", OX_FLOAT, 3, pd, P,
                                    (size_t)K * S * E * sizeof *P, 0);
        g = ox_op(b, "Unsqueeze", NULL, g, ox_axes(b, 2), NULL);       /* (B, K, 1, S) */
        g = ox_op(b, "MatMul", NULL, g, sel, NULL);                     /* (B, K, 1, E) */
        g = ox_op(b, "Reshape", NULL, g, ox_i64s(b, 3, eshape), NULL);  /* (B, K, E) */
    }
    int64_t perm[3] = {1, 0, 2};
    const char *exb = ox_op(b, "Transpose", NULL, ex, NULL); /* (B, E, H) */
    ox_attr_ints(b, "perm", 3, perm);
    return ox_op(b, "MatMul", NULL, g, exb, NULL);
}

static cr_status ox_graph(ox *b, const cr_ranker *m, const cr_schema *s, cr_error *e) {
    const char *x = ox_input(b, m, s, e);
    const char *trunk = x, *ex = NULL;
    if (m->cfg.arch == CR_ARCH_SHARED_BOTTOM) trunk = ox_mlp(b, m, &m->bottom, x);
    else ex = ox_experts(b, m, x);
    const char *tower[CR_MODEL_MAX_HEADS];
    const char *mix = ex ? ox_mix(b, m, x, ex) : NULL;
    for (int k = 0; k < m->K; k++) {
        const char *in = trunk;
        if (mix) { /* task k's row of the mixtures: (B, H) */
            in = ox_op(b, "Gather", NULL, mix, ox_i64(b, k), NULL);
            ox_attr_i(b, "axis", 1);
        }
        tower[k] = ox_mlp(b, m, &m->towers[k], in);
    }
    const char *B[1] = {"B"};
    int64_t dyn1[1] = {-1}, flat[1] = {-1};
    for (int h = 0; h < m->cfg.n_heads; h++) {
        const cr_head *hd = &m->cfg.heads[h];
        if (!hd->served) continue;
        const char *z = ox_linear(b, m, tower[hd->tower], m->head_w[h], m->head_b[h], 0);
        if (hd->kind == CR_HEAD_BINARY) z = ox_op(b, "Sigmoid", NULL, z, NULL);
        ox_op(b, "Reshape", hd->name, z, ox_i64s(b, 1, flat), NULL);
        ox_io(b, 1, hd->name, OX_FLOAT, 1, dyn1, B);
    }
    return b->st;
}

/* Everything the graph code mirrors, checked before any of it runs: a model
 * with anything else is refused by name rather than exported wrong. */
static cr_status ox_covered(const cr_ranker *m, const cr_schema *s, cr_error *e) {
    if (m->cfg.arch != CR_ARCH_SHARED_BOTTOM && m->cfg.arch != CR_ARCH_MMOE &&
        m->cfg.arch != CR_ARCH_PLE)
        return cr_err(e, CR_ERR_CONFIG, "architecture %d is not covered by the ONNX exporter "
                      "(it covers shared_bottom, mmoe and ple)", (int)m->cfg.arch);
    if (m->K > CR_MODEL_MAX_HEADS || m->S > 1024)
        return cr_err(e, CR_ERR_CONFIG, "%d towers and %d experts per gate: more than the "
                      "ONNX exporter covers", m->K, m->S);
    for (int i = 0; i < s->n_features; i++) {
        const cr_feature *f = &s->features[i];
        if ((unsigned)f->kind > CR_FEAT_BUCKET)
            return cr_err(e, CR_ERR_CONFIG, "feature '%s': kind %d is not covered by the ONNX "
                          "exporter (it covers categorical, multi, numeric and bucketized)",
                          f->name, (int)f->kind);
        if (f->kind == CR_FEAT_MULTI && f->pooling != CR_POOL_SUM && f->pooling != CR_POOL_MEAN)
            return cr_err(e, CR_ERR_CONFIG, "feature '%s': pooling %d is not covered by the "
                          "ONNX exporter (it covers sum and mean)", f->name, (int)f->pooling);
        if (f->kind == CR_FEAT_NUMERIC && (unsigned)f->transform > CR_TX_LOG1P_ZSCORE)
            return cr_err(e, CR_ERR_CONFIG, "feature '%s': transform %d is not covered by the "
                          "ONNX exporter (it covers none, zscore, log1p and log1p_zscore)",
                          f->name, (int)f->transform);
    }
    for (int h = 0; h < m->cfg.n_heads; h++) {
        const cr_head *hd = &m->cfg.heads[h];
        if (hd->served && hd->kind != CR_HEAD_BINARY && hd->kind != CR_HEAD_REGRESSION)
            return cr_err(e, CR_ERR_CONFIG, "head '%s': kind %d is not covered by the ONNX "
                          "exporter (it covers binary and regression)", hd->name, (int)hd->kind);
    }
    return CR_OK;
}

/* Inputs, outputs and initializers share one namespace in ONNX. */
static cr_status ox_check_names(const ox *b, cr_error *e) {
    const ox_list *ls[3] = {&b->inputs, &b->outputs, &b->inits};
    for (int a = 0; a < 3; a++)
        for (size_t i = 0; i < ls[a]->n; i++) {
            const char *x = a < 2 ? ((Onnx__ValueInfoProto *)ls[a]->p[i])->name
                                  : ((Onnx__TensorProto *)ls[a]->p[i])->name;
            for (int c = a; c < 3; c++)
                for (size_t j = c == a ? i + 1 : 0; j < ls[c]->n; j++) {
                    const char *y = c < 2 ? ((Onnx__ValueInfoProto *)ls[c]->p[j])->name
                                          : ((Onnx__TensorProto *)ls[c]->p[j])->name;
                    if (!strcmp(x, y))
                        return cr_err(e, CR_ERR_CONFIG, "ONNX export: the name '%s' is used "
                                      "twice (a feature, a head and a parameter must not share "
                                      "names in a graph)", x);
                }
        }
    return CR_OK;
}

static void ox_meta(ox *b, const char *key, const char *value) {
    Onnx__StringStringEntryProto *kv = ox_alloc(b, sizeof *kv);
    if (!kv) return;
    onnx__string_string_entry_proto__init(kv);
    kv->key = ox_str(b, key);
    kv->value = ox_str(b, value);
    ox_push(b, &b->meta, kv);
}

/* "dir/model.onnx" -> "dir/model.vocab.json" (else the path + ".vocab.json"). */
static void vocab_path_of(const char *out, char *buf, size_t cap) {
    size_t n = strlen(out);
    if (n > 5 && !strcmp(out + n - 5, ".onnx")) n -= 5;
    snprintf(buf, cap, "%.*s.vocab.json", (int)n, out);
}

cr_status cr_onnx_write(const cr_ranker *m, const cr_schema *s, const char *out_path,
                        const char *vocab_path, cr_precision weights, cr_error *e) {
    ox b = {.e = e, .bf16 = weights == CR_PRECISION_BF16};
    char vpath[4200];
    char *vocab = NULL, *model_json = NULL;
    uint8_t *buf = NULL;
    cr_status st;
    if (!vocab_path) {
        vocab_path_of(out_path, vpath, sizeof vpath);
        vocab_path = vpath;
    }
    if (weights != CR_PRECISION_FP32 && weights != CR_PRECISION_BF16) {
        st = cr_err(e, CR_ERR_CONFIG, "ONNX export: weights in %s are not covered (fp32 or "
                    "bf16)", weights == CR_PRECISION_INT8 ? "int8" : "an unknown precision");
        goto done;
    }
    if ((st = ox_covered(m, s, e))) goto done;
    if ((st = cr_onnx_vocab_json(m, s, &vocab, e))) goto done;
    if ((st = cr_model_cfg_to_json(&m->cfg, &model_json, e))) goto done;
    if ((st = ox_graph(&b, m, s, e)) || (st = b.st)) goto done;
    if ((st = ox_check_names(&b, e))) goto done;
    ox_meta(&b, "crossrec.format", "crossrec.onnx");
    ox_meta(&b, "crossrec.version", CR_VERSION);
    ox_meta(&b, "crossrec.arch", cr_arch_name(m->cfg.arch));
    ox_meta(&b, "crossrec.weights", b.bf16 ? "bf16" : "fp32");
    ox_meta(&b, "crossrec.model", model_json);
    ox_meta(&b, "crossrec.vocab", vocab);

    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    g.name = "crossrec_ranker";
    g.n_node = b.nodes.n;
    g.node = (Onnx__NodeProto **)b.nodes.p;
    g.n_initializer = b.inits.n;
    g.initializer = (Onnx__TensorProto **)b.inits.p;
    g.n_input = b.inputs.n;
    g.input = (Onnx__ValueInfoProto **)b.inputs.p;
    g.n_output = b.outputs.n;
    g.output = (Onnx__ValueInfoProto **)b.outputs.p;
    Onnx__OperatorSetIdProto ops = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    ops.domain = "";
    ops.has_version = 1;
    ops.version = CR_ONNX_OPSET;
    Onnx__OperatorSetIdProto *opsp = &ops;
    Onnx__ModelProto mp = ONNX__MODEL_PROTO__INIT;
    mp.has_ir_version = 1;
    mp.ir_version = CR_ONNX_IR_VERSION;
    mp.n_opset_import = 1;
    mp.opset_import = &opsp;
    mp.producer_name = "crossrec";
    mp.producer_version = CR_VERSION;
    mp.graph = &g;
    mp.n_metadata_props = b.meta.n;
    mp.metadata_props = (Onnx__StringStringEntryProto **)b.meta.p;
    if ((st = b.st)) goto done;
    size_t n = onnx__model_proto__get_packed_size(&mp);
    if (!(buf = malloc(n ? n : 1))) {
        st = cr_err(e, CR_ERR_NOMEM, "out of memory packing a %zu-byte ONNX model", n);
        goto done;
    }
    size_t w = onnx__model_proto__pack(&mp, buf);
    CR_ASSERT(w == n);
    if ((st = cr_write_file_atomic(out_path, buf, n, e))) goto done;
    if ((st = cr_write_file_atomic(vocab_path, vocab, strlen(vocab), e))) {
        remove(out_path); /* the graph is useless without its vocabularies */
        goto done;
    }
done:
    free(buf);
    free(vocab);
    free(model_json);
    ox_free(&b);
    return st;
}

cr_status cr_ranker_export_onnx(const char *in_path, const char *out_path,
                                const char *vocab_path, cr_precision weights, int *dropped,
                                cr_error *e) {
    cr_ranker *m = NULL, *x = NULL;
    cr_schema s;
    CR_TRY(cr_ranker_load(&m, &s, in_path, e));
    cr_status st = cr_ranker_served(m, &s, &x, e);
    if (!st) st = cr_onnx_write(x, &s, out_path, vocab_path, weights, e);
    if (st) cr_err_prefix(e, "exporting %s to ONNX", in_path);
    if (!st && dropped) *dropped = m->cfg.n_heads - x->cfg.n_heads;
    cr_ranker_free(x);
    cr_ranker_free(m);
    cr_schema_free(&s);
    return st;
}
