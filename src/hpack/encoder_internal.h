/* What the library's own HTTP/2 engine uses of the encoder beyond rill/hpack.h. */
#ifndef RILL_HPACK_ENCODER_INTERNAL_H
#define RILL_HPACK_ENCODER_INTERNAL_H

#include <stddef.h>

#include "rill/hpack.h"

/* rill_hpack_encode for a caller whose out has room for rill_hpack_encode_bound() of the same
 * fields (which must not be SIZE_MAX): no second bound pass, no slow path. Returns the length. */
size_t hpack_encode_within_bound(rill_hpack_encoder *enc, const rill_header *fields, size_t count, uint8_t *out);

#endif
