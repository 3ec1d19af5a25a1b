/* A tiny PNG encoder and the demo picture.
 *
 * The `demo` provider answers image prompts offline with a deterministic
 * picture derived from the prompt, so the example configuration works
 * without a network or an API key. The encoder writes 8-bit RGB, no
 * interlace, one IDAT chunk compressed with zlib. */
#ifndef HB_PNG_H
#define HB_PNG_H

#include <stddef.h>

#define PNG_SIDE_MAX 1024 /* largest width or height accepted, pixels */

/** Encode width x height 8-bit RGB pixels (rows top to bottom, 3 bytes per
 *  pixel, no padding; borrowed) as a PNG file. On success *out is a heap
 *  buffer the caller frees with free() and *out_len its size. Returns 0,
 *  HB_EINVAL for a size outside 1..PNG_SIDE_MAX, HB_ENOMEM. */
int png_rgb_encode(const unsigned char *rgb, unsigned width, unsigned height, unsigned char **out,
                   size_t *out_len);

/** Render the demo picture for `seed` (any NUL-terminated text, typically
 *  the prompt; borrowed) at width x height (1..PNG_SIDE_MAX each) and
 *  encode it as PNG. The same seed and size always give the same bytes.
 *  *out is heap, freed by the caller with free(). Returns 0, HB_EINVAL,
 *  HB_ENOMEM. */
int png_demo_render(const char *seed, unsigned width, unsigned height, unsigned char **out,
                    size_t *out_len);

#endif
