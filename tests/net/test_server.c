/* The HTTP server on the loop: routing, headers, bodies, late answers,
 * refusals, and a clean close with a request still in a handler. Every
 * test ends with uv_loop_close() == 0. */
#include "net/server.h"
#include "base/error.h"
#include "tests/bot/tcall.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sfx {
    uv_loop_t loop;
    struct server *srv;
    struct http_client *client;
    char base[64];
    uv_timer_t timer;
    struct server_request *held; /* answered later by the timer */
    int seen;
    struct tcall hold_call; /* outlives the test body: completes in teardown */
};

static void sfx_echo(struct server_request *req, void *data)
{
    struct sfx *fx = data;
    fx->seen++;
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    const char *sig = server_request_header(req, "X-Signature");
    char *text = NULL;
    size_t tlen = 0;
    FILE *m = open_memstream(&text, &tlen);
    fprintf(m, "%s %s q=%s sig=%s len=%zu body=%s", server_request_method(req),
            server_request_path(req), server_request_query(req), sig != NULL ? sig : "-", len,
            body);
    fclose(m);
    server_respond(req, 200, "text/plain", text, tlen, NULL);
    free(text);
}

static void sfx_timer(uv_timer_t *t)
{
    struct sfx *fx = t->data;
    server_respond(fx->held, 202, "application/json", "{\"late\":true}", 13, NULL);
    fx->held = NULL;
}

static void sfx_later(struct server_request *req, void *data)
{
    struct sfx *fx = data;
    fx->held = req;
    uv_timer_start(&fx->timer, sfx_timer, 20, 0);
}

static void sfx_hold(struct server_request *req, void *data)
{
    struct sfx *fx = data;
    fx->held = req; /* answered after the server closed */
}

static void sfx_auth(struct server_request *req, void *data)
{
    (void)data;
    server_respond(req, 401, NULL, "no\n", 3, "WWW-Authenticate: Bearer");
}

static int sfx_setup(void **state)
{
    struct sfx *fx = calloc(1, sizeof(*fx));
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->timer);
    fx->timer.data = fx;
    struct server_options o = {.address = "127.0.0.1", .port = 0, .max_body = 4096};
    fx->srv = server_new(&fx->loop, &o);
    assert_non_null(fx->srv);
    snprintf(fx->base, sizeof(fx->base), "http://127.0.0.1:%d", server_port(fx->srv));
    static const char *const hdrs[] = {"X-Signature", NULL};
    assert_int_equal(server_route_add(fx->srv, "POST", "/echo", hdrs, sfx_echo, fx), 0);
    assert_int_equal(server_route_add(fx->srv, "GET", "/echo", hdrs, sfx_echo, fx), 0);
    assert_int_equal(server_route_add(fx->srv, "GET", "/echo", NULL, sfx_echo, fx), HB_EEXISTS);
    assert_int_equal(server_route_add(fx->srv, "GET", "/later", NULL, sfx_later, fx), 0);
    assert_int_equal(server_route_add(fx->srv, "POST", "/hold", NULL, sfx_hold, fx), 0);
    assert_int_equal(server_route_add(fx->srv, "GET", "/auth", NULL, sfx_auth, fx), 0);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx->loop, NULL, &fx->client), 0);
    *state = fx;
    return 0;
}

static int sfx_teardown(void **state)
{
    struct sfx *fx = *state;
    http_client_close(fx->client, NULL, NULL);
    server_close(fx->srv);
    uv_close((uv_handle_t *)&fx->timer, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    server_free(fx->srv);
    if (fx->held != NULL) /* a handler may answer after the close: dropped */
        server_respond(fx->held, 200, NULL, "late", 4, NULL);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    tcall_clear(&fx->hold_call);
    free(fx);
    return 0;
}

static void url(struct sfx *fx, char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "%s%s", fx->base, path);
}

static void test_server_get_post_headers(void **state)
{
    struct sfx *fx = *state;
    char u[128];
    struct tcall c;
    url(fx, u, sizeof(u), "/echo?a=1");
    static const char *const h[] = {"X-Signature", "t=1,v1=ab", NULL};
    tcall_do(&fx->loop, fx->client, "GET", u, h, NULL, 0, &c);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "GET /echo q=a=1 sig=t=1,v1=ab len=0 body=");
    tcall_clear(&c);
    url(fx, u, sizeof(u), "/echo");
    tcall_do(&fx->loop, fx->client, "POST", u, NULL, "{\"x\":1}", 7, &c);
    assert_int_equal(c.status, 200);
    assert_string_equal(c.body, "POST /echo q= sig=- len=7 body={\"x\":1}");
    tcall_clear(&c);
    /* A body of several reads arrives whole. */
    char big[4000];
    memset(big, 'a', sizeof(big));
    tcall_do(&fx->loop, fx->client, "POST", u, NULL, big, sizeof(big), &c);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.body, "len=4000 "));
    tcall_clear(&c);
}

static void test_server_refusals(void **state)
{
    struct sfx *fx = *state;
    char u[128];
    struct tcall c;
    url(fx, u, sizeof(u), "/nothing");
    tcall_do(&fx->loop, fx->client, "GET", u, NULL, NULL, 0, &c);
    assert_int_equal(c.status, 404);
    tcall_clear(&c);
    url(fx, u, sizeof(u), "/later");
    tcall_do(&fx->loop, fx->client, "POST", u, NULL, "{}", 2, &c);
    assert_int_equal(c.status, 405);
    tcall_clear(&c);
    url(fx, u, sizeof(u), "/auth");
    tcall_do(&fx->loop, fx->client, "GET", u, NULL, NULL, 0, &c);
    assert_int_equal(c.status, 401);
    assert_non_null(c.www_authenticate);
    assert_string_equal(c.www_authenticate, "Bearer");
    tcall_clear(&c);
    /* Over the limit: 413, and the handler never runs. */
    int seen = fx->seen;
    size_t n = 5000;
    char *big = malloc(n);
    memset(big, 'b', n);
    url(fx, u, sizeof(u), "/echo");
    tcall_do(&fx->loop, fx->client, "POST", u, NULL, big, n, &c);
    assert_int_equal(c.status, 413);
    assert_int_equal(fx->seen, seen);
    tcall_clear(&c);
    free(big);
    /* The server still serves afterwards. */
    tcall_do(&fx->loop, fx->client, "POST", u, NULL, "{}", 2, &c);
    assert_int_equal(c.status, 200);
    tcall_clear(&c);
}

static void test_server_late_answer(void **state)
{
    struct sfx *fx = *state;
    char u[128];
    struct tcall c[3];
    url(fx, u, sizeof(u), "/later");
    tcall_start(fx->client, "GET", u, NULL, NULL, 0, &c[0]);
    tcall_wait(&fx->loop, c, 1);
    assert_int_equal(c[0].status, 202);
    assert_string_equal(c[0].body, "{\"late\":true}");
    assert_string_equal(c[0].content_type, "application/json");
    tcall_clear(&c[0]);
    /* Several at once, on several connections. */
    url(fx, u, sizeof(u), "/echo");
    for (int i = 0; i < 3; i++)
        tcall_start(fx->client, "POST", u, NULL, "{}", 2, &c[i]);
    tcall_wait(&fx->loop, c, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(c[i].status, 200);
        tcall_clear(&c[i]);
    }
    assert_int_equal(server_pending(fx->srv), 0);
}

static void test_server_close_with_request_held(void **state)
{
    struct sfx *fx = *state;
    char u[128];
    url(fx, u, sizeof(u), "/hold");
    tcall_start(fx->client, "POST", u, NULL, "{}", 2, &fx->hold_call);
    while (fx->held == NULL)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_int_equal(server_pending(fx->srv), 1);
    /* The teardown closes the server first and answers afterwards. */
}

/* A port already taken: the server says so and still closes cleanly. */
static void test_server_port_taken(void **state)
{
    struct sfx *fx = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct server_options o = {.address = "127.0.0.1", .port = server_port(fx->srv)};
    assert_null(server_new(&loop, &o));
    o.address = "192.0.2.1"; /* TEST-NET-1: not an address of this machine */
    o.port = 0;
    assert_null(server_new(&loop, &o));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_server_port_taken, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_get_post_headers, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_refusals, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_late_answer, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_close_with_request_held, sfx_setup, sfx_teardown),
};

TEST_GROUP_DEFINE(server, tests, NULL, NULL)
