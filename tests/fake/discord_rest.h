/* A fake Discord REST API for tests and benchmarks, on the fake httpd (plain
 * HTTP on 127.0.0.1; the API base is http://127.0.0.1:PORT/api/v10).
 *
 * It answers the routes the adapter uses like Discord does (GET
 * /gateway/bot, GET /users/@me, PUT application commands, interaction callbacks, webhook
 * edits and follow-ups, channel messages), records every request, and
 * emulates rate limits: each bucket (method and the first three path
 * segments, so the major parameter is part of it) allows `bucket_limit`
 * requests per `bucket_reset_ms` and says so in X-RateLimit-* headers. A
 * request that arrives while its bucket is exhausted is answered 429 and
 * counted as a violation; so is one that arrives during a global 429 hold.
 * Scripted 429s (per bucket or global) and slow answers are queued by path
 * substring.
 *
 * Files added with fake_rest_file_add() are served at their path (under
 * /attachments/, outside the API base, as Discord's CDN serves
 * attachments) to GET, with their content type; the GETs are recorded.
 *
 * Interaction callbacks carry no bucket, as on Discord. Every call may come
 * from any thread (a mutex guards the records). */
#ifndef HB_TEST_FAKE_DISCORD_REST_H
#define HB_TEST_FAKE_DISCORD_REST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct fake_rest;

/** One recorded request; strings owned by the fake. */
struct fake_rest_request {
    char method[8];
    char *target;    /* "/api/v10/channels/1/messages" */
    char *json;      /* the JSON body, or payload_json of a multipart body; "" if none */
    size_t nfiles;   /* files[n] parts */
    size_t file_len; /* bytes of files[0] */
    char file_name[64];
    char file_type[64];
    char auth[192]; /* the Authorization header */
    uint64_t at_ms; /* monotonic ms when it arrived */
    int status;     /* what the fake answered */
};

struct fake_rest_options {
    const char *gateway_url;  /* "url" in GET /gateway/bot */
    unsigned shards;          /* recommended shards; 0: 1 */
    unsigned max_concurrency; /* session_start_limit.max_concurrency; 0: 1 */
    unsigned bucket_limit;    /* requests per bucket window; 0: 1000 */
    uint64_t bucket_reset_ms; /* bucket window; 0: 1000 */
    /* Called (on the fake's loop, outside its lock) after each request is
     * recorded and answered or scheduled; may be NULL. */
    void (*on_request)(struct fake_rest *f, const struct fake_rest_request *req, void *data);
    void *data;
};

/** A fake on `loop` (borrowed). NULL on failure. */
struct fake_rest *fake_rest_new(uv_loop_t *loop, const struct fake_rest_options *opt);

/** The same on a thread and loop of its own (benchmarks). */
struct fake_rest *fake_rest_start_thread(const struct fake_rest_options *opt);

/** Loop mode: close the server, then cb (may be NULL) from the loop.
 *  Thread mode: stop the thread; cb runs at once. The records stay
 *  readable until fake_rest_free(). */
void fake_rest_close(struct fake_rest *f, void (*cb)(void *data), void *data);

/** Serve bytes (copied) at path ("/attachments/1/2/cat.png"). */
void fake_rest_file_add(struct fake_rest *f, const char *path, const char *content_type,
                        const void *bytes, size_t len);

/** Free the fake (closing it first in thread mode). NULL is fine. */
void fake_rest_free(struct fake_rest *f);

/** "http://127.0.0.1:PORT/api/v10" (valid as long as the fake). */
const char *fake_rest_api_base(const struct fake_rest *f);

/** Requests recorded so far; the i-th one (a copy the caller frees with
 *  fake_rest_request_free; NULL when out of range). */
size_t fake_rest_count(struct fake_rest *f);
struct fake_rest_request *fake_rest_get(struct fake_rest *f, size_t i);
void fake_rest_request_free(struct fake_rest_request *r);

/** How many recorded requests have this method and contain `substr` in the
 *  target (method NULL: any). */
size_t fake_rest_matching(struct fake_rest *f, const char *method, const char *substr);

/** Connections the fake accepted so far (0 once closed). */
unsigned fake_rest_connections(const struct fake_rest *f);

/** Requests that arrived while their bucket, or everything after a global
 *  429, was on hold. */
unsigned fake_rest_violations(struct fake_rest *f);

/** The next request whose target contains substr gets a 429 with
 *  retry_after seconds (global or per bucket; a per-bucket one also holds
 *  the bucket for that long). */
void fake_rest_script_429(struct fake_rest *f, const char *substr, double retry_after, bool global);

/** Every following request whose target contains substr is answered after
 *  ms milliseconds (0 removes the rule). */
void fake_rest_delay(struct fake_rest *f, const char *substr, uint64_t ms);

/** The next request whose target contains substr is answered with status
 *  and a Discord error body. */
void fake_rest_script_status(struct fake_rest *f, const char *substr, int status);

#endif
