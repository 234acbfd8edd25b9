/* HTTP/1.1 parse errors: the status a server answers, the library code, a description. */
#include "h1/h1_internal.h"

int rill_h1_error_status(rill_h1_error err)
{
    switch (err) {
    case RILL_H1_E_NONE: return 0;
    case RILL_H1_E_VERSION_UNSUPPORTED: return 505;
    case RILL_H1_E_UNKNOWN_CODING: return 501;
    case RILL_H1_E_URI_TOO_LONG: return 414;
    case RILL_H1_E_HEAD_TOO_LARGE:
    case RILL_H1_E_TOO_MANY_FIELDS:
    case RILL_H1_E_TRAILERS_TOO_LARGE: return 431;
    case RILL_H1_E_BODY_TOO_LARGE: return 413;
    default: return 400;
    }
}

int rill_h1_error_code(rill_h1_error err)
{
    switch (rill_h1_error_status(err)) {
    case 0: return RILL_OK;
    case 505:
    case 501: return RILL_ERR_UNSUPPORTED;
    case 414:
    case 431: return RILL_ERR_LIMIT;
    case 413: return RILL_ERR_TOO_BIG;
    default: return RILL_ERR_PROTOCOL;
    }
}

const char *rill_h1_error_text(rill_h1_error err)
{
    switch (err) {
    case RILL_H1_E_NONE: return "no error";
    case RILL_H1_E_BAD_START_LINE: return "malformed start line";
    case RILL_H1_E_BAD_METHOD: return "method is not a token";
    case RILL_H1_E_BAD_TARGET: return "invalid request target";
    case RILL_H1_E_BAD_VERSION: return "malformed HTTP version";
    case RILL_H1_E_VERSION_UNSUPPORTED: return "HTTP version not supported";
    case RILL_H1_E_BAD_STATUS: return "invalid status code";
    case RILL_H1_E_BARE_LF: return "line ends in LF without CR";
    case RILL_H1_E_BARE_CR: return "CR not followed by LF";
    case RILL_H1_E_OBS_FOLD: return "obsolete line folding";
    case RILL_H1_E_BAD_FIELD_NAME: return "invalid field name";
    case RILL_H1_E_SPACE_BEFORE_COLON: return "whitespace between field name and colon";
    case RILL_H1_E_BAD_FIELD_VALUE: return "invalid character in field value";
    case RILL_H1_E_MISSING_HOST: return "HTTP/1.1 request without Host";
    case RILL_H1_E_MULTIPLE_HOST: return "more than one Host";
    case RILL_H1_E_BAD_HOST: return "invalid Host";
    case RILL_H1_E_BAD_CONTENT_LENGTH: return "invalid Content-Length";
    case RILL_H1_E_CONFLICTING_LENGTH: return "conflicting Content-Length values";
    case RILL_H1_E_LENGTH_AND_CHUNKED: return "both Content-Length and Transfer-Encoding";
    case RILL_H1_E_BAD_TRANSFER_ENCODING: return "invalid Transfer-Encoding";
    case RILL_H1_E_UNKNOWN_CODING: return "transfer coding not implemented";
    case RILL_H1_E_BAD_CHUNK_SIZE: return "invalid chunk size line";
    case RILL_H1_E_CHUNK_TOO_BIG: return "chunk size too large";
    case RILL_H1_E_BAD_CHUNK_END: return "chunk data not followed by CRLF";
    case RILL_H1_E_CHUNK_EXT_TOO_LONG: return "chunk extension too long";
    case RILL_H1_E_BAD_CHUNK_EXT: return "invalid character in chunk extension";
    case RILL_H1_E_URI_TOO_LONG: return "request line too long";
    case RILL_H1_E_HEAD_TOO_LARGE: return "header section too large";
    case RILL_H1_E_TOO_MANY_FIELDS: return "too many header fields";
    case RILL_H1_E_TRAILERS_TOO_LARGE: return "trailer section too large";
    case RILL_H1_E_BODY_TOO_LARGE: return "body too large";
    case RILL_H1_E_INCOMPLETE: return "connection closed mid-message";
    }
    return "unknown HTTP/1.1 error";
}
