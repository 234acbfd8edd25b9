/* What the library's own HTTP/2 engine uses of the encoder beyond rill/hpack.h. */
#ifndef RILL_HPACK_ENCODER_INTERNAL_H
#define RILL_HPACK_ENCODER_INTERNAL_H

#include <stddef.h>

#include "rill/hpack.h"

#include <stdbool.h>
#include <stdint.h>

/* rill_hpack_encode for a caller whose out has room for rill_hpack_encode_bound() of the same
 * fields (which must not be SIZE_MAX): no second bound pass, no slow path. Returns the length.
 * replay_tried: hpack_encode_replay said no for these fields just before (not asked again). */
size_t hpack_encode_within_bound(rill_hpack_encoder *enc, const rill_header *fields, size_t count, uint8_t *out,
                                 bool replay_tried);

/* When these fields encode to exactly the previous block's bytes (all indexed, table unchanged:
 * a server's responses to the same resource), those bytes and their length, with no bound to
 * compute and nothing in the encoder changed; they stay valid until the next encode. Else NULL. */
const uint8_t *hpack_encode_replay(const rill_hpack_encoder *enc, const rill_header *fields, size_t count,
                                   size_t *len);

#endif
