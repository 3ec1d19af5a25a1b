/* The pipelined client's response framing, alone: heads, lengths,
 * connection tokens, interim answers and chunked bodies, at every cut. */
#include "tests/test.h"

#include "base/error.h"
#include "net/http_response.h"

#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 4096

static void test_head_fields(void **state)
{
    (void)state;
    struct http_response_head h;
    const char *r =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "content-length: 17\r\nConnection: keep-alive, Upgrade\r\n\r\n{\"ok\":true}......";
    assert_int_equal(http_response_head_parse(r, strlen(r), HEAD_MAX, &h), 1);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.head_len, strstr(r, "\r\n\r\n") + 4 - r);
    assert_true(h.has_length);
    assert_int_equal(h.length, 17);
    assert_false(h.chunked);
    assert_false(h.close);

    r = "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: gzip, Chunked\r\n"
        "Connection: close\r\n\r\n";
    assert_int_equal(http_response_head_parse(r, strlen(r), HEAD_MAX, &h), 1);
    assert_int_equal(h.status, 429);
    assert_true(h.chunked);
    assert_true(h.close);

    /* HTTP/1.0 closes unless it says keep-alive; no reason phrase is fine. */
    r = "HTTP/1.0 204\r\n\r\n";
    assert_int_equal(http_response_head_parse(r, strlen(r), HEAD_MAX, &h), 1);
    assert_int_equal(h.status, 204);
    assert_true(h.close);
    r = "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n";
    assert_int_equal(http_response_head_parse(r, strlen(r), HEAD_MAX, &h), 1);
    assert_false(h.close);
}

static void test_head_incomplete_at_every_cut(void **state)
{
    (void)state;
    const char *r = "HTTP/1.1 100 Continue\r\nX-A: b\r\n\r\n";
    struct http_response_head h;
    size_t n = strlen(r);
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(http_response_head_parse(r, cut, HEAD_MAX, &h), 0);
    assert_int_equal(http_response_head_parse(r, n, HEAD_MAX, &h), 1);
    assert_int_equal(h.status, 100);
}

static void test_head_refused(void **state)
{
    (void)state;
    struct http_response_head h;
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 Low\r\n\r\n",
        "HTTP/1.1 600 High\r\n\r\n",
        "HTTP/1.1 000 Zero\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (http_response_head_parse(bad[i], strlen(bad[i]), HEAD_MAX, &h) != HB_EPROTO)
            fail_msg("accepted: %s", bad[i]);
    }
    /* The hostile answer from tests/corpus/http_pipe/, from its "HTTP/". */
    size_t len = 0;
    char *file = test_file_read("tests/corpus/http_pipe/http-pipe-status-000.txt", &len);
    assert_non_null(file);
    const char *at = memmem(file, len, "HTTP/", 5);
    assert_non_null(at);
    assert_int_equal(http_response_head_parse(at, len - (size_t)(at - file), HEAD_MAX, &h),
                     HB_EPROTO);
    free(file);
    /* No end of head within the bound. */
    char big[200];
    memset(big, 'a', sizeof(big));
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    assert_int_equal(http_response_head_parse(big, sizeof(big), 100, &h), HB_EPROTO);
    assert_int_equal(http_response_head_parse(big, 90, 100, &h), 0);
}

static void test_chunked(void **state)
{
    (void)state;
    const char *b =
        "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    size_t n = strlen(b);
    size_t whole = n - strlen("NEXT");
    size_t out_len = 0;
    /* Incomplete at every cut before the end of the trailers. */
    for (size_t cut = 0; cut < whole; cut++)
        assert_int_equal(http_response_chunked(b, cut, NULL, &out_len, 1024), 0);
    assert_int_equal(http_response_chunked(b, n, NULL, &out_len, 1024), (long)whole);
    assert_int_equal(out_len, 23);
    /* Decoded in place. */
    char *copy = strdup(b);
    assert_int_equal(http_response_chunked(copy, n, copy, &out_len, 1024), (long)whole);
    assert_memory_equal(copy, "Wikipedia in\r\n\r\nchunks.", 23);
    free(copy);
    /* Limits and malformed sizes. */
    assert_int_equal(http_response_chunked(b, n, NULL, &out_len, 10), HB_EOVERFLOW);
    assert_int_equal(http_response_chunked("zz\r\n", 4, NULL, &out_len, 10), HB_EPROTO);
    assert_int_equal(http_response_chunked("123456789\r\n", 11, NULL, &out_len, 1u << 30),
                     HB_EPROTO);
    assert_int_equal(http_response_chunked("3\r\nabc", 6, NULL, &out_len, 10), 0);
    assert_int_equal(http_response_chunked("3\r\nabcXY", 9, NULL, &out_len, 10), HB_EPROTO);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_head_fields),
    cmocka_unit_test(test_head_incomplete_at_every_cut),
    cmocka_unit_test(test_head_refused),
    cmocka_unit_test(test_chunked),
};

TEST_GROUP_DEFINE(http_response, tests, NULL, NULL)
