/*
 * api_study.c - the public distillation entry points (crossrec.h): label a
 * target log with a frozen teacher, export the serving model (safetensors
 * or ONNX), run a whole study and render its tables and report. Thin brackets over src/rank:
 * each call takes the context (threads set and restored, log lines to its
 * sink) and checks its arguments before any work starts.
 */
#include "crossrec.h"

#include "../core/core.h"
#include "../rank/checkpoint.h"
#include "../rank/export_onnx.h"
#include "../rank/experiment.h"
#include "../rank/label.h"

#include <stdlib.h>
#include <string.h>

cr_status cr_label(cr_ctx *ctx, const cr_label_args *a, char **coverage_json, cr_error *e) {
    if (coverage_json) *coverage_json = NULL;
    if (!a || !a->teacher || !a->map || !a->data || !a->out)
        return cr_err(e, CR_ERR_ARG, "cr_label: teacher, map, data and out are required");
    if (a->batch < 0 || a->batch > (1 << 20))
        return cr_err(e, CR_ERR_ARG, "cr_label_args.batch: expected 0 (1024) to %d, got %d",
                      1 << 20, a->batch);
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_label", e));
    cr_label_opts o = {.teacher = a->teacher, .map = a->map, .data = a->data, .out = a->out,
                       .coverage = a->coverage, .batch = a->batch,
                       .progress = cr_ctx_log(k.ctx), /* threads: the bracket's */
                       .dist = k.ctx->p.dist, .ctx = k.ctx};
    cr_label_report r;
    memset(&r, 0, sizeof r);
    cr_status s = cr_distill_label(&o, &r, e);
    if (!s && coverage_json) s = cr_label_report_json(&r, coverage_json, e);
    cr_label_report_free(&r);
    cr_call_end(&k);
    return s;
}

cr_status cr_export(const char *model, const char *out, const char *format, int *dropped,
                    cr_error *e) {
    if (dropped) *dropped = 0;
    if (!model || !out) return cr_err(e, CR_ERR_ARG, "cr_export: model and out are required");
    int onnx = format && !strcmp(format, "onnx"), bf16 = format && !strcmp(format, "onnx-bf16");
    if (format && !onnx && !bf16 && strcmp(format, "safetensors"))
        return cr_err(e, CR_ERR_ARG, "cr_export: format '%s' is not one of: safetensors, onnx, "
                      "onnx-bf16", format);
    if (onnx || bf16)
        return cr_export_onnx(model, out, NULL, bf16 ? CR_PRECISION_BF16 : CR_PRECISION_FP32,
                              dropped, e);
    int d = 0;
    CR_TRY(cr_ranker_export(model, out, &d, e));
    if (dropped) *dropped = d;
    return CR_OK;
}

cr_status cr_export_onnx(const char *model, const char *out, const char *vocab,
                         cr_precision weights, int *dropped, cr_error *e) {
    if (dropped) *dropped = 0;
    if (!model || !out) return cr_err(e, CR_ERR_ARG, "cr_export_onnx: model and out are required");
    if (weights != CR_PRECISION_FP32 && weights != CR_PRECISION_BF16)
        return cr_err(e, CR_ERR_ARG, "cr_export_onnx: weights: expected CR_PRECISION_FP32 or "
                      "CR_PRECISION_BF16, got %d", (int)weights);
    int d = 0;
    CR_TRY(cr_ranker_export_onnx(model, out, vocab, weights, &d, e));
    if (dropped) *dropped = d;
    return CR_OK;
}

cr_status cr_experiment(cr_ctx *ctx, const char *config, const char *out_dir, int fresh,
                        char **results_json, cr_error *e) {
    if (results_json) *results_json = NULL;
    if (!config || !out_dir) return cr_err(e, CR_ERR_ARG, "cr_experiment: config and out_dir are required");
    if (fresh != 0 && fresh != 1)
        return cr_err(e, CR_ERR_ARG, "cr_experiment: fresh is 0 or 1, got %d", fresh);
    cr_call k;
    CR_TRY(cr_call_begin(&k, ctx, "cr_experiment", e));
    cr_experiment_opts o = {.config = config, .out_dir = out_dir, .progress = cr_ctx_log(k.ctx),
                            .reuse = !fresh, .threads = k.ctx->p.threads > 0 ? k.ctx->p.threads : -1,
                            .dist = k.ctx->p.dist, .ctx = k.ctx};
    cr_status s = cr_experiment_run(&o, results_json, e);
    cr_call_end(&k);
    return s;
}

cr_status cr_experiment_table(const char *results_json, char **text, cr_error *e) {
    if (!results_json || !text)
        return cr_err(e, CR_ERR_ARG, "cr_experiment_table: results_json and text are required");
    *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(text, &n);
    if (!f) return cr_err(e, CR_ERR_NOMEM, "out of memory");
    cr_status s = cr_experiment_print_table(f, results_json, e);
    if (fclose(f) && !s) s = cr_err(e, CR_ERR_NOMEM, "out of memory");
    if (s) {
        free(*text);
        *text = NULL;
    }
    return s;
}

cr_status cr_experiment_report(const char *results_json, const char *html_path, cr_error *e) {
    if (!results_json || !html_path)
        return cr_err(e, CR_ERR_ARG, "cr_experiment_report: results_json and html_path are required");
    return cr_experiment_report_html(results_json, html_path, e);
}
