/*
 * ranker.h - the multi-task ranking model: embedded features -> shared
 * bottom, MMoE or PLE -> one tower per task -> heads. One loaded model is
 * read-only and may be scored by many threads, each with its own
 * workspace. The math, parameter names and shapes are in docs/ranker.md.
 *
 * Legend: B batch rows, C_in model input width, K tasks (= towers),
 * E experts, S experts one gate mixes, H hidden width, NH heads.
 */
#ifndef CR_RANKER_H
#define CR_RANKER_H

#include "../data/data.h"
#include "../nn/nn.h"
#include "../train/optim.h"

#define CR_MODEL_MAX_LAYERS CR_NN_MAX_LAYERS
#define CR_MODEL_MAX_HEADS  32

typedef enum { CR_ARCH_SHARED_BOTTOM = 0, CR_ARCH_MMOE = 1, CR_ARCH_PLE = 2 } cr_arch;
typedef enum { CR_LOSS_FIXED = 0, CR_LOSS_UNCERTAINTY = 1 } cr_loss_weighting;
typedef enum { CR_HEAD_BINARY = 0, CR_HEAD_REGRESSION = 1 } cr_head_kind;
typedef enum { CR_TARGET_LABEL = 0, CR_TARGET_EXTRA = 1 } cr_target_kind;

/* A head is one linear output on a task's tower. Heads are a list separate
 * from towers so a tower can carry extra, never-served heads (a teacher's
 * soft labels during distillation) beside its served one. */
typedef struct cr_head {
    char           name[64];    /* parameters "heads.<name>.weight" / ".bias" */
    int            tower;       /* task whose tower's last hidden layer it reads */
    cr_head_kind   kind;        /* binary: a logit (BCE); regression: a value (MSE) */
    int            served;      /* 1: a prediction the model serves */
    cr_target_kind target_kind; /* task label, or a float column of batch->extra */
    int            target;      /* task index or extra column index */
    int            mask_task;   /* task whose mask applies; -1 = every example counts */
    float          weight;      /* loss weight */
    /* Distillation variants of the loss (all 0 = off; see docs/distillation.md).
     * Soft label: the target becomes (1 - blend_lambda) y + blend_lambda t,
     * t = batch->extra[blend_extra] (a teacher's prediction), when
     * blend_lambda != 0. Tempered: temperature T > 0 makes a binary head's
     * loss T^2 BCE(sigmoid(z / T), sigmoid(t / T)) with t = extra[target] a
     * teacher's logit. */
    int            blend_extra;
    float          blend_lambda;
    float          temperature;
} cr_head;

typedef struct cr_model_cfg {
    cr_arch arch;
    int     n_bottom;                     /* shared bottom (may be 0: towers read x) */
    int     bottom_layers[CR_MODEL_MAX_LAYERS];
    int     n_experts;                    /* MMoE */
    int     shared_experts, task_experts; /* PLE (one CGC level) */
    int     n_expert_layers;              /* MMoE and PLE, >= 1 */
    int     expert_layers[CR_MODEL_MAX_LAYERS];
    int     n_tower;                      /* may be 0: heads read the tower input */
    int     tower_layers[CR_MODEL_MAX_LAYERS];
    cr_loss_weighting loss_weighting;
    float   emb_init;                     /* embedding rows ~ U(-emb_init, emb_init) */
    int     n_heads;
    cr_head heads[CR_MODEL_MAX_HEADS];
} cr_model_cfg;

/* Defaults: MMoE, 4 experts of [64, 32], PLE 2 shared + 1 per task, bottom
 * [128, 64], towers [32], fixed weighting, emb_init 0.05, and one served
 * head per task named after it (its label, its mask, its weight). */
void cr_model_cfg_defaults(cr_model_cfg *c, const cr_schema *s);
/* Only the head list: one served head per task, as above. */
void cr_model_cfg_default_heads(cr_model_cfg *c, const cr_schema *s);
const char *cr_arch_name(cr_arch a); /* "shared_bottom", "mmoe", "ple" */

typedef struct cr_ranker {
    cr_model_cfg cfg;
    int K;                      /* tasks = towers */
    int C_in;                   /* cat dims + multi dims + n_dense */
    int n_cat, n_multi, n_dense, n_tables;
    int *cat_table, *cat_col;   /* (n_cat) table and column of x for each cat slot */
    int *multi_table, *multi_col; /* (n_multi) */
    cr_pooling *multi_pool;     /* (n_multi) */
    int dense_col;
    int64_t *table_rows;        /* (n_tables) */
    int *table_dim;             /* (n_tables) */
    int *table_param;           /* (n_tables) index in `tables` */
    int *table_readers;         /* (n_tables) cat + multi slots reading the table */

    cr_ptable params;           /* dense parameters, one slab */
    cr_ptable tables;           /* embedding tables "emb.<name>" (rows, dim), SPARSE */

    cr_mlp bottom;              /* shared bottom */
    cr_experts experts;         /* MMoE / PLE */
    int S;                      /* experts per gate (E for MMoE) */
    int *gate_sel;              /* (K, S) PLE: shared experts, then task k's; NULL for MMoE */
    int *gate_w, *gate_b;       /* (K) "gates.<k>.weight" (S, C_in), ".bias" (S) */
    cr_mlp *towers;             /* (K) "towers.<k>.l<i>.*" */
    int *head_w, *head_b;       /* (n_heads) "heads.<name>.weight" (1, H), ".bias" (1) */
    int n_served;
    int *head_served;           /* (n_heads) index among served heads, -1 if not served */
    int log_var;                /* "loss.log_var" (n_served) under uncertainty, else -1 */
    cr_nn_packed *packed;       /* dense weights packed for scoring, or NULL (cr_ranker_pack) */
    float *gates_packed;        /* with packed, MoE: the K gates stacked into one (K*S, C_in)
                                 * layer, packed, then its K*S biases; else NULL */
} cr_ranker;

/* Check cfg against the schema, register every tensor, allocate both slabs
 * and initialise with seed (Linear weights and biases U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) like nn.Linear, embedding rows U(-emb_init, emb_init),
 * log-variances 0). The schema is copied from; it need not outlive m. */
cr_status cr_ranker_create(cr_ranker **out, const cr_schema *s, const cr_model_cfg *cfg,
                           uint64_t seed, cr_error *e);
void      cr_ranker_free(cr_ranker *m);
/* Re-draw every parameter and table from seed (and drop a packed copy). */
void      cr_ranker_init_params(cr_ranker *m, uint64_t seed);
/* Pack the dense weights for scoring, once, when a model is loaded to be
 * scored: inference workspaces then run every layer on the packed copy
 * (the same bits, without repacking the weights on every call). It is a
 * snapshot: after changing m->params, pack again or unpack. Training
 * workspaces never read it. Packing again replaces the copy. The request
 * forward (cr_req_forward) in fp32 runs its later layers on the packed
 * matrices too (biases and the split first layer from m->params), as its
 * bf16/int8 plans run on theirs: like them it assumes a loaded model that
 * no longer changes. */
cr_status cr_ranker_pack(cr_ranker *m, cr_error *e);
void      cr_ranker_unpack(cr_ranker *m);

/* Per-caller state. Activations always; with train also the gradient slab
 * (same offsets as m->params), row-sparse table gradients and backward
 * scratch. One workspace per thread; the model itself is never written. */
typedef struct cr_ranker_ws {
    int     max_B, train, B;
    int64_t max_bag_ids;        /* ids of one multi feature in one batch (backward) */
    size_t  acts_n;
    float  *acts;               /* every activation, offsets below */
    size_t  off_x, off_trunk;   /* x (B, C_in); bottom or experts blocks */
    size_t *off_gate, *off_mix, *off_tower; /* (K) each */
    float  *gate_logits;        /* (max_B, K * S) scratch */
    int32_t *ids;               /* (n_cat, max_B) cat ids gathered per slot */
    float  *out;                /* (n_heads, B) raw head outputs: logits or values */
    /* training only (NULL otherwise) */
    float  *dacts;              /* gradients of acts, same layout */
    float  *dpre;               /* (max_B, widest layer) scratch */
    float  *dout;               /* (n_heads, B) gradient of the loss w.r.t. out */
    float  *grads;              /* (m->params.total) dense gradient slab */
    int     n_sgrads;
    cr_sparse_grad *sgrads;     /* (n_tables) merged, deduplicated, rows ascending */
    int     emb_cap;            /* rows one slot's backward can produce */
    int32_t *emb_rows, *emb_scratch; /* (emb_cap), (2 * emb_cap) */
    float  *emb_vals;           /* (emb_cap, max dim) */
    int     merge_cap;
    int32_t *merge_rows;        /* (merge_cap) */
    float  *merge_vals;         /* (merge_cap, max dim) */
} cr_ranker_ws;

/* max_bag_ids bounds the ids of one multi feature in one batch for the
 * sparse gradient buffers (0 = 32 * max_B); it is checked in backward, not
 * forward, so inference takes bags of any size. */
cr_status cr_ranker_ws_create(cr_ranker_ws **out, const cr_ranker *m, int max_B, int train,
                              int64_t max_bag_ids, cr_error *e);
void      cr_ranker_ws_free(cr_ranker_ws *ws);

/* Forward for any batch with 1 <= B <= max_B. Checks the batch against
 * the model (counts, B, every id inside its table, bag offsets) and writes
 * ws->out (n_heads, B). */
cr_status cr_ranker_forward(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                            cr_error *e);
/* The one forward from x on, for rows r0 .. r0+n-1 of ws (ws->B set, x in
 * its block). With readers_done the layers that read x have already
 * written their outputs: the first layer of the experts (after ReLU) and
 * every gate's logits side by side in ws->gate_logits (rows of K*S), or the
 * bottom's first layer, or with no bottom each tower's first layer and the
 * outputs of heads on 0-layer towers (the request path's split first
 * layer). W: the weights' forms (cr_ranker_weights for a plain forward). */
void cr_ranker_forward_rest(const cr_ranker *m, cr_ranker_ws *ws, const cr_nn_weights *W,
                            int r0, int n, int readers_done);
/* The forms the plain forward on ws runs: training GEMM for a training
 * workspace; for inference batch-independent rows on the packed snapshot
 * when the model has one. */
void cr_ranker_weights(const cr_ranker *m, const cr_ranker_ws *ws, cr_nn_weights *W);
/* sigmoid for binary heads, the value for regression ones: pred (n_heads, B). */
void      cr_ranker_predict(const cr_ranker *m, const cr_ranker_ws *ws, float *pred);
/* Clear ws->grads and every ws->sgrads (a training workspace). */
void      cr_ranker_zero_grad(const cr_ranker *m, cr_ranker_ws *ws);
/* Backward of the last forward on this workspace (same batch b), given
 * dout (n_heads, B) (NULL = ws->dout, as the loss leaves it). ADDS into
 * ws->grads and MERGES into ws->sgrads. The sparse buffers hold one
 * batch's rows: accumulating several batches without cr_ranker_zero_grad
 * may return CR_ERR_LIMIT. */
cr_status cr_ranker_backward(const cr_ranker *m, cr_ranker_ws *ws, const cr_batch *b,
                             const float *dout, cr_error *e);

/* Layout shared by forward and backward: with base = ws->acts (or
 * ws->dacts for the gradients) the input of tower k and the input of head h
 * (the tower's last hidden layer), each with its row stride in *ld. */
float *cr_ranker_tower_in(const cr_ranker *m, const cr_ranker_ws *ws, float *base, int k,
                          int *ld);
float *cr_ranker_head_in(const cr_ranker *m, const cr_ranker_ws *ws, float *base, int h,
                         int *ld);

/* Scatter a table's sparse gradient into a dense (rows, dim) array
 * (zeroed first); for tests and checkpoints of small tables. */
void cr_sparse_grad_to_dense(const cr_sparse_grad *g, float *dense, int64_t rows);



/* Layers with fewer outputs than this keep fp32 weights in a bf16/int8 plan. */
#define CR_LP_MIN_OUT 64

/* ---- requests: one context row, many candidate rows (ranker_request.c) ------
 * Serving scores N candidates for one request whose context (user, time,
 * history) is the same for all of them. The first layers that read x (the
 * stacked expert layer and the gates, the bottom's first layer, or the
 * towers/heads when nothing sits between them and x) split by columns:
 * W x + b = (W_ctx x_ctx + b) + W_cand x_cand. The bracket is computed once
 * per request and added to every candidate's W_cand x_cand; the rest of the
 * network is the plain forward. Which slots are context is chosen per
 * request: slot_is_ctx has one flag per slot, the n_cat categorical slots,
 * then the n_multi multi slots, then the n_dense dense values.
 *
 * A plan is built once per loaded model (read-only afterwards, shared by
 * every thread); a request workspace belongs to one thread at a time.
 * precision: CR_PRECISION_FP32, or BF16 (every dense layer's weights and
 * its input rounded to bfloat16, products summed in fp32) or INT8 (weights
 * quantised per output row, inputs per row, integer dot products) for the
 * candidate part; the context part and biases stay fp32. */
typedef struct cr_req_plan cr_req_plan;
typedef struct cr_req_ws   cr_req_ws;

cr_status cr_req_plan_create(cr_req_plan **out, const cr_ranker *m, cr_precision precision,
                             cr_error *e);
void      cr_req_plan_free(cr_req_plan *p);
int       cr_req_plan_slots(const cr_req_plan *p); /* n_cat + n_multi + n_dense */
/* max_B bounds the candidates of one forward (callers chunk longer lists). */
cr_status cr_req_ws_create(cr_req_ws **out, const cr_req_plan *p, int max_B, cr_error *e);
void      cr_req_ws_free(cr_req_ws *ws);
int       cr_req_ws_max_B(const cr_req_ws *ws);
/* ctx: a batch of one row whose context slots are read; cand: B rows whose
 * candidate slots are read (the other slots of each are never looked at).
 * Checks ids and offsets of the slots it reads like cr_ranker_forward.
 * Writes the raw head outputs (n_heads, B), like ws->out of the plain path,
 * into *out (valid until the next call on this workspace). Calls with the
 * same ctx row and slot_is_ctx may set same_ctx = 1 to reuse the context
 * part of the previous call (candidate lists longer than max_B). */
cr_status cr_req_forward(const cr_req_plan *p, cr_req_ws *ws, const uint8_t *slot_is_ctx,
                         const cr_batch *ctx, const cr_batch *cand, int same_ctx,
                         const float **out, cr_error *e);

#endif /* CR_RANKER_H */
