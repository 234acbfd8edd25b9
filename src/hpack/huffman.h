/* HPACK Huffman code (RFC 7541 section 5.2, Appendix B), table-driven both ways. */
#ifndef RILL_HPACK_HUFFMAN_H
#define RILL_HPACK_HUFFMAN_H

#include <stddef.h>
#include <stdint.h>

/* Most bytes a Huffman string of len encoded bytes can decode to (shortest code is 5 bits). */
static inline size_t hpack_huff_decoded_max(size_t len)
{
    return len / 5 * 8 + (len % 5) * 8 / 5;
}

/* Decodes src[0..len) into dst (room for hpack_huff_decoded_max(len) + 1 bytes: the decoder may
 * store one byte past the result). Returns the decoded
 * length, or -1 if the string holds EOS, ends inside a symbol, or its padding is longer than 7
 * bits or is not a prefix of EOS. */
ptrdiff_t hpack_huff_decode(const uint8_t *src, size_t len, uint8_t *dst);

/* Like hpack_huff_decode() but only validates and counts; writes nothing. */
ptrdiff_t hpack_huff_validate(const uint8_t *src, size_t len);

/* Length of the Huffman encoding of src[0..len). */
size_t hpack_huff_encoded_len(const uint8_t *src, size_t len);

/* Writes exactly hpack_huff_encoded_len(src, len) bytes to dst. */
void hpack_huff_encode(const uint8_t *src, size_t len, uint8_t *dst);

#endif
