/* Codec lifetime and connection state. */
#include <stdlib.h>
#include <string.h>

#include "common/api_struct.h"
#include "rill/ws.h"
#include "ws/ws_internal.h"

static bool window_bits_ok(uint8_t bits)
{
    return bits == 0 || (bits >= 8 && bits <= 15);
}

void rill_ws_options_init(rill_ws_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->size = sizeof *opt;
    opt->max_message_size = RILL_WS_DEFAULT_MAX_MESSAGE;
    opt->compress_threshold = RILL_WS_DEFAULT_COMPRESS_THRESHOLD;
    opt->compress_level = 6;
    opt->compress_mem_level = 8;
}

rill_ws *rill_ws_new(rill_ws_role role, const rill_ws_options *opt, const rill_ws_callbacks *cb,
                     void *user)
{
    if (role != RILL_WS_SERVER && role != RILL_WS_CLIENT)
        return NULL;
    rill_ws_options o;
    rill_ws_options_init(&o);
    if (opt && rill_struct_copy(&o, sizeof o, opt) != RILL_OK)
        return NULL;
    rill_ws_callbacks c = {.size = sizeof c};
    if (cb && rill_struct_copy(&c, sizeof c, cb) != RILL_OK)
        return NULL;
    const rill_ws_pmd_params *pmd = o.pmd;
    if (pmd && (!window_bits_ok(pmd->server_max_window_bits) ||
                !window_bits_ok(pmd->client_max_window_bits)))
        return NULL;
    if (o.compress_level < 0 || o.compress_level > 9 || o.compress_mem_level < 0 ||
        o.compress_mem_level > 9)
        return NULL;
    rill_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->role = role;
    ws->opt = o;
    ws->cb = c;
    ws->user = user;
    ws->opt.pmd = NULL; /* copied below; the caller's struct need not outlive the call */
    ws->max_message = o.max_message_size ? o.max_message_size : RILL_WS_DEFAULT_MAX_MESSAGE;
    if (ws->max_message > SIZE_MAX / 4)
        ws->max_message = SIZE_MAX / 4;
    if (!ws->opt.compress_threshold)
        ws->opt.compress_threshold = RILL_WS_DEFAULT_COMPRESS_THRESHOLD;
    if (!ws->opt.compress_level)
        ws->opt.compress_level = 6;
    if (!ws->opt.compress_mem_level)
        ws->opt.compress_mem_level = 8;
    ws->state = RILL_WS_OPEN;
    ws->keypool_pos = sizeof ws->keypool;
    if (pmd) {
        ws->pmd = *pmd;
        ws->pmd_on = true;
        bool server = role == RILL_WS_SERVER;
        uint8_t tx_bits = server ? pmd->server_max_window_bits : pmd->client_max_window_bits;
        ws->rx_no_context_takeover =
            server ? pmd->client_no_context_takeover : pmd->server_no_context_takeover;
        ws->tx_no_context_takeover =
            server ? pmd->server_no_context_takeover : pmd->client_no_context_takeover;
        /* The receiving window is always 32 KiB whatever the sender's limit (ws_deflate.c). */
        ws->tx_window_bits = tx_bits == 0 ? 15 : tx_bits;
        /* zlib cannot produce a raw stream with a 256-byte window; see rill/ws.h. */
        ws->tx_compress = ws->tx_window_bits >= 9;
    }
    return ws;
}

void rill_ws_free(rill_ws *ws)
{
    if (!ws)
        return;
    ws_zlib_free(ws);
    ws_buf_release(&ws->msg);
    ws_buf_release(&ws->out);
    ws_buf_release(&ws->zout);
    free(ws->scratch);
    free(ws);
}

enum rill_ws_state rill_ws_state(const rill_ws *ws)
{
    return ws->state;
}

bool rill_ws_is_done(const rill_ws *ws)
{
    return ws->state == RILL_WS_CLOSED || ws->state == RILL_WS_FAILED;
}

unsigned rill_ws_transport_closed(rill_ws *ws)
{
    if (ws->state != RILL_WS_FAILED)
        ws->state = RILL_WS_CLOSED;
    ws->pong_pending = false;
    /* RFC 6455 §7.1.5: without a received Close frame the close code is 1006. */
    return ws->close_received ? ws->peer_close_code : RILL_WS_CLOSE_ABNORMAL;
}

void rill_ws_abort(rill_ws *ws)
{
    ws->state = RILL_WS_FAILED;
    ws->pong_pending = false;
    ws->out.len = ws->out_head = 0;
}
