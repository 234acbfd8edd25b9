/* rill HPACK (RFC 7541): header compression for HTTP/2, sans-I/O.
 *
 * Ownership: the caller owns every buffer it passes in and every context it creates (free with the
 * matching *_free). Header name/value pointers handed to a decode callback point into the input
 * block or the decoder's own storage and are valid only until the callback returns; copy them to
 * keep them. Contexts are not thread-safe; use one per connection direction. */
#ifndef RILL_HPACK_H
#define RILL_HPACK_H

#include <stdbool.h>

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Header fields are rill_header (rill/common.h), the type every module uses for a field. */

#define RILL_HPACK_DEFAULT_TABLE_SIZE 4096u

/* ---- decoder ---------------------------------------------------------------------------------- */

typedef struct rill_hpack_decoder rill_hpack_decoder;

/* Called once per decoded field, in order. Return 0 to go on; a non-zero return stops decoding and
 * is returned by rill_hpack_decode_block (use a negative RILL_ERR_* code). */
typedef int (*rill_hpack_field_cb)(const rill_header *field, void *user);

/* A decoder whose dynamic table may grow to max_table_size (our SETTINGS_HEADER_TABLE_SIZE).
 * Returns NULL when out of memory. The table memory is taken lazily, on first insertion. */
RILL_API rill_hpack_decoder *rill_hpack_decoder_new(uint32_t max_table_size);
RILL_API void rill_hpack_decoder_free(rill_hpack_decoder *dec);

/* Our SETTINGS_HEADER_TABLE_SIZE changed and was acknowledged by the peer. If it shrank below
 * the size the peer last used, the next block must start with a dynamic table size update at or
 * below it, else that block fails with RILL_ERR_COMPRESSION. */
RILL_API void rill_hpack_decoder_set_max_table_size(rill_hpack_decoder *dec, uint32_t max_table_size);

/* For HTTP/2: every field the decoder already knows to be a valid HTTP/2 field (RFC 9113 §8.2.1,
 * as RILL_HEADER_VALID describes it) carries RILL_HEADER_VALID: the static table's, and those
 * from a dynamic entry, checked once when it was inserted. Off by default. */
RILL_API void rill_hpack_decoder_mark_valid_fields(rill_hpack_decoder *dec, bool on);

/* Limit on the decoded header list: sum of name + value + 32 per field (SETTINGS_MAX_HEADER_LIST_SIZE).
 * 0 means unlimited. */
RILL_API void rill_hpack_decoder_set_max_header_list_size(rill_hpack_decoder *dec, uint32_t limit);

/* Decode one complete header block (a HEADERS/PUSH_PROMISE fragment plus its CONTINUATIONs,
 * concatenated). Returns:
 *   RILL_OK
 *   RILL_ERR_COMPRESSION           malformed input; the context is unusable (connection error)
 *   RILL_ERR_HEADER_LIST_TOO_LARGE the list exceeded the limit: the whole block was still decoded
 *                                  so the dynamic table stays in sync, but fields past the limit
 *                                  were not delivered (answer 431 or RST_STREAM, keep the connection)
 *   RILL_ERR_NOMEM                 out of memory; the context is unusable
 *   the callback's non-zero return */
RILL_API int rill_hpack_decode_block(rill_hpack_decoder *dec, const uint8_t *block, size_t len,
                                     rill_hpack_field_cb cb, void *user);

/* Current dynamic table size in HPACK octets (entries' name + value + 32). */
RILL_API size_t rill_hpack_decoder_table_size(const rill_hpack_decoder *dec);

/* ---- encoder ---------------------------------------------------------------------------------- */

typedef struct rill_hpack_encoder rill_hpack_encoder;

/* An encoder whose dynamic table will use at most max_table_size octets (a local cap, applied on
 * top of the peer's SETTINGS_HEADER_TABLE_SIZE). Returns NULL when out of memory. Until
 * rill_hpack_encoder_set_peer_max_table_size() is called the peer's setting is taken to be the
 * protocol default, 4096, so the table starts at min(max_table_size, 4096) with no update sent. */
RILL_API rill_hpack_encoder *rill_hpack_encoder_new(uint32_t max_table_size);
RILL_API void rill_hpack_encoder_free(rill_hpack_encoder *enc);
/* Gives back the encoder's 2 KiB of learning (which names' values repeat, to keep one-off values
 * out of the table) while a connection is idle; the table itself stays, and the learning starts
 * again with the next block. */
RILL_API void rill_hpack_encoder_trim(rill_hpack_encoder *enc);

/* Where the learning's memory comes from: get(size, ctx) and put(p, size, ctx) with the same size
 * (an HTTP/2 engine passes its output pool, so a burst's learning goes back to the pool instead of
 * into holes between connections' allocations). get NULL (the default): malloc and free. The
 * functions and ctx are referenced and must outlive the encoder. Set before the first block. */
RILL_API void rill_hpack_encoder_set_pool(rill_hpack_encoder *enc, void *(*get)(size_t size, void *ctx),
                                          void (*put)(void *p, size_t size, void *ctx), void *ctx);

/* The peer's SETTINGS_HEADER_TABLE_SIZE. The next encoded block starts with the needed dynamic
 * table size update(s). */
RILL_API void rill_hpack_encoder_set_peer_max_table_size(rill_hpack_encoder *enc, uint32_t size);

/* An upper bound of the encoded size of these fields (for sizing the output buffer); SIZE_MAX when
 * a name or value is over 1 GiB (rill_hpack_encode refuses those). */
RILL_API size_t rill_hpack_encode_bound(const rill_hpack_encoder *enc, const rill_header *fields,
                                        size_t count);

/* Encode one header block into out[0..cap). On success *out_len is set and RILL_OK returned.
 * RILL_ERR_BUFFER_TOO_SMALL leaves the encoder state unchanged so the call can be repeated
 * with a larger buffer (a cap below rill_hpack_encode_bound() is tried against a copy of the
 * state, which may fail with RILL_ERR_NOMEM). RILL_ERR_INVALID_ARG: a name or value over 1 GiB.
 * Names must already be lowercase (HTTP/2 rule); the encoder does not validate field syntax. */
RILL_API int rill_hpack_encode(rill_hpack_encoder *enc, const rill_header *fields, size_t count,
                               uint8_t *out, size_t cap, size_t *out_len);

/* Encoder flags (rill_hpack_encoder_set_flags; "options" names the options structs of other
 * modules, and HPACK contexts need none: a table size is all they take). The default, 0, is the adaptive policy: index
 * fields whose values tend to repeat; keep one-off values out of the table (:path with a query;
 * content-length, date, etag, last-modified, if-*... until their values are seen to repeat, as
 * date does within a burst of responses; any name once its values prove to be one-offs); send
 * sensitive fields (authorization, proxy-authorization, set-cookie, cookies under 20 bytes, and
 * RILL_HEADER_NEVER_INDEX) never indexed; Huffman-code a string only when that makes it shorter. */
#define RILL_HPACK_ENC_INDEX_ALL 0x01u      /* index every field whose flags allow it, no policy */
#define RILL_HPACK_ENC_HUFFMAN_NEVER 0x02u  /* send every string as is */
#define RILL_HPACK_ENC_HUFFMAN_ALWAYS 0x04u /* Huffman-code every string */
RILL_API void rill_hpack_encoder_set_flags(rill_hpack_encoder *enc, uint32_t flags);

/* Current dynamic table size of the encoder in HPACK octets. */
RILL_API size_t rill_hpack_encoder_table_size(const rill_hpack_encoder *enc);

#ifdef __cplusplus
}
#endif
#endif
