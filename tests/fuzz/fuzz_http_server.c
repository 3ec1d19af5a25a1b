/* The daemon's HTTP server (net/server.c, net/server_request.c): any
 * bytes on a loopback connection are served, refused with a status, or
 * the connection closed, never a crash. One server for the whole run;
 * each input is one connection, its write side shut after the input, read
 * until the server closes it. */
#include "tests/fuzz/fuzz.h"

#include "net/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uv_loop_t fuzz_loop;
static struct server *fuzz_srv;

static void fuzz_hook(struct server_request *req, void *data)
{
    (void)data;
    size_t len = 0;
    (void)server_request_body(req, &len);
    const char *sig = server_request_header(req, "X-Signature");
    server_respond(req, sig != NULL ? 202 : 200, NULL, "ok\n", 3, NULL);
}

static int fuzz_setup(void)
{
    if (fuzz_srv != NULL)
        return 0;
    if (uv_loop_init(&fuzz_loop) != 0)
        return -1;
    struct server_options o = {.max_body = 2048};
    fuzz_srv = server_new(&fuzz_loop, &o);
    if (fuzz_srv == NULL || server_port(fuzz_srv) <= 0)
        abort();
    static const char *const headers[] = {"X-Signature", NULL};
    server_route_add(fuzz_srv, "POST", "/hook", headers, fuzz_hook, NULL);
    server_route_add(fuzz_srv, "GET", "/healthz", NULL, fuzz_hook, NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_setup() != 0)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)server_port(fuzz_srv));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return 0;
    }
    size_t off = 0;
    bool eof = false, shut = false;
    /* Write what the socket takes, let the server read, until it is all
     * out; then read until the server closes (bounded: it must not hang). */
    uint64_t until = uv_hrtime() + 2000000000ull;
    while (!eof && uv_hrtime() < until) {
        if (!shut && off == size) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        if (off < size) {
            ssize_t n = send(fd, data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                off = size; /* the server closed on us */
        }
        uv_run(&fuzz_loop, UV_RUN_NOWAIT);
        char buf[4096];
        ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            eof = true;
    }
    if (!eof)
        abort(); /* the server held a half-closed connection for ever */
    close(fd);
    uv_run(&fuzz_loop, UV_RUN_NOWAIT);
    return 0;
}
