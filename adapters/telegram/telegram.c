/* The Telegram adapter's life: settings, start, stop, closing and the
 * adapter operations. The work is done by the files below it
 * (telegram_internal.h names their order). */
#include "adapters/telegram/telegram_internal.h"

#include "net/http_pipe.h"
#include "net/server.h"
#include "core/commands.h"
#include "core/core.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- closing ---------------------------------------------------------- */

static void tg__maybe_free(struct tg *tg)
{
    if (!tg->closing || tg->refs > 0 || tg->handles_open > 0)
        return;
    void (*cb)(void *) = tg->close_cb;
    void *data = tg->close_data;
    tg_sendq_free(tg);
    tg_outbox_free(tg);
    free(tg->buckets);
    free(tg->base);
    free(tg->webhook_url);
    free(tg->webhook_secret);
    free(tg);
    if (cb != NULL)
        cb(data);
}

/* ---- the adapter ---------------------------------------------------- */

static int tg__start(struct adapter *a)
{
    struct tg *tg = a->impl;
    if (tg->running || tg->closing)
        return HB_ESTATE;
    tg->running = true;
    tg_poll_start(tg);
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
        tg_call_cancel(tg->poll);
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
    tg->drain_cb = NULL;
    /* Whatever is owed goes to the outbox before the queue is let go. */
    tg_outbox_close(tg);
    tg_webhook_close(tg);
    tg_sendq_drop(tg);
    tg_calls_cancel(tg);
    tg_images_cancel(tg);
    if (tg->pipe != NULL) {
        tg->handles_open++;
        http_pipe_close(tg->pipe, tg__pipe_closed, tg);
        tg->pipe = NULL;
    }
    uv_close((uv_handle_t *)&tg->poll_timer, tg__handle_closed);
    uv_close((uv_handle_t *)&tg->sq_timer, tg__handle_closed);
    uv_close((uv_handle_t *)&tg->kick_timer, tg__handle_closed);
    uv_close((uv_handle_t *)&tg->ob_timer, tg__handle_closed);
    uv_close((uv_handle_t *)&tg->ob_look, tg__handle_closed);
    tg_poll_lease_drop(tg);
    tg_notify_owed_drop(tg);
    uv_close((uv_handle_t *)&tg->lease_timer, tg__handle_closed);
    tg_unref(tg); /* the open reference */
}

/* Stopping: the queue is sent out at its pace; cb once it is empty (the
 * daemon's grace bounds the wait, and close keeps the rest). */
static void tg__drain(struct adapter *a, void (*cb)(void *data), void *data)
{
    struct tg *tg = a->impl;
    tg->drain_cb = cb;
    tg->drain_data = data;
    log_info("telegram.draining", "queued=%zu", tg->queued);
    tg_poll_kick(tg);
}

/* A reload replaces the admin list and the Stars packages, and sets the
 * command menu again when [features] changed it (an unchanged menu costs
 * one store read: its hash is kept). */
static int tg__reload(struct adapter *a, const void *options)
{
    const struct telegram_options *o = options;
    struct tg *tg = a->impl;
    int rc = telegram_options_update(a, o->admins, o->stars_packages);
    if (rc == 0 && tg->running && !tg->closing && tg->bot_id != 0)
        tg_commands_sync(tg);
    return rc;
}

/* Constant time over the expected length, so the secret does not leak
 * through timing (only its length may). */
static bool tg__secret_ok(const char *expected, const char *given)
{
    size_t n = strlen(expected);
    if (given == NULL || strlen(given) != n)
        return false;
    return CRYPTO_memcmp(expected, given, n) == 0;
}

/* POST /webhooks/telegram: Telegram hears 200 (and forgets the update)
 * only once what the update caused is safe: its replies sent or in the
 * outbox, as a poll's confirmation waits. */
static void tg__webhook_serve(struct adapter *a, struct server_request *req)
{
    struct tg *tg = a->impl;
    if (!tg__secret_ok(tg->webhook_secret,
                       server_request_header(req, "X-Telegram-Bot-Api-Secret-Token"))) {
        log_warn("webhooks.telegram_refused", "reason=%s", "wrong or missing secret token");
        server_respond(req, 401, NULL, "unauthorized\n", 13, NULL);
        return;
    }
    size_t len = 0;
    const char *body = server_request_body(req, &len);
    if (telegram_update_feed(a, body, len) < 0) {
        server_respond(req, 400, NULL, "malformed update\n", 17, NULL);
        return;
    }
    tg_webhook_hold(tg, req);
}

static const char *const tg_webhook_headers[] = {"X-Telegram-Bot-Api-Secret-Token", NULL};
static const struct adapter_route tg_routes[] = {{.method = "POST",
                                                  .path = "/webhooks/telegram",
                                                  .headers = tg_webhook_headers,
                                                  .serve = tg__webhook_serve}};

/* In webhook mode updates arrive at POST /webhooks/telegram, which needs
 * the secret token to refuse strangers. */
static int tg__routes(struct adapter *a, const struct adapter_route **routes)
{
    struct tg *tg = a->impl;
    if (!tg->webhook)
        return 0;
    if (tg->webhook_secret == NULL)
        return HB_EINVAL;
    *routes = tg_routes;
    return 1;
}

#define TG_HEALTH_FAILURES 3 /* consecutive failed polls before the poller counts as down */

/* The long poller, for /healthz and the platform-down alert: up while its
 * polls succeed, on its way back (starting) after a few failed in a row.
 * A webhook-mode adapter has no poller to report. */
static bool tg__health(struct adapter *a, size_t i, struct adapter_health *out)
{
    struct tg *tg = a->impl;
    if (i > 0 || tg->webhook || !tg->running)
        return false;
    snprintf(out->name, sizeof(out->name), "telegram:poller");
    bool failing = tg->failures >= TG_HEALTH_FAILURES;
    out->state = failing ? ADAPTER_HEALTH_STARTING : ADAPTER_HEALTH_UP;
    out->detail = failing ? "polls failing" : NULL;
    return true;
}

static const struct adapter_ops tg_ops = {.name = "telegram",
                                          .platform = COMMAND_PLATFORM_TELEGRAM,
                                          .start = tg__start,
                                          .stop = tg__stop,
                                          .close = tg__close,
                                          .drain = tg__drain,
                                          .reload = tg__reload,
                                          .routes = tg__routes,
                                          .health = tg__health,
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
    tg->maybe_free = tg__maybe_free;
    tg->chat_migrated = tg_migrate;
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
    /* A poll's replies (up to 100) go out together, so the checkpoint that
     * confirms the poll waits one round trip for them, not several. */
    tg->max_inflight = opts->max_inflight > 0 ? opts->max_inflight : 100;
    tg->queue_max = opts->queue_max > 0 ? opts->queue_max : 1000;
    tg->pacing_off = opts->pacing_off != 0;
    tg->ob_rows_off = opts->outbox_off != 0;
    tg->ob_offset_wait = opts->outbox_off == TELEGRAM_OUTBOX_BEFORE;
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
    uv_timer_init(loop, &tg->kick_timer); /* cannot fail once the others did not */
    tg->kick_timer.data = tg;
    tg->handles_open++;
    uv_timer_init(loop, &tg->ob_timer);
    tg->ob_timer.data = tg;
    tg->handles_open++;
    uv_timer_init(loop, &tg->ob_look);
    tg->ob_look.data = tg;
    tg->handles_open++;
    uv_timer_init(loop, &tg->lease_timer);
    tg->lease_timer.data = tg;
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
