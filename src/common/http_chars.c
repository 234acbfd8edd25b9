/* A table, because every field name of every message is checked byte by byte. */
#include "common/http_chars.h"

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
