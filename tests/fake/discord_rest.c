/* The fake Discord REST API. See tests/fake/discord_rest.h. */
#include "tests/fake/discord_rest.h"

#include "tests/fake/httpd.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FR_MAX_BUCKETS 4096
#define FR_MAX_RULES 32

struct fr_bucket {
    char key[192];
    unsigned remaining;
    uint64_t reset_at; /* monotonic ms */
    uint64_t held_until;
};

struct fr_rule {
    char substr[128];
    int kind; /* 1: 429, 2: delay, 3: status */
    double retry_after;
    bool global;
    uint64_t ms;
    int status;
    bool used;
};

struct fr_file {
    char path[128];
    char type[64];
    unsigned char *bytes;
    size_t len;
};

struct fake_rest {
    struct fr_file files[8]; /* attachments served under /attachments/ */
    size_t nfiles;
    struct httpd *srv;
    struct httpd_thread *thread;
    char api_base[96];
    char *gateway_url;
    unsigned shards, max_concurrency, bucket_limit;
    uint64_t bucket_reset_ms;
    void (*on_request)(struct fake_rest *f, const struct fake_rest_request *req, void *data);
    void *data;

    uv_mutex_t lock;
    struct fake_rest_request *reqs;
    size_t nreqs, cap;
    struct fr_bucket *buckets;
    size_t nbuckets;
    struct fr_rule rules[FR_MAX_RULES];
    size_t nrules;
    uint64_t global_until;
    unsigned violations;
    unsigned long long next_id;
};

static uint64_t fr_now(void)
{
    return uv_hrtime() / 1000000u;
}

/* Bucket: method and the first three segments after /api/v10. */
static void fr_bucket_key(const char *method, const char *target, char *key, size_t cap)
{
    const char *p = strncmp(target, "/api/v10", 8) == 0 ? target + 8 : target;
    size_t n = 0;
    int slashes = 0;
    while (p[n] != '\0' && p[n] != '?') {
        if (p[n] == '/' && ++slashes == 4)
            break;
        n++;
    }
    snprintf(key, cap, "%s %.*s", method, (int)n, p);
}

static struct fr_bucket *fr_bucket(struct fake_rest *f, const char *key)
{
    for (size_t i = 0; i < f->nbuckets; i++) {
        if (strcmp(f->buckets[i].key, key) == 0)
            return &f->buckets[i];
    }
    if (f->nbuckets == FR_MAX_BUCKETS)
        return NULL;
    struct fr_bucket *b = &f->buckets[f->nbuckets++];
    memset(b, 0, sizeof(*b));
    snprintf(b->key, sizeof(b->key), "%s", key);
    return b;
}

/* A scripted rule for this target, consumed when one-shot. */
static struct fr_rule *fr_rule(struct fake_rest *f, const char *target, int kind)
{
    for (size_t i = 0; i < f->nrules; i++) {
        struct fr_rule *r = &f->rules[i];
        if (r->kind == kind && !r->used && strstr(target, r->substr) != NULL) {
            if (kind != 2)
                r->used = true;
            return r;
        }
    }
    return NULL;
}

static void fr_send_json(struct httpd_response *res, int status, const char *json)
{
    if (json == NULL)
        httpd_response_send(res, status, NULL, "", 0);
    else
        httpd_response_send(res, status, "application/json", json, strlen(json));
}

static bool fr_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* GET /attachments/...: a file, as Discord's CDN serves one. */
static void fr_attachment(struct fake_rest *f, struct httpd_response *res,
                          const struct httpd_request *req)
{
    struct fake_rest_request rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.method, sizeof(rec.method), "%s", req->method);
    rec.at_ms = fr_now();
    uv_mutex_lock(&f->lock);
    const struct fr_file *file = NULL;
    for (size_t i = 0; i < f->nfiles; i++) {
        if (strcmp(f->files[i].path, req->target) == 0)
            file = &f->files[i];
    }
    rec.status = file != NULL ? 200 : 404;
    rec.target = strdup(req->target);
    rec.json = strdup("");
    if (f->nreqs == f->cap) {
        size_t cap = f->cap == 0 ? 256 : f->cap * 2;
        struct fake_rest_request *grown = realloc(f->reqs, cap * sizeof(*grown));
        if (grown != NULL) {
            f->reqs = grown;
            f->cap = cap;
        }
    }
    if (f->nreqs < f->cap && rec.target != NULL && rec.json != NULL) {
        f->reqs[f->nreqs++] = rec;
    } else {
        free(rec.target);
        free(rec.json);
        rec.target = NULL;
    }
    unsigned char *copy = NULL;
    size_t len = 0;
    char type[64] = "";
    if (file != NULL) {
        copy = malloc(file->len > 0 ? file->len : 1);
        memcpy(copy, file->bytes, file->len);
        len = file->len;
        snprintf(type, sizeof(type), "%s", file->type);
    }
    uv_mutex_unlock(&f->lock);
    if (copy != NULL)
        httpd_response_send(res, 200, type, (const char *)copy, len);
    else
        fr_send_json(res, 404, "{\"message\":\"404: Not Found\",\"code\":0}");
    free(copy);
    if (f->on_request != NULL && rec.target != NULL) {
        struct fake_rest_request view = rec;
        f->on_request(f, &view, f->data);
    }
}

void fake_rest_file_add(struct fake_rest *f, const char *path, const char *content_type,
                        const void *bytes, size_t len)
{
    uv_mutex_lock(&f->lock);
    if (f->nfiles < sizeof(f->files) / sizeof(f->files[0])) {
        struct fr_file *file = &f->files[f->nfiles++];
        snprintf(file->path, sizeof(file->path), "%s", path);
        snprintf(file->type, sizeof(file->type), "%s", content_type);
        file->bytes = malloc(len > 0 ? len : 1);
        memcpy(file->bytes, bytes, len);
        file->len = len;
    }
    uv_mutex_unlock(&f->lock);
}

static void fr_handler(struct httpd_response *res, const struct httpd_request *req, void *data)
{
    struct fake_rest *f = data;
    if (strcmp(req->method, "GET") == 0 && strncmp(req->target, "/attachments/", 13) == 0) {
        fr_attachment(f, res, req);
        return;
    }
    struct fake_rest_request rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.method, sizeof(rec.method), "%s", req->method);
    rec.at_ms = fr_now();
    const char *auth = httpd_request_header(req, "Authorization");
    snprintf(rec.auth, sizeof(rec.auth), "%s", auth != NULL ? auth : "");
    const char *json = req->body != NULL ? req->body : "";
    if (req->nparts > 0) {
        const struct httpd_part *pj = httpd_request_part(req, "payload_json");
        json = pj != NULL ? pj->data : "";
        for (size_t i = 0; i < req->nparts; i++) {
            if (strncmp(req->parts[i].name, "files[", 6) != 0)
                continue;
            if (rec.nfiles == 0) {
                rec.file_len = req->parts[i].len;
                snprintf(rec.file_name, sizeof(rec.file_name), "%s",
                         req->parts[i].filename != NULL ? req->parts[i].filename : "");
                snprintf(rec.file_type, sizeof(rec.file_type), "%s",
                         req->parts[i].content_type != NULL ? req->parts[i].content_type : "");
            }
            rec.nfiles++;
        }
    }
    const char *target = req->target;
    const char *path = strncmp(target, "/api/v10", 8) == 0 ? target + 8 : target;
    bool callback = strncmp(path, "/interactions/", 14) == 0 && fr_ends_with(path, "/callback");

    uv_mutex_lock(&f->lock);
    uint64_t now = rec.at_ms;
    int status = 200;
    char body[1024];
    const char *out = "{}";
    char headers[6][2][64];
    size_t nheaders = 0;
    uint64_t delay = 0;
    struct fr_bucket *b = NULL;

    struct fr_rule *slow = fr_rule(f, target, 2);
    if (slow != NULL)
        delay = slow->ms;
    struct fr_rule *scripted_status = fr_rule(f, target, 3);

    if (now < f->global_until) {
        f->violations++;
        status = 429;
        snprintf(
            body, sizeof(body),
            "{\"message\":\"You are being rate limited.\",\"retry_after\":%.3f,\"global\":true}",
            (double)(f->global_until - now) / 1000.0);
        out = body;
        goto answer;
    }
    if (!callback) {
        char key[192];
        fr_bucket_key(req->method, target, key, sizeof(key));
        b = fr_bucket(f, key);
    }
    if (b != NULL) {
        if (now >= b->reset_at && now >= b->held_until) {
            b->remaining = f->bucket_limit;
            b->reset_at = now + f->bucket_reset_ms;
        }
        if (b->remaining == 0 || now < b->held_until) {
            f->violations++;
            uint64_t until = b->held_until > b->reset_at ? b->held_until : b->reset_at;
            status = 429;
            snprintf(body, sizeof(body),
                     "{\"message\":\"You are being rate "
                     "limited.\",\"retry_after\":%.3f,\"global\":false}",
                     (double)(until - now) / 1000.0);
            out = body;
            goto answer;
        }
    }
    struct fr_rule *limited = fr_rule(f, target, 1);
    if (limited != NULL) {
        status = 429;
        uint64_t ms = (uint64_t)(limited->retry_after * 1000.0 + 0.5);
        if (limited->global)
            f->global_until = now + ms;
        else if (b != NULL)
            b->held_until = now + ms;
        snprintf(body, sizeof(body),
                 "{\"message\":\"You are being rate limited.\",\"retry_after\":%.3f,\"global\":%s}",
                 limited->retry_after, limited->global ? "true" : "false");
        out = body;
        if (limited->global)
            goto answer;
    } else if (scripted_status != NULL) {
        status = scripted_status->status;
        snprintf(body, sizeof(body), "{\"message\":\"scripted\",\"code\":0}");
        out = body;
    } else {
        if (b != NULL)
            b->remaining--;
        unsigned long long id = ++f->next_id + 900000000000000000ull;
        if (strcmp(req->method, "GET") == 0 && strcmp(path, "/gateway/bot") == 0) {
            snprintf(body, sizeof(body),
                     "{\"url\":\"%s\",\"shards\":%u,\"session_start_limit\":{\"total\":1000,"
                     "\"remaining\":999,\"reset_after\":14400000,\"max_concurrency\":%u}}",
                     f->gateway_url != NULL ? f->gateway_url : "ws://127.0.0.1:1", f->shards,
                     f->max_concurrency);
            out = body;
        } else if (strcmp(req->method, "PUT") == 0 && fr_ends_with(path, "/commands")) {
            out = json[0] != '\0' ? json : "[]";
        } else if (callback) {
            status = 204;
            out = NULL;
        } else if (strcmp(req->method, "DELETE") == 0) {
            status = 204;
            out = NULL;
        } else if (strcmp(req->method, "GET") == 0 && strcmp(path, "/users/@me") == 0) {
            /* The bot's own user (haibot init checks a token with it). */
            out = "{\"id\":\"123456789012345678\",\"username\":\"fakebot\",\"bot\":true}";
        } else if (strcmp(req->method, "POST") == 0 && strcmp(path, "/users/@me/channels") == 0) {
            /* Create DM: a DM channel object (type 1). */
            snprintf(body, sizeof(body), "{\"id\":\"%llu\",\"type\":1,\"recipients\":[]}", id);
            out = body;
        } else if (strncmp(path, "/webhooks/", 10) == 0 || strncmp(path, "/channels/", 10) == 0) {
            snprintf(body, sizeof(body), "{\"id\":\"%llu\",\"type\":0}", id);
            out = body;
        } else {
            status = 404;
            out = "{\"message\":\"404: Not Found\",\"code\":0}";
        }
    }
    if (b != NULL) {
        snprintf(headers[nheaders][0], 64, "X-RateLimit-Limit");
        snprintf(headers[nheaders++][1], 64, "%u", f->bucket_limit);
        snprintf(headers[nheaders][0], 64, "X-RateLimit-Remaining");
        snprintf(headers[nheaders++][1], 64, "%u", b->remaining);
        snprintf(headers[nheaders][0], 64, "X-RateLimit-Reset-After");
        snprintf(headers[nheaders++][1], 64, "%.3f",
                 (double)(b->reset_at > now ? b->reset_at - now : 0) / 1000.0);
        snprintf(headers[nheaders][0], 64, "X-RateLimit-Bucket");
        snprintf(headers[nheaders++][1], 64, "fake%08x", (unsigned)(b - f->buckets));
    }
answer:
    rec.status = status;
    rec.target = strdup(target);
    rec.json = strdup(json);
    if (f->nreqs == f->cap) {
        size_t cap = f->cap == 0 ? 256 : f->cap * 2;
        struct fake_rest_request *grown = realloc(f->reqs, cap * sizeof(*grown));
        if (grown != NULL) {
            f->reqs = grown;
            f->cap = cap;
        }
    }
    if (f->nreqs < f->cap && rec.target != NULL && rec.json != NULL) {
        f->reqs[f->nreqs++] = rec;
    } else {
        free(rec.target);
        free(rec.json);
        rec.target = NULL;
        rec.json = NULL;
    }
    if (status == 429 && b != NULL) {
        snprintf(headers[nheaders][0], 64, "X-RateLimit-Scope");
        snprintf(headers[nheaders++][1], 64, "user");
    }
    uv_mutex_unlock(&f->lock);

    for (size_t i = 0; i < nheaders; i++)
        httpd_response_header_add(res, headers[i][0], headers[i][1]);
    if (delay > 0)
        httpd_response_delay(res, delay);
    fr_send_json(res, status, out);
    if (f->on_request != NULL && rec.target != NULL) {
        struct fake_rest_request view = rec;
        f->on_request(f, &view, f->data);
    }
}

static struct fake_rest *fr_alloc(const struct fake_rest_options *opt)
{
    struct fake_rest *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->buckets = calloc(FR_MAX_BUCKETS, sizeof(*f->buckets));
    f->gateway_url = strdup(opt->gateway_url != NULL ? opt->gateway_url : "ws://127.0.0.1:1");
    if (f->buckets == NULL || f->gateway_url == NULL || uv_mutex_init(&f->lock) != 0) {
        free(f->buckets);
        free(f->gateway_url);
        free(f);
        return NULL;
    }
    f->shards = opt->shards != 0 ? opt->shards : 1;
    f->max_concurrency = opt->max_concurrency != 0 ? opt->max_concurrency : 1;
    f->bucket_limit = opt->bucket_limit != 0 ? opt->bucket_limit : 1000;
    f->bucket_reset_ms = opt->bucket_reset_ms != 0 ? opt->bucket_reset_ms : 1000;
    f->on_request = opt->on_request;
    f->data = opt->data;
    return f;
}

static void fr_free(struct fake_rest *f)
{
    for (size_t i = 0; i < f->nreqs; i++) {
        free(f->reqs[i].target);
        free(f->reqs[i].json);
    }
    free(f->reqs);
    for (size_t i = 0; i < f->nfiles; i++)
        free(f->files[i].bytes);
    free(f->buckets);
    free(f->gateway_url);
    uv_mutex_destroy(&f->lock);
    free(f);
}

struct fake_rest *fake_rest_new(uv_loop_t *loop, const struct fake_rest_options *opt)
{
    struct fake_rest *f = fr_alloc(opt);
    if (f == NULL)
        return NULL;
    f->srv = httpd_new(loop, fr_handler, f);
    if (f->srv == NULL) {
        fr_free(f);
        return NULL;
    }
    snprintf(f->api_base, sizeof(f->api_base), "%s/api/v10", httpd_base_url(f->srv));
    return f;
}

struct fake_rest *fake_rest_start_thread(const struct fake_rest_options *opt)
{
    struct fake_rest *f = fr_alloc(opt);
    if (f == NULL)
        return NULL;
    f->thread = httpd_thread_start(fr_handler, f);
    if (f->thread == NULL) {
        fr_free(f);
        return NULL;
    }
    snprintf(f->api_base, sizeof(f->api_base), "%s/api/v10",
             httpd_base_url(httpd_thread_server(f->thread)));
    return f;
}

void fake_rest_close(struct fake_rest *f, void (*cb)(void *data), void *data)
{
    if (f == NULL)
        return;
    if (f->thread != NULL) {
        httpd_thread_stop(f->thread);
        f->thread = NULL;
        if (cb != NULL)
            cb(data);
        return;
    }
    if (f->srv != NULL) {
        struct httpd *srv = f->srv;
        f->srv = NULL;
        httpd_close(srv, cb, data);
    }
}

void fake_rest_free(struct fake_rest *f)
{
    if (f == NULL)
        return;
    if (f->thread != NULL)
        httpd_thread_stop(f->thread);
    fr_free(f);
}

unsigned fake_rest_connections(const struct fake_rest *f)
{
    if (f->thread != NULL)
        return httpd_connections(httpd_thread_server(f->thread));
    return f->srv != NULL ? httpd_connections(f->srv) : 0;
}

const char *fake_rest_api_base(const struct fake_rest *f)
{
    return f->api_base;
}

size_t fake_rest_count(struct fake_rest *f)
{
    uv_mutex_lock(&f->lock);
    size_t n = f->nreqs;
    uv_mutex_unlock(&f->lock);
    return n;
}

struct fake_rest_request *fake_rest_get(struct fake_rest *f, size_t i)
{
    struct fake_rest_request *out = NULL;
    uv_mutex_lock(&f->lock);
    if (i < f->nreqs) {
        out = malloc(sizeof(*out));
        if (out != NULL) {
            *out = f->reqs[i];
            out->target = strdup(f->reqs[i].target);
            out->json = strdup(f->reqs[i].json);
        }
    }
    uv_mutex_unlock(&f->lock);
    return out;
}

void fake_rest_request_free(struct fake_rest_request *r)
{
    if (r == NULL)
        return;
    free(r->target);
    free(r->json);
    free(r);
}

size_t fake_rest_matching(struct fake_rest *f, const char *method, const char *substr)
{
    size_t n = 0;
    uv_mutex_lock(&f->lock);
    for (size_t i = 0; i < f->nreqs; i++) {
        if (method != NULL && strcmp(f->reqs[i].method, method) != 0)
            continue;
        if (substr != NULL && strstr(f->reqs[i].target, substr) == NULL)
            continue;
        n++;
    }
    uv_mutex_unlock(&f->lock);
    return n;
}

unsigned fake_rest_violations(struct fake_rest *f)
{
    uv_mutex_lock(&f->lock);
    unsigned n = f->violations;
    uv_mutex_unlock(&f->lock);
    return n;
}

static void fr_rule_add(struct fake_rest *f, const struct fr_rule *rule)
{
    uv_mutex_lock(&f->lock);
    if (rule->kind == 2) {
        for (size_t i = 0; i < f->nrules; i++) {
            if (f->rules[i].kind == 2 && strcmp(f->rules[i].substr, rule->substr) == 0) {
                f->rules[i].ms = rule->ms;
                f->rules[i].used = rule->ms == 0;
                uv_mutex_unlock(&f->lock);
                return;
            }
        }
    }
    if (f->nrules < FR_MAX_RULES)
        f->rules[f->nrules++] = *rule;
    uv_mutex_unlock(&f->lock);
}

void fake_rest_script_429(struct fake_rest *f, const char *substr, double retry_after, bool global)
{
    struct fr_rule r;
    memset(&r, 0, sizeof(r));
    snprintf(r.substr, sizeof(r.substr), "%s", substr);
    r.kind = 1;
    r.retry_after = retry_after;
    r.global = global;
    fr_rule_add(f, &r);
}

void fake_rest_delay(struct fake_rest *f, const char *substr, uint64_t ms)
{
    struct fr_rule r;
    memset(&r, 0, sizeof(r));
    snprintf(r.substr, sizeof(r.substr), "%s", substr);
    r.kind = 2;
    r.ms = ms;
    fr_rule_add(f, &r);
}

void fake_rest_script_status(struct fake_rest *f, const char *substr, int status)
{
    struct fr_rule r;
    memset(&r, 0, sizeof(r));
    snprintf(r.substr, sizeof(r.substr), "%s", substr);
    r.kind = 3;
    r.status = status;
    fr_rule_add(f, &r);
}
