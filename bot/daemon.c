#include "bot/daemon.h"

#include "adapters/console/console.h"
#include "bot/config.h"
#include "bot/config_watch.h"
#include "bot/router.h"
#include "core/core.h"
#include "core/error.h"
#include "core/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define DAEMON_MAX_ADAPTERS 4

enum daemon_state {
    DAEMON_RUNNING = 0,
    DAEMON_DRAINING = 1, /* refusing new commands, waiting for work in flight */
    DAEMON_CLOSING = 2,  /* closing handles; uv_run returns when all are closed */
};

struct daemon {
    uv_loop_t loop;
    enum daemon_state state;
    char *config_path;
    struct config *config;       /* the running configuration */
    struct config_watch *watch;
    uv_signal_t sig_term;
    uv_signal_t sig_int;
    uv_signal_t sig_hup;
    uv_timer_t grace;            /* bounds the drain */
    struct core core;
    struct router *router;
    struct adapter *adapters[DAEMON_MAX_ADAPTERS];
    size_t nadapters;
    size_t adapters_live;        /* started and not ended */
    size_t closing;              /* close operations still under way */
    int exit_code;
};

static void daemon__stop(struct daemon *d, const char *reason);

/* ---- configuration ---------------------------------------------------- */

/* Apply the settings that take effect without a restart. */
static void daemon__apply_live(struct daemon *d, const struct config *cfg)
{
    log_configure(cfg->bot.log_level, cfg->bot.log_format == CONFIG_LOG_JSON, NULL);
    d->core.bot_name = cfg->bot.name;
    for (size_t i = 0; i < d->nadapters; i++) {
        if (strcmp(d->adapters[i]->ops->name, "console") == 0)
            console_options_update(d->adapters[i], cfg->console.user, cfg->console.admin);
    }
}

struct daemon_reload_report {
    char *text;
    size_t len;
    size_t restart;  /* changes that need a restart */
    size_t live;     /* changes applied now */
};

static void daemon__change(const struct config_change *change, void *data)
{
    struct daemon_reload_report *rep = data;
    if (change->live)
        rep->live++;
    else
        rep->restart++;
    log_info("config.changed", "key=%s applies=%s", change->key, change->live ? "now" : "after_restart");
    char line[256];
    int n = snprintf(line, sizeof(line), "\n  %s: %s", change->key,
                     change->live ? "applied" : "takes effect after a restart");
    if (n <= 0)
        return;
    char *grown = realloc(rep->text, rep->len + (size_t)n + 1);
    if (grown == NULL)
        return;
    memcpy(grown + rep->len, line, (size_t)n + 1);
    rep->text = grown;
    rep->len += (size_t)n;
}

/* The watcher accepted a new file: swap it in. Takes ownership of cfg. When
 * r is not NULL an admin asked for the reload and gets the report. */
static void daemon__config_new(struct daemon *d, struct config *cfg, struct reply *r)
{
    struct daemon_reload_report rep = {0};
    config_diff(d->config, cfg, daemon__change, &rep);
    struct config *old = d->config;
    d->config = cfg;
    daemon__apply_live(d, cfg);
    config_free(old);
    log_info("config.reloaded", "live_changes=%zu restart_changes=%zu", rep.live, rep.restart);
    if (r != NULL) {
        if (rep.live + rep.restart == 0)
            reply_text(r, true, "bot.conf reloaded: nothing changed.");
        else
            reply_text(r, true, "bot.conf reloaded: %zu change(s).%s", rep.live + rep.restart,
                       rep.text != NULL ? rep.text : "");
        reply_finish(r);
    }
    free(rep.text);
}

static void daemon__watch_changed(void *data, struct config *cfg)
{
    daemon__config_new(data, cfg, NULL);
}

struct daemon_reload_req {
    struct daemon *d;
    struct reply *reply;
};

static void daemon__reload_done(void *data, struct config *cfg,
                                const struct config_problems *problems)
{
    struct daemon_reload_req *req = data;
    if (cfg != NULL) {
        daemon__config_new(req->d, cfg, req->reply);
    } else if (req->reply != NULL) {
        char *text = config_problems_text(problems);
        reply_text(req->reply, true, "bot.conf has problems; still running on the previous settings:\n%s",
                   text != NULL ? text : "(out of memory)");
        free(text);
        reply_finish(req->reply);
    }
    free(req);
}

static void daemon__reload(struct daemon *d, struct reply *r)
{
    struct daemon_reload_req *req = calloc(1, sizeof(*req));
    if (req == NULL) {
        if (r != NULL) {
            reply_text(r, true, "Out of memory; the reload did not run.");
            reply_finish(r);
        }
        return;
    }
    req->d = d;
    req->reply = r;
    config_watch_reload(d->watch, daemon__reload_done, req);
}

static void daemon__host_reload(void *host, struct reply *r)
{
    daemon__reload(host, r);
}

static const struct core_host_ops daemon_host_ops = {.reload = daemon__host_reload};

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
    if (d->adapters_live > 0)
        d->adapters_live--;
    if (d->adapters_live == 0)
        daemon__stop(d, "no adapter is left running");
}

static int daemon__adapters_start(struct daemon *d)
{
    const struct config *cfg = d->config;
    struct adapter_host host = {
        .dispatch = daemon__dispatch, .ended = daemon__adapter_ended, .data = d};
    if (cfg->discord.enabled)
        log_warn("adapter.unavailable", "adapter=discord reason=\"this build has no Discord adapter yet\"");
    if (cfg->telegram.enabled)
        log_warn("adapter.unavailable", "adapter=telegram reason=\"this build has no Telegram adapter yet\"");
    if (cfg->console.enabled) {
        struct console_options opts = {.user = cfg->console.user,
                                       .admin = cfg->console.admin,
                                       .image_dir = cfg->console.image_dir,
                                       .in_fd = 0,
                                       .out_fd = 1};
        struct adapter *a = console_new(&d->loop, &opts, &host);
        if (a == NULL)
            return HB_ENOMEM;
        d->adapters[d->nadapters++] = a;
    }
    if (d->nadapters == 0) {
        log_error("daemon.no_adapter", "hint=\"enable [console], [discord] or [telegram] in %s\"",
                  d->config_path);
        return HB_ECONFIG;
    }
    for (size_t i = 0; i < d->nadapters; i++) {
        int rc = d->adapters[i]->ops->start(d->adapters[i]);
        if (rc < 0) {
            log_error("adapter.start_failed", "adapter=%s error=\"%s\"", d->adapters[i]->ops->name,
                      hb_strerror(rc));
            return rc;
        }
        d->adapters_live++;
    }
    return 0;
}

/* ---- stopping --------------------------------------------------------- */

static void daemon__closed_one(void *data)
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
    if (uv_is_closing(h))
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
    for (size_t i = 0; i < d->nadapters; i++) {
        d->closing++;
        d->adapters[i]->ops->close(d->adapters[i], daemon__closed_one, d);
    }
    d->nadapters = 0;
    if (d->watch != NULL) {
        d->closing++;
        config_watch_close(d->watch, daemon__closed_one, d);
        d->watch = NULL;
    }
    daemon__close_handle(d, (uv_handle_t *)&d->grace);
    daemon__close_handle(d, (uv_handle_t *)&d->sig_term);
    daemon__close_handle(d, (uv_handle_t *)&d->sig_int);
    daemon__close_handle(d, (uv_handle_t *)&d->sig_hup);
}

static void daemon__drained(void *data)
{
    struct daemon *d = data;
    log_info("daemon.drained", NULL);
    daemon__close_all(d);
}

static void daemon__grace_expired(uv_timer_t *t)
{
    struct daemon *d = t->data;
    log_warn("daemon.grace_expired",
             "in_flight=%zu note=\"unfinished work is abandoned; its reservations expire and are refunded\"",
             router_in_flight(d->router));
    daemon__close_all(d);
}

static void daemon__stop(struct daemon *d, const char *reason)
{
    if (d->state != DAEMON_RUNNING)
        return;
    d->state = DAEMON_DRAINING;
    log_info("daemon.stopping", "reason=\"%s\" in_flight=%zu grace_s=%d", reason,
             router_in_flight(d->router), d->config->bot.shutdown_grace);
    for (size_t i = 0; i < d->nadapters; i++)
        d->adapters[i]->ops->stop(d->adapters[i]);
    d->grace.data = d;
    uv_timer_start(&d->grace, daemon__grace_expired, (uint64_t)d->config->bot.shutdown_grace * 1000u, 0);
    /* Stopping the timer first lets a drain that completes at once skip it. */
    router_drain(d->router, daemon__drained, d);
}

static void daemon__signal(uv_signal_t *s, int signum)
{
    struct daemon *d = s->data;
    if (signum == SIGHUP) {
        log_info("daemon.sighup", "action=reload");
        daemon__reload(d, NULL);
        return;
    }
    if (d->state != DAEMON_RUNNING) {
        /* A second request to stop: the operator does not want to wait.
         * Committed ledger entries are durable; open reservations expire. */
        log_warn("daemon.exit_now", "signal=%s", strsignal(signum));
        _exit(1);
    }
    daemon__stop(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- run -------------------------------------------------------------- */

static int daemon__signals_start(struct daemon *d)
{
    uv_signal_t *sigs[] = {&d->sig_term, &d->sig_int, &d->sig_hup};
    int nums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        int rc = uv_signal_init(&d->loop, sigs[i]);
        if (rc < 0)
            return rc;
        sigs[i]->data = d;
        rc = uv_signal_start(sigs[i], daemon__signal, nums[i]);
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
    d->config = config_load(config_path, &problems);
    if (d->config == NULL || d->config_path == NULL) {
        config_problems_print(&problems, stderr);
        fprintf(stderr, "haibot: %s has problems; not starting. Check it with: haibot check-config -c %s\n",
                config_path, config_path);
        goto out;
    }
    log_configure(d->config->bot.log_level, d->config->bot.log_format == CONFIG_LOG_JSON, NULL);
    config_file_check_mode(config_path);
    d->core.bot_name = d->config->bot.name;
    d->core.host_ops = &daemon_host_ops;
    d->core.host = d;
    d->router = router_new(&d->core);
    if (d->router == NULL)
        goto out;
    uv_timer_init(&d->loop, &d->grace);
    rc = daemon__signals_start(d);
    if (rc < 0)
        goto fail_running;
    d->watch = config_watch_new(&d->loop, config_path, daemon__watch_changed, d);
    if (d->watch == NULL) {
        log_warn("config.watch_unavailable", "file=%s note=\"edits apply on SIGHUP only\"", config_path);
    }
    log_info("daemon.started", "config=%s pid=%d", config_path, (int)getpid());
    rc = daemon__adapters_start(d);
    if (rc < 0)
        goto fail_running;
    uv_run(&d->loop, UV_RUN_DEFAULT);
    exit_code = 0;
    goto closed;
fail_running:
    /* Start failed with handles open: close them the normal way. */
    d->state = DAEMON_RUNNING;
    daemon__close_all(d);
    uv_run(&d->loop, UV_RUN_DEFAULT);
closed:
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
    config_free(d->config);
    config_problems_free(&problems);
    free(d->config_path);
    free(d);
    return exit_code;
}
