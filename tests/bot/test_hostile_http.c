/* Hostile input to the daemon's HTTP server, through the real binary with
 * [server] and [stripe] on: the inputs in tests/corpus/http_server/ (each
 * sent in one TCP write) leave the daemon answering /healthz, webhooks and
 * console commands, and a flood of malformed and pipelined requests over
 * many connections never slows /healthz past 100 ms nor keeps SIGTERM
 * from stopping the daemon cleanly. A wedged daemon fails the test (every
 * read has a timeout) and is killed in the teardown. */
#include "tests/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define HH_CORPUS "tests/corpus/http_server/"
#define HH_PROBE_MAX_MS 100

struct hh {
    char *dir;
    int port;
    struct test_child child;
    bool running;
};

static int hh_teardown(void **state)
{
    struct hh *h = *state;
    if (h == NULL)
        return 0;
    if (h->running) {
        /* A failed test may leave a wedged daemon: do not let it outlive us. */
        kill(h->child.pid, SIGKILL);
        test_child_finish(&h->child, 5000);
    }
    if (h->child.pid > 0)
        test_child_free(&h->child);
    test_tmpdir_remove(h->dir);
    free(h->dir);
    free(h);
    return 0;
}

static int hh_setup(void **state)
{
    struct hh *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    *state = h;
    h->dir = test_tmpdir_new();
    char conf[512], text[2048];
    snprintf(conf, sizeof(conf), "%s/bot.conf", h->dir);
    h->port = test_port_free();
    snprintf(text, sizeof(text),
             "[storage]\npath = %s/haibot.db\n"
             "[console]\nenabled = true\nuser = tester\nimage_dir = %s\n"
             "[server]\nenabled = true\nport = %d\n"
             "[payments]\nreference_key = test-reference-key-0123456789abcdef\n"
             "packages = 500:1000\n"
             "[stripe]\nenabled = true\nwebhook_secret = whsec_test_secret\n"
             "checkout_url = https://buy.stripe.com/test_123\n",
             h->dir, h->dir, h->port);
    test_file_write(conf, text, (size_t)-1);
    chmod(conf, 0600);
    char *argv[] = {(char *)test_haibot_bin(), "-c", conf, NULL};
    test_child_start(&h->child, argv);
    h->running = true;
    char listening[96];
    snprintf(listening, sizeof(listening), "server.listening address=127.0.0.1 port=%d", h->port);
    if (!test_child_wait_for(&h->child, "err", listening, 15000))
        fprintf(stderr, "daemon stderr:\n%s\n", h->child.err);
    assert_non_null(strstr(h->child.err, listening));
    return 0;
}

/* A blocking loopback connection whose reads and writes give up after ms. */
static int hh_connect(int port, int ms)
{
    int fd = test_tcp_connect(port);
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Read until the peer closes, cap is full, or a read times out. */
static size_t hh_read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

/* GET /healthz on a fresh connection; returns its status (-1: no answer in
 * time) and the time it took on a monotonic clock. */
static int hh_healthz(int port, uint64_t *ms)
{
    uint64_t t0 = test_now_ms();
    int fd = hh_connect(port, 1000);
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    int status = -1;
    if (send(fd, get, sizeof(get) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(get) - 1)) {
        char buf[8192];
        size_t len = 0;
        /* The whole answer: the head, then content-length bytes of body. */
        while (len + 1 < sizeof(buf)) {
            ssize_t n = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
            buf[len] = '\0';
            const char *end = strstr(buf, "\r\n\r\n");
            const char *cl = strcasestr(buf, "content-length:");
            if (end != NULL && cl != NULL && cl < end &&
                (size_t)(buf + len - (end + 4)) >= strtoul(cl + 15, NULL, 10)) {
                if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
                    status = -1;
                break;
            }
        }
    }
    close(fd);
    *ms = test_now_ms() - t0;
    return status;
}

static void hh_assert_healthy(struct hh *h)
{
    uint64_t ms = 0;
    int status = hh_healthz(h->port, &ms);
    if (status != 200)
        fprintf(stderr, "healthz status %d after %llu ms\n", status, (unsigned long long)ms);
    assert_int_equal(status, 200);
}

static char *hh_corpus(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof(path), HH_CORPUS "%s", name);
    char *data = test_file_read(path, len);
    if (data == NULL)
        fprintf(stderr, "cannot read %s (tests run from the repository root)\n", path);
    assert_non_null(data);
    return data;
}

/* Send data in one write() on a fresh connection; return what came back. */
static size_t hh_one_write(struct hh *h, const char *data, size_t len, char *out, size_t cap)
{
    int fd = hh_connect(h->port, 2000);
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t n = hh_read_all(fd, out, cap);
    close(fd);
    return n;
}

static void hh_stop(struct hh *h)
{
    assert_int_equal(kill(h->child.pid, SIGTERM), 0);
    int status = test_child_finish(&h->child, 15000);
    h->running = false;
    if (status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", h->child.err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(h->child.err, "daemon.stopped"));
}

static void test_hostile_corpus_one_write(void **state)
{
    struct hh *h = *state;
    static const char *const files[] = {
        "http-two-pipelined-posts.txt",
        "http-pipelined-put-badversion.txt",
        "http-pipelined-put-lf-badversion.txt",
    };
    char out[8192];
    for (size_t i = 0; i < TEST_ARRAY_SIZE(files); i++) {
        size_t len = 0;
        char *data = hh_corpus(files[i], &len);
        size_t n = hh_one_write(h, data, len, out, sizeof(out));
        free(data);
        if (n == 0 || strncmp(out, "HTTP/1.1 ", 9) != 0)
            fprintf(stderr, "%s: answer \"%s\"\n", files[i], out);
        assert_true(n > 0);
        assert_memory_equal(out, "HTTP/1.1 ", 9);
        hh_assert_healthy(h);
    }
    /* Two unsigned webhooks, both refused, in order on one connection. */
    size_t len = 0;
    char *data = hh_corpus("http-two-pipelined-posts.txt", &len);
    assert_true(hh_one_write(h, data, len, out, sizeof(out)) > 0);
    free(data);
    const char *second = strstr(out + 1, "HTTP/1.1 ");
    assert_memory_equal(out, "HTTP/1.1 401", 12);
    assert_non_null(second);
    assert_memory_equal(second, "HTTP/1.1 401", 12);
    /* Another request, and a command on the console. */
    static const char post[] = "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\n{}";
    assert_true(hh_one_write(h, post, sizeof(post) - 1, out, sizeof(out)) > 0);
    assert_memory_equal(out, "HTTP/1.1 401", 12);
    assert_true(write(h->child.in_fd, "/balance\n", 9) == 9);
    assert_true(test_child_wait_for(&h->child, "out", "Your wallet", 15000));
    hh_assert_healthy(h);
    hh_stop(h);
}

/* The hostile requests the flood draws from (each a complete message or a
 * deliberately broken one). */
static void hh_flood_request(size_t k, char *buf, size_t cap, size_t *len)
{
    static const char body[] = "{\"id\":\"evt_1\",\"type\":\"checkout.session.completed\","
                               "\"data\":{\"object\":{}}}";
    int n = 0;
    switch (k % 12) {
    case 0:
        n = snprintf(buf, cap,
                     "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof(body) - 1, body);
        break;
    case 1:
        n = snprintf(buf, cap, "PUT /webhooks/stripe HTTP/1.1\nHost: x\nContent-Length: %zu\n\n%s",
                     sizeof(body) - 1, body);
        break;
    case 2:
        n = snprintf(buf, cap, "POST /webhooks/stripe HTTP/9.9\r\nContent-Length: %zu\r\n\r\n%s",
                     sizeof(body) - 1, body);
        break;
    case 3:
        n = snprintf(buf, cap,
                     "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     sizeof(body) - 1, body);
        break;
    case 4:
        n = snprintf(buf, cap, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        break;
    case 5:
        n = snprintf(buf, cap, "GET /healthz HTTP/1.1\r\nX-Big: %0*d\r\n\r\n", 9000, 0);
        break;
    case 6:
        n = snprintf(
            buf, cap,
            "POST /webhooks/stripe HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n");
        break;
    case 7:
        n = snprintf(buf, cap, "POST /webhooks/stripe HTTP/1.1\r\nContent-Length: -1\r\n\r\n");
        break;
    case 8:
        n = snprintf(buf, cap,
                     "POST /webhooks/stripe HTTP/1.1\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
        break;
    case 9:
        n = snprintf(buf, cap, "\r\n\r\n\x01\x02\xff\xfe garbage\r\n\r\n");
        break;
    case 10:
        n = snprintf(buf, cap, "GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n");
        break;
    default:
        n = snprintf(
            buf, cap,
            "POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{\"a\"");
        break;
    }
    assert_true(n > 0 && (size_t)n < cap);
    *len = (size_t)n;
}

static void test_hostile_flood_keeps_health(void **state)
{
    struct hh *h = *state;
    uint64_t t_start = test_now_ms();
    size_t len = 0;
    char *data = hh_corpus("http-two-pipelined-posts.txt", &len);
    int first = hh_connect(h->port, 2000);
    assert_int_equal(send(first, data, len, MSG_NOSIGNAL), (ssize_t)len);
    free(data);

    enum { CONNS = 100, PER_CONN = 10, OPEN_MAX = 32 };
    int open_fds[OPEN_MAX];
    size_t nopen = 0;
    uint64_t worst = 0;
    size_t probes = 0;
    static char batch[PER_CONN * 12000];
    for (size_t c = 0; c < CONNS; c++) {
        size_t blen = 0;
        for (size_t r = 0; r < PER_CONN; r++) {
            size_t n = 0;
            hh_flood_request(c * PER_CONN + r + c, batch + blen, 12000, &n);
            blen += n;
        }
        int fd = hh_connect(h->port, 2000);
        /* One write; the daemon may refuse and close early, which is fine. */
        ssize_t sent = send(fd, batch, blen, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)sent;
        if (nopen == OPEN_MAX) {
            close(open_fds[0]);
            memmove(open_fds, open_fds + 1, (OPEN_MAX - 1) * sizeof(int));
            nopen--;
        }
        open_fds[nopen++] = fd;
        uint64_t ms = 0;
        int status = hh_healthz(h->port, &ms);
        probes++;
        if (status != 200 || ms >= HH_PROBE_MAX_MS)
            fprintf(stderr, "healthz probe %zu: status %d in %llu ms\n", probes, status,
                    (unsigned long long)ms);
        assert_int_equal(status, 200);
        assert_true(ms < HH_PROBE_MAX_MS);
        if (ms > worst)
            worst = ms;
    }
    for (size_t i = 0; i < nopen; i++)
        close(open_fds[i]);
    /* The first connection got both its answers. */
    char out[4096];
    hh_read_all(first, out, sizeof(out));
    close(first);
    assert_memory_equal(out, "HTTP/1.1 401", 12);
    assert_non_null(strstr(out + 1, "HTTP/1.1 401"));
    hh_assert_healthy(h);
    hh_stop(h);
    uint64_t total = test_now_ms() - t_start;
    fprintf(stderr, "hostile flood: %zu probes, worst %llu ms, %llu ms in all\n", probes,
            (unsigned long long)worst, (unsigned long long)total);
    assert_true(total < 20000);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown(test_hostile_corpus_one_write, hh_setup, hh_teardown),
    cmocka_unit_test_setup_teardown(test_hostile_flood_keeps_health, hh_setup, hh_teardown),
};

TEST_GROUP_DEFINE(hostile_http, tests, NULL, NULL)
