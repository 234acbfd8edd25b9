/* Internal state of an HTTP/2 session, shared by the files of src/h2/. */
#ifndef RILL_H2_INTERNAL_H
#define RILL_H2_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/api_struct.h"
#include "rill/h2.h"
#include "rill/hpack.h"

/* A callback of the session's (referenced, size-checked) callbacks; NULL when unset or past an
 * older caller's size. */
#define H2_CB(s, member) RILL_CB((s)->cb, rill_h2_callbacks, member)

#define H2_FRAME_HEADER 9u
#define H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define H2_PREFACE_LEN 24u
#define H2_SHUTDOWN_PING "rillstop" /* opaque data of the graceful-shutdown PING */
#define H2_HEADER_LIST_CAP (1024u * 1024u) /* decoded header list limit, even with "unlimited" announced */

/* frame flags */
#define H2_FLAG_ACK 0x01u
#define H2_FLAG_END_STREAM 0x01u
#define H2_FLAG_END_HEADERS 0x04u
#define H2_FLAG_PADDED 0x08u
#define H2_FLAG_PRIORITY 0x20u

enum h2_stream_state {
    H2_IDLE,
    H2_RESERVED_LOCAL,
    H2_RESERVED_REMOTE,
    H2_OPEN,
    H2_HALF_CLOSED_LOCAL,
    H2_HALF_CLOSED_REMOTE,
    H2_CLOSED,
};

/* stream flags */
#define SF_SCHEDULED 0x0001u     /* in a send queue */
#define SF_INCREMENTAL 0x0002u   /* RFC 9218 i */
#define SF_HEAD 0x0004u          /* the request was HEAD: the response has no body */
#define SF_TUNNEL 0x0008u        /* CONNECT / extended CONNECT: DATA is a byte stream */
#define SF_HEADERS_RECV 0x0010u  /* the initial header block was received */
#define SF_FINAL_RECV 0x0020u    /* client: a final (non-1xx) response was received */
#define SF_HEADERS_SENT 0x0040u  /* we sent the initial header block */
#define SF_FINAL_SENT 0x0080u    /* server: we sent the final response */
#define SF_END_QUEUED 0x0100u    /* END_STREAM is queued or sent */
#define SF_SOURCE_PAUSED 0x0200u /* the read callback said WOULD_BLOCK */
#define SF_SOURCE_EOF 0x0400u    /* the read callback returned its last byte */
#define SF_RECV_NO_BODY 0x0800u  /* the message we receive must not have a body (204/304/HEAD) */
#define SF_SEND_NO_BODY 0x1000u  /* what we send must not have a body */
#define SF_CONNECT 0x2000u       /* a CONNECT request (tunnel once 2xx) */
#define SF_END_WANTED 0x4000u    /* the app asked to end the stream after queued data */
#define SF_RESPONDED 0x8000u     /* server: any response HEADERS sent (progress for flood accounting) */

/* How a stream ended, remembered for late frames (section 5.1, "closed"). */
enum h2_closed_how { H2_CLOSED_NORMAL = 1, H2_CLOSED_PEER_RST = 2, H2_CLOSED_LOCAL_RST = 3 };

/* A caller-owned DATA buffer queued on a stream. */
struct h2_dataref {
    struct h2_dataref *next;
    const uint8_t *data;
    size_t len, off;
    void *token;
    int32_t stream_id;
    uint32_t inflight;  /* output segments still pointing into it */
    bool end_stream;
    bool detached;      /* no longer in a stream queue: release when inflight drops to 0 */
};

/* Trailers copied because body data was still queued when they were submitted. */
struct h2_trailers {
    size_t count;
    rill_header *fields; /* point into the same allocation */
};

struct h2_stream {
    struct h2_stream *hnext;         /* hash chain */
    struct h2_stream *qnext, *qprev; /* send queue links */
    int32_t id;
    uint8_t state;
    uint8_t urgency; /* 0..7, RFC 9218 default 3 */
    uint16_t flags;
    int64_t send_window;
    int64_t recv_window;      /* what the peer may still send */
    uint32_t recv_unconsumed; /* delivered, not yet consumed by the app */
    uint32_t recv_consumed;   /* consumed, not yet announced with WINDOW_UPDATE */
    int64_t content_length;   /* -1 when absent */
    uint64_t data_received;
    void *user;
    struct h2_dataref *dq_head, *dq_tail;
    rill_h2_read_fn read;    /* non-NULL while a pull source is set (a marker when readv is) */
    rill_h2_readv_fn readv;  /* a vectored pull source */
    void *read_user;
    struct h2_trailers *trailers;
};

/* An output buffer for several frames of a vectored source at once, pooled like the standard
 * size. Its frames are sized to fill it exactly, and it fits one 64 KiB TCP segment (loopback's
 * MSS is 65483; on a 1500-byte MTU with TSO the kernel's size goal is about the same): a batch
 * goes out as one full segment, not one and a scrap. */
#define H2_BIG_CHUNK 65480u
#define H2_BIG_CHUNK_FRAMES_MAX 8u

struct h2_chunk {
    struct h2_chunk *next;
    uint32_t cap, used, consumed;
    uint8_t data[];
};

struct h2_seg {
    const uint8_t *ptr;
    uint32_t len;
    struct h2_chunk *chunk;   /* chunk bytes, or NULL */
    struct h2_dataref *ref;   /* caller bytes, or NULL */
};

/* A flood token bucket. The refill time is the low 32 bits of the session clock: differences
 * wrap correctly for gaps up to 49 days, far beyond any idle timeout. */

enum h2_recv_state {
    RS_PREFACE,
    RS_HEADER,
    RS_PAYLOAD,   /* buffering a non-DATA payload */
    RS_DATA_PAD,  /* DATA: the pad length byte */
    RS_DATA,      /* DATA: body bytes, streamed to on_data */
    RS_SKIP,      /* discard the rest of the payload (padding, ignored frames) */
    RS_DEAD,
};

/* Collected fields of the header block being decoded. */
struct h2_fieldset {
    rill_header *fields;
    size_t count, cap;
    uint8_t *bytes;
    size_t used, bytes_cap;
};

/*
 * What an idle connection does not need lives in blocks allocated on first use, so a quiet
 * session is the struct below and nothing else (memory_idle_and_per_stream in test_h2_engine.c
 * holds it to that).
 */

/* Settings we announced and the peer has not acknowledged yet (section 6.5.3). The newest
 * pending one is always `local`, so only the older ones are kept here, with what the peer has
 * acknowledged so far. Exists while pending_count > 0. */
#define H2_MAX_PENDING_SETTINGS 4
struct h2_pending {
    rill_h2_settings acked;
    rill_h2_settings older[H2_MAX_PENDING_SETTINGS - 1]; /* oldest first */
};

/* The stream table: hash buckets and the RFC 9218 send queues. Exists while streams do (trim
 * gives it back), or while a PRIORITY_UPDATE waits for its stream. */
struct h2_table {
    struct h2_stream *queue[8][2]; /* per urgency: [0] non-incremental, [1] incremental */
    struct h2_stream *queue_tail[8][2];
    uint16_t queued; /* bit u * 2 + inc: queue[u][inc] is not empty */
    /* PRIORITY_UPDATEs that arrived before their stream opened (a few, newest kept) */
    struct { int32_t id; uint8_t urgency, incremental; } early_prio[4];
    uint8_t early_prio_next;
    struct h2_stream *buckets[]; /* nbuckets */
};

/* Stream history, from the first stream on: which peer ids were used and how recent streams
 * closed (section 5.1), needed to answer late frames. */
struct h2_closed { int32_t id; uint8_t how; };
struct h2_history {
    uint64_t peer_used[8]; /* bit (id / 2) % 512: peer stream id was opened (for the 512 ids up to
                              last_peer_id) */
    struct h2_closed closed[]; /* ring of max_closed */
};

/* Header-block scratch: from the first header block until trimmed while idle. With an output
 * pool it is one pool block of H2_HBLOCK_POOLED bytes holding the struct and room for a usual
 * block's fields and bytes (a big block moves them to the heap), so a burst's scratch goes back to
 * the pool, not into holes between the connections' long-lived allocations. */
#define H2_HBLOCK_POOLED 2048u
#define H2_HBLOCK_INLINE_FIELDS 16u
struct h2_hblock {
    rill_h2_session *s; /* for allocations: the decoder's callback gets the block */
    struct h2_fieldset fs;
    uint8_t *buf; /* a block split across CONTINUATION frames */
    uint32_t len, cap;
    bool pooled;        /* this struct is a pool block of H2_HBLOCK_POOLED */
    bool fields_inline; /* fs.fields / fs.bytes point into the pool block */
    bool bytes_inline;
};

/* What sessions take from their options, made once and shared by every session of one profile
 * (rill_h2_profile_new), or owned by a session made from options alone: an idle session carries
 * none of it. Read-only once made, so sessions on several threads may share it. */
/* Flood token buckets, one per kind of frame a peer can send for nothing. */
enum h2_flood { FL_PING, FL_SETTINGS, FL_RST, FL_EMPTY, FL_WU, FL_PRIORITY, FL_COUNT };

struct rill_h2_profile {
    rill_h2_settings local;          /* the SETTINGS announced at start */
    rill_h2_rate rates[FL_COUNT];    /* flood limits, by enum h2_flood */
    uint32_t flood_cap[FL_COUNT];    /* each bucket's capacity in H2_FLOOD_UNITs */
    const rill_h2_allocator *alloc;  /* NULL: malloc */
    const rill_h2_buffer_pool *pool; /* output buffers of chunk_size come from here, or NULL */
    uint32_t conn_window_target;
    uint32_t settings_timeout_ms;
    uint32_t max_header_block;
    uint32_t max_continuations;
    uint32_t max_closed;
    uint32_t max_pending_output;
    uint32_t chunk_size;
    uint8_t role;
    bool auto_consume;
};

struct rill_h2_session {
    const rill_h2_callbacks *cb;     /* never NULL (an empty set when none was given) */
    void *user;
    const struct rill_h2_profile *prof; /* referenced (or owned: prof_owned) */
    /* The last SETTINGS we announced: the profile's until we submit one, then an owned copy. */
    const rill_h2_settings *local;
    uint32_t mem_bytes;              /* owned memory beyond the struct (a session stays far below 4 GiB) */
    uint32_t out_pending;            /* queued output bytes not yet consumed (bounded by max_pending_output) */
    uint64_t now;
    uint64_t settings_deadline;      /* UINT64_MAX: none */
    uint64_t shutdown_deadline;      /* step two without the PING ACK; UINT64_MAX none */
    int64_t error_code;              /* connection error (sent or received), -1 none */

    /* settings */
    rill_h2_settings peer;
    struct h2_pending *pend;         /* while pending_count > 0 */

    /* streams */
    uint32_t nbuckets, nstreams;
    uint32_t peer_active, local_active; /* open/half-closed streams initiated by each side */
    uint32_t reserved_remote;           /* promised to us, not yet answered */
    int32_t last_peer_id;   /* highest stream id the peer opened */
    int32_t last_local_id;  /* highest stream id we opened or promised */
    int32_t next_local_id;
    uint32_t closed_head, closed_count;
    uint32_t conn_recv_consumed; /* consumed, not yet announced (flow control) */
    struct h2_table *tab;
    struct h2_history *hist;
    struct h2_stream *free_streams;

    /* flow control */
    int64_t conn_send_window;
    int64_t conn_recv_window;   /* what the peer may still send on the connection */

    /* receiving */
    uint32_t have;              /* bytes of the preface / header / payload buffered */
    uint32_t flen;
    uint32_t remaining;         /* payload bytes still to come */
    int32_t fsid;
    uint32_t pbuf_cap;
    uint32_t hb_conts;          /* CONTINUATIONs of the header block in progress */
    int32_t hb_sid, hb_promised;
    struct h2_stream *data_stream; /* DATA: target stream (NULL: discard) */
    uint8_t *pbuf;
    /* a header block in progress */
    struct h2_hblock *hblk;

    /* shutdown and errors */
    int32_t goaway_last_sent;   /* peer streams above this are ignored */
    int32_t goaway_last_recv;

    /* hpack */
    rill_hpack_decoder *dec;
    rill_hpack_encoder *enc;

    /* output */
    struct h2_chunk *out_head, *out_tail;
    struct h2_seg *segs;
    uint32_t seg_cap, seg_head, seg_count; /* seg_cap: a power of two (16, doubled): indexes wrap by mask */
    int fatal;                  /* the negative code recv returns after a failure */
    struct h2_dataref *free_refs;

    /* flood accounting: token buckets in thousandths of a frame, all refilled from one clock */
    uint32_t flood_tokens[FL_COUNT]; /* by enum h2_flood */
    uint32_t flood_ms;        /* when they were last refilled (low 32 bits of now) */

    uint8_t hdr[H2_FRAME_HEADER];
    uint8_t rstate;
    uint8_t data_pad;           /* DATA: padding after the body */
    uint8_t ftype, fflags;
    uint8_t role;
    uint8_t pending_count;
    uint8_t hb_type, hb_flags;
    /* one bit each: every idle connection carries them */
    bool expect_continuation : 1;
    bool peer_settings_seen : 1;
    bool prof_owned : 1;           /* made by rill_h2_session_new: freed with the session */
    bool goaway_sent : 1, goaway_recv : 1, shutdown_notice : 1;
    bool freeing : 1;              /* rill_h2_session_free: no events but releases */
    bool stalled : 1;              /* max_pending_output unread since stall_s */
    uint16_t stall_s;              /* low 16 bits of now in seconds when the output stalled */
};

/* Allocates the stream history if there is none yet; false when out of memory. */
bool h2_history_alloc(rill_h2_session *s);
static inline bool h2_history_ensure(rill_h2_session *s)
{
    return s->hist || h2_history_alloc(s);
}
/* The protocol's initial settings values (section 6.5.2). */
extern const rill_h2_settings h2_protocol_settings;

/* What our side has in effect: the settings the peer acknowledged. Without a pend record while
 * one SETTINGS is outstanding, that is our first, and the protocol defaults still hold: most
 * connections never need the record (an idle one that has not acknowledged holds no memory for it,
 * and none is freed between longer-lived allocations). */
static inline const rill_h2_settings *h2_acked(const rill_h2_session *s)
{
    return !s->pending_count ? s->local : s->pend ? &s->pend->acked : &h2_protocol_settings;
}

#define H2_FLOOD_UNIT 1000u /* one frame, in bucket units */


/* ---- memory (h2_session.c) ---- */
void *h2_malloc(rill_h2_session *s, size_t n);
void *h2_realloc(rill_h2_session *s, void *p, size_t n);
void h2_free(rill_h2_session *s, void *p);
void h2_chunk_free(rill_h2_session *s, struct h2_chunk *c);
/* Hands every output buffer and the segment ring back (nothing may be queued). */
void h2_out_release(rill_h2_session *s);
/* The stream table with twice the buckets (8 at first); false when out of memory. */
bool h2_table_grow(rill_h2_session *s);
static inline uint32_t h2_slot(uint32_t nbuckets, int32_t id)
{
    return ((uint32_t)id * 2654435761u) & (nbuckets - 1);
}

/* ---- frames (h2_frame.c) ---- */
static inline void h2_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t h2_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
void h2_frame_header(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, int32_t sid);
/* Validates a SETTINGS payload and applies it to *dst; returns 0 or an H2 error code (> 0). */
uint32_t h2_settings_apply(rill_h2_settings *dst, const uint8_t *p, size_t len, bool from_server);
size_t h2_settings_write(const rill_h2_settings *now, const rill_h2_settings *base, uint8_t *out);

/* ---- output (h2_output.c) ---- */
uint8_t *h2_out_reserve(rill_h2_session *s, size_t need);
/* Streams a client opens before the server's first SETTINGS arrive. */
#define H2_STREAMS_BEFORE_SETTINGS 100u
/* The connection's first output: with an output pool, a buffer of cap bytes (>= need) instead of
 * a full-size one borrowed from the pool. */
#define H2_START_CHUNK 128u
/* The first output buffer of a burst, when a pool is there: most answers are a few hundred bytes,
 * and a thousand connections answering in one loop turn would otherwise each hold a full
 * chunk_size buffer until the flush (heap the kernel does not get back: RSS). */
#define H2_SMALL_CHUNK 1024u
uint8_t *h2_out_reserve_small(rill_h2_session *s, size_t need, size_t cap);
void h2_out_commit(rill_h2_session *s, size_t n);
int h2_out_ref(rill_h2_session *s, const uint8_t *p, size_t n, struct h2_dataref *ref);
bool h2_out_ref_room(const rill_h2_session *s);
int h2_out_frame(rill_h2_session *s, uint8_t type, uint8_t flags, int32_t sid, const uint8_t *payload,
                 size_t len);
void h2_out_free_all(rill_h2_session *s);
void h2_ref_release(rill_h2_session *s, struct h2_dataref *ref);

/* ---- streams (h2_stream.c) ---- */
struct h2_stream *h2_stream_find(const rill_h2_session *s, int32_t id);
struct h2_stream *h2_stream_new(rill_h2_session *s, int32_t id, uint8_t state);
/* Closes and frees a stream (reports on_stream_close, releases its data). */
void h2_stream_close(rill_h2_session *s, struct h2_stream *st, uint32_t code, uint8_t how);
int h2_closed_lookup(const rill_h2_session *s, int32_t id);
void h2_remember_closed(rill_h2_session *s, int32_t id, uint8_t how);
/* The peer used stream id (opened or promised it); ids only grow. */
void h2_peer_id_used(rill_h2_session *s, int32_t id);
/* 1: the peer used this id, 0: it skipped it, -1: too old to tell. */
int h2_peer_id_was_used(const rill_h2_session *s, int32_t id);
bool h2_is_local_id(const rill_h2_session *s, int32_t id);
void h2_stream_set_state(rill_h2_session *s, struct h2_stream *st, uint8_t state);
void h2_sched_add(rill_h2_session *s, struct h2_stream *st);
void h2_sched_remove(rill_h2_session *s, struct h2_stream *st);
void h2_stream_drop_data(rill_h2_session *s, struct h2_stream *st);

/* ---- http semantics (h2_http.c) ---- */
enum h2_msg { H2_MSG_REQUEST, H2_MSG_RESPONSE, H2_MSG_TRAILERS, H2_MSG_PUSH_REQUEST };
/* Checks one field as it is decoded; returns false if the message is malformed. */
bool h2_field_valid(const rill_header *f);
struct h2_msg_info {
    int64_t content_length;
    int status;
    bool head, connect, ext_connect, has_protocol;
    int urgency;       /* -1 absent */
    int incremental;   /* -1 absent */
};
/* Validates a complete field list as a message of this kind; returns true if well-formed. */
bool h2_message_valid(const rill_header *fields, size_t count, enum h2_msg kind, bool connect_protocol_ok,
                      struct h2_msg_info *info);
/* Parses an RFC 9218 priority field value. */
void h2_parse_priority(const uint8_t *v, size_t len, int *urgency, int *incremental);

/* ---- session internals (h2_recv.c / h2_headers.c / h2_control.c / h2_send.c) ---- */
static inline bool h2_dead(const rill_h2_session *s) { return s->rstate == RS_DEAD; }
/* A stream id nobody has used yet (section 5.1.1); streams opened after our GOAWAY are not. */
bool h2_is_idle(const rill_h2_session *s, int32_t id);
/* A peer stream opened after our GOAWAY: ignored. */
bool h2_after_goaway(const rill_h2_session *s, int32_t id);
/* A callback failed: fail the connection; returns rc. */
int h2_cb_fail(rill_h2_session *s, int rc);
/* The peer ended its side: content-length check, on_end_stream, state change. */
void h2_end_stream_recv(rill_h2_session *s, struct h2_stream *st);
void h2_on_headers_frame(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_push_promise_frame(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_continuation(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_priority(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_rst_stream(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_settings(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_ping(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_goaway(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_window_update(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_on_priority_update(rill_h2_session *s, const uint8_t *p, size_t len);
void h2_connection_error(rill_h2_session *s, uint32_t code, const char *why);
/* Resets a stream (RST_STREAM, then closed); no charge to the reset budget. */
void h2_stream_error(rill_h2_session *s, int32_t sid, uint32_t code);
/* A stream error the peer provoked: charged to the reset budget (MadeYouReset), then reset; over
 * the budget, GOAWAY ENHANCE_YOUR_CALM instead. */
void h2_peer_stream_error(rill_h2_session *s, int32_t sid, uint32_t code);
/* Takes cost resets from the reset budget (FL_RST); when it has fewer, fails the connection with
 * ENHANCE_YOUR_CALM (why) and returns false. */
bool h2_charge_reset(rill_h2_session *s, uint32_t cost, const char *why);
/* Notes whether queued output has reached max_pending_output (the peer is not reading). */
void h2_stall_update(rill_h2_session *s);
int h2_queue_window_updates(rill_h2_session *s, struct h2_stream *st);
int h2_encode_headers(rill_h2_session *s, uint8_t type, int32_t sid, int32_t promised, uint8_t flags,
                      const rill_header *fields, size_t count);
/* The same, the fields named by token (see hpack/encoder_internal.h; NULL: none). */
int h2_encode_headers_named(rill_h2_session *s, uint8_t type, int32_t sid, int32_t promised, uint8_t flags,
                            const rill_header *fields, size_t count, const uint64_t *token);
/* Takes n frames from a flood bucket; false (nothing taken) when it has fewer. */
bool h2_flood_take_n(rill_h2_session *s, enum h2_flood which, uint32_t n);
static inline bool h2_flood_take(rill_h2_session *s, enum h2_flood which)
{
    return h2_flood_take_n(s, which, 1);
}
void h2_fill_output(rill_h2_session *s);
/* Body bytes still to send: queued buffers or an unfinished read callback. */
bool h2_body_pending(const struct h2_stream *st);
void h2_trailers_free(rill_h2_session *s, struct h2_stream *st);
int h2_ensure_encoder(rill_h2_session *s);
/* Gives back the header-block scratch: the field set, and with all the block buffer too. */
void h2_hblock_free(rill_h2_session *s, bool all);
void h2_close_all_on_error(rill_h2_session *s);
void h2_end_local(rill_h2_session *s, struct h2_stream *st);
void h2_final_goaway(rill_h2_session *s);

#endif
