#include <string.h>

#include "server/demo_assets.h"

const struct rill_demo_asset *rill_demo_asset_find(const char *path, size_t len)
{
    const char *q = memchr(path, '?', len);
    if (q)
        len = (size_t)(q - path);
    if (len == 0 || path[0] != '/')
        return NULL;
    const char *name = path + 1;
    size_t name_len = len - 1;
    if (name_len == 0) {
        name = "index.html";
        name_len = 10;
    }
    for (const struct rill_demo_asset *a = rill_demo_assets; a->name; a++)
        if (strlen(a->name) == name_len && memcmp(a->name, name, name_len) == 0)
            return a;
    return NULL;
}
