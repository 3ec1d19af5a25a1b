/* Test helper: HTTP calls to the daemon's server through net/http.h, on
 * the test's loop. */
#ifndef HB_TESTS_TCALL_H
#define HB_TESTS_TCALL_H

#include "net/http.h"

#include <stdbool.h>
#include <stddef.h>

struct tcall {
    bool done;
    int rc;     /* the client's completion code */
    int status; /* HTTP status */
    char *body; /* heap, NUL-terminated */
    size_t body_len;
    char *content_type;
    char *www_authenticate;
    char *retry_after;
};

/** Start a request; headers is "Name", "value", ... NULL (may be NULL). */
void tcall_start(struct http_client *client, const char *method, const char *url,
                 const char *const *headers, const void *body, size_t len, struct tcall *out);

/** Run the loop until every call in calls[0..n) is done. */
void tcall_wait(uv_loop_t *loop, struct tcall *calls, size_t n);

/** One call: start, wait. */
void tcall_do(uv_loop_t *loop, struct http_client *client, const char *method, const char *url,
              const char *const *headers, const void *body, size_t len, struct tcall *out);

void tcall_clear(struct tcall *c);

#endif
