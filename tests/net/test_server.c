/* The HTTP server on the loop: routing, headers, bodies, late answers,
 * refusals, and a clean close with a request still in a handler. Every
 * test ends with uv_loop_close() == 0. */
#include "net/server.h"
#include "base/error.h"
#include "tests/bot/tcall.h"
#include "tests/test.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
    signal(SIGPIPE, SIG_IGN); /* as the daemon: a peer gone mid-answer is no signal */
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
    assert_int_equal(server_route_add(fx->srv, "POST", "/webhooks/stripe", hdrs, sfx_echo, fx), 0);
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&fx->loop, NULL, &fx->client), 0);
    *state = fx;
    return 0;
}

static int sfx_teardown(void **state)
{
    struct sfx *fx = *state;
    http_client_close(fx->client, NULL, NULL);
    server_stop(fx->srv);
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

/* ---- raw HTTP over a loopback socket ----------------------------------------------------
 * The server runs on this thread's loop, so the client is a non-blocking
 * socket polled between loop turns. A server stuck inside one loop turn
 * would hang the suite: a watchdog alarm turns that into a failure. */

static void raw_watchdog(int sig)
{
    (void)sig;
    static const char msg[] = "server test: the event loop hung (watchdog)\n";
    (void)!write(2, msg, sizeof(msg) - 1);
    _exit(1);
}

static void raw_watchdog_arm(unsigned seconds)
{
    signal(SIGALRM, raw_watchdog);
    alarm(seconds);
}

/* How many complete answers (head and content-length body) buf holds. */
static size_t raw_answers(const char *buf, size_t len)
{
    size_t n = 0;
    const char *p = buf;
    const char *end = buf + len;
    while (p < end) {
        const char *head_end = strstr(p, "\r\n\r\n");
        if (head_end == NULL)
            break;
        const char *cl = strcasestr(p, "content-length:");
        size_t body = cl != NULL && cl < head_end ? strtoul(cl + 15, NULL, 10) : 0;
        if ((size_t)(end - (head_end + 4)) < body)
            break;
        n++;
        p = head_end + 4 + body;
    }
    return n;
}

/* Send data (in one write when the socket takes it) to the server, then
 * read until want answers are complete, the server closes, or 3 s pass.
 * Returns the bytes read; *closed says whether the server closed. */
static size_t raw_exchange(struct sfx *fx, const void *data, size_t len, size_t want, char *out,
                           size_t cap, bool *closed)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)server_port(fx->srv));
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    assert_true(rc == 0 || errno == EINPROGRESS);
    uint64_t deadline = test_now_ms() + 3000;
    size_t sent = 0, got = 0;
    *closed = false;
    while (test_now_ms() < deadline) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = fd, .events = (short)(POLLIN | (sent < len ? POLLOUT : 0))};
        if (poll(&p, 1, 1) <= 0)
            continue;
        if (sent < len && (p.revents & POLLOUT)) {
            ssize_t n = send(fd, (const char *)data + sent, len - sent, MSG_NOSIGNAL);
            if (n > 0)
                sent += (size_t)n;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, out + got, cap - got - 1, 0);
            if (n <= 0) {
                *closed = true;
                break;
            }
            got += (size_t)n;
            out[got] = '\0';
            if (want > 0 && raw_answers(out, got) >= want)
                break;
        }
    }
    out[got] = '\0';
    close(fd);
    return got;
}

static char *raw_corpus(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), "tests/corpus/http_server/%s", name);
    char *data = test_file_read(path, len);
    assert_non_null(data);
    return data;
}

static void sfx_pump(void *data)
{
    uv_run(&((struct sfx *)data)->loop, UV_RUN_NOWAIT);
}

static void sfx_gone(void *data)
{
    struct sfx *fx = data;
    fx->seen += 100;
    /* Answered from the callback: nothing is sent, the request is freed. */
    server_respond(fx->held, 200, NULL, "late", 4, NULL);
    fx->held = NULL;
}

static void sfx_hold_watch(struct server_request *req, void *data)
{
    struct sfx *fx = data;
    fx->held = req;
    server_request_on_gone(req, sfx_gone, fx);
}

static const size_t sfx_big_len = 4 * 1024 * 1024;
static const size_t sfx_huge_len = 32 * 1024 * 1024; /* more than the sockets' buffers hold */

/* Answer a body of *(const size_t *)data bytes. */
static void sfx_sized(struct server_request *req, void *data)
{
    size_t len = *(const size_t *)data;
    char *body = malloc(len);
    assert_non_null(body);
    memset(body, 'b', len);
    server_respond(req, 200, "application/octet-stream", body, len, NULL);
    free(body);
}

/* Run the loop for ms, the client reading nothing meanwhile. */
static void sfx_idle(struct sfx *fx, uint64_t ms)
{
    uint64_t end = test_now_ms() + ms;
    while (test_now_ms() < end)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
}

/* Read fd, running the loop, until the connection ends or ms pass: the
 * bytes read; *ended says whether it ended. */
static size_t sfx_drain(struct sfx *fx, int fd, uint64_t ms, bool *ended)
{
    size_t got = 0;
    char buf[65536];
    *ended = false;
    uint64_t end = test_now_ms() + ms;
    while (!*ended && test_now_ms() < end) {
        uv_run(&fx->loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            *ended = true;
    }
    return got;
}

/* A client that sends its end right after its request and reads the
 * answer only later gets all of it (before, its end arriving while a large
 * answer was still being written closed the connection mid-answer). */
static void test_server_half_close_whole_answer(void **state)
{
    struct sfx *fx = *state;
    assert_int_equal(
        server_route_add(fx->srv, "GET", "/big", NULL, sfx_sized, (void *)&sfx_big_len), 0);
    static const char req[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = test_tcp_connect(server_port(fx->srv));
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
    shutdown(fd, SHUT_WR);
    sfx_idle(fx, 300); /* the server answers and sees the end meanwhile */
    bool ended;
    size_t got = sfx_drain(fx, fd, 10000, &ended);
    close(fd);
    assert_true(got > sfx_big_len);
}

/* A client that never reads its answer does not hold its connection (and
 * the answer's memory) for ever: past write_timeout_ms the connection
 * closes (before, nothing ran while an answer was written, so it stayed
 * open as long as the client liked). */
static void test_server_answer_not_taken(void **state)
{
    struct sfx *fx = *state;
    struct server_options o = {.address = "127.0.0.1", .port = 0, .write_timeout_ms = 300};
    struct server *srv = server_new(&fx->loop, &o);
    assert_non_null(srv);
    assert_int_equal(server_route_add(srv, "GET", "/huge", NULL, sfx_sized, (void *)&sfx_huge_len),
                     0);
    static const char req[] = "GET /huge HTTP/1.1\r\nHost: x\r\n\r\n";
    int fd = test_tcp_connect(server_port(srv));
    assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
    sfx_idle(fx, 1500); /* not reading: the deadline passes */
    bool ended;
    size_t got = sfx_drain(fx, fd, 5000, &ended);
    close(fd);
    server_free(srv); /* before the checks: a failed one leaves no open server behind */
    for (int i = 0; i < 10; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_true(ended);
    assert_true(got < sfx_huge_len);
}

/* A client that leaves while its request is handled: the handler hears of
 * it at once; one that waits gets its answer, and the one after it, sent
 * on the same connection before the first was answered, its own. */
static void test_server_client_gone(void **state)
{
    struct sfx *fx = *state;
    assert_int_equal(server_route_add(fx->srv, "POST", "/watch", NULL, sfx_hold_watch, fx), 0);
    static const char req[] = "POST /watch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";
    /* Half-closed (its end sent, still reading), then closed outright. */
    for (int round = 0; round < 2; round++) {
        fx->seen = 0;
        int fd = test_tcp_connect(server_port(fx->srv));
        assert_int_equal(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(req) - 1));
        uint64_t end = test_now_ms() + 3000;
        while (fx->held == NULL && test_now_ms() < end)
            uv_run(&fx->loop, UV_RUN_NOWAIT);
        assert_non_null(fx->held);
        assert_int_equal(fx->seen, 0);
        if (round == 0)
            shutdown(fd, SHUT_WR);
        else
            close(fd);
        end = test_now_ms() + 3000;
        while (fx->seen < 100 && test_now_ms() < end)
            uv_run(&fx->loop, UV_RUN_NOWAIT);
        assert_int_equal(fx->seen, 100);
        assert_null(fx->held);
        if (round == 0) {
            /* The answer given from the callback still comes. */
            char got[512];
            assert_true(test_recv_until(fd, got, sizeof(got), "late", 3000, sfx_pump, fx));
            assert_non_null(strstr(got, "HTTP/1.1 200"));
            close(fd);
        }
        end = test_now_ms() + 3000;
        while (server_pending(fx->srv) != 0 && test_now_ms() < end)
            uv_run(&fx->loop, UV_RUN_NOWAIT);
        assert_int_equal(server_pending(fx->srv), 0);
    }

    /* Pipelined behind a held request: read ahead, answered in turn. */
    static const char two[] = "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    char out[2048];
    bool closed = false;
    size_t n = raw_exchange(fx, two, sizeof(two) - 1, 2, out, sizeof(out), &closed);
    out[n < sizeof(out) ? n : sizeof(out) - 1] = '\0';
    assert_non_null(strstr(out, "202 "));
    assert_non_null(strstr(out, "GET /echo"));
    assert_true(strstr(out, "202 ") < strstr(out, "GET /echo"));
}

/* Two requests with bodies in one write: both answered, in order, each
 * with its own body; the loop keeps serving. */
static void test_server_pipelined_bodies(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    size_t len = 0;
    char *data = raw_corpus("http-two-pipelined-posts.txt", &len);
    char out[8192];
    bool closed = false;
    raw_exchange(fx, data, len, 2, out, sizeof(out), &closed);
    free(data);
    assert_int_equal(raw_answers(out, strlen(out)), 2);
    const char *expect = "POST /webhooks/stripe q= sig=- len=71 body={\"id\":\"evt_1\","
                         "\"type\":\"checkout.session.completed\",\"data\":{\"object\":{}}}";
    const char *first = strstr(out, "\r\n\r\n");
    assert_memory_equal(out, "HTTP/1.1 200", 12);
    assert_non_null(first);
    assert_memory_equal(first + 4, expect, strlen(expect));
    const char *second = strstr(first, "HTTP/1.1 200");
    assert_non_null(second);
    assert_non_null(strstr(second, expect));
    assert_int_equal(fx->seen, 2);
    /* The server still serves. */
    char u[128];
    struct tcall c;
    url(fx, u, sizeof(u), "/echo");
    tcall_do(&fx->loop, fx->client, "POST", u, NULL, "{}", 2, &c);
    assert_int_equal(c.status, 200);
    tcall_clear(&c);
    assert_int_equal(server_pending(fx->srv), 0);
    alarm(0);
}

/* LF line ends and an HTTP version we do not speak: the first request is
 * answered (405, PUT is not served there), the second refused with 505 and
 * the connection closed; a version that is no version at all is a 400. */
static void test_server_bad_version(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    size_t len = 0;
    char *data = raw_corpus("http-pipelined-put-lf-badversion.txt", &len);
    char out[8192];
    bool closed = false;
    raw_exchange(fx, data, len, 0, out, sizeof(out), &closed);
    free(data);
    assert_true(closed);
    assert_memory_equal(out, "HTTP/1.1 405", 12);
    const char *second = strstr(out + 1, "HTTP/1.1 ");
    assert_non_null(second);
    assert_memory_equal(second, "HTTP/1.1 505", 12);
    assert_int_equal(fx->seen, 0);
    static const char junk[] = "GET /echo HTTP/one\r\n\r\n";
    raw_exchange(fx, junk, sizeof(junk) - 1, 0, out, sizeof(out), &closed);
    assert_true(closed);
    assert_memory_equal(out, "HTTP/1.1 400", 12);
    assert_int_equal(fx->seen, 0);
    alarm(0);
}

/* Two different Content-Length values: 400 (RFC 9112, 6.3), the handler
 * never runs, the connection closes. The same value twice is one length. */
static void test_server_duplicate_content_length(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    static const char two[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                              "Content-Length: 12\r\n\r\n{}POST /echo HTTP/1.1\r\n\r\n";
    char out[4096];
    bool closed = false;
    raw_exchange(fx, two, sizeof(two) - 1, 0, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 400", 12);
    assert_non_null(strcasestr(out, "connection: close"));
    assert_true(closed);
    assert_int_equal(fx->seen, 0);
    static const char list[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 3\r\n\r\n{}";
    raw_exchange(fx, list, sizeof(list) - 1, 0, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 400", 12);
    assert_int_equal(fx->seen, 0);
    static const char same[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                               "Content-Length: 2\r\n\r\n{}";
    raw_exchange(fx, same, sizeof(same) - 1, 1, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 200", 12);
    assert_int_equal(fx->seen, 1);
    alarm(0);
}

/* Headers over the limit: 431, not a silent close. */
static void test_server_oversized_headers(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    size_t big = 20000;
    char *req = malloc(big + 128);
    int n = snprintf(req, big + 128, "GET /echo HTTP/1.1\r\nHost: x\r\nX-Filler: ");
    memset(req + n, 'f', big);
    memcpy(req + n + big, "\r\n\r\n", 5);
    char out[4096];
    bool closed = false;
    raw_exchange(fx, req, strlen(req), 0, out, sizeof(out), &closed);
    free(req);
    if (strncmp(out, "HTTP/1.1 431", 12) != 0)
        fprintf(stderr, "answer: \"%s\" (closed %d)\n", out, closed);
    assert_memory_equal(out, "HTTP/1.1 431", 12);
    assert_true(closed);
    /* A header the route reads, over its own limit: 431 as well. */
    char sig[2000];
    memset(sig, 's', sizeof(sig) - 1);
    sig[sizeof(sig) - 1] = '\0';
    char req2[2200];
    snprintf(req2, sizeof(req2), "GET /echo HTTP/1.1\r\nHost: x\r\nX-Signature: %s\r\n\r\n", sig);
    raw_exchange(fx, req2, strlen(req2), 1, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 431", 12);
    assert_int_equal(fx->seen, 0);
    alarm(0);
}

/* Chunked bodies (RFC 9112, 7.1) arrive whole, in order with a pipelined
 * request after them; trailers are read and dropped, never taken for
 * headers. */
static void test_server_chunked_body(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    static const char two[] = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "2\r\n{}\r\n3;ext=1\r\nabc\r\n0\r\nX-Signature: trailer\r\n\r\n"
                              "GET /echo?b=2 HTTP/1.1\r\nHost: x\r\n\r\n";
    char out[8192];
    bool closed = false;
    raw_exchange(fx, two, sizeof(two) - 1, 2, out, sizeof(out), &closed);
    assert_int_equal(raw_answers(out, strlen(out)), 2);
    assert_memory_equal(out, "HTTP/1.1 200", 12);
    assert_non_null(strstr(out, "POST /echo q= sig=- len=5 body={}abc"));
    assert_non_null(strstr(out, "GET /echo q=b=2 sig=- len=0 body="));
    assert_int_equal(fx->seen, 2);
    alarm(0);
}

/* Chunked bodies are bounded as the others: past max_body, 413 and no
 * handler; a coding other than chunked alone is 501; chunked beside a
 * Content-Length, or in an HTTP/1.0 request, is a 400 (RFC 9112, 6.1 and
 * 6.3). Each closes the connection. */
static void test_server_chunked_refusals(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    char big[8192];
    int n = snprintf(big, sizeof(big),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        n += snprintf(big + n, sizeof(big) - (size_t)n, "7d0\r\n");
        memset(big + n, 'c', 2000);
        n += 2000;
        n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
    }
    n += snprintf(big + n, sizeof(big) - (size_t)n, "0\r\n\r\n");
    char out[4096];
    bool closed = false;
    raw_exchange(fx, big, (size_t)n, 0, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 413", 12);
    assert_true(closed);
    static const char *const bad[][2] = {
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
         "2\r\n{}\r\n0\r\n\r\n",
         "HTTP/1.1 501"},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         "HTTP/1.1 501"},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
         "2\r\n{}\r\n0\r\n\r\n",
         "HTTP/1.1 400"},
        {"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         "HTTP/1.1 400"},
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
         "chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
         "HTTP/1.1 400"},
        /* Found by fuzzing: a Transfer-Encoding longer than the server
         * keeps, then another one, was written past the end of its buffer. */
        {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked, chunked, "
         "chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
         "HTTP/1.1 501"},
    };
    /* ... and with a long second value, written over the connection. */
    char twice[2048];
    int m = snprintf(twice, sizeof(twice),
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked, "
                     "chunked, chunked\r\nTransfer-Encoding: ");
    memset(twice + m, 'x', 1000);
    m += 1000;
    m += snprintf(twice + m, sizeof(twice) - (size_t)m, "\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
    raw_exchange(fx, twice, (size_t)m, 0, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 501", 12);
    assert_true(closed);
    for (size_t i = 0; i < TEST_ARRAY_SIZE(bad); i++) {
        raw_exchange(fx, bad[i][0], strlen(bad[i][0]), 0, out, sizeof(out), &closed);
        if (strncmp(out, bad[i][1], 12) != 0)
            fprintf(stderr, "case %zu: answer \"%s\"\n", i, out);
        assert_memory_equal(out, bad[i][1], 12);
        assert_true(closed);
    }
    assert_int_equal(fx->seen, 0);
    alarm(0);
}

/* A space before the colon makes no header (RFC 9112, 5.1): 400, since a
 * proxy in front might read "Content-Length : 5" as a length. A method
 * the parser does not know is 501. */
static void test_server_header_name_and_method(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    static const char space[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}";
    char out[4096];
    bool closed = false;
    raw_exchange(fx, space, sizeof(space) - 1, 0, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 400", 12);
    assert_true(closed);
    static const char brew[] = "BREW /echo HTTP/1.1\r\nHost: x\r\n\r\n";
    raw_exchange(fx, brew, sizeof(brew) - 1, 0, out, sizeof(out), &closed);
    assert_memory_equal(out, "HTTP/1.1 501", 12);
    assert_true(closed);
    assert_int_equal(fx->seen, 0);
    alarm(0);
}

/* Expect: 100-continue: the interim answer comes before the body is sent,
 * then the final one. */
static void test_server_expect_continue(void **state)
{
    struct sfx *fx = *state;
    raw_watchdog_arm(20);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)server_port(fx->srv));
    int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    assert_true(rc == 0 || errno == EINPROGRESS);
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                               "Expect: 100-continue\r\n\r\n";
    const char *parts[] = {head, "{}"};
    char out[4096] = {0};
    size_t got = 0;
    const char *want[] = {"HTTP/1.1 100 Continue\r\n\r\n", "len=2 body={}"};
    for (size_t step = 0; step < 2; step++) {
        size_t sent = 0, len = strlen(parts[step]);
        uint64_t deadline = test_now_ms() + 3000;
        while (test_now_ms() < deadline && strstr(out, want[step]) == NULL) {
            out[got] = '\0';
            uv_run(&fx->loop, UV_RUN_NOWAIT);
            if (sent < len) {
                ssize_t n = send(fd, parts[step] + sent, len - sent, MSG_NOSIGNAL);
                if (n > 0)
                    sent += (size_t)n;
            }
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 1) > 0) {
                ssize_t n = recv(fd, out + got, sizeof(out) - got - 1, 0);
                if (n <= 0)
                    break;
                got += (size_t)n;
                out[got] = '\0';
            }
        }
        if (step == 0)
            assert_string_equal(out, want[0]); /* nothing else yet */
        assert_non_null(strstr(out, want[step]));
    }
    close(fd);
    assert_int_equal(fx->seen, 1);
    alarm(0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_server_port_taken, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_get_post_headers, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_refusals, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_late_answer, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_close_with_request_held, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_half_close_whole_answer, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_answer_not_taken, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_client_gone, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_pipelined_bodies, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_bad_version, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_duplicate_content_length, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_oversized_headers, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_chunked_body, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_chunked_refusals, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_header_name_and_method, sfx_setup, sfx_teardown),
    cmocka_unit_test_setup_teardown(test_server_expect_continue, sfx_setup, sfx_teardown),
};

TEST_GROUP_DEFINE(server, tests, NULL, NULL)
