#include "tests/test.h"

#include "base/error.h"
#include "adapters/demo/png.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walk the chunks, checking every CRC, and return the IHDR fields and the
 * concatenated IDAT payload (heap). */
static unsigned char *check_png(const unsigned char *png, size_t len, uint32_t *w, uint32_t *h,
                                size_t *idat_len)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(len > 8);
    assert_memory_equal(png, sig, 8);
    size_t pos = 8;
    unsigned char *idat = NULL;
    *idat_len = 0;
    bool seen_ihdr = false;
    bool seen_iend = false;
    while (pos < len) {
        assert_true(pos + 12 <= len);
        uint32_t clen = be32(png + pos);
        assert_true(pos + 12 + clen <= len);
        const unsigned char *type = png + pos + 4;
        uLong crc = crc32(0L, Z_NULL, 0);
        crc = crc32(crc, type, 4 + clen);
        assert_int_equal((uint32_t)crc, be32(png + pos + 8 + clen));
        if (memcmp(type, "IHDR", 4) == 0) {
            assert_false(seen_ihdr);
            assert_int_equal(pos, 8); /* IHDR comes first */
            assert_int_equal(clen, 13);
            *w = be32(type + 4);
            *h = be32(type + 8);
            assert_int_equal(type[4 + 8], 8); /* bit depth */
            assert_int_equal(type[4 + 9], 2); /* RGB */
            seen_ihdr = true;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            idat = realloc(idat, *idat_len + clen + 1);
            assert_non_null(idat);
            memcpy(idat + *idat_len, type + 4, clen);
            *idat_len += clen;
        } else if (memcmp(type, "IEND", 4) == 0) {
            assert_int_equal(clen, 0);
            seen_iend = true;
        }
        pos += 12 + clen;
        if (seen_iend)
            break;
    }
    assert_true(seen_ihdr);
    assert_true(seen_iend);
    assert_int_equal(pos, len);
    assert_non_null(idat);
    return idat;
}

static void check_render(const char *seed, unsigned w, unsigned h)
{
    unsigned char *png = NULL;
    size_t len = 0;
    assert_int_equal(png_demo_render(seed, w, h, &png, &len), 0);
    uint32_t pw = 0, ph = 0;
    size_t idat_len = 0;
    unsigned char *idat = check_png(png, len, &pw, &ph, &idat_len);
    assert_int_equal(pw, w);
    assert_int_equal(ph, h);

    size_t want = (size_t)h * (1 + (size_t)w * 3);
    uLongf raw_len = want + 16; /* room to notice extra bytes */
    unsigned char *raw = malloc(raw_len);
    assert_non_null(raw);
    assert_int_equal(uncompress(raw, &raw_len, idat, idat_len), Z_OK);
    assert_int_equal(raw_len, want);
    for (size_t y = 0; y < h; y++)
        assert_int_equal(raw[y * (1 + (size_t)w * 3)], 0); /* filter type none */
    free(raw);
    free(idat);
    free(png);
}

static void test_png_structure(void **state)
{
    (void)state;
    check_render("a red fox in the snow", 256, 256);
    check_render("", 1, 1);
    check_render("wide", 300, 7);
    check_render("tall", 3, 200);
    check_render("max", PNG_SIDE_MAX, PNG_SIDE_MAX);
}

static void test_png_deterministic(void **state)
{
    (void)state;
    unsigned char *a = NULL, *b = NULL, *c = NULL;
    size_t alen = 0, blen = 0, clen = 0;
    assert_int_equal(png_demo_render("same seed", 64, 48, &a, &alen), 0);
    assert_int_equal(png_demo_render("same seed", 64, 48, &b, &blen), 0);
    assert_int_equal(png_demo_render("same seee", 64, 48, &c, &clen), 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, alen);
    assert_true(alen != clen || memcmp(a, c, alen) != 0);
    free(a);
    free(b);
    free(c);
}

static void test_png_bad_size(void **state)
{
    (void)state;
    unsigned char *png = (unsigned char *)"x";
    size_t len = 5;
    assert_int_equal(png_demo_render("s", 0, 10, &png, &len), HB_EINVAL);
    assert_null(png);
    assert_int_equal(len, 0);
    assert_int_equal(png_demo_render("s", 10, 0, &png, &len), HB_EINVAL);
    assert_int_equal(png_demo_render("s", PNG_SIDE_MAX + 1, 10, &png, &len), HB_EINVAL);
    assert_int_equal(png_demo_render("s", 10, PNG_SIDE_MAX + 1, &png, &len), HB_EINVAL);
    assert_int_equal(png_demo_render(NULL, 10, 10, &png, &len), HB_EINVAL);
    assert_int_equal(png_rgb_encode(NULL, 1, 1, &png, &len), HB_EINVAL);
}

static void test_png_encode_pixels(void **state)
{
    (void)state;
    /* Two known pixels survive the round trip. */
    const unsigned char rgb[6] = {255, 0, 0, 0, 0, 255};
    unsigned char *png = NULL;
    size_t len = 0;
    assert_int_equal(png_rgb_encode(rgb, 2, 1, &png, &len), 0);
    uint32_t w = 0, h = 0;
    size_t idat_len = 0;
    unsigned char *idat = check_png(png, len, &w, &h, &idat_len);
    unsigned char raw[16];
    uLongf raw_len = sizeof(raw);
    assert_int_equal(uncompress(raw, &raw_len, idat, idat_len), Z_OK);
    assert_int_equal(raw_len, 7);
    assert_int_equal(raw[0], 0);
    assert_memory_equal(raw + 1, rgb, 6);
    free(idat);
    free(png);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_png_structure),
    cmocka_unit_test(test_png_deterministic),
    cmocka_unit_test(test_png_bad_size),
    cmocka_unit_test(test_png_encode_pixels),
};

TEST_GROUP_DEFINE(png, tests, NULL, NULL)
