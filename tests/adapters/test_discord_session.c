#include "tests/test.h"

#include "adapters/discord/session.h"
#include "adapters/discord/zstream.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

/* ---- zlib-stream ------------------------------------------------------- */

/* Compress payloads as Discord does: one deflate stream, each payload ended
 * by a sync flush (which emits 00 00 ff ff). */
struct zout {
    unsigned char *buf;
    size_t len;
    size_t ends[16]; /* offset just past each payload */
    size_t n;
};

static void zcompress(const char *const *payloads, size_t n, struct zout *o)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit(&z, 6), Z_OK);
    o->buf = malloc(1 << 20);
    o->len = 0;
    o->n = 0;
    for (size_t i = 0; i < n; i++) {
        z.next_in = (Bytef *)payloads[i];
        z.avail_in = (uInt)strlen(payloads[i]);
        z.next_out = o->buf + o->len;
        z.avail_out = (uInt)((1 << 20) - o->len);
        assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
        o->len = (size_t)(z.next_out - o->buf);
        o->ends[o->n++] = o->len;
    }
    deflateEnd(&z);
}

static void test_zstream_split_anywhere(void **state)
{
    (void)state;
    char big[20000];
    memset(big, 'x', sizeof(big) - 1);
    memcpy(big, "{\"op\":0,\"d\":\"", 13);
    big[sizeof(big) - 3] = '"';
    big[sizeof(big) - 2] = '}';
    big[sizeof(big) - 1] = '\0';
    const char *payloads[] = {"{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}", big,
                              "{\"op\":11}"};
    struct zout o;
    zcompress(payloads, 3, &o);
    /* Every split point inside each payload's bytes gives the same result. */
    for (size_t step = 1; step < 40; step += 7) {
        struct discord_zstream zs;
        assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 1 << 20), 0);
        size_t got = 0;
        size_t start = 0;
        for (size_t p = 0; p < o.n; p++) {
            /* A payload may come in several websocket messages. */
            size_t end = o.ends[p];
            size_t at = start;
            while (at < end) {
                size_t chunk = end - at < step ? end - at : step;
                const char *msg;
                size_t len;
                int rc = discord_zstream_feed(&zs, o.buf + at, chunk, &msg, &len);
                at += chunk;
                if (at < end) {
                    assert_int_equal(rc, 0);
                } else {
                    assert_int_equal(rc, 1);
                    assert_int_equal(len, strlen(payloads[p]));
                    assert_memory_equal(msg, payloads[p], len);
                    got++;
                }
            }
            start = end;
        }
        assert_int_equal(got, 3);
        discord_zstream_free(&zs);
    }
    free(o.buf);
}

/* Deflate n payloads of the given lengths as one stream, each ended by a
 * sync flush; o->ends[i] is where payload i's message ends. */
static void zcompress_bytes(const unsigned char *const *payloads, const size_t *lens, size_t n,
                            struct zout *o)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit(&z, 6), Z_OK);
    o->buf = malloc(1 << 20);
    assert_non_null(o->buf);
    o->len = 0;
    o->n = 0;
    for (size_t i = 0; i < n; i++) {
        z.next_in = (Bytef *)(uintptr_t)payloads[i];
        z.avail_in = (uInt)lens[i];
        z.next_out = o->buf + o->len;
        z.avail_out = (uInt)((1 << 20) - o->len);
        assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
        o->len = (size_t)(z.next_out - o->buf);
        o->ends[o->n++] = o->len;
    }
    deflateEnd(&z);
}

/* The limit is the largest payload accepted: a payload of exactly
 * max_payload bytes comes out whole; one byte more is refused, and the
 * stream goes on. The payload is tests/corpus/zstream/ (binary, NULs and
 * all) repeated past the first buffer's 16 KiB, so the buffer grows to
 * the limit and the payload fills it exactly. */
static void test_zstream_exactly_the_limit(void **state)
{
    (void)state;
    size_t unit = 0;
    char *corpus = test_file_read("tests/corpus/zstream/zstream-exactly-max.bin", &unit);
    assert_non_null(corpus);
    assert_true(unit > 1000);
    size_t max = 20 * unit;
    unsigned char *exact = malloc(max);
    assert_non_null(exact);
    for (size_t i = 0; i < 20; i++)
        memcpy(exact + i * unit, corpus, unit);
    free(corpus);
    unsigned char *over = malloc(max + 1);
    assert_non_null(over);
    memcpy(over, exact, max);
    over[max] = 'x';
    const unsigned char *payloads[] = {exact, over, exact};
    size_t lens[] = {max, max + 1, max};
    struct zout o;
    zcompress_bytes(payloads, lens, 3, &o);
    /* Whole messages, then the same split in small parts. */
    for (size_t step = 0; step <= 7; step += 7) {
        struct discord_zstream zs;
        assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, max), 0);
        int want[] = {1, HB_EOVERFLOW, 1};
        size_t start = 0;
        for (size_t p = 0; p < 3; p++) {
            const char *msg = NULL;
            size_t len = 0;
            int rc = 0;
            for (size_t at = start; at < o.ends[p];) {
                size_t chunk = step == 0 || o.ends[p] - at < step ? o.ends[p] - at : step;
                rc = discord_zstream_feed_part(&zs, o.buf + at, chunk, at + chunk == o.ends[p],
                                               &msg, &len);
                at += chunk;
            }
            assert_int_equal(rc, want[p]);
            if (rc == 1) {
                assert_int_equal(len, max);
                assert_memory_equal(msg, exact, max);
            }
            start = o.ends[p];
        }
        discord_zstream_free(&zs);
    }
    free(o.buf);
    free(over);
    free(exact);
}

/* A big payload that compresses well arrives in one small message: zlib
 * takes all the input while output is still pending, and all of it must
 * come out (then the next payload is whole too). */
static void test_zstream_whole_when_input_ends_first(void **state)
{
    (void)state;
    size_t n = 300000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    memcpy(big, "{\"op\":0,\"d\":\"", 13);
    big[n - 2] = '"';
    big[n - 1] = '}';
    big[n] = '\0';
    const char *payloads[] = {big, "{\"op\":11}"};
    struct zout o;
    zcompress(payloads, 2, &o);
    assert_true(o.ends[0] < 2000); /* a few hundred bytes in */
    struct discord_zstream zs;
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 1 << 20), 0);
    const char *msg;
    size_t len;
    assert_int_equal(discord_zstream_feed(&zs, o.buf, o.ends[0], &msg, &len), 1);
    assert_int_equal(len, n);
    assert_memory_equal(msg, big, n);
    assert_int_equal(
        discord_zstream_feed(&zs, o.buf + o.ends[0], o.ends[1] - o.ends[0], &msg, &len), 1);
    assert_int_equal(len, 9);
    assert_memory_equal(msg, "{\"op\":11}", 9);
    discord_zstream_free(&zs);
    free(o.buf);
    free(big);
}

static void test_zstream_corrupt_and_oversized(void **state)
{
    (void)state;
    const char *payloads[] = {"{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}"};
    struct zout o;
    zcompress(payloads, 1, &o);
    struct discord_zstream zs;
    const char *msg;
    size_t len;
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 1 << 20), 0);
    unsigned char junk[] = {0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0xff, 0xff};
    assert_int_equal(discord_zstream_feed(&zs, junk, sizeof(junk), &msg, &len), HB_EPROTO);
    discord_zstream_free(&zs);
    /* The zlib header, read by hand: wrong check bits, or a preset
     * dictionary (which no gateway stream has), are refused. */
    unsigned char bad_check[] = {0x78, 0x00, 0x00, 0x00, 0xff, 0xff};
    unsigned char dict[] = {0x78, 0xbb, 0x00, 0x00, 0xff, 0xff};
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 1 << 20), 0);
    assert_int_equal(discord_zstream_feed(&zs, bad_check, sizeof(bad_check), &msg, &len),
                     HB_EPROTO);
    discord_zstream_free(&zs);
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 1 << 20), 0);
    assert_int_equal(discord_zstream_feed(&zs, dict, sizeof(dict), &msg, &len), HB_EPROTO);
    discord_zstream_free(&zs);
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 10), 0);
    assert_int_equal(discord_zstream_feed(&zs, o.buf, o.len, &msg, &len), HB_EOVERFLOW);
    discord_zstream_free(&zs);
    free(o.buf);
}

/* Payload 0 goes through; payload 1, over 64 KiB, is fed in parts of
 * 1000 bytes and dropped at its end; the stream goes on with `next`. */
static void zs_oversized_goes_on(enum discord_compress kind, const struct zout *o, const char *next)
{
    struct discord_zstream zs;
    const char *msg;
    size_t len;
    assert_int_equal(discord_zstream_init(&zs, kind, 64 * 1024), 0);
    assert_int_equal(discord_zstream_feed(&zs, o->buf, o->ends[0], &msg, &len), 1);
    int rc = 0;
    for (size_t at = o->ends[0]; at < o->ends[1]; at += 1000) {
        size_t n = o->ends[1] - at < 1000 ? o->ends[1] - at : 1000;
        rc = discord_zstream_feed_part(&zs, o->buf + at, n, at + n == o->ends[1], &msg, &len);
        if (at + n < o->ends[1])
            assert_int_equal(rc, 0);
    }
    assert_int_equal(rc, HB_EOVERFLOW);
    assert_int_equal(
        discord_zstream_feed(&zs, o->buf + o->ends[1], o->ends[2] - o->ends[1], &msg, &len), 1);
    assert_string_equal(msg, next);
    discord_zstream_free(&zs);
}

static void test_zstream_skips_oversized_and_goes_on(void **state)
{
    (void)state;
    static char big[300000];
    memset(big, 'q', sizeof(big) - 1);
    for (size_t i = 0; i < sizeof(big) - 1; i += 7)
        big[i] = (char)('a' + i % 23);
    big[sizeof(big) - 1] = '\0';
    const char *payloads[] = {"{\"op\":11}", big, "{\"op\":1,\"d\":7}"};
    struct zout o;
    zcompress(payloads, 3, &o);
    zs_oversized_goes_on(DISCORD_COMPRESS_ZLIB, &o, payloads[2]);
    free(o.buf);
}

static void test_zstream_marker_only_at_message_end(void **state)
{
    (void)state;
    const char *payloads[] = {"{\"op\":11}", "{\"op\":1,\"d\":null}"};
    struct zout o;
    zcompress(payloads, 2, &o);
    struct discord_zstream zs;
    const char *msg;
    size_t len;
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 1 << 20), 0);
    /* A read boundary that happens to fall after 00 00 ff ff inside one
     * websocket message does not end the payload. */
    assert_int_equal(discord_zstream_feed_part(&zs, o.buf, o.ends[0], 0, &msg, &len), 0);
    assert_int_equal(discord_zstream_feed_part(&zs, o.buf + o.ends[0], 0, 1, &msg, &len), 1);
    assert_int_equal(len, strlen(payloads[0]));
    assert_int_equal(
        discord_zstream_feed_part(&zs, o.buf + o.ends[0], o.ends[1] - o.ends[0], 1, &msg, &len), 1);
    assert_string_equal(msg, payloads[1]);
    discord_zstream_free(&zs);
    free(o.buf);
}

static void test_zstream_gives_back_big_buffers(void **state)
{
    (void)state;
    size_t big_len = 2u << 20;
    char *big = malloc(big_len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)('a' + (i * 7919u) % 26u);
    big[big_len] = '\0';
    const char *payloads[] = {big, "{\"op\":11}"};
    struct zout o;
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit(&z, 1), Z_OK);
    o.buf = malloc(4u << 20);
    o.len = 0;
    for (size_t i = 0; i < 2; i++) {
        z.next_in = (Bytef *)payloads[i];
        z.avail_in = (uInt)strlen(payloads[i]);
        z.next_out = o.buf + o.len;
        z.avail_out = (uInt)((4u << 20) - o.len);
        assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
        o.len = (size_t)(z.next_out - o.buf);
        o.ends[i] = o.len;
    }
    deflateEnd(&z);
    struct discord_zstream zs;
    const char *msg;
    size_t len;
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZLIB, 16u << 20), 0);
    assert_int_equal(discord_zstream_feed(&zs, o.buf, o.ends[0], &msg, &len), 1);
    assert_int_equal(len, big_len);
    assert_true(zs.out_cap > big_len);
    assert_int_equal(
        discord_zstream_feed(&zs, o.buf + o.ends[0], o.ends[1] - o.ends[0], &msg, &len), 1);
    assert_string_equal(msg, "{\"op\":11}");
    assert_true(zs.out_cap <= 256 * 1024);
    discord_zstream_free(&zs);
    free(o.buf);
    free(big);
}

/* ---- zstd-stream --------------------------------------------------------- */

/* Compress payloads as Discord's zstd-stream does: one zstd stream, flushed
 * after each payload. From payload new_frame on (0: never) a new frame
 * begins, after the three bytes of an empty last block that end the one
 * before (as a compressor ends a frame after a flush). */
static void zstd_compress(const char *const *payloads, size_t n, size_t new_frame, struct zout *o)
{
    size_t cap = 4u << 20;
    ZSTD_CCtx *zc = ZSTD_createCCtx();
    assert_non_null(zc);
    o->buf = malloc(cap);
    o->len = 0;
    o->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (new_frame > 0 && i == new_frame) {
            static const unsigned char end[3] = {0x01, 0x00, 0x00};
            memcpy(o->buf + o->len, end, 3);
            o->len += 3;
            ZSTD_CCtx_reset(zc, ZSTD_reset_session_only);
        }
        ZSTD_inBuffer in = {payloads[i], strlen(payloads[i]), 0};
        ZSTD_outBuffer out = {o->buf + o->len, cap - o->len, 0};
        size_t left;
        do {
            left = ZSTD_compressStream2(zc, &out, &in, ZSTD_e_flush);
            assert_false(ZSTD_isError(left));
        } while (left != 0);
        o->len += out.pos;
        o->ends[o->n++] = o->len;
    }
    ZSTD_freeCCtx(zc);
}

static char *zstd_big(size_t n, unsigned seed)
{
    char *big = malloc(n + 1);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + (i * 7919u + seed) % 26u);
    big[n] = '\0';
    return big;
}

static void test_zstd_split_anywhere(void **state)
{
    (void)state;
    char *big = zstd_big(300000, 1);
    const char *payloads[] = {"{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}", big,
                              "{\"op\":11}", "{\"op\":1,\"d\":null}"};
    struct zout o;
    zstd_compress(payloads, 4, 2, &o);
    /* Every split of each message gives the payload whole at its end, across
     * the frame that ends and the one that begins inside message 3. */
    for (size_t step = 1; step < 5000; step = step * 3 + 1) {
        struct discord_zstream zs;
        assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZSTD, 1 << 20), 0);
        size_t start = 0;
        for (size_t p = 0; p < 4; p++) {
            const char *msg = NULL;
            size_t len = 0;
            int rc = 0;
            for (size_t at = start; at < o.ends[p]; at += step) {
                size_t chunk = o.ends[p] - at < step ? o.ends[p] - at : step;
                rc = discord_zstream_feed_part(&zs, o.buf + at, chunk, at + chunk == o.ends[p],
                                               &msg, &len);
                if (at + chunk < o.ends[p])
                    assert_int_equal(rc, 0);
            }
            assert_int_equal(rc, 1);
            assert_int_equal(len, strlen(payloads[p]));
            assert_memory_equal(msg, payloads[p], len);
            start = o.ends[p];
        }
        discord_zstream_free(&zs);
    }
    free(o.buf);
    free(big);
}

static void test_zstd_corrupt_oversized_and_limit(void **state)
{
    (void)state;
    char *big = zstd_big(200000, 7);
    const char *payloads[] = {"{\"op\":11}", big, "{\"op\":1,\"d\":7}"};
    struct zout o;
    zstd_compress(payloads, 3, 0, &o);
    struct discord_zstream zs;
    const char *msg;
    size_t len;
    /* Not a zstd frame, and a block of the reserved type 3: refused. */
    unsigned char junk[] = {0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0xff, 0xff};
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZSTD, 1 << 20), 0);
    assert_int_equal(discord_zstream_feed(&zs, junk, sizeof(junk), &msg, &len), HB_EPROTO);
    discord_zstream_free(&zs);
    unsigned char reserved[] = {0x07, 0xff, 0x13, 0x37};
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZSTD, 1 << 20), 0);
    assert_int_equal(discord_zstream_feed(&zs, o.buf, o.ends[0], &msg, &len), 1);
    assert_int_equal(discord_zstream_feed(&zs, reserved, sizeof(reserved), &msg, &len), HB_EPROTO);
    discord_zstream_free(&zs);
    /* A frame that asks for a window over 8 MiB (RFC 8878's most) is
     * refused before anything is allocated for it; 8 MiB is taken. */
    for (int wlog = 23; wlog <= 24; wlog++) {
        ZSTD_CCtx *zc = ZSTD_createCCtx();
        assert_non_null(zc);
        assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(zc, ZSTD_c_windowLog, wlog)));
        unsigned char wide[256];
        ZSTD_inBuffer in = {payloads[0], strlen(payloads[0]), 0};
        ZSTD_outBuffer out = {wide, sizeof(wide), 0};
        while (ZSTD_compressStream2(zc, &out, &in, ZSTD_e_flush) != 0)
            ;
        ZSTD_freeCCtx(zc);
        assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZSTD, 1 << 20), 0);
        assert_int_equal(discord_zstream_feed(&zs, wide, out.pos, &msg, &len),
                         wlog == 23 ? 1 : HB_EPROTO);
        discord_zstream_free(&zs);
    }
    /* Too large: dropped at its end, in small parts, and the stream goes on. */
    zs_oversized_goes_on(DISCORD_COMPRESS_ZSTD, &o, payloads[2]);
    /* Exactly the limit is kept; one byte less is not. */
    int rc;
    for (size_t max = strlen(big) - 1; max <= strlen(big); max++) {
        assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZSTD, max), 0);
        assert_int_equal(discord_zstream_feed(&zs, o.buf, o.ends[0], &msg, &len), 1);
        rc = discord_zstream_feed(&zs, o.buf + o.ends[0], o.ends[1] - o.ends[0], &msg, &len);
        if (max == strlen(big)) {
            assert_int_equal(rc, 1);
            assert_int_equal(len, max);
            assert_memory_equal(msg, big, max);
        } else {
            assert_int_equal(rc, HB_EOVERFLOW);
        }
        discord_zstream_free(&zs);
    }
    free(o.buf);
    free(big);
}

/* A stream of the other kind than asked is read as its first bytes say;
 * text is taken as it is, within the same bound. */
static void test_zstream_other_kind_and_text(void **state)
{
    (void)state;
    const char *payloads[] = {"{\"op\":10,\"d\":{\"heartbeat_interval\":41250}}", "{\"op\":11}"};
    struct zout z, zs_out;
    zcompress(payloads, 2, &z);
    assert_int_equal(z.buf[0], 0x78); /* the zlib header Discord's stream begins with */
    zstd_compress(payloads, 2, 0, &zs_out);
    struct discord_zstream zs;
    const char *msg;
    size_t len;
    const struct zout *streams[2] = {&z, &zs_out};
    enum discord_compress asked[2] = {DISCORD_COMPRESS_ZSTD, DISCORD_COMPRESS_ZLIB};
    for (int k = 0; k < 2; k++) {
        const struct zout *o = streams[k];
        assert_int_equal(discord_zstream_init(&zs, asked[k], 1 << 20), 0);
        assert_int_equal(discord_zstream_feed(&zs, o->buf, o->ends[0], &msg, &len), 1);
        assert_string_equal(msg, payloads[0]);
        assert_int_equal(
            discord_zstream_feed(&zs, o->buf + o->ends[0], o->ends[1] - o->ends[0], &msg, &len), 1);
        assert_string_equal(msg, payloads[1]);
        assert_true(zs.switched);
        assert_int_not_equal(zs.kind, asked[k]);
        discord_zstream_free(&zs);
    }
    /* Text: parts joined; over the bound, dropped at its end, then on. */
    assert_int_equal(discord_zstream_init(&zs, DISCORD_COMPRESS_ZSTD, 16), 0);
    assert_int_equal(discord_zstream_feed_text(&zs, "{\"op\":", 6, 0, &msg, &len), 0);
    assert_int_equal(discord_zstream_feed_text(&zs, "11}", 3, 1, &msg, &len), 1);
    assert_string_equal(msg, "{\"op\":11}");
    assert_int_equal(discord_zstream_feed_text(&zs, "{\"op\":0,\"d\":", 13, 0, &msg, &len), 0);
    assert_int_equal(discord_zstream_feed_text(&zs, "\"long\"}", 8, 1, &msg, &len), HB_EOVERFLOW);
    assert_int_equal(discord_zstream_feed_text(&zs, "{\"op\":1}", 8, 1, &msg, &len), 1);
    assert_string_equal(msg, "{\"op\":1}");
    assert_true(zs.text);
    discord_zstream_free(&zs);
    free(z.buf);
    free(zs_out.buf);
}

/* ---- session rules ------------------------------------------------------ */

static void test_hello_identify_then_resume(void **state)
{
    (void)state;
    struct discord_session s;
    discord_session_init(&s);
    uint32_t first;
    assert_int_equal(discord_session_hello(&s, 41250, 0.5, &first), DISCORD_ACT_IDENTIFY);
    assert_int_equal(first, 20625);
    discord_session_dispatch(&s, 1, "READY", "abc", "wss://resume.example");
    discord_session_dispatch(&s, 5, "MESSAGE_CREATE", NULL, NULL);
    discord_session_dispatch(&s, 3, "MESSAGE_CREATE", NULL, NULL); /* never goes back */
    assert_int_equal(s.seq, 5);
    assert_string_equal(s.resume_url, "wss://resume.example");
    uint32_t wait;
    assert_int_equal(discord_session_closed(&s, 4000, 0.0, &wait), DISCORD_ACT_RECONNECT);
    assert_int_equal(wait, 500); /* a healthy session retries within a second */
    assert_int_equal(discord_session_hello(&s, 41250, 0.0, &first), DISCORD_ACT_RESUME);
    assert_int_equal(first, 0);
}

static void test_zombie_connection_reconnects(void **state)
{
    (void)state;
    struct discord_session s;
    discord_session_init(&s);
    uint32_t first;
    discord_session_hello(&s, 1000, 0.1, &first);
    assert_int_equal(discord_session_heartbeat_due(&s, 100), DISCORD_ACT_HEARTBEAT);
    discord_session_ack(&s, 130);
    assert_int_equal(s.latency_ms, 30);
    assert_int_equal(discord_session_heartbeat_due(&s, 1100), DISCORD_ACT_HEARTBEAT);
    /* No ACK before the next tick: zombie. */
    assert_int_equal(discord_session_heartbeat_due(&s, 2100), DISCORD_ACT_RECONNECT);
    /* A server-requested heartbeat goes out at once. */
    discord_session_ack(&s, 2200);
    assert_int_equal(discord_session_heartbeat_asked(&s, 2300), DISCORD_ACT_HEARTBEAT);
}

static void test_invalid_session_and_reconnect_ops(void **state)
{
    (void)state;
    struct discord_session s;
    discord_session_init(&s);
    discord_session_dispatch(&s, 3, "READY", "sess", "wss://r");
    assert_int_equal(discord_session_reconnect_asked(&s), DISCORD_ACT_RECONNECT);
    uint32_t wait;
    assert_int_equal(discord_session_invalid(&s, true, 0.5, &wait), DISCORD_ACT_RECONNECT);
    assert_int_equal(wait, 0);
    assert_true(discord_session_resumable(&s));
    assert_int_equal(discord_session_invalid(&s, false, 0.5, &wait), DISCORD_ACT_RECONNECT);
    assert_int_equal(wait, 3000);
    assert_false(discord_session_resumable(&s));
    uint32_t first;
    assert_int_equal(discord_session_hello(&s, 41250, 0.0, &first), DISCORD_ACT_IDENTIFY);
}

static void test_close_codes(void **state)
{
    (void)state;
    int stop[] = {4004, 4010, 4011, 4012, 4013, 4014};
    for (size_t i = 0; i < sizeof(stop) / sizeof(stop[0]); i++) {
        struct discord_session s;
        discord_session_init(&s);
        uint32_t wait;
        assert_int_equal(discord_session_closed(&s, stop[i], 0.3, &wait), DISCORD_ACT_STOP);
        assert_non_null(discord_close_reason(stop[i]));
    }
    struct discord_session s;
    discord_session_init(&s);
    discord_session_dispatch(&s, 9, "READY", "sess", "wss://r");
    uint32_t wait;
    assert_int_equal(discord_session_closed(&s, 4009, 0.0, &wait), DISCORD_ACT_RECONNECT);
    assert_false(discord_session_resumable(&s));
    /* Backoff grows with failures and is capped at a minute. */
    uint32_t prev = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(discord_session_closed(&s, 0, 0.999, &wait), DISCORD_ACT_RECONNECT);
        assert_true(wait >= prev || wait >= 59000);
        assert_true(wait <= 60000);
        prev = wait;
    }
    assert_true(prev >= 59000);
    discord_session_dispatch(&s, 1, "RESUMED", NULL, NULL);
    assert_int_equal(s.failures, 0);
}

static void test_send_limit_keeps_heartbeats(void **state)
{
    (void)state;
    struct discord_send_limit l;
    discord_send_limit_init(&l);
    uint64_t now = 1000;
    size_t sent = 0;
    while (discord_send_limit_take(&l, now, false) == 0)
        sent++;
    assert_int_equal(sent, DISCORD_SEND_LIMIT - DISCORD_SEND_HEARTBEAT_RESERVE);
    /* Heartbeats still pass, up to the hard limit. */
    for (int i = 0; i < DISCORD_SEND_HEARTBEAT_RESERVE; i++)
        assert_int_equal(discord_send_limit_take(&l, now, true), 0);
    uint64_t wait = discord_send_limit_take(&l, now, true);
    assert_int_equal(wait, DISCORD_SEND_WINDOW_MS);
    assert_int_equal(discord_send_limit_take(&l, now + DISCORD_SEND_WINDOW_MS, false), 0);
}

static void test_identify_gate_and_sharding(void **state)
{
    (void)state;
    struct discord_identify_gate g;
    discord_identify_gate_init(&g, 2);
    assert_int_equal(discord_identify_gate_take(&g, 0, 100), 0);
    assert_int_equal(discord_identify_gate_take(&g, 1, 100), 0);    /* other bucket */
    assert_int_equal(discord_identify_gate_take(&g, 2, 100), 5000); /* bucket 0 again */
    assert_int_equal(discord_identify_gate_take(&g, 2, 5100), 0);
    g.spacing_ms = 50; /* shortened, as tests of the connection do */
    assert_int_equal(discord_identify_gate_take(&g, 1, 5100), 0);
    assert_int_equal(discord_identify_gate_take(&g, 1, 5120), 30);
    /* The documented example: guild 197038439483310086 on 2 shards lands... */
    uint64_t guild = 197038439483310086ULL;
    assert_int_equal(discord_shard_for_guild(guild, 1), 0);
    assert_int_equal(discord_shard_for_guild(guild, 2), (unsigned)((guild >> 22) % 2));
    assert_int_equal(discord_shard_for_guild(guild, 0), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_zstream_split_anywhere),
    cmocka_unit_test(test_zstream_exactly_the_limit),
    cmocka_unit_test(test_zstream_whole_when_input_ends_first),
    cmocka_unit_test(test_zstream_corrupt_and_oversized),
    cmocka_unit_test(test_zstream_marker_only_at_message_end),
    cmocka_unit_test(test_zstream_skips_oversized_and_goes_on),
    cmocka_unit_test(test_zstream_gives_back_big_buffers),
    cmocka_unit_test(test_zstd_split_anywhere),
    cmocka_unit_test(test_zstd_corrupt_oversized_and_limit),
    cmocka_unit_test(test_zstream_other_kind_and_text),
    cmocka_unit_test(test_hello_identify_then_resume),
    cmocka_unit_test(test_zombie_connection_reconnects),
    cmocka_unit_test(test_invalid_session_and_reconnect_ops),
    cmocka_unit_test(test_close_codes),
    cmocka_unit_test(test_send_limit_keeps_heartbeats),
    cmocka_unit_test(test_identify_gate_and_sharding),
};

TEST_GROUP_DEFINE(discord_session, tests, NULL, NULL)
