/* permessage-deflate data path (RFC 7692 §7.2): raw DEFLATE with zlib.
 *
 * Receiving: each compressed message's payload is inflated as it arrives, into the reassembly
 * buffer (whole-message mode, which never grows past max_message + 1 bytes) or into a 16 KiB
 * scratch delivered piece by piece (streaming). Output is counted as it is produced, so a
 * decompression bomb stops with 1009 after at most max_message + one chunk of work and memory.
 * The sender removed the final 00 00 ff ff; it is fed back at the message's end.
 *
 * Sending: each message (or streamed piece) is deflated with Z_SYNC_FLUSH, which ends the output
 * on a byte boundary with an empty stored block 00 00 ff ff; the last piece of a message has it
 * removed. Without context takeover the stream is reset after each message. */
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

#define WS_ZCHUNK (1u << 30) /* zlib counts in uInt: feed huge inputs in slices */

int ws_inflate_begin(rill_ws *ws)
{
    if (!ws->inflater_ready) {
        memset(&ws->inflater, 0, sizeof ws->inflater);
        /* Always the largest window, larger than the sender's limit (which is safe): zlib checks
         * a match's distance only against the output it still holds, so with the negotiated
         * window a stream reaching past it was accepted when inflated in one call and refused
         * when its bytes came in pieces. With 32 KiB every reach is judged the same way. */
        if (inflateInit2(&ws->inflater, -15) != Z_OK)
            return ws_fail(ws, RILL_ERR_NOMEM, RILL_WS_CLOSE_INTERNAL_ERROR);
        ws->inflater_ready = true;
    } else if (ws->rx_no_context_takeover) {
        inflateReset(&ws->inflater);
    }
    ws->msg_inflate_ended = false;
    return RILL_OK;
}

/* The sender ended its DEFLATE stream with a BFINAL block (RFC 7692 §7.2.3.4). The next message
 * starts a new stream, but with context takeover it may still refer to this one's window. */
static void inflate_stream_ended(rill_ws *ws)
{
    z_stream *z = &ws->inflater;
    if (ws->rx_no_context_takeover) {
        inflateReset(z);
        return;
    }
    uint8_t dict[32768];
    uInt dict_len = sizeof dict;
    if (inflateGetDictionary(z, dict, &dict_len) != Z_OK)
        dict_len = 0;
    inflateReset(z);
    if (dict_len)
        inflateSetDictionary(z, dict, dict_len);
}

static int inflate_error(rill_ws *ws)
{
    return ws_fail(ws, RILL_ERR_PROTOCOL, RILL_WS_CLOSE_INVALID_PAYLOAD);
}

int ws_inflate_feed(rill_ws *ws, const uint8_t *in, size_t n, bool final_piece)
{
    z_stream *z = &ws->inflater;
    bool streaming = ws->opt.streaming;
    uint8_t *piece = NULL;
    size_t piece_len = 0;
    if (streaming) {
        if (!ws->scratch && !(ws->scratch = malloc(2 * WS_SCRATCH_HALF)))
            return ws_fail(ws, RILL_ERR_NOMEM, RILL_WS_CLOSE_INTERNAL_ERROR);
        piece = ws->scratch + WS_SCRATCH_HALF;
    }
    size_t limit = ws->max_message + 1; /* one byte over the cap proves the message too big */
    while (!ws->msg_inflate_ended) {
        if (z->avail_in == 0 && n > 0) {
            size_t k = n < WS_ZCHUNK ? n : WS_ZCHUNK;
            z->next_in = (Bytef *)(uintptr_t)in;
            z->avail_in = (uInt)k;
            in += k;
            n -= k;
        }
        uint8_t *dst;
        size_t room;
        if (streaming) {
            dst = piece + piece_len;
            room = WS_SCRATCH_HALF - piece_len;
            if (room > limit - ws->msg_size) /* never inflate past the byte that proves 1009 */
                room = limit - ws->msg_size;
        } else {
            if (ws->msg.len == ws->msg.cap) {
                size_t want = ws->msg.cap < 4096 ? 4096 : ws->msg.cap * 2;
                int rc = ws_buf_reserve(&ws->msg, want < limit ? want : limit, limit);
                if (rc)
                    return ws_fail(ws, rc, RILL_WS_CLOSE_INTERNAL_ERROR);
            }
            dst = ws->msg.data + ws->msg.len;
            room = ws->msg.cap - ws->msg.len;
            if (room > WS_ZCHUNK)
                room = WS_ZCHUNK;
            if (room == 0) /* only reachable past the cap; never spin on a full buffer */
                return ws_fail(ws, RILL_ERR_TOO_BIG, RILL_WS_CLOSE_MESSAGE_TOO_BIG);
        }
        uInt in_before = z->avail_in;
        z->next_out = dst;
        z->avail_out = (uInt)room;
        int r = inflate(z, Z_SYNC_FLUSH);
        size_t produced = room - z->avail_out;
        /* What inflate produced before an error comes first in the message: a cap or UTF-8
         * failure in it is the verdict, whatever size the input arrived in. */
        if (produced) {
            int rc = RILL_OK;
            size_t in_cap = ws->max_message - ws->msg_size; /* bytes past it prove 1009 alone */
            if (ws->msg_opcode == RILL_WS_OP_TEXT) {
                ws->msg_utf8 = ws_utf8_run(ws->msg_utf8, dst, produced < in_cap ? produced : in_cap);
                if (ws->msg_utf8 == WS_UTF8_REJECT)
                    rc = ws_fail(ws, RILL_ERR_UTF8, RILL_WS_CLOSE_INVALID_PAYLOAD);
            }
            ws->msg_size += produced;
            if (!rc && ws->msg_size > ws->max_message)
                rc = ws_fail(ws, RILL_ERR_TOO_BIG, RILL_WS_CLOSE_MESSAGE_TOO_BIG);
            if (rc)
                return rc;
            if (streaming)
                piece_len += produced;
            else
                ws->msg.len += produced;
        }
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR)
            return inflate_error(ws);
        if (r == Z_STREAM_END) {
            inflate_stream_ended(ws);
            ws->msg_inflate_ended = true; /* anything after the final block is ignored */
            break;
        }
        if (streaming && piece_len == WS_SCRATCH_HALF) {
            int rc = ws_deliver(ws, piece, piece_len, false);
            if (rc)
                return rc;
            piece_len = 0;
            continue;
        }
        if (z->avail_out != 0 && z->avail_in == 0 && n == 0)
            break; /* all input taken and inflate was not short of room */
        if (produced == 0 && in_before == z->avail_in && z->avail_out != 0)
            break; /* no progress possible (cannot happen with valid zlib; guards the loop) */
    }
    z->next_in = NULL;
    z->avail_in = 0;
    if (streaming && (piece_len || final_piece))
        return ws_deliver(ws, piece, piece_len, final_piece);
    return RILL_OK;
}

static int deflater_ready(rill_ws *ws)
{
    if (ws->deflater_ready)
        return RILL_OK;
    memset(&ws->deflater, 0, sizeof ws->deflater);
    if (deflateInit2(&ws->deflater, ws->opt.compress_level, Z_DEFLATED, -ws->tx_window_bits,
                     ws->opt.compress_mem_level, Z_DEFAULT_STRATEGY) != Z_OK)
        return RILL_ERR_NOMEM;
    ws->deflater_ready = true;
    return RILL_OK;
}

int ws_deflate_piece(rill_ws *ws, const uint8_t *in, size_t n, bool final)
{
    int rc = deflater_ready(ws);
    if (rc)
        return rc;
    z_stream *z = &ws->deflater;
    ws->zout.len = 0;
    for (;;) {
        size_t k = n < WS_ZCHUNK ? n : WS_ZCHUNK;
        z->next_in = (Bytef *)(uintptr_t)in;
        z->avail_in = (uInt)k;
        if (k) /* in may be NULL for an empty piece */
            in += k;
        n -= k;
        int flush = n == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        for (;;) {
            size_t need = ws->zout.len + deflateBound(z, z->avail_in) + 16;
            if (ws->zout.cap - ws->zout.len < 4096 || ws->zout.cap < need) {
                rc = ws_buf_reserve(&ws->zout, need, 0);
                if (rc)
                    return rc;
            }
            size_t room = ws->zout.cap - ws->zout.len;
            if (room > WS_ZCHUNK)
                room = WS_ZCHUNK;
            z->next_out = ws->zout.data + ws->zout.len;
            z->avail_out = (uInt)room;
            int r = deflate(z, flush);
            ws->zout.len += room - z->avail_out;
            if (r == Z_BUF_ERROR) /* nothing to do: already flushed and no new input */
                break;
            if (r != Z_OK)
                return RILL_ERR_COMPRESSION;
            if (z->avail_out != 0 && z->avail_in == 0)
                break;
        }
        if (n == 0)
            break;
    }
    z->next_in = NULL;
    z->avail_in = 0;
    static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (final && ws->zout.len >= 4 && memcmp(ws->zout.data + ws->zout.len - 4, tail, 4) == 0) {
        ws->zout.len -= 4;
    } else if (final && ws->zout.len == 0) {
        /* Nothing new since the previous piece's flush, whose marker is already sent: end with
         * an empty stored block whose last 4 bytes the receiver restores (RFC 7692 §7.2.3.6),
         * so its inflater is left on a block boundary. */
        rc = ws_buf_reserve(&ws->zout, 1, 0);
        if (rc)
            return rc;
        ws->zout.data[0] = 0x00;
        ws->zout.len = 1;
    }
    return RILL_OK;
}

void ws_deflate_message_done(rill_ws *ws)
{
    if (ws->deflater_ready && ws->tx_no_context_takeover)
        deflateReset(&ws->deflater);
}

void ws_zlib_free(rill_ws *ws)
{
    if (ws->inflater_ready)
        inflateEnd(&ws->inflater);
    if (ws->deflater_ready)
        deflateEnd(&ws->deflater);
    ws->inflater_ready = ws->deflater_ready = false;
}
