/* Slabs: see slab.h. Objects are carved from a slab lazily, so a slab's untouched pages cost no
 * memory until a burst reaches them. */
#include "server/slab.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>

#define SLAB_MIN_BYTES (64u * 1024)
#define SLAB_MIN_OBJECTS 16u

struct slab {
    struct slab_cache *cache;
    struct slab *prev, *next; /* in the cache's partial or full list */
    void *free;               /* freed objects, linked through their first word */
    unsigned used;            /* objects out */
    unsigned carved;          /* objects ever handed out from fresh memory */
    unsigned capacity;
    bool full;                /* in the full list, else in the partial or the empty list */
};

/* Objects start after the header, 64-byte aligned (a cache line of their own). */
#define SLAB_HEADER ((sizeof(struct slab) + 63) & ~(size_t)63)

static size_t pow2_at_least(size_t n)
{
    size_t p = SLAB_MIN_BYTES;
    while (p < n)
        p <<= 1;
    return p;
}

static size_t rounded(size_t obj_size)
{
    return (obj_size + 15) & ~(size_t)15;
}

static size_t slab_bytes_for(size_t obj_size)
{
    return pow2_at_least(SLAB_HEADER + rounded(obj_size) * SLAB_MIN_OBJECTS);
}

void slab_cache_init(struct slab_cache *c, size_t obj_size)
{
    *c = (struct slab_cache){0};
    c->obj_size = rounded(obj_size);
    c->slab_bytes = slab_bytes_for(obj_size);
}

static struct slab *slab_map(struct slab_cache *c)
{
    /* Twice the size, then the unaligned ends are unmapped: mmap only promises page alignment. */
    size_t size = c->slab_bytes;
    uint8_t *raw = mmap(NULL, size * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uint8_t *start = (uint8_t *)(((uintptr_t)raw + size - 1) & ~(uintptr_t)(size - 1));
    if (start > raw)
        munmap(raw, (size_t)(start - raw));
    if (start + size < raw + size * 2)
        munmap(start + size, (size_t)(raw + size * 2 - (start + size)));
    struct slab *s = (struct slab *)start;
    *s = (struct slab){.cache = c, .capacity = (unsigned)((size - SLAB_HEADER) / c->obj_size)};
    c->slabs++;
    return s;
}

static void slab_unmap(struct slab *s)
{
    s->cache->slabs--;
    munmap(s, s->cache->slab_bytes);
}

static void list_add(struct slab **head, struct slab *s)
{
    s->prev = NULL;
    s->next = *head;
    if (*head)
        (*head)->prev = s;
    *head = s;
}

static void list_remove(struct slab **head, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

void *slab_alloc(struct slab_cache *c)
{
    struct slab *s = c->partial;
    if (!s) {
        if (c->empty) {
            s = c->empty;
            list_remove(&c->empty, s);
        } else if (!(s = slab_map(c))) {
            return NULL;
        }
        list_add(&c->partial, s);
    }
    void *p;
    if (s->free) {
        p = s->free;
        s->free = *(void **)p;
    } else {
        p = (uint8_t *)s + SLAB_HEADER + (size_t)s->carved * c->obj_size;
        s->carved++;
    }
    s->used++;
    if (!s->free && s->carved == s->capacity) {
        list_remove(&c->partial, s);
        list_add(&c->full, s);
        s->full = true;
    }
    return p;
}

void slab_free(void *p, size_t obj_size)
{
    /* The slab is aligned to its size, which follows from the object size alone. */
    struct slab *s = (struct slab *)((uintptr_t)p & ~(uintptr_t)(slab_bytes_for(obj_size) - 1));
    struct slab_cache *c = s->cache;
    *(void **)p = s->free;
    s->free = p;
    s->used--;
    if (s->full) {
        list_remove(&c->full, s);
        list_add(&c->partial, s);
        s->full = false;
    }
    if (s->used == 0) {
        list_remove(&c->partial, s);
        /* Start afresh: carving from the front again touches the fewest pages. */
        s->free = NULL;
        s->carved = 0;
        list_add(&c->empty, s);
    }
}

void slab_cache_release_empty(struct slab_cache *c)
{
    while (c->empty) {
        struct slab *s = c->empty;
        list_remove(&c->empty, s);
        slab_unmap(s);
    }
}

void slab_cache_destroy(struct slab_cache *c)
{
    struct slab **lists[3] = {&c->partial, &c->full, &c->empty};
    for (int i = 0; i < 3; i++) {
        while (*lists[i]) {
            struct slab *s = *lists[i];
            list_remove(lists[i], s);
            slab_unmap(s);
        }
    }
}
