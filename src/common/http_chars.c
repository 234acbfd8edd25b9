/* Tables, because every field name and request target is checked byte by byte. */
#include "common/http_chars.h"

#include <string.h>

#define L HTTP_TCHAR_LOWER
#define U HTTP_TCHAR_UPPER
const uint8_t http_tchar[256] = {
    ['!'] = L, ['#'] = L, ['$'] = L, ['%'] = L, ['&'] = L, ['\''] = L, ['*'] = L, ['+'] = L,
    ['-'] = L, ['.'] = L, ['^'] = L, ['_'] = L, ['`'] = L, ['|'] = L, ['~'] = L,
    ['0'] = L, ['1'] = L, ['2'] = L, ['3'] = L, ['4'] = L, ['5'] = L, ['6'] = L, ['7'] = L,
    ['8'] = L, ['9'] = L,
    ['a'] = L, ['b'] = L, ['c'] = L, ['d'] = L, ['e'] = L, ['f'] = L, ['g'] = L, ['h'] = L,
    ['i'] = L, ['j'] = L, ['k'] = L, ['l'] = L, ['m'] = L, ['n'] = L, ['o'] = L, ['p'] = L,
    ['q'] = L, ['r'] = L, ['s'] = L, ['t'] = L, ['u'] = L, ['v'] = L, ['w'] = L, ['x'] = L,
    ['y'] = L, ['z'] = L,
    ['A'] = U, ['B'] = U, ['C'] = U, ['D'] = U, ['E'] = U, ['F'] = U, ['G'] = U, ['H'] = U,
    ['I'] = U, ['J'] = U, ['K'] = U, ['L'] = U, ['M'] = U, ['N'] = U, ['O'] = U, ['P'] = U,
    ['Q'] = U, ['R'] = U, ['S'] = U, ['T'] = U, ['U'] = U, ['V'] = U, ['W'] = U, ['X'] = U,
    ['Y'] = U, ['Z'] = U,
};

/* 0x21..0x7E without '#' (0x23) */
const uint8_t http_target_char[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Whether any of the n bytes is NUL, CR or LF (RFC 9113 §8.2.1), eight bytes a step: a byte is
 * zero in x exactly when (x - 0x01..) & ~x has its high bit (no false alarm when none is). */
static bool has_nul_cr_lf(const uint8_t *v, size_t n)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t found = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, v + i, 8);
        uint64_t cr = w ^ (ones * '\r'), lf = w ^ (ones * '\n');
        found |= ((w - ones) & ~w) | ((cr - ones) & ~cr) | ((lf - ones) & ~lf);
    }
    found &= highs;
    for (; i < n; i++)
        found |= (uint64_t)((v[i] == 0) | (v[i] == '\r') | (v[i] == '\n'));
    return found != 0;
}

bool http2_field_valid(const uint8_t *name, size_t name_len, const uint8_t *value, size_t value_len)
{
    size_t i = 0;
    if (name_len == 0)
        return false;
    if (name[0] == ':') {
        i = 1;
        if (name_len == 1)
            return false;
    }
    unsigned bad = 0;
    for (; i < name_len; i++)
        bad |= http_tchar[name[i]] != HTTP_TCHAR_LOWER; /* no uppercase in HTTP/2 names */
    if (bad)
        return false;
    size_t n = value_len;
    if (n) {
        const uint8_t *v = value;
        if (v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' || v[n - 1] == '\t')
            return false;
        if (has_nul_cr_lf(v, n)) /* the forbidden bytes (section 8.2.1) */
            return false;
    }
    return true;
}
