/* Updates in: getMe at start (retried with the poll's back-off), the
 * persisted getUpdates offset, then setWebhook in webhook mode or else the
 * getUpdates long poll with its back-off. */
#include "adapters/telegram/telegram_internal.h"

#include "core/cluster.h"
#include "core/core.h"
#include "base/error.h"
#include "core/ledger.h"
#include "base/log.h"
#include "core/state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TG_POLL_GRACE_MS 15000 /* the HTTP timeout exceeds the poll's by this */
#define TG_EMPTY_FAST_MS 1000  /* an empty answer sooner than this is backed off */

/* ---- the poll ------------------------------------------------------- */

static void tg__poll(struct tg *tg);
static void tg__start_identity(struct tg *tg);
static void tg__advance(struct tg *tg);

static void tg__poll_timer(uv_timer_t *t)
{
    struct tg *tg = t->data;
    if (tg->bot_id == 0)
        tg__start_identity(tg);
    else
        tg__advance(tg);
}

static void tg__kick_timer(uv_timer_t *t)
{
    struct tg *tg = t->data;
    if (tg->drain_cb != NULL && tg->queued == 0) {
        void (*cb)(void *) = tg->drain_cb;
        tg->drain_cb = NULL;
        log_info("telegram.drained", "sends=%" PRIu64 " outbox=%zu", tg->sends_done, tg->ob_rows);
        cb(tg->drain_data);
        return;
    }
    tg__advance(tg);
}

void tg_poll_kick(struct tg *tg)
{
    if (tg->closing)
        return;
    uv_timer_start(&tg->kick_timer, tg__kick_timer, 0, 0);
}

/* ---- webhook mode: Telegram's request answered once its update is safe -- */

struct tg_hook {
    struct server_request *req;
    int64_t upto; /* safe once safe_upto reaches this */
    struct tg_hook *next;
};

static void tg__hooks_release(struct tg *tg, bool all)
{
    while (tg->hooks_head != NULL && (all || tg->hooks_head->upto <= tg->safe_upto)) {
        struct tg_hook *h = tg->hooks_head;
        tg->hooks_head = h->next;
        if (tg->hooks_head == NULL)
            tg->hooks_tail = NULL;
        if (all && h->upto > tg->safe_upto)
            server_respond(h->req, 503, NULL, "stopping\n", 9, NULL);
        else
            server_respond(h->req, 200, "application/json", "{}", 2, NULL);
        free(h);
    }
}

void tg_webhook_hold(struct tg *tg, struct server_request *req)
{
    int64_t upto = tg->offset;
    struct tg_hook *h = upto > tg->safe_upto ? calloc(1, sizeof(*h)) : NULL;
    if (h == NULL) {
        /* Safe already (a repeat), or no memory: answered now. */
        server_respond(req, 200, "application/json", "{}", 2, NULL);
        return;
    }
    h->req = req;
    h->upto = upto;
    if (tg->hooks_tail != NULL)
        tg->hooks_tail->next = h;
    else
        tg->hooks_head = h;
    tg->hooks_tail = h;
    tg_poll_kick(tg);
}

void tg_webhook_close(struct tg *tg)
{
    tg__hooks_release(tg, true);
}

/* The next step: confirm the updates handled (once their replies settled),
 * then poll for more, unless the queue or the outbox is at its bound (a
 * send's completion kicks again), the outbox is still being replayed, or a
 * back-off is running. */
static void tg__advance(struct tg *tg)
{
    tg_sendq_gauges(tg);
    if (tg->closing || !tg->replayed || tg->bot_id == 0)
        return;
    /* Stopping too: the replies of the last updates wait for it. On a
     * shared ledger only the poller whose lease holds confirms
     * (tg_outbox_lost). */
    if (tg->offset > tg->safe_upto && !tg_lease_standby(tg)) {
        /* Polling waits for the replies in flight (their answers come
         * within a round trip and then need no row), not in webhook mode,
         * where updates keep coming and Telegram was answered already. */
        bool wait_sends = !tg->webhook && !tg->ob_rows_off;
        if (tg->unsettled > 0 || tg->confirm_upto >= tg->offset ||
            (wait_sends && tg->inflight_unconfirmed > 0) ||
            (wait_sends && tg->sq_armed && tg->sq_due <= uv_now(tg->loop)))
            return; /* a settle, the queue's turn, an answer or the write kicks again */
        tg_outbox_checkpoint(tg, tg->offset);
        if (tg->safe_upto < tg->offset)
            return;
    }
    tg__hooks_release(tg, false);
    if (!tg->running || tg->webhook || tg->poll != NULL ||
        uv_is_active((uv_handle_t *)&tg->poll_timer))
        return;
    if (tg_lease_standby(tg))
        return; /* not the poller, or its lease may have run out: the renewal kicks */
    if (tg->replaying > 0 || tg->queued >= tg->queue_max || tg->ob_rows >= tg->queue_max) {
        if (!tg->held_back)
            log_debug("telegram.poll_held_back", "queued=%zu outbox=%zu bound=%zu", tg->queued,
                      tg->ob_rows, tg->queue_max);
        tg->held_back = true;
        return;
    }
    tg->held_back = false;
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
    tg->adapter.end_error = HB_EPERM;
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
        log_warn("telegram.poll_error", "method=%s status=%d description=%s retry=backoff", method,
                 res->status, res->description);
        tg__poll_later(tg, 0);
        return true;
    }
    return false;
}

/* The webhook path: updates were handled; confirm them once safe. */
void tg_persist_offset(struct tg *tg)
{
    tg_poll_kick(tg);
}

static void tg__poll_done(struct tg *tg, void *data, const struct tg_result *res)
{
    (void)data;
    tg->poll = NULL; /* this call is over */
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
    if (tg_lease_standby(tg)) {
        /* The lease ran out while the poll was away (this daemon stalled):
         * another may poll now. Its updates stay unconfirmed, so whoever
         * holds the lease next takes them from the stored offset; handled
         * here too, they would be answered twice. The renewal kicks the
         * next poll if the lease is still this daemon's. */
        if (n > 0)
            log_warn("telegram.poll_dropped", "updates=%d reason=lease", n);
        return;
    }
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
    tg__advance(tg);
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

/* ---- start: getMe, the offset, the webhook ----------------------------- */

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
        /* One connection: updates then come in order, which the
         * duplicate check (an id below the next one expected is a repeat)
         * relies on. With Telegram's default of 40 an update of one chat
         * can overtake another's, and the one overtaken would be dropped. */
        cJSON_AddNumberToObject(body, "max_connections", 1);
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

static void tg__replayed(struct tg *tg)
{
    if (!tg->running || tg->closing)
        return;
    if (tg->webhook) {
        tg__webhook_set(tg);
        tg__advance(tg); /* requests that came in before the start was over */
        return;
    }
    log_info("telegram.polling",
             "bot=%s offset=%" PRId64 " timeout_s=%" PRId64 " outbox=%zu bound=%zu",
             tg->bot_username, tg->offset, tg->poll_timeout_s, tg->ob_rows, tg->queue_max);
    tg__advance(tg);
}

static void tg__offset_loaded(int rc, const char *value, void *data)
{
    struct tg *tg = data;
    if (rc == 0 && value != NULL) {
        int64_t v = strtoll(value, NULL, 10);
        if (v > tg->offset) {
            tg->offset = v;
            tg->persisted = v;
            tg->confirm_upto = v;
            tg->safe_upto = v;
        }
    } else if (rc != HB_ENOTFOUND) {
        log_warn("telegram.offset_not_loaded", "error=%s", hb_strerror(rc));
    }
    /* What the outbox holds goes before any new update is taken. */
    if (tg->running && !tg->closing)
        tg_outbox_replay(tg, tg__replayed);
    tg_unref(tg);
}

/* Where the last poller stopped: the stored offset, then its outbox. */
static void tg__offset_load(struct tg *tg)
{
    tg_ref(tg);
    if (tg->core == NULL || tg->core->ledger == NULL ||
        state_get(ledger_store(tg->core->ledger), TG_STATE_NS, "offset", tg__offset_loaded, tg) < 0)
        tg__offset_loaded(HB_ENOTFOUND, NULL, tg);
}

/* ---- the poller's lease (core/cluster.h) --------------------------------- */

static void tg__lease_name(const struct tg *tg, char *buf, size_t cap)
{
    snprintf(buf, cap, "telegram:%" PRId64, tg->bot_id);
}

static void tg__lease_tick(uv_timer_t *t);

bool tg_lease_lapsed(const struct tg *tg)
{
    return tg->core != NULL && tg->core->cluster != NULL && tg->lease_held &&
           uv_now(tg->loop) >= tg->lease_until;
}

bool tg_lease_standby(const struct tg *tg)
{
    /* Webhook mode takes no lease: its one daemon confirms its updates. */
    return tg->core != NULL && tg->core->cluster != NULL && !tg->webhook &&
           (!tg->lease_held || tg_lease_lapsed(tg));
}

static void tg__lease_done(int rc, const char *holder, int64_t until, void *data)
{
    struct tg *tg = data;
    tg->lease_asking = false;
    if (tg->closing || !tg->running) {
        tg_unref(tg);
        return;
    }
    if (rc == 0) {
        tg->lease_until = tg->lease_asked + (uint64_t)cluster_lease_term_ms(tg->core->cluster);
        if (!tg->lease_held) {
            tg->lease_held = true;
            log_info("telegram.poller", "bot=%s role=holder run=%s", tg->bot_username, holder);
            tg__offset_load(tg); /* resumes where the last holder confirmed */
        } else {
            tg_poll_kick(tg);
            tg_sendq_kick(tg); /* sends held while it may have run out */
        }
        tg_notify_owed(tg);
    } else if (rc == HB_EBUSY) {
        if (tg->lease_held) {
            /* Another daemon took it: this one's lease ran out unrenewed
             * (the store was out of reach). It polls no more (two pollers
             * would repeat updates) and stands by like any other daemon,
             * so that it takes over again if that one goes. */
            tg->lease_held = false;
            tg->lease_waiting = false;
            log_error("telegram.poller_lost", "bot=%s holder=%s hint=%s", tg->bot_username, holder,
                      "another daemon polls now; this one stands by");
            /* It replays the outbox and takes the updates not confirmed
             * again: sent from here too, members would get them twice. */
            tg_outbox_lost(tg);
            tg_sendq_drop_lost(tg);
        }
        if (!tg->lease_waiting)
            log_info("telegram.poller", "bot=%s role=standby holder=%s", tg->bot_username, holder);
        tg->lease_waiting = true;
        /* Ask again right when the holder's lease ends, not up to a third
         * of a lease later: a dead holder is replaced within its lease. */
        int64_t every = cluster_lease_ms(tg->core->cluster) / 3;
        int64_t wait = until - clock_real_ms() + 20;
        if (until > 0 && wait >= 0 && wait < every)
            uv_timer_start(&tg->lease_timer, tg__lease_tick, (uint64_t)wait,
                           (uint64_t)(every > 0 ? every : 1));
    } else {
        log_warn("telegram.lease_failed", "bot=%s error=%s", tg->bot_username, hb_strerror(rc));
    }
    tg_unref(tg);
}

static void tg__lease_tick(uv_timer_t *t)
{
    struct tg *tg = t->data;
    struct cluster *c = tg_cluster(tg);
    if (c == NULL || tg->closing || tg->lease_asking)
        return;
    if (!uv_is_active((uv_handle_t *)&tg->lease_timer)) {
        uint64_t every = (uint64_t)cluster_lease_ms(c) / 3;
        uv_timer_start(&tg->lease_timer, tg__lease_tick, every, every > 0 ? every : 1);
    }
    char name[48];
    tg__lease_name(tg, name, sizeof(name));
    tg->lease_asked = uv_now(tg->loop);
    tg_ref(tg);
    tg->lease_asking = true;
    if (cluster_lease_take(c, name, tg__lease_done, tg) < 0) {
        tg->lease_asking = false;
        tg_unref(tg);
    }
}

void tg_poll_lease_drop(struct tg *tg)
{
    struct cluster *c = tg_cluster(tg);
    uv_timer_stop(&tg->lease_timer);
    if (c == NULL || !tg->lease_held)
        return;
    tg->lease_held = false;
    char name[48];
    tg__lease_name(tg, name, sizeof(name));
    cluster_lease_drop(c, name, NULL, NULL);
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
    tg_commands_sync(tg);
    if (tg->core != NULL && tg->core->cluster != NULL && !tg->webhook) {
        /* One daemon of a shared ledger polls: the lease's holder. */
        tg__lease_tick(&tg->lease_timer);
        return;
    }
    tg__offset_load(tg);
}

static void tg__start_identity(struct tg *tg)
{
    cJSON *body = cJSON_CreateObject();
    int rc = body == NULL ? HB_ENOMEM : tg_call_json(tg, "getMe", body, tg__me_done, NULL);
    cJSON_Delete(body);
    if (rc < 0)
        tg__poll_later(tg, 0);
}

void tg_poll_start(struct tg *tg)
{
    tg__start_identity(tg);
}
