/* The WebSocket client's shared state: the client (one URL, one WebSocket, the rill/ws.h codec)
 * and its connection, a `struct conn` running one of two client-side protocol tables:
 * wsc_h2_proto (RFC 8441: the WebSocket is an extended CONNECT stream of the rill/h2.h engine) or
 * wsc_h1_proto (RFC 6455: the Upgrade request, its 101, then frames on the connection). A
 * WebSocket opened on a rill_client (client_ws.c) has no connection of its own while it is a
 * CONNECT stream of the client's HTTP/2 connection (st); it makes one for the HTTP/1.1 Upgrade
 * when that connection cannot carry it. */
#ifndef RILL_CLIENT_WS_CLIENT_INTERNAL_H
#define RILL_CLIENT_WS_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client_dns.h"
#include "conn/conn.h"
#include "rill/client.h"
#include "rill/h1.h"
#include "rill/h2.h"
#include "rill/tls.h"
#include "rill/ws.h"

enum wsc_mode { WSC_H2, WSC_H1 };

/* One connection; freed when it closes (the client may make another: HTTP/1.1 after an HTTP/2
 * server without extended CONNECT). */
struct wsc_conn {
    struct conn c; /* first: the connection layer finds us through it */
    rill_websocket_client *ws;
    bool opened;
};

struct rill_websocket_client {
    rill_io_loop *loop;
    rill_websocket_client_callbacks cb;
    void *user;
    rill_websocket_client_options opt;
    char *origin, *subprotocol, *ca_file;
    char host[256], authority[300], path[2048];
    uint16_t port;
    bool tls;
    enum wsc_mode mode;
    rill_tls_ctx *tls_ctx;
    struct client_dns *dns;
    /* Connecting: the addresses raced as they come (client_race.c, as the request client does) */
    struct client_race *race;       /* until a TCP connect wins, or NULL */
    struct wsc_conn *next_conn;     /* the winner's, allocated with the race */
    struct rill_io_addr last_addr;  /* the winner (len 0: none yet): tried first, and again for
                                       the HTTP/1.1 Upgrade after an HTTP/2 server said no */
    rill_websocket_client_trace_fn trace;
    void *trace_user;
    struct wsc_conn *conn; /* the current connection, or NULL */
    rill_io_timer *connect_timer; /* the race and the TLS handshake, all addresses together */
    bool connect_timed_out;
    /* HTTP/2 (while wsc_h2_proto runs) */
    rill_h2_session *h2;
    int32_t stream;
    bool got_settings;
    /* HTTP/1.1 (while wsc_h1_proto runs) */
    rill_h1_parser *h1;   /* until the 101 */
    uint8_t *head;        /* the Upgrade request, pulled as output */
    size_t head_len, head_off;
    char key[RILL_WS_KEY_LEN + 1];
    char offer[160];
    /* On a rill_client (client_ws.c): the CONNECT stream on its HTTP/2 connection, while there is
     * one; NULL once the WebSocket ended or went to a connection of its own */
    rill_client *client;
    rill_client_stream *st;
    /* The WebSocket */
    rill_ws *codec;
    bool open, compressed, finished, freeing;
    bool reconnecting; /* this connection ends for an HTTP/1.1 one to the same address */
    bool ended;        /* the transport ended in order (HTTP/2: END_STREAM): end_code holds the code */
    unsigned end_code;
    char why[512];
};

/* The client of a connection layer's connection. */
static inline rill_websocket_client *wsc_of(struct conn *c)
{
    return ((struct wsc_conn *)c)->ws;
}

/* The WebSocket is accepted: the codec for the answered extensions (ext may be NULL), then
 * on_open. RILL_ERR_PROTOCOL for an extension answer we cannot accept, RILL_ERR_NOMEM. */
int wsc_start_codec(rill_websocket_client *c, const char *ext, size_t ext_len);

/* Ends the WebSocket: on_close(code, why) once (the application may free c in it). */
void wsc_finish(rill_websocket_client *c, unsigned code, const char *why);

/* The client for opt (URL parsed, TLS context, resolver), not connecting yet: wsc_connect starts
 * it. Arguments as rill_websocket_client_new's. */
int wsc_new(rill_io_loop *loop, const rill_websocket_client_options *opt,
            const rill_websocket_client_callbacks *cb, void *user, rill_websocket_client **out,
            char *err, size_t errlen);
/* Resolves and connects (a WebSocket of a rill_client: with the HTTP/1.1 Upgrade, mode WSC_H1);
 * failures end in on_close. */
int wsc_connect(rill_websocket_client *c);

/* The CONNECT stream's body on HTTP/2: the codec's output, END_STREAM after our last frame. */
int wsc_h2_source(rill_h2_session *s, int32_t id, uint8_t *buf, size_t max, bool *eof, void *user);

/* client_ws.c: the codec of a WebSocket on a rill_client's HTTP/2 connection has output; the
 * WebSocket is freed (its stream, if any, is cancelled without callbacks). */
void client_ws_output_ready(rill_websocket_client *c);
void client_ws_release(rill_websocket_client *c);

/* Ends the current connection in order (what is queued goes first) with why as the reason the
 * application sees (the first one set wins). Safe inside protocol callbacks. */
void wsc_fail(rill_websocket_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The server turned out not to offer WebSockets over HTTP/2: this connection ends and one to the
 * same address follows with the HTTP/1.1 Upgrade. */
void wsc_fall_back_to_h1(rill_websocket_client *c);

/* Starts a protocol on the current (just opened) connection. */
int wsc_h2_start(rill_websocket_client *c);
int wsc_h1_start(rill_websocket_client *c);

/* The codec has output (a send, a close): the HTTP/2 stream's source resumes. */
void wsc_h2_output_ready(rill_websocket_client *c);

extern const struct conn_proto wsc_h2_proto;
extern const struct conn_proto wsc_h1_proto;

#endif
