#include "rill/common.h"

const char *rill_strerror(int err)
{
    switch (err) {
    case RILL_OK: return "success";
    case RILL_ERR_NOMEM: return "out of memory";
    case RILL_ERR_INVALID_ARG: return "invalid argument";
    case RILL_ERR_PROTOCOL: return "protocol error";
    case RILL_ERR_COMPRESSION: return "header compression error";
    case RILL_ERR_HEADER_LIST_TOO_LARGE: return "header list too large";
    case RILL_ERR_FLOW_CONTROL: return "flow-control error";
    case RILL_ERR_FRAME_SIZE: return "frame size error";
    case RILL_ERR_STREAM_CLOSED: return "stream closed";
    case RILL_ERR_STATE: return "invalid state for this call";
    case RILL_ERR_WOULD_BLOCK: return "operation would block";
    case RILL_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case RILL_ERR_LIMIT: return "resource limit reached";
    case RILL_ERR_IO: return "I/O error";
    case RILL_ERR_TLS: return "TLS error";
    case RILL_ERR_EOF: return "connection closed by peer";
    case RILL_ERR_NOT_FOUND: return "not found";
    case RILL_ERR_TIMEOUT: return "timed out";
    case RILL_ERR_UTF8: return "invalid UTF-8";
    case RILL_ERR_TOO_BIG: return "message too big";
    case RILL_ERR_REFUSED: return "refused";
    case RILL_ERR_UNSUPPORTED: return "unsupported";
    case RILL_ERR_CANCELLED: return "cancelled";
    }
    return "unknown error";
}

const char *rill_version(void)
{
    return RILL_VERSION_STRING;
}
