/* The Telegram adapter's life: Bot API calls on the shared HTTP client,
 * getMe and setMyCommands at start, the getUpdates long poll with its
 * back-off, the persisted offset, and closing. */
#include "adapters/telegram/telegram_internal.h"

#include "net/http_pipe.h"
#include "core/commands.h"
#include "core/core.h"
#include "base/error.h"
#include "base/json.h"
#include "core/ledger.h"
#include "base/log.h"
#include "core/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_STATE_NS "telegram"
#define TG_CALL_TIMEOUT_MS 30000
#define TG_POLL_GRACE_MS 15000 /* the HTTP timeout exceeds the poll's by this */
#define TG_EMPTY_FAST_MS 1000  /* an empty answer sooner than this is backed off */

struct tg_call {
    struct tg *tg;
    struct http_request *req;
    struct tg_call *prev, *next; /* tg->calls */
    tg_done_fn done;
    void *data;
    uint64_t start_ns;
};

/* ---- references and closing ---------------------------------------- */

void tg_ref(struct tg *tg)
{
    tg->refs++;
}

static void tg__maybe_free(struct tg *tg)
{
    if (!tg->closing || tg->refs > 0 || tg->handles_open > 0)
        return;
    void (*cb)(void *) = tg->close_cb;
    void *data = tg->close_data;
    tg_sendq_close(tg);
    free(tg->buckets);
    free(tg->base);
    free(tg->webhook_url);
    free(tg->webhook_secret);
    free(tg);
    if (cb != NULL)
        cb(data);
}

void tg_unref(struct tg *tg)
{
    tg->refs--;
    tg__maybe_free(tg);
}

uint64_t tg_jitter(struct tg *tg, uint64_t ms)
{
    /* xorshift64: jitter need not be strong, only spread out. */
    uint64_t x = tg->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    tg->rng = x;
    return ms / 2 + (ms > 1 ? x % (ms / 2 + 1) : 0);
}

bool tg_is_admin(const struct tg *tg, int64_t user_id)
{
    for (size_t i = 0; i < tg->nadmins; i++) {
        if (tg->admins[i] == user_id)
            return true;
    }
    return false;
}

/* ---- calls ---------------------------------------------------------- */

struct http_request *tg_request_new(struct tg *tg, const char *method)
{
    size_t n = strlen(tg->base) + strlen(method) + 1;
    char *url = malloc(n);
    if (url == NULL)
        return NULL;
    snprintf(url, n, "%s%s", tg->base, method);
    struct http_request *req = http_request_new(tg->http, "POST", url);
    free(url);
    return req;
}

/* A call's answer, from either path: parse it and hand it on. */
static void tg__call_finish(struct tg_call *c, int rc, int status, const char *body, size_t len)
{
    struct tg *tg = c->tg;
    struct tg_result res = {.rc = rc, .description = ""};
    cJSON *root = NULL;
    res.elapsed_ms = (double)(uv_hrtime() - c->start_ns) / 1e6;
    if (rc == 0) {
        res.status = status;
        root = cJSON_ParseWithLength(body, len);
        if (cJSON_IsObject(root)) {
            res.ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "ok"));
            res.result = cJSON_GetObjectItemCaseSensitive(root, "result");
            const char *d = tg_json_str(root, "description");
            res.description = d != NULL ? d : "";
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "parameters");
            res.retry_after = tg_json_int(p, "retry_after", 0);
            if (res.retry_after < 0 || res.retry_after > 86400) {
                log_warn("telegram.number_refused", "field=retry_after problem=out of range");
                res.retry_after = 0; /* the usual one-second wait */
            }
            res.migrate_to = tg_json_int(p, "migrate_to_chat_id", 0);
        } else if (res.status == 200) {
            res.rc = HB_EPROTO; /* a 200 without a JSON object is not an answer */
        }
    }
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        tg->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (tg->poll == c)
        tg->poll = NULL;
    if (c->done != NULL)
        c->done(tg, c->data, &res);
    cJSON_Delete(root);
    free(c);
    tg_unref(tg);
}

static void tg__call_done(struct http_request *req, int rc, void *data)
{
    size_t len = 0;
    const char *body = rc == 0 ? http_request_body(req, &len) : "";
    tg__call_finish(data, rc, rc == 0 ? http_request_status(req) : 0, body, len);
}

static void tg__pipe_done(int rc, int status, const char *body, size_t len, void *data)
{
    tg__call_finish(data, rc, status, body, len);
}

static struct tg_call *tg__call_new(struct tg *tg, tg_done_fn done, void *data)
{
    struct tg_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->tg = tg;
    c->done = done;
    c->data = data;
    c->start_ns = uv_hrtime();
    return c;
}

static void tg__call_link(struct tg *tg, struct tg_call *c)
{
    c->next = tg->calls;
    if (tg->calls != NULL)
        tg->calls->prev = c;
    tg->calls = c;
    tg_ref(tg);
}

int tg_request_start(struct tg *tg, struct http_request *req, tg_done_fn done, void *data,
                     struct tg_call **out)
{
    if (tg->closing) {
        http_request_free(req);
        return HB_ECANCELED;
    }
    struct tg_call *c = tg__call_new(tg, done, data);
    if (c == NULL) {
        http_request_free(req);
        return HB_ENOMEM;
    }
    c->req = req;
    int rc = http_request_start(req, tg__call_done, c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    tg__call_link(tg, c);
    if (out != NULL)
        *out = c;
    return 0;
}

/* A JSON call through the pipe: written with the others of this turn. */
static int tg__call_piped(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done,
                          void *data)
{
    if (tg->closing)
        return HB_ECANCELED;
    char path[1024]; /* "/<base path>/bot<token>/<method>" */
    int n = snprintf(path, sizeof(path), "%s%s", tg->pipe_path, method);
    if (n < 0 || (size_t)n >= sizeof(path))
        return HB_EINVAL;
    size_t len = 0;
    char *text = json_print(body, &len);
    struct tg_call *c = text != NULL ? tg__call_new(tg, done, data) : NULL;
    if (c == NULL) {
        free(text);
        return HB_ENOMEM;
    }
    int rc = http_pipe_post(tg->pipe, path, "application/json", text, len, tg__pipe_done, c);
    free(text);
    if (rc < 0) {
        free(c);
        return rc;
    }
    tg__call_link(tg, c);
    return 0;
}

int tg_call_json(struct tg *tg, const char *method, const cJSON *body, tg_done_fn done, void *data)
{
    if (tg->pipe != NULL && strcmp(method, "getUpdates") != 0)
        return tg__call_piped(tg, method, body, done, data);
    struct http_request *req = tg_request_new(tg, method);
    if (req == NULL)
        return HB_ENOMEM;
    int rc = http_request_json_set(req, body);
    if (rc < 0) {
        http_request_free(req);
        return rc;
    }
    http_request_timeout_set(req, TG_CALL_TIMEOUT_MS, 0);
    return tg_request_start(tg, req, done, data, NULL);
}

/* ---- the poll ------------------------------------------------------- */

static void tg__poll(struct tg *tg);
static void tg__start_identity(struct tg *tg);

static void tg__poll_timer(uv_timer_t *t)
{
    struct tg *tg = t->data;
    if (tg->bot_id == 0)
        tg__start_identity(tg);
    else
        tg__poll(tg);
}

/* Wait before the next attempt: exponential from backoff_min to
 * backoff_max with jitter, or exactly `ms` when given. */
static void tg__poll_later(struct tg *tg, uint64_t ms)
{
    if (!tg->running || tg->closing)
        return;
    if (ms == 0) {
        unsigned shift = tg->failures < 16 ? tg->failures : 16;
        uint64_t d = tg->backoff_min_ms << shift;
        if (d > tg->backoff_max_ms || d < tg->backoff_min_ms)
            d = tg->backoff_max_ms;
        ms = tg_jitter(tg, d);
        tg->failures++;
    }
    uv_timer_start(&tg->poll_timer, tg__poll_timer, ms, 0);
}

/* The adapter cannot go on (a refused token): say so and tell the host. */
static void tg__fatal(struct tg *tg)
{
    if (!tg->running)
        return;
    tg->running = false;
    uv_timer_stop(&tg->poll_timer);
    if (tg->host.ended != NULL)
        tg->host.ended(tg->host.data, &tg->adapter);
}

/* Common answers to a poll or getMe that failed. Returns true when handled. */
static bool tg__poll_failed(struct tg *tg, const struct tg_result *res, const char *method)
{
    if (res->rc == HB_ECANCELED)
        return true;
    if (res->rc != 0) {
        log_warn("telegram.poll_error", "method=%s error=%s retry=backoff", method,
                 hb_strerror(res->rc));
        tg__poll_later(tg, 0);
        return true;
    }
    if (res->status == 401 || res->status == 404) {
        /* Telegram answers 404 for a token of the wrong shape, 401 for a
         * revoked one: neither gets better by asking again. */
        log_error("telegram.unauthorized",
                  "status=%d method=%s action=stopped hint=the bot token was refused; check "
                  "[telegram] token",
                  res->status, method);
        tg__fatal(tg);
        return true;
    }
    if (res->status == 409) {
        log_error("telegram.conflict",
                  "status=409 description=%s hint=a webhook is set for this bot, or "
                  "another process polls with the same token retry=backoff",
                  res->description);
        tg->failures = tg->failures < 6 ? 6 : tg->failures;
        tg__poll_later(tg, 0);
        return true;
    }
    if (res->status == 429) {
        int64_t ra = res->retry_after > 0 ? res->retry_after : 1;
        log_warn("telegram.rate_limited", "method=%s retry_after_s=%" PRId64, method, ra);
        tg__poll_later(tg, (uint64_t)ra * tg->retry_unit_ms);
        return true;
    }
    if (res->status != 200 || !res->ok) {
        log_warn("telegram.poll_error", "method=%s status=%d description=%s retry=backoff",
                 method, res->status, res->description);
        tg__poll_later(tg, 0);
        return true;
    }
    return false;
}

static void tg__offset_stored(int rc, const char *value, void *data)
{
    struct tg *tg = data;
    (void)value;
    tg->persisting = false;
    if (rc < 0)
        log_warn("telegram.offset_not_stored", "error=%s", hb_strerror(rc));
    bool again = tg->poll_after_persist;
    tg->poll_after_persist = false;
    if (tg->offset > tg->persisted && !tg->closing) {
        tg_persist_offset(tg);
        if (tg->persisting) {
            tg->poll_after_persist = again;
            again = false;
        }
    }
    if (again)
        tg__poll(tg);
    tg_unref(tg);
}

/* Write the offset after the updates before it went to the core. The next
 * poll (which confirms them to Telegram) waits for the write, so a crash
 * in between repeats nothing that was already confirmed. */
void tg_persist_offset(struct tg *tg)
{
    if (tg->persisting || tg->offset <= tg->persisted)
        return;
    if (tg->core == NULL || tg->core->ledger == NULL) {
        tg->persisted = tg->offset; /* no store: nothing to persist in */
        return;
    }
    char text[32];
    snprintf(text, sizeof(text), "%" PRId64, tg->offset);
    int64_t writing = tg->offset;
    int rc = state_put(ledger_store(tg->core->ledger), TG_STATE_NS, "offset", text,
                       tg__offset_stored, tg);
    if (rc < 0) {
        log_warn("telegram.offset_not_stored", "error=%s", hb_strerror(rc));
        return;
    }
    tg->persisted = writing;
    tg->persisting = true;
    tg_ref(tg);
}

static void tg__poll_done(struct tg *tg, void *data, const struct tg_result *res)
{
    (void)data;
    if (!tg->running || tg->closing)
        return;
    if (tg__poll_failed(tg, res, "getUpdates"))
        return;
    if (!cJSON_IsArray(res->result)) {
        log_warn("telegram.poll_error", "problem=result is not an array retry=backoff");
        tg__poll_later(tg, 0);
        return;
    }
    int n = cJSON_GetArraySize(res->result);
    const cJSON *u;
    cJSON_ArrayForEach(u, res->result)
    {
        if (!tg->running)
            break;
        tg_update_handle(tg, u);
    }
    if (!tg->running)
        return;
    if (n == 0 && res->elapsed_ms < TG_EMPTY_FAST_MS && tg->poll_timeout_s > 0) {
        /* An empty answer that did not wait: the server does not hold long
         * polls (or a proxy cuts them). Asking again at once would spin. */
        log_debug("telegram.poll_empty_fast", "elapsed_ms=%.0f", res->elapsed_ms);
        tg__poll_later(tg, 0);
        return;
    }
    tg->failures = 0;
    if (tg->offset > tg->persisted || tg->persisting) {
        tg->poll_after_persist = true;
        tg_persist_offset(tg);
        if (tg->persisting)
            return;
        tg->poll_after_persist = false;
    }
    tg__poll(tg);
}

static void tg__poll(struct tg *tg)
{
    if (!tg->running || tg->closing || tg->poll != NULL || tg->webhook)
        return;
    struct http_request *req = tg_request_new(tg, "getUpdates");
    cJSON *body = cJSON_CreateObject();
    cJSON *allowed = cJSON_AddArrayToObject(body, "allowed_updates");
    cJSON_AddItemToArray(allowed, cJSON_CreateString("message"));
    cJSON_AddItemToArray(allowed, cJSON_CreateString("callback_query"));
    cJSON_AddItemToArray(allowed, cJSON_CreateString("pre_checkout_query"));
    cJSON_AddNumberToObject(body, "offset", (double)tg->offset);
    cJSON_AddNumberToObject(body, "limit", tg->poll_limit);
    cJSON_AddNumberToObject(body, "timeout", (double)tg->poll_timeout_s);
    int rc = req == NULL || allowed == NULL ? HB_ENOMEM : http_request_json_set(req, body);
    cJSON_Delete(body);
    if (rc < 0) {
        if (req != NULL)
            http_request_free(req);
        tg__poll_later(tg, 0);
        return;
    }
    http_request_timeout_set(req, (uint64_t)tg->poll_timeout_s * 1000 + TG_POLL_GRACE_MS, 0);
    rc = tg_request_start(tg, req, tg__poll_done, NULL, &tg->poll);
    if (rc < 0) {
        log_warn("telegram.poll_error", "error=%s", hb_strerror(rc));
        tg__poll_later(tg, 0);
    }
}

/* ---- start: getMe, the offset, the command list ---------------------- */

static void tg__webhook_set_done(struct tg *tg, void *data, const struct tg_result *res)
{
    (void)data;
    if (res->rc == 0 && res->status == 200 && res->ok)
        log_info("telegram.webhook_set", "bot=%s", tg->bot_username);
    else if (res->rc != HB_ECANCELED)
        log_error("telegram.webhook_not_set", "status=%d description=%s error=%s hint=%s",
                  res->status, res->description, hb_strerror(res->rc),
                  "no updates arrive until setWebhook succeeds; restart or set it by hand");
}

/* Webhook mode: updates come in through telegram_update_feed. With a URL
 * configured, point Telegram at it (which also ends any getUpdates use);
 * otherwise the operator has set the webhook. */
static void tg__webhook_set(struct tg *tg)
{
    if (tg->webhook_url == NULL) {
        log_info("telegram.webhook", "bot=%s offset=%" PRId64 " note=%s", tg->bot_username,
                 tg->offset, "setWebhook is the operator's (no webhook_url configured)");
        return;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *allowed = body != NULL ? cJSON_AddArrayToObject(body, "allowed_updates") : NULL;
    int rc = HB_ENOMEM;
    if (allowed != NULL) {
        cJSON_AddStringToObject(body, "url", tg->webhook_url);
        if (tg->webhook_secret != NULL)
            cJSON_AddStringToObject(body, "secret_token", tg->webhook_secret);
        cJSON_AddItemToArray(allowed, cJSON_CreateString("message"));
        cJSON_AddItemToArray(allowed, cJSON_CreateString("callback_query"));
        cJSON_AddItemToArray(allowed, cJSON_CreateString("pre_checkout_query"));
        rc = tg_call_json(tg, "setWebhook", body, tg__webhook_set_done, NULL);
    }
    cJSON_Delete(body);
    if (rc < 0)
        log_error("telegram.webhook_not_set", "error=%s", hb_strerror(rc));
}

static void tg__offset_loaded(int rc, const char *value, void *data)
{
    struct tg *tg = data;
    if (rc == 0 && value != NULL) {
        int64_t v = strtoll(value, NULL, 10);
        if (v > tg->offset) {
            tg->offset = v;
            tg->persisted = v;
        }
    } else if (rc != HB_ENOTFOUND) {
        log_warn("telegram.offset_not_loaded", "error=%s", hb_strerror(rc));
    }
    if (tg->running && !tg->closing && tg->webhook) {
        tg__webhook_set(tg);
    } else if (tg->running && !tg->closing) {
        log_info("telegram.polling", "bot=%s offset=%" PRId64 " timeout_s=%" PRId64,
                 tg->bot_username, tg->offset, tg->poll_timeout_s);
        tg__poll(tg);
    }
    tg_unref(tg);
}

/* The command list for setMyCommands: the table's top-level names for
 * members (admin commands are not advertised), plus /deposit when Stars
 * packages are offered and the table has no deposit of its own. */
static cJSON *tg__commands_json(const struct tg *tg)
{
    size_t n;
    const struct command_spec *table = commands_table(&n);
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "commands");
    bool have_deposit = false;
    for (size_t i = 0; i < n && list != NULL; i++) {
        if (table[i].access != COMMAND_ACCESS_MEMBER)
            continue;
        char name[33];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(table[i].name, " "), table[i].name);
        bool dup = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, list)
        {
            if (strcmp(tg_json_str(c, "command"), name) == 0)
                dup = true;
        }
        if (dup)
            continue;
        if (strcmp(name, "deposit") == 0)
            have_deposit = true;
        cJSON *c2 = cJSON_CreateObject();
        cJSON_AddStringToObject(c2, "command", name);
        cJSON_AddStringToObject(c2, "description", table[i].description);
        cJSON_AddItemToArray(list, c2);
    }
    if (!have_deposit && tg->npackages > 0 && list != NULL) {
        cJSON *c2 = cJSON_CreateObject();
        cJSON_AddStringToObject(c2, "command", "deposit");
        cJSON_AddStringToObject(c2, "description", "Buy credits with Telegram Stars");
        cJSON_AddItemToArray(list, c2);
    }
    return root;
}

static uint64_t tg__fnv(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct tg_cmdsync {
    struct tg *tg;
    char *json;
    char hash[24];
};

static void tg__cmdsync_free(struct tg_cmdsync *cs)
{
    struct tg *tg = cs->tg;
    free(cs->json);
    free(cs);
    tg_unref(tg);
}

static void tg__commands_stored(int rc, const char *value, void *data)
{
    (void)value;
    if (rc < 0)
        log_warn("telegram.commands_hash_not_stored", "error=%s", hb_strerror(rc));
    tg__cmdsync_free(data);
}

static void tg__commands_set(struct tg *tg, void *data, const struct tg_result *res)
{
    struct tg_cmdsync *cs = data;
    if (res->rc == 0 && res->status == 200 && res->ok) {
        log_info("telegram.commands_set", "hash=%s", cs->hash);
        if (tg->core != NULL && tg->core->ledger != NULL &&
            state_put(ledger_store(tg->core->ledger), TG_STATE_NS, "commands_hash", cs->hash,
                      tg__commands_stored, cs) == 0)
            return;
    } else if (res->rc != HB_ECANCELED) {
        log_warn("telegram.commands_not_set", "status=%d description=%s error=%s",
                 res->status, res->description, hb_strerror(res->rc));
    }
    tg__cmdsync_free(cs);
}

static void tg__commands_hash_loaded(int rc, const char *value, void *data)
{
    struct tg_cmdsync *cs = data;
    struct tg *tg = cs->tg;
    if (rc == 0 && value != NULL && strcmp(value, cs->hash) == 0) {
        log_debug("telegram.commands_unchanged", "hash=%s", cs->hash);
        tg__cmdsync_free(cs);
        return;
    }
    struct http_request *req = tg->closing ? NULL : tg_request_new(tg, "setMyCommands");
    if (req == NULL ||
        http_request_body_set(req, cs->json, strlen(cs->json), "application/json") < 0 ||
        tg_request_start(tg, req, tg__commands_set, cs, NULL) < 0) {
        if (req != NULL && tg->closing)
            http_request_free(req);
        tg__cmdsync_free(cs);
    }
}

static void tg__commands_sync(struct tg *tg)
{
    struct tg_cmdsync *cs = calloc(1, sizeof(*cs));
    cJSON *j = tg__commands_json(tg);
    if (cs == NULL || j == NULL) {
        free(cs);
        cJSON_Delete(j);
        return;
    }
    cs->tg = tg;
    cs->json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (cs->json == NULL) {
        free(cs);
        return;
    }
    snprintf(cs->hash, sizeof(cs->hash), "%016" PRIx64, tg__fnv(cs->json));
    tg_ref(tg);
    if (tg->core == NULL || tg->core->ledger == NULL ||
        state_get(ledger_store(tg->core->ledger), TG_STATE_NS, "commands_hash",
                  tg__commands_hash_loaded, cs) < 0)
        tg__commands_hash_loaded(HB_ENOTFOUND, NULL, cs);
}

static void tg__me_done(struct tg *tg, void *data, const struct tg_result *res)
{
    (void)data;
    if (!tg->running || tg->closing)
        return;
    if (tg__poll_failed(tg, res, "getMe"))
        return;
    const char *user = tg_json_str(res->result, "username");
    tg->bot_id = tg_json_int(res->result, "id", 0);
    if (tg->bot_id == 0 || user == NULL) {
        log_warn("telegram.poll_error", "method=getMe problem=no id or username");
        tg__poll_later(tg, 0);
        return;
    }
    snprintf(tg->bot_username, sizeof(tg->bot_username), "%s", user);
    tg->failures = 0;
    log_info("telegram.identity", "bot=%s id=%" PRId64, tg->bot_username, tg->bot_id);
    tg__commands_sync(tg);
    tg_ref(tg);
    if (tg->core == NULL || tg->core->ledger == NULL ||
        state_get(ledger_store(tg->core->ledger), TG_STATE_NS, "offset", tg__offset_loaded,
                  tg) < 0)
        tg__offset_loaded(HB_ENOTFOUND, NULL, tg);
}

static void tg__start_identity(struct tg *tg)
{
    cJSON *body = cJSON_CreateObject();
    int rc = body == NULL ? HB_ENOMEM : tg_call_json(tg, "getMe", body, tg__me_done, NULL);
    cJSON_Delete(body);
    if (rc < 0)
        tg__poll_later(tg, 0);
}

/* ---- the adapter ---------------------------------------------------- */

static int tg__start(struct adapter *a)
{
    struct tg *tg = a->impl;
    if (tg->running || tg->closing)
        return HB_ESTATE;
    tg->running = true;
    tg__start_identity(tg);
    return 0;
}

static void tg__stop(struct adapter *a)
{
    struct tg *tg = a->impl;
    if (!tg->running)
        return;
    tg->running = false;
    uv_timer_stop(&tg->poll_timer);
    if (tg->poll != NULL)
        http_request_cancel(tg->poll->req);
    log_info("telegram.stopped", "updates=%" PRIu64 " sends=%" PRIu64, tg->updates_seen,
             tg->sends_done);
}

static void tg__handle_closed(uv_handle_t *h)
{
    struct tg *tg = h->data;
    tg->handles_open--;
    tg__maybe_free(tg);
}

static void tg__pipe_closed(void *data)
{
    struct tg *tg = data;
    tg->handles_open--;
    tg__maybe_free(tg);
}

static void tg__close(struct adapter *a, void (*cb)(void *data), void *data)
{
    struct tg *tg = a->impl;
    tg__stop(a);
    tg->closing = true;
    tg->close_cb = cb;
    tg->close_data = data;
    tg_sendq_drop(tg);
    for (struct tg_call *c = tg->calls; c != NULL; c = c->next)
        http_request_cancel(c->req);
    if (tg->pipe != NULL) {
        tg->handles_open++;
        http_pipe_close(tg->pipe, tg__pipe_closed, tg);
        tg->pipe = NULL;
    }
    uv_close((uv_handle_t *)&tg->poll_timer, tg__handle_closed);
    uv_close((uv_handle_t *)&tg->sq_timer, tg__handle_closed);
    tg_unref(tg); /* the open reference */
}

static const struct adapter_ops tg_ops = {.name = "telegram",
                                          .start = tg__start,
                                          .stop = tg__stop,
                                          .close = tg__close,
                                          .notify = tg_notify};

static uint64_t tg__or(uint64_t v, uint64_t def)
{
    return v != 0 ? v : def;
}

struct adapter *telegram_new(uv_loop_t *loop, struct http_client *http, struct core *core,
                             const struct telegram_options *opts, const struct adapter_host *host)
{
    if (opts->token == NULL || opts->token[0] == '\0' || strchr(opts->token, '/') != NULL)
        return NULL;
    struct tg *tg = calloc(1, sizeof(*tg));
    if (tg == NULL)
        return NULL;
    log_secret_add(opts->token);
    tg->adapter.ops = &tg_ops;
    tg->adapter.impl = tg;
    tg->loop = loop;
    tg->http = http;
    tg->core = core;
    tg->host = *host;
    const char *api = opts->api_base != NULL ? opts->api_base : "https://api.telegram.org";
    size_t alen = strlen(api);
    while (alen > 0 && api[alen - 1] == '/')
        alen--;
    size_t n = alen + strlen(opts->token) + 8;
    tg->base = malloc(n);
    tg->nbuckets = 256;
    tg->buckets = calloc(tg->nbuckets, sizeof(*tg->buckets));
    if (tg->base == NULL || tg->buckets == NULL)
        goto fail;
    snprintf(tg->base, n, "%.*s/bot%s/", (int)alen, api, opts->token);
    tg->poll_timeout_s = opts->poll_timeout_s > 0 ? opts->poll_timeout_s : 30;
    tg->poll_limit = opts->poll_limit > 0 && opts->poll_limit <= 100 ? opts->poll_limit : 100;
    tg->chat_interval_ms = tg__or(opts->chat_interval_ms, 1000);
    tg->group_interval_ms = tg__or(opts->group_interval_ms, 3000);
    tg->global_per_s = tg__or(opts->global_per_s, 30);
    tg->retry_unit_ms = tg__or(opts->retry_after_unit_ms, 1000);
    tg->backoff_min_ms = tg__or(opts->backoff_min_ms, 1000);
    tg->backoff_max_ms = tg__or(opts->backoff_max_ms, 60000);
    if (tg->backoff_max_ms < tg->backoff_min_ms)
        tg->backoff_max_ms = tg->backoff_min_ms;
    tg->max_inflight = opts->max_inflight > 0 ? opts->max_inflight : 32;
    tg->pacing_off = opts->pacing_off != 0;
    tg->webhook = opts->webhook != 0;
    if (tg->webhook && opts->webhook_url != NULL && opts->webhook_url[0] != '\0') {
        tg->webhook_url = strdup(opts->webhook_url);
        if (tg->webhook_url == NULL)
            goto fail;
    }
    if (tg->webhook && opts->webhook_secret != NULL && opts->webhook_secret[0] != '\0') {
        log_secret_add(opts->webhook_secret);
        tg->webhook_secret = strdup(opts->webhook_secret);
        if (tg->webhook_secret == NULL)
            goto fail;
    }
    if (!opts->pipeline_off) {
        /* The origin is the API base up to its path; calls go to the rest. */
        const char *hs = strstr(tg->base, "://");
        tg->pipe_path = hs != NULL ? strchr(hs + 3, '/') : NULL;
        struct http_pipe_options po = {.depth = opts->pipeline, .timeout_ms = TG_CALL_TIMEOUT_MS};
        if (tg->pipe_path != NULL)
            tg->pipe = http_pipe_new(loop, http, tg->base, &po);
        if (tg->pipe == NULL)
            goto fail;
    }
    tg->tokens = (double)tg->global_per_s;
    tg->rng = uv_hrtime() | 1;
    if (telegram_options_update(&tg->adapter, opts->admins, opts->stars_packages) < 0)
        goto fail;
    if (uv_timer_init(loop, &tg->poll_timer) < 0)
        goto fail;
    tg->poll_timer.data = tg;
    tg->handles_open++;
    if (uv_timer_init(loop, &tg->sq_timer) < 0) {
        tg->closing = true;
        http_pipe_close(tg->pipe, NULL, NULL);
        tg->pipe = NULL;
        uv_close((uv_handle_t *)&tg->poll_timer, tg__handle_closed);
        return NULL; /* freed when the timer has closed */
    }
    tg->sq_timer.data = tg;
    tg->handles_open++;
    tg->refs = 1;
    tg->tokens_at = uv_now(loop);
    return &tg->adapter;
fail:
    http_pipe_close(tg->pipe, NULL, NULL);
    free(tg->base);
    free(tg->buckets);
    free(tg->webhook_url);
    free(tg->webhook_secret);
    free(tg);
    return NULL;
}

int telegram_options_update(struct adapter *a, const char *admins, const char *stars_packages)
{
    struct tg *tg = a->impl;
    int64_t ids[TG_ADMINS_MAX];
    struct telegram_package pk[TG_PACKAGES_MAX];
    int na = telegram_ids_parse(admins, ids, TG_ADMINS_MAX);
    int np = telegram_packages_parse(stars_packages, pk, TG_PACKAGES_MAX);
    if (na < 0 || np < 0)
        return HB_EINVAL;
    memcpy(tg->admins, ids, (size_t)na * sizeof(ids[0]));
    tg->nadmins = (size_t)na;
    memcpy(tg->packages, pk, (size_t)np * sizeof(pk[0]));
    tg->npackages = (size_t)np;
    return 0;
}

int telegram_update_feed(struct adapter *a, const char *json, size_t len)
{
    struct tg *tg = a->impl;
    cJSON *u = cJSON_ParseWithLength(json, len);
    int rc = tg_update_handle(tg, u);
    cJSON_Delete(u);
    tg_persist_offset(tg);
    return rc;
}
