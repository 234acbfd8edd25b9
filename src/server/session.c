/* The server's connections: each is a connection of the role-neutral layer (src/conn/conn.h)
 * whose protocol is chosen here (ALPN on TLS; on cleartext the HTTP/2 preface, an HTTP/1.x
 * request line, or neither), announced to the application, and cleaned up when it ends. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

static const struct conn_proto detect_proto;

bool session_busy(const struct conn *c)
{
    return session_of(c)->open_streams > 0;
}

const char *session_peer(rill_server_session *sess)
{
    if (sess->peer)
        return sess->peer;
    struct rill_io_addr peer;
    if (rill_io_conn_peer(sess->c.io, &peer) != 0)
        return "";
    char text[64];
    /* the access log wants the address without the port */
    rill_io_addr_format(&peer, text, sizeof text);
    char *start = text, *colon = strrchr(text, ':');
    if (colon && text[0] == '[')
        start++, colon[-1] = '\0';
    else if (colon)
        *colon = '\0';
    sess->peer = strdup(start);
    return sess->peer ? sess->peer : "";
}

/* Emits the session (on_session) once its protocol is known, before any of its streams. */
static void session_announce(rill_server_session *sess)
{
    struct rill_server *srv = session_worker(sess)->srv;
    sess->announced = true;
    if (srv->on_session)
        srv->on_session(sess, srv->on_session_user);
}

/* A graceful end: also what SIGTERM does to each connection (conn_io_shutdown). */
void rill_server_session_close(rill_server_session *sess)
{
    conn_shutdown(&sess->c);
}

void rill_server_session_destroy(rill_server_session *session, uint32_t error_code)
{
    if (session->c.closing)
        return;
    if (session->h2) {
        rill_h2_submit_goaway(session->h2, error_code, NULL, 0);
        h2_session_flush(session);
    }
    session_close(session);
}

const rill_h2_settings *rill_server_session_remote_settings(const rill_server_session *session)
{
    return session->h2 ? rill_h2_session_peer_settings(session->h2) : NULL;
}

static void on_open(rill_io_conn *conn, const char *alpn)
{
    struct worker *w = rill_io_conn_user(conn);
    rill_server_session *sess = calloc(1, sizeof *sess);
    if (!sess) {
        rill_io_conn_set_user(conn, NULL); /* tells on_close there is nothing to free */
        rill_io_conn_close(conn, false);
        return;
    }
    conn_init(&sess->c, conn, w->srv->opt.idle_timeout_ms);
    sess->id = (uint64_t)w->index << 40 | ++w->sessions_started;
    rill_io_conn_set_user(conn, sess);
    struct rill_io_tls_info info = {0};
    sess->tls = rill_io_conn_tls_info(conn, &info) == 0;
    atomic_fetch_add_explicit(&w->stats.connections, 1, memory_order_relaxed);
    conn_touch(&sess->c);
    sess->c.in_callback++;
    if (sess->tls && alpn && strcmp(alpn, "h2") == 0) {
        sess->protocol = RILL_PROTOCOL_H2;
        if (h2_session_start(sess, NULL, 0, NULL, 0) < 0)
            session_close(sess);
        else if (!info.h2_acceptable) { /* RFC 9113 §9.2: TLS too weak for HTTP/2 */
            rill_h2_submit_goaway(sess->h2, RILL_H2_INADEQUATE_SECURITY, NULL, 0);
            h2_session_flush(sess);
            session_close(sess);
        }
    } else if (sess->tls) {
        sess->protocol = RILL_PROTOCOL_HTTP1;
        if (h1_session_start(sess) < 0)
            session_close(sess);
    } else {
        sess->protocol = RILL_PROTOCOL_HTTP1;
        conn_set_proto(&sess->c, &detect_proto);
    }
    sess->c.in_callback--;
    if (!sess->c.closing && sess->c.proto != &detect_proto)
        session_announce(sess);
    session_flush(sess);
}

/* The first bytes of a cleartext connection while they cannot decide yet (rare: they arrived in
 * pieces). The session knows them only as detect_buf. */
struct detect_hold {
    uint64_t since; /* when the first of them arrived */
    uint32_t len, cap;
    uint8_t bytes[];
};

/* The HTTP/1.1 request-line limit (414) with its CRLF: beyond it, the bytes are HTTP/1.1's. */
#define DETECT_HOLD_MAX (8192u + 2u)

/* Held first bytes must become a whole first line within the head timeout (UINT64_MAX: none). */
static uint64_t detect_deadline(const struct conn *c)
{
    const rill_server_session *sess = session_of(c);
    const struct detect_hold *h = (const struct detect_hold *)(const void *)sess->detect_buf;
    return h ? h->since + session_worker(sess)->srv->opt.header_timeout_ms : UINT64_MAX;
}

/* Appends data (as much as can still matter) to the held bytes; false when out of memory. */
static bool detect_hold(rill_server_session *sess, const uint8_t *data, size_t len)
{
    struct detect_hold *h = (struct detect_hold *)(void *)sess->detect_buf;
    size_t held = h ? h->len : 0;
    size_t want = held + len < DETECT_HOLD_MAX ? held + len : DETECT_HOLD_MAX;
    if (!h || want > h->cap) {
        size_t cap = h ? h->cap : 64;
        while (cap < want)
            cap *= 2;
        if (cap > DETECT_HOLD_MAX)
            cap = DETECT_HOLD_MAX;
        h = realloc(h, sizeof *h + cap);
        if (!h)
            return false;
        if (!held)
            h->since = rill_io_loop_now_ms(session_worker(sess)->loop);
        h->len = (uint32_t)held;
        h->cap = (uint32_t)cap;
        sess->detect_buf = (uint8_t *)h;
    }
    memcpy(h->bytes + held, data, want - held);
    h->len = (uint32_t)want;
    return true;
}

/* Neither HTTP/2 nor HTTP/1.x (RFC 9113 §3.4): GOAWAY PROTOCOL_ERROR, last stream 0, and close. */
static void refuse_preface(rill_server_session *sess)
{
    static const char why[] = "neither the HTTP/2 preface nor an HTTP/1.x request";
    uint8_t frame[9 + 8 + sizeof why - 1] = {0, 0, 8 + sizeof why - 1, RILL_H2_GOAWAY};
    frame[9 + 7] = RILL_H2_PROTOCOL_ERROR; /* after the last stream id (0), big-endian */
    memcpy(frame + 9 + 8, why, sizeof why - 1);
    rill_io_conn_write(sess->c.io, frame, sizeof frame);
    session_close(sess);
}

/* Cleartext: the first bytes decide between HTTP/2 prior knowledge, HTTP/1.1 (as soon as its
 * first line is complete: nothing is held when it arrives whole) and neither. */
static void detect(struct conn *c, const uint8_t *data, size_t len)
{
    rill_server_session *sess = session_of(c);
    struct detect_hold *h = (struct detect_hold *)(void *)sess->detect_buf;
    size_t held = h ? h->len : 0;
    const uint8_t *p = data;
    size_t n = len;
    if (h) {
        if (!detect_hold(sess, data, len)) {
            session_close(sess);
            return;
        }
        h = (struct detect_hold *)(void *)sess->detect_buf;
        p = h->bytes;
        n = h->len;
    }
    rill_h1_preface verdict = rill_h1_preface_classify(p, n);
    /* A first line this long, or this slow, is HTTP/1.1's to refuse (414, or 408 once its own
     * head deadline passes): dribbling bytes must not outlast the slowloris limit (bytes that stop
     * coming get their 408 from detect_timeout). */
    struct worker *w = session_worker(sess);
    if (verdict == RILL_H1_PREFACE_PARTIAL &&
        (n >= DETECT_HOLD_MAX ||
         (h && rill_io_loop_now_ms(w->loop) >= h->since + w->srv->opt.header_timeout_ms)))
        verdict = RILL_H1_PREFACE_NO;
    if (verdict == RILL_H1_PREFACE_PARTIAL) {
        if (!h && !detect_hold(sess, data, len))
            session_close(sess);
        return;
    }
    if (verdict == RILL_H1_PREFACE_INVALID) {
        refuse_preface(sess);
        return;
    }
    bool h2 = verdict == RILL_H1_PREFACE_YES;
    if (h2)
        sess->protocol = RILL_PROTOCOL_H2C;
    if ((h2 ? h2_session_start(sess, NULL, 0, NULL, 0) : h1_session_start(sess)) < 0) {
        session_close(sess);
        return;
    }
    session_announce(sess); /* the session first, then the streams in these bytes */
    void (*feed)(rill_server_session *, const uint8_t *, size_t) = h2 ? h2_session_data : h1_session_data;
    sess->detect_buf = NULL; /* h is ours now */
    if (held && !sess->c.closing)
        feed(sess, h->bytes, held); /* what came before this read, then this read whole */
    free(h);
    if (!sess->c.closing)
        feed(sess, data, len);
}

/* A first line that stopped coming: it is HTTP/1.1's (the only protocol it could still be), and
 * its head is out of time (408), as a slow head over HTTP/1.1 is. */
static void detect_timeout(struct conn *c, uint64_t now)
{
    rill_server_session *sess = session_of(c);
    if (now < detect_deadline(c))
        return;
    struct detect_hold *h = (struct detect_hold *)(void *)sess->detect_buf;
    sess->detect_buf = NULL;
    if (h1_session_start(sess) < 0) {
        free(h);
        session_close(sess);
        return;
    }
    session_announce(sess);
    c->in_callback++;
    h1_session_data(sess, h->bytes, h->len);
    free(h);
    if (!c->closing)
        h1_session_head_expired(sess);
    c->in_callback--;
    conn_flush(c);
}

static void detect_free(struct conn *c)
{
    rill_server_session *sess = session_of(c);
    free(sess->detect_buf);
    sess->detect_buf = NULL;
}

static const struct conn_proto detect_proto = {
    .name = "detecting",
    .data = detect,
    .deadline = detect_deadline,
    .timeout = detect_timeout,
    .busy = session_busy,
    .free = detect_free,
    .arm_after_data = true,
};

static void on_close(rill_io_conn *conn, int err)
{
    (void)err;
    rill_server_session *sess = rill_io_conn_user(conn);
    if (!sess)
        return;
    conn_io_closed(&sess->c); /* the protocol's state goes first */
    while (sess->live) /* anything the protocol side did not close was cut off */
        exchange_closed(sess->live, false);
    struct rill_server *srv = session_worker(sess)->srv;
    if (sess->announced && srv->events.on_close)
        srv->events.on_close(sess, srv->events_user);
    free(sess->peer);
    atomic_fetch_sub_explicit(&session_worker(sess)->stats.connections, 1, memory_order_relaxed);
    free(sess);
}

const struct rill_io_conn_callbacks session_callbacks = {
    .size = sizeof session_callbacks,
    .on_open = on_open,
    .on_data = conn_io_data,
    .on_drain = conn_io_drain,
    .on_shutdown = conn_io_shutdown,
    .on_output = conn_io_output,
    .on_output_sent = conn_io_output_sent,
    .on_close = on_close,
    .on_timer = conn_io_timer,
    .on_peer_eof = conn_io_peer_eof, /* a tunnel's half-close (tunnel.c) */
};
