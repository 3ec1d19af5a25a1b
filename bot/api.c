/* The metered API: its routes, the bearer key checks, OpenAI's error
 * shape, /v1/models and the account endpoints (/api/v1/me, usage,
 * history). Completions and images are in bot/api_generate.c. */
#include "bot/api_internal.h"

#include "core/link.h"

#include "core/catalog.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/ledger.h"
#include "net/server.h"
#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define API_HISTORY_PAGE 50
#define API_IDEMPOTENCY_MAX 64 /* longer keys are hashed */

static const char *const api_headers[] = {"authorization", "idempotency-key", NULL};

/* ---- answers ------------------------------------------------------------- */

void api__json(struct server_request *req, int status, cJSON *body)
{
    size_t len = 0;
    char *text = body != NULL ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL) {
        server_respond(req, 500, "application/json", "{}", 2, NULL);
        return;
    }
    len = strlen(text);
    server_respond(req, status, "application/json", text, len, NULL);
    free(text);
}

void api__error(struct server_request *req, int status, const char *type, const char *code,
                const char *param, int64_t retry_after_s, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddStringToObject(err, "type", type);
    if (param != NULL)
        cJSON_AddStringToObject(err, "param", param);
    else
        cJSON_AddNullToObject(err, "param");
    cJSON_AddStringToObject(err, "code", code);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    char retry[64];
    const char *extra = NULL;
    if (retry_after_s > 0) {
        snprintf(retry, sizeof(retry), "Retry-After: %lld", (long long)retry_after_s);
        extra = retry;
    } else if (status == 401) {
        extra = "WWW-Authenticate: Bearer";
    }
    if (text == NULL) {
        server_respond(req, 500, "application/json", "{}", 2, NULL);
        return;
    }
    server_respond(req, status, "application/json", text, strlen(text), extra);
    free(text);
}

/* ---- keys ------------------------------------------------------------------ */

/* A key another daemon of a shared ledger made is read here at the next
 * heartbeat (a third of the lease). Until then a request with it would be
 * refused; instead the keys are read again at once, and the request runs
 * again when that read is over. Misses start at most one read per
 * API_MISS_EVERY_MS (requests in the meantime join the read under way, or
 * are refused), and at most API_PARKS_MAX requests wait: keys made up by a
 * client cost the store little. */
#define API_PARKS_MAX 64
#define API_MISS_EVERY_MS 100

struct api_park {
    struct api_park *next;
    struct api *a;
    struct server_request *req;
    server_handler_fn fn;
    int64_t rpm; /* api__rate_park's: the key's limit, for the refusal */
    bool gone;   /* the client left while it waited */
};

static void api__park_gone(void *data)
{
    ((struct api_park *)data)->gone = true;
}

static void api__park_unlink(struct api *a, struct api_park *p)
{
    for (struct api_park **pp = &a->parks; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            a->nparks--;
            return;
        }
    }
}

static void api__unknown(struct server_request *req)
{
    /* Never the key itself, nor a part of it. */
    api__error(req, 401, "invalid_request_error", "invalid_api_key", NULL, 0,
               "Incorrect API key provided.");
}

static void api__park_ready(void *data)
{
    struct api_park *p = data;
    struct api *a = p->a;
    api__park_unlink(a, p);
    server_request_on_gone(p->req, NULL, NULL);
    a->retrying = p->req;
    a->caller_gone = p->gone ? p->req : NULL;
    p->fn(p->req, a);
    a->retrying = NULL;
    a->caller_gone = NULL;
    free(p);
}

void api__withdraw_if_gone(struct api *a, struct server_request *req, const void *c)
{
    if (a->caller_gone == req)
        generate_cancel(a->core->generate, c);
}

/* Park req to run again once the keys were read again. True when parked. */
static bool api__park(struct api *a, struct server_request *req, server_handler_fn self,
                      const char *token)
{
    if (a->core->cluster == NULL || self == NULL || req == a->retrying ||
        a->nparks >= API_PARKS_MAX || strlen(token) != APIKEY_LEN ||
        strncmp(token, APIKEY_PREFIX, strlen(APIKEY_PREFIX)) != 0)
        return false;
    int64_t now = core_now_ms(a->core);
    if (a->nparks == 0 && now >= a->miss_at && now - a->miss_at < API_MISS_EVERY_MS)
        return false;
    struct api_park *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return false;
    *p = (struct api_park){.a = a, .req = req, .fn = self};
    if (apikeys_refresh_wait(a->core, api__park_ready, p) < 0) {
        free(p);
        return false;
    }
    if (a->nparks == 0)
        a->miss_at = now;
    p->next = a->parks;
    a->parks = p;
    a->nparks++;
    server_request_on_gone(req, api__park_gone, p);
    return true;
}

static void api__rate_refused(struct server_request *req, int64_t rpm, int64_t retry_after_ms)
{
    api__error(req, 429, "requests", "rate_limit_exceeded", NULL, (retry_after_ms + 999) / 1000,
               "Rate limit reached for this key: %lld requests per minute.", (long long)rpm);
}

/* A request parked (api__rate_park) for its key's shared per-minute count. */
static void api__rate_counted(int rc, int64_t retry_after_ms, void *data)
{
    struct api_park *p = data;
    struct api *a = p->a;
    server_request_on_gone(p->req, NULL, NULL);
    if (rc == HB_ELIMIT) {
        api__rate_refused(p->req, p->rpm, retry_after_ms);
    } else {
        /* Counted (or the store failed: this daemon's own count judges). */
        if (rc < 0)
            log_warn("api.rate_not_counted", "error=%s", hb_strerror(rc));
        a->rate_counted = p->req;
        a->rate_shared = rc == 0;
        a->caller_gone = p->gone ? p->req : NULL;
        p->fn(p->req, a);
        a->rate_counted = NULL;
        a->rate_shared = false;
        a->caller_gone = NULL;
    }
    free(p);
}

/* Count req against its key's per-minute limit in the store (a shared
 * ledger only), running self(req) again once counted. True when parked. */
static bool api__rate_park(struct api *a, struct server_request *req, server_handler_fn self,
                           const struct apikey *k, int64_t now)
{
    if (a->core->cluster == NULL || self == NULL)
        return false;
    struct api_park *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return false;
    *p = (struct api_park){.a = a, .req = req, .fn = self, .rpm = k->rec.rpm};
    if (apikey_rate_take_shared(a->core, k, now, api__rate_counted, p) < 0) {
        free(p);
        return false;
    }
    server_request_on_gone(req, api__park_gone, p);
    return true;
}

struct apikey *api__authorize(struct api *a, struct server_request *req, bool spending,
                              server_handler_fn self)
{
    const char *auth = server_request_header(req, "authorization");
    const char *token = NULL;
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        token = auth + 7;
        while (*token == ' ')
            token++;
    }
    if (token == NULL || *token == '\0') {
        api__error(req, 401, "invalid_request_error", "missing_api_key", NULL, 0,
                   "No API key given: send it as Authorization: Bearer <key>. Make one with "
                   "/apikey create.");
        return NULL;
    }
    int64_t now = core_now_ms(a->core);
    struct apikey *k = NULL;
    switch (apikey_authenticate(a->core, token, now, &k)) {
    case APIKEY_OK:
        break;
    case APIKEY_NOTREADY:
        api__error(req, 503, "server_error", "starting", NULL, 1,
                   "The API is starting; try again in a moment.");
        return NULL;
    case APIKEY_REVOKED:
        api__error(req, 401, "invalid_request_error", "revoked_api_key", NULL, 0,
                   "This API key was revoked.");
        return NULL;
    case APIKEY_EXPIRED:
        api__error(req, 401, "invalid_request_error", "expired_api_key", NULL, 0,
                   "This API key has expired.");
        return NULL;
    case APIKEY_UNKNOWN:
    default:
        if (!api__park(a, req, self, token))
            api__unknown(req);
        return NULL;
    }
    int64_t wait_ms = 0;
    /* On a shared ledger a key's requests per minute are counted in the
     * store, across every daemon; the request runs again once counted. */
    bool rerun = req == a->rate_counted;
    if (k->rec.rpm > 0 && !rerun && api__rate_park(a, req, self, k, now))
        return NULL;
    if (!(rerun && a->rate_shared) && !apikey_rate_take(k, now, &wait_ms)) {
        api__rate_refused(req, k->rec.rpm, wait_ms);
        return NULL;
    }
    if (spending) {
        bool daily = false;
        if (apikey_room(k, now, &daily) <= 0) {
            if (daily)
                api__error(req, 429, "insufficient_quota", "key_daily_cap", NULL,
                           ((now / API_DAY_MS + 1) * API_DAY_MS - now + 999) / 1000,
                           "This key spent its %lld credits for today.", (long long)k->rec.cap_day);
            else
                api__error(req, 402, "insufficient_quota", "key_spend_cap", NULL, 0,
                           "This key spent its %lld credits in total.",
                           (long long)k->rec.cap_total);
            return NULL;
        }
    }
    return k;
}

/* "<platform>:<id>" into its parts; false when it is not one. */
static bool api__account_split(const char *account, enum command_platform *p, char *id, size_t cap)
{
    static const enum command_platform all[] = {COMMAND_PLATFORM_CONSOLE, COMMAND_PLATFORM_DISCORD,
                                                COMMAND_PLATFORM_TELEGRAM};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        const char *name = command_platform_name(all[i]);
        size_t n = strlen(name);
        if (strncmp(account, name, n) == 0 && account[n] == ':' && account[n + 1] != '\0' &&
            strlen(account + n + 1) < cap) {
            *p = all[i];
            snprintf(id, cap, "%s", account + n + 1);
            return true;
        }
    }
    return false;
}

const char *api__wallet(const struct api *a, const struct apikey *k)
{
    const char *linked = link_wallet(a->core, k->rec.owner);
    return linked != NULL ? linked : k->rec.owner;
}

int api__invocation(struct api *a, const struct apikey *k, struct server_request *req,
                    struct invocation *inv)
{
    memset(inv, 0, sizeof(*inv));
    const char *owner = k->rec.owner;
    if (strncmp(owner, "pool:", 5) == 0) {
        /* A group's key runs as its creator in the group, paid by the pool. */
        enum command_platform creator_p;
        if (!api__account_split(owner + 5, &inv->platform, inv->scope_id, sizeof(inv->scope_id)) ||
            !api__account_split(k->rec.creator, &creator_p, inv->user_id, sizeof(inv->user_id)) ||
            creator_p != inv->platform)
            return HB_EINVAL;
        inv->scope = COMMAND_SCOPE_GROUP;
        snprintf(inv->channel_id, sizeof(inv->channel_id), "api");
    } else {
        if (!api__account_split(owner, &inv->platform, inv->user_id, sizeof(inv->user_id)))
            return HB_EINVAL;
        inv->scope = COMMAND_SCOPE_DM;
        snprintf(inv->channel_id, sizeof(inv->channel_id), "api:%.88s", inv->user_id);
    }
    snprintf(inv->user_name, sizeof(inv->user_name), "%s", k->rec.name);
    snprintf(inv->name, sizeof(inv->name), "api");
    const char *idem = req != NULL ? server_request_header(req, "idempotency-key") : NULL;
    if (idem != NULL && *idem != '\0') {
        /* The same key, Idempotency-Key and body name the same job, so the
         * same ledger transfers: a retry is not charged again. The body is
         * part of it: the same Idempotency-Key on another request (another
         * prompt) is another job, charged as any. */
        bool plain = strlen(idem) <= API_IDEMPOTENCY_MAX;
        for (const char *c = idem; plain && *c != '\0'; c++)
            plain = isalnum((unsigned char)*c) || *c == '-' || *c == '_' || *c == '.';
        char part[2 * SHA256_DIGEST_LENGTH + 1];
        if (plain) {
            snprintf(part, sizeof(part), "%s", idem);
        } else {
            unsigned char md[SHA256_DIGEST_LENGTH];
            SHA256((const unsigned char *)idem, strlen(idem), md);
            hex_encode(md, 16, part);
        }
        size_t blen = 0;
        const char *body = server_request_body(req, &blen);
        unsigned char bmd[SHA256_DIGEST_LENGTH];
        char bhex[17];
        SHA256((const unsigned char *)(body != NULL ? body : ""), body != NULL ? blen : 0, bmd);
        hex_encode(bmd, 8, bhex);
        snprintf(inv->event_id, sizeof(inv->event_id), "api:%s:i:%s:%s", k->rec.id, part, bhex);
    } else {
        unsigned char rnd[8];
        char hex[17];
        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
            return HB_EIO;
        hex_encode(rnd, sizeof(rnd), hex);
        snprintf(inv->event_id, sizeof(inv->event_id), "api:%s:%llu.%s", k->rec.id,
                 (unsigned long long)++a->next_id, hex);
    }
    return 0;
}

cJSON *api__body(struct api *a, struct server_request *req)
{
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    if ((int64_t)len > a->max_body) {
        api__error(req, 413, "invalid_request_error", "request_too_large", NULL, 0,
                   "The request body is %zu bytes; at most %lld are accepted.", len,
                   (long long)a->max_body);
        return NULL;
    }
    cJSON *root = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    if (root == NULL || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        api__error(req, 400, "invalid_request_error", "invalid_json", NULL, 0,
                   "The request body must be a JSON object.");
        return NULL;
    }
    return root;
}

/* ---- /v1/models ------------------------------------------------------------ */

static void api__models(struct server_request *req, void *data)
{
    struct api *a = data;
    struct apikey *k = api__authorize(a, req, false, api__models);
    if (k == NULL)
        return;
    struct invocation inv;
    struct catalog *cat = a->core->generate != NULL ? generate_catalog(a->core->generate) : NULL;
    if (cat == NULL || api__invocation(a, k, NULL, &inv) < 0) {
        api__error(req, 503, "server_error", "unavailable", NULL, 1, "No models are available.");
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *list = cJSON_AddArrayToObject(root, "data");
    for (size_t i = 0; i < catalog_model_count(cat); i++) {
        const struct catalog_model *m = catalog_model_at(cat, i);
        if (!m->enabled || !catalog_model_allowed(m, &inv) || !apikey_model_allowed(k, m->name))
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", m->name);
        cJSON_AddStringToObject(o, "object", "model");
        cJSON_AddNumberToObject(o, "created", 0);
        cJSON_AddStringToObject(o, "owned_by", m->provider->name);
        cJSON_AddStringToObject(o, "modality", m->modality == PROVIDER_TEXT ? "text" : "image");
        cJSON_AddItemToArray(list, o);
    }
    api__json(req, 200, root);
}

/* ---- account endpoints ------------------------------------------------------- */

struct api_read {
    struct api *a;
    struct server_request *req;
    char account[STORE_ID_SIZE];
    char key_id[STORE_APIKEY_ID_SIZE];
    char period[16];
    int64_t from, to;
};

static void api__ledger_failed(struct api_read *r, int rc)
{
    if (rc == HB_ENOTFOUND)
        return;
    api__error(r->req, 503, "server_error", "storage", NULL, 1,
               "The ledger could not be read (%s).", hb_strerror(rc));
}

static void api__me_done(int rc, const struct ledger_result *res, void *data)
{
    struct api_read *r = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        api__ledger_failed(r, rc);
        free(r);
        return;
    }
    struct ledger_balance none = {0};
    const struct ledger_balance *b = rc == 0 ? &res->balance : &none;
    const struct apikey *k = NULL;
    const struct apikey *list[APIKEYS_PER_OWNER];
    size_t n = apikeys_list(r->a->core, r->account, list, APIKEYS_PER_OWNER);
    for (size_t i = 0; i < n && i < APIKEYS_PER_OWNER; i++) {
        if (strcmp(list[i]->rec.id, r->key_id) == 0)
            k = list[i];
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "account");
    cJSON_AddStringToObject(root, "account", r->account);
    cJSON_AddNumberToObject(root, "available", (double)b->available);
    cJSON_AddNumberToObject(root, "reserved", (double)b->pending_debits);
    cJSON_AddNumberToObject(root, "posted", (double)b->posted);
    if (k != NULL) {
        cJSON *ko = cJSON_AddObjectToObject(root, "key");
        cJSON_AddStringToObject(ko, "name", k->rec.name);
        cJSON_AddStringToObject(ko, "prefix", k->rec.prefix);
        cJSON_AddNumberToObject(ko, "spend", (double)k->rec.spend);
        cJSON_AddNumberToObject(ko, "cap_day", (double)k->rec.cap_day);
        cJSON_AddNumberToObject(ko, "cap_total", (double)k->rec.cap_total);
        cJSON_AddNumberToObject(ko, "rpm", (double)k->rec.rpm);
        cJSON_AddNumberToObject(ko, "expires_at", (double)(k->rec.expires_at / 1000));
    }
    api__json(r->req, 200, root);
    free(r);
}

static struct api_read *api__read_new(struct api *a, struct server_request *req,
                                      server_handler_fn self)
{
    struct apikey *k = api__authorize(a, req, false, self);
    if (k == NULL)
        return NULL;
    struct api_read *r = calloc(1, sizeof(*r));
    if (r == NULL || a->core->ledger == NULL) {
        free(r);
        api__error(req, 503, "server_error", "unavailable", NULL, 1, "The ledger is not running.");
        return NULL;
    }
    r->a = a;
    r->req = req;
    snprintf(r->account, sizeof(r->account), "%s", api__wallet(a, k));
    snprintf(r->key_id, sizeof(r->key_id), "%s", k->rec.id);
    return r;
}

static void api__me(struct server_request *req, void *data)
{
    struct api_read *r = api__read_new(data, req, api__me);
    if (r == NULL)
        return;
    int rc = ledger_balance_get(r->a->core->ledger, r->account, api__me_done, r);
    if (rc < 0)
        api__me_done(rc, NULL, r);
}

/* A query parameter's value into buf ("" when absent). */
static void api__query(const struct server_request *req, const char *name, char *buf, size_t cap)
{
    buf[0] = '\0';
    const char *q = server_request_query(req);
    size_t n = strlen(name);
    while (q != NULL && *q != '\0') {
        const char *end = strchr(q, '&');
        size_t len = end != NULL ? (size_t)(end - q) : strlen(q);
        if (len > n && strncmp(q, name, n) == 0 && q[n] == '=') {
            size_t v = len - n - 1;
            if (v >= cap)
                v = cap - 1;
            memcpy(buf, q + n + 1, v);
            buf[v] = '\0';
            return;
        }
        q = end != NULL ? end + 1 : NULL;
    }
}

static void api__usage_done(int rc, const struct ledger_result *res, void *data)
{
    struct api_read *r = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        api__ledger_failed(r, rc);
        free(r);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "usage");
    cJSON_AddStringToObject(root, "account", r->account);
    cJSON_AddStringToObject(root, "period", r->period);
    cJSON_AddNumberToObject(root, "from", (double)(r->from / 1000));
    cJSON_AddNumberToObject(root, "to", (double)(r->to / 1000));
    cJSON *rows = cJSON_AddArrayToObject(root, "data");
    int64_t total = 0, count = 0;
    for (size_t i = 0; rc == 0 && i < res->usage_count; i++) {
        const struct store_usage *u = &res->usage[i];
        cJSON *o = cJSON_CreateObject();
        char day[16];
        time_t t = (time_t)(u->day * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof(day), "%Y-%m-%d", &tm);
        cJSON_AddStringToObject(o, "day", day);
        cJSON_AddStringToObject(o, "model", u->tag);
        cJSON_AddNumberToObject(o, "credits", (double)u->amount);
        cJSON_AddNumberToObject(o, "requests", (double)u->count);
        cJSON_AddItemToArray(rows, o);
        total += u->amount;
        count += u->count;
    }
    cJSON_AddNumberToObject(root, "total_credits", (double)total);
    cJSON_AddNumberToObject(root, "total_requests", (double)count);
    api__json(r->req, 200, root);
    free(r);
}

static void api__usage(struct server_request *req, void *data)
{
    char period[16];
    api__query(req, "period", period, sizeof(period));
    if (period[0] == '\0')
        snprintf(period, sizeof(period), "month");
    int64_t days = strcmp(period, "day") == 0     ? 1
                   : strcmp(period, "week") == 0  ? 7
                   : strcmp(period, "month") == 0 ? 30
                   : strcmp(period, "year") == 0  ? 365
                                                  : 0;
    if (days == 0) {
        api__error(req, 400, "invalid_request_error", "invalid_value", "period", 0,
                   "period is one of day, week, month, year.");
        return;
    }
    struct api_read *r = api__read_new(data, req, api__usage);
    if (r == NULL)
        return;
    snprintf(r->period, sizeof(r->period), "%s", period);
    r->to = core_now_ms(r->a->core) + 1;
    r->from = (r->to / API_DAY_MS - (days - 1)) * API_DAY_MS;
    int rc = ledger_usage_get(r->a->core->ledger, r->account, r->from, r->to, api__usage_done, r);
    if (rc < 0)
        api__usage_done(rc, NULL, r);
}

static void api__history_done(int rc, const struct ledger_result *res, void *data)
{
    struct api_read *r = data;
    if (rc < 0 && rc != HB_ENOTFOUND) {
        api__ledger_failed(r, rc);
        free(r);
        return;
    }
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *rows = cJSON_AddArrayToObject(root, "data");
    size_t n = rc == 0 ? res->history_count : 0;
    uint64_t last = 0;
    for (size_t i = 0; i < n; i++) {
        const struct store_transfer *t = &res->history[i];
        bool out = strcmp(t->debit, r->account) == 0;
        cJSON *o = cJSON_CreateObject();
        char seq[32];
        snprintf(seq, sizeof(seq), "%llu", (unsigned long long)t->seq);
        cJSON_AddStringToObject(o, "id", seq);
        cJSON_AddNumberToObject(o, "created", (double)(t->ts / 1000));
        cJSON_AddStringToObject(o, "kind", ledger_kind_name(t->kind));
        cJSON_AddNumberToObject(o, "amount", (double)(out ? -t->amount : t->amount));
        cJSON_AddBoolToObject(o, "pending", (t->flags & LEDGER_TRANSFER_PENDING) != 0);
        cJSON_AddStringToObject(o, "model", t->tag);
        cJSON_AddItemToArray(rows, o);
        last = t->seq;
    }
    bool more = n == API_HISTORY_PAGE && last > 1;
    cJSON_AddBoolToObject(root, "has_more", more);
    if (more) {
        char cursor[32];
        snprintf(cursor, sizeof(cursor), "%llu", (unsigned long long)last);
        cJSON_AddStringToObject(root, "next_cursor", cursor);
    } else {
        cJSON_AddNullToObject(root, "next_cursor");
    }
    api__json(r->req, 200, root);
    free(r);
}

static void api__history(struct server_request *req, void *data)
{
    char cursor[32];
    api__query(req, "cursor", cursor, sizeof(cursor));
    uint64_t before = 0;
    if (cursor[0] != '\0') {
        char *end = NULL;
        unsigned long long v = strtoull(cursor, &end, 10);
        if (end == cursor || *end != '\0' || v == 0) {
            api__error(req, 400, "invalid_request_error", "invalid_value", "cursor", 0,
                       "cursor is the next_cursor of the page before.");
            return;
        }
        before = (uint64_t)v;
    }
    struct api_read *r = api__read_new(data, req, api__history);
    if (r == NULL)
        return;
    int rc = ledger_history_get(r->a->core->ledger, r->account, before, API_HISTORY_PAGE,
                                api__history_done, r);
    if (rc < 0)
        api__history_done(rc, NULL, r);
}

/* ---- life ---------------------------------------------------------------- */

static void api__keys_loaded(int rc, void *data)
{
    (void)data;
    if (rc < 0)
        log_error("api.keys", "error=%s", hb_strerror(rc));
}

/* The server's own refusals of an API path (a body past [server]
 * max_body, a path or method no route takes, a malformed request), in
 * OpenAI's error shape: its clients read nothing else. */
static size_t api__refusal(int status, const char *reason, char *buf, size_t cap, void *data)
{
    (void)data;
    const char *code = status == 413   ? "request_too_large"
                       : status == 404 ? "unknown_url"
                       : status == 405 ? "method_not_allowed"
                                       : "invalid_request";
    const char *message = status == 413   ? "The request body is larger than this server takes."
                          : status == 404 ? "Unknown API path: see /v1/models for what is here."
                          : status == 405 ? "This API path does not take that method."
                                          : NULL;
    char text[128];
    if (message == NULL) {
        /* The server's own short ASCII reason, without its newline. */
        size_t n = strcspn(reason, "\n\"\\");
        snprintf(text, sizeof(text), "%.*s.", (int)(n < 100 ? n : 100), reason);
        message = text;
    }
    int n = snprintf(buf, cap,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                     "\"param\":null,\"code\":\"%s\"}}",
                     message, code);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

struct api *api_new(struct server *srv, struct core *core, int64_t max_body)
{
    struct api *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->core = core;
    a->max_body = max_body > 0 ? max_body : 65536;
    if (core->apikeys == NULL) {
        core->apikeys = apikeys_new();
        a->own_keys = core->apikeys != NULL;
        if (core->apikeys == NULL) {
            free(a);
            return NULL;
        }
    }
    static const struct {
        const char *method, *path;
        server_handler_fn fn;
    } routes[] = {
        {"GET", "/v1/models", api__models},
        {"POST", "/v1/chat/completions", api__chat_completions},
        {"POST", "/v1/images/generations", api__images},
        {"GET", "/api/v1/me", api__me},
        {"GET", "/api/v1/usage", api__usage},
        {"GET", "/api/v1/history", api__history},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (server_route_add(srv, routes[i].method, routes[i].path, api_headers, routes[i].fn, a) <
            0) {
            api_free(a);
            return NULL;
        }
    }
    static const char *const api_prefixes[] = {"/v1/", "/api/v1/", NULL};
    if (server_refusals_json(srv, api_prefixes, api__refusal, NULL) < 0) {
        api_free(a);
        return NULL;
    }
    if (apikeys_ready(core, api__keys_loaded, NULL) < 0)
        log_warn("api.keys", "problem=API keys cannot be read; every request is refused");
    log_info("api.started", "routes=/v1/models,/v1/chat/completions,/v1/images/generations,"
                            "/api/v1/me,/api/v1/usage,/api/v1/history");
    return a;
}

void api_free(struct api *a)
{
    if (a == NULL)
        return;
    /* Requests still waiting for the keys (the store stopped first): the
     * server is gone, so their answers are dropped; they are freed. */
    while (a->parks != NULL) {
        struct api_park *p = a->parks;
        a->parks = p->next;
        apikeys_refresh_forget(a->core, p);
        server_request_on_gone(p->req, NULL, NULL);
        api__unknown(p->req);
        free(p);
    }
    if (a->own_keys) {
        apikeys_free(a->core->apikeys);
        a->core->apikeys = NULL;
    }
    free(a);
}
