/* Incremental UTF-8 validation with a byte-class DFA (RFC 3629 / Unicode Table 3-7).
 *
 * Each byte maps to one of 12 classes; a 9-state machine tracks how many continuation bytes are
 * still due and, right after a lead byte, the narrower range the second byte must fall in. That
 * range check is what rejects overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF) and code
 * points above U+10FFFF (F4 90..BF, F5..FF). States are stored premultiplied by the class count so
 * a step is one table load. Runs of ASCII are skipped eight bytes at a time, and complete 2- and
 * 3-byte sequences are checked in one step when the machine is between characters. */
#include <string.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

enum {
    N_CLASSES = 12,
    S_NEED1 = 2 * N_CLASSES,  /* one continuation byte 80..BF due */
    S_NEED2 = 3 * N_CLASSES,  /* two continuation bytes due */
    S_E0 = 4 * N_CLASSES,     /* after E0: A0..BF, then one more */
    S_ED = 5 * N_CLASSES,     /* after ED: 80..9F (no surrogates), then one more */
    S_NEED3 = 6 * N_CLASSES,  /* three continuation bytes due */
    S_F0 = 7 * N_CLASSES,     /* after F0: 90..BF, then two more */
    S_F4 = 8 * N_CLASSES,     /* after F4: 80..8F (<= U+10FFFF), then two more */
};

/* Classes: 0 ASCII, 1 cont 80..8F, 2 cont 90..9F, 3 cont A0..BF, 4 never valid (C0 C1 F5..FF),
 * 5 lead C2..DF, 6 E0, 7 E1..EC EE EF, 8 ED, 9 F0, 10 F1..F3, 11 F4. */
static const uint8_t byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 20 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 30 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 40 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 50 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 60 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 70 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 80 */
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, /* 90 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* A0 */
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, /* B0 */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* C0 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, /* D0 */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7, /* E0 */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* F0 */
};

#define R WS_UTF8_REJECT
static const uint8_t transition[9 * N_CLASSES] = {
    /*            ASCII  80-8F    90-9F    A0-BF    bad  C2-DF    E0    E1-EF    ED    F0    F1-F3    F4 */
    /* ACCEPT */  0,     R,       R,       R,       R,   S_NEED1, S_E0, S_NEED2, S_ED, S_F0, S_NEED3, S_F4,
    /* REJECT */  R,     R,       R,       R,       R,   R,       R,    R,       R,    R,    R,       R,
    /* NEED1  */  R,     0,       0,       0,       R,   R,       R,    R,       R,    R,    R,       R,
    /* NEED2  */  R,     S_NEED1, S_NEED1, S_NEED1, R,   R,       R,    R,       R,    R,    R,       R,
    /* E0     */  R,     R,       R,       S_NEED1, R,   R,       R,    R,       R,    R,    R,       R,
    /* ED     */  R,     S_NEED1, S_NEED1, R,       R,   R,       R,    R,       R,    R,    R,       R,
    /* NEED3  */  R,     S_NEED2, S_NEED2, S_NEED2, R,   R,       R,    R,       R,    R,    R,       R,
    /* F0     */  R,     R,       S_NEED2, S_NEED2, R,   R,       R,    R,       R,    R,    R,       R,
    /* F4     */  R,     S_NEED2, R,       R,       R,   R,       R,    R,       R,    R,    R,       R,
};
#undef R

uint32_t ws_utf8_run(uint32_t state, const uint8_t *p, size_t len)
{
    if (len == 0)
        return state;
    const uint8_t *end = p + len;
    while (p < end) {
        if (state == WS_UTF8_ACCEPT) {
            /* Skip ASCII 32 bytes, then a word, at a time: no byte has its top bit set. */
            while (end - p >= 32) {
                uint64_t w[4];
                memcpy(w, p, 32);
                if ((w[0] | w[1] | w[2] | w[3]) & UINT64_C(0x8080808080808080))
                    break;
                p += 32;
            }
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & UINT64_C(0x8080808080808080))
                    break;
                p += 8;
            }
            while (p < end && *p < 0x80)
                p++;
            if (p == end)
                break;
            /* Whole 2- and 3-byte sequences checked directly: most non-ASCII text (Greek,
             * Cyrillic, CJK...) never walks the table byte by byte. */
            if (end - p >= 3) {
                uint8_t b0 = p[0], b1 = p[1];
                if (b0 >= 0xC2 && b0 <= 0xDF && (b1 & 0xC0) == 0x80) {
                    p += 2;
                    continue;
                }
                if ((b0 & 0xF0) == 0xE0 && (b1 & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80 &&
                    !(b0 == 0xE0 && b1 < 0xA0) && !(b0 == 0xED && b1 > 0x9F)) {
                    p += 3;
                    continue;
                }
            }
        }
        state = transition[state + byte_class[*p++]];
        if (state == WS_UTF8_REJECT)
            break;
    }
    return state;
}

bool rill_ws_utf8_feed(uint32_t *state, const uint8_t *data, size_t len)
{
    if (*state != WS_UTF8_REJECT && *state % N_CLASSES == 0 && *state < 9 * N_CLASSES)
        *state = ws_utf8_run(*state, data, len);
    else
        *state = WS_UTF8_REJECT;
    return *state != WS_UTF8_REJECT;
}
