/* Internal state of the WebSocket codec, shared by its source files (not installed). */
#ifndef RILL_WS_INTERNAL_H
#define RILL_WS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "rill/ws.h"

#define WS_UTF8_ACCEPT 0u
#define WS_UTF8_REJECT 12u

/* Run the UTF-8 DFA from `state` over p[0..len); stops early at WS_UTF8_REJECT. */
uint32_t ws_utf8_run(uint32_t state, const uint8_t *p, size_t len);

/* dst[i] = src[i] ^ key[(offset + i) % 4]; dst may equal src. */
void ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                  size_t offset);

/* A growable byte buffer, kept across messages so steady state does not allocate. */
typedef struct ws_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} ws_buf;

/* Make room for at least `need` bytes in total (geometric growth, at most `limit`; limit 0 = none).
 * Returns 0 or RILL_ERR_NOMEM / RILL_ERR_LIMIT. */
int ws_buf_reserve(ws_buf *b, size_t need, size_t limit);
void ws_buf_release(ws_buf *b);

/* Scratch halves: unmasking of const input, and inflate output in streaming mode. */
#define WS_SCRATCH_HALF 16384u

struct rill_ws {
    rill_ws_role role;
    rill_ws_options opt; /* 0 fields already replaced by their defaults */
    rill_ws_callbacks cb;
    void *user;
    rill_ws_pmd_params pmd;
    bool pmd_on;
    size_t max_message;

    enum rill_ws_state state;
    unsigned fail_code;
    bool close_sent;
    bool close_received;
    unsigned peer_close_code;

    /* ---- receive: the frame being parsed ---- */
    uint8_t rx_hdr[RILL_WS_MAX_HEADER_SIZE];
    uint8_t rx_hdr_len;  /* header bytes buffered when a header straddles two inputs */
    bool rx_in_payload;
    uint8_t rx_opcode;
    bool rx_fin;
    bool rx_masked;
    uint8_t rx_key[4];
    uint64_t rx_remaining; /* payload bytes of this frame still to come */
    uint64_t rx_done;      /* payload bytes of this frame already seen (mask key offset) */

    /* ---- receive: the message being assembled ---- */
    bool msg_active;
    uint8_t msg_opcode;
    bool msg_compressed;
    bool msg_first_pending; /* streaming: the next piece carries RILL_WS_FIRST */
    bool msg_inflate_ended; /* the sender closed its DEFLATE stream (BFINAL) in this message */
    uint64_t msg_size;      /* payload bytes so far (after decompression) */
    uint64_t msg_wire;      /* compressed payload bytes received for this message */
    uint32_t msg_utf8;
    ws_buf msg;
    uint8_t ctl[RILL_WS_MAX_CONTROL_PAYLOAD];
    size_t ctl_len;
    uint8_t *scratch; /* 2 * WS_SCRATCH_HALF, allocated on first need */

    z_stream inflater;
    bool inflater_ready;
    bool rx_no_context_takeover;

    /* ---- send ---- */
    ws_buf out;
    size_t out_head;
    bool pong_pending;
    uint8_t pong[RILL_WS_MAX_CONTROL_PAYLOAD];
    size_t pong_len;

    bool tx_msg_active; /* a streamed message is open */
    bool tx_msg_compressed;
    uint8_t tx_opcode;
    uint32_t tx_utf8;

    z_stream deflater;
    bool deflater_ready;
    bool tx_compress; /* permessage-deflate is usable for what we send */
    int tx_window_bits;
    bool tx_no_context_takeover;
    ws_buf zout;

    uint8_t keypool[256];
    size_t keypool_pos;
};

/* ws_send.c */
int ws_emit_frame(rill_ws *ws, unsigned opcode, bool fin, bool rsv1, const uint8_t *payload,
                  size_t len);
int ws_emit_close(rill_ws *ws, unsigned code, const uint8_t *reason, size_t reason_len);
void ws_flush_pong(rill_ws *ws);

/* ws_deflate.c */
int ws_inflate_begin(rill_ws *ws);
/* Inflate in[0..n) of the current message into the sink (message buffer or streamed pieces),
 * enforcing max_message and UTF-8 for text. Returns 0 or a fail() result. */
int ws_inflate_feed(rill_ws *ws, const uint8_t *in, size_t n, bool final_piece);
void ws_inflate_message_done(rill_ws *ws);
/* Compress a message piece into ws->zout (replacing its contents). `final` strips the trailing
 * 00 00 ff ff. */
int ws_deflate_piece(rill_ws *ws, const uint8_t *in, size_t n, bool final);
void ws_deflate_message_done(rill_ws *ws);
void ws_zlib_free(rill_ws *ws);

/* ws_recv.c */
int ws_fail(rill_ws *ws, int err, unsigned close_code);
int ws_deliver(rill_ws *ws, const uint8_t *data, size_t len, bool final);

#endif
