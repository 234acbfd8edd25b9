/* A cut schedule shared by the fuzz targets that deliver their input in pieces: piece lengths come
 * from a small PRNG seeded by input bytes, so the fuzzer picks both how small the pieces get and
 * where the cuts fall, and a given input always replays the same cuts. */
#ifndef FUZZ_SPLIT_H
#define FUZZ_SPLIT_H

#include <stddef.h>
#include <stdint.h>

struct fuzz_cuts {
    uint32_t state;
    size_t max; /* longest piece */
};

/* max_piece >= 1; seed any value. */
static inline void fuzz_cuts_init(struct fuzz_cuts *c, size_t max_piece, uint32_t seed)
{
    c->max = max_piece ? max_piece : 1;
    c->state = seed * 2654435761u + 0x9e3779b9u; /* never 0, which xorshift would keep */
    if (c->state == 0)
        c->state = 1;
}

/* The next piece length: 1..max, at most remaining (remaining > 0). */
static inline size_t fuzz_cuts_next(struct fuzz_cuts *c, size_t remaining)
{
    c->state ^= c->state << 13;
    c->state ^= c->state >> 17;
    c->state ^= c->state << 5;
    size_t n = 1 + c->state % c->max;
    return n < remaining ? n : remaining;
}

/* Piece-size classes a control byte's low 3 bits select: tiny pieces find boundary bugs, larger
 * ones keep long inputs fast. */
static inline size_t fuzz_cuts_class(unsigned sel)
{
    static const size_t max_piece[8] = {1, 2, 3, 5, 9, 17, 64, 512};
    return max_piece[sel & 7];
}

#endif
