/* Pipelined calls (net/http_pipe.h) against the fake server on loopback:
 * order and framing, a server that closes after a response, an idle
 * connection dropped by the server, a server that does not pipeline,
 * timeouts, refusals and closing with calls pending. Every test runs its
 * own loop and ends with uv_loop_close() == 0. */
#include "tests/test.h"

#include "net/http.h"
#include "net/http_pipe.h"
#include "base/error.h"
#include "tests/fake/httpd.h"
#include "tests/fake/tls_echo.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PX_MAX 64
#define PX_WATCHDOG_MS 20000

struct px;

struct px_call {
    struct px *px;
    int calls; /* completions: must end as 1 */
    int rc;
    int status;
    char body[256];
    size_t len;
    bool nul_ok; /* body[len] was NUL in the callback */
    int order;   /* completion order */
};

struct px {
    uv_loop_t loop;
    struct httpd *srv;
    struct http_client *client;
    struct http_pipe *pipe;
    uv_timer_t watchdog;
    bool fired;
    int closed;
    int done;
    struct px_call calls[PX_MAX];
    /* Server script. */
    unsigned seen;             /* requests the handler saw */
    unsigned seen_seq[PX_MAX]; /* their sequence number on their connection */
    unsigned seen_conn[PX_MAX];
    unsigned close_after; /* answer with Connection: close at this request (1-based) */
    unsigned abort_at;    /* close the connection instead of this request (1-based) */
    bool never;           /* answer nothing */
    size_t big;           /* answer with a body this long */
};

static void px_answer(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct px *px = data;
    unsigned n = ++px->seen;
    if (n <= PX_MAX) {
        px->seen_seq[n - 1] = req->seq;
        px->seen_conn[n - 1] = req->conn_id;
    }
    if (px->never)
        return;
    if (n == px->abort_at) {
        httpd_response_abort(res);
        return;
    }
    if (n == px->close_after)
        httpd_response_close_after(res);
    if (strcmp(req->target, "/chunked") == 0) {
        httpd_response_start(res, 200, "application/json");
        httpd_response_chunk(res, "{\"a\":", 5);
        httpd_response_chunk(res, "1}", 2);
        httpd_response_end(res);
        return;
    }
    if (strcmp(req->target, "/empty") == 0) {
        httpd_response_send(res, 204, NULL, "", 0);
        return;
    }
    if (px->big > 0) {
        char *b = malloc(px->big);
        memset(b, 'x', px->big);
        httpd_response_send(res, 200, "text/plain", b, px->big);
        free(b);
        return;
    }
    /* Echo the body back, so each answer says which call it is. */
    httpd_response_send(res, 200, "application/json", req->body, req->body_len);
}

static void px_done(int rc, int status, const char *body, size_t len, void *data)
{
    struct px_call *c = data;
    c->calls++;
    c->rc = rc;
    c->status = status;
    c->len = len;
    c->nul_ok = body[len] == '\0';
    snprintf(c->body, sizeof(c->body), "%.*s", (int)(len < 255 ? len : 255), body);
    c->order = ++c->px->done;
}

static void px_watchdog(uv_timer_t *t)
{
    struct px *px = t->data;
    px->fired = true;
}

static void px_init(struct px *px, const struct http_pipe_options *opts)
{
    memset(px, 0, sizeof(*px));
    assert_int_equal(uv_loop_init(&px->loop), 0);
    px->srv = httpd_new(&px->loop, px_answer, px);
    assert_non_null(px->srv);
    assert_int_equal(http_client_new(&px->loop, NULL, &px->client), 0);
    px->pipe = http_pipe_new(&px->loop, px->client, httpd_base_url(px->srv), opts);
    assert_non_null(px->pipe);
    uv_timer_init(&px->loop, &px->watchdog);
    px->watchdog.data = px;
    uv_timer_start(&px->watchdog, px_watchdog, PX_WATCHDOG_MS, 0);
    for (int i = 0; i < PX_MAX; i++)
        px->calls[i].px = px;
}

static void px_post(struct px *px, int i, const char *path)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"call\":%d}", i);
    assert_int_equal(
        http_pipe_post(px->pipe, path, "application/json", body, (size_t)n, px_done, &px->calls[i]),
        0);
}

static void px_wait_done(struct px *px, int n)
{
    while (px->done < n && !px->fired)
        uv_run(&px->loop, UV_RUN_ONCE);
    assert_false(px->fired);
}

static void px_closed(void *data)
{
    struct px *px = data;
    px->closed++;
}

static void px_count_closed(void *data)
{
    (*(int *)data)++;
}

static void px_finish(struct px *px)
{
    if (px->pipe != NULL)
        http_pipe_close(px->pipe, px_closed, px);
    http_client_close(px->client, px_closed, px);
    httpd_close(px->srv, px_closed, px);
    uv_close((uv_handle_t *)&px->watchdog, NULL);
    while (px->closed < 3)
        uv_run(&px->loop, UV_RUN_ONCE);
    uv_run(&px->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&px->loop), 0);
}

/* Calls made in one turn go out back to back on one connection and come
 * back in order, each once, with its own answer. */
static void test_pipe_order_and_framing(void **state)
{
    (void)state;
    struct px px;
    struct http_pipe_options o = {.connections = 1, .depth = 8};
    px_init(&px, &o);
    for (int i = 0; i < 20; i++)
        px_post(&px, i, "/call");
    px_post(&px, 20, "/chunked");
    px_post(&px, 21, "/empty");
    px_wait_done(&px, 22);
    for (int i = 0; i < 20; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"call\":%d}", i);
        assert_int_equal(px.calls[i].calls, 1);
        assert_int_equal(px.calls[i].rc, 0);
        assert_int_equal(px.calls[i].status, 200);
        assert_string_equal(px.calls[i].body, want);
        assert_true(px.calls[i].nul_ok);
        assert_int_equal(px.calls[i].order, i + 1);
    }
    assert_int_equal(px.calls[20].status, 200);
    assert_string_equal(px.calls[20].body, "{\"a\":1}");
    assert_int_equal(px.calls[20].len, 7);
    assert_int_equal(px.calls[21].status, 204);
    assert_int_equal(px.calls[21].len, 0);
    /* One connection carried them all, in the order they were made. */
    assert_int_equal(httpd_connections(px.srv), 1);
    assert_int_equal(http_pipe_opened(px.pipe), 1);
    for (unsigned i = 0; i < px.seen; i++)
        assert_int_equal(px.seen_seq[i], i + 1);
    px_finish(&px);
}

/* More calls than one connection takes spread over several. */
static void test_pipe_spreads_over_connections(void **state)
{
    (void)state;
    struct px px;
    struct http_pipe_options o = {.connections = 3, .depth = 4};
    px_init(&px, &o);
    for (int i = 0; i < 40; i++)
        px_post(&px, i, "/call");
    px_wait_done(&px, 40);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(px.calls[i].calls, 1);
        assert_int_equal(px.calls[i].status, 200);
    }
    assert_true(httpd_connections(px.srv) >= 2);
    assert_true(httpd_connections(px.srv) <= 3);
    assert_int_equal(px.seen, 40);
    px_finish(&px);
}

/* "Connection: close" on the third answer: the calls written behind it
 * were never processed and go out again on a new connection; each call is
 * answered once and the server handled each once. */
static void test_pipe_close_after_requeues(void **state)
{
    (void)state;
    struct px px;
    struct http_pipe_options o = {.connections = 1, .depth = 8};
    px_init(&px, &o);
    px.close_after = 3;
    for (int i = 0; i < 8; i++)
        px_post(&px, i, "/call");
    px_wait_done(&px, 8);
    for (int i = 0; i < 8; i++) {
        char want[32];
        snprintf(want, sizeof(want), "{\"call\":%d}", i);
        assert_int_equal(px.calls[i].calls, 1);
        assert_int_equal(px.calls[i].rc, 0);
        assert_string_equal(px.calls[i].body, want);
        assert_int_equal(px.calls[i].order, i + 1);
    }
    assert_int_equal(px.seen, 8);
    assert_int_equal(http_pipe_resent(px.pipe), 5);
    assert_int_equal(httpd_connections(px.srv), 2);
    assert_int_equal(http_pipe_depth(px.pipe), 8); /* that was no refusal to pipeline */
    px_finish(&px);
}

/* The server drops an idle kept-alive connection just as a call goes out
 * on it: the call is sent once more on a fresh connection. */
static void test_pipe_dead_idle_connection_resends(void **state)
{
    (void)state;
    struct px px;
    struct http_pipe_options o = {.connections = 1};
    px_init(&px, &o);
    px_post(&px, 0, "/call");
    px_wait_done(&px, 1);
    px_post(&px, 1, "/call");
    uv_run(&px.loop, UV_RUN_NOWAIT); /* written at the end of this turn, not yet read */
    httpd_close_idle(px.srv);        /* the server hangs up with it unread */
    px_wait_done(&px, 2);
    assert_int_equal(px.calls[1].calls, 1);
    assert_int_equal(px.calls[1].rc, 0);
    assert_string_equal(px.calls[1].body, "{\"call\":1}");
    assert_int_equal(httpd_connections(px.srv), 2);
    assert_int_equal(http_pipe_resent(px.pipe), 1); /* it did go out on the dead one */
    assert_int_equal(px.seen, 2);
    px_finish(&px);
}

/* A server that answers one call and hangs up on the rest does not
 * pipeline: the calls it dropped fail (they may have been processed), and
 * from then on calls go one at a time, which it serves. */
static void test_pipe_falls_back_without_pipelining(void **state)
{
    (void)state;
    struct px px;
    struct http_pipe_options o = {.connections = 1, .depth = 4};
    px_init(&px, &o);
    px.abort_at = 2;
    for (int i = 0; i < 4; i++)
        px_post(&px, i, "/call");
    px_wait_done(&px, 4);
    assert_int_equal(px.calls[0].rc, 0);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(px.calls[i].calls, 1);
        assert_int_equal(px.calls[i].rc, HB_EIO);
    }
    assert_int_equal(http_pipe_depth(px.pipe), 1);
    assert_int_equal(http_pipe_resent(px.pipe), 0);
    for (int i = 4; i < 8; i++)
        px_post(&px, i, "/call");
    px_wait_done(&px, 8);
    for (int i = 4; i < 8; i++)
        assert_int_equal(px.calls[i].rc, 0);
    px_finish(&px);
}

/* An answer that never comes fails its call at the timeout; a body over
 * the limit fails with HB_EOVERFLOW; a large body arrives whole. */
static void test_pipe_timeout_and_limits(void **state)
{
    (void)state;
    struct px px;
    struct http_pipe_options o = {.connections = 1, .timeout_ms = 150, .max_body = 100000};
    px_init(&px, &o);
    px.never = true;
    px_post(&px, 0, "/call");
    px_wait_done(&px, 1);
    assert_int_equal(px.calls[0].rc, HB_ETIMEOUT);
    px.never = false;
    px.big = 90000;
    px_post(&px, 1, "/call");
    px_wait_done(&px, 2);
    assert_int_equal(px.calls[1].rc, 0);
    assert_int_equal(px.calls[1].len, 90000);
    px.big = 100001;
    px_post(&px, 2, "/call");
    px_wait_done(&px, 3);
    assert_int_equal(px.calls[2].rc, HB_EOVERFLOW);
    px_finish(&px);
}

/* A server that answers the first bytes it reads with canned bytes, as
 * they are, and then says nothing more. */
struct raw_srv {
    uv_tcp_t listener;
    uv_tcp_t conn;
    bool have_conn;
    bool sent;
    const char *answer;
    size_t len;
    uv_write_t w;
    uv_buf_t buf;
    int closed;
};

static void raw_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
    static char scratch[4096];
    (void)h;
    (void)size;
    *b = uv_buf_init(scratch, sizeof(scratch));
}

static void raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct raw_srv *r = s->data;
    (void)b;
    if (n > 0 && !r->sent) {
        r->sent = true;
        r->buf = uv_buf_init((char *)r->answer, (unsigned)r->len);
        assert_int_equal(uv_write(&r->w, s, &r->buf, 1, NULL), 0);
    }
}

static void raw_accept(uv_stream_t *l, int status)
{
    struct raw_srv *r = l->data;
    if (status < 0 || r->have_conn)
        return;
    uv_tcp_init(l->loop, &r->conn);
    r->conn.data = r;
    r->have_conn = true;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&r->conn), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&r->conn, raw_alloc, raw_read), 0);
}

static void raw_closed(uv_handle_t *h)
{
    struct raw_srv *r = h->data;
    r->closed++;
}

/* A status line must hold a status from 100 to 599: "000" (an answer from
 * tests/corpus/http_pipe/, from its "HTTP/" on; the bytes before are the
 * fuzzer's framing) is a protocol error, never a completed call. */
static void test_pipe_status_out_of_range(void **state)
{
    (void)state;
    size_t len = 0;
    char *corpus = test_file_read("tests/corpus/http_pipe/http-pipe-status-000.txt", &len);
    assert_non_null(corpus);
    char *http = memmem(corpus, len, "HTTP/", 5);
    assert_non_null(http);
    struct px px;
    memset(&px, 0, sizeof(px));
    px.calls[0].px = &px;
    assert_int_equal(uv_loop_init(&px.loop), 0);
    struct raw_srv r = {.answer = http, .len = len - (size_t)(http - corpus)};
    uv_tcp_init(&px.loop, &r.listener);
    r.listener.data = &r;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_bind(&r.listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r.listener, 8, raw_accept), 0);
    struct sockaddr_in bound;
    int alen = sizeof(bound);
    uv_tcp_getsockname(&r.listener, (struct sockaddr *)&bound, &alen);
    char origin[64];
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", ntohs(bound.sin_port));
    assert_int_equal(http_client_new(&px.loop, NULL, &px.client), 0);
    struct http_pipe_options o = {.connections = 1, .timeout_ms = 5000};
    px.pipe = http_pipe_new(&px.loop, px.client, origin, &o);
    assert_non_null(px.pipe);
    uv_timer_init(&px.loop, &px.watchdog);
    px.watchdog.data = &px;
    uv_timer_start(&px.watchdog, px_watchdog, PX_WATCHDOG_MS, 0);
    px_post(&px, 0, "/call");
    px_wait_done(&px, 1);
    assert_int_equal(px.calls[0].calls, 1);
    assert_int_equal(px.calls[0].rc, HB_EPROTO);
    http_pipe_close(px.pipe, px_closed, &px);
    http_client_close(px.client, px_closed, &px);
    uv_close((uv_handle_t *)&px.watchdog, NULL);
    uv_close((uv_handle_t *)&r.listener, raw_closed);
    if (r.have_conn)
        uv_close((uv_handle_t *)&r.conn, raw_closed);
    while (px.closed < 2 || r.closed < (r.have_conn ? 2 : 1))
        uv_run(&px.loop, UV_RUN_ONCE);
    uv_run(&px.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&px.loop), 0);
    free(corpus);
}

/* Nobody listening: every call fails with the connection's reason. */
static void test_pipe_refused(void **state)
{
    (void)state;
    struct px px;
    px_init(&px, NULL);
    http_pipe_close(px.pipe, px_closed, &px);
    char origin[64];
    snprintf(origin, sizeof(origin), "http://127.0.0.1:%d", test_port_free());
    px.pipe = http_pipe_new(&px.loop, px.client, origin, NULL);
    assert_non_null(px.pipe);
    for (int i = 0; i < 3; i++)
        px_post(&px, i, "/call");
    px_wait_done(&px, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(px.calls[i].calls, 1);
        assert_int_equal(px.calls[i].rc, UV_ECONNREFUSED);
    }
    px.closed--; /* the first pipe's close counted already */
    px_finish(&px);
}

/* Closing with calls queued and written: each completes once with
 * HB_ECANCELED, and nothing is left on the loop. */
static void test_pipe_close_cancels(void **state)
{
    (void)state;
    struct px px;
    px_init(&px, NULL);
    px.never = true;
    for (int i = 0; i < 5; i++)
        px_post(&px, i, "/call");
    /* The fake reads a request only once the one before is answered: the
     * first arriving shows all five were written. */
    while (px.seen < 1 && !px.fired)
        uv_run(&px.loop, UV_RUN_ONCE);
    px_post(&px, 5, "/call"); /* still queued when the close comes */
    http_pipe_close(px.pipe, px_closed, &px);
    assert_int_equal(http_pipe_post(px.pipe, "/call", NULL, "", 0, px_done, &px.calls[6]),
                     HB_ESTATE);
    px.pipe = NULL;
    px_wait_done(&px, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(px.calls[i].calls, 1);
        assert_int_equal(px.calls[i].rc, HB_ECANCELED);
    }
    assert_int_equal(px.calls[6].calls, 0);
    px_finish(&px);
}

/* Bad arguments are refused without a callback. */
static void test_pipe_bad_arguments(void **state)
{
    (void)state;
    struct px px;
    px_init(&px, NULL);
    assert_null(http_pipe_new(&px.loop, px.client, "ftp://example.org", NULL));
    assert_null(http_pipe_new(&px.loop, px.client, "https://user@example.org", NULL));
    assert_null(http_pipe_new(&px.loop, px.client, "https://", NULL));
    assert_int_equal(http_pipe_post(px.pipe, "nopath", NULL, "", 0, px_done, &px.calls[0]),
                     HB_EINVAL);
    assert_int_equal(http_pipe_post(px.pipe, "/a b", NULL, "", 0, px_done, &px.calls[0]),
                     HB_EINVAL);
    assert_int_equal(http_pipe_post(px.pipe, "/a", "x\r\ny: z", "", 0, px_done, &px.calls[0]),
                     HB_EINVAL);
    assert_int_equal(px.calls[0].calls, 0);
    px_finish(&px);
}

/* Over TLS: libcurl makes the connection and checks the certificate
 * (trusted through ca_file), the pipe frames the calls; pipelined calls
 * come back in order on one connection. A client that does not trust the
 * certificate fails every call. */
static void test_pipe_over_tls(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    struct tls_echo *srv = tls_echo_start(dir);
    assert_non_null(srv);
    char origin[64];
    snprintf(origin, sizeof(origin), "https://127.0.0.1:%d", tls_echo_port(srv));
    for (int trust = 1; trust >= 0; trust--) {
        uv_loop_t loop;
        assert_int_equal(uv_loop_init(&loop), 0);
        struct http_client_options co = {.ca_file = trust ? tls_echo_ca(srv) : NULL};
        struct http_client *client = NULL;
        assert_int_equal(http_client_new(&loop, &co, &client), 0);
        struct http_pipe_options po = {.connections = 1, .depth = 8};
        struct http_pipe *pipe = http_pipe_new(&loop, client, origin, &po);
        assert_non_null(pipe);
        struct px px; /* only its calls and counter */
        memset(&px, 0, sizeof(px));
        for (int i = 0; i < 12; i++) {
            px.calls[i].px = &px;
            char body[32];
            int n = snprintf(body, sizeof(body), "{\"tls\":%d}", i);
            assert_int_equal(http_pipe_post(pipe, "/x", "application/json", body, (size_t)n,
                                            px_done, &px.calls[i]),
                             0);
        }
        while (px.done < 12)
            uv_run(&loop, UV_RUN_ONCE);
        for (int i = 0; i < 12; i++) {
            assert_int_equal(px.calls[i].calls, 1);
            if (trust) {
                char want[32];
                snprintf(want, sizeof(want), "{\"tls\":%d}", i);
                assert_int_equal(px.calls[i].rc, 0);
                assert_string_equal(px.calls[i].body, want);
                assert_int_equal(px.calls[i].order, i + 1);
            } else {
                assert_int_equal(px.calls[i].rc, HB_EPROTO);
            }
        }
        int closed = 0;
        http_pipe_close(pipe, px_count_closed, &closed);
        http_client_close(client, px_count_closed, &closed);
        while (closed < 2)
            uv_run(&loop, UV_RUN_ONCE);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
    assert_int_equal(tls_echo_requests(srv), 12);
    assert_int_equal(tls_echo_connections(srv), 2); /* one each; the second refused the cert */
    tls_echo_stop(srv);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pipe_order_and_framing),
    cmocka_unit_test(test_pipe_spreads_over_connections),
    cmocka_unit_test(test_pipe_close_after_requeues),
    cmocka_unit_test(test_pipe_dead_idle_connection_resends),
    cmocka_unit_test(test_pipe_falls_back_without_pipelining),
    cmocka_unit_test(test_pipe_timeout_and_limits),
    cmocka_unit_test(test_pipe_refused),
    cmocka_unit_test(test_pipe_status_out_of_range),
    cmocka_unit_test(test_pipe_close_cancels),
    cmocka_unit_test(test_pipe_bad_arguments),
    cmocka_unit_test(test_pipe_over_tls),
};

TEST_GROUP_DEFINE(http_pipe, tests, NULL, NULL)
