/* Fixed-size objects carved from page-aligned slabs of their own (mmap), not from the heap.
 * Objects that live briefly (exchanges, output buffers) then never sit between a connection's
 * long-lived allocations: when a burst ends, its slabs empty and go back to the system whole,
 * instead of leaving holes in the heap that no trim can return.
 *
 * One cache per object size and thread: slab_alloc only on the cache's thread; slab_free finds
 * the object's slab from its address and size, so code that does not know the cache may free,
 * but only one thread at a time per cache (the server frees on the worker's thread, or on the
 * main thread after the workers end). */
#ifndef RILL_SERVER_SLAB_H
#define RILL_SERVER_SLAB_H

#include <stddef.h>

struct slab;

struct slab_cache {
    size_t obj_size;      /* rounded up to 16 */
    size_t slab_bytes;    /* a power of two; slabs are aligned to it */
    struct slab *partial; /* slabs with room: free objects or some not carved yet */
    struct slab *full;
    struct slab *empty;   /* emptied slabs, kept until slab_cache_release_empty: a busy server
                             whose load swings would otherwise map and unmap (and fault in) slabs
                             all the time */
    size_t slabs;         /* mapped, empty ones included */
};

/* obj_size: the objects' size; the slab size follows from it (64 KiB, or 16 objects). */
void slab_cache_init(struct slab_cache *c, size_t obj_size);
/* An object (16-byte aligned, not cleared), or NULL when no memory can be mapped. */
void *slab_alloc(struct slab_cache *c);
/* Gives an object of obj_size (as given to its cache's init) back to its slab; a slab left
 * empty is kept for reuse until slab_cache_release_empty. */
void slab_free(void *p, size_t obj_size);
/* Unmaps the empty slabs: what a burst's peak needed goes back to the system (a quiet moment). */
void slab_cache_release_empty(struct slab_cache *c);
/* Unmaps every slab; objects still out are lost. The cache can be initialised again. */
void slab_cache_destroy(struct slab_cache *c);

#endif
