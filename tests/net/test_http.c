/* The HTTP client against the fake server on loopback. Every test runs its
 * own loop, waits for events (never for time to pass) and ends with
 * uv_loop_close() == 0. */
#include "tests/test.h"

#include "net/http.h"
#include "base/error.h"
#include "base/log.h"
#include "tests/fake/httpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FX_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#define FX_WATCHDOG_MS 20000
#define FX_MAX_REQ 128

struct fx;

/* What one request ended with. */
struct result {
    struct fx *fx;
    int index;
    int calls; /* completion callbacks seen: must end as 1 */
    int rc;
    int status;
    char *body;
    size_t len;
    char error[256];
    char bucket[64];      /* X-RateLimit-Bucket read as x-ratelimit-bucket */
    char retry_after[16]; /* Retry-After read as RETRY-AFTER */
    double ms;
};

struct fx {
    uv_loop_t loop;
    struct httpd *srv;
    struct http_client *client;
    uv_timer_t watchdog;
    bool finished;
    bool watchdog_fired;
    int closed;            /* close callbacks of client and server */
    int done_after_close;  /* completions seen after a close callback */
    unsigned conns;        /* connections the server accepted, at finish */
    unsigned reqs;         /* requests the server parsed, at finish */
    unsigned long watches; /* socket watches the client made, at finish */
    int pending;
    struct result res[FX_MAX_REQ];

    /* What the server saw. */
    char seen_method[16];
    char seen_ct[256];
    char seen_xtest[64];
    char seen_agent[128];
    char *seen_body;
    size_t seen_len;
    bool seen_chunked;
    unsigned never_count;
    void (*on_never)(struct fx *fx);
    void *test_data; /* a test's own state */
    struct http_request *inflight[FX_MAX_REQ];

    /* Multipart. */
    bool part_json_ok;
    bool part_file_ok;
    size_t nparts;

    /* Streaming. */
    size_t stream_sent; /* bytes the server has sent */
    size_t stream_seen; /* bytes the client has received */
    int stream_next;    /* next piece to send */
    int data_calls;
    char stream_buf[64];
    bool headers_first; /* headers callback ran before any data */
    int headers_status;
    char stream_header[16];

    /* Sequential keep-alive. */
    int seq_next;
    int seq_total;
};

static const unsigned char file_bytes[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0,
                                           0,    0,   13,  'I', 'H',  'D',  'R',  0xff, 0};

/* ---- the fake server's script ----------------------------------------- */

static const char *const stream_pieces[] = {"one", "two", "three"};

/* Send the next piece only once the client has seen every byte sent so far,
 * so the pieces arrive in separate data callbacks whatever the timing. */
static void stream_step(struct httpd_response *res, void *data)
{
    struct fx *fx = data;
    if (fx->stream_seen == fx->stream_sent) {
        if (fx->stream_next == 3) {
            httpd_response_end(res);
            return;
        }
        const char *p = stream_pieces[fx->stream_next++];
        fx->stream_sent += strlen(p);
        httpd_response_chunk(res, p, strlen(p));
    }
    httpd_response_delay(res, 1);
    httpd_response_call(res, stream_step, fx);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static void server_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct fx *fx = data;
    const char *t = req->target;
    if (strcmp(t, "/hello") == 0) {
        httpd_response_header_add(res, "X-RateLimit-Bucket", "abc123");
        httpd_response_header_add(res, "Retry-After", "2");
        httpd_response_send(res, 200, "text/plain", "hello world", 11);
    } else if (strcmp(t, "/echo") == 0) {
        copy_str(fx->seen_method, sizeof(fx->seen_method), req->method);
        copy_str(fx->seen_ct, sizeof(fx->seen_ct), httpd_request_header(req, "content-type"));
        copy_str(fx->seen_xtest, sizeof(fx->seen_xtest), httpd_request_header(req, "X-Test"));
        copy_str(fx->seen_agent, sizeof(fx->seen_agent), httpd_request_header(req, "User-Agent"));
        free(fx->seen_body);
        fx->seen_body = malloc(req->body_len + 1);
        memcpy(fx->seen_body, req->body, req->body_len + 1);
        fx->seen_len = req->body_len;
        fx->seen_chunked = req->chunked;
        httpd_response_send(res, 201, "application/json", "{\"ok\":true}", 11);
    } else if (strcmp(t, "/never") == 0) {
        fx->never_count++;
        if (fx->on_never != NULL)
            fx->on_never(fx);
    } else if (strcmp(t, "/chunked") == 0) {
        httpd_response_start(res, 200, "text/plain");
        httpd_response_chunk(res, "abc", 3);
        httpd_response_chunk(res, "def", 3);
        httpd_response_chunk(res, "ghi", 3);
        httpd_response_end(res);
    } else if (strcmp(t, "/stream") == 0) {
        httpd_response_header_add(res, "X-Stream", "yes");
        httpd_response_start(res, 200, "text/event-stream");
        httpd_response_call(res, stream_step, fx);
    } else if (strcmp(t, "/stream-forever") == 0) {
        httpd_response_start(res, 200, "text/event-stream");
        httpd_response_chunk(res, "data: 1\n\n", 9);
    } else if (strcmp(t, "/abort") == 0) {
        httpd_response_start(res, 200, "text/plain");
        httpd_response_chunk(res, "partial", 7);
        httpd_response_abort(res);
    } else if (strcmp(t, "/big") == 0) {
        static char big[10000];
        memset(big, 'x', sizeof(big));
        httpd_response_send(res, 200, "text/plain", big, sizeof(big));
    } else if (strcmp(t, "/upload") == 0) {
        fx->nparts = req->nparts;
        copy_str(fx->seen_ct, sizeof(fx->seen_ct), httpd_request_header(req, "Content-Type"));
        const struct httpd_part *j = httpd_request_part(req, "payload_json");
        const struct httpd_part *f = httpd_request_part(req, "files[0]");
        fx->part_json_ok = j != NULL && j->filename == NULL && j->content_type != NULL &&
                           strcmp(j->content_type, "application/json") == 0 &&
                           j->len == strlen("{\"content\":\"hi\"}") &&
                           memcmp(j->data, "{\"content\":\"hi\"}", j->len) == 0;
        fx->part_file_ok =
            f != NULL && f->filename != NULL && strcmp(f->filename, "cat.png") == 0 &&
            f->content_type != NULL && strcmp(f->content_type, "image/png") == 0 &&
            f->len == sizeof(file_bytes) && memcmp(f->data, file_bytes, sizeof(file_bytes)) == 0;
        httpd_response_send(res, 200, "application/json", "{}", 2);
    } else if (strncmp(t, "/n/", 3) == 0) {
        char body[64];
        int n = snprintf(body, sizeof(body), "reply-%s", t + 3);
        httpd_response_send(res, 200, "text/plain", body, (size_t)n);
    } else {
        httpd_response_send(res, 404, "text/plain", "no", 2);
    }
}

/* ---- fixture ------------------------------------------------------------ */

static void fx_closed(void *data)
{
    struct fx *fx = data;
    fx->closed++;
}

static void fx_finish(struct fx *fx)
{
    if (fx->finished)
        return;
    fx->finished = true;
    fx->conns = httpd_connections(fx->srv);
    fx->reqs = httpd_requests(fx->srv);
    if (fx->client != NULL) {
        fx->watches = http_client_watches_made(fx->client);
        http_client_close(fx->client, fx_closed, fx);
    }
    fx->client = NULL;
    httpd_close(fx->srv, fx_closed, fx);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
}

static void fx_watchdog(uv_timer_t *timer)
{
    struct fx *fx = FX_CONTAINER_OF(timer, struct fx, watchdog);
    fx->watchdog_fired = true;
    fx_finish(fx);
}

static struct fx *fx_new(const struct http_client_options *opts)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    fx->srv = httpd_new(&fx->loop, server_handler, fx);
    assert_non_null(fx->srv);
    assert_int_equal(http_client_new(&fx->loop, opts, &fx->client), 0);
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_timer_start(&fx->watchdog, fx_watchdog, FX_WATCHDOG_MS, 0);
    for (int i = 0; i < FX_MAX_REQ; i++) {
        fx->res[i].fx = fx;
        fx->res[i].index = i;
    }
    return fx;
}

/* Run until fx_finish() and every handle closed; the loop must close clean. */
static void fx_run(struct fx *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_false(fx->watchdog_fired);
    assert_int_equal(fx->closed, 2);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
}

static void fx_free(struct fx *fx)
{
    for (int i = 0; i < FX_MAX_REQ; i++)
        free(fx->res[i].body);
    free(fx->seen_body);
    free(fx);
}

static void on_done(struct http_request *req, int rc, void *data)
{
    struct result *r = data;
    struct fx *fx = r->fx;
    r->calls++;
    if (fx->closed > 0)
        fx->done_after_close++;
    r->rc = rc;
    r->status = http_request_status(req);
    const char *body = http_request_body(req, &r->len);
    free(r->body);
    r->body = malloc(r->len + 1);
    memcpy(r->body, body, r->len + 1);
    copy_str(r->error, sizeof(r->error), http_request_error(req));
    copy_str(r->bucket, sizeof(r->bucket), http_request_header(req, "x-ratelimit-bucket"));
    copy_str(r->retry_after, sizeof(r->retry_after), http_request_header(req, "RETRY-AFTER"));
    r->ms = http_request_elapsed_ms(req);
    fx->inflight[r->index] = NULL;
    if (--fx->pending == 0)
        fx_finish(fx);
}

static struct http_request *fx_request(struct fx *fx, const char *method, const char *path)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", httpd_base_url(fx->srv), path);
    struct http_request *req = http_request_new(fx->client, method, url);
    assert_non_null(req);
    return req;
}

static void fx_start(struct fx *fx, struct http_request *req, int index)
{
    fx->pending++;
    fx->inflight[index] = req;
    assert_int_equal(http_request_start(req, on_done, &fx->res[index]), 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_get_headers(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    fx_start(fx, fx_request(fx, "GET", "/hello"), 0);
    fx_run(fx);
    struct result *r = &fx->res[0];
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->body, "hello world");
    assert_int_equal(r->len, 11);
    assert_string_equal(r->bucket, "abc123");
    assert_string_equal(r->retry_after, "2");
    assert_string_equal(r->error, "");
    fx_free(fx);
}

static void test_post_json(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    cJSON *json = cJSON_CreateObject();
    cJSON_AddNumberToObject(json, "a", 1);
    cJSON_AddStringToObject(json, "b", "two words");
    char *expect = cJSON_PrintUnformatted(json);
    struct http_request *req = fx_request(fx, "POST", "/echo");
    assert_int_equal(http_request_json_set(req, json), 0);
    assert_int_equal(http_request_header_add(req, "X-Test", "abc"), 0);
    assert_int_equal(http_request_header_add(req, "Bad:Name", "x"), HB_EINVAL);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, 0);
    assert_int_equal(fx->res[0].status, 201);
    assert_string_equal(fx->res[0].body, "{\"ok\":true}");
    assert_string_equal(fx->seen_method, "POST");
    assert_string_equal(fx->seen_ct, "application/json");
    assert_string_equal(fx->seen_xtest, "abc");
    assert_non_null(strstr(fx->seen_agent, "haibot"));
    assert_int_equal(fx->seen_len, strlen(expect));
    assert_string_equal(fx->seen_body, expect);
    assert_false(fx->seen_chunked);
    cJSON_free(expect);
    cJSON_Delete(json);
    fx_free(fx);
}

static void test_patch_chunked_body(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "PATCH", "/echo");
    const char *body = "{\"content\":\"edited\"}";
    assert_int_equal(http_request_body_set(req, body, strlen(body), "application/json"), 0);
    assert_int_equal(http_request_header_add(req, "Transfer-Encoding", "chunked"), 0);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, 0);
    assert_string_equal(fx->seen_method, "PATCH");
    assert_true(fx->seen_chunked);
    assert_string_equal(fx->seen_body, body);
    fx_free(fx);
}

static void test_timeout(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/never");
    http_request_timeout_set(req, 200, 0);
    fx_start(fx, req, 0);
    fx_run(fx);
    struct result *r = &fx->res[0];
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->rc, HB_ETIMEOUT);
    assert_int_equal(r->status, 0);
    assert_true(r->ms >= 150);
    assert_true(r->ms < 5000);
    assert_non_null(strstr(r->error, "timed out"));
    assert_int_equal(fx->never_count, 1);
    fx_free(fx);
}

static void test_refused(void **state)
{
    (void)state;
    /* A bound socket that never listens: connecting to it is refused. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    socklen_t alen = sizeof(addr);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(addr.sin_port));

    struct fx *fx = fx_new(NULL);
    struct http_request *req = http_request_new(fx->client, "GET", url);
    assert_non_null(req);
    fx_start(fx, req, 0);
    fx_run(fx);
    close(fd);
    assert_int_equal(fx->res[0].calls, 1);
    assert_int_equal(fx->res[0].rc, UV_ECONNREFUSED);
    assert_non_null(strstr(fx->res[0].error, "could not connect"));
    fx_free(fx);
}

static void test_chunked_response(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    fx_start(fx, fx_request(fx, "GET", "/chunked"), 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, 0);
    assert_string_equal(fx->res[0].body, "abcdefghi");
    fx_free(fx);
}

static int stream_headers(struct http_request *req, void *data)
{
    struct fx *fx = ((struct result *)data)->fx;
    fx->headers_first = fx->data_calls == 0;
    fx->headers_status = http_request_status(req);
    copy_str(fx->stream_header, sizeof(fx->stream_header), http_request_header(req, "x-stream"));
    return 0;
}

static int stream_data(struct http_request *req, const char *bytes, size_t len, void *data)
{
    (void)req;
    struct fx *fx = ((struct result *)data)->fx;
    fx->data_calls++;
    size_t have = strlen(fx->stream_buf);
    if (have + len < sizeof(fx->stream_buf))
        memcpy(fx->stream_buf + have, bytes, len);
    fx->stream_seen += len;
    return 0;
}

static void test_stream(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/stream");
    http_request_stream_set(req, stream_headers, stream_data);
    http_request_timeout_set(req, UINT64_MAX, 0);
    http_request_idle_timeout_set(req, 5000);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, 0);
    assert_int_equal(fx->res[0].len, 0);
    assert_true(fx->headers_first);
    assert_int_equal(fx->headers_status, 200);
    assert_string_equal(fx->stream_header, "yes");
    assert_int_equal(fx->data_calls, 3);
    assert_string_equal(fx->stream_buf, "onetwothree");
    fx_free(fx);
}

static int cancel_on_data(struct http_request *req, const char *bytes, size_t len, void *data)
{
    (void)bytes;
    (void)len;
    (void)data;
    http_request_cancel(req); /* from inside libcurl: must be deferred */
    return 0;
}

static void test_cancel_in_stream(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/stream-forever");
    http_request_stream_set(req, NULL, cancel_on_data);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].calls, 1);
    assert_int_equal(fx->res[0].rc, HB_ECANCELED);
    assert_int_equal(fx->res[0].status, 200);
    fx_free(fx);
}

static int stop_on_data(struct http_request *req, const char *bytes, size_t len, void *data)
{
    (void)req;
    (void)bytes;
    (void)len;
    (void)data;
    return HB_EPROTO; /* as an SSE parser would on a broken event */
}

static void test_stream_stop(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/stream-forever");
    http_request_stream_set(req, NULL, stop_on_data);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].calls, 1);
    assert_int_equal(fx->res[0].rc, HB_EPROTO);
    fx_free(fx);
}

static void test_max_body(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/big");
    http_request_max_body_set(req, 1000);
    fx_start(fx, req, 0);
    /* The same body within the client's default limit succeeds. */
    fx_start(fx, fx_request(fx, "GET", "/big"), 1);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, HB_EOVERFLOW);
    assert_non_null(strstr(fx->res[0].error, "exceeds the limit of 1000 bytes"));
    assert_int_equal(fx->res[1].rc, 0);
    assert_int_equal(fx->res[1].len, 10000);
    fx_free(fx);
}

static void test_abort_midway(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    fx_start(fx, fx_request(fx, "GET", "/abort"), 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].calls, 1);
    assert_int_equal(fx->res[0].rc, HB_EIO);
    assert_int_equal(fx->res[0].status, 200);
    assert_string_not_equal(fx->res[0].error, "");
    fx_free(fx);
}

static void test_multipart(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "POST", "/upload");
    assert_int_equal(http_request_form_field_add(req, "payload_json", "{\"content\":\"hi\"}",
                                                 "application/json"),
                     0);
    assert_int_equal(http_request_form_file_add(req, "files[0]", "cat.png", "image/png", file_bytes,
                                                sizeof(file_bytes)),
                     0);
    assert_int_equal(http_request_body_set(req, "x", 1, NULL), HB_EINVAL);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, 0);
    assert_int_equal(fx->res[0].status, 200);
    assert_non_null(strstr(fx->seen_ct, "multipart/form-data; boundary="));
    assert_int_equal(fx->nparts, 2);
    assert_true(fx->part_json_ok);
    assert_true(fx->part_file_ok);
    fx_free(fx);
}

static void test_parallel(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    const int n = 100;
    for (int i = 0; i < n; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/n/%d", i);
        fx_start(fx, fx_request(fx, "GET", path), i);
    }
    assert_int_equal(http_client_active(fx->client), (size_t)n);
    fx_run(fx);
    for (int i = 0; i < n; i++) {
        char expect[32];
        snprintf(expect, sizeof(expect), "reply-%d", i);
        assert_int_equal(fx->res[i].calls, 1);
        assert_int_equal(fx->res[i].rc, 0);
        assert_string_equal(fx->res[i].body, expect);
    }
    assert_int_equal(fx->reqs, (unsigned)n);
    assert_true(fx->conns >= 1 && fx->conns <= (unsigned)n);
    fx_free(fx);
}

static void seq_done(struct http_request *req, int rc, void *data);

static void seq_next(struct fx *fx)
{
    int i = fx->seq_next++;
    char path[32];
    snprintf(path, sizeof(path), "/n/%d", i);
    struct http_request *req = fx_request(fx, "GET", path);
    fx->pending++;
    assert_int_equal(http_request_start(req, seq_done, &fx->res[i]), 0);
}

/* Start the next request from the completion of the previous one: the
 * connection is back in the cache by then and must be reused. */
static void seq_done(struct http_request *req, int rc, void *data)
{
    struct result *r = data;
    struct fx *fx = r->fx;
    if (fx->seq_next < fx->seq_total && rc == 0)
        seq_next(fx);
    on_done(req, rc, data);
}

static void test_keepalive(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    fx->seq_total = 10;
    seq_next(fx);
    fx_run(fx);
    for (int i = 0; i < fx->seq_total; i++) {
        char expect[32];
        snprintf(expect, sizeof(expect), "reply-%d", i);
        assert_int_equal(fx->res[i].rc, 0);
        assert_string_equal(fx->res[i].body, expect);
    }
    assert_int_equal(fx->seq_next, 10);
    assert_int_equal(fx->reqs, 10);
    assert_int_equal(fx->conns, 1); /* one keep-alive connection for all ten */
    /* and one watch of its socket: a kept connection is not watched anew
     * (three system calls) for every request */
    assert_int_equal(fx->watches, 1);
    fx_free(fx);
}

/* The server closes a kept connection while the client holds it idle. */
struct idle_close {
    struct fx *fx;
    uv_timer_t wait;
    uv_check_t turns;
    unsigned long nturns;
};

static void idle_turn(uv_check_t *c)
{
    struct idle_close *ic = FX_CONTAINER_OF(c, struct idle_close, turns);
    ic->nturns++;
}

static void idle_waited(uv_timer_t *t)
{
    struct idle_close *ic = FX_CONTAINER_OF(t, struct idle_close, wait);
    uv_check_stop(&ic->turns);
    uv_close((uv_handle_t *)&ic->turns, NULL);
    uv_close((uv_handle_t *)&ic->wait, NULL);
    fx_start(ic->fx, fx_request(ic->fx, "GET", "/n/1"), 1);
    ic->fx->pending--; /* the hold of idle_first_done */
}

static void idle_first_done(struct http_request *req, int rc, void *data)
{
    struct result *r = data;
    struct fx *fx = r->fx;
    struct idle_close *ic = fx->test_data;
    fx->pending++; /* held until the second request has started */
    on_done(req, rc, data);
    httpd_close_idle(fx->srv);
    uv_timer_start(&ic->wait, idle_waited, 100, 0);
    uv_check_start(&ic->turns, idle_turn);
}

static void test_keepalive_closed_by_server(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct idle_close ic = {.fx = fx};
    fx->test_data = &ic;
    uv_timer_init(&fx->loop, &ic.wait);
    uv_check_init(&fx->loop, &ic.turns);
    fx->pending++;
    fx->inflight[0] = fx_request(fx, "GET", "/n/0");
    assert_int_equal(http_request_start(fx->inflight[0], idle_first_done, &fx->res[0]), 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].rc, 0);
    assert_string_equal(fx->res[0].body, "reply-0");
    /* The closed connection woke the loop once, not at every turn while
     * it waited (a readable end of stream, watched level-triggered). */
    assert_true(ic.nturns < 20);
    /* The next request noticed the dead connection and made a new one. */
    assert_int_equal(fx->res[1].calls, 1);
    assert_int_equal(fx->res[1].rc, 0);
    assert_string_equal(fx->res[1].body, "reply-1");
    assert_int_equal(fx->conns, 2);
    assert_int_equal(fx->watches, 2);
    fx_free(fx);
}

static void cancel_when_seen(struct fx *fx)
{
    http_request_cancel(fx->inflight[0]);
}

static void test_cancel(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    fx->on_never = cancel_when_seen;
    fx_start(fx, fx_request(fx, "GET", "/never"), 0);
    fx_run(fx);
    assert_int_equal(fx->never_count, 1);
    assert_int_equal(fx->res[0].calls, 1);
    assert_int_equal(fx->res[0].rc, HB_ECANCELED);
    assert_string_equal(fx->res[0].error, "canceled");
    fx_free(fx);
}

static void close_when_all_seen(struct fx *fx)
{
    if (fx->never_count < 5)
        return;
    /* Every completion must fire (canceled) before the client's close. */
    http_client_close(fx->client, fx_closed, fx);
    fx->client = NULL;
}

static void test_close_inflight(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    fx->on_never = close_when_all_seen;
    for (int i = 0; i < 5; i++)
        fx_start(fx, fx_request(fx, "GET", "/never"), i);
    fx_run(fx);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fx->res[i].calls, 1);
        assert_int_equal(fx->res[i].rc, HB_ECANCELED);
    }
    assert_int_equal(fx->done_after_close, 0);
    fx_free(fx);
}

static void test_start_after_close(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/hello");
    fx_finish(fx);
    /* Closing is under way: starting fails and frees the request. */
    assert_int_equal(http_request_start(req, on_done, &fx->res[0]), HB_ESTATE);
    fx_run(fx);
    assert_int_equal(fx->res[0].calls, 0);
    fx_free(fx);
}

static int start_on_data(struct http_request *req, const char *bytes, size_t len, void *data)
{
    (void)bytes;
    (void)len;
    struct fx *fx = ((struct result *)data)->fx;
    if (fx->data_calls++ == 0) {
        /* Starting from inside libcurl is deferred to the loop. */
        fx_start(fx, fx_request(fx, "GET", "/hello"), 1);
        http_request_cancel(req);
    }
    return 0;
}

static void test_start_from_stream(void **state)
{
    (void)state;
    struct fx *fx = fx_new(NULL);
    struct http_request *req = fx_request(fx, "GET", "/stream-forever");
    http_request_stream_set(req, NULL, start_on_data);
    fx_start(fx, req, 0);
    fx_run(fx);
    assert_int_equal(fx->res[0].calls, 1);
    assert_int_equal(fx->res[0].rc, HB_ECANCELED);
    assert_int_equal(fx->res[1].calls, 1);
    assert_int_equal(fx->res[1].rc, 0);
    assert_string_equal(fx->res[1].body, "hello world");
    fx_free(fx);
}

static void test_log_redacted(void **state)
{
    (void)state;
    char *lines = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&lines, &len);
    assert_non_null(mem);
    log_configure(LOG_DEBUG, false, mem);
    struct fx *fx = fx_new(NULL);
    fx_start(fx, fx_request(fx, "GET", "/bot123456:AAE-secretpart/getMe"), 0);
    fx_run(fx);
    log_configure(LOG_INFO, false, NULL);
    fclose(mem);
    assert_int_equal(fx->res[0].rc, 0);
    assert_int_equal(fx->res[0].status, 404);
    assert_non_null(strstr(lines, "http.request method=GET url="));
    assert_non_null(strstr(lines, "/bot[redacted]/getMe status=404"));
    assert_null(strstr(lines, "AAE-secretpart"));
    free(lines);
    fx_free(fx);
}

/* The fake server on its own thread, the client on the test's loop. */
struct thread_fx {
    int done;
    int ok;
    struct http_client *client;
};

static void thread_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    (void)data;
    httpd_response_send(res, 200, "text/plain", req->target, strlen(req->target));
}

static void thread_done(struct http_request *req, int rc, void *data)
{
    struct thread_fx *t = data;
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    if (rc == 0 && http_request_status(req) == 200 && strcmp(body, "/t") == 0)
        t->ok++;
    if (++t->done == 3)
        http_client_close(t->client, NULL, NULL);
}

static void test_thread_server(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct thread_fx t = {0};
    assert_int_equal(uv_loop_init(&loop), 0);
    struct httpd_thread *th = httpd_thread_start(thread_handler, NULL);
    assert_non_null(th);
    assert_int_equal(http_client_new(&loop, NULL, &t.client), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/t", httpd_base_url(httpd_thread_server(th)));
    for (int i = 0; i < 3; i++) {
        struct http_request *req = http_request_new(t.client, "GET", url);
        assert_non_null(req);
        http_request_timeout_set(req, 10000, 0);
        assert_int_equal(http_request_start(req, thread_done, &t), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(httpd_requests(httpd_thread_server(th)), 3);
    httpd_thread_stop(th);
    assert_int_equal(t.ok, 3);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void idle_loop_done(struct http_request *req, int rc, void *data)
{
    (void)req;
    *(int *)data = rc == 0 ? 1 : -1;
}

/* A connection kept for reuse holds no loop open: a caller that runs its
 * loop until nothing is left to do gets control back once the requests
 * are answered, not when the server closes the idle connection. */
static void test_kept_connection_holds_no_loop(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct httpd_thread *th = httpd_thread_start(thread_handler, NULL);
    assert_non_null(th);
    struct http_client *client = NULL;
    assert_int_equal(http_client_new(&loop, NULL, &client), 0);
    char url[128];
    snprintf(url, sizeof(url), "%s/t", httpd_base_url(httpd_thread_server(th)));
    for (int i = 0; i < 2; i++) {
        int done = 0;
        struct http_request *req = http_request_new(client, "GET", url);
        assert_non_null(req);
        http_request_timeout_set(req, 10000, 0);
        assert_int_equal(http_request_start(req, idle_loop_done, &done), 0);
        while (done == 0)
            uv_run(&loop, UV_RUN_ONCE);
        assert_int_equal(done, 1);
        uv_run(&loop, UV_RUN_NOWAIT); /* closes what the request left */
        assert_false(uv_loop_alive(&loop));
    }
    assert_int_equal(http_client_watches_made(client), 1); /* the kept one, reused */
    http_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    httpd_thread_stop(th);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_get_headers),
    cmocka_unit_test(test_post_json),
    cmocka_unit_test(test_patch_chunked_body),
    cmocka_unit_test(test_timeout),
    cmocka_unit_test(test_refused),
    cmocka_unit_test(test_chunked_response),
    cmocka_unit_test(test_stream),
    cmocka_unit_test(test_cancel_in_stream),
    cmocka_unit_test(test_stream_stop),
    cmocka_unit_test(test_max_body),
    cmocka_unit_test(test_abort_midway),
    cmocka_unit_test(test_multipart),
    cmocka_unit_test(test_parallel),
    cmocka_unit_test(test_keepalive),
    cmocka_unit_test(test_keepalive_closed_by_server),
    cmocka_unit_test(test_cancel),
    cmocka_unit_test(test_close_inflight),
    cmocka_unit_test(test_start_after_close),
    cmocka_unit_test(test_start_from_stream),
    cmocka_unit_test(test_log_redacted),
    cmocka_unit_test(test_thread_server),
    cmocka_unit_test(test_kept_connection_holds_no_loop),
};

TEST_GROUP_DEFINE(http, tests, NULL, NULL)
