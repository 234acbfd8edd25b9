/* Constant tables of RFC 7541, generated into hpack_tables.c by gen_hpack_tables.py. */
#ifndef RILL_HPACK_TABLES_H
#define RILL_HPACK_TABLES_H

#include <stddef.h>
#include <stdint.h>

#define HPACK_STATIC_COUNT 61
#define HPACK_ENTRY_OVERHEAD 32 /* RFC 7541 section 4.1 */

typedef struct hpack_static_entry {
    const uint8_t *name;
    uint32_t name_len;
    const uint8_t *value;
    uint32_t value_len;
} hpack_static_entry;

/* Index 0 is a blank placeholder so that hpack_static_table[i] is static index i. */
extern const hpack_static_entry hpack_static_table[HPACK_STATIC_COUNT + 1];

/* Perfect hash of the static names: slot -> first static index with that name (0 = none). The
 * caller still compares the name, since any other name may land on an occupied slot. */
extern const uint8_t hpack_static_name_slots[128];

static inline unsigned hpack_static_name_hash(const uint8_t *name, size_t len)
{
    return ((unsigned)len * 39u + name[0] * 39u + name[len - 1] * 44u + name[len >> 1]) & 127u;
}

/* Number of consecutive static entries from index i that share entry i's name. */
extern const uint8_t hpack_static_name_run[HPACK_STATIC_COUNT + 1];

/* Huffman code of each symbol (right-aligned) and its length in bits; symbol 256 is EOS. */
extern const uint32_t hpack_huff_code[257];
extern const uint8_t hpack_huff_len[257];

/* Multi-symbol decoding tables; layout documented in gen_hpack_tables.py and huffman.c. */
#define HPACK_HUFF_ROOT_BITS 12
#define HPACK_HUFF_SUB_BITS 8
extern const uint32_t hpack_huff_root[1u << HPACK_HUFF_ROOT_BITS];
extern const uint32_t hpack_huff_sub[];

#endif
