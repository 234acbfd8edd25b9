/* rill client: WebSockets over HTTP/2 (RFC 8441 extended CONNECT) or HTTP/1.1 (RFC 6455 Upgrade).
 *
 * Auto mode (the default) starts with HTTP/2 (ALPN h2 for wss://, prior knowledge for ws://) and
 * opens the WebSocket as a CONNECT stream when the server's SETTINGS enable extended CONNECT;
 * otherwise it reconnects and uses the HTTP/1.1 Upgrade. force_http1 goes straight to the Upgrade.
 *
 * Runs on a caller-owned rill_io_loop (rill/io.h); every callback runs on that loop's thread. */
#ifndef RILL_CLIENT_H
#define RILL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/common.h"
#include "rill/io.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_websocket_client rill_websocket_client;

/* Fill with rill_websocket_client_options_init, then set url and what else you need. */
typedef struct rill_websocket_client_options {
    size_t size;             /* sizeof(rill_websocket_client_options), set by the _init */
    const char *url;         /* ws://host[:port]/path or wss://... (copied) */
    bool force_http1;        /* skip HTTP/2 */
    bool insecure;           /* wss: do not verify the certificate */
    const char *ca_file;     /* wss: trust this PEM instead of the system store */
    const char *origin;      /* Origin to send, or NULL */
    const char *subprotocol; /* Sec-WebSocket-Protocol to offer, or NULL */
    bool no_deflate;         /* do not offer permessage-deflate */
} rill_websocket_client_options;

/* Fills *opt with the defaults: no URL, HTTP/2 first, certificates verified against the system
 * store, no Origin or sub-protocol, permessage-deflate offered. */
RILL_API void rill_websocket_client_options_init(rill_websocket_client_options *opt);

/* The caller sets size to sizeof(rill_websocket_client_callbacks) (see "Public API conventions" in
 * docs/ARCHITECTURE.md). */
typedef struct rill_websocket_client_callbacks {
    size_t size; /* sizeof(rill_websocket_client_callbacks) */
    /* The handshake succeeded; transport is "h2" or "HTTP/1.1". */
    void (*on_open)(rill_websocket_client *c, const char *transport, bool compressed, void *user);
    void (*on_message)(rill_websocket_client *c, unsigned opcode, const uint8_t *data, size_t len,
                       void *user);
    /* The end: code is the close code (1000/1005 after a clean close, 1006 when the connection
     * was lost); why is a one-line reason for failures (connect error, refused handshake), or
     * NULL. The client must not be used after this; free it with rill_websocket_client_free. */
    void (*on_close)(rill_websocket_client *c, unsigned code, const char *why, void *user);
} rill_websocket_client_callbacks;

/* Starts connecting. opt and cb are copied. Returns RILL_ERR_INVALID_ARG with a reason in err for
 * a bad URL or a bad opt->size / cb->size, RILL_ERR_TLS for an unusable CA file. *out is freed with rill_websocket_client_free. */
RILL_API int rill_websocket_client_new(rill_io_loop *loop, const rill_websocket_client_options *opt,
                                const rill_websocket_client_callbacks *cb, void *user,
                                rill_websocket_client **out, char *err, size_t errlen);

/* A whole text (valid UTF-8) or binary message; RILL_ERR_STATE before on_open or after close. */
RILL_API int rill_websocket_client_send(rill_websocket_client *c, unsigned opcode, const void *data, size_t len);

/* Starts the closing handshake; on_close follows when it completes. */
RILL_API int rill_websocket_client_close(rill_websocket_client *c, unsigned code, const char *reason);

/* Frees the client (closing the connection if still open, without calling on_close). */
RILL_API void rill_websocket_client_free(rill_websocket_client *c);

#ifdef __cplusplus
}
#endif
#endif
