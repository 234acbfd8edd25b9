/* The request client's shared state: the client (one origin), its requests, and its connections
 * (client_pool.c), each a `struct conn` running a client-side protocol table (client_h2_proto,
 * client_h1_proto). */
#ifndef RILL_CLIENT_INTERNAL_H
#define RILL_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/client_dns.h"
#include "conn/conn.h"
#include "rill/client.h"
#include "rill/h1.h"
#include "rill/h2.h"

/* rill_client_options.idle_timeout_ms's default, also for a 0 there. */
#define CLIENT_DEFAULT_IDLE_TIMEOUT_MS 30000u

/* A parsed http:// or https:// URL. */
struct client_url {
    bool tls;
    char host[256];      /* without brackets or port: SNI and the certificate check */
    char authority[300]; /* host:port as connected to (brackets kept for IPv6) */
    char host_field[300]; /* as the URL has it (no default port): Host and :authority */
    char path[4096];     /* "/..." with the query */
};

/* What a client keeps of its URL: the origin, not the path (4 KiB less per client). */
struct client_origin {
    bool tls;
    char host[256];
    char authority[300];
    char host_field[300];
};

/* Parses url into *out; RILL_ERR_INVALID_ARG with one line in err otherwise. */
int client_url_parse(const char *url, struct client_url *out, char *err, size_t errlen);

enum stream_state {
    ST_PENDING, /* waits for a connection */
    ST_SENT,    /* on cc */
    ST_HELD,    /* the response is complete but paused: its last events wait for the resume */
};

/* A piece of request body: a buffered body (kept for a resend) or one rill_client_stream_write
 * (freed once it has gone out). The transport references data (rill_h2_submit_data,
 * rill_io_conn_write_ref) until it releases the chunk (client_chunk_released). */
struct body_chunk {
    struct body_chunk *prev, *next; /* the stream's chunks, in body order */
    rill_client_stream *st;         /* NULL once the stream is gone while the transport held it */
    size_t len;
    uint16_t refs; /* transport references */
    bool keep;     /* the whole buffered body: stays for a resend until the stream is freed */
    uint8_t data[];
};
void client_chunk_released(struct body_chunk *ch);

/* Response body bytes that arrived while the stream was paused (HTTP/2), in order. */
struct held_data {
    struct held_data *next;
    size_t len;
    uint8_t data[];
};

/* A DATA frame's payload, in the connection's read buffer, until on_data_v takes it. */
struct gathered_data {
    rill_client_stream *st;
    const uint8_t *data;
    size_t len;
};
#define CLIENT_GATHER_MAX 64
/* rill_client_options.max_pipeline's ceiling */
#define CLIENT_PIPELINE_MAX 64

struct rill_client_stream {
    rill_client *client;
    rill_client_callbacks cb;
    void *user;
    enum stream_state state;
    uint64_t seq; /* creation order, which is the list's order */
    struct client_conn *conn; /* while ST_SENT */
    rill_client_stream *prev, *next; /* the client's list, in request order */
    char *method, *path, *authority; /* authority: from a "host" field, else the client's */
    size_t method_len, path_len, authority_len;
    rill_header *fields; /* lowercase names */
    /* One block holds fields, then method, path, authority and the fields' strings; it stays
     * with the stream when the stream goes back to its client's spares (stream_free) */
    uint8_t *mem;
    size_t mem_cap;
    size_t nfields;
    /* The request body: chunks in order; next_hand is the first not yet given to the transport */
    struct body_chunk *chunks, *chunks_tail, *next_hand;
    size_t body_len;        /* a buffered body's length */
    bool streamed;          /* rill_client_request_stream */
    bool body_ended;        /* the body is complete (buffered, or rill_client_stream_end) */
    bool end_handed;        /* its end (END_STREAM, last chunk, trailers) went to the transport */
    bool body_started;      /* some streamed body went to a transport: no resend */
    bool want_drain, drain_due;
    int64_t declared_len;   /* a streamed body's content-length field, -1 if none */
    uint64_t written;       /* streamed body bytes accepted */
    size_t buffered;        /* streamed body bytes not yet gone out */
    rill_header *trailers;  /* copied at rill_client_stream_end, one allocation */
    size_t ntrailers;
    bool expect_continue;   /* "expect: 100-continue" with a body: the body waits ... */
    bool expect_wait;       /* ... until a 100, a final response, or a second (expect_timer) */
    rill_io_timer *expect_timer;
    int cancel_err;         /* why a cancel of ours ended it (0: the caller's cancel) */
    const char *cancel_why;
    /* Download pause */
    bool paused;
    bool resume_due, resume_now;
    struct held_data *held, *held_tail; /* HTTP/2 DATA held while paused */
    rill_header *held_trailers;
    size_t nheld_trailers;
    int32_t h2_id;
    const char *proto; /* "h2" or "http/1.1" once sent */
    bool got_response, got_end, in_1xx;
    bool head_ended; /* the response head carried the end (HTTP/2 END_STREAM: no body, no trailers) */
    bool peer_end_due; /* a tunnel's END_STREAM (on_peer_end) waits behind held DATA */
    bool cancelled; /* rill_client_stream_cancel: ended (RILL_ERR_CANCELLED) by the next dispatch */
    uint8_t refusals; /* times the server refused it unprocessed (sent again a few times) */
    bool fresh_only;  /* a stale keep-alive connection dropped it: it goes again, once, and only on
                         a connection that has carried nothing before */
    unsigned conn_id; /* the connection it went on (rill_client_stream_connection), 0 before */
    rill_websocket_client *ws; /* an extended CONNECT for this WebSocket (client_ws.c), or NULL */
    rill_io_timer *timer; /* the request timeout, or NULL */
    /* HTTP/1.1 pipelining (client_h1.c) */
    rill_client_stream *h1_next; /* the request sent after it on the same connection */
    bool h1_queued;   /* in its connection's queue, sent behind the current one */
    bool pipelined;   /* went behind another: a close before its answer sends it again */
    bool no_pipeline; /* sent again after such a close: it goes alone */
    bool zombie;      /* ended for its caller (cancel, timeout) while queued: its answer is read
                         and dropped, then it is freed */
};

/* Frame boundaries in one direction of an HTTP/2 byte stream, for the trace. */
struct frame_tap {
    uint8_t hdr[9];
    uint8_t have;
    uint32_t skip; /* bytes to pass over: the preface, then each payload */
};

/* Output handed to the loop and not yet reported sent (only kept while tracing). */
#define TRACE_IOV 64

struct client_conn {
    struct conn c; /* first: the connection layer finds us through it */
    rill_client *client;
    struct client_conn *prev_conn, *next_conn; /* the client's connections, oldest first */
    unsigned id;         /* 1 for the client's first connection, in the order they were made */
    struct client_race *race; /* until a TCP connect wins: the attempts (client_race.c); no io */
    uint64_t connect_deadline; /* while connecting: loop ms */
    bool connect_timed_out;
    bool opened;
    bool no_new; /* GOAWAY received or HTTP/1.1 without keep-alive: no more requests here */
    bool goaway;
    int32_t goaway_last_id; /* the GOAWAY's last stream id: streams above were never processed */
    bool h2_settings_seen;    /* the server's first SETTINGS arrived */
    bool h2_connect_protocol; /* ... with SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441) */
    int fail_err; /* why the connection failed (its protocol's word), 0 if it did not */
    char why[256];
    /* HTTP/2 */
    rill_h2_session *h2;
    rill_h2_session *h2c_offer; /* made for an h2c Upgrade offered on HTTP/1.1, until answered */
    bool h2c_tried;             /* the offer went out on this connection (once per connection) */
    bool h2c_switch;            /* the offering request got its 101: HTTP/2 after its end */
    struct frame_tap tap_in, tap_out;
    uint64_t h2_owed; /* the most any stream's DATA in this read leaves owed (recv_owed) */
    /* DATA for streams with on_data_v, gathered until the read's end or the next other event
     * (client_h2.c); CLIENT_GATHER_MAX entries, made on first use */
    struct gathered_data *gathered;
    unsigned ngathered;
    struct iovec *out_iov; /* TRACE_IOV of them, made when tracing starts */
    int out_n;
    /* HTTP/1.1 */
    rill_h1_parser *h1;
    rill_client_stream *h1_cur; /* the request whose response is being read */
    uint8_t *h1_stash;          /* bytes read but not parsed while h1_cur is paused */
    size_t h1_stash_len;
    bool h1_read_paused;
    bool h1_eof; /* the connection ended: a paused response's stashed bytes are parsed anyway */
    bool h1_answered; /* a byte of h1_cur's response arrived (else a close may be a stale
                         keep-alive connection's) */
    unsigned served;  /* responses that ended cleanly here: more than 0 is a reused connection */
    /* Requests sent behind h1_cur, oldest first (h1_next): their answers come in this order */
    rill_client_stream *h1_queue, *h1_queue_tail;
    unsigned h1_queue_len;
};

struct rill_client {
    rill_io_loop *loop;
    rill_client_options opt;
    char *ca_file;
    struct client_origin origin;
    rill_tls_ctx *tls;
    /* The connections (client_pool.c): an HTTP/2 origin has one; an HTTP/1.1 origin up to
     * max_connections, each carrying one request at a time */
    struct client_conn *conns, *conns_tail;
    unsigned nconns;          /* connecting, open and closing */
    unsigned max_connections; /* opt.max_connections, or the default */
    bool h1_origin;   /* the origin is known to answer over HTTP/1.1: more connections may open */
    bool grow_blocked; /* a connection failed while others live: no more until one opens */
    bool pipelining;   /* client_dispatch's pass that sends behind answers awaited */
    rill_client_stream *head, *tail;
    size_t npending;              /* streams in ST_PENDING: dispatch looks only when some wait */
    size_t npending_fresh;        /* of them, those that need a new connection (fresh_only) */
    size_t nws;                   /* streams that carry a WebSocket (client_ws.c) */
    rill_client_stream *first_pending; /* the oldest of them: dispatch starts there */
    uint64_t next_seq;
    /* Ended streams kept for the next requests (their memory block and timers with them), so
     * a request on a busy client allocates nothing: a list through ->next */
    rill_client_stream *spare;
    unsigned nspare;
    rill_io_timer *kick;          /* connects / dispatches on the next turn */
    rill_io_timer *connect_timer; /* the earliest connect deadline of the connecting ones */
    struct client_dns *dns;
    /* The origin's addresses (resolved for each round of new connections; more may come while
     * dns_final is false), raced by each new connection (client_race.c) */
    struct rill_io_addr *addrs; /* as many as the resolver gave so far (malloc'd) */
    size_t naddrs;
    bool dns_final;
    struct rill_io_addr last_addr; /* the last connection's winning address, tried first; len 0
                                      before the first */
    bool freeing; /* rill_client_free: no more callbacks */
    unsigned connections;
    size_t stream_buffer; /* opt.stream_buffer, or the default */
    rill_client_trace_fn trace;
    void *trace_user;
};

/* The connection of c (its first member). */
static inline struct client_conn *client_conn_of(struct conn *c)
{
    return (struct client_conn *)c;
}

/* Ends st: calls on_end (unless the client is being freed), unlinks and frees it. */
void client_stream_finish(rill_client_stream *st, int err, const char *why);
/* A stream the server pushed on parent (HTTP/2, stream id on cc): parent's callbacks and user,
 * already sent; linked into the client. NULL without memory. */
rill_client_stream *client_stream_pushed(struct client_conn *cc, rill_client_stream *parent,
                                         int32_t id, const rill_header *request, size_t n);
/* Puts a sent request back in line (refused unprocessed: HTTP/2 GOAWAY, REFUSED_STREAM). */
void client_stream_requeue(rill_client_stream *st);
/* The request was just put on a connection: with Expect: 100-continue its body waits. */
void client_stream_sent(rill_client_stream *st);
/* A 100 (Continue) came, or the wait is over: the body goes. */
void client_stream_continue(rill_client_stream *st);
/* Sends what waits on the connections that can take it, and connects more when the origin
 * allows (client_pool.c). */
void client_dispatch(rill_client *cl);
/* The client's connect_timer: connections past their connect deadline are closed. */
void client_connect_timeout(rill_io_timer *t, void *arg);
/* Closes every connection at once (rill_client_free: no callbacks). */
void client_close_all(rill_client *cl);
/* RFC 9110 §9.2.2: a method whose request may be repeated with the same effect. */
bool client_method_idempotent(const char *method);
/* rill_client_request / rill_client_request_stream (streamed: the body comes later). */
int client_request_start(rill_client *c, const char *method, const char *target,
                         const rill_header *fields, size_t nfields, const void *body, size_t len,
                         bool streamed, const rill_client_callbacks *cb, void *user,
                         rill_client_stream **out);

/* WebSockets on the client (client_ws.c). A waiting one goes on cc when it can (HTTP/2 whose
 * SETTINGS allow extended CONNECT: true, submitted or failed), waits (false: SETTINGS not seen
 * yet), or leaves for an HTTP/1.1 connection of its own (true). */
bool client_ws_dispatch(struct client_conn *cc, rill_client_stream *st);
/* Its CONNECT went out as stream st->h2_id of cc: the codec's output becomes its DATA. */
int client_ws_submitted(struct client_conn *cc, rill_client_stream *st, int32_t id);
/* The server ended its side of the CONNECT stream. */
void client_ws_peer_ended(struct client_conn *cc, rill_client_stream *st);
/* No HTTP/2 connection will carry the waiting WebSockets (the origin speaks HTTP/1.1, or an
 * HTTP/2 connection ended before its SETTINGS): each gets its own HTTP/1.1 connection when
 * fall_back, else ends with err and why. */
void client_ws_no_h2(rill_client *cl, bool fall_back, int err, const char *why);
/* rill_client_free: the WebSockets still on the client end without callbacks. */
void client_ws_detach_all(rill_client *cl);

/* HTTP/2: starts the engine on cc (the preface and SETTINGS are queued), submits one request
 * (RILL_ERR_LIMIT: wait for a stream to close), cancels one (a timeout). */
int client_h2_start(struct client_conn *cc);
/* A client HTTP/2 session for cc (the options client_h2_start uses), not yet running. */
rill_h2_session *client_h2_session_new(struct client_conn *cc);
/* The h2c Upgrade was accepted: cc->h2 takes over from HTTP/1.1 with st as stream 1; bytes after
 * the 101 (data, len) are HTTP/2 already. */
int client_h2_upgraded(struct client_conn *cc, rill_client_stream *st, const uint8_t *data, size_t len);
int client_h2_submit(struct client_conn *cc, rill_client_stream *st);
void client_h2_cancel(struct client_conn *cc, rill_client_stream *st);
/* Gives the stream's unhanded body chunks, then its end when due, to the engine. */
int client_h2_hand_body(struct client_conn *cc, rill_client_stream *st);
/* Delivers held DATA of a resumed stream, its flow-control credit returned. */
void client_h2_resume(rill_client_stream *st);

/* HTTP/1.1: the parser; sends one request (the response is read before the next goes); the peer
 * closed (ends a read-until-close body). */
int client_h1_start(struct client_conn *cc);
int client_h1_send(struct client_conn *cc, rill_client_stream *st);
void client_h1_eof(struct client_conn *cc);
/* Same as client_h2_hand_body over HTTP/1.1 (Content-Length or chunked framing). */
int client_h1_hand_body(struct client_conn *cc, rill_client_stream *st);
/* h1_cur was resumed: parses what was stashed, reads again. */
void client_h1_resume(struct client_conn *cc);
/* st, queued behind its connection's current request, ends for its caller now (on_end with err
 * and why); its answer is still read, and dropped. */
void client_h1_drop_queued(rill_client_stream *st, int err, const char *why);
/* cc closed: its pipelined requests not answered at all go back in line (no callbacks) to be
 * sent again, alone; those dropped already are freed. */
void client_h1_requeue_unanswered(struct client_conn *cc);
/* st, queued on cc, ends out of turn (a path that should have dropped it): it leaves the queue
 * and cc closes, since the answers would no longer match their requests. */
void client_h1_unqueue(struct client_conn *cc, rill_client_stream *st);

/* Whether events for st wait (paused, or earlier ones wait). */
static inline bool client_stream_holding(const rill_client_stream *st)
{
    return st->paused || st->held != NULL;
}

/* One piece of st's body to on_data_v (as a single piece) or on_data, whichever is set. */
static inline void client_stream_deliver(rill_client_stream *st, const uint8_t *data, size_t len)
{
    if (st->cb.on_data_v) {
        const struct iovec one = {(void *)data, len};
        st->cb.on_data_v(st, &one, 1, st->user);
    } else if (st->cb.on_data) {
        st->cb.on_data(st, data, len, st->user);
    }
}

/* A trace line (printf-style) when a trace is set. */
void client_trace(rill_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Traces the frames whose headers pass in p[0..n) ("send" or "recv"). */
void client_frame_tap(rill_client *c, struct frame_tap *t, const char *dir, const uint8_t *p,
                      size_t n);

extern const struct conn_proto client_h2_proto;
extern const struct conn_proto client_h1_proto;

/* st leaves ST_PENDING (sent, or unlinked): the count drops, and the oldest pending one moves on
 * to the next pending stream after it (list order is age). */
static inline void client_stream_unpend(rill_client_stream *st)
{
    rill_client *cl = st->client;
    cl->npending--;
    cl->npending_fresh -= st->fresh_only;
    if (cl->first_pending == st) {
        rill_client_stream *p = st->next;
        while (p && p->state != ST_PENDING)
            p = p->next;
        cl->first_pending = p;
    }
}

/* Every change of a linked stream's state goes through here: the client keeps count of the
 * pending ones and of the oldest. */
static inline void client_stream_set_state(rill_client_stream *st, int state)
{
    rill_client *cl = st->client;
    if (st->state == ST_PENDING && state != ST_PENDING) {
        client_stream_unpend(st);
    } else if (st->state != ST_PENDING && state == ST_PENDING) {
        cl->npending++;
        cl->npending_fresh += st->fresh_only;
        if (!cl->first_pending || st->seq < cl->first_pending->seq)
            cl->first_pending = st;
    }
    st->state = state;
}

#endif
