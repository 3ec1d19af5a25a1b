#include "bot/operator.h"
#include "bot/daemon.h"

#include "adapters/adapter.h"
#include "bot/adapters.h"
#include "bot/config.h"
#include "bot/config_audit.h"
#include "bot/config_watch.h"
#include "bot/generation.h"
#include "core/deposit.h"
#include "net/http.h"
#include "bot/mirror.h"
#include "bot/payments.h"
#include "bot/router.h"
#include "bot/service.h"
#include "net/server.h"
#include "bot/webhooks.h"
#include "bot/api.h"
#include "bot/status.h"
#include "core/apikey.h"
#include "core/core.h"
#include "core/persona.h"
#include "base/error.h"
#include "core/generate.h"
#include "core/ledger.h"
#include "core/link.h"
#include "core/member.h"
#include "base/log.h"
#include "base/metrics.h"
#include "core/state.h"
#include "base/hex.h"

#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "bot/daemon_internal.h"

static void daemon__stop(struct daemon *d, const char *reason);
static void daemon__generate_reload(struct daemon *d, const struct config *cfg);

/* ---- configuration ---------------------------------------------------- */

/* Apply the settings that take effect without a restart. */
static void daemon__apply_live(struct daemon *d, const struct config *cfg)
{
    log_configure(cfg->bot.log_level, cfg->bot.log_format == CONFIG_LOG_JSON, NULL);
    d->core.bot_name = cfg->bot.name;
    d->core.welcome_bonus = cfg->ledger.welcome_bonus;
    d->core.reservation_timeout_ms = cfg->storage.reservation_timeout * 1000;
    if (d->router != NULL)
        router_access_configure(d->router, cfg); /* logs and keeps the previous on failure */
    if (d->operator!= NULL)
        operator_configure(d->operator, cfg); /* before the adapters: their command lists */
    for (size_t i = 0; i < d->nadapters; i++) {
        if (d->kinds[i]->reload == NULL || d->adapters[i]->ops->reload == NULL)
            continue;
        int rc = d->kinds[i]->reload(d->adapters[i], cfg);
        if (rc < 0)
            log_warn(
                "config.adapter_options",
                "adapter=%s problem=its live settings do not apply (%s) action=kept the previous",
                d->adapters[i]->ops->name, hb_strerror(rc));
    }
    daemon__generate_reload(d, cfg);
}

/* ---- generation ------------------------------------------------------- */

/* A reload swaps in a new catalog; jobs already admitted keep theirs (and
 * their price). A catalog that cannot be built keeps the running one. */
static void daemon__generate_reload(struct daemon *d, const struct config *cfg)
{
    if (d->generate == NULL)
        return;
    struct approval_rules rules;
    generation_approval_rules(cfg, &rules);
    generate_approval_configure(d->generate, &rules);
    char err[512] = "";
    struct catalog *cat = generation_catalog_build(cfg, &d->loop, d->http, err, sizeof(err));
    if (cat == NULL) {
        log_error("generate.catalog_refused", "problem=%s action=keeping the previous models", err);
        return;
    }
    generate_catalog_set(d->generate, cat);
    catalog_unref(cat);
    log_info("generate.catalog", "models=%zu", catalog_model_count(cat));
}

/* The engine needs the ledger and the HTTP client (bot/generation.c). */
static int daemon__generate_start(struct daemon *d)
{
    int rc = generation_engine_start(&d->loop, &d->core, d->config, d->http);
    d->generate = d->core.generate;
    return rc;
}

/* Before the ledger closes: jobs still running are cancelled and their
 * reservations voided, so none is left hanging. */
static void daemon__generate_close(struct daemon *d)
{
    if (d->generate == NULL)
        return;
    d->closing++;
    generate_close(d->generate, daemon__closed_one, d);
    d->generate = NULL;
    d->core.generate = NULL;
}

/* Every reload attempt, from a file change, SIGHUP or /admin reload. */
static void daemon__watch_cb(struct config_watch *w, const struct config_watch_result *res,
                             void *data)
{
    struct daemon *d = data;
    (void)w;
    service_reloaded();
    if (res->status != 0)
        return; /* the watcher logged every problem; the running config stays */
    for (size_t i = 0; i < res->nchanges; i++) {
        const struct config_change *c = &res->changes[i];
        log_info("config.changed", "section=%s instance=%s key=%s applies=%s", c->section,
                 c->instance != NULL ? c->instance : "-", c->key != NULL ? c->key : "-",
                 c->live ? "now" : "after_restart");
    }
    /* The watcher diffs the next reload against this config: keep it, and
     * free the one it replaces. */
    struct config *old = d->config;
    d->config = res->config;
    daemon__apply_live(d, d->config);
    config_free(old);
    /* Which keys changed, never their values; an admin's /admin reload is
     * recorded by the command, with the admin as the actor. */
    if (d->ledger != NULL)
        config_changes_audit(ledger_store(d->ledger), res->changes, res->nchanges,
                             res->restart_required);
    log_info("config.reloaded", "changes=%zu restart_required=%d", res->nchanges,
             res->restart_required ? 1 : 0);
}

static void daemon__reload_done(struct config_watch *w, const struct config_watch_result *res,
                                void *data)
{
    struct reply *r = data;
    (void)w;
    if (r == NULL)
        return;
    config_watch_result_reply(r, res);
    reply_finish(r);
}

static void daemon__reload(struct daemon *d, struct reply *r)
{
    if (d->watch == NULL || config_watch_reload(d->watch, daemon__reload_done, r) < 0) {
        service_reloaded(); /* no attempt, so no end of one: ready again now */
        if (r != NULL) {
            reply_text(r, true, "The reload could not start; the bot keeps its settings.");
            reply_finish(r);
        }
    }
}

static void daemon__host_reload(void *host, struct reply *r)
{
    daemon__reload(host, r);
}

/* The configured payment methods, as /deposit describes them. */
struct daemon_methods {
    struct deposit_methods m;
    struct deposit_package packages[PAYMENTS_PACKAGES_MAX];
    struct deposit_token tokens[MIRROR_TOKENS_MAX];
};

static void daemon__methods(const struct config *cfg, struct daemon_methods *dm)
{
    memset(dm, 0, sizeof(*dm));
    int n = payments_packages_parse(cfg->payments.packages, dm->packages, PAYMENTS_PACKAGES_MAX);
    int t = mirror_tokens_parse(cfg->hedera.tokens, dm->tokens, MIRROR_TOKENS_MAX);
    bool cards = cfg->server.enabled && cfg->payments.reference_key != NULL;
    dm->m = (struct deposit_methods){
        .key = cfg->payments.reference_key,
        .packages = dm->packages,
        .npackages = n > 0 ? (size_t)n : 0,
        .currency = cfg->payments.currency,
        .stripe_url = cards && cfg->stripe.enabled ? cfg->stripe.checkout_url : NULL,
        .paddle_url = cards && cfg->paddle.enabled ? cfg->paddle.checkout_url : NULL,
        .treasury = cfg->hedera.enabled && cfg->payments.reference_key != NULL
                        ? cfg->hedera.treasury
                        : NULL,
        .tinybars_per_credit = cfg->hedera.tinybars_per_credit,
        .tokens = dm->tokens,
        .ntokens = t > 0 ? (size_t)t : 0};
}

static char *daemon__host_deposit_text(void *host, const char *wallet, const char *pool)
{
    struct daemon *d = host;
    struct daemon_methods dm;
    daemon__methods(d->config, &dm);
    return deposit_text_make(&dm.m, wallet, pool);
}

/* ---- notices ---------------------------------------------------------- */

/* A notice, with buttons and an image where the platform's notices carry
 * them (the approval queue's). */
static int daemon__notify_msg(void *data, const struct notify_target *to,
                              const struct reply_msg *msg)
{
    struct daemon *d = data;
    if (d->state == DAEMON_CLOSING)
        return HB_ENOTFOUND;
    for (size_t i = 0; i < d->nadapters; i++) {
        struct adapter *a = d->adapters[i];
        if (a->ops->platform == to->platform && a->ops->notify != NULL)
            return a->ops->notify(a, to, msg);
    }
    return HB_ENOTFOUND;
}

/* Hand a notice to the running adapter of its platform. Payments, the
 * deposit poller and generation recovery reach members through here. */
int daemon__notify(void *data, const struct notify_target *to, const char *text)
{
    struct reply_msg msg = {.stage = REPLY_FINAL, .text = text};
    return daemon__notify_msg(data, to, &msg);
}

/* A provider answered or failed: its state for /healthz. */
static void daemon__host_provider_state(void *host, const char *provider, bool ok,
                                        const char *detail)
{
    struct daemon *d = host;
    if (d->status == NULL)
        return;
    char name[160];
    snprintf(name, sizeof(name), "provider:%s", provider);
    status_component_set(d->status, name, false, ok ? STATUS_UP : STATUS_DOWN, detail);
}

/* Whether a part of a chat platform is not up, for the platform-down alert. */
static bool daemon__platform_down(void *data, char *name, size_t cap)
{
    struct daemon *d = data;
    return d->state == DAEMON_RUNNING && adapters_part_down(d->adapters, d->nadapters, name, cap);
}

static const struct core_host_ops daemon_host_ops = {.reload = daemon__host_reload,
                                                     .deposit_text_for = daemon__host_deposit_text,
                                                     .provider_state = daemon__host_provider_state,
                                                     .notify = daemon__notify,
                                                     .notify_msg = daemon__notify_msg};

/* ---- adapters --------------------------------------------------------- */

static void daemon__dispatch(void *data, struct invocation *inv, const char *args)
{
    struct daemon *d = data;
    router_dispatch(d->router, inv, args);
}

static void daemon__adapter_ended(void *data, struct adapter *a)
{
    struct daemon *d = data;
    log_info("adapter.ended", "adapter=%s", a->ops->name);
    if (a->end_error != 0) { /* a refused token gets no better by waiting: tell the supervisor */
        log_error("daemon.credentials_refused", "adapter=%s exit_code=%d hint=fix its token",
                  a->ops->name, DAEMON_EXIT_CONFIG);
        d->exit_code = DAEMON_EXIT_CONFIG;
        daemon__stop(d, "a platform refused the bot's credentials");
    }
    if (d->status != NULL)
        status_component_set(d->status, a->ops->name, true, STATUS_DOWN, "ended");
    if (d->adapters_live > 0)
        d->adapters_live--;
    if (d->adapters_live == 0)
        daemon__stop(d, "no adapter is left running");
}

/* Autocomplete offers the enabled models of the running config. */
static size_t daemon__model_names(void *data, const char **names, size_t max)
{
    struct daemon *d = data;
    size_t n = 0;
    for (size_t i = 0; i < d->config->nmodels && n < max; i++) {
        if (d->config->models[i].enabled)
            names[n++] = d->config->models[i].name;
    }
    return n;
}

/* Put the HTTP endpoints the adapter serves (a platform's webhook) on the
 * server; the config check made sure [server] is on when one is set. */
static int daemon__routes_add(struct daemon *d, struct adapter *a)
{
    const struct adapter_route *routes = NULL;
    int n = a->ops->routes != NULL ? a->ops->routes(a, &routes) : 0;
    int rc = n;
    if (n > 0 && d->webhooks == NULL) {
        log_error("adapter.start_failed", "adapter=%s problem=%s", a->ops->name,
                  "its HTTP endpoint needs [server] enabled = true");
        return HB_ECONFIG;
    }
    if (n > 0)
        rc = webhooks_adapter_add(d->webhooks, a);
    if (rc < 0)
        log_error("adapter.start_failed", "adapter=%s problem=HTTP endpoint error=%s", a->ops->name,
                  hb_strerror(rc));
    return rc < 0 ? rc : 0;
}

/* Make the adapter of every enabled section of the adapter table. */
static int daemon__adapters_make(struct daemon *d)
{
    struct adapter_host host = {
        .dispatch = daemon__dispatch, .ended = daemon__adapter_ended, .data = d};
    struct adapters_env env = {.loop = &d->loop,
                               .http = d->http,
                               .core = &d->core,
                               .store = ledger_store(d->ledger),
                               .host = &host,
                               .models = daemon__model_names,
                               .models_data = d};
    for (size_t k = 0; k < adapters_nkinds; k++) {
        const struct adapters_kind *kind = &adapters_kinds[k];
        if (!kind->enabled(d->config))
            continue;
        if (d->nadapters == DAEMON_MAX_ADAPTERS)
            return HB_ENOMEM;
        struct adapter *a = NULL;
        int rc = kind->make(d->config, &env, &a);
        if (rc < 0) {
            log_error("adapter.create_failed", "adapter=%s error=%s", kind->section,
                      hb_strerror(rc));
            return rc;
        }
        d->kinds[d->nadapters] = kind;
        d->adapters[d->nadapters++] = a;
        rc = daemon__routes_add(d, a);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int daemon__adapters_start(struct daemon *d)
{
    int rc = daemon__adapters_make(d);
    if (rc < 0)
        return rc;
    if (d->nadapters == 0) {
        log_error("daemon.no_adapter", "hint=enable [console], [discord] or [telegram] in %s",
                  d->config_path);
        return HB_ECONFIG;
    }
    for (size_t i = 0; i < d->nadapters; i++) {
        rc = d->adapters[i]->ops->start(d->adapters[i]);
        if (rc < 0) {
            log_error("adapter.start_failed", "adapter=%s error=%s", d->adapters[i]->ops->name,
                      hb_strerror(rc));
            return rc;
        }
        d->adapters_live++;
        if (d->status != NULL)
            status_component_set(d->status, d->adapters[i]->ops->name, true, STATUS_UP, NULL);
    }
    return 0;
}

/* Recovery may have finished before any adapter ran: members whose jobs
 * it voided are told now that their platform's adapter is up, and so are
 * those whose payment went in just before the last run ended. */
static void daemon__notices_send(struct daemon *d)
{
    if (d->ledger != NULL && notify_pending_send(ledger_store(d->ledger), daemon__notify, d) < 0)
        log_warn("payment.notify_pending", "error=cannot read the pending notices");
    if (d->generate == NULL)
        return;
    int told = generate_notices_send(d->generate);
    if (told > 0)
        log_info("generate.notices", "told=%d", told);
}

/* ---- the button key --------------------------------------------------- */

/* The personas chosen in chats are in memory (core/persona.h): the
 * adapters start, and every generation finds its persona at once. */
static void daemon__personas_loaded(int rc, void *data)
{
    struct daemon *d = data;
    if (d->state != DAEMON_RUNNING)
        return;
    if (rc < 0) {
        log_error("daemon.personas", "error=%s", hb_strerror(rc));
        d->exit_code = 1;
        daemon__stop(d, "the chat settings could not be read");
        return;
    }
    rc = daemon__adapters_start(d);
    if (rc < 0) {
        d->exit_code = 1;
        daemon__stop(d, "an adapter could not start");
        return;
    }
    service_ready(&d->loop);
    daemon__notices_send(d);
}

static void daemon__key_stored(int rc, const char *value, void *data)
{
    struct daemon *d = data;
    (void)value;
    if (d->state != DAEMON_RUNNING)
        return;
    if (rc < 0) {
        log_error("daemon.button_key", "error=%s", hb_strerror(rc));
        d->exit_code = 1;
        daemon__stop(d, "the button key could not be stored");
        return;
    }
    link_dir_load(&d->core, NULL, NULL); /* answered before the personas: adapters start after */
    rc = persona_dir_load(&d->core, daemon__personas_loaded, d);
    if (rc < 0)
        daemon__personas_loaded(rc, d);
}

/* The key that signs button refs lives in the state table, so buttons keep
 * working across restarts. Adapters start once it is loaded. */
static void daemon__key_loaded(int rc, const char *value, void *data)
{
    struct daemon *d = data;
    if (d->state != DAEMON_RUNNING)
        return;
    if (rc == 0 && value != NULL && strlen(value) == 2 * BUTTON_KEY_SIZE) {
        if (hex_decode(value, d->core.button_key, BUTTON_KEY_SIZE) < 0)
            rc = HB_EPROTO;
        if (rc == 0) {
            daemon__key_stored(0, NULL, d);
            return;
        }
    }
    if (rc != HB_ENOTFOUND && rc != 0)
        log_warn("daemon.button_key", "problem=%s action=new key; older buttons stop working",
                 hb_strerror(rc));
    char text[2 * BUTTON_KEY_SIZE + 1];
    if (RAND_bytes(d->core.button_key, BUTTON_KEY_SIZE) != 1) {
        daemon__key_stored(HB_EIO, NULL, d);
        return;
    }
    hex_encode(d->core.button_key, BUTTON_KEY_SIZE, text);
    rc = state_put(ledger_store(d->ledger), "bot", "button_key", text, daemon__key_stored, d);
    if (rc < 0)
        daemon__key_stored(rc, NULL, d);
}

/* ---- stopping --------------------------------------------------------- */

void daemon__closed_one(void *data)
{
    struct daemon *d = data;
    d->closing--;
}

static void daemon__handle_closed(uv_handle_t *h)
{
    daemon__closed_one(h->data);
}

static void daemon__close_handle(struct daemon *d, uv_handle_t *h)
{
    /* The daemon struct starts zeroed: a handle never initialised has no
     * loop, and closing it would abort inside libuv. */
    if (h->loop == NULL || uv_is_closing(h))
        return;
    h->data = d;
    d->closing++;
    uv_close(h, daemon__handle_closed);
}

/* Close everything; uv_run returns once the last handle is closed. */
static void daemon__close_all(struct daemon *d)
{
    if (d->state == DAEMON_CLOSING)
        return;
    d->state = DAEMON_CLOSING;
    daemon__generate_close(d);
    webhooks_stop(d->webhooks); /* no request reaches a closing adapter */
    for (size_t i = 0; i < d->nadapters; i++) {
        struct adapter *a = d->adapters[i];
        /* An adapter with a free operation stays allocated until it
         * runs, after uv_run; close frees the others. */
        if (a->ops->free != NULL)
            d->closed[d->nclosed++] = a;
        d->closing++;
        a->ops->close(a, daemon__closed_one, d);
    }
    d->nadapters = 0;
    generation_engine_leave(&d->core); /* after the adapters gave their leases up */
    daemon__server_close(d);
    if (d->mirror != NULL) {
        /* Before the HTTP client: it cancels its own request. */
        d->closing++;
        mirror_stop(d->mirror, daemon__closed_one, d);
        d->mirror = NULL;
    }
    if (d->watch != NULL) {
        /* Its handles close as the loop runs on; uv_run waits for them. */
        config_watch_free(d->watch);
        d->watch = NULL;
    }
    if (d->http != NULL) {
        d->closing++;
        http_client_close(d->http, daemon__closed_one, d);
        d->http = NULL;
    }
    /* The ledger goes last: adapters and handlers may still settle credits
     * while they close, and it finishes every queued operation first. */
    if (d->ledger != NULL) {
        apikey_spend_flush(&d->core);
        d->closing++;
        ledger_close(d->ledger, daemon__closed_one, d);
        d->ledger = NULL;
        d->core.ledger = NULL;
    }
    if (d->operator!= NULL) {
        d->closing++;
        operator_close(d->operator, daemon__closed_one, d);
    }
    daemon__close_handle(d, (uv_handle_t *)&d->grace);
    daemon__close_handle(d, (uv_handle_t *)&d->health);
    daemon__close_handle(d, (uv_handle_t *)&d->sig_term);
    daemon__close_handle(d, (uv_handle_t *)&d->sig_int);
    daemon__close_handle(d, (uv_handle_t *)&d->sig_hup);
}

static void daemon__sends_drained(void *data)
{
    struct daemon *d = data;
    if (d->draining > 0 && --d->draining == 0 && d->state == DAEMON_DRAINING) {
        log_info("daemon.drained", NULL);
        daemon__close_all(d);
    }
}

/* The commands finished; then the adapters send what they queued (within
 * the same grace), and only then does everything close. */
static void daemon__drained(void *data)
{
    struct daemon *d = data;
    if (d->state != DAEMON_DRAINING)
        return;
    d->draining = 1; /* held until every drain below was asked */
    for (size_t i = 0; i < d->nadapters; i++) {
        struct adapter *a = d->adapters[i];
        if (a->ops->drain == NULL)
            continue;
        d->draining++;
        a->ops->drain(a, daemon__sends_drained, d);
    }
    daemon__sends_drained(d);
}

static void daemon__grace_expired(uv_timer_t *t)
{
    struct daemon *d = t->data;
    log_warn("daemon.grace_expired",
             "in_flight=%zu note=\"unfinished work is abandoned; its reservations expire and are "
             "refunded\"",
             router_in_flight(d->router));
    daemon__close_all(d);
}

static void daemon__stop(struct daemon *d, const char *reason)
{
    if (d->state != DAEMON_RUNNING)
        return;
    d->state = DAEMON_DRAINING;
    service_stopping();
    log_info("daemon.stopping", "reason=%s in_flight=%zu grace_s=%lld", reason,
             router_in_flight(d->router), (long long)d->config->bot.shutdown_grace);
    for (size_t i = 0; i < d->nadapters; i++)
        d->adapters[i]->ops->stop(d->adapters[i]);
    d->grace.data = d;
    uv_timer_start(&d->grace, daemon__grace_expired,
                   (uint64_t)d->config->bot.shutdown_grace * 1000u, 0);
    /* Stopping the timer first lets a drain that completes at once skip it. */
    router_drain(d->router, daemon__drained, d);
}

static void daemon__signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (signum == SIGHUP) {
        log_info("daemon.sighup", "action=reload");
        service_reloading();
        daemon__reload(d, NULL);
        return;
    }
    if (++d->stop_signals > 1) {
        /* A second signal: the operator does not want to wait.
         * Committed ledger entries are durable; open reservations expire. */
        log_warn("daemon.exit_now", "signal=%s", strsignal(signum));
        _exit(1);
    }
    daemon__stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- run -------------------------------------------------------------- */

/* The daemon's own handles are initialised before anything else can fail,
 * so that every start failure closes the same set of handles as a stop
 * does. A handle whose init failed is never closed (daemon__close_handle). */
static int daemon__handles_init(struct daemon *d)
{
    int rc = uv_timer_init(&d->loop, &d->grace);
    if (rc == 0)
        rc = uv_timer_init(&d->loop, &d->health);
    d->health.data = d;
    if (rc == 0)
        rc = uv_signal_init(&d->loop, &d->sig_term);
    if (rc == 0)
        rc = uv_signal_init(&d->loop, &d->sig_int);
    if (rc == 0)
        rc = uv_signal_init(&d->loop, &d->sig_hup);
    return rc;
}

static int daemon__signals_start(struct daemon *d)
{
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        sigs[i]->data = d;
        int rc = uv_signal_start(sigs[i], daemon__signal, nums[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int daemon_run(const char *config_path)
{
    struct daemon *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return 1;
    int rc = 0;
    int exit_code = 1;
    struct config_problems problems;
    config_problems_init(&problems);
    if (uv_loop_init(&d->loop) != 0) {
        free(d);
        return 1;
    }
    /* A dead pipe on stdout must end the console, not the daemon. */
    signal(SIGPIPE, SIG_IGN);
    d->config_path = strdup(config_path);
    rc = config_load(config_path, &d->config, &problems);
    if (rc < 0 || d->config_path == NULL) {
        config_problems_print(&problems, stderr);
        fprintf(stderr,
                "haibot: %s has problems; not starting. Check it with: haibot check-config -c %s\n",
                config_path, config_path);
        goto out;
    }
    log_configure(d->config->bot.log_level, d->config->bot.log_format == CONFIG_LOG_JSON, NULL);
    struct operator_host oh = {
        .platform_down = daemon__platform_down, .notify = daemon__notify, .data = d};
    d->operator= operator_new(&d->loop, &d->core, &oh);
    if (d->operator== NULL)
        goto out;
    daemon__apply_live(d, d->config);
    d->core.host_ops = &daemon_host_ops;
    d->core.host = d;
    d->router = router_new(&d->core);
    d->core.members = member_dir_new();
    d->core.personas = persona_dir_new();
    if (d->router == NULL || d->core.members == NULL || d->core.personas == NULL ||
        router_access_configure(d->router, d->config) < 0)
        goto out;
    rc = daemon__handles_init(d);
    if (rc < 0)
        goto fail_running;
    const struct config_storage *sc = &d->config->storage;
    bool pg = sc->backend == CONFIG_STORAGE_POSTGRES;
    struct ledger_options lopts = {.backend = pg ? STORE_BACKEND_POSTGRES : STORE_BACKEND_SQLITE,
                                   .path = sc->path,
                                   .url = sc->postgres_url,
                                   .readers =
                                       pg ? (unsigned)sc->postgres_pool - 1 : DAEMON_SQLITE_READERS,
                                   .spin_us = (unsigned)sc->spin_us};
    d->ledger = ledger_new(&d->loop, &lopts, &rc);
    if (d->ledger == NULL) {
        const char *where = pg ? "in PostgreSQL" : sc->path;
        log_error("ledger.open_failed", "where=\"%s\" error=%s", where, hb_strerror(rc));
        fprintf(stderr, "haibot: the ledger %s cannot be opened (%s; see above); not starting\n",
                where, hb_strerror(rc));
        goto fail_running;
    }
    d->core.ledger = d->ledger;
    rc = http_client_new(&d->loop, NULL, &d->http);
    if (rc < 0)
        goto fail_running;
    rc = daemon__generate_start(d);
    if (rc < 0)
        goto fail_running;
    rc = daemon__signals_start(d);
    if (rc < 0)
        goto fail_running;
    rc = daemon__server_start(d);
    if (rc < 0)
        goto fail_running;
    rc = daemon__mirror_start(d);
    if (rc < 0)
        goto fail_running;
    rc = operator_start(d->operator, ledger_store(d->ledger), d->http);
    if (rc < 0)
        goto fail_running;
    struct daemon_methods dm;
    daemon__methods(d->config, &dm);
    d->deposit_text = deposit_text_make(&dm.m, NULL, NULL);
    d->core.deposit_text = d->deposit_text;
    d->watch = config_watch_new(&d->loop, config_path, d->config, daemon__watch_cb, d);
    if (d->watch == NULL) {
        rc = HB_ENOMEM;
        goto fail_running;
    }
    rc = config_watch_start(d->watch);
    if (rc < 0)
        log_warn("config.watch_unavailable", "file=%s error=%s note=edits apply on SIGHUP only",
                 config_path, uv_strerror(rc));
    log_info("daemon.started", "config=%s pid=%d", config_path, (int)getpid());
    rc = state_get(ledger_store(d->ledger), "bot", "button_key", daemon__key_loaded, d);
    if (rc < 0)
        goto fail_running;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    exit_code = d->exit_code;
    goto closed;
fail_running:
    /* Start failed with handles open: close them the normal way. */
    d->state = DAEMON_RUNNING;
    daemon__close_all(d);
    uv_run(&d->loop, UV_RUN_DEFAULT);
closed:
    /* What only goes once the loop stopped (the Discord websocket context). */
    for (size_t i = 0; i < d->nclosed; i++)
        d->closed[i]->ops->free(d->closed[i]);
    d->nclosed = 0;
    daemon__server_free(d);
    if (d->closing != 0)
        log_error("daemon.close_incomplete", "pending=%zu", d->closing);
    rc = uv_loop_close(&d->loop);
    if (rc != 0) {
        log_error("daemon.loop_not_closed", "error=%s", uv_strerror(rc));
        exit_code = exit_code == 0 ? 1 : exit_code;
    } else if (exit_code == 0) {
        log_info("daemon.stopped", NULL);
    }
    goto free_all;
out:
    uv_loop_close(&d->loop);
free_all:
    if (d->router != NULL && router_in_flight(d->router) == 0)
        router_free(d->router);
    member_dir_free(d->core.members);
    persona_dir_free(d->core.personas);
    link_dir_free(d->core.links);
    operator_free(d->operator);
    config_free(d->config);
    free(d->deposit_text);
    config_problems_free(&problems);
    free(d->config_path);
    free(d);
    return exit_code;
}
