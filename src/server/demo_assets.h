/* The built-in demo site, compiled into the library from src/server/demo/. */
#ifndef RILL_SERVER_DEMO_ASSETS_H
#define RILL_SERVER_DEMO_ASSETS_H

#include <stddef.h>

struct rill_demo_asset {
    const char *name; /* file name, e.g. "index.html"; NULL ends the table */
    const unsigned char *data;
    size_t size;
};

extern const struct rill_demo_asset rill_demo_assets[];

/* The asset for a request path ("/" means index.html); NULL when there is none. */
const struct rill_demo_asset *rill_demo_asset_find(const char *path, size_t len);

#endif
