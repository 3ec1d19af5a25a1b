/* The gateway stream inflated off the loop (adapters/discord/ginflate.h):
 * payloads come back whole and in order across many batches, reading is
 * paused while too much waits, what was received is all delivered when the
 * connection ends, a broken stream ends the deliveries, and the owner may
 * let go from inside a delivery. Each case runs threaded and inline. */
#include "tests/test.h"

#include "adapters/discord/ginflate.h"
#include "base/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define GI_MANY 2000 /* payloads of about 1 KiB: many batches, past every cap */
#define GI_TEXT_MAX (GINFLATE_OUT_CAP + 4096)

/* The compressed stream, one websocket message per payload, each split in
 * two parts (the first not ending the message). */
struct gi_stream {
    unsigned char *buf;
    size_t len;
    size_t *ends; /* offset just past each message */
    size_t n;
};

/* Every gi_big-th payload (0: none) is a large one, kept beside the ring. */
static size_t gi_big;

static size_t gi_payload(char *out, size_t cap, size_t i)
{
    int n = snprintf(out, cap, "{\"op\":0,\"s\":%zu,\"d\":{\"content\":\"", i + 1);
    if (gi_big != 0 && i % gi_big == gi_big - 1) {
        /* Larger than half the ring. */
        size_t fill = GINFLATE_OUT_CAP * 3 / 4;
        memset(out + n, 'a' + (int)(i % 26), fill);
        n += (int)fill;
    }
    /* Numbers that repeat little, so the stream is not all back-references. */
    uint64_t r = (uint64_t)i * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t k = 0; k < 120; k++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        n += snprintf(out + n, cap - (size_t)n, "%u ", (unsigned)(r >> 40) % 100000u);
    }
    n += snprintf(out + n, cap - (size_t)n, "\"}}");
    return (size_t)n;
}

static void gi_compress(enum discord_compress kind, size_t n, struct gi_stream *s)
{
    size_t cap = n * 2048 + 4096 + (gi_big != 0 ? n / gi_big * GINFLATE_OUT_CAP : 0);
    s->buf = malloc(cap);
    s->ends = calloc(n, sizeof(size_t));
    assert_non_null(s->buf);
    assert_non_null(s->ends);
    s->len = 0;
    s->n = n;
    char *text = malloc(GI_TEXT_MAX);
    assert_non_null(text);
    z_stream z;
    memset(&z, 0, sizeof(z));
    ZSTD_CCtx *zc = NULL;
    if (kind == DISCORD_COMPRESS_ZLIB)
        assert_int_equal(deflateInit(&z, 6), Z_OK);
    else
        assert_non_null(zc = ZSTD_createCCtx());
    for (size_t i = 0; i < n; i++) {
        size_t tl = gi_payload(text, GI_TEXT_MAX, i);
        if (kind == DISCORD_COMPRESS_ZLIB) {
            z.next_in = (Bytef *)text;
            z.avail_in = (uInt)tl;
            z.next_out = s->buf + s->len;
            z.avail_out = (uInt)(cap - s->len);
            assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
            s->len = (size_t)(z.next_out - s->buf);
        } else {
            ZSTD_inBuffer in = {text, tl, 0};
            ZSTD_outBuffer o = {s->buf + s->len, cap - s->len, 0};
            size_t left;
            do {
                left = ZSTD_compressStream2(zc, &o, &in, ZSTD_e_flush);
                assert_false(ZSTD_isError(left));
            } while (left != 0);
            s->len += o.pos;
        }
        s->ends[i] = s->len;
    }
    if (kind == DISCORD_COMPRESS_ZLIB)
        deflateEnd(&z);
    ZSTD_freeCCtx(zc);
    free(text);
}

static void gi_stream_free(struct gi_stream *s)
{
    free(s->buf);
    free(s->ends);
}

struct gi {
    uv_loop_t loop;
    struct ginflate *gx;
    size_t got;       /* payloads delivered */
    size_t errors;    /* failures delivered */
    size_t after_err; /* anything delivered after a failure */
    bool order_ok;
    int pauses, resumes;
    bool paused;
    size_t free_at; /* let go on this payload (0: never) */
    bool switched_seen;
    uv_timer_t guard; /* a case that stalls fails instead of hanging */
    bool timed_out;
};

static void gi_deliver(void *data, const struct ginflated *r)
{
    struct gi *t = data;
    if (t->errors > 0)
        t->after_err++;
    if (r->switched)
        t->switched_seen = true;
    if (r->rc != 1) {
        t->errors++;
        return;
    }
    char *want = malloc(GI_TEXT_MAX);
    assert_non_null(want);
    size_t wl = gi_payload(want, GI_TEXT_MAX, t->got);
    if (r->len != wl || memcmp(r->json, want, wl) != 0 || r->json[r->len] != '\0')
        t->order_ok = false;
    free(want);
    t->got++;
    if (t->free_at != 0 && t->got == t->free_at) {
        ginflate_free(t->gx);
        t->gx = NULL;
    }
}

static void gi_flow(void *data, bool pause)
{
    struct gi *t = data;
    if (pause) {
        t->pauses++;
        t->paused = true;
    } else {
        t->resumes++;
        t->paused = false;
    }
}

static void gi_guard_fired(uv_timer_t *timer)
{
    struct gi *t = timer->data;
    t->timed_out = true;
    uv_stop(&t->loop);
}

static void gi_start(struct gi *t, enum discord_compress kind, bool inline_)
{
    memset(t, 0, sizeof(*t));
    t->order_ok = true;
    assert_int_equal(uv_loop_init(&t->loop), 0);
    uv_timer_init(&t->loop, &t->guard);
    t->guard.data = t;
    uv_timer_start(&t->guard, gi_guard_fired, 20000, 0);
    uv_unref((uv_handle_t *)&t->guard);
    t->gx = ginflate_new(&t->loop, kind, 1 << 20, inline_, gi_deliver, gi_flow, t);
    assert_non_null(t->gx);
}

/* Push messages [from, to) of s, each in two parts. */
static void gi_push(struct gi *t, const struct gi_stream *s, size_t from, size_t to)
{
    for (size_t i = from; i < to && t->gx != NULL; i++) {
        size_t at = i == 0 ? 0 : s->ends[i - 1];
        size_t len = s->ends[i] - at, half = len / 2;
        assert_int_equal(ginflate_push(t->gx, s->buf + at, half, true, false), 0);
        if (t->gx != NULL)
            assert_int_equal(ginflate_push(t->gx, s->buf + at + half, len - half, true, true), 0);
    }
}

/* A message that breaks a deflate stream: a block header of the reserved
 * type 3. */
static void gi_push_broken(struct gi *t)
{
    static const unsigned char bad[] = {0x07, 0xff, 0xff, 0x00, 0x00, 0xff, 0xff};
    assert_int_equal(ginflate_push(t->gx, bad, sizeof(bad), true, true), 0);
}

/* Let go, and run the loop until everything is closed. */
static void gi_end(struct gi *t)
{
    ginflate_free(t->gx);
    t->gx = NULL;
    uv_close((uv_handle_t *)&t->guard, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_false(t->timed_out);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

/* Run the loop until want payloads came (or the loop has nothing left). */
static void gi_run_until(struct gi *t, size_t want)
{
    while (t->got < want && t->errors == 0 && !t->timed_out && t->gx != NULL &&
           uv_run(&t->loop, UV_RUN_ONCE) != 0) {
    }
}

static void order_and_flow(enum discord_compress kind, bool inline_)
{
    struct gi_stream s;
    gi_compress(kind, GI_MANY, &s);
    struct gi t;
    gi_start(&t, kind, inline_);
    /* All pushed before the loop runs: far more than GINFLATE_PEND_CAP
     * waits, so reading is paused (threaded), and given back once the
     * worker has taken it in. */
    gi_push(&t, &s, 0, GI_MANY);
    if (!inline_) {
        assert_true(s.len > 2 * GINFLATE_PEND_CAP);
        assert_int_equal(t.pauses, 1);
        assert_true(t.got < GI_MANY);
    }
    gi_run_until(&t, GI_MANY);
    assert_int_equal(t.got, GI_MANY);
    assert_true(t.order_ok);
    assert_int_equal(t.errors, 0);
    assert_false(t.paused);
    assert_int_equal(t.resumes, t.pauses);
    gi_end(&t);
    gi_stream_free(&s);
}

static void test_ginflate_order_and_flow(void **state)
{
    (void)state;
    order_and_flow(DISCORD_COMPRESS_ZLIB, false);
    order_and_flow(DISCORD_COMPRESS_ZSTD, false);
    order_and_flow(DISCORD_COMPRESS_ZLIB, true);
}

/* The connection ended: every payload it received is delivered before
 * ginflate_drain returns, in order and once, wherever the worker stood. */
static void drain_delivers_all(enum discord_compress kind, int spins)
{
    struct gi_stream s;
    gi_compress(kind, GI_MANY, &s);
    struct gi t;
    gi_start(&t, kind, false);
    gi_push(&t, &s, 0, GI_MANY / 2);
    for (int i = 0; i < spins; i++)
        uv_run(&t.loop, UV_RUN_NOWAIT);
    gi_push(&t, &s, GI_MANY / 2, GI_MANY);
    ginflate_drain(t.gx);
    assert_int_equal(t.got, GI_MANY);
    assert_true(t.order_ok);
    /* Nothing comes twice after it. */
    gi_end(&t);
    assert_int_equal(t.got, GI_MANY);
    gi_stream_free(&s);
}

static void test_ginflate_drain_delivers_all(void **state)
{
    (void)state;
    drain_delivers_all(DISCORD_COMPRESS_ZLIB, 0);
    drain_delivers_all(DISCORD_COMPRESS_ZLIB, 3);
    drain_delivers_all(DISCORD_COMPRESS_ZSTD, 3);
}

/* A broken stream: the payloads before it, one failure, then nothing,
 * whatever is pushed after. */
static void broken_stream(bool inline_)
{
    struct gi_stream s;
    gi_compress(DISCORD_COMPRESS_ZLIB, 300, &s);
    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, inline_);
    gi_push(&t, &s, 0, 200);
    gi_push_broken(&t);
    gi_push(&t, &s, 200, 300);
    gi_run_until(&t, 300);
    assert_int_equal(t.got, 200);
    assert_true(t.order_ok);
    assert_int_equal(t.errors, 1);
    assert_int_equal(t.after_err, 0);
    assert_int_equal(ginflate_push(t.gx, s.buf, s.ends[0], true, true), 0);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    assert_int_equal(t.after_err, 0);
    gi_end(&t);
    gi_stream_free(&s);
}

/* The connection ends with a broken stream among what it received: drain
 * delivers the payloads before it and the one failure, and stops there
 * (a text message after it would otherwise be read as a payload). */
static void broken_then_drain(bool after_failure)
{
    struct gi_stream s;
    gi_compress(DISCORD_COMPRESS_ZLIB, 300, &s);
    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, false);
    gi_push(&t, &s, 0, 200);
    gi_push_broken(&t);
    static const char text[] = "{\"op\":0,\"s\":201}";
    assert_int_equal(ginflate_push(t.gx, text, strlen(text), false, true), 0);
    gi_push(&t, &s, 200, 300);
    /* after_failure: the worker stopped at the failure and the loop took
     * it in, what follows it still pushed and not inflated. */
    if (after_failure)
        gi_run_until(&t, 300);
    ginflate_drain(t.gx);
    assert_int_equal(t.got, 200);
    assert_true(t.order_ok);
    assert_int_equal(t.errors, 1);
    assert_int_equal(t.after_err, 0);
    gi_end(&t);
    gi_stream_free(&s);
}

/* The stream breaks while reading is stopped: reading starts again, since
 * nothing more will be inflated (the connection's close handshake has to
 * read the server's answer). */
static void test_ginflate_broken_while_paused(void **state)
{
    (void)state;
    struct gi_stream s;
    gi_compress(DISCORD_COMPRESS_ZLIB, GI_MANY, &s);
    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, false);
    gi_push(&t, &s, 0, 10);
    gi_push_broken(&t);
    /* The worker takes those in and breaks on the last; while its results
     * wait for the loop, far more comes in, and reading stops. */
    uv_run(&t.loop, UV_RUN_NOWAIT);
    usleep(50 * 1000);
    gi_push(&t, &s, 10, GI_MANY);
    assert_true(t.paused);
    gi_run_until(&t, GI_MANY);
    assert_int_equal(t.errors, 1);
    assert_false(t.paused);
    assert_int_equal(t.resumes, t.pauses);
    gi_end(&t);
    gi_stream_free(&s);
}

static void test_ginflate_broken_stream(void **state)
{
    (void)state;
    broken_stream(false);
    broken_stream(true);
    broken_then_drain(false);
    broken_then_drain(true);
}

/* The owner lets go inside a delivery: nothing more is delivered, and the
 * memory and handles go (the sanitizer and uv_loop_close say so). */
static void free_in_delivery(bool inline_, bool draining)
{
    struct gi_stream s;
    gi_compress(DISCORD_COMPRESS_ZLIB, GI_MANY, &s);
    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, inline_);
    t.free_at = 1000;
    gi_push(&t, &s, 0, GI_MANY);
    if (draining && t.gx != NULL)
        ginflate_drain(t.gx);
    else
        gi_run_until(&t, GI_MANY);
    assert_null(t.gx);
    assert_int_equal(t.got, 1000);
    assert_true(t.order_ok);
    gi_end(&t);
    assert_int_equal(t.got, 1000);
    gi_stream_free(&s);
}

static void test_ginflate_free_in_delivery(void **state)
{
    (void)state;
    free_in_delivery(false, false);
    free_in_delivery(false, true);
    free_in_delivery(true, false);
}

/* A stream of the other kind than asked is read as what it is, and each
 * result says so. */
static void test_ginflate_other_kind(void **state)
{
    (void)state;
    struct gi_stream s;
    gi_compress(DISCORD_COMPRESS_ZSTD, 50, &s);
    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, false);
    gi_push(&t, &s, 0, 50);
    gi_run_until(&t, 50);
    assert_int_equal(t.got, 50);
    assert_true(t.order_ok);
    assert_true(t.switched_seen);
    gi_end(&t);
    gi_stream_free(&s);
}

/* Payloads larger than half the ring go beside it, among the others, in
 * order, also when the connection ends with some of them waiting. */
static void test_ginflate_large_payloads(void **state)
{
    (void)state;
    gi_big = 7;
    struct gi_stream s;
    gi_compress(DISCORD_COMPRESS_ZLIB, 70, &s);
    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, false);
    gi_push(&t, &s, 0, 70);
    gi_run_until(&t, 70);
    assert_int_equal(t.got, 70);
    assert_true(t.order_ok);
    gi_end(&t);
    gi_start(&t, DISCORD_COMPRESS_ZLIB, false);
    gi_push(&t, &s, 0, 35);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    gi_push(&t, &s, 35, 70);
    ginflate_drain(t.gx);
    assert_int_equal(t.got, 70);
    assert_true(t.order_ok);
    gi_end(&t);
    gi_stream_free(&s);
    gi_big = 0;
}

/* Reading stops while too much waits, even inside one message too large to
 * wait whole (a big GUILD_CREATE): it starts again once the worker took the
 * input in, not only when a payload comes out. Parts are pushed only while
 * reading is on, as the socket would give them. */
static void test_ginflate_pause_inside_a_message(void **state)
{
    (void)state;
    size_t tl = 6 * GINFLATE_PEND_CAP;
    char *text = malloc(tl + 1);
    assert_non_null(text);
    uint64_t r = 88172645463325252ULL;
    for (size_t i = 0; i < tl; i++) {
        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
        text[i] = (char)('a' + r % 26);
    }
    memcpy(text, "{\"x\":\"", 6);
    memcpy(text + tl - 2, "\"}", 2);
    size_t cap = tl + 4096;
    unsigned char *z = malloc(cap);
    assert_non_null(z);
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit(&zs, 6), Z_OK);
    zs.next_in = (Bytef *)text;
    zs.avail_in = (uInt)tl;
    zs.next_out = z;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
    size_t zl = (size_t)(zs.next_out - z);
    deflateEnd(&zs);
    assert_true(zl > 2 * GINFLATE_PEND_CAP);

    struct gi t;
    gi_start(&t, DISCORD_COMPRESS_ZLIB, false);
    for (size_t at = 0; at < zl && !t.timed_out;) {
        while (t.paused && !t.timed_out)
            uv_run(&t.loop, UV_RUN_ONCE);
        size_t part = zl - at < 4096 ? zl - at : 4096;
        assert_int_equal(ginflate_push(t.gx, z + at, part, true, at + part == zl), 0);
        at += part;
    }
    assert_true(t.pauses > 0);
    gi_run_until(&t, 1);
    assert_int_equal(t.got, 1); /* whole: one payload, no error */
    assert_int_equal(t.errors, 0);
    gi_end(&t);
    free(z);
    free(text);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ginflate_order_and_flow),
    cmocka_unit_test(test_ginflate_drain_delivers_all),
    cmocka_unit_test(test_ginflate_broken_stream),
    cmocka_unit_test(test_ginflate_broken_while_paused),
    cmocka_unit_test(test_ginflate_free_in_delivery),
    cmocka_unit_test(test_ginflate_other_kind),
    cmocka_unit_test(test_ginflate_large_payloads),
    cmocka_unit_test(test_ginflate_pause_inside_a_message),
};

TEST_GROUP_DEFINE(discord_ginflate, tests, NULL, NULL)
