#include "adapters/demo/png.h"

#include "base/error.h"
#include "base/hash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PNG_CHANNELS 3

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static void png_u32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Write one chunk at *pos: length, type, data, and the CRC of type and data.
 * The caller has sized the buffer; this only advances *pos. */
static void png_chunk_put(unsigned char *buf, size_t *pos, const char type[4],
                          const unsigned char *data, size_t len)
{
    unsigned char *p = buf + *pos;
    png_u32_put(p, (uint32_t)len);
    memcpy(p + 4, type, 4);
    if (len > 0)
        memcpy(p + 8, data, len);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, p + 4, (uInt)(len + 4));
    png_u32_put(p + 8 + len, (uint32_t)crc);
    *pos += 12 + len;
}

int png_rgb_encode(const unsigned char *rgb, unsigned width, unsigned height, unsigned char **out,
                   size_t *out_len)
{
    int rc = 0;
    unsigned char *raw = NULL;
    unsigned char *z = NULL;
    unsigned char *file = NULL;

    *out = NULL;
    *out_len = 0;
    if (rgb == NULL || width == 0 || height == 0 || width > PNG_SIDE_MAX || height > PNG_SIDE_MAX) {
        rc = HB_EINVAL;
        goto out;
    }

    /* Each row gets a leading filter byte; filter 0 (none) keeps it simple
     * and deterministic. */
    size_t stride = (size_t)width * PNG_CHANNELS;
    size_t raw_len = (stride + 1) * height;
    raw = malloc(raw_len);
    if (raw == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    for (size_t y = 0; y < height; y++) {
        raw[y * (stride + 1)] = 0;
        memcpy(raw + y * (stride + 1) + 1, rgb + y * stride, stride);
    }

    uLongf z_len = compressBound((uLong)raw_len);
    z = malloc(z_len);
    if (z == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    int zrc = compress2(z, &z_len, raw, (uLong)raw_len, Z_BEST_SPEED);
    if (zrc != Z_OK) {
        rc = zrc == Z_MEM_ERROR ? HB_ENOMEM : HB_EIO;
        goto out;
    }

    unsigned char ihdr[13];
    png_u32_put(ihdr, width);
    png_u32_put(ihdr + 4, height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: truecolour */
    ihdr[10] = 0; /* compression: deflate */
    ihdr[11] = 0; /* filter method 0 */
    ihdr[12] = 0; /* no interlace */

    size_t file_len = sizeof(png_signature) + (12 + sizeof(ihdr)) + (12 + z_len) + 12;
    file = malloc(file_len);
    if (file == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    size_t pos = 0;
    memcpy(file, png_signature, sizeof(png_signature));
    pos += sizeof(png_signature);
    png_chunk_put(file, &pos, "IHDR", ihdr, sizeof(ihdr));
    png_chunk_put(file, &pos, "IDAT", z, z_len);
    png_chunk_put(file, &pos, "IEND", NULL, 0);

    *out = file;
    *out_len = pos;
    file = NULL;
out:
    free(file);
    free(z);
    free(raw);
    return rc;
}

/* splitmix64 step: spreads the hash into independent parameters. */
static uint64_t png_mix_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned char png_lerp(unsigned a, unsigned b, unsigned t, unsigned span)
{
    return (unsigned char)((a * (span - t) + b * t) / span);
}

int png_demo_render(const char *seed, unsigned width, unsigned height, unsigned char **out,
                    size_t *out_len)
{
    int rc = 0;
    unsigned char *rgb = NULL;

    *out = NULL;
    *out_len = 0;
    if (seed == NULL || width == 0 || height == 0 || width > PNG_SIDE_MAX ||
        height > PNG_SIDE_MAX) {
        rc = HB_EINVAL;
        goto out;
    }

    uint64_t state = hash_fnv1a64_str(seed);
    unsigned char c0[3], c1[3], c2[3];
    for (int i = 0; i < 3; i++) {
        c0[i] = (unsigned char)(png_mix_next(&state) & 0xff);
        c1[i] = (unsigned char)(png_mix_next(&state) & 0xff);
        c2[i] = (unsigned char)(png_mix_next(&state) & 0xff);
    }
    /* Rings around a seed-chosen centre over a diagonal gradient, all in
     * integer arithmetic so every machine draws the same bytes. */
    unsigned cx = (unsigned)(png_mix_next(&state) % width);
    unsigned cy = (unsigned)(png_mix_next(&state) % height);
    unsigned ring = 8 + (unsigned)(png_mix_next(&state) % 40);
    unsigned span = width + height;

    rgb = malloc((size_t)width * height * PNG_CHANNELS);
    if (rgb == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    for (unsigned y = 0; y < height; y++) {
        for (unsigned x = 0; x < width; x++) {
            unsigned char *px = rgb + ((size_t)y * width + x) * PNG_CHANNELS;
            unsigned t = x + y;
            long dx = (long)x - (long)cx;
            long dy = (long)y - (long)cy;
            unsigned long d2 = (unsigned long)(dx * dx + dy * dy);
            /* Integer square root is not needed: bands of d2 / ring^2 are
             * rings whose width shrinks outwards, which looks fine. */
            unsigned band = (unsigned)((d2 / ((unsigned long)ring * ring)) % 2);
            for (int i = 0; i < 3; i++) {
                unsigned char g = png_lerp(c0[i], c1[i], t, span);
                px[i] = band ? (unsigned char)((g + c2[i]) / 2) : g;
            }
        }
    }
    rc = png_rgb_encode(rgb, width, height, out, out_len);
out:
    free(rgb);
    return rc;
}
