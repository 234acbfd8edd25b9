/* rill HTTP/1.1 (RFC 9112 / RFC 9110): a sans-I/O message parser for both roles, a serialiser, and
 * the helpers a server needs to pick HTTP/2 (prior-knowledge preface, h2c Upgrade) or WebSocket.
 *
 * ---- Parser model: "feed bytes, get the next event" (pull style) --------------------------------
 *
 *   rill_h1_parse(p, data, len, &used, &ev) consumes some prefix `used` of data and reports at most
 *   one event. The caller advances data by `used` and calls again until the event is
 *   RILL_H1_EV_NONE, which means "every byte given so far is absorbed; feed more". Events:
 *     HEAD      the request line / status line and header fields are complete (ev.head).
 *     BODY      ev.data/ev.len: a piece of the message body, already de-chunked. Points into the
 *               caller's data (zero copy); valid as long as the caller keeps those bytes.
 *     TRAILERS  trailer fields of a chunked body (ev.fields/ev.nfields); only when some were sent.
 *     END       the message is complete. For a request the parser is ready for the next
 *               (pipelined) message at data+used. After a 101 response, or a 2xx answer to
 *               CONNECT, ev.upgraded is true and the parser refuses further bytes (RILL_ERR_STATE):
 *               the rest of the stream belongs to the new protocol.
 *   HEAD is always reported before any body byte is consumed, so a server can send
 *   "100 Continue" (head->expect_continue) or refuse the body before reading it.
 *
 * ---- Head storage (the "copy" choice) ------------------------------------------------------------
 *
 *   Head and trailer lines are copied into one bounded buffer owned by the parser (allocated once
 *   by rill_h1_parser_new: max_head_size + max_trailer_size bytes, plus the field array). Bytes may
 *   arrive one at a time and socket buffers are reused, so copying once (field lines that arrive
 *   whole go in one memcpy and are scanned once; a line cut by the input's end is gathered) buys
 *   spans that stay valid for the whole message: every pointer in a rill_h1_head and in a
 *   TRAILERS event stays valid until the first rill_h1_parse call that follows END (or
 *   rill_h1_parser_reset / _free). Body bytes are never copied. No allocation happens after _new.
 *
 * ---- Strictness (decisions; all are errors that end the connection) ------------------------------
 *
 *   Lines must end in CRLF: a bare LF or a bare CR is an error. obs-fold (a field line starting
 *   with SP/HTAB) is rejected. Field names are tokens, immediately followed by ':'. Field values
 *   may hold VCHAR, obs-text, SP and HTAB only. Request line: token SP target SP "HTTP/1.d", single
 *   spaces; the target is visible ASCII and in one of the four forms: origin ("/..."),
 *   absolute ("scheme://..."), authority ("host:port", CONNECT only, and CONNECT only takes it),
 *   asterisk ("*", OPTIONS only). HTTP/1.1 needs exactly one Host; more than one Host is always an
 *   error. Content-Length: 1*DIGIT, at most 2^63-1; duplicates (repeated lines or a comma list) are accepted only
 *   when every value is identical; Content-Length with Transfer-Encoding is rejected;
 *   Transfer-Encoding in an HTTP/1.0 message is rejected. Transfer-Encoding must be exactly
 *   "chunked" (empty list elements aside): "gzip, chunked" and other codings we do not implement
 *   are 501 in a request, a chunked that is not the final coding is 400 (responses get the same
 *   framing checks: no read-until-close fallback for an odd Transfer-Encoding). Chunk sizes: 1*HEXDIG
 *   up to 2^60; chunk extensions are skipped unread but bounded (max_chunk_ext), CTLs in them
 *   rejected. Leading empty lines before a request/status line are skipped (RFC 9112 §2.2).
 *   A status line without the space after the code ("HTTP/1.1 200\r\n") is accepted.
 *
 * ---- How the server uses it -----------------------------------------------------------------------
 *
 *   1. On a fresh cleartext connection, rill_h1_preface_classify() on the first bytes: YES ->
 *      HTTP/2 prior knowledge; PARTIAL -> read more; NO -> HTTP/1.1; INVALID -> GOAWAY
 *      PROTOCOL_ERROR and close (TLS: pick by ALPN instead).
 *   2. p = rill_h1_parser_new(RILL_H1_REQUEST, NULL). For each read: loop rill_h1_parse.
 *      On error: rill_h1_write_error_response(.., rill_h1_parser_error(p)) (the status of
 *      rill_h1_error_status, with "Connection: close"), send it, close.
 *   3. On HEAD: if expect_continue, send RILL_H1_CONTINUE_RESPONSE before reading the body.
 *      rill_h1_h2c_upgrade() (cleartext only) -> at END send RILL_H1_H2C_SWITCHING_RESPONSE, then
 *      run HTTP/2 with the request as stream 1 and the decoded SETTINGS as the client's settings
 *      (the bytes after END are the client's HTTP/2 preface);
 *      rill_h1_websocket_upgrade() -> 101 with rill_h1_websocket_accept(), or 400/426.
 *      Otherwise serve the request; answer with rill_h1_write_response_head() and chunk helpers.
 *   4. After END: if !head->keep_alive close after the response, else keep parsing (pipelining).
 *   Notes: for an absolute-form target the authority comes from the target, not Host (RFC 9112
 *   §3.2.2). Trailer fields are reported as received: never merge them into the head's framing
 *   or routing fields.
 *
 * The client sets rill_h1_set_request_method() before each response so HEAD / CONNECT answers are
 * framed correctly, parses with RILL_H1_RESPONSE, and calls rill_h1_parse_eof() when the peer
 * closes (that ends a read-until-close body).
 *
 * Parsers are not thread-safe; use one per connection. */
#ifndef RILL_H1_H
#define RILL_H1_H

#include <stdbool.h>

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors: why a message was rejected ---------------------------------------------------------
 * rill_h1_parse returns a RILL_ERR_* code (PROTOCOL for 400-class shapes, LIMIT for 414/431,
 * TOO_BIG for 413, UNSUPPORTED for 501/505); rill_h1_parser_error() gives the precise reason. */
typedef enum rill_h1_error {
    RILL_H1_E_NONE = 0,
    RILL_H1_E_BAD_START_LINE,       /* request/status line shape (spaces, missing parts)      400 */
    RILL_H1_E_BAD_METHOD,           /* method is not a token                                  400 */
    RILL_H1_E_BAD_TARGET,           /* target chars or form, or form not allowed for method   400 */
    RILL_H1_E_BAD_VERSION,          /* not "HTTP/" DIGIT "." DIGIT                             400 */
    RILL_H1_E_VERSION_UNSUPPORTED,  /* major version other than 1                             505 */
    RILL_H1_E_BAD_STATUS,           /* status code not 3 digits in 100..599 (responses)       400 */
    RILL_H1_E_BARE_LF,              /* a line ended in LF without CR                          400 */
    RILL_H1_E_BARE_CR,              /* a CR not followed by LF                                400 */
    RILL_H1_E_OBS_FOLD,             /* a field line starting with SP or HTAB                  400 */
    RILL_H1_E_BAD_FIELD_NAME,       /* empty name or a non-token character in it              400 */
    RILL_H1_E_SPACE_BEFORE_COLON,   /* whitespace between field name and ':'                  400 */
    RILL_H1_E_BAD_FIELD_VALUE,      /* CTL (other than HTAB), NUL or DEL in a value           400 */
    RILL_H1_E_MISSING_HOST,         /* HTTP/1.1 request without Host                          400 */
    RILL_H1_E_MULTIPLE_HOST,        /* more than one Host field line                          400 */
    RILL_H1_E_BAD_HOST,             /* Host value is not a valid authority                    400 */
    RILL_H1_E_BAD_CONTENT_LENGTH,   /* not 1*DIGIT, empty, or over 2^63-1                     400 */
    RILL_H1_E_CONFLICTING_LENGTH,   /* Content-Length values differ                           400 */
    RILL_H1_E_LENGTH_AND_CHUNKED,   /* both Content-Length and Transfer-Encoding              400 */
    RILL_H1_E_BAD_TRANSFER_ENCODING,/* chunked not final, repeated, with parameters, or in 1.0 400 */
    RILL_H1_E_UNKNOWN_CODING,       /* a transfer coding other than chunked                   501 */
    RILL_H1_E_BAD_CHUNK_SIZE,       /* chunk size not hex, missing, or its line malformed     400 */
    RILL_H1_E_CHUNK_TOO_BIG,        /* chunk size overflows (more than 2^60)                  400 */
    RILL_H1_E_BAD_CHUNK_END,        /* chunk data not followed by CRLF                        400 */
    RILL_H1_E_CHUNK_EXT_TOO_LONG,   /* chunk extensions longer than max_chunk_ext             400 */
    RILL_H1_E_BAD_CHUNK_EXT,        /* a control character in a chunk extension               400 */
    RILL_H1_E_URI_TOO_LONG,         /* request line longer than max_request_line              414 */
    RILL_H1_E_HEAD_TOO_LARGE,       /* head larger than max_head_size                         431 */
    RILL_H1_E_TOO_MANY_FIELDS,      /* more than max_fields field lines                       431 */
    RILL_H1_E_TRAILERS_TOO_LARGE,   /* trailers over max_trailer_size / max_trailer_fields    431 */
    RILL_H1_E_BODY_TOO_LARGE,       /* body over max_body                                     413 */
    RILL_H1_E_INCOMPLETE,           /* the peer closed in the middle of a message             400 */
} rill_h1_error;

/* The HTTP status a server should answer for this error (400, 413, 414, 431, 501 or 505);
 * 0 for RILL_H1_E_NONE. */
RILL_API int rill_h1_error_status(rill_h1_error err);
/* A static, short English description; never NULL. */
RILL_API const char *rill_h1_error_text(rill_h1_error err);

/* ---- parser ------------------------------------------------------------------------------------ */

/* What the parser reads, named by message rather than by side; the values follow the library's
 * role order (server side first, see rill_h2_role / rill_ws_role). */
typedef enum rill_h1_role {
    RILL_H1_REQUEST = 0,  /* the server side: parse requests */
    RILL_H1_RESPONSE = 1, /* the client side: parse responses */
} rill_h1_role;

/* Parser options (limits); fill with rill_h1_options_init, then change what you need. */
typedef struct rill_h1_options {
    size_t size;                 /* sizeof(rill_h1_options), set by rill_h1_options_init */
    uint32_t max_request_line;   /* request/status line bytes without CRLF; request: 414 (8192) */
    uint32_t max_head_size;      /* start line + fields incl. CRLFs; 431 (16384) */
    uint32_t max_fields;         /* field lines in a head; 431 (100) */
    uint32_t max_trailer_size;   /* trailer section bytes; 431 (4096) */
    uint32_t max_trailer_fields; /* trailer field lines; 431 (32) */
    uint32_t max_chunk_ext;      /* bytes after a chunk size before its CRLF; 400 (1024) */
    uint64_t max_body;           /* decoded body bytes; 413; 0 = unlimited (0) */
} rill_h1_options;

/* Fills *opt with the defaults shown above (and opt->size). */
RILL_API void rill_h1_options_init(rill_h1_options *opt);

/* Fields are rill_header (rill/common.h), as in HTTP/2: a parsed field's name is as received (case
 * preserved), its value without leading/trailing OWS, neither NUL-terminated, flags 0. Fields
 * given to the serialiser are written as they are (flags ignored). */

/* Deprecated: the old name of rill_header in this module; will be removed. */
typedef rill_header rill_h1_field;

typedef enum rill_h1_target_form {
    RILL_H1_TARGET_ORIGIN = 0, /* "/path?query" */
    RILL_H1_TARGET_ABSOLUTE,   /* "http://host/path" */
    RILL_H1_TARGET_AUTHORITY,  /* "host:port" (CONNECT) */
    RILL_H1_TARGET_ASTERISK,   /* "*" (OPTIONS) */
} rill_h1_target_form;

typedef enum rill_h1_body {
    RILL_H1_BODY_NONE = 0,    /* no body: END follows HEAD */
    RILL_H1_BODY_LENGTH,      /* content_length bytes (> 0) */
    RILL_H1_BODY_CHUNKED,     /* chunked; may end with TRAILERS */
    RILL_H1_BODY_UNTIL_CLOSE, /* responses only: until rill_h1_parse_eof() */
} rill_h1_body;

/* A parsed head. Every pointer refers to the parser's head buffer (see "Head storage"). */
typedef struct rill_h1_head {
    /* requests */
    const char *method;
    size_t method_len;
    const char *target;
    size_t target_len;
    rill_h1_target_form target_form;
    const char *host; /* the Host value (NULL if absent) */
    size_t host_len;
    /* responses */
    int status;
    const char *reason;
    size_t reason_len;
    /* both */
    int version_minor; /* the d of HTTP/1.d; anything >= 1 gets HTTP/1.1 semantics */
    const rill_header *fields;
    size_t nfields;
    rill_h1_body body;
    uint64_t content_length; /* meaningful when body == RILL_H1_BODY_LENGTH */
    bool keep_alive;         /* persistence after this message (version + Connection) */
    bool expect_continue;    /* HTTP/1.1 request has "Expect: 100-continue" */
    bool expect_other;       /* request has another expectation (server may answer 417) */
    bool connection_upgrade; /* Connection lists "upgrade" */
    bool upgrade;            /* an Upgrade field is present */
} rill_h1_head;

typedef enum rill_h1_event_type {
    RILL_H1_EV_NONE = 0, /* everything absorbed; feed more bytes */
    RILL_H1_EV_HEAD,
    RILL_H1_EV_BODY,
    RILL_H1_EV_TRAILERS,
    RILL_H1_EV_END,
} rill_h1_event_type;

typedef struct rill_h1_event {
    rill_h1_event_type type;
    const rill_h1_head *head;     /* HEAD (also set on END; same lifetime as the head) */
    const uint8_t *data;          /* BODY: points into the caller's data */
    size_t len;                   /* BODY */
    const rill_header *fields;    /* TRAILERS */
    size_t nfields;               /* TRAILERS */
    bool upgraded;                /* END: the connection now speaks another protocol */
} rill_h1_event;

typedef struct rill_h1_parser rill_h1_parser;

/* A parser for `role`, with opt (copied; NULL = defaults). Allocates its head buffer and field
 * array once, here. Returns NULL when out of memory, if opt->size is invalid (see "Public API
 * conventions" in docs/ARCHITECTURE.md) or if a limit is 0 (max_body excepted).
 * Free with rill_h1_parser_free. */
RILL_API rill_h1_parser *rill_h1_parser_new(rill_h1_role role, const rill_h1_options *opt);
RILL_API void rill_h1_parser_free(rill_h1_parser *p);

/* Back to "expecting a start line", clearing any error or upgraded state. */
RILL_API void rill_h1_parser_reset(rill_h1_parser *p);

/* Consume bytes from data[0..len) (caller-owned; only BODY events point into it) and report the
 * next event in *ev; *used says how many bytes were consumed (possibly 0, e.g. when END or a
 * TRAILERS event is reported). Returns RILL_OK, or on a malformed or over-limit message a negative
 * code (see rill_h1_error): the error is sticky, the connection must be closed. After an upgraded
 * END, returns RILL_ERR_STATE without consuming. len == 0 is allowed (drains pending events). */
RILL_API int rill_h1_parse(rill_h1_parser *p, const uint8_t *data, size_t len, size_t *used,
                           rill_h1_event *ev);

/* The peer closed the stream. Ends a read-until-close body (ev END, returns RILL_OK); between
 * messages returns RILL_OK with ev NONE; in the middle of a message returns RILL_ERR_PROTOCOL
 * with rill_h1_parser_error() == RILL_H1_E_INCOMPLETE. */
RILL_API int rill_h1_parse_eof(rill_h1_parser *p, rill_h1_event *ev);

/* True between messages: nothing of a next message has been consumed (bytes of a head, or a body
 * still to come, are held only inside the parser, so a caller that frees it must ask first). */
RILL_API bool rill_h1_parser_idle(const rill_h1_parser *p);

/* Body bytes still to come in a Content-Length body being parsed; 0 otherwise (chunked, until
 * close, between messages). What the peer is bound to send (for rill_io_conn_expect_bytes). */
RILL_API uint64_t rill_h1_parser_body_left(const rill_h1_parser *p);

/* What has arrived of the current message's start line (without its line end), e.g. to log a
 * refused request; points into the parser, valid until its next call. Empty between messages. */
RILL_API const char *rill_h1_parser_start_line(const rill_h1_parser *p, size_t *len);

/* The reason for the last error returned by rill_h1_parse / _parse_eof (RILL_H1_E_NONE if none). */
RILL_API rill_h1_error rill_h1_parser_error(const rill_h1_parser *p);

/* Client side: the method of the request the next response answers (copied; default GET).
 * Decides HEAD (no body) and CONNECT (2xx = tunnel) framing; persists across 1xx responses and
 * until changed. */
RILL_API void rill_h1_set_request_method(rill_h1_parser *p, const char *method, size_t len);

/* ---- field helpers ------------------------------------------------------------------------------ */

/* Case-insensitive (ASCII) equality of a[0..alen) and the NUL-terminated lit. */
RILL_API bool rill_h1_name_eq(const char *a, size_t alen, const char *lit);

/* Whether the comma-separated list value[0..len) has an element equal (case-insensitively) to
 * token; OWS around elements and empty elements are ignored. An element with parameters
 * ("token;x=y") does not match. */
RILL_API bool rill_h1_list_has_token(const char *value, size_t len, const char *token);

/* The first field named `name` (case-insensitive) at or after index *pos in fields[0..n); on a hit
 * sets *pos to its index + 1 (so repeated calls walk every occurrence) and returns it; else NULL. */
RILL_API const rill_header *rill_h1_find_field(const rill_header *fields, size_t n,
                                               const char *name, size_t *pos);

/* Whether any field named `name` lists `token` (rill_h1_list_has_token over every occurrence). */
RILL_API bool rill_h1_head_has_token(const rill_h1_head *head, const char *name, const char *token);

/* Whether field f of head is connection-specific and must not be carried into HTTP/2 (RFC 9113
 * §8.2.2, for turning an h2c upgrade request into stream 1): Connection, Keep-Alive,
 * Proxy-Connection, Transfer-Encoding, Upgrade, HTTP2-Settings, any field the Connection field
 * names, and TE unless its value is exactly "trailers". */
RILL_API bool rill_h1_is_connection_specific(const rill_h1_head *head, const rill_header *f);

/* ---- server helpers: choosing the protocol ------------------------------------------------------ */

#define RILL_H1_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define RILL_H1_H2_PREFACE_LEN 24u

typedef enum rill_h1_preface {
    RILL_H1_PREFACE_NO = 0,  /* definitely not the HTTP/2 client preface */
    RILL_H1_PREFACE_PARTIAL, /* a strict prefix of it so far (or empty): read more */
    RILL_H1_PREFACE_YES,     /* data starts with the whole 24-byte preface */
    RILL_H1_PREFACE_INVALID, /* rill_h1_preface_classify only: not an HTTP/1.x request either */
} rill_h1_preface;

/* Classifies the first bytes of a fresh connection. */
RILL_API rill_h1_preface rill_h1_preface_check(const uint8_t *data, size_t len);

/* The verdict for a cleartext port serving both versions (RFC 9113 §3.4): YES for the HTTP/2
 * preface; NO for an HTTP/1.x request, whose first line (after any empty lines) is a token, a
 * space, and ends in " HTTP/" DIGIT "." DIGIT (not the preface's own "PRI * HTTP/2.0"); INVALID
 * for anything else, to be answered with GOAWAY PROTOCOL_ERROR and a close; PARTIAL until the
 * bytes decide. A start that is not a token then a space is INVALID at once; otherwise the verdict
 * waits for the first line to end, so a caller holding the bytes should stop at its request-line
 * limit and hand them to HTTP/1.1 (which answers 414). */
RILL_API rill_h1_preface rill_h1_preface_classify(const uint8_t *data, size_t len);

/* An HTTP/1.1 request asking for h2c (RFC 7540 §3.2, kept as legacy by RFC 9113 §3.1): Upgrade
 * lists "h2c", Connection lists "upgrade" and "http2-settings", exactly one HTTP2-Settings field
 * whose value is base64url (padding optional) of a SETTINGS payload (a multiple of 6 bytes).
 * Returns 1 and writes the decoded payload to out[0..cap) (*out_len) when all holds; 0 when the
 * request is not a valid h2c upgrade (serve it as plain HTTP/1.1); RILL_ERR_BUFFER_TOO_SMALL if
 * cap is too small (len*3/4 of the field value always suffices). The server must still only
 * accept it on cleartext connections. */
RILL_API int rill_h1_h2c_upgrade(const rill_h1_head *head, uint8_t *out, size_t cap,
                                 size_t *out_len);

/* WebSocket opening handshake (RFC 6455 §4.2.1). Spans point into the head's storage. */
typedef struct rill_h1_ws_upgrade {
    const char *key; /* Sec-WebSocket-Key (24 base64 chars = 16 bytes) */
    size_t key_len;
    const char *protocols; /* first Sec-WebSocket-Protocol value, NULL if absent */
    size_t protocols_len;
    const char *extensions; /* first Sec-WebSocket-Extensions value, NULL if absent */
    size_t extensions_len;
} rill_h1_ws_upgrade;

/* Returns 1 for a valid WebSocket upgrade (GET, HTTP/1.1, Upgrade lists "websocket", Connection
 * lists "upgrade", one valid Sec-WebSocket-Key, Sec-WebSocket-Version 13), filling *out;
 * 0 when the request does not ask for WebSocket at all; RILL_ERR_PROTOCOL when it asks but is
 * malformed (answer 400); RILL_ERR_UNSUPPORTED when the version is not 13 (answer 426 with
 * "Sec-WebSocket-Version: 13"). */
RILL_API int rill_h1_websocket_upgrade(const rill_h1_head *head, rill_h1_ws_upgrade *out);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), 28 chars plus a NUL written to out.
 * key_len is at most 64 (else RILL_ERR_INVALID_ARG). */
RILL_API int rill_h1_websocket_accept(const char *key, size_t key_len, char out[29]);

/* Client side: whether a parsed response accepts the WebSocket handshake we opened with key
 * (RFC 6455 §4.1): status 101, Upgrade lists "websocket", Connection lists "upgrade", and exactly
 * one Sec-WebSocket-Accept equal to rill_h1_websocket_accept(key). */
RILL_API bool rill_h1_websocket_response_ok(const rill_h1_head *head, const char *key,
                                            size_t key_len);

/* Fixed answers a server writes as they are. */
#define RILL_H1_CONTINUE_RESPONSE "HTTP/1.1 100 Continue\r\n\r\n"
#define RILL_H1_H2C_SWITCHING_RESPONSE \
    "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

/* ---- serialiser: into caller buffers, no allocation ---------------------------------------------
 * Each writes into out[0..cap) and sets *out_len; RILL_ERR_BUFFER_TOO_SMALL when it does not fit
 * (nothing meaningful written), RILL_ERR_INVALID_ARG when a name is not a token or a value holds
 * CR, LF, NUL or another CTL (this refuses header injection). */

/* The standard reason phrase for a status ("OK", "Not Found"; "" if unknown). Static storage. */
RILL_API const char *rill_h1_reason_phrase(int status);

/* "HTTP/1.1 <status> <reason>\r\n" + fields + "\r\n". reason NULL = the standard phrase. The
 * caller supplies framing fields (Content-Length or Transfer-Encoding: chunked, Connection). */
RILL_API int rill_h1_write_response_head(uint8_t *out, size_t cap, size_t *out_len, int status,
                                         const char *reason, const rill_header *fields,
                                         size_t nfields);

/* "<method> <target> HTTP/1.1\r\n" + fields + "\r\n". The caller includes Host. */
RILL_API int rill_h1_write_request_head(uint8_t *out, size_t cap, size_t *out_len,
                                        const char *method, size_t method_len, const char *target,
                                        size_t target_len, const rill_header *fields,
                                        size_t nfields);

/* The answer to a rejected message: "HTTP/1.1 <rill_h1_error_status(err)> <reason>" with
 * "Content-Length: 0" and "Connection: close" (the connection must be closed after it).
 * RILL_ERR_INVALID_ARG for RILL_H1_E_NONE. 128 bytes always suffice. */
RILL_API int rill_h1_write_error_response(uint8_t *out, size_t cap, size_t *out_len,
                                          rill_h1_error err);

/* A chunk header "<hex size>\r\n" (size > 0; the data and then RILL_H1_CHUNK_END follow). At most
 * RILL_H1_CHUNK_HEADER_MAX bytes. */
#define RILL_H1_CHUNK_HEADER_MAX 18u
#define RILL_H1_CHUNK_END "\r\n"
RILL_API int rill_h1_write_chunk_header(uint8_t *out, size_t cap, size_t *out_len, uint64_t size);

/* The last chunk "0\r\n", the trailer fields, and the final "\r\n". */
RILL_API int rill_h1_write_last_chunk(uint8_t *out, size_t cap, size_t *out_len,
                                      const rill_header *trailers, size_t ntrailers);

#ifdef __cplusplus
}
#endif
#endif
