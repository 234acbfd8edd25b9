/* Media types for static files, by file extension. */
#ifndef RILL_SERVER_MIME_H
#define RILL_SERVER_MIME_H

/* The Content-Type for a path (by its last extension, case-insensitive); static storage.
 * Unknown extensions get "application/octet-stream". */
const char *rill_mime_type(const char *path);

#endif
