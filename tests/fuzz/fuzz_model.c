/*
 * fuzz_model.c - safetensors and ranker checkpoints from arbitrary bytes:
 * the raw safetensors reader (every tensor's bytes read back), then the
 * model loader, and a model that loads scores a request (every input
 * missing, then every input "1") in fp32 and int8. Never crash; a loaded
 * model's scores are numbers or null, never a read out of bounds.
 */
#include "fuzz_util.h"

#include "crossrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    char p[256];
    fuzz_file("model.safetensors", d, n, p, sizeof p);
    cr_error e = {0};
    cr_st_file f;
    if (cr_st_open(&f, p, &e) == CR_OK) {
        uint64_t sum = 0;
        for (int i = 0; i < f.n; i++) /* every byte the reader vouched for */
            for (size_t b = 0; b < f.t[i].nbytes; b++) sum += ((const uint8_t *)f.t[i].data)[b];
        (void)sum;
        cr_st_close(&f);
    }
    for (int prec = 0; prec < 2; prec++) {
        cr_model_opts o;
        cr_model_opts_defaults(&o);
        o.precision = prec ? CR_PRECISION_INT8 : CR_PRECISION_FP32;
        cr_model *m = NULL;
        if (cr_model_load_opts(&m, p, &o, &e)) {
            FUZZ_CHECK(e.msg[0] != 0);
            return 0;
        }
        int NI = cr_model_n_inputs(m), NO = cr_model_n_outputs(m);
        enum { N = 3 };
        const char **ctx = calloc((size_t)NI, sizeof *ctx), **cand = calloc((size_t)N * NI, sizeof *cand);
        float *scores = malloc((size_t)N * (size_t)(NO ? NO : 1) * sizeof(float)), rank[N];
        int64_t order[N];
        for (int v = 0; v < 2; v++) {
            for (int i = 0; i < NI; i++) ctx[i] = i % 2 ? NULL : v ? "1" : "";
            for (int j = 0; j < N * NI; j++) cand[j] = v ? "1" : "";
            cr_request rq = {ctx, N, cand};
            cr_response rs = {scores, rank, order, 0};
            if (cr_model_score_request(m, &rq, &rs, &e) == CR_OK)
                for (int j = 0; j < N; j++) FUZZ_CHECK(order[j] >= 0 && order[j] < N);
        }
        free(ctx);
        free(cand);
        free(scores);
        cr_model_free(m);
    }
    return 0;
}
