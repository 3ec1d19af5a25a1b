/* Lower-case hexadecimal, the one spelling every layer writes digests,
 * ids and signatures in. */
#ifndef HB_HEX_H
#define HB_HEX_H

#include <stddef.h>

/** Write the 2 * n lower-case hex digits of in[0..n) to out, then a NUL:
 *  out must hold 2 * n + 1 bytes. Returns out. */
char *hex_encode(const unsigned char *in, size_t n, char *out);

/** Decode exactly 2 * n hex digits (either case) from in into out[0..n).
 *  Returns 0, or -1 when a character is not a hex digit (out is then
 *  partly written). */
int hex_decode(const char *in, unsigned char *out, size_t n);

#endif
