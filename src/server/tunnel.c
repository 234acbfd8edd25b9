/* Tunnels a handler accepts (rill_server_response_tunnel): an HTTP/1.1 Upgrade answered 101,
 * after which the connection's bytes are the exchange's body and its response body goes out raw;
 * or an HTTP/2 extended CONNECT answered 200, whose DATA carries the same (the HTTP/2 exchange
 * needs nothing more than its usual ops for that). */
#include <string.h>

#include "common/http_chars.h"
#include "server/server_internal.h"

/* Whether the request head says a body follows (a tunnel's bytes cannot start behind one). */
static bool has_body(const rill_server_request *req)
{
    size_t len;
    const char *cl = rill_server_request_header(req, "content-length", &len);
    return rill_server_request_header(req, "transfer-encoding", &len) ||
           (cl && !(len == 1 && cl[0] == '0'));
}

/* An Upgrade value: tokens (with an optional /version), comma-separated; nothing to split a
 * head with. */
static bool upgrade_value_ok(const char *v)
{
    if (!v[0])
        return false;
    for (; *v; v++)
        if (!http_tchar[(uint8_t)*v] && *v != '/' && *v != ',' && *v != ' ')
            return false;
    return true;
}

/* ---- HTTP/1.1 after the 101: the exchange on the raw connection ---------------------------- */

static int tunnel_send_body(rill_server_stream *st, const void *data, size_t len)
{
    int rc = rill_io_conn_write(st->sess->c.io, data, len);
    if (rc < 0)
        return rc;
    return rill_io_conn_queued(st->sess->c.io) > EXCHANGE_HIGH_WATER ? RILL_ERR_WOULD_BLOCK : RILL_OK;
}

/* The orderly end of our side: what is queued goes, then the FIN; the client may go on sending
 * (a half-close) until its own FIN, which ends the connection (rill_io_conn_shutdown_write). */
static int tunnel_finish(rill_server_stream *st)
{
    st->end_sent = true;
    if (rill_io_conn_shutdown_write(st->sess->c.io) < 0)
        session_close(st->sess);
    return RILL_OK;
}

static void tunnel_pause_body(rill_server_stream *st, bool paused)
{
    if (st->sess->c.proto == &tunnel_proto) /* before the switch h1_session pauses on its own */
        rill_io_conn_pause_read(st->sess->c.io, paused);
}

static const struct exchange_ops tunnel_exchange_ops = {
    .send_body = tunnel_send_body,
    .finish = tunnel_finish,
    .pause_body = tunnel_pause_body,
};

static void proto_data(struct conn *c, const uint8_t *data, size_t len)
{
    rill_server_stream *st = session_of(c)->tunnel;
    if (st)
        exchange_body(st, data, len);
}

static void proto_drain(struct conn *c)
{
    rill_server_stream *st = session_of(c)->tunnel;
    if (st)
        exchange_drained(st);
}

void tunnel_peer_ended(rill_server_session *sess)
{
    rill_server_stream *st = sess->tunnel;
    if (!st)
        return;
    exchange_hold(st);
    exchange_body_end(st);
    exchange_release(st);
}

/* The client's FIN: the tunnel's body ends, the connection stays for what the other side still
 * sends (our FIN then closes it). */
static bool proto_peer_eof(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    if (!sess->tunnel)
        return false;
    tunnel_peer_ended(sess);
    return true;
}

/* The connection is gone: an orderly end if ours came first. A peer that closed without a reset
 * ended its side in order (its FIN, as END_STREAM over HTTP/2): the body's end says so first, so
 * that what it sent last still goes on; then on_close(completed = false), as it did not wait for
 * ours. */
static void proto_free(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    rill_server_stream *st = sess->tunnel;
    sess->tunnel = NULL;
    if (!st)
        return;
    if (!st->end_sent && !rill_io_conn_peer_reset(c->io)) {
        exchange_hold(st);
        exchange_body_end(st);
        exchange_release(st);
    }
    exchange_closed(st, st->end_sent);
}

const struct conn_proto tunnel_proto = {
    .name = "tunnel",
    .data = proto_data,
    .drain = proto_drain,
    .busy = session_busy,
    .peer_eof = proto_peer_eof,
    .free = proto_free,
};

/* ---- accepting ---------------------------------------------------------------------------- */

static int accept_tunnel(rill_server_response *res, const char *protocol)
{
    if (res->head_sent || res->ended || res->closed)
        return RILL_ERR_STATE;
    if (res->sess->h2) {
        if (!res->connect_protocol)
            return RILL_ERR_STATE;
        if (res->status < 200 || res->status > 299)
            res->status = 200;
        return rill_server_response_write(res, NULL, 0); /* 200 without END_STREAM */
    }
    size_t len;
    if (!rill_server_request_header(res, "upgrade", &len) || has_body(res) || res->sess->tunnel ||
        res->sess->websocket || !res->sess->h1)
        return RILL_ERR_STATE;
    if (!protocol || !upgrade_value_ok(protocol))
        return RILL_ERR_INVALID_ARG;
    int rc = exchange_switch_to_tunnel(res, protocol);
    if (rc < 0)
        return rc;
    /* The request's empty body is not the tunnel's: its end is the connection's. */
    res->request_ended = res->request_end_delivered = false;
    res->keep_alive = false;
    res->ops = &tunnel_exchange_ops;
    res->sess->tunnel = res;
    h1_session_tunnel_ready(res->sess);
    session_flush(res->sess);
    return RILL_OK;
}

int rill_server_response_tunnel(rill_server_response *res, const char *protocol)
{
    exchange_hold(res);
    int rc = accept_tunnel(res, protocol);
    exchange_release(res);
    return rc;
}
