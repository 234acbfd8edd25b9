/* One connection: picks the protocol (ALPN on TLS; the HTTP/2 preface or HTTP/1.1 on cleartext),
 * keeps the idle timer, and hands bytes to the HTTP/1.1 or HTTP/2 side. */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

static void session_arm(rill_session *sess);
static uint64_t detect_deadline(const rill_session *sess);
static void detect_expired(rill_session *sess);

/* Give back buffers after this long without traffic (an idle connection should cost little). */
#define TRIM_DELAY_MS 200

static uint64_t idle_deadline(const rill_session *sess)
{
    return sess->last_active + session_worker(sess)->srv->opt.idle_timeout_ms;
}

/* The connection's timer: idle close, the engine's deadlines, the slow-head limit, trimming. */
static void on_idle_timeout(rill_io_conn *conn)
{
    rill_session *sess = rill_io_conn_user(conn);
    if (!sess)
        return;
    uint64_t now = rill_io_loop_now_ms(session_worker(sess)->loop);
    if (now >= detect_deadline(sess)) {
        detect_expired(sess);
        if (sess->closing)
            return;
    }
    if (sess->h2)
        rill_h2_session_tick(sess->h2, now);
    if (sess->h1) {
        h1_session_timeout(sess, now);
        if (sess->closing)
            return;
    }
    if (now >= idle_deadline(sess) && sess->open_streams == 0) {
        if (sess->h2) {
            rill_h2_submit_goaway(sess->h2, RILL_H2_NO_ERROR, NULL, 0);
            h2_session_flush(sess);
        }
        session_close(sess);
        return;
    }
    if (sess->open_streams == 0 && now >= sess->last_active + TRIM_DELAY_MS) {
        if (sess->h2)
            rill_h2_session_trim(sess->h2);
        else if (sess->h1)
            h1_session_trim(sess);
    }
    if (sess->h2)
        h2_session_flush(sess);
    session_arm(sess);
}

/* The timer fires at the earliest of: idle close, the engine's deadline, the trim point. */
static void session_arm(rill_session *sess)
{
    uint64_t now = rill_io_loop_now_ms(session_worker(sess)->loop);
    uint64_t at = idle_deadline(sess);
    if (sess->h2) {
        uint64_t h2_at = rill_h2_session_next_deadline(sess->h2);
        if (h2_at < at)
            at = h2_at;
    }
    if (sess->h1) {
        uint64_t head_at = h1_session_deadline(sess);
        if (head_at < at)
            at = head_at;
    }
    uint64_t detect_at = detect_deadline(sess);
    if (detect_at < at)
        at = detect_at;
    uint64_t trim_at = sess->last_active + TRIM_DELAY_MS;
    if (trim_at > now && trim_at < at)
        at = trim_at;
    /* Re-arming on every read is cheap, but skip it when the deadline barely moved. */
    uint64_t armed_at = rill_io_conn_timer_deadline(sess->conn); /* UINT64_MAX: not armed */
    if (at < armed_at || at - armed_at > 1000)
        rill_io_conn_timer_arm_at(sess->conn, at);
}

void session_touch(rill_session *sess)
{
    uint64_t now = rill_io_loop_now_ms(session_worker(sess)->loop);
    sess->last_active = now;
    session_arm(sess);
}

const char *session_peer(rill_session *sess)
{
    if (sess->peer)
        return sess->peer;
    struct rill_io_addr peer;
    if (rill_io_conn_peer(sess->conn, &peer) != 0)
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

void session_close(rill_session *sess)
{
    if (sess->closing)
        return;
    sess->closing = true;
    rill_io_conn_close(sess->conn, true);
}

/* Emits the session (on_session) once its protocol is known, before any of its streams. */
static void session_announce(rill_session *sess)
{
    struct rill_server *srv = session_worker(sess)->srv;
    sess->announced = true;
    if (srv->on_session)
        srv->on_session(sess, srv->on_session_user);
}

/* A graceful end: also what SIGTERM does to each connection (on_shutdown). */
void rill_session_close(rill_session *sess)
{
    if (sess->closing)
        return;
    if (sess->h2) {
        h2_session_shutdown(sess);
    } else if (sess->open_streams == 0) {
        session_close(sess);
    } else if (sess->h1) {
        h1_session_shutdown(sess);
    }
}

void rill_session_destroy(rill_session *session, uint32_t error_code)
{
    if (session->closing)
        return;
    if (session->h2) {
        rill_h2_submit_goaway(session->h2, error_code, NULL, 0);
        h2_session_flush(session);
    }
    session_close(session);
}

const rill_h2_settings *rill_session_remote_settings(const rill_session *session)
{
    return session->h2 ? rill_h2_session_peer_settings(session->h2) : NULL;
}

void session_flush(rill_session *sess)
{
    if (sess->in_callback || sess->closing)
        return;
    if (sess->h2)
        h2_session_flush(sess);
}

static void on_open(rill_io_conn *conn, const char *alpn)
{
    struct worker *w = rill_io_conn_user(conn);
    rill_session *sess = calloc(1, sizeof *sess);
    if (!sess) {
        rill_io_conn_set_user(conn, NULL); /* tells on_close there is nothing to free */
        rill_io_conn_close(conn, false);
        return;
    }
    sess->conn = conn;
    sess->id = (uint64_t)w->index << 40 | ++w->sessions_started;
    rill_io_conn_set_user(conn, sess);
    struct rill_io_tls_info info;
    sess->tls = rill_io_conn_tls_info(conn, &info) == 0;
    atomic_fetch_add_explicit(&w->stats.connections, 1, memory_order_relaxed);
    session_touch(sess);
    sess->in_callback++;
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
        if (h1_session_start(sess, NULL, 0) < 0)
            session_close(sess);
    } else {
        sess->protocol = RILL_PROTOCOL_HTTP1;
        sess->detecting = true;
    }
    sess->in_callback--;
    if (!sess->closing && !sess->detecting)
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
static uint64_t detect_deadline(const rill_session *sess)
{
    const struct detect_hold *h = (const struct detect_hold *)(const void *)sess->detect_buf;
    return sess->detecting && h ? h->since + session_worker(sess)->srv->opt.header_timeout_ms
                                : UINT64_MAX;
}

/* Appends data (as much as can still matter) to the held bytes; false when out of memory. */
static bool detect_hold(rill_session *sess, const uint8_t *data, size_t len)
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
static void refuse_preface(rill_session *sess)
{
    static const char why[] = "neither the HTTP/2 preface nor an HTTP/1.x request";
    uint8_t frame[9 + 8 + sizeof why - 1] = {0, 0, 8 + sizeof why - 1, RILL_H2_GOAWAY};
    frame[9 + 7] = RILL_H2_PROTOCOL_ERROR; /* after the last stream id (0), big-endian */
    memcpy(frame + 9 + 8, why, sizeof why - 1);
    rill_io_conn_write(sess->conn, frame, sizeof frame);
    session_close(sess);
}

/* Cleartext: the first bytes decide between HTTP/2 prior knowledge, HTTP/1.1 (as soon as its
 * first line is complete: nothing is held when it arrives whole) and neither. */
static void detect(rill_session *sess, const uint8_t *data, size_t len)
{
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
     * head deadline passes): dribbling bytes must not outlast the slowloris limit. (Bytes that
     * stop coming wait for the idle timeout, as an idle connection does.) */
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
    sess->detecting = false;
    if (verdict == RILL_H1_PREFACE_INVALID) {
        refuse_preface(sess);
        return;
    }
    bool h2 = verdict == RILL_H1_PREFACE_YES;
    if (h2)
        sess->protocol = RILL_PROTOCOL_H2C;
    if ((h2 ? h2_session_start(sess, NULL, 0, NULL, 0) : h1_session_start(sess, NULL, 0)) < 0) {
        session_close(sess);
        return;
    }
    session_announce(sess); /* the session first, then the streams in these bytes */
    void (*feed)(rill_session *, const uint8_t *, size_t) = h2 ? h2_session_data : h1_session_data;
    if (held && !sess->closing)
        feed(sess, h->bytes, held); /* what came before this read, then this read whole */
    free(sess->detect_buf);
    sess->detect_buf = NULL;
    if (!sess->closing)
        feed(sess, data, len);
}

/* A first line that stopped coming: it is HTTP/1.1's (the only protocol it could still be), and
 * its head is out of time (408), as a slow head over HTTP/1.1 is. */
static void detect_expired(rill_session *sess)
{
    struct detect_hold *h = (struct detect_hold *)(void *)sess->detect_buf;
    sess->detecting = false;
    sess->detect_buf = NULL;
    if (h1_session_start(sess, NULL, 0) < 0) {
        free(h);
        session_close(sess);
        return;
    }
    session_announce(sess);
    sess->in_callback++;
    h1_session_data(sess, h->bytes, h->len);
    free(h);
    if (!sess->closing)
        h1_session_head_expired(sess);
    sess->in_callback--;
    session_flush(sess);
}

static void on_data(rill_io_conn *conn, const uint8_t *data, size_t len)
{
    rill_session *sess = rill_io_conn_user(conn);
    if (sess->closing)
        return;
    session_touch(sess);
    sess->in_callback++;
    if (sess->detecting)
        detect(sess, data, len);
    else if (sess->h2)
        h2_session_data(sess, data, len);
    else if (sess->h1)
        h1_session_data(sess, data, len);
    sess->in_callback--;
    session_flush(sess);
    if (!sess->closing && (sess->h1 || sess->detecting))
        session_arm(sess); /* the data may have started a request head: its deadline counts */
}

static void on_drain(rill_io_conn *conn)
{
    rill_session *sess = rill_io_conn_user(conn);
    sess->in_callback++;
    if (sess->h2)
        h2_session_drain(sess);
    else if (sess->h1)
        h1_session_drain(sess);
    sess->in_callback--;
    session_flush(sess);
}

static void on_shutdown(rill_io_conn *conn)
{
    rill_session_close(rill_io_conn_user(conn));
}

static void on_close(rill_io_conn *conn, int err)
{
    (void)err;
    rill_session *sess = rill_io_conn_user(conn);
    if (!sess)
        return;
    sess->closing = true;
    sess->in_callback++;
    if (sess->websocket)
        ws_connection_closed(sess);
    if (sess->h2)
        h2_session_free(sess);
    if (sess->h1)
        h1_session_free(sess);
    while (sess->live) /* anything the protocol side did not close was cut off */
        exchange_closed(sess->live, false);
    struct rill_server *srv = session_worker(sess)->srv;
    if (sess->announced && srv->events.on_close)
        srv->events.on_close(sess, srv->events_user);
    free(sess->detect_buf);
    free(sess->peer);
    atomic_fetch_sub_explicit(&session_worker(sess)->stats.connections, 1, memory_order_relaxed);
    free(sess);
}

static int on_output(rill_io_conn *conn, struct iovec *iov, int max)
{
    rill_session *sess = rill_io_conn_user(conn);
    return sess && sess->h2 ? h2_session_output(sess, iov, max) : 0;
}

static void on_output_sent(rill_io_conn *conn, size_t n)
{
    rill_session *sess = rill_io_conn_user(conn);
    if (sess && sess->h2)
        h2_session_output_sent(sess, n);
}

const struct rill_io_conn_callbacks session_callbacks = {
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_shutdown = on_shutdown,
    .on_output = on_output,
    .on_output_sent = on_output_sent,
    .on_close = on_close,
    .on_timer = on_idle_timeout,
};
