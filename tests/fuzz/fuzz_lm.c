/*
 * fuzz_lm.c - the language-model checkpoint loaders on arbitrary bytes:
 * the first byte picks llama2.c (mapped, then copied) or crossrec's own
 * format / format detection (cr_dec_open); a decoder that loads generates
 * two tokens (the path where a NaN weight once met undefined behaviour in
 * the vector exp). Never crash; generated ids are inside the vocabulary.
 */
#include "fuzz_util.h"

#include "../../src/nn/decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
    if (n < 1) return 0;
    char p[256];
    fuzz_file("lm.bin", d + 1, n - 1, p, sizeof p);
    cr_error e = {0};
    cr_decoder dec;
    cr_status st = d[0] % 3 == 0   ? cr_dec_load_llama2c(&dec, p, 0, &e)
                   : d[0] % 3 == 1 ? cr_dec_load_llama2c(&dec, p, 1, &e)
                                   : cr_dec_open(&dec, p, 0, &e);
    if (st) {
        FUZZ_CHECK(e.msg[0] != 0);
        return 0;
    }
    /* keep generation cheap: the loader's size checks bound the model, but
     * a fuzzed header may still describe a large one */
    if ((double)dec.cfg.dim * dec.cfg.vocab < 4e6 && dec.cfg.n_layers <= 8 && dec.cfg.max_seq >= 3) {
        cr_dec_ws ws;
        if (cr_dec_ws_create(&ws, &dec, 1, 3, CR_DEC_WS_KV_CACHE, &e) == CR_OK) {
            int32_t prompt[1] = {0}, out[2];
            if (cr_dec_generate(&dec, &ws, prompt, 1, 2, NULL, NULL, out, &e) == CR_OK)
                for (int i = 0; i < 2; i++) FUZZ_CHECK(out[i] >= 0 && out[i] < dec.cfg.vocab);
            cr_dec_ws_free(&ws);
        }
    }
    cr_dec_free(&dec);
    return 0;
}
