/* Thumbnails: a small PNG of a generated image, for the entries /contest
 * shows and the winners a contest posts. Scaled with cairo (as the usage
 * charts are drawn, core/chart.h), in memory: no file, no network. */
#ifndef HB_THUMB_H
#define HB_THUMB_H

#include <stddef.h>

#define THUMB_SIDE 256 /* pixels: the longer side of a thumbnail */

/** Scale the PNG png (len bytes) so that its longer side is at most side
 *  pixels (never up), keeping its proportions, into a new PNG: *out is a
 *  heap buffer of *outlen bytes the caller frees. Returns 0, HB_EINVAL
 *  when png is not a PNG cairo reads (a JPEG, a broken file, an image
 *  larger than 16384 pixels a side), HB_ENOMEM or HB_EIO. */
int thumb_png(const unsigned char *png, size_t len, int side, unsigned char **out, size_t *outlen);

#endif
