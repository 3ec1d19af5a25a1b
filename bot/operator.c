#include "bot/operator.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "bot/config.h"
#include "core/alert.h"
#include "core/contest.h"
#include "core/contest_schedule.h"
#include "core/core.h"
#include "core/feature.h"
#include "core/holders.h"
#include "core/ledger.h"
#include "core/notice.h"
#include "core/persona.h"
#include "core/revenue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Batched upvote notices, and contests past their end, are looked at every minute. */
#define OPERATOR_NOTICE_TICK_MS 60000

struct operator
{
    uv_loop_t *loop;
    struct core *core;
    struct operator_host host;
    struct http_client *http;
    struct features *features;
    struct revenue *revenue;
    struct contests *contests;
    struct holders *holders;
    struct notices *notices;
    struct alerts *alerts;
    struct notice_options notice_opts;
    struct alert_rules rules;
    bool alerts_on;
    int64_t interval_ms;
    bool console;
    char *discord_channel; /* heap copies: a reload frees the old config */
    char *telegram_chat;
    char *webhook_url;
    bool started;
    uv_timer_t alert_timer;
    uv_timer_t notice_timer;
    int closing; /* handles still closing */
    void (*close_cb)(void *data);
    void *close_data;
};

struct operator* operator_new(uv_loop_t *loop, struct core *core, const struct operator_host *host)
{
    struct operator* op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->loop = loop;
    op->core = core;
    if (host != NULL)
        op->host = *host;
    op->features = features_new();
    op->revenue = revenue_new();
    op->contests = contests_new(core);
    op->holders = holders_new(core);
    if (op->features == NULL || op->revenue == NULL || op->contests == NULL ||
        op->holders == NULL) {
        features_free(op->features);
        revenue_free(op->revenue);
        contests_free(op->contests);
        holders_free(op->holders);
        free(op);
        return NULL;
    }
    core->features = op->features;
    core->revenue = op->revenue;
    core->contests = op->contests;
    core->holders = op->holders;
    return op;
}

static char *operator__dup(char *old, const char *s)
{
    free(old);
    return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

static void operator__alert_timer(uv_timer_t *t);

void operator_configure(struct operator* op, const struct config *cfg)
{
    const struct config_features *f = &cfg->features;
    features_global_set(op->features, FEATURE_CHAT, f->chat);
    features_global_set(op->features, FEATURE_IMAGES, f->images);
    features_global_set(op->features, FEATURE_PAYMENTS, f->payments);
    features_global_set(op->features, FEATURE_APPROVALS, f->approvals);

    /* [revenue] was checked at load: a split that does not parse here
     * cannot happen, and would leave every charge in system:revenue. */
    struct revenue_split split;
    char err[256];
    if (revenue_split_parse(cfg->revenue.shares, cfg->revenue.remainder, cfg->revenue.adjustable,
                            &split, err, sizeof(err)) < 0)
        log_error("revenue.config", "error=%s", err);
    revenue_configure(op->revenue, &split);
    struct holders_config *hc = malloc(sizeof(*hc));
    if (hc != NULL && holders_config_parse(cfg->revenue.holder_roles, cfg->revenue.holder_members,
                                           (enum holders_every)cfg->revenue.holder_payout, hc, err,
                                           sizeof(err)) == 0)
        holders_configure(op->holders, hc);
    else if (hc != NULL)
        log_error("holders.config", "error=%s", err);
    free(hc);

    /* [contest] was checked at load too. */
    struct contest_rules rules;
    if (contest_rules_parse(cfg->contest.winners, cfg->contest.split, &rules, err, sizeof(err)) ==
            0 &&
        contest_weights_parse(cfg->contest.weight_roles, cfg->contest.weight_holders, &rules, err,
                              sizeof(err)) == 0)
        contests_configure(op->contests, &rules);
    else
        log_error("contest.config", "error=%s", err);
    struct contest_schedule *sched = malloc(sizeof(*sched));
    if (sched != NULL &&
        contest_schedule_parse(cfg->contest.schedule, cfg->contest.schedule_period,
                               cfg->contest.schedule_prize, sched, err, sizeof(err)) == 0) {
        if (contests_schedule(op->contests, sched) < 0)
            log_error("contest.schedule", "error=%s", hb_strerror(HB_ENOMEM));
    } else if (sched != NULL) {
        log_error("contest.schedule", "error=%s", err);
    }
    free(sched);

    op->notice_opts.low_balance = cfg->notices.low_balance;
    op->notice_opts.upvotes = cfg->notices.upvotes;
    op->notice_opts.upvote_interval_ms = cfg->notices.upvote_interval * 1000;
    if (op->notices != NULL)
        notices_configure(op->notices, &op->notice_opts);

    const struct config_alerts *a = &cfg->alerts;
    op->alerts_on = a->enabled;
    op->interval_ms = a->interval * 1000;
    op->console = a->console;
    op->discord_channel = operator__dup(op->discord_channel, a->discord_channel);
    op->telegram_chat = operator__dup(op->telegram_chat, a->telegram_chat);
    op->webhook_url = operator__dup(op->webhook_url, a->webhook_url);
    op->rules = (struct alert_rules){.window_ms = a->window * 1000,
                                     .min_samples = a->min_samples,
                                     .repeat_after_ms = a->repeat_after * 1000,
                                     .credits_per_day = a->credits_per_day,
                                     .provider_error_pct = a->provider_error_percent,
                                     .filter_hit_pct = a->filter_hit_percent,
                                     .latency_p95_ms = a->latency_p95_ms,
                                     .storage_errors = a->storage_errors,
                                     .payments = a->payments,
                                     .platform_down_ms = a->platform_down * 1000};
    if (op->alerts != NULL)
        alerts_configure(op->alerts, &op->rules);
    if (op->started && !uv_is_closing((uv_handle_t *)&op->alert_timer)) {
        if (op->alerts_on)
            uv_timer_start(&op->alert_timer, operator__alert_timer, (uint64_t)op->interval_ms,
                           (uint64_t)op->interval_ms);
        else
            uv_timer_stop(&op->alert_timer);
    }
}

/* ---- alerts --------------------------------------------------------------- */

static void operator__read(void *data, struct alert_sample *s)
{
    struct operator* op = data;
    alert_sample_from_metrics(s);
    if (op->host.platform_down != NULL)
        s->platform_down = op->host.platform_down(op->host.data, s->platform_down_name,
                                                  sizeof(s->platform_down_name));
}

/* Every destination configured gets the alert; a failing one does not
 * keep it from the others. */
static void operator__send(void *data, const struct alert_event *ev)
{
    struct operator* op = data;
    if (op->console)
        log_warn(ev->firing ? "alert.fired" : "alert.resolved", "rule=%s text=%s",
                 alert_rule_name(ev->rule), ev->text);
    struct notify_target to;
    if (op->discord_channel != NULL && op->host.notify != NULL) {
        memset(&to, 0, sizeof(to));
        to.platform = COMMAND_PLATFORM_DISCORD;
        to.scope = COMMAND_SCOPE_GROUP;
        snprintf(to.channel_id, sizeof(to.channel_id), "%s", op->discord_channel);
        int rc = op->host.notify(op->host.data, &to, ev->text);
        if (rc < 0)
            log_warn("alert.not_sent", "destination=discord error=%s", hb_strerror(rc));
    }
    if (op->telegram_chat != NULL && op->host.notify != NULL) {
        memset(&to, 0, sizeof(to));
        to.platform = COMMAND_PLATFORM_TELEGRAM;
        to.scope = COMMAND_SCOPE_GROUP;
        snprintf(to.scope_id, sizeof(to.scope_id), "%s", op->telegram_chat);
        snprintf(to.channel_id, sizeof(to.channel_id), "%s", op->telegram_chat);
        int rc = op->host.notify(op->host.data, &to, ev->text);
        if (rc < 0)
            log_warn("alert.not_sent", "destination=telegram error=%s", hb_strerror(rc));
    }
    if (op->webhook_url != NULL && op->http != NULL) {
        int rc = alert_webhook_post(op->http, op->webhook_url, ev);
        if (rc < 0)
            log_warn("alert.not_sent", "destination=webhook error=%s", hb_strerror(rc));
    }
}

void operator_alerts_eval(struct operator* op)
{
    if (op->alerts_on)
        alerts_eval(op->alerts);
}

static void operator__alert_timer(uv_timer_t *t)
{
    operator_alerts_eval(t->data);
}

static void operator__notice_timer(uv_timer_t *t)
{
    struct operator* op = t->data;
    notices_tick(op->notices);
    /* Read the contests again (another daemon may have started or stopped
     * one) and end those past their end. */
    int rc = contests_load(op->contests, NULL, NULL);
    if (rc < 0)
        log_warn("contest.load_failed", "error=%s", hb_strerror(rc));
    holders_tick(op->holders); /* a payout period that ended is paid */
    /* With several daemons on one ledger, what an admin switched, split or
     * chose on another (a group's features, its revenue override, a chat's
     * persona) counts here within the minute. A daemon alone has nothing
     * to read. */
    struct store *store = op->core->ledger != NULL ? ledger_store(op->core->ledger) : NULL;
    if (op->core->cluster != NULL && store != NULL) {
        rc = features_refresh(op->features, store, NULL, NULL);
        if (rc < 0 && rc != HB_EBUSY)
            log_warn("features.refresh_failed", "error=%s", hb_strerror(rc));
        rc = revenue_refresh(op->revenue, store, NULL, NULL);
        if (rc < 0 && rc != HB_EBUSY)
            log_warn("revenue.refresh_failed", "error=%s", hb_strerror(rc));
        rc = op->core->personas != NULL ? persona_dir_refresh(op->core, NULL, NULL) : 0;
        if (rc < 0 && rc != HB_EBUSY)
            log_warn("persona.refresh_failed", "error=%s", hb_strerror(rc));
    }
}

/* ---- lifecycle ------------------------------------------------------------ */

int operator_start(struct operator* op, struct store *store, struct http_client *http)
{
    op->http = http;
    int rc = features_load(op->features, store, NULL, NULL);
    if (rc < 0)
        log_warn("features.load_failed", "error=%s", hb_strerror(rc));
    rc = revenue_load(op->revenue, store, NULL, NULL);
    if (rc < 0)
        log_warn("revenue.load_failed", "error=%s", hb_strerror(rc));
    /* Contests past their end while the daemon was down end now. */
    rc = contests_load(op->contests, NULL, NULL);
    if (rc < 0)
        log_warn("contest.load_failed", "error=%s", hb_strerror(rc));
    /* A holder payout due while the daemon was down is paid now. */
    holders_tick(op->holders);
    /* Other daemons on the same ledger read and move the same balances. */
    op->notice_opts.shared = op->core->cluster != NULL;
    op->notices = notices_new(store, op->host.notify, op->host.data, &op->notice_opts);
    op->alerts = alerts_new(&op->core->clock, &op->rules, operator__read, operator__send, op);
    if (op->notices == NULL || op->alerts == NULL)
        return HB_ENOMEM;
    op->core->notices = op->notices;
    rc = uv_timer_init(op->loop, &op->alert_timer);
    if (rc < 0)
        return rc;
    op->alert_timer.data = op;
    rc = uv_timer_init(op->loop, &op->notice_timer);
    if (rc < 0) {
        uv_close((uv_handle_t *)&op->alert_timer, NULL);
        return rc;
    }
    op->notice_timer.data = op;
    op->started = true;
    uv_timer_start(&op->notice_timer, operator__notice_timer, OPERATOR_NOTICE_TICK_MS,
                   OPERATOR_NOTICE_TICK_MS);
    if (op->alerts_on) {
        uv_timer_start(&op->alert_timer, operator__alert_timer, (uint64_t)op->interval_ms,
                       (uint64_t)op->interval_ms);
        alerts_eval(op->alerts); /* the first sample: the window starts now */
    }
    return 0;
}

static void operator__closed(uv_handle_t *h)
{
    struct operator* op = h->data;
    if (--op->closing == 0 && op->close_cb != NULL)
        op->close_cb(op->close_data);
}

void operator_close(struct operator* op, void (*cb)(void *data), void *data)
{
    op->close_cb = cb;
    op->close_data = data;
    op->core->notices = NULL; /* no notice from work still settling */
    if (!op->started) {
        if (cb != NULL)
            cb(data);
        return;
    }
    op->started = false;
    op->closing = 2;
    uv_close((uv_handle_t *)&op->alert_timer, operator__closed);
    uv_close((uv_handle_t *)&op->notice_timer, operator__closed);
}

void operator_free(struct operator* op)
{
    if (op == NULL)
        return;
    if (op->core->features == op->features)
        op->core->features = NULL;
    if (op->core->notices == op->notices)
        op->core->notices = NULL;
    if (op->core->revenue == op->revenue)
        op->core->revenue = NULL;
    if (op->core->contests == op->contests)
        op->core->contests = NULL;
    if (op->core->holders == op->holders)
        op->core->holders = NULL;
    features_free(op->features);
    revenue_free(op->revenue);
    contests_free(op->contests);
    holders_free(op->holders);
    notices_free(op->notices);
    alerts_free(op->alerts);
    free(op->discord_channel);
    free(op->telegram_chat);
    free(op->webhook_url);
    free(op);
}
