/* Frame headers, close codes and the growable buffer shared by the codec. */
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

size_t rill_ws_frame_header(uint8_t *out, unsigned opcode, bool fin, bool rsv1,
                            uint64_t payload_len, const uint8_t *mask_key)
{
    size_t n = 2;
    out[0] = (uint8_t)((fin ? 0x80u : 0) | (rsv1 ? 0x40u : 0) | (opcode & 0x0Fu));
    uint8_t mask_bit = mask_key ? 0x80u : 0;
    if (payload_len < 126) {
        out[1] = (uint8_t)(mask_bit | payload_len);
    } else if (payload_len <= 0xFFFF) {
        out[1] = (uint8_t)(mask_bit | 126u);
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
        n = 4;
    } else {
        out[1] = (uint8_t)(mask_bit | 127u);
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
        n = 10;
    }
    if (mask_key) {
        memcpy(out + n, mask_key, 4);
        n += 4;
    }
    return n;
}

bool rill_ws_close_code_valid(unsigned code)
{
    /* 1004 is reserved, 1005/1006/1015 are for APIs only, 1012-1014 and the rest of 1000-2999
     * are unassigned by RFC 6455; 3000-3999 are registered, 4000-4999 private. */
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

int ws_buf_reserve(ws_buf *b, size_t need, size_t limit)
{
    if (need <= b->cap)
        return RILL_OK;
    if (limit && need > limit)
        return RILL_ERR_LIMIT;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (limit && cap > limit)
        cap = limit;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return RILL_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return RILL_OK;
}

void ws_buf_release(ws_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
