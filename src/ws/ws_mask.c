/* Payload masking (RFC 6455 §5.3): XOR with a 4-byte key, eight bytes per step.
 *
 * The destination is first brought to an 8-byte boundary byte by byte; the key is then rotated
 * to the payload offset reached there and repeated into a 64-bit word. Building the word from
 * bytes in memory order keeps it correct on either endianness, and memcpy loads/stores compile to
 * plain moves. */
#include <string.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

void ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                  size_t offset)
{
    size_t i = 0;
    offset &= 3;
    while (i < len && ((uintptr_t)(dst + i) & 7u)) {
        dst[i] = src[i] ^ key[(offset + i) & 3u];
        i++;
    }
    if (len - i >= 8) {
        uint8_t rotated[8];
        for (size_t j = 0; j < 8; j++)
            rotated[j] = key[(offset + i + j) & 3u];
        uint64_t k;
        memcpy(&k, rotated, 8);
        for (; len - i >= 32; i += 32) {
            uint64_t w[4];
            memcpy(w, src + i, 32);
            w[0] ^= k;
            w[1] ^= k;
            w[2] ^= k;
            w[3] ^= k;
            memcpy(dst + i, w, 32);
        }
        for (; len - i >= 8; i += 8) {
            uint64_t w;
            memcpy(&w, src + i, 8);
            w ^= k;
            memcpy(dst + i, &w, 8);
        }
    }
    for (; i < len; i++)
        dst[i] = src[i] ^ key[(offset + i) & 3u];
}

void rill_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset)
{
    ws_mask_copy(data, data, len, key, offset);
}
