/* rill WebSocket (RFC 6455) codec with permessage-deflate (RFC 7692), sans-I/O.
 *
 * One codec serves both transports. It is fed the bytes the peer sent and hands out the bytes to
 * send; it never sees a socket, a clock or an HTTP message.
 *
 *   HTTP/1.1 Upgrade: after the 101 response, every byte read from the socket goes to
 *     rill_ws_recv(); rill_ws_output() bytes are written to the socket (rill_ws_output_sent()).
 *     When rill_ws_is_done() and the output is drained, the server closes the TCP connection
 *     (RFC 6455 §7.1.1: the server closes first); a client waits for the server's FIN (with its
 *     own timeout). A read of EOF or a reset is reported with rill_ws_transport_closed().
 *   HTTP/2 extended CONNECT (RFC 8441): after the 200 response on the CONNECT stream, the payload
 *     of every DATA frame of that stream goes to rill_ws_recv(); output bytes are sent as DATA on
 *     the stream (split to fit flow control as the session likes; WebSocket frames need not align
 *     with DATA frames). END_STREAM is the TCP FIN: send it once rill_ws_is_done() and the output
 *     is drained, and report a received END_STREAM with rill_ws_transport_closed().
 *     RST_STREAM(CANCEL) is the TCP reset: send it after rill_ws_abort(), and report a received
 *     one with rill_ws_transport_closed(). No Sec-WebSocket-Key/Accept on HTTP/2; version,
 *     protocol, extensions and origin helpers below apply to both.
 *
 * A server's use, whichever the transport:
 *
 *     rill_ws_pmd_params pmd;  char ext[160];            // during the handshake
 *     bool deflate = rill_ws_pmd_server_negotiate(offer, offer_len, NULL, &pmd, ext,
 *                                                 sizeof ext) == RILL_OK;
 *     rill_ws_options opt;
 *     rill_ws_options_init(&opt);
 *     opt.pmd = deflate ? &pmd : NULL;
 *     static const rill_ws_callbacks cb = {.size = sizeof cb, .on_message = on_message};
 *     rill_ws *ws = rill_ws_new(RILL_WS_SERVER, &opt, &cb, conn);
 *     ...
 *     rc = rill_ws_recv(ws, bytes, n);                      // on every read / DATA frame
 *     while ((n = rill_ws_output(ws, &p)) > 0) {            // whenever the transport can write
 *         sent = write_or_queue_data(p, n);
 *         rill_ws_output_sent(ws, sent);
 *     }
 *     if (rill_ws_is_done(ws) && nothing pending) close the transport (FIN / END_STREAM);
 *
 * Ownership: the caller owns every buffer it passes in and every codec it creates
 * (rill_ws_new / rill_ws_free). Pointers handed to callbacks point into the codec's buffers or into
 * the caller's input and are valid only until the callback returns. The codec copies what it must
 * keep. A codec is not thread-safe; one per connection.
 *
 * Errors: functions return 0 (RILL_OK) or a negative RILL_ERR_* code. When the peer breaks the
 * protocol, rill_ws_recv returns RILL_ERR_PROTOCOL (close code 1002), RILL_ERR_UTF8 (1007) or
 * RILL_ERR_TOO_BIG (1009); the codec has then queued a Close frame with that code (unless one was
 * already sent), rill_ws_fail_code() tells the code, and the codec accepts no more input. Drain the
 * output and close the transport. */
#ifndef RILL_WS_H
#define RILL_WS_H

#include <stdbool.h>

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- protocol constants ----------------------------------------------------------------------- */

enum rill_ws_opcode {
    RILL_WS_OP_CONTINUATION = 0x0,
    RILL_WS_OP_TEXT = 0x1,
    RILL_WS_OP_BINARY = 0x2,
    RILL_WS_OP_CLOSE = 0x8,
    RILL_WS_OP_PING = 0x9,
    RILL_WS_OP_PONG = 0xA,
};

enum rill_ws_close_code {
    RILL_WS_CLOSE_NORMAL = 1000,
    RILL_WS_CLOSE_GOING_AWAY = 1001,
    RILL_WS_CLOSE_PROTOCOL_ERROR = 1002,
    RILL_WS_CLOSE_UNSUPPORTED_DATA = 1003,
    RILL_WS_CLOSE_NO_STATUS = 1005, /* never on the wire: a Close frame without a code */
    RILL_WS_CLOSE_ABNORMAL = 1006,  /* never on the wire: transport closed without a Close */
    RILL_WS_CLOSE_INVALID_PAYLOAD = 1007,
    RILL_WS_CLOSE_POLICY_VIOLATION = 1008,
    RILL_WS_CLOSE_MESSAGE_TOO_BIG = 1009,
    RILL_WS_CLOSE_MANDATORY_EXTENSION = 1010,
    RILL_WS_CLOSE_INTERNAL_ERROR = 1011,
};

#define RILL_WS_MAX_CONTROL_PAYLOAD 125u
#define RILL_WS_MAX_HEADER_SIZE 14u /* 2 + 8 (64-bit length) + 4 (mask key) */
#define RILL_WS_DEFAULT_MAX_MESSAGE (16u * 1024u * 1024u)
#define RILL_WS_DEFAULT_COMPRESS_THRESHOLD 64u

/* True when a close code may appear in a received Close frame (1000-1003, 1007-1011, 3000-4999). */
RILL_API bool rill_ws_close_code_valid(unsigned code);

/* ---- permessage-deflate parameters (RFC 7692) ------------------------------------------------- */

/* The agreed parameters of one connection, as they appear in the server's response. Window bits
 * are 8..15; 0 means the parameter is absent (15 applies). */
typedef struct rill_ws_pmd_params {
    bool server_no_context_takeover;
    bool client_no_context_takeover;
    uint8_t server_max_window_bits;
    uint8_t client_max_window_bits;
} rill_ws_pmd_params;

/* Local preferences for negotiation (either role). Window bits 8..15, 0 = 15 (no limit). */
typedef struct rill_ws_pmd_policy {
    /* Server: always ask for these even if the client did not offer them.
     * Client: put them in the offer. */
    bool server_no_context_takeover;
    bool client_no_context_takeover;
    /* Server: cap on our compression window (answer min(offered, this)) and on the client's
     * window (only sent when the client offered client_max_window_bits).
     * Client: values to offer; client_max_window_bits 0 offers the valueless parameter. */
    uint8_t server_max_window_bits;
    uint8_t client_max_window_bits;
} rill_ws_pmd_policy;

/* Server side: `offers` is the Sec-WebSocket-Extensions request value (several header lines
 * joined with ", "). Picks the first permessage-deflate offer that is valid and acceptable (RFC
 * 7692 §5: unknown or duplicate parameters and bad values decline that offer) and writes the
 * response value (NUL-terminated) into resp[0..resp_cap) and the agreed parameters into *agreed.
 * Returns RILL_OK, RILL_ERR_NOT_FOUND (no acceptable offer: answer without the extension) or
 * RILL_ERR_BUFFER_TOO_SMALL (160 bytes always suffice). `policy` NULL = defaults.
 *
 * A negotiated window of 8 bits for our own compressor is accepted, but zlib cannot produce a
 * raw DEFLATE stream with a 256-byte window (deflateInit2 refuses -8, and compressing with 9 could
 * reference data the peer's 256-byte window no longer holds). The codec then sends every message
 * uncompressed (RSV1 clear, always allowed), keeping decompression of the peer's messages.
 *
 * The peer's window limit binds the peer only: the codec inflates with the full 32 KiB window
 * whatever was agreed, so that a message is judged the same whatever pieces its bytes come in
 * (zlib checks how far back a match reaches only against the output it still holds). */
RILL_API int rill_ws_pmd_server_negotiate(const char *offers, size_t len,
                                          const rill_ws_pmd_policy *policy,
                                          rill_ws_pmd_params *agreed, char *resp, size_t resp_cap);

/* Client side: the Sec-WebSocket-Extensions offer for `policy`, NUL-terminated. Returns RILL_OK or
 * RILL_ERR_BUFFER_TOO_SMALL (160 bytes always suffice). */
RILL_API int rill_ws_pmd_client_offer(const rill_ws_pmd_policy *policy, char *out, size_t cap);

/* Client side: checks the server's Sec-WebSocket-Extensions response (NULL/empty = none) against
 * the offer made from `policy`. Returns RILL_OK (*agreed filled), RILL_ERR_NOT_FOUND (no
 * permessage-deflate in the response: none is in use) or RILL_ERR_PROTOCOL (an invalid or
 * unrequested answer: the client must fail the connection, RFC 7692 §5). Any extension other
 * than permessage-deflate in the response is unrequested (we offered only this one). */
RILL_API int rill_ws_pmd_client_accept(const char *response, size_t len,
                                       const rill_ws_pmd_policy *policy,
                                       rill_ws_pmd_params *agreed);

/* ---- codec ------------------------------------------------------------------------------------ */

typedef struct rill_ws rill_ws;

/* Which side the codec plays; the same order as rill_h2_role (code never depends on the values). */
typedef enum rill_ws_role {
    RILL_WS_SERVER = 0, /* receives masked frames, sends unmasked ones */
    RILL_WS_CLIENT = 1, /* masks every frame it sends */
} rill_ws_role;

/* rill_ws_callbacks.on_message flags */
#define RILL_WS_FIRST 0x1u /* the first piece of a message */
#define RILL_WS_FINAL 0x2u /* the last piece of a message */

/* Events. The caller sets size to sizeof(rill_ws_callbacks) (e.g. `{.size = sizeof cb, ...}`); see
 * "Public API conventions" in docs/ARCHITECTURE.md. `user` is rill_ws_new's user pointer. */
typedef struct rill_ws_callbacks {
    size_t size; /* sizeof(rill_ws_callbacks) */
    /* A text or binary message. In whole-message mode it is called once per message with
     * RILL_WS_FIRST|RILL_WS_FINAL and the complete (decompressed, UTF-8 checked) payload. In
     * streaming mode it is called for each piece as it arrives (opcode is that of the message,
     * never CONTINUATION); text pieces may split a UTF-8 sequence, the whole message is still
     * validated. May be NULL. */
    int (*on_message)(unsigned opcode, const uint8_t *data, size_t len, unsigned flags, void *user);
    /* A ping (the pong reply is already queued unless no_auto_pong) or a pong. May be NULL. */
    int (*on_ping)(const uint8_t *data, size_t len, void *user);
    int (*on_pong)(const uint8_t *data, size_t len, void *user);
    /* The peer's valid Close frame: code is RILL_WS_CLOSE_NO_STATUS when it carried none. The
     * echo reply is queued after this returns, unless the callback called rill_ws_close().
     * May be NULL. */
    int (*on_close)(unsigned code, const uint8_t *reason, size_t reason_len, void *user);
    /* Client role: the masking key for each frame. NULL = OpenSSL RAND_bytes (RFC 6455 §5.3
     * wants unpredictable keys; a callback exists for tests). Return 0, or a RILL_ERR_* code. */
    int (*mask_key)(uint8_t key[4], void *user);
} rill_ws_callbacks;

/* Every callback returns 0 to go on; a non-zero value stops rill_ws_recv, which returns it, and
 * leaves the codec failed (nothing queued): use a negative RILL_ERR_* code. Callbacks may call the
 * send functions, rill_ws_close and rill_ws_abort, but not rill_ws_recv* or rill_ws_free. */

/* Codec options; fill with rill_ws_options_init, then change what you need. */
typedef struct rill_ws_options {
    size_t size; /* sizeof(rill_ws_options), set by rill_ws_options_init */
    /* Largest message accepted (after decompression); larger gets close 1009. 0 = the default,
     * RILL_WS_DEFAULT_MAX_MESSAGE. */
    size_t max_message_size;
    /* Deliver pieces as they arrive instead of whole reassembled messages. */
    bool streaming;
    /* Do not queue a pong for each ping (the application answers with rill_ws_send_pong). */
    bool no_auto_pong;
    /* Split outgoing data messages into frames of at most this payload size; 0 = never split. */
    size_t max_frame_size;
    /* permessage-deflate: NULL = not negotiated (RSV1 is then a protocol error). Copied. */
    const rill_ws_pmd_params *pmd;
    /* Messages shorter than this go uncompressed; 0 = RILL_WS_DEFAULT_COMPRESS_THRESHOLD. */
    size_t compress_threshold;
    int compress_level; /* zlib level 1..9; 0 = 6 */
    int compress_mem_level; /* zlib memLevel 1..9; 0 = 8 (deflate state ~ 2^(w+2) + 2^(m+9)) */
} rill_ws_options;

/* Fills *opt with the defaults: RILL_WS_DEFAULT_MAX_MESSAGE, whole messages, automatic pongs, no
 * frame splitting, no permessage-deflate, RILL_WS_DEFAULT_COMPRESS_THRESHOLD, level 6, memLevel 8. */
RILL_API void rill_ws_options_init(rill_ws_options *opt);

/* A codec in the OPEN state for `role`. opt (NULL = defaults) and cb (NULL = no events) are
 * copied; user is passed to every callback. Returns NULL when out of memory or when opt or cb is
 * invalid (a size 0 or larger than the library's, bad pmd window bits or compression levels).
 * Buffers are allocated lazily and reused: no malloc per frame. */
RILL_API rill_ws *rill_ws_new(rill_ws_role role, const rill_ws_options *opt,
                              const rill_ws_callbacks *cb, void *user);
RILL_API void rill_ws_free(rill_ws *ws);

/* Feed received bytes (any split). The codec copies what it must keep. Returns RILL_OK, a protocol
 * error (see top of file), RILL_ERR_STATE once the codec has failed, or a callback's non-zero
 * value. After the peer's Close (or rill_ws_transport_closed) further bytes are ignored (RFC 6455
 * §5.5.1: nothing follows a Close). */
RILL_API int rill_ws_recv(rill_ws *ws, const uint8_t *data, size_t len);

/* Same, but the codec may unmask the payload in place in data[], saving a copy in streaming mode
 * and for single-frame messages (delivered straight from data[]). The caller keeps ownership. */
RILL_API int rill_ws_recv_inplace(rill_ws *ws, uint8_t *data, size_t len);

/* The close code the codec failed with: 1002 protocol error, 1007 invalid UTF-8 or undecodable
 * compressed data, 1009 message too big, 1011 out of memory; 0 when it has not failed (or was
 * aborted, or a callback stopped it). */
RILL_API unsigned rill_ws_fail_code(const rill_ws *ws);

/* ---- sending ---------------------------------------------------------------------------------- */
/* Frames go to a codec-owned output queue, in call order. After a Close was sent, data and ping
 * frames are refused with RILL_ERR_STATE. The client role masks every frame. */

/* A whole text or binary message: compressed when permessage-deflate is in use for our direction
 * and len >= compress_threshold; split by max_frame_size. Text must be valid UTF-8
 * (RILL_ERR_UTF8). Fails with RILL_ERR_STATE while a streamed message is open. */
RILL_API int rill_ws_send(rill_ws *ws, unsigned opcode, const void *data, size_t len);

/* A message in pieces: the first call gives TEXT or BINARY and starts it, later calls continue it
 * (opcode ignored), `final` ends it. Compressed when permessage-deflate is in use for our
 * direction (the threshold is checked on the first piece). Text pieces may split UTF-8 sequences;
 * the message as a whole must be valid. */
RILL_API int rill_ws_send_fragment(rill_ws *ws, unsigned opcode, const void *data, size_t len,
                                   bool final);

/* Control frames: payload at most 125 bytes (RILL_ERR_INVALID_ARG). */
RILL_API int rill_ws_send_ping(rill_ws *ws, const void *data, size_t len);
RILL_API int rill_ws_send_pong(rill_ws *ws, const void *data, size_t len);

/* Start (or answer) the closing handshake. code 0 sends an empty Close; otherwise code must be
 * valid to send (1000-1003, 1007-1011, 3000-4999) and reason valid UTF-8 with 2 + reason_len <= 125.
 * RILL_ERR_STATE if a Close was already sent. */
RILL_API int rill_ws_close(rill_ws *ws, unsigned code, const char *reason, size_t reason_len);

/* Zero-copy sending of a whole uncompressed data message in one frame: writes the frame header
 * into hdr[] (RILL_WS_MAX_HEADER_SIZE bytes) and returns its length via *hdr_len; the caller then
 * writes hdr followed by the payload (e.g. writev). Client role: the payload must first be masked
 * in place with rill_ws_mask(payload, len, mask_key, 0) using the returned mask_key (may be NULL
 * for the server role). Refused with RILL_ERR_WOULD_BLOCK while the output queue is not empty
 * (frames must stay in order: drain it first). Text payloads are not checked here: they must be
 * valid UTF-8. The frame is never compressed (RSV1 clear, always allowed). */
RILL_API int rill_ws_send_header(rill_ws *ws, unsigned opcode, size_t len,
                                 uint8_t hdr[RILL_WS_MAX_HEADER_SIZE], size_t *hdr_len,
                                 uint8_t mask_key[4]);

/* The queued output: *data points to `return value` contiguous bytes owned by the codec, valid
 * until the next call on the codec. Returns 0 when nothing is pending. */
RILL_API size_t rill_ws_output(rill_ws *ws, const uint8_t **data);

/* Mark n bytes of the output (n <= what rill_ws_output returned) as sent. */
RILL_API void rill_ws_output_sent(rill_ws *ws, size_t n);

/* Copy up to cap pending bytes into the caller's buf and consume them; returns the count. */
RILL_API size_t rill_ws_output_copy(rill_ws *ws, uint8_t *buf, size_t cap);

/* ---- state ------------------------------------------------------------------------------------ */

enum rill_ws_state {
    RILL_WS_OPEN,
    RILL_WS_CLOSE_SENT,     /* we sent Close, waiting for the peer's */
    RILL_WS_CLOSE_RECEIVED, /* the peer's Close arrived; ours not sent (only inside on_close) */
    RILL_WS_CLOSED,         /* both Close frames exchanged, or the transport closed */
    RILL_WS_FAILED,         /* protocol error or abort: close the transport */
};

RILL_API enum rill_ws_state rill_ws_state(const rill_ws *ws);

/* True when the codec will produce no more frames and accept no more input (CLOSED or FAILED):
 * once the output is drained, the transport should be closed (see the top of this file). */
RILL_API bool rill_ws_is_done(const rill_ws *ws);

/* The transport ended (TCP FIN/RST, HTTP/2 END_STREAM or RST_STREAM). Returns the close code
 * the application should see: the peer's code after a complete closing handshake (1005 when it
 * sent none), else RILL_WS_CLOSE_ABNORMAL (1006). The codec becomes CLOSED (or stays FAILED). */
RILL_API unsigned rill_ws_transport_closed(rill_ws *ws);

/* Abandon the connection without a closing handshake (e.g. a timeout): output is dropped, the
 * codec becomes FAILED; the transport should reset (HTTP/2: RST_STREAM(CANCEL)). */
RILL_API void rill_ws_abort(rill_ws *ws);

/* ---- building blocks -------------------------------------------------------------------------- */

/* XOR data[0..len) in place with the 4-byte mask key, starting at key offset `offset` (the number
 * of payload bytes of this frame already masked). Word-at-a-time. */
RILL_API void rill_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], size_t offset);

/* Write a frame header into out[] (RILL_WS_MAX_HEADER_SIZE bytes); mask_key NULL = unmasked.
 * Returns the header length (2..14). Uses the minimal length encoding. */
RILL_API size_t rill_ws_frame_header(uint8_t *out, unsigned opcode, bool fin, bool rsv1,
                                     uint64_t payload_len, const uint8_t *mask_key);

/* Incremental UTF-8 validation (for callers checking streamed text themselves): *state starts at
 * 0; returns false as soon as data cannot be valid UTF-8. At the end, the text is complete and
 * valid iff *state == 0. */
RILL_API bool rill_ws_utf8_feed(uint32_t *state, const uint8_t *data, size_t len);

/* ---- handshake helpers (transport-agnostic) -------------------------------------------------- */

#define RILL_WS_VERSION 13
/* A server answering a wrong version sends 426 Upgrade Required with this header. */
#define RILL_WS_VERSION_HEADER "Sec-WebSocket-Version: 13"
#define RILL_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define RILL_WS_KEY_LEN 24    /* base64 of 16 bytes */
#define RILL_WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* True when the Sec-WebSocket-Version value (surrounding whitespace ignored) is exactly "13". */
RILL_API bool rill_ws_version_ok(const char *value, size_t len);

/* True when the Sec-WebSocket-Key value (surrounding whitespace ignored) is the canonical base64
 * of 16 bytes. */
RILL_API bool rill_ws_key_valid(const char *key, size_t len);

/* Sec-WebSocket-Accept for a key: out gets 28 chars + NUL. RILL_ERR_INVALID_ARG for a bad key. */
RILL_API int rill_ws_accept_key(const char *key, size_t len, char out[RILL_WS_ACCEPT_LEN + 1]);

/* Client: a fresh random key (24 chars + NUL). RILL_ERR_TLS if the RNG fails. */
RILL_API int rill_ws_make_key(char out[RILL_WS_KEY_LEN + 1]);

/* Client: true when the server's Sec-WebSocket-Accept matches our key. */
RILL_API bool rill_ws_accept_matches(const char *key, size_t key_len, const char *accept,
                                     size_t accept_len);

/* Choose a sub-protocol: `offered` is the Sec-WebSocket-Protocol value (lines joined with ", "),
 * in the client's order of preference. Returns the index in supported[] of the first offered
 * token the server supports (exact, case-sensitive), or RILL_ERR_NOT_FOUND (answer without the
 * header). */
RILL_API int rill_ws_select_subprotocol(const char *offered, size_t len,
                                        const char *const *supported, size_t n_supported);

/* Origin allow-list: true when `origin` (e.g. "https://example.com", compared ASCII
 * case-insensitively) is in allowed[], or allowed[] holds "*". A NULL origin (no header, a
 * non-browser client) is allowed only by "*". Refuse with 403 otherwise. */
RILL_API bool rill_ws_origin_allowed(const char *origin, size_t len, const char *const *allowed,
                                     size_t n_allowed);

#ifdef __cplusplus
}
#endif
#endif
