/* Codec lifetime and connection state. */
#include <stdlib.h>
#include <string.h>

#include "rill/ws.h"
#include "ws/ws_internal.h"

static bool window_bits_ok(uint8_t bits)
{
    return bits == 0 || (bits >= 8 && bits <= 15);
}

rill_ws *rill_ws_new(const rill_ws_config *cfg)
{
    if (!cfg || (cfg->role != RILL_WS_SERVER && cfg->role != RILL_WS_CLIENT))
        return NULL;
    const rill_ws_pmd_params *pmd = cfg->pmd;
    if (pmd && (!window_bits_ok(pmd->server_max_window_bits) ||
                !window_bits_ok(pmd->client_max_window_bits)))
        return NULL;
    if (cfg->compress_level < 0 || cfg->compress_level > 9 || cfg->compress_mem_level < 0 ||
        cfg->compress_mem_level > 9)
        return NULL;
    rill_ws *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->cfg = *cfg;
    ws->cfg.pmd = NULL; /* copied below; the caller's struct need not outlive the call */
    ws->max_message = cfg->max_message_size ? cfg->max_message_size : RILL_WS_DEFAULT_MAX_MESSAGE;
    if (ws->max_message > SIZE_MAX / 4)
        ws->max_message = SIZE_MAX / 4;
    if (!ws->cfg.compress_threshold)
        ws->cfg.compress_threshold = RILL_WS_DEFAULT_COMPRESS_THRESHOLD;
    if (!ws->cfg.compress_level)
        ws->cfg.compress_level = 6;
    if (!ws->cfg.compress_mem_level)
        ws->cfg.compress_mem_level = 8;
    ws->state = RILL_WS_OPEN;
    ws->keypool_pos = sizeof ws->keypool;
    if (pmd) {
        ws->pmd = *pmd;
        ws->pmd_on = true;
        bool server = cfg->role == RILL_WS_SERVER;
        uint8_t rx_bits = server ? pmd->client_max_window_bits : pmd->server_max_window_bits;
        uint8_t tx_bits = server ? pmd->server_max_window_bits : pmd->client_max_window_bits;
        ws->rx_no_context_takeover =
            server ? pmd->client_no_context_takeover : pmd->server_no_context_takeover;
        ws->tx_no_context_takeover =
            server ? pmd->server_no_context_takeover : pmd->client_no_context_takeover;
        /* Inflating with a window larger than the sender's is always safe. 8 is read as 9
         * because zlib before 1.2.9 silently deflated with 9 when asked for 8, and such peers
         * still exist; it costs 256 bytes. */
        ws->rx_window_bits = rx_bits == 0 ? 15 : rx_bits < 9 ? 9 : rx_bits;
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
