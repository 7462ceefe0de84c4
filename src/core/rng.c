/*
 * rng.c - mt19937 with explicit state, plus the few distributions crossrec
 * needs. Same generator as PyTorch's CPU generator and std::mt19937, so a
 * seed means the same stream everywhere; state lives in the caller's struct.
 */
#include "core.h"

#include <math.h>

void cr_rng_seed(cr_rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)seed;
    for (int i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->idx = 624;
    r->has_spare = 0;
}

uint32_t cr_rng_u32(cr_rng *r) {
    if (r->idx >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % 624] & 0x7fffffffu);
            r->mt[i] = r->mt[(i + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        r->idx = 0;
    }
    uint32_t y = r->mt[r->idx++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t cr_rng_u64(cr_rng *r) {
    uint64_t hi = cr_rng_u32(r);
    return (hi << 32) | cr_rng_u32(r);
}

double cr_rng_uniform(cr_rng *r) {
    return (double)(cr_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double cr_rng_normal(cr_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u1, u2;
    do u1 = cr_rng_uniform(r); while (u1 <= 0.0);
    u2 = cr_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    r->spare = rad * sin(2.0 * M_PI * u2);
    r->has_spare = 1;
    return rad * cos(2.0 * M_PI * u2);
}

uint64_t cr_rng_below(cr_rng *r, uint64_t n) {
    CR_ASSERT(n > 0);
    uint64_t lim = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t x;
    do x = cr_rng_u64(r); while (x >= lim);
    return x % n;
}

void cr_rng_shuffle_u32(cr_rng *r, uint32_t *a, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)cr_rng_below(r, i);
        uint32_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

void cr_rng_fill_uniform(cr_rng *r, float *w, size_t n, float a) {
    for (size_t i = 0; i < n; i++) w[i] = (float)((2.0 * cr_rng_uniform(r) - 1.0) * a);
}

void cr_rng_fill_normal(cr_rng *r, float *w, size_t n, float std) {
    for (size_t i = 0; i < n; i++) w[i] = (float)(cr_rng_normal(r) * std);
}
