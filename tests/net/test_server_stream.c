/* Streamed answers of the HTTP server (server_stream_*): the head at once,
 * each piece as its own chunk as soon as the handler writes it, the last
 * chunk, then the connection serves the next request; a client that
 * leaves mid-stream turns the handler's writes into HB_ECANCELED and the
 * end still frees everything. Every test ends with uv_loop_close() == 0. */
#include "net/server.h"
#include "base/error.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct stfx {
    uv_loop_t loop;
    struct server *srv;
    uv_timer_t timer;
    struct server_request *req; /* the streamed answer under way */
    int step;
    int steps;     /* pieces to write */
    int write_rc;  /* the last server_stream_write's result */
    bool canceled; /* a write said the client is gone */
    bool ended;
};

static void st_tick(uv_timer_t *t)
{
    struct stfx *fx = t->data;
    char piece[32];
    snprintf(piece, sizeof(piece), "data: %d\n\n", fx->step++);
    fx->write_rc = server_stream_write(fx->req, piece, strlen(piece));
    if (fx->write_rc == HB_ECANCELED)
        fx->canceled = true;
    if (fx->step == fx->steps) {
        uv_timer_stop(t);
        server_stream_end(fx->req);
        fx->req = NULL;
        fx->ended = true;
    }
}

static void st_handler(struct server_request *req, void *data)
{
    struct stfx *fx = data;
    fx->req = req;
    fx->step = 0;
    fx->ended = false;
    assert_int_equal(server_stream_start(req, 200, "text/event-stream", "X-Stream: yes"), 0);
    uv_timer_start(&fx->timer, st_tick, 30, fx->steps > 3 ? 5 : 30);
}

static int st_setup(void **state)
{
    struct stfx *fx = calloc(1, sizeof(*fx));
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->timer);
    fx->timer.data = fx;
    fx->steps = 3;
    struct server_options o = {.address = "127.0.0.1", .port = 0};
    fx->srv = server_new(&fx->loop, &o);
    assert_non_null(fx->srv);
    assert_int_equal(server_route_add(fx->srv, "GET", "/stream", NULL, st_handler, fx), 0);
    *state = fx;
    return 0;
}

static int st_teardown(void **state)
{
    struct stfx *fx = *state;
    server_stop(fx->srv);
    uv_close((uv_handle_t *)&fx->timer, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    server_free(fx->srv);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

static int st_connect(struct stfx *fx)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)server_port(fx->srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Run the loop and read fd until `out` holds needle (or 5 s pass). */
static bool st_read_until(struct stfx *fx, int fd, char *out, size_t cap, size_t *len,
                          const char *needle)
{
    for (int i = 0; i < 500; i++) {
        if (strstr(out, needle) != NULL)
            return true;
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10) == 1) {
            ssize_t n = read(fd, out + *len, cap - *len - 1);
            if (n <= 0)
                return strstr(out, needle) != NULL;
            *len += (size_t)n;
            out[*len] = '\0';
        }
    }
    return false;
}

static void test_stream_chunks_then_keep_alive(void **state)
{
    struct stfx *fx = *state;
    int fd = st_connect(fx);
    const char *get = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
    char out[4096] = "";
    size_t len = 0;
    /* The head and the first piece arrive before the handler wrote the
     * others: each goes out as it is written. */
    assert_true(st_read_until(fx, fd, out, sizeof(out), &len, "data: 0\n\n\r\n"));
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "transfer-encoding: chunked\r\n"));
    assert_non_null(strstr(out, "content-type: text/event-stream\r\n"));
    assert_non_null(strstr(out, "X-Stream: yes\r\n"));
    assert_null(strstr(out, "content-length"));
    assert_non_null(strstr(out, "\r\n\r\n9\r\ndata: 0\n\n\r\n"));
    assert_false(fx->ended);
    assert_null(strstr(out, "data: 1"));
    assert_true(st_read_until(fx, fd, out, sizeof(out), &len, "data: 2\n\n\r\n0\r\n\r\n"));
    assert_true(fx->ended);
    assert_int_equal(fx->write_rc, 0);
    assert_int_equal(server_pending(fx->srv), 0);
    /* The connection carries the next request. */
    len = 0;
    out[0] = '\0';
    assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
    assert_true(st_read_until(fx, fd, out, sizeof(out), &len, "0\r\n\r\n"));
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    close(fd);
}

static void test_stream_client_leaves(void **state)
{
    struct stfx *fx = *state;
    fx->steps = 200;
    int fd = st_connect(fx);
    const char *get = "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, get, strlen(get)), (ssize_t)strlen(get));
    char out[4096] = "";
    size_t len = 0;
    assert_true(st_read_until(fx, fd, out, sizeof(out), &len, "data: 0"));
    close(fd); /* gone mid-stream */
    for (int i = 0; i < 2500 && !fx->ended; i++) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
    assert_true(fx->ended);
    assert_true(fx->canceled);
    assert_int_equal(fx->write_rc, HB_ECANCELED);
    assert_int_equal(server_pending(fx->srv), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_stream_chunks_then_keep_alive, st_setup, st_teardown),
    cmocka_unit_test_setup_teardown(test_stream_client_leaves, st_setup, st_teardown),
};

TEST_GROUP_DEFINE(server_stream, tests, NULL, NULL)
