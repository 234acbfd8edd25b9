/* Sending: frames are built straight into the codec's output queue (header, then the payload
 * copied once, masked during the copy for the client role), fragmented by max_frame_size and
 * compressed when permessage-deflate allows. */
#include <string.h>

#include <openssl/rand.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

static int next_mask_key(rill_ws *ws, uint8_t key[4])
{
    if (ws->cb.mask_key)
        return ws->cb.mask_key(key, ws->user);
    /* One RAND_bytes call per 64 frames keeps the RNG off the per-frame path. */
    if (ws->keypool_pos + 4 > sizeof ws->keypool) {
        if (RAND_bytes(ws->keypool, (int)sizeof ws->keypool) != 1)
            return RILL_ERR_TLS;
        ws->keypool_pos = 0;
    }
    memcpy(key, ws->keypool + ws->keypool_pos, 4);
    ws->keypool_pos += 4;
    return RILL_OK;
}

static int emit_raw(rill_ws *ws, unsigned opcode, bool fin, bool rsv1, const uint8_t *payload,
                    size_t len)
{
    uint8_t key[4];
    bool masked = ws->role == RILL_WS_CLIENT;
    if (masked) {
        int rc = next_mask_key(ws, key);
        if (rc)
            return rc;
    }
    ws_buf *out = &ws->out;
    /* Reclaim drained space before growing: amortised O(1) per byte. */
    if (ws->out_head && (ws->out_head == out->len || ws->out_head >= out->cap / 2)) {
        memmove(out->data, out->data + ws->out_head, out->len - ws->out_head);
        out->len -= ws->out_head;
        ws->out_head = 0;
    }
    if (len > SIZE_MAX - RILL_WS_MAX_HEADER_SIZE - out->len)
        return RILL_ERR_NOMEM;
    int rc = ws_buf_reserve(out, out->len + RILL_WS_MAX_HEADER_SIZE + len, 0);
    if (rc)
        return rc;
    uint8_t *p = out->data + out->len;
    size_t hlen = rill_ws_frame_header(p, opcode, fin, rsv1, len, masked ? key : NULL);
    if (masked)
        ws_mask_copy(p + hlen, payload, len, key, 0);
    else if (len)
        memcpy(p + hlen, payload, len);
    out->len += hlen + len;
    return RILL_OK;
}

void ws_flush_pong(rill_ws *ws)
{
    if (!ws->pong_pending)
        return;
    ws->pong_pending = false;
    if (!ws->close_sent && ws->state != RILL_WS_FAILED)
        (void)emit_raw(ws, RILL_WS_OP_PONG, true, false, ws->pong, ws->pong_len);
}

int ws_emit_frame(rill_ws *ws, unsigned opcode, bool fin, bool rsv1, const uint8_t *payload,
                  size_t len)
{
    ws_flush_pong(ws);
    return emit_raw(ws, opcode, fin, rsv1, payload, len);
}

int ws_emit_close(rill_ws *ws, unsigned code, const uint8_t *reason, size_t reason_len)
{
    uint8_t payload[RILL_WS_MAX_CONTROL_PAYLOAD];
    size_t len = 0;
    if (code) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        if (reason_len)
            memcpy(payload + 2, reason, reason_len);
        len = 2 + reason_len;
    }
    int rc = ws_emit_frame(ws, RILL_WS_OP_CLOSE, true, false, payload, len);
    ws->close_sent = true;
    ws->pong_pending = false;
    if (ws->state != RILL_WS_FAILED)
        ws->state = ws->close_received ? RILL_WS_CLOSED : RILL_WS_CLOSE_SENT;
    return rc;
}

static int data_allowed(const rill_ws *ws)
{
    if (ws->close_sent || ws->state == RILL_WS_FAILED || ws->state == RILL_WS_CLOSED)
        return RILL_ERR_STATE;
    return RILL_OK;
}

static bool is_data_opcode(unsigned opcode)
{
    return opcode == RILL_WS_OP_TEXT || opcode == RILL_WS_OP_BINARY;
}

/* Emit one message piece as frames of at most max_frame_size; a broken sequence (out of
 * memory half-way) leaves the stream unusable, so the codec fails. */
static int emit_pieces(rill_ws *ws, unsigned opcode, const uint8_t *data, size_t len, bool fin,
                       bool rsv1)
{
    size_t max = ws->opt.max_frame_size ? ws->opt.max_frame_size : len;
    size_t off = 0;
    do {
        size_t n = len - off < max ? len - off : max;
        bool last = off + n == len;
        int rc = ws_emit_frame(ws, opcode, last && fin, rsv1, n ? data + off : data, n);
        if (rc) {
            ws->state = RILL_WS_FAILED;
            return rc;
        }
        off += n;
        opcode = RILL_WS_OP_CONTINUATION;
        rsv1 = false;
    } while (off < len);
    return RILL_OK;
}

int rill_ws_send(rill_ws *ws, unsigned opcode, const void *data, size_t len)
{
    if (!is_data_opcode(opcode) || (!data && len))
        return RILL_ERR_INVALID_ARG;
    int rc = data_allowed(ws);
    if (rc)
        return rc;
    if (ws->tx_msg_active)
        return RILL_ERR_STATE;
    const uint8_t *payload = data;
    if (opcode == RILL_WS_OP_TEXT && ws_utf8_run(WS_UTF8_ACCEPT, payload, len) != WS_UTF8_ACCEPT)
        return RILL_ERR_UTF8;
    bool rsv1 = false;
    if (ws->tx_compress && len >= ws->opt.compress_threshold) {
        rc = ws_deflate_piece(ws, payload, len, true);
        if (rc)
            return rc;
        ws_deflate_message_done(ws);
        /* Without context takeover nothing refers back to this message, so when compression
         * did not help the original can go instead. */
        if (!(ws->tx_no_context_takeover && ws->zout.len >= len)) {
            payload = ws->zout.data;
            len = ws->zout.len;
            rsv1 = true;
        }
    }
    return emit_pieces(ws, opcode, payload, len, true, rsv1);
}

int rill_ws_send_fragment(rill_ws *ws, unsigned opcode, const void *data, size_t len, bool final)
{
    if (!data && len)
        return RILL_ERR_INVALID_ARG;
    int rc = data_allowed(ws);
    if (rc)
        return rc;
    bool first = !ws->tx_msg_active;
    if (first) {
        if (!is_data_opcode(opcode))
            return RILL_ERR_INVALID_ARG;
    } else {
        opcode = ws->tx_opcode;
    }
    const uint8_t *payload = data;
    uint32_t utf8 = first ? WS_UTF8_ACCEPT : ws->tx_utf8;
    if (opcode == RILL_WS_OP_TEXT) {
        utf8 = ws_utf8_run(utf8, payload, len);
        if (utf8 == WS_UTF8_REJECT || (final && utf8 != WS_UTF8_ACCEPT))
            return RILL_ERR_UTF8;
    }
    bool compressed = first ? ws->tx_compress && len >= ws->opt.compress_threshold
                            : ws->tx_msg_compressed;
    if (compressed) {
        rc = ws_deflate_piece(ws, payload, len, final);
        if (rc)
            return rc;
        payload = ws->zout.data;
        len = ws->zout.len;
    }
    rc = emit_pieces(ws, first ? opcode : RILL_WS_OP_CONTINUATION, payload, len, final,
                     compressed && first);
    if (rc)
        return rc;
    ws->tx_msg_active = !final;
    ws->tx_opcode = (uint8_t)opcode;
    ws->tx_utf8 = utf8;
    ws->tx_msg_compressed = compressed;
    if (final && compressed)
        ws_deflate_message_done(ws);
    return RILL_OK;
}

static int send_control(rill_ws *ws, unsigned opcode, const void *data, size_t len)
{
    if (len > RILL_WS_MAX_CONTROL_PAYLOAD || (!data && len))
        return RILL_ERR_INVALID_ARG;
    int rc = data_allowed(ws);
    if (rc)
        return rc;
    return ws_emit_frame(ws, opcode, true, false, data, len);
}

int rill_ws_send_ping(rill_ws *ws, const void *data, size_t len)
{
    return send_control(ws, RILL_WS_OP_PING, data, len);
}

int rill_ws_send_pong(rill_ws *ws, const void *data, size_t len)
{
    return send_control(ws, RILL_WS_OP_PONG, data, len);
}

int rill_ws_close(rill_ws *ws, unsigned code, const char *reason, size_t reason_len)
{
    if (ws->close_sent || ws->state == RILL_WS_FAILED || ws->state == RILL_WS_CLOSED)
        return RILL_ERR_STATE;
    if (code == 0 ? reason_len != 0 : !rill_ws_close_code_valid(code))
        return RILL_ERR_INVALID_ARG;
    if (reason_len > RILL_WS_MAX_CONTROL_PAYLOAD - 2 || (!reason && reason_len))
        return RILL_ERR_INVALID_ARG;
    if (ws_utf8_run(WS_UTF8_ACCEPT, (const uint8_t *)reason, reason_len) != WS_UTF8_ACCEPT)
        return RILL_ERR_UTF8;
    return ws_emit_close(ws, code, (const uint8_t *)reason, reason_len);
}

int rill_ws_send_header(rill_ws *ws, unsigned opcode, size_t len,
                        uint8_t hdr[RILL_WS_MAX_HEADER_SIZE], size_t *hdr_len, uint8_t mask_key[4])
{
    if (!is_data_opcode(opcode) || !hdr || !hdr_len)
        return RILL_ERR_INVALID_ARG;
    int rc = data_allowed(ws);
    if (rc)
        return rc;
    if (ws->tx_msg_active)
        return RILL_ERR_STATE;
    ws_flush_pong(ws);
    if (ws->out.len != ws->out_head)
        return RILL_ERR_WOULD_BLOCK;
    uint8_t key[4];
    bool masked = ws->role == RILL_WS_CLIENT;
    if (masked) {
        if (!mask_key)
            return RILL_ERR_INVALID_ARG;
        rc = next_mask_key(ws, key);
        if (rc)
            return rc;
        memcpy(mask_key, key, 4);
    }
    *hdr_len = rill_ws_frame_header(hdr, opcode, true, false, len, masked ? key : NULL);
    return RILL_OK;
}

size_t rill_ws_output(rill_ws *ws, const uint8_t **data)
{
    ws_flush_pong(ws);
    *data = ws->out.data ? ws->out.data + ws->out_head : NULL;
    return ws->out.len - ws->out_head;
}

void rill_ws_output_sent(rill_ws *ws, size_t n)
{
    size_t pending = ws->out.len - ws->out_head;
    ws->out_head += n < pending ? n : pending;
    if (ws->out_head == ws->out.len)
        ws->out_head = ws->out.len = 0;
}

size_t rill_ws_output_copy(rill_ws *ws, uint8_t *buf, size_t cap)
{
    const uint8_t *p;
    size_t n = rill_ws_output(ws, &p);
    if (n > cap)
        n = cap;
    if (n)
        memcpy(buf, p, n);
    rill_ws_output_sent(ws, n);
    return n;
}
