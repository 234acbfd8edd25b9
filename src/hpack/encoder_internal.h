/* What the library's own HTTP/2 engine uses of the encoder beyond rill/hpack.h. */
#ifndef RILL_HPACK_ENCODER_INTERNAL_H
#define RILL_HPACK_ENCODER_INTERNAL_H

#include <stddef.h>

#include "rill/hpack.h"

#include <stdbool.h>
#include <stdint.h>

/* A token names a list of fields for the encoder's caller: two lists given the same token (not
 * {0, 0}) are equal, name for name, value for value, flag for flag, in order. The server's static
 * files use {file cache entry serial, second of the Date field}. It lets a block that is the
 * previous one again go out without the fields being built or compared. NULL: no token. */

/* rill_hpack_encode for a caller whose out has room for rill_hpack_encode_bound() of the same
 * fields (which must not be SIZE_MAX): no second bound pass, no slow path. Returns the length.
 * replay_tried: hpack_encode_replay said no for these fields just before (not asked again).
 * token: names these fields (may be NULL). */
size_t hpack_encode_within_bound(rill_hpack_encoder *enc, const rill_header *fields, size_t count, uint8_t *out,
                                 bool replay_tried, const uint64_t *token);

/* When these fields encode to exactly the previous block's bytes (all indexed, table unchanged:
 * a server's responses to the same resource), those bytes and their length, with no bound to
 * compute and nothing in the encoder changed but the block's token (when token is not NULL);
 * they stay valid until the next encode. Else NULL. */
const uint8_t *hpack_encode_replay(rill_hpack_encoder *enc, const rill_header *fields, size_t count,
                                   const uint64_t *token, size_t *len);

/* The previous block's bytes when it was all indexed, was given this token, and the table has
 * not changed since (the fields named by the token encode to these bytes again). Else NULL.
 * Nothing in the encoder changes; the bytes stay valid until the next encode. */
const uint8_t *hpack_encode_replay_token(const rill_hpack_encoder *enc, const uint64_t token[2], size_t *len);

#endif
