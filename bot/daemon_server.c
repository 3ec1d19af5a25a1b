/* The daemon's HTTP server and what hangs on it (/healthz and /metrics,
 * the platforms' webhooks, the API, the card webhooks), and the Hedera
 * deposit poller, whose health the server shows. */
#include "bot/daemon_internal.h"

#include "bot/api.h"
#include "bot/mirror.h"
#include "bot/payments.h"
#include "bot/status.h"
#include "bot/webhooks.h"
#include "core/apikey.h"
#include "core/ledger.h"
#include "net/server.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <stdio.h>
#include <string.h>

/* ---- the HTTP server ------------------------------------------------- */

/* The parts of the adapters whose health counts on their own (Discord
 * shards), for /healthz: each is essential. */
static void daemon__health_tick(uv_timer_t *t)
{
    struct daemon *d = t->data;
    apikey_spend_flush(&d->core); /* the API keys' spending, written behind (core/apikey.h) */
    if (d->status == NULL)
        return;
    for (size_t a = 0; a < d->nadapters; a++) {
        struct adapter *ad = d->adapters[a];
        if (ad->ops->health == NULL)
            continue;
        for (size_t i = 0;; i++) {
            struct adapter_health h;
            memset(&h, 0, sizeof(h));
            if (!ad->ops->health(ad, i, &h))
                break;
            enum status_state st = h.state == ADAPTER_HEALTH_UP     ? STATUS_UP
                                   : h.state == ADAPTER_HEALTH_DOWN ? STATUS_DOWN
                                                                    : STATUS_STARTING;
            status_component_set(d->status, h.name, true, st, h.detail);
        }
    }
}

/* Start the server when [server] enabled: /healthz and /metrics always,
 * the card webhooks when a card method is enabled. Off by default, and on
 * loopback unless the operator says otherwise. */
int daemon__server_start(struct daemon *d)
{
    const struct config *cfg = d->config;
    if (!cfg->server.enabled) {
        if (cfg->stripe.enabled || cfg->paddle.enabled)
            log_warn("payments.unreachable", "hint=%s",
                     "card webhooks need [server] enabled = true; payments will not be credited");
        return 0;
    }
    struct server_options so = {.address = cfg->server.address,
                                .port = (int)cfg->server.port,
                                .max_body = (size_t)cfg->server.max_body};
    d->server = server_new(&d->loop, &so);
    if (d->server == NULL || server_port(d->server) <= 0)
        return HB_EIO; /* logged; a server made is closed with the rest */
    struct status_options sto = {.metrics_token = cfg->server.metrics_token,
                                 .storage_probe = status_probe_ledger,
                                 .storage_probe_data = &d->ledger};
    d->status = status_new(d->server, &sto);
    if (d->status == NULL)
        return HB_ENOMEM;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        char name[160];
        snprintf(name, sizeof(name), "provider:%s", cfg->providers[i].name);
        status_component_set(d->status, name, false, STATUS_UP, "no request yet");
    }
    uv_timer_start(&d->health, daemon__health_tick, 1000, 2000);
    d->webhooks = webhooks_new(d->server);
    d->api = cfg->api.enabled ? api_new(d->server, &d->core, cfg->api.max_body) : NULL;
    if (d->webhooks == NULL || (cfg->api.enabled && d->api == NULL))
        return HB_ENOMEM;
    /* Families the gateways and REST clients will report read 0 until then. */
    const struct metrics_std *m = metrics_std();
    struct metrics_family *per_platform[] = {m->gateway_reconnects, m->gateway_resumes,
                                             m->ratelimit_waits, m->http_429};
    for (size_t i = 0; i < sizeof(per_platform) / sizeof(per_platform[0]); i++) {
        metrics_counter_add(per_platform[i], (const char *[]){"discord"}, 0);
        metrics_counter_add(per_platform[i], (const char *[]){"telegram"}, 0);
    }
    if (cfg->stripe.enabled || cfg->paddle.enabled) {
        struct payments_options po = {
            .ledger = &d->ledger,
            .reference_key = cfg->payments.reference_key,
            .packages = cfg->payments.packages,
            .currency = cfg->payments.currency,
            .welcome_bonus = cfg->ledger.welcome_bonus,
            .stripe_secret = cfg->stripe.enabled ? cfg->stripe.webhook_secret : NULL,
            .stripe_tolerance = cfg->stripe.tolerance,
            .paddle_secret = cfg->paddle.enabled ? cfg->paddle.webhook_secret : NULL,
            .paddle_tolerance = cfg->paddle.tolerance,
            .paddle_match_on = (enum payments_match)cfg->paddle.match_on,
            .notify = daemon__notify,
            .notify_data = d};
        d->payments = payments_new(d->server, &po);
        if (d->payments == NULL)
            return HB_ECONFIG;
        if (cfg->stripe.enabled)
            status_component_set(d->status, "stripe", false, STATUS_UP, NULL);
        if (cfg->paddle.enabled)
            status_component_set(d->status, "paddle", false, STATUS_UP, NULL);
    }
    return 0;
}

/* Inside the loop: stop listening. Webhooks still in the ledger finish
 * there; their answers are dropped and the providers retry later. */
void daemon__server_close(struct daemon *d)
{
    webhooks_stop(d->webhooks);
    if (d->server != NULL)
        server_stop(d->server);
}

/* After uv_run() returned. */
void daemon__server_free(struct daemon *d)
{
    server_free(d->server);
    d->server = NULL;
    status_free(d->status);
    d->status = NULL;
    payments_free(d->payments);
    d->payments = NULL;
    webhooks_free(d->webhooks);
    d->webhooks = NULL;
    api_free(d->api);
}

/* ---- crypto deposits --------------------------------------------------- */

static void daemon__mirror_polled(void *data, int rc)
{
    struct daemon *d = data;
    if (d->status != NULL)
        status_component_set(d->status, "hedera", false, rc == 0 ? STATUS_UP : STATUS_DOWN,
                             rc == 0 ? NULL : hb_strerror(rc));
}

/* Poll the mirror node when [hedera] enabled. */
int daemon__mirror_start(struct daemon *d)
{
    const struct config *cfg = d->config;
    if (!cfg->hedera.enabled)
        return 0;
    struct mirror_options mo = {.http = d->http,
                                .ledger = &d->ledger,
                                .mirror_url = cfg->hedera.mirror_url,
                                .treasury = cfg->hedera.treasury,
                                .reference_key = cfg->payments.reference_key,
                                .tinybars_per_credit = cfg->hedera.tinybars_per_credit,
                                .tokens = cfg->hedera.tokens,
                                .welcome_bonus = cfg->ledger.welcome_bonus,
                                .interval_ms = (uint64_t)cfg->hedera.poll_interval * 1000u,
                                .on_poll = daemon__mirror_polled,
                                .data = d,
                                .notify = daemon__notify,
                                .notify_data = d};
    d->mirror = mirror_new(&d->loop, &mo);
    if (d->mirror == NULL)
        return HB_ECONFIG;
    if (d->status != NULL)
        status_component_set(d->status, "hedera", false, STATUS_STARTING, NULL);
    int rc = mirror_start(d->mirror);
    if (rc < 0) {
        d->closing++;
        mirror_stop(d->mirror, daemon__closed_one, d);
        d->mirror = NULL;
    }
    return rc;
}
