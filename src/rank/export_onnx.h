/*
 * export_onnx.h - a ranker as an ONNX graph for ONNX Runtime, Triton or any
 * ONNX stack: the served heads only (the rule of cr_ranker_served), inputs
 * taken after vocabulary lookup, numeric transforms and bucketing inside the
 * graph, and the vocabularies beside it so a serving stack encodes a
 * request exactly as crossrec does. docs/formats.md describes the graph's
 * inputs and outputs and the vocabulary file.
 */
#ifndef CR_RANK_EXPORT_ONNX_H
#define CR_RANK_EXPORT_ONNX_H

#include "ranker.h"

#define CR_ONNX_OPSET      13
#define CR_ONNX_IR_VERSION 7 /* the IR of opset 13 (ONNX 1.8) */
#define CR_ONNX_VOCAB_FORMAT "crossrec.onnx.vocab"

/* The graph input names of feature f: categorical, bucketized and numeric
 * features have one (name[0] = the feature's name), multi features two
 * ("<name>.ids", "<name>.mask"). Returns how many. */
int cr_onnx_input_names(const cr_feature *f, char name[2][80]);

/* The vocabulary document (features in order: encoding, string-to-id map
 * or hash, bucket boundaries, defaults, transform and the missing-value
 * rule; the outputs and what they hold) for model m (served heads) and its
 * schema. free() the string. */
cr_status cr_onnx_vocab_json(const cr_ranker *m, const cr_schema *s, char **json, cr_error *e);

/* Load the ranker at in_path and write its served part as ONNX to out_path,
 * and its vocabulary document to vocab_path (NULL: out_path with ".onnx"
 * replaced by ".vocab.json"), both atomically; the document also goes into
 * the graph's metadata_props ("crossrec.vocab"). weights: CR_PRECISION_FP32,
 * or BF16 (weight matrices and tables stored as bfloat16, each read through
 * a Cast to float; biases fp32). A feature kind, pooling, transform or
 * architecture the exporter does not cover is an error naming it. *dropped
 * (may be NULL) gets the number of never-served heads left out. */
cr_status cr_ranker_export_onnx(const char *in_path, const char *out_path,
                                const char *vocab_path, cr_precision weights, int *dropped,
                                cr_error *e);
/* The same for a loaded model (m itself is written: call it with a served
 * model, as cr_ranker_export_onnx does). */
cr_status cr_onnx_write(const cr_ranker *m, const cr_schema *s, const char *out_path,
                        const char *vocab_path, cr_precision weights, cr_error *e);

/* Encode the rows of data_path with the model's schema (the same encoder
 * as training and scoring) into the graph's inputs, written as one
 * safetensors file at out_path: per feature its input tensors (int64 ids
 * (B); multi: int64 ids (B, L) padded with 0 and a float mask (B, L);
 * numeric and bucketized: float64 values as read, NaN where empty).
 * *rows (may be NULL) gets B. */
cr_status cr_onnx_encode(const char *model_path, const char *data_path, const char *out_path,
                         int64_t *rows, cr_error *e);

#endif /* CR_RANK_EXPORT_ONNX_H */
