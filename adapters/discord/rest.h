/* Discord REST on the loop: rate-limit buckets, the global limit, 429s and
 * the invalid-request budget.
 *
 * Every request names a route ("PATCH /channels/123/messages/456"). The
 * route's bucket is keyed by its shape (ids replaced, except the major
 * parameter: a channel, guild, or webhook id and token) until Discord names
 * the bucket in X-RateLimit-Bucket; routes that share a bucket name then
 * share one queue per major parameter. A bucket with no requests left
 * (X-RateLimit-Remaining 0) holds its queue until X-RateLimit-Reset-After
 * has passed; a bucket never seen sends one request at a time until its
 * limits are known. The global limit (50 requests per second) is enforced
 * before sending, with a sliding one-second window.
 *
 * A 429 holds the bucket (or every bucket, when `global`) for retry_after
 * seconds and puts the request back at the head of its queue. 401, 403 and
 * 429 answers are counted over ten minutes; past a budget far below
 * Discord's ban threshold, everything but interaction callbacks waits until
 * the count falls.
 *
 * Interaction callbacks (POST /interactions/{id}/{token}/callback) are not
 * bound by the global limit and never wait in a queue: a burst of commands
 * is acknowledged in parallel.
 *
 * Ownership: the rest client borrows the http client; everything passed to
 * a call is copied. */
#ifndef HB_DISCORD_REST_H
#define HB_DISCORD_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct discord_rest;

struct discord_rest_options {
    const char *api_base;       /* "https://discord.com/api/v10" (copied) */
    const char *token;          /* bot token (copied; registered as a log secret) */
    unsigned global_per_s;      /* requests per second over all buckets; 0: 50 */
    unsigned invalid_budget;    /* 401/403/429 answers per window before holding; 0: 1000 */
    uint64_t invalid_window_ms; /* 0: 600000 (ten minutes, as Discord counts) */
    unsigned max_tries;         /* sends of one request through 429s and failures; 0: 5 */
    unsigned connections;       /* > 0: a connection pool of its own, this many to Discord at
                                   most (HTTP/2 multiplexed where offered); 0: the http client
                                   given, as it is */
};

/** One file part of a multipart request (all borrowed for the call). */
struct discord_rest_file {
    const char *filename; /* "image.png" */
    const char *mime;     /* "image/png" */
    const unsigned char *data;
    size_t len;
};

/** The outcome of a request: rc 0 when Discord answered (any status; read
 *  status), else HB_ECANCELED, HB_ETIMEOUT, a connection error... body is
 *  NUL-terminated and borrowed for the callback. */
struct discord_rest_result {
    int rc;
    int status;
    const char *body;
    size_t body_len;
    unsigned tries; /* times the request was sent */
};

typedef void (*discord_rest_cb)(const struct discord_rest_result *res, void *data);

/** Counters, for health checks and tests. */
struct discord_rest_stats {
    uint64_t sent;           /* requests handed to the http client (retries included) */
    uint64_t completed;      /* callbacks made */
    uint64_t rate_limited;   /* 429 answers */
    uint64_t global_limited; /* 429 answers with global true */
    uint64_t invalid;        /* 401, 403 and 429 answers */
    uint64_t held_by_bucket; /* times a queue waited for a bucket reset */
    uint64_t held_by_global; /* times a send waited for the global window */
    size_t queued;           /* requests waiting now */
    size_t in_flight;        /* requests sent and not answered now */
    size_t buckets;          /* buckets known now */
};

/** Make a rest client on loop with http (both borrowed, both must outlive
 *  it; http may be NULL when opt->connections makes a pool of its own).
 *  Returns NULL on bad options or no memory. */
struct discord_rest *discord_rest_new(uv_loop_t *loop, struct http_client *http,
                                      const struct discord_rest_options *opt);

/** Queue a request. method "GET", "POST", ...; path after the API base
 *  ("/channels/1/messages"); json the body or NULL; files (nfiles of them)
 *  make it multipart with payload_json and files[n]. cb (may be NULL) runs
 *  once, later, from the loop. Returns 0, HB_EINVAL, HB_ENOMEM, or
 *  HB_ESTATE once closing (no callback then). */
int discord_rest_request(struct discord_rest *r, const char *method, const char *path,
                         const char *json, const struct discord_rest_file *files, size_t nfiles,
                         discord_rest_cb cb, void *data);

/** Fail every queued request with HB_ECANCELED, cancel those in flight,
 *  close the timer and free the client; cb (may be NULL) runs last. */
void discord_rest_close(struct discord_rest *r, void (*cb)(void *data), void *data);

void discord_rest_stats(const struct discord_rest *r, struct discord_rest_stats *out);

/* ---- pure helpers, exposed for tests ------------------------------------ */

/** Room for a route's shape ("PATCH /webhooks/:major/messages/:id"). */
#define DISCORD_REST_ROUTE_MAX 512
/** Room for a major parameter's value. The longest is a webhook's,
 *  "webhooks/<id>/<token>": up to 20 digits and an interaction token of up
 *  to DISCORD_TOKEN_MAX bytes, the most the adapter keeps. */
#define DISCORD_TOKEN_MAX 511
#define DISCORD_REST_MAJOR_MAX (sizeof("webhooks//") + 20 + DISCORD_TOKEN_MAX)

/** The shape of a route: the method and the path without its query, ids
 *  replaced by ":id" and the major parameter by ":major".
 *  "PATCH /channels/1/messages/2" -> "PATCH /channels/:major/messages/:id"
 *  with *major "channels/1" ("" when the route has none; a webhook's is
 *  "webhooks/<id>/<token>"). Returns 0 or HB_EOVERFLOW when the buffers
 *  are too small. */
int discord_rest_route_key(const char *method, const char *path, char *route, size_t route_cap,
                           char *major, size_t major_cap);

/** Is this path an interaction callback (never queued, not bound by the
 *  global limit)? */
bool discord_rest_is_interaction_callback(const char *path);

#endif
