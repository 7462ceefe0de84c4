/*
 * nn.h - modules built from kernels: a stack of Linear + ReLU layers (MLP)
 * and a bank of E such stacks run side by side (the experts of MMoE/PLE).
 * A module only knows which tensors of a parameter table it owns and how to
 * run them; it never allocates in forward/backward and never owns memory.
 *
 * Legend: B batch rows, C input width, H hidden width, E experts.
 *
 * Activation layout. A module writes layer i's output (after ReLU, in place)
 * into acts + cap_B * off_i, where off_i = sum_{j<i} width_j and width_j is
 * dims[j] for an MLP and E*dims[j] for experts; cap_B is the batch size the
 * buffers were sized for, so any B <= cap_B uses the first B rows of each
 * layer's block. Backward reads the same layout from acts and dacts.
 */
#ifndef CR_NN_H
#define CR_NN_H

#include "../kernels/kernels.h"

#define CR_NN_MAX_LAYERS 8

/* Pointer to tensor idx inside a slab laid out by pt; NULL if slab is NULL
 * or idx < 0. */
float *cr_nn_ptr(const cr_ptable *pt, float *slab, int idx);
/* The gradient slot of tensor idx, or NULL when grads is NULL or the tensor
 * is frozen (the kernels then skip its weight-gradient GEMM). */
float *cr_nn_grad(const cr_ptable *pt, float *grads, int idx);
/* Register a tensor; a duplicate name is CR_ERR_CONFIG, no memory NOMEM. */
cr_status cr_nn_add(cr_ptable *pt, int *idx, const char *name, int ndim,
                    const int64_t *shape, int flags, cr_error *e);
/* n_layers in [min_layers, CR_NN_MAX_LAYERS], every width and in_dim >= 1. */
cr_status cr_nn_check_dims(const char *prefix, int in_dim, int n_layers, const int *dims,
                           int min_layers, cr_error *e);
/* PyTorch's nn.Linear default: weight and bias ~ U(-1/sqrt(fan_in), +). */
void cr_nn_init_linear(const cr_ptable *pt, float *params, int w, int b, int fan_in,
                       cr_rng *r);

/* ---- weights packed for inference (packed.c) --------------------------------
 * A snapshot of a parameter table in one slab: every weight matrix (2-D
 * (OC, C), or 3-D (G, OC, C) as G packs one after another) in the
 * cr_linear_pack form, every other tensor (biases, norms) copied as is.
 * Tensor i starts at data + off[i]; mat[i] says which form it has. */
typedef struct cr_nn_packed {
    float         *data;
    size_t        *off; /* (n) */
    unsigned char *mat; /* (n) 1: packed matrix, 0: plain copy */
    int            n;
} cr_nn_packed;
cr_status    cr_nn_pack(cr_nn_packed *pk, const cr_ptable *pt, const float *params, cr_error *e);
void         cr_nn_packed_free(cr_nn_packed *pk);
/* Group g of matrix idx, packed; NULL when pk is NULL or idx is no matrix. */
const float *cr_nn_packed_w(const cr_nn_packed *pk, const cr_ptable *pt, int idx, int g);
/* The copy of a tensor that is not a packed matrix; NULL otherwise. */
const float *cr_nn_packed_copy(const cr_nn_packed *pk, int idx);
/* The weights one forward runs on: a parameter table, and for inference
 * (rows = 1) the forms a loaded model keeps of them, tried in order: a
 * reduced-precision weight of the tensor (lp[idx], a serving plan's), its
 * packed fp32 snapshot (pk), else the parameters themselves as
 * batch-independent rows. Training (rows = 0) runs the parameters through
 * the training GEMM. scratch serves the lp weights (cr_lp_scratch_bytes of
 * the widest input); a forward on several threads gives each its own. */
typedef struct cr_nn_weights {
    const cr_ptable     *pt;
    const float         *params;
    int                  rows;
    const cr_nn_packed  *pk;      /* or NULL */
    cr_lp_weight *const *lp;      /* (pt->n) or NULL; NULL entries fall through */
    void                *scratch; /* with lp */
} cr_nn_weights;
/* Group g of matrix widx in the form W runs it, and in *b the bias of that
 * form (group g of bidx; NULL for bidx < 0): with a packed weight the
 * snapshot's copy, else the parameters' (the same values). */
cr_weight cr_nn_weight(const cr_nn_weights *W, int widx, int bidx, int g, const float **b);
/* out = inp @ W^T + b (then ReLU when relu is 1) for group g of tensors
 * widx, bidx, through cr_linear. */
void cr_nn_linear(const cr_nn_weights *W, int widx, int bidx, int g, float *out,
                  const float *inp, int B, int ldi, int ldo, int relu);

/* ---- MLP: h_0 = x, h_{i+1} = relu(h_i W_i^T + b_i) ------------------------
 * Tensors "<prefix>.l<i>.weight" (dims[i], in) and "<prefix>.l<i>.bias"
 * (dims[i]); biases carry CR_PARAM_NO_DECAY. An MLP of 0 layers is the
 * identity (callers read their input directly). */
typedef struct cr_mlp {
    int n_layers;
    int in_dim;
    int dims[CR_NN_MAX_LAYERS];
    int w[CR_NN_MAX_LAYERS], b[CR_NN_MAX_LAYERS]; /* indices in the table */
} cr_mlp;

cr_status cr_mlp_register(cr_mlp *m, cr_ptable *pt, const char *prefix, int in_dim,
                          int n_layers, const int *dims, cr_error *e);
void      cr_mlp_init(const cr_mlp *m, const cr_ptable *pt, float *params, cr_rng *r);
/* Floats of activations per batch row (sum of layer widths). */
size_t    cr_mlp_act_width(const cr_mlp *m);
/* Width of the output (in_dim for 0 layers) and a pointer to it. */
int       cr_mlp_out_dim(const cr_mlp *m);
float    *cr_mlp_out(const cr_mlp *m, float *acts, int cap_B);
int       cr_mlp_max_width(const cr_mlp *m);

void cr_mlp_forward(const cr_mlp *m, const cr_nn_weights *W,
                    float *acts,         /* layer blocks, see the header comment */
                    const float *inp,    /* (B, in_dim) row stride ldi */
                    int ldi, int B, int cap_B,
                    int r0,              /* rows r0 .. r0+B-1 of the blocks (inp is row r0) */
                    int first);          /* layers before it are already in their blocks */
/* dacts holds d(loss)/d(output) in the last layer's block (the other blocks
 * must be zero or hold gradients to add to); it is used as the running
 * gradient of every layer. dinp (stride ldi, may be NULL) and grads (may be
 * NULL; frozen tensors are skipped) are added to. dpre is scratch of
 * B * cr_mlp_max_width floats. */
void cr_mlp_backward(const cr_mlp *m, const cr_ptable *pt, const float *params, float *grads,
                     float *dinp, float *dacts, float *dpre, const float *acts,
                     const float *inp, int ldi, int B, int cap_B);

/* ---- experts: E MLPs over the same input, outputs laid out (B, E, H) -------
 * Layer 0 of all experts is ONE stacked linear "<prefix>.l0.weight"
 * (E*dims[0], in) and "<prefix>.l0.bias" (E*dims[0]), so the widest layer is
 * one GEMM whose output row is already (E, dims[0]). Later layers are per
 * expert: "<prefix>.l<i>.weight" (E, dims[i], dims[i-1]) and
 * "<prefix>.l<i>.bias" (E, dims[i]). Every layer has a ReLU. */
typedef struct cr_experts {
    int E;
    int n_layers; /* >= 1 */
    int in_dim;
    int dims[CR_NN_MAX_LAYERS];
    int w[CR_NN_MAX_LAYERS], b[CR_NN_MAX_LAYERS];
} cr_experts;

cr_status cr_experts_register(cr_experts *x, cr_ptable *pt, const char *prefix, int E,
                              int in_dim, int n_layers, const int *dims, cr_error *e);
void      cr_experts_init(const cr_experts *x, const cr_ptable *pt, float *params, cr_rng *r);
size_t    cr_experts_act_width(const cr_experts *x);
int       cr_experts_max_width(const cr_experts *x);
/* (B, E, H) block of the last layer, H = dims[n_layers-1]. */
float    *cr_experts_out(const cr_experts *x, float *acts, int cap_B);

/* As cr_mlp_forward (layers before first already in their blocks). */
void cr_experts_forward(const cr_experts *x, const cr_nn_weights *W, float *acts,
                        const float *inp, int ldi, int B, int cap_B, int r0, int first);
/* Same contract as cr_mlp_backward; dpre holds B * cr_experts_max_width. */
void cr_experts_backward(const cr_experts *x, const cr_ptable *pt, const float *params,
                         float *grads, float *dinp, float *dacts, float *dpre,
                         const float *acts, const float *inp, int ldi, int B, int cap_B);

#endif /* CR_NN_H */
