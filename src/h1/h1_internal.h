/* Internal pieces of the HTTP/1.1 module shared between its files. */
#ifndef RILL_H1_INTERNAL_H
#define RILL_H1_INTERNAL_H

#include "rill/h1.h"

/* The RILL_ERR_* code rill_h1_parse returns for a parse error. */
int rill_h1_error_code(rill_h1_error err);

/* Decodes base64 (url = 0: "+/" alphabet; url = 1: "-_") with optional '=' padding into out.
 * Returns the decoded length, or -1 if the text is not canonical base64 or does not fit in cap. */
long rill_h1_base64_decode(const char *in, size_t len, int url, uint8_t *out, size_t cap);

#endif
