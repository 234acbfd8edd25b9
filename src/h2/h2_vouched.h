/* What the library's own server layer uses of the HTTP/2 engine beyond rill/h2.h. */
#ifndef RILL_H2_VOUCHED_H
#define RILL_H2_VOUCHED_H

#include <stddef.h>
#include <stdint.h>

#include "rill/h2.h"

/* rill_h2_submit_response for a caller that has checked the response itself, so the engine does
 * not walk the fields a second time: fields[0] is ":status" with the three digits of status
 * (100..999, not 101), and every other field is a response's regular field as
 * h2_message_valid would take it (RILL_HEADER_VALID bytes, lowercase token name, not a
 * pseudo-header, not connection-specific, no te, a content-length of digits). The server's
 * response API checks each field once as the application adds it (src/server/response.c). */
int h2_submit_response_vouched(rill_h2_session *s, int32_t stream_id, int status, const rill_header *fields,
                               size_t count, uint32_t flags, const uint64_t *token);

/* The response whose fields token names (token may be NULL above; see hpack/encoder_internal.h)
 * when it is the block this connection sent last and the HPACK table has not changed since: the
 * same bytes go out again, nothing built, encoded or compared. Returns 0 when sent, 1 when it
 * cannot be (send the fields then), or a negative RILL_ERR_* as h2_submit_response_vouched. */
int h2_submit_response_replay(rill_h2_session *s, int32_t stream_id, int status, const uint64_t token[2],
                              uint32_t flags);

#endif
