/* Receiving: frame parsing, validation, reassembly or streaming delivery, control frames and the
 * peer's side of the closing handshake.
 *
 * Headers are parsed straight from the input when whole, else gathered in a 14-byte buffer.
 * Payload bytes are unmasked while being copied to where they must go anyway (the reassembly
 * buffer, the control buffer, the inflater's input), or in place when the caller allows it, and
 * text is validated as it arrives so invalid UTF-8 fails at the byte that breaks it. */
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

/* Callbacks never see a NULL data pointer, even for empty payloads. */
static const uint8_t empty[1];

/* Large reassembly buffers are returned after use so one big message does not pin memory. */
#define WS_KEEP_MSG_BUFFER (1u << 20)

int ws_fail(rill_ws *ws, int err, unsigned close_code)
{
    if (ws->state == RILL_WS_FAILED)
        return err;
    if (!ws->close_sent)
        (void)ws_emit_close(ws, close_code, NULL, 0);
    ws->state = RILL_WS_FAILED;
    ws->fail_code = close_code;
    return err;
}

static int callback_result(rill_ws *ws, int rc)
{
    if (rc)
        ws->state = RILL_WS_FAILED;
    return rc;
}

/* One piece of a streamed message (already validated and counted by the caller). */
int ws_deliver(rill_ws *ws, const uint8_t *data, size_t len, bool final)
{
    if (final && ws->msg_opcode == RILL_WS_OP_TEXT && ws->msg_utf8 != WS_UTF8_ACCEPT)
        return ws_fail(ws, RILL_ERR_UTF8, RILL_WS_CLOSE_INVALID_PAYLOAD);
    unsigned flags = (ws->msg_first_pending ? RILL_WS_FIRST : 0u) | (final ? RILL_WS_FINAL : 0u);
    ws->msg_first_pending = false;
    if (final)
        ws->msg_active = false;
    if (!ws->cb.on_message)
        return RILL_OK;
    return callback_result(ws, ws->cb.on_message(ws->msg_opcode, data ? data : empty, len, flags,
                                                 ws->user));
}

static int deliver_whole(rill_ws *ws, const uint8_t *data, size_t len)
{
    if (ws->msg_opcode == RILL_WS_OP_TEXT && ws->msg_utf8 != WS_UTF8_ACCEPT)
        return ws_fail(ws, RILL_ERR_UTF8, RILL_WS_CLOSE_INVALID_PAYLOAD);
    ws->msg_active = false;
    int rc = 0;
    if (ws->cb.on_message)
        rc = ws->cb.on_message(ws->msg_opcode, data ? data : empty, len,
                               RILL_WS_FIRST | RILL_WS_FINAL, ws->user);
    ws->msg.len = 0;
    if (ws->msg.cap > WS_KEEP_MSG_BUFFER)
        ws_buf_release(&ws->msg);
    return callback_result(ws, rc);
}

static size_t header_size(const uint8_t *h)
{
    unsigned len7 = h[1] & 0x7Fu;
    size_t n = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
    return n + ((h[1] & 0x80u) ? 4 : 0);
}

static int protocol_error(rill_ws *ws)
{
    return ws_fail(ws, RILL_ERR_PROTOCOL, RILL_WS_CLOSE_PROTOCOL_ERROR);
}

static int on_header(rill_ws *ws, const uint8_t *h)
{
    bool fin = h[0] & 0x80u;
    bool rsv1 = h[0] & 0x40u;
    unsigned opcode = h[0] & 0x0Fu;
    bool masked = h[1] & 0x80u;
    unsigned len7 = h[1] & 0x7Fu;
    uint64_t len = len7;
    size_t pos = 2;
    if (len7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        pos = 4;
        if (len < 126) /* RFC 6455 §5.2: the minimal number of bytes MUST be used */
            return protocol_error(ws);
    } else if (len7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        pos = 10;
        if ((len >> 63) || len <= 0xFFFF)
            return protocol_error(ws);
    }
    if (h[0] & 0x30u) /* RSV2/RSV3: no extension defines them */
        return protocol_error(ws);
    /* Clients mask, servers do not (RFC 6455 §5.1). */
    if (masked != (ws->role == RILL_WS_SERVER))
        return protocol_error(ws);
    if (masked)
        memcpy(ws->rx_key, h + pos, 4);

    if (opcode & 0x8u) {
        if (opcode > RILL_WS_OP_PONG || !fin || rsv1 || len > RILL_WS_MAX_CONTROL_PAYLOAD)
            return protocol_error(ws);
        ws->ctl_len = 0;
    } else {
        if (opcode > RILL_WS_OP_BINARY)
            return protocol_error(ws);
        if (opcode == RILL_WS_OP_CONTINUATION) {
            if (!ws->msg_active || rsv1) /* RSV1 marks only a message's first frame */
                return protocol_error(ws);
        } else {
            if (ws->msg_active || (rsv1 && !ws->pmd_on))
                return protocol_error(ws);
            ws->msg_active = true;
            ws->msg_opcode = (uint8_t)opcode;
            ws->msg_compressed = rsv1;
            ws->msg_first_pending = true;
            ws->msg_size = 0;
            ws->msg_wire = 0;
            ws->msg_utf8 = WS_UTF8_ACCEPT;
            ws->msg.len = 0;
            if (rsv1) {
                int rc = ws_inflate_begin(ws);
                if (rc)
                    return rc;
            }
        }
        /* Uncompressed sizes are known up front: refuse before buffering anything. */
        if (!ws->msg_compressed && len > (uint64_t)ws->max_message - ws->msg_size)
            return ws_fail(ws, RILL_ERR_TOO_BIG, RILL_WS_CLOSE_MESSAGE_TOO_BIG);
    }
    ws->rx_opcode = (uint8_t)opcode;
    ws->rx_fin = fin;
    ws->rx_masked = masked;
    ws->rx_remaining = len;
    ws->rx_done = 0;
    ws->rx_in_payload = len > 0;
    return RILL_OK;
}

static int ensure_scratch(rill_ws *ws)
{
    if (!ws->scratch) {
        ws->scratch = malloc(2 * WS_SCRATCH_HALF);
        if (!ws->scratch)
            return ws_fail(ws, RILL_ERR_NOMEM, RILL_WS_CLOSE_INTERNAL_ERROR);
    }
    return RILL_OK;
}

static int text_check(rill_ws *ws, const uint8_t *p, size_t n)
{
    if (ws->msg_opcode == RILL_WS_OP_TEXT) {
        ws->msg_utf8 = ws_utf8_run(ws->msg_utf8, p, n);
        if (ws->msg_utf8 == WS_UTF8_REJECT)
            return ws_fail(ws, RILL_ERR_UTF8, RILL_WS_CLOSE_INVALID_PAYLOAD);
    }
    return RILL_OK;
}

/* Whole-message mode, uncompressed: append to the reassembly buffer, or deliver straight from
 * the input when one frame holds the whole message and no copy is needed. */
static int payload_whole(rill_ws *ws, uint8_t *mut, const uint8_t *src, size_t n)
{
    bool whole_frame_here = n == ws->rx_remaining && ws->rx_done == 0;
    if (whole_frame_here && ws->rx_fin && ws->msg.len == 0 && (mut || !ws->rx_masked)) {
        if (ws->rx_masked) {
            ws_mask_copy(mut, mut, n, ws->rx_key, 0);
            src = mut;
        }
        int rc = text_check(ws, src, n);
        if (rc)
            return rc;
        ws->msg_size += n;
        return deliver_whole(ws, src, n);
    }
    /* Grow with the bytes that actually arrived, not the declared length: a peer announcing
     * large frames and sending slowly must not make us reserve max_message up front. */
    int rc = ws_buf_reserve(&ws->msg, ws->msg.len + n, ws->max_message);
    if (rc)
        return ws_fail(ws, rc, RILL_WS_CLOSE_INTERNAL_ERROR);
    uint8_t *dst = ws->msg.data + ws->msg.len;
    if (ws->rx_masked)
        ws_mask_copy(dst, src, n, ws->rx_key, (size_t)ws->rx_done);
    else
        memcpy(dst, src, n);
    rc = text_check(ws, dst, n);
    if (rc)
        return rc;
    ws->msg.len += n;
    ws->msg_size += n;
    return RILL_OK;
}

/* Streaming or compressed: unmask (in place or through scratch) and pass on in pieces. */
static int payload_pieces(rill_ws *ws, uint8_t *mut, const uint8_t *src, size_t n)
{
    bool ends_message = n == ws->rx_remaining && ws->rx_fin;
    size_t offset = (size_t)ws->rx_done;
    while (n > 0) {
        size_t k = n;
        const uint8_t *p = src;
        if (ws->rx_masked) {
            if (mut) {
                ws_mask_copy(mut, mut, n, ws->rx_key, offset);
                p = mut;
            } else {
                int rc = ensure_scratch(ws);
                if (rc)
                    return rc;
                k = n < WS_SCRATCH_HALF ? n : WS_SCRATCH_HALF;
                ws_mask_copy(ws->scratch, src, k, ws->rx_key, offset);
                p = ws->scratch;
            }
        }
        int rc;
        if (ws->msg_compressed) {
            ws->msg_wire += k;
            rc = ws_inflate_feed(ws, p, k, false);
        } else {
            rc = text_check(ws, p, k);
            if (!rc) {
                ws->msg_size += k;
                rc = ws_deliver(ws, p, k, ends_message && k == n);
            }
        }
        if (rc)
            return rc;
        src += k;
        if (mut)
            mut += k;
        n -= k;
        offset += k;
    }
    return RILL_OK;
}

static int on_payload(rill_ws *ws, uint8_t *mut, const uint8_t *src, size_t n)
{
    if (ws->rx_opcode & 0x8u) {
        if (ws->rx_masked)
            ws_mask_copy(ws->ctl + ws->ctl_len, src, n, ws->rx_key, (size_t)ws->rx_done);
        else
            memcpy(ws->ctl + ws->ctl_len, src, n);
        ws->ctl_len += n;
        return RILL_OK;
    }
    if (!ws->msg_compressed && !ws->opt.streaming)
        return payload_whole(ws, mut, src, n);
    return payload_pieces(ws, mut, src, n);
}

static int on_close_frame(rill_ws *ws)
{
    unsigned code = RILL_WS_CLOSE_NO_STATUS;
    const uint8_t *reason = ws->ctl + 2;
    size_t reason_len = 0;
    if (ws->ctl_len == 1)
        return protocol_error(ws);
    if (ws->ctl_len >= 2) {
        code = (unsigned)ws->ctl[0] << 8 | ws->ctl[1];
        if (!rill_ws_close_code_valid(code))
            return protocol_error(ws);
        reason_len = ws->ctl_len - 2;
        if (ws_utf8_run(WS_UTF8_ACCEPT, reason, reason_len) != WS_UTF8_ACCEPT)
            return ws_fail(ws, RILL_ERR_UTF8, RILL_WS_CLOSE_INVALID_PAYLOAD);
    }
    ws->close_received = true;
    ws->peer_close_code = code;
    if (!ws->close_sent)
        ws->state = RILL_WS_CLOSE_RECEIVED;
    int rc = 0;
    if (ws->cb.on_close)
        rc = ws->cb.on_close(code, reason, reason_len, ws->user);
    if (rc)
        return callback_result(ws, rc);
    if (ws->state == RILL_WS_FAILED)
        return RILL_ERR_STATE;
    if (!ws->close_sent) {
        /* Echo the peer's code (RFC 6455 §5.5.1); an empty Close is answered with an empty one. */
        rc = ws_emit_close(ws, code == RILL_WS_CLOSE_NO_STATUS ? 0 : code, NULL, 0);
        if (rc)
            return ws_fail(ws, rc, RILL_WS_CLOSE_INTERNAL_ERROR);
    }
    ws->state = RILL_WS_CLOSED;
    return RILL_OK;
}

static int on_frame_end(rill_ws *ws)
{
    ws->rx_in_payload = false;
    const rill_ws_callbacks *cb = &ws->cb;
    switch (ws->rx_opcode) {
    case RILL_WS_OP_PING:
        if (!ws->opt.no_auto_pong && !ws->close_sent) {
            /* One pending pong, overwritten by later pings (RFC 6455 §5.5.3 allows answering
             * only the latest), so a ping flood cannot grow the output queue. */
            memcpy(ws->pong, ws->ctl, ws->ctl_len);
            ws->pong_len = ws->ctl_len;
            ws->pong_pending = true;
        }
        return cb->on_ping ? callback_result(ws, cb->on_ping(ws->ctl, ws->ctl_len, ws->user))
                           : RILL_OK;
    case RILL_WS_OP_PONG:
        return cb->on_pong ? callback_result(ws, cb->on_pong(ws->ctl, ws->ctl_len, ws->user))
                           : RILL_OK;
    case RILL_WS_OP_CLOSE:
        return on_close_frame(ws);
    default:
        break;
    }
    if (!ws->rx_fin || !ws->msg_active)
        return RILL_OK;
    if (ws->msg_compressed) {
        static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
        /* A compressed message with no bytes at all holds no DEFLATE block: the tail alone would
         * leave the inflater inside a half-read block header and corrupt the next message. */
        int rc = ws_inflate_feed(ws, tail, ws->msg_wire ? sizeof tail : 0, true);
        if (rc || ws->opt.streaming)
            return rc;
        return deliver_whole(ws, ws->msg.data, ws->msg.len);
    }
    if (ws->opt.streaming) /* the final frame was empty: its FINAL piece is empty too */
        return ws_deliver(ws, NULL, 0, true);
    return deliver_whole(ws, ws->msg.data, ws->msg.len);
}

static int process(rill_ws *ws, uint8_t *mut, const uint8_t *data, size_t len)
{
    if (ws->state == RILL_WS_FAILED)
        return RILL_ERR_STATE;
    int rc = RILL_OK;
    while (len > 0 && !rc) {
        /* After the peer's Close nothing more is read (RFC 6455 §5.5.1). */
        if (ws->close_received || ws->state == RILL_WS_CLOSED)
            return RILL_OK;
        if (ws->state == RILL_WS_FAILED)
            return RILL_ERR_STATE;
        if (ws->rx_in_payload) {
            size_t n = len < ws->rx_remaining ? len : (size_t)ws->rx_remaining;
            rc = on_payload(ws, mut, data, n);
            if (rc)
                break;
            data += n;
            if (mut)
                mut += n;
            len -= n;
            ws->rx_done += n;
            ws->rx_remaining -= n;
            if (ws->rx_remaining == 0)
                rc = on_frame_end(ws);
            continue;
        }
        size_t need;
        if (ws->rx_hdr_len == 0 && len >= 2 && len >= (need = header_size(data))) {
            rc = on_header(ws, data);
            data += need;
            if (mut)
                mut += need;
            len -= need;
        } else {
            need = ws->rx_hdr_len < 2 ? 2 : header_size(ws->rx_hdr);
            size_t take = need - ws->rx_hdr_len < len ? need - ws->rx_hdr_len : len;
            memcpy(ws->rx_hdr + ws->rx_hdr_len, data, take);
            ws->rx_hdr_len = (uint8_t)(ws->rx_hdr_len + take);
            data += take;
            if (mut)
                mut += take;
            len -= take;
            if (ws->rx_hdr_len < 2 || ws->rx_hdr_len < header_size(ws->rx_hdr))
                continue;
            ws->rx_hdr_len = 0;
            rc = on_header(ws, ws->rx_hdr);
        }
        if (!rc && !ws->rx_in_payload)
            rc = on_frame_end(ws);
    }
    return rc;
}

int rill_ws_recv(rill_ws *ws, const uint8_t *data, size_t len)
{
    return process(ws, NULL, data, len);
}

int rill_ws_recv_inplace(rill_ws *ws, uint8_t *data, size_t len)
{
    return process(ws, data, data, len);
}

unsigned rill_ws_fail_code(const rill_ws *ws)
{
    return ws->fail_code;
}
