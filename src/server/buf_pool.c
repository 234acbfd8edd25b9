/* Per-thread pool of fixed-size buffers: the HTTP/2 engines' output buffers and segment rings,
 * and HTTP/1.1 file pieces. A few size classes, each a bounded free list, so a busy thread reuses
 * the same blocks instead of moving the heap top (brk and page faults on every malloc/free of
 * 64 KiB, which once held a 100 MiB HTTP/1.1 download to 0.4 GB/s). */
#include <stdbool.h>
#include <stdlib.h>

#include "server/server_internal.h"

#define BUF_POOL_CLASSES 6
#define BUF_POOL_MAX 64u /* buffers kept per class */

struct pool_class {
    size_t size;
    void *free;
    unsigned len;
};
static _Thread_local struct pool_class classes[BUF_POOL_CLASSES];

static struct pool_class *class_for(size_t size, bool add)
{
    for (int i = 0; i < BUF_POOL_CLASSES; i++) {
        if (classes[i].size == size)
            return &classes[i];
        if (classes[i].size == 0 && add) {
            classes[i].size = size;
            return &classes[i];
        }
    }
    return NULL;
}

void *buf_pool_get(size_t size)
{
    struct pool_class *c = class_for(size, false);
    if (c && c->free) {
        void *b = c->free;
        c->free = *(void **)b;
        c->len--;
        return b;
    }
    return malloc(size);
}

void buf_pool_put(void *buf, size_t size)
{
    struct pool_class *c = class_for(size, true);
    if (c && c->len < BUF_POOL_MAX) {
        *(void **)buf = c->free;
        c->free = buf;
        c->len++;
        return;
    }
    free(buf);
}

void buf_pool_clear(void)
{
    for (int i = 0; i < BUF_POOL_CLASSES; i++) {
        while (classes[i].free) {
            void *b = classes[i].free;
            classes[i].free = *(void **)b;
            free(b);
        }
        classes[i] = (struct pool_class){0};
    }
}
