/* Small GETs through the HTTP client against the fake server on its own
 * thread: requests per second with a fixed number in flight over
 * keep-alive connections.
 * The fake server is the tests' own (tests/fake/), which the bench build
 * links too. */
#include "bench/bench.h"

#include "net/http.h"
#include "tests/fake/httpd.h"

#include <string.h>

#define BENCH_HTTP_TOTAL 20000
#define BENCH_HTTP_INFLIGHT 32

struct bench_http {
    struct http_client *client;
    char url[128];
    int started;
    int done;
    int failed;
};

static void bench_http_handler(struct httpd_response *res, const struct httpd_request *req,
                               void *data)
{
    (void)req;
    (void)data;
    httpd_response_send(res, 200, "text/plain", "ok", 2);
}

static void bench_http_done(struct http_request *req, int rc, void *data);

/* All started requests are done and no more will start: let the loop end. */
static void bench_http_maybe_close(struct bench_http *b)
{
    if (b->client != NULL && b->done == b->started &&
        (b->started >= BENCH_HTTP_TOTAL || b->failed > 0)) {
        http_client_close(b->client, NULL, NULL);
        b->client = NULL;
    }
}

static void bench_http_next(struct bench_http *b)
{
    struct http_request *req = http_request_new(b->client, "GET", b->url);
    if (req == NULL || http_request_start(req, bench_http_done, b) != 0) {
        b->failed++;
        bench_http_maybe_close(b);
        return;
    }
    b->started++;
}

static void bench_http_done(struct http_request *req, int rc, void *data)
{
    struct bench_http *b = data;
    size_t len = 0;
    const char *body = http_request_body(req, &len);
    if (rc != 0 || http_request_status(req) != 200 || len != 2 || memcmp(body, "ok", 2) != 0)
        b->failed++;
    b->done++;
    if (b->started < BENCH_HTTP_TOTAL && b->failed == 0)
        bench_http_next(b);
    else
        bench_http_maybe_close(b);
}

int bench_http(void)
{
    int rc = -1;
    uv_loop_t loop;
    struct bench_http b = {0};
    if (http_global_init() != 0 || uv_loop_init(&loop) != 0)
        return -1;
    struct httpd_thread *t = httpd_thread_start(bench_http_handler, NULL);
    if (t == NULL)
        goto out;
    snprintf(b.url, sizeof(b.url), "%s/ping", httpd_base_url(httpd_thread_server(t)));
    if (http_client_new(&loop, NULL, &b.client) != 0)
        goto out;
    double t0 = bench_now();
    for (int i = 0; i < BENCH_HTTP_INFLIGHT; i++)
        bench_http_next(&b);
    uv_run(&loop, UV_RUN_DEFAULT);
    double dt = bench_now() - t0;
    unsigned conns = httpd_connections(httpd_thread_server(t));
    if (b.failed == 0 && b.done == BENCH_HTTP_TOTAL) {
        bench_report("http_requests_per_sec", b.done / dt, "req/s");
        bench_report("http_connections", conns, "connections");
        rc = 0;
    } else {
        fprintf(stderr, "bench http: %d of %d requests failed\n", b.failed, b.done);
    }
out:
    if (t != NULL)
        httpd_thread_stop(t);
    if (uv_loop_close(&loop) != 0)
        rc = -1;
    return rc;
}
