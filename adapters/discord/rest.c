#include "adapters/discord/rest.h"

#include "net/http.h"
#include "base/error.h"
#include "base/hash.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/text.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REST_TABLE_SIZE 1024
#define REST_BUCKET_IDLE_MS 60000 /* a bucket unused this long is forgotten */
#define REST_SWEEP_EVERY_MS 30000
#define REST_DEFAULT_RETRY_MS 1000
#define REST_COUNT_MAX 1000000                 /* the most X-RateLimit-Limit/Remaining we believe */
#define REST_RESET_MAX_MS (24LL * 3600 * 1000) /* the longest reset or Retry-After we believe */

struct rest_file {
    char *filename;
    char *mime;
    unsigned char *data;
    size_t len;
};

struct rest_bucket;

struct rest_req {
    struct rest_req *next;          /* in a bucket queue or the delayed list */
    struct rest_req *fprev, *fnext; /* in the in-flight list */
    struct discord_rest *rest;
    struct rest_bucket *bucket; /* NULL for an interaction callback */
    char *method;
    char *path;
    char *json;
    struct rest_file *files;
    size_t nfiles;
    char route[DISCORD_REST_ROUTE_MAX]; /* route shape, for learning the bucket name */
    char
        major[DISCORD_REST_MAJOR_MAX]; /* the major parameter's value, e.g. webhooks/<id>/<token> */
    unsigned tries;
    int fail_rc;         /* why it could not be sent (failed list) */
    uint64_t not_before; /* loop ms before which it may not be sent */
    discord_rest_cb cb;
    void *data;
    struct http_request *http; /* while in flight */
};

struct rest_bucket {
    struct rest_bucket *aprev, *anext; /* in the active list (queue not empty) */
    bool active;
    unsigned nentries; /* table entries naming it */
    bool sweep;
    int limit;         /* X-RateLimit-Limit; 0 unknown */
    int remaining;     /* requests left in this window; -1 unknown */
    uint64_t reset_at; /* loop ms when the window resets */
    uint64_t last_used;
    unsigned in_flight;
    bool held; /* counted in held_by_bucket for the current wait */
    struct rest_req *head, *tail;
};

/* A name in the bucket table: a route key or a learnt bucket name, with
 * the major parameter. Several names may lead to one bucket. */
struct rest_entry {
    struct rest_entry *next;
    char *key;
    struct rest_bucket *bucket;
};

/* A route shape whose bucket name Discord told us. */
struct rest_alias {
    struct rest_alias *next;
    char *route;
    char *hash;
};

struct discord_rest {
    uv_loop_t *loop;
    struct http_client *http;
    bool own_http;     /* http is this client's pool (opt->connections), closed with it */
    bool http_closing; /* closing the pool: the last step before free */
    char *api_base;
    char *auth; /* "Bot <token>" */
    unsigned global_per_s;
    unsigned invalid_budget;
    uint64_t invalid_window_ms;
    unsigned max_tries;

    uv_timer_t timer;
    uint64_t timer_due; /* when the timer fires; UINT64_MAX: idle */
    bool pumping;
    struct rest_entry *table[REST_TABLE_SIZE];
    struct rest_alias *aliases[REST_TABLE_SIZE];
    struct rest_bucket *active; /* buckets with queued requests */
    struct rest_req *delayed;   /* interaction callbacks waiting out a 429 */
    struct rest_req *failed;    /* failed to start: complete from the timer */
    struct rest_req *flying;    /* in flight */

    uint64_t *global_at; /* ring of the last global_per_s send times */
    size_t global_head, global_count;
    uint64_t global_until; /* a global 429 holds everything until then */
    bool global_held;
    uint64_t *invalid_at; /* ring of invalid answer times */
    size_t invalid_head, invalid_count;
    bool invalid_warned;
    uint64_t next_sweep;

    struct discord_rest_stats stats;
    bool closing;
    bool timer_closed;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- tables --------------------------------------------------------------- */

static size_t rest__hash(const char *s)
{
    return (size_t)(hash_fnv1a64_str(s) % REST_TABLE_SIZE);
}

static struct rest_bucket *rest__entry_find(struct discord_rest *r, const char *key)
{
    for (struct rest_entry *e = r->table[rest__hash(key)]; e != NULL; e = e->next) {
        if (strcmp(e->key, key) == 0)
            return e->bucket;
    }
    return NULL;
}

static int rest__entry_add(struct discord_rest *r, const char *key, struct rest_bucket *b)
{
    struct rest_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return HB_ENOMEM;
    e->key = strdup(key);
    if (e->key == NULL) {
        free(e);
        return HB_ENOMEM;
    }
    size_t h = rest__hash(key);
    e->bucket = b;
    e->next = r->table[h];
    r->table[h] = e;
    b->nentries++;
    return 0;
}

static const char *rest__alias_find(struct discord_rest *r, const char *route)
{
    for (struct rest_alias *a = r->aliases[rest__hash(route)]; a != NULL; a = a->next) {
        if (strcmp(a->route, route) == 0)
            return a->hash;
    }
    return NULL;
}

static void rest__alias_set(struct discord_rest *r, const char *route, const char *hash)
{
    size_t h = rest__hash(route);
    for (struct rest_alias *a = r->aliases[h]; a != NULL; a = a->next) {
        if (strcmp(a->route, route) == 0) {
            if (strcmp(a->hash, hash) != 0) {
                char *copy = strdup(hash);
                if (copy != NULL) {
                    free(a->hash);
                    a->hash = copy;
                }
            }
            return;
        }
    }
    struct rest_alias *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return;
    a->route = strdup(route);
    a->hash = strdup(hash);
    if (a->route == NULL || a->hash == NULL) {
        free(a->route);
        free(a->hash);
        free(a);
        return;
    }
    a->next = r->aliases[h];
    r->aliases[h] = a;
}

/* The bucket a request waits in: by learnt bucket name when Discord told
 * us one for this route shape, else by the shape itself. */
static struct rest_bucket *rest__bucket_for(struct discord_rest *r, const char *route,
                                            const char *major)
{
    char key[DISCORD_REST_ROUTE_MAX + DISCORD_REST_MAJOR_MAX + 4];
    const char *hash = rest__alias_find(r, route);
    if (hash != NULL)
        snprintf(key, sizeof(key), "h:%s|%s", hash, major);
    else
        snprintf(key, sizeof(key), "r:%s|%s", route, major);
    struct rest_bucket *b = rest__entry_find(r, key);
    if (b != NULL)
        return b;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->remaining = -1;
    if (rest__entry_add(r, key, b) < 0) {
        free(b);
        return NULL;
    }
    r->stats.buckets++;
    return b;
}

/* Forget buckets nobody used for a while (webhook tokens die after 15
 * minutes, so their buckets would otherwise pile up). */
static void rest__sweep(struct discord_rest *r, uint64_t now, bool all)
{
    for (size_t i = 0; i < REST_TABLE_SIZE; i++) {
        for (struct rest_entry *e = r->table[i]; e != NULL; e = e->next) {
            struct rest_bucket *b = e->bucket;
            b->sweep = all || (b->head == NULL && b->in_flight == 0 && now >= b->reset_at &&
                               now - b->last_used >= REST_BUCKET_IDLE_MS);
        }
    }
    for (size_t i = 0; i < REST_TABLE_SIZE; i++) {
        struct rest_entry **pp = &r->table[i];
        while (*pp != NULL) {
            struct rest_entry *e = *pp;
            if (!e->bucket->sweep) {
                pp = &e->next;
                continue;
            }
            *pp = e->next;
            if (--e->bucket->nentries == 0) {
                free(e->bucket);
                r->stats.buckets--;
            }
            free(e->key);
            free(e);
        }
    }
}

/* ---- requests -------------------------------------------------------------- */

static void rest__req_free(struct rest_req *q)
{
    for (size_t i = 0; i < q->nfiles; i++) {
        free(q->files[i].filename);
        free(q->files[i].mime);
        free(q->files[i].data);
    }
    free(q->files);
    free(q->method);
    free(q->path);
    free(q->json);
    free(q);
}

static void rest__complete(struct discord_rest *r, struct rest_req *q, int rc, int status,
                           const char *body, size_t len)
{
    struct discord_rest_result res = {.rc = rc,
                                      .status = status,
                                      .body = body != NULL ? body : "",
                                      .body_len = len,
                                      .tries = q->tries};
    r->stats.completed++;
    if (q->cb != NULL)
        q->cb(&res, q->data);
    rest__req_free(q);
}

static void rest__active_add(struct discord_rest *r, struct rest_bucket *b)
{
    if (b->active)
        return;
    b->active = true;
    b->aprev = NULL;
    b->anext = r->active;
    if (r->active != NULL)
        r->active->aprev = b;
    r->active = b;
}

static void rest__active_remove(struct discord_rest *r, struct rest_bucket *b)
{
    if (!b->active)
        return;
    if (b->aprev != NULL)
        b->aprev->anext = b->anext;
    else
        r->active = b->anext;
    if (b->anext != NULL)
        b->anext->aprev = b->aprev;
    b->aprev = b->anext = NULL;
    b->active = false;
}

static void rest__queue_push(struct discord_rest *r, struct rest_bucket *b, struct rest_req *q,
                             bool at_head)
{
    q->next = NULL;
    if (at_head) {
        q->next = b->head;
        b->head = q;
        if (b->tail == NULL)
            b->tail = q;
    } else {
        if (b->tail != NULL)
            b->tail->next = q;
        else
            b->head = q;
        b->tail = q;
    }
    r->stats.queued++;
    rest__active_add(r, b);
}

static struct rest_req *rest__queue_pop(struct discord_rest *r, struct rest_bucket *b)
{
    struct rest_req *q = b->head;
    b->head = q->next;
    if (b->head == NULL)
        b->tail = NULL;
    q->next = NULL;
    r->stats.queued--;
    return q;
}

/* ---- limits --------------------------------------------------------------- */

/* May the bucket send now? Else *wake gets when to look again. */
static bool rest__bucket_ready(struct rest_bucket *b, uint64_t now, uint64_t *wake)
{
    if (b->remaining < 0) {
        /* Limits unknown: one request at a time until an answer tells. A
         * 429 before any limit was known still holds the bucket. */
        if (now < b->reset_at) {
            *wake = b->reset_at;
            return false;
        }
        return b->in_flight == 0;
    }
    if (b->remaining > 0)
        return true;
    if (now >= b->reset_at) {
        int fresh = b->limit > 0 ? b->limit : 1;
        b->remaining = fresh > (int)b->in_flight ? fresh - (int)b->in_flight : 0;
        if (b->remaining > 0)
            return true;
        return false; /* the answers in flight will tell */
    }
    *wake = b->reset_at;
    return false;
}

static bool rest__global_ready(struct discord_rest *r, uint64_t now, uint64_t *wake)
{
    if (now < r->global_until) {
        *wake = r->global_until;
        return false;
    }
    if (r->invalid_count >= r->invalid_budget) {
        uint64_t oldest = r->invalid_at[r->invalid_head];
        if (now < oldest + r->invalid_window_ms) {
            if (!r->invalid_warned) {
                r->invalid_warned = true;
                log_error("discord.rest.invalid_budget", "count=%zu window_ms=%llu action=%s",
                          r->invalid_count, (unsigned long long)r->invalid_window_ms,
                          "holding requests so Discord does not ban the address");
            }
            *wake = oldest + r->invalid_window_ms;
            return false;
        }
    }
    r->invalid_warned = false;
    if (r->global_count < r->global_per_s)
        return true;
    uint64_t oldest = r->global_at[r->global_head];
    if (now >= oldest + 1000)
        return true;
    *wake = oldest + 1000;
    return false;
}

static void rest__global_take(struct discord_rest *r, uint64_t now)
{
    if (r->global_count < r->global_per_s) {
        r->global_at[(r->global_head + r->global_count) % r->global_per_s] = now;
        r->global_count++;
    } else {
        r->global_at[r->global_head] = now;
        r->global_head = (r->global_head + 1) % r->global_per_s;
    }
}

static void rest__invalid_note(struct discord_rest *r, uint64_t now)
{
    r->stats.invalid++;
    /* Drop answers older than the window first. */
    while (r->invalid_count > 0 && r->invalid_at[r->invalid_head] + r->invalid_window_ms <= now) {
        r->invalid_head = (r->invalid_head + 1) % r->invalid_budget;
        r->invalid_count--;
    }
    if (r->invalid_count < r->invalid_budget) {
        r->invalid_at[(r->invalid_head + r->invalid_count) % r->invalid_budget] = now;
        r->invalid_count++;
    } else {
        r->invalid_at[r->invalid_head] = now;
        r->invalid_head = (r->invalid_head + 1) % r->invalid_budget;
    }
}

/* ---- sending -------------------------------------------------------------- */

static void rest__pump(struct discord_rest *r);
static void rest__maybe_free(struct discord_rest *r);
static void rest__http_done(struct http_request *req, int rc, void *data);

static void rest__timer_cb(uv_timer_t *t)
{
    struct discord_rest *r = t->data;
    r->timer_due = UINT64_MAX;
    rest__pump(r);
}

static void rest__schedule(struct discord_rest *r, uint64_t wake)
{
    if (r->closing)
        return;
    if (wake == UINT64_MAX) {
        if (r->timer_due != UINT64_MAX) {
            uv_timer_stop(&r->timer);
            r->timer_due = UINT64_MAX;
        }
        return;
    }
    if (r->timer_due == wake)
        return;
    uint64_t now = uv_now(r->loop);
    r->timer_due = wake;
    if (wake > now) /* requests wait for a bucket or the global limit */
        metrics_counter_add(metrics_std()->ratelimit_waits, (const char *[]){"discord"}, 1);
    uv_timer_start(&r->timer, rest__timer_cb, wake > now ? wake - now : 0, 0);
}

static void rest__flying_add(struct discord_rest *r, struct rest_req *q)
{
    q->fprev = NULL;
    q->fnext = r->flying;
    if (r->flying != NULL)
        r->flying->fprev = q;
    r->flying = q;
    r->stats.in_flight++;
}

static void rest__flying_remove(struct discord_rest *r, struct rest_req *q)
{
    if (q->fprev != NULL)
        q->fprev->fnext = q->fnext;
    else
        r->flying = q->fnext;
    if (q->fnext != NULL)
        q->fnext->fprev = q->fprev;
    q->fprev = q->fnext = NULL;
    r->stats.in_flight--;
}

/* Hand a request to the http client. On failure it goes to the failed
 * list and completes from the timer (never from inside the caller). */
static void rest__send(struct discord_rest *r, struct rest_req *q)
{
    char url[2048];
    int rc = 0;
    snprintf(url, sizeof(url), "%s%s", r->api_base, q->path);
    struct http_request *h = http_request_new(r->http, q->method, url);
    if (h == NULL) {
        rc = HB_ENOMEM;
        goto failed;
    }
    rc = http_request_header_add(h, "Authorization", r->auth);
    if (rc == 0)
        rc = http_request_header_add(h, "User-Agent",
                                     "DiscordBot (https://example.invalid/haibot, 0.1)");
    if (rc == 0 && q->nfiles > 0) {
        if (q->json != NULL)
            rc = http_request_form_field_add(h, "payload_json", q->json, "application/json");
        for (size_t i = 0; i < q->nfiles && rc == 0; i++) {
            char name[32];
            snprintf(name, sizeof(name), "files[%zu]", i);
            rc = http_request_form_file_add(h, name, q->files[i].filename, q->files[i].mime,
                                            q->files[i].data, q->files[i].len);
        }
    } else if (rc == 0 && q->json != NULL) {
        rc = http_request_body_set(h, q->json, strlen(q->json), "application/json");
    }
    if (rc < 0) {
        http_request_free(h);
        goto failed;
    }
    q->tries++;
    q->http = h;
    rest__flying_add(r, q);
    if (q->bucket != NULL) {
        q->bucket->in_flight++;
        q->bucket->last_used = uv_now(r->loop);
        if (q->bucket->remaining > 0)
            q->bucket->remaining--;
    }
    r->stats.sent++;
    rc = http_request_start(h, rest__http_done, q);
    if (rc < 0) {
        rest__flying_remove(r, q);
        q->http = NULL;
        if (q->bucket != NULL)
            q->bucket->in_flight--;
        goto failed;
    }
    return;
failed:
    log_warn("discord.rest.send_failed", "method=%s error=%s", q->method, hb_strerror(rc));
    q->tries = q->tries == 0 ? 1 : q->tries;
    q->bucket = NULL;
    q->fail_rc = rc;
    q->next = r->failed;
    r->failed = q;
}

static void rest__pump(struct discord_rest *r)
{
    if (r->pumping)
        return;
    r->pumping = true;
    uint64_t now = uv_now(r->loop);
    uint64_t wake = UINT64_MAX;

    while (r->failed != NULL) {
        struct rest_req *q = r->failed;
        r->failed = q->next;
        rest__complete(r, q, q->fail_rc, 0, NULL, 0);
    }
    if (r->closing) {
        r->pumping = false;
        return;
    }

    /* Interaction callbacks that wait out a 429: their own time, no queue. */
    struct rest_req **pp = &r->delayed;
    while (*pp != NULL) {
        struct rest_req *q = *pp;
        if (q->not_before <= now) {
            *pp = q->next;
            q->next = NULL;
            rest__send(r, q);
            continue;
        }
        if (q->not_before < wake)
            wake = q->not_before;
        pp = &q->next;
    }

    struct rest_bucket *b = r->active;
    while (b != NULL) {
        struct rest_bucket *next = b->anext;
        while (b->head != NULL) {
            uint64_t w = UINT64_MAX;
            if (b->head->not_before > now) {
                w = b->head->not_before;
            } else if (!rest__bucket_ready(b, now, &w)) {
                if (!b->held && w != UINT64_MAX) {
                    b->held = true;
                    r->stats.held_by_bucket++;
                }
            } else if (!rest__global_ready(r, now, &w)) {
                if (!r->global_held) {
                    r->global_held = true;
                    r->stats.held_by_global++;
                }
                if (w < wake)
                    wake = w;
                goto done; /* nothing else may go either */
            } else {
                b->held = false;
                r->global_held = false;
                rest__global_take(r, now);
                rest__send(r, rest__queue_pop(r, b));
                continue;
            }
            if (w < wake)
                wake = w;
            break;
        }
        if (b->head == NULL)
            rest__active_remove(r, b);
        b = next;
    }
done:
    if (now >= r->next_sweep) {
        rest__sweep(r, now, false);
        r->next_sweep = now + REST_SWEEP_EVERY_MS;
    }
    if (r->failed != NULL)
        wake = now;
    r->pumping = false;
    rest__schedule(r, wake);
}

/* A rate limit header as a whole number times unit (1000: seconds to ms),
 * at most max. 0 and *out set; HB_ENOTFOUND when absent; another negative
 * code when it is not a number or does not fit. */
static int rest__header_number(struct http_request *h, const char *name, int64_t unit, int64_t max,
                               int64_t *out)
{
    const char *v = http_request_header(h, name);
    if (v == NULL)
        return HB_ENOTFOUND;
    int rc = text_header_decimal(v, unit, max, out);
    if (rc < 0)
        log_warn("discord.rest_header_refused", "header=%s problem=%s", name,
                 rc == HB_EOVERFLOW ? "out of range" : "not a number");
    return rc;
}

/* Learn the bucket's state from the answer's headers. */
static void rest__bucket_learn(struct discord_rest *r, struct rest_req *q, struct http_request *h,
                               uint64_t now)
{
    struct rest_bucket *b = q->bucket;
    const char *name = http_request_header(h, "X-RateLimit-Bucket");
    if (name != NULL && name[0] != '\0' && strlen(name) < 128) {
        const char *known = rest__alias_find(r, q->route);
        if (known == NULL || strcmp(known, name) != 0) {
            rest__alias_set(r, q->route, name);
            char key[DISCORD_REST_ROUTE_MAX + DISCORD_REST_MAJOR_MAX + 4];
            snprintf(key, sizeof(key), "h:%s|%s", name, q->major);
            if (rest__entry_find(r, key) == NULL)
                rest__entry_add(r, key, b);
        }
    }
    /* Every number is checked before it is used; one that does not fit
     * makes the whole set unusable, and the bucket learns nothing. */
    int64_t rem = 0, lim = 0, after_ms = 1000;
    int rc = rest__header_number(h, "X-RateLimit-Remaining", 1, REST_COUNT_MAX, &rem);
    if (rc < 0)
        return; /* absent or refused: nothing to learn */
    rc = rest__header_number(h, "X-RateLimit-Limit", 1, REST_COUNT_MAX, &lim);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return;
    rc = rest__header_number(h, "X-RateLimit-Reset-After", 1000, REST_RESET_MAX_MS, &after_ms);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return;
    int remaining = (int)rem;
    int limit = (int)lim;
    uint64_t reset_at = now + (uint64_t)after_ms;
    if (limit > 0)
        b->limit = limit;
    /* Answers can overtake each other: within one window keep the lower
     * count; a later window starts from what Discord says. */
    bool same_window =
        b->remaining >= 0 && reset_at <= b->reset_at + 1000 && reset_at + 1000 >= b->reset_at;
    if (same_window && b->remaining < remaining)
        remaining = b->remaining;
    b->remaining = remaining < 0 ? 0 : remaining;
    if (!same_window || reset_at > b->reset_at)
        b->reset_at = reset_at;
}

/* The wait a 429 asks for, in ms, and whether it is global. */
static uint64_t rest__retry_after(struct http_request *h, bool *global)
{
    size_t len = 0;
    const char *body = http_request_body(h, &len);
    double secs = -1;
    *global = false;
    cJSON *j = cJSON_ParseWithLength(body, len);
    if (j != NULL) {
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retry_after");
        if (cJSON_IsNumber(ra) && ra->valuedouble >= 0 && isfinite(ra->valuedouble))
            secs = ra->valuedouble;
        *global = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "global"));
        cJSON_Delete(j);
    }
    int64_t header_ms = 0;
    if (secs < 0 && rest__header_number(h, "Retry-After", 1000, REST_RESET_MAX_MS, &header_ms) == 0)
        secs = (double)header_ms / 1000.0;
    const char *g = http_request_header(h, "X-RateLimit-Global");
    if (g != NULL && strcmp(g, "true") == 0)
        *global = true;
    if (secs < 0)
        return REST_DEFAULT_RETRY_MS;
    if (secs > 3600)
        secs = 3600;
    return (uint64_t)ceil(secs * 1000.0);
}

static void rest__http_done(struct http_request *h, int rc, void *data)
{
    struct rest_req *q = data;
    struct discord_rest *r = q->rest;
    uint64_t now = uv_now(r->loop);
    rest__flying_remove(r, q);
    q->http = NULL;
    if (q->bucket != NULL && q->bucket->in_flight > 0)
        q->bucket->in_flight--;
    int status = http_request_status(h);
    /* Discord does not count 429s of shared resource limits as invalid. */
    const char *scope = rc == 0 ? http_request_header(h, "X-RateLimit-Scope") : NULL;
    bool shared = scope != NULL && strcmp(scope, "shared") == 0;
    if (rc == 0 && (status == 401 || status == 403 || (status == 429 && !shared)))
        rest__invalid_note(r, now);
    if (rc == 0 && q->bucket != NULL)
        rest__bucket_learn(r, q, h, now);
    if (rc == 0 && status == 401)
        log_error("discord.rest.unauthorized", "method=%s route=%s note=%s", q->method, q->route,
                  "check the [discord] token");
    if (rc == 0 && status == 429 && !r->closing) {
        bool global = false;
        uint64_t wait = rest__retry_after(h, &global);
        r->stats.rate_limited++;
        metrics_counter_add(metrics_std()->http_429, (const char *[]){"discord"}, 1);
        if (global) {
            r->stats.global_limited++;
            if (now + wait > r->global_until)
                r->global_until = now + wait;
        } else if (q->bucket != NULL) {
            q->bucket->remaining = 0;
            if (now + wait > q->bucket->reset_at)
                q->bucket->reset_at = now + wait;
        }
        log_warn("discord.rest.rate_limited", "method=%s route=%s retry_ms=%llu global=%d try=%u",
                 q->method, q->route, (unsigned long long)wait, global ? 1 : 0, q->tries);
        if (q->tries < r->max_tries) {
            if (q->bucket != NULL) {
                rest__queue_push(r, q->bucket, q, true);
            } else {
                q->not_before = now + wait;
                q->next = r->delayed;
                r->delayed = q;
            }
            rest__pump(r);
            return;
        }
    }
    size_t len = 0;
    const char *body = http_request_body(h, &len);
    rest__complete(r, q, rc, status, body, len);
    if (r->closing) {
        rest__maybe_free(r);
        return;
    }
    rest__pump(r);
}

/* ---- public --------------------------------------------------------------- */

struct discord_rest *discord_rest_new(uv_loop_t *loop, struct http_client *http,
                                      const struct discord_rest_options *opt)
{
    if (loop == NULL || opt == NULL || (http == NULL && opt->connections == 0) ||
        opt->api_base == NULL || opt->token == NULL || opt->token[0] == '\0')
        return NULL;
    struct discord_rest *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->loop = loop;
    r->http = http;
    if (opt->connections > 0) {
        /* A pool of its own: every call takes turns on these connections
         * (multiplexed over HTTP/2, as Discord speaks it; one call at a
         * time each over HTTP/1.1), so a burst of callbacks does not open
         * a connection each, and a slow one holds only its own. */
        struct http_client_options ho = {.max_host_connections = (long)opt->connections,
                                         .max_idle_connections = (long)opt->connections};
        if (http_client_new(loop, &ho, &r->http) < 0) {
            free(r);
            return NULL;
        }
        r->own_http = true;
    }
    r->global_per_s = opt->global_per_s != 0 ? opt->global_per_s : 50;
    r->invalid_budget = opt->invalid_budget != 0 ? opt->invalid_budget : 1000;
    r->invalid_window_ms = opt->invalid_window_ms != 0 ? opt->invalid_window_ms : 600000;
    r->max_tries = opt->max_tries != 0 ? opt->max_tries : 5;
    r->timer_due = UINT64_MAX;
    r->api_base = strdup(opt->api_base);
    size_t alen = strlen(opt->token) + 5;
    r->auth = malloc(alen);
    r->global_at = calloc(r->global_per_s, sizeof(uint64_t));
    r->invalid_at = calloc(r->invalid_budget, sizeof(uint64_t));
    if (r->api_base == NULL || r->auth == NULL || r->global_at == NULL || r->invalid_at == NULL) {
        free(r->api_base);
        free(r->auth);
        free(r->global_at);
        free(r->invalid_at);
        if (r->own_http)
            http_client_close(r->http, free, r); /* r goes once the pool has */
        else
            free(r);
        return NULL;
    }
    size_t blen = strlen(r->api_base);
    while (blen > 0 && r->api_base[blen - 1] == '/')
        r->api_base[--blen] = '\0';
    snprintf(r->auth, alen, "Bot %s", opt->token);
    log_secret_add(opt->token);
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
    r->next_sweep = uv_now(loop) + REST_SWEEP_EVERY_MS;
    return r;
}

int discord_rest_request(struct discord_rest *r, const char *method, const char *path,
                         const char *json, const struct discord_rest_file *files, size_t nfiles,
                         discord_rest_cb cb, void *data)
{
    if (r == NULL || method == NULL || path == NULL || path[0] != '/' ||
        (nfiles > 0 && files == NULL))
        return HB_EINVAL;
    if (r->closing)
        return HB_ESTATE;
    struct rest_req *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return HB_ENOMEM;
    q->rest = r;
    q->cb = cb;
    q->data = data;
    q->method = strdup(method);
    q->path = strdup(path);
    q->json = json != NULL ? strdup(json) : NULL;
    if (q->method == NULL || q->path == NULL || (json != NULL && q->json == NULL))
        goto nomem;
    if (discord_rest_route_key(method, path, q->route, sizeof(q->route), q->major,
                               sizeof(q->major)) < 0) {
        rest__req_free(q);
        return HB_EINVAL;
    }
    if (nfiles > 0) {
        q->files = calloc(nfiles, sizeof(*q->files));
        if (q->files == NULL)
            goto nomem;
        q->nfiles = nfiles;
        for (size_t i = 0; i < nfiles; i++) {
            q->files[i].filename =
                strdup(files[i].filename != NULL ? files[i].filename : "file.bin");
            q->files[i].mime =
                strdup(files[i].mime != NULL ? files[i].mime : "application/octet-stream");
            q->files[i].data = malloc(files[i].len > 0 ? files[i].len : 1);
            if (q->files[i].filename == NULL || q->files[i].mime == NULL ||
                q->files[i].data == NULL)
                goto nomem;
            if (files[i].len > 0)
                memcpy(q->files[i].data, files[i].data, files[i].len);
            q->files[i].len = files[i].len;
        }
    }
    if (strcmp(q->route, "POST /interactions/:id/:token/callback") == 0) {
        /* Not bound by the global limit; never behind another callback. */
        rest__send(r, q);
        if (r->failed != NULL)
            rest__schedule(r, uv_now(r->loop));
        return 0;
    }
    q->bucket = rest__bucket_for(r, q->route, q->major);
    if (q->bucket == NULL)
        goto nomem;
    rest__queue_push(r, q->bucket, q, false);
    rest__pump(r);
    return 0;
nomem:
    rest__req_free(q);
    return HB_ENOMEM;
}

static void rest__free(struct discord_rest *r)
{
    rest__sweep(r, 0, true);
    for (size_t i = 0; i < REST_TABLE_SIZE; i++) {
        struct rest_alias *a = r->aliases[i];
        while (a != NULL) {
            struct rest_alias *next = a->next;
            free(a->route);
            free(a->hash);
            free(a);
            a = next;
        }
    }
    void (*cb)(void *) = r->close_cb;
    void *data = r->close_data;
    free(r->api_base);
    if (r->auth != NULL) {
        memset(r->auth, 0, strlen(r->auth));
        free(r->auth);
    }
    free(r->global_at);
    free(r->invalid_at);
    free(r);
    if (cb != NULL)
        cb(data);
}

static void rest__pool_closed(void *data)
{
    rest__free(data);
}

static void rest__maybe_free(struct discord_rest *r)
{
    if (!r->closing || !r->timer_closed || r->flying != NULL || r->http_closing)
        return;
    if (r->own_http) {
        r->http_closing = true;
        http_client_close(r->http, rest__pool_closed, r);
        return;
    }
    rest__free(r);
}

static void rest__timer_closed(uv_handle_t *h)
{
    struct discord_rest *r = h->data;
    r->timer_closed = true;
    /* Requests cancelled in flight complete through the http client; the
     * last of them (or this) frees the client. */
    while (r->failed != NULL) {
        struct rest_req *q = r->failed;
        r->failed = q->next;
        rest__complete(r, q, HB_ECANCELED, 0, NULL, 0);
    }
    rest__maybe_free(r);
}

void discord_rest_close(struct discord_rest *r, void (*cb)(void *data), void *data)
{
    if (r == NULL || r->closing)
        return;
    r->closing = true;
    r->close_cb = cb;
    r->close_data = data;
    /* Fail what waits: callers may react by queueing more; they get ESTATE. */
    while (r->active != NULL) {
        struct rest_bucket *b = r->active;
        while (b->head != NULL)
            rest__complete(r, rest__queue_pop(r, b), HB_ECANCELED, 0, NULL, 0);
        rest__active_remove(r, b);
    }
    while (r->delayed != NULL) {
        struct rest_req *q = r->delayed;
        r->delayed = q->next;
        rest__complete(r, q, HB_ECANCELED, 0, NULL, 0);
    }
    for (struct rest_req *q = r->flying; q != NULL; q = q->fnext)
        http_request_cancel(q->http);
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, rest__timer_closed);
}

void discord_rest_stats(const struct discord_rest *r, struct discord_rest_stats *out)
{
    *out = r->stats;
}
