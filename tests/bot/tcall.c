#include "tests/bot/tcall.h"

#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

static char *tcall__dup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static void tcall__done(struct http_request *req, int rc, void *data)
{
    struct tcall *c = data;
    c->done = true;
    c->rc = rc;
    c->status = http_request_status(req);
    size_t len = 0;
    const char *b = http_request_body(req, &len);
    c->body = malloc(len + 1);
    if (c->body != NULL) {
        memcpy(c->body, b, len);
        c->body[len] = '\0';
    }
    c->body_len = len;
    c->content_type = tcall__dup(http_request_header(req, "Content-Type"));
    c->www_authenticate = tcall__dup(http_request_header(req, "WWW-Authenticate"));
    c->retry_after = tcall__dup(http_request_header(req, "Retry-After"));
}

void tcall_start(struct http_client *client, const char *method, const char *url,
                 const char *const *headers, const void *body, size_t len, struct tcall *out)
{
    memset(out, 0, sizeof(*out));
    struct http_request *req = http_request_new(client, method, url);
    assert_non_null(req);
    for (size_t i = 0; headers != NULL && headers[i] != NULL; i += 2)
        assert_int_equal(http_request_header_add(req, headers[i], headers[i + 1]), 0);
    if (body != NULL)
        assert_int_equal(http_request_body_set(req, body, len, "application/json"), 0);
    assert_int_equal(http_request_start(req, tcall__done, out), 0);
}

void tcall_wait(uv_loop_t *loop, struct tcall *calls, size_t n)
{
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < n; i++)
            all = all && calls[i].done;
        if (all)
            return;
        uv_run(loop, UV_RUN_ONCE);
    }
}

void tcall_do(uv_loop_t *loop, struct http_client *client, const char *method, const char *url,
              const char *const *headers, const void *body, size_t len, struct tcall *out)
{
    tcall_start(client, method, url, headers, body, len, out);
    tcall_wait(loop, out, 1);
}

void tcall_clear(struct tcall *c)
{
    free(c->body);
    free(c->content_type);
    free(c->www_authenticate);
    free(c->retry_after);
    memset(c, 0, sizeof(*c));
}
