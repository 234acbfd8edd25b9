/* Frame-level helpers: frame headers, SETTINGS payloads, error code names. */
#include "h2/h2_internal.h"

const char *rill_h2_error_name(uint32_t code)
{
    static const char *const names[] = {
        "NO_ERROR",          "PROTOCOL_ERROR",     "INTERNAL_ERROR",    "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",  "STREAM_CLOSED",      "FRAME_SIZE_ERROR",  "REFUSED_STREAM",
        "CANCEL",            "COMPRESSION_ERROR",  "CONNECT_ERROR",     "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED",
    };
    return code < sizeof names / sizeof names[0] ? names[code] : "UNKNOWN";
}

void h2_frame_header(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, int32_t sid)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    h2_put32(p + 5, (uint32_t)sid & 0x7fffffffu);
}

/* The protocol's initial values (section 6.5.2), before any SETTINGS frame. */
const rill_h2_settings h2_protocol_settings = {
    .header_table_size = 4096,
    .enable_push = 1,
    .max_concurrent_streams = RILL_H2_UNLIMITED,
    .initial_window_size = RILL_H2_DEFAULT_WINDOW,
    .max_frame_size = RILL_H2_MIN_FRAME_SIZE,
    .max_header_list_size = RILL_H2_UNLIMITED,
    .enable_connect_protocol = 0,
    .no_rfc7540_priorities = 0,
};


uint32_t h2_settings_apply(rill_h2_settings *dst, const uint8_t *p, size_t len, bool from_server)
{
    if (len % 6 != 0)
        return RILL_H2_FRAME_SIZE_ERROR;
    /* Validate everything first so a bad frame changes nothing. */
    rill_h2_settings next = *dst;
    for (size_t i = 0; i < len; i += 6) {
        uint16_t id = (uint16_t)(p[i] << 8 | p[i + 1]);
        uint32_t v = h2_get32(p + i + 2);
        switch (id) {
        case RILL_H2_SETTINGS_HEADER_TABLE_SIZE: next.header_table_size = v; break;
        case RILL_H2_SETTINGS_ENABLE_PUSH:
            if (v > 1 || (from_server && v == 1))
                return RILL_H2_PROTOCOL_ERROR;
            next.enable_push = v;
            break;
        case RILL_H2_SETTINGS_MAX_CONCURRENT_STREAMS: next.max_concurrent_streams = v; break;
        case RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE:
            if (v > RILL_H2_MAX_WINDOW)
                return RILL_H2_FLOW_CONTROL_ERROR;
            next.initial_window_size = v;
            break;
        case RILL_H2_SETTINGS_MAX_FRAME_SIZE:
            if (v < RILL_H2_MIN_FRAME_SIZE || v > RILL_H2_MAX_FRAME_SIZE_LIMIT)
                return RILL_H2_PROTOCOL_ERROR;
            next.max_frame_size = v;
            break;
        case RILL_H2_SETTINGS_MAX_HEADER_LIST_SIZE: next.max_header_list_size = v; break;
        case RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL:
            /* RFC 8441 section 3: once 1, never back to 0. */
            if (v > 1 || (dst->enable_connect_protocol == 1 && v == 0))
                return RILL_H2_PROTOCOL_ERROR;
            next.enable_connect_protocol = v;
            break;
        case RILL_H2_SETTINGS_NO_RFC7540_PRIORITIES:
            if (v > 1)
                return RILL_H2_PROTOCOL_ERROR;
            next.no_rfc7540_priorities = v;
            break;
        default: break; /* unknown settings are ignored (section 6.5.2) */
        }
    }
    *dst = next;
    return 0;
}

static uint8_t *put_setting(uint8_t *out, uint16_t id, uint32_t v)
{
    out[0] = (uint8_t)(id >> 8);
    out[1] = (uint8_t)id;
    h2_put32(out + 2, v);
    return out + 6;
}

size_t h2_settings_write(const rill_h2_settings *now, const rill_h2_settings *base, uint8_t *out)
{
    /* Only values that differ from base (the protocol defaults for the first frame, or the last
     * announced values later); 8 settings at most = 48 bytes. */
    uint8_t *p = out;
#define SET(field, id)                                                                               \
    if (!base || now->field != base->field)                                                          \
        p = put_setting(p, id, now->field);
    SET(header_table_size, RILL_H2_SETTINGS_HEADER_TABLE_SIZE)
    SET(enable_push, RILL_H2_SETTINGS_ENABLE_PUSH)
    SET(max_concurrent_streams, RILL_H2_SETTINGS_MAX_CONCURRENT_STREAMS)
    SET(initial_window_size, RILL_H2_SETTINGS_INITIAL_WINDOW_SIZE)
    SET(max_frame_size, RILL_H2_SETTINGS_MAX_FRAME_SIZE)
    SET(max_header_list_size, RILL_H2_SETTINGS_MAX_HEADER_LIST_SIZE)
    SET(enable_connect_protocol, RILL_H2_SETTINGS_ENABLE_CONNECT_PROTOCOL)
    SET(no_rfc7540_priorities, RILL_H2_SETTINGS_NO_RFC7540_PRIORITIES)
#undef SET
    return (size_t)(p - out);
}
