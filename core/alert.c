#include "core/alert.h"

#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "net/http.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_RING 512        /* samples kept: a window of evaluations */
#define ALERT_DAY_MS 86400000 /* one UTC day */

static const char *const alert_rule_names[ALERT_RULE_COUNT] = {
    "credits_per_day", "provider_errors", "filter_hits",  "latency_p95",
    "storage_errors",  "payments",        "platform_down"};

const char *alert_rule_name(enum alert_rule r)
{
    return (unsigned)r < ALERT_RULE_COUNT ? alert_rule_names[r] : "unknown";
}

struct alert_point {
    int64_t at_ms;
    struct alert_sample s;
};

struct alert_state {
    bool firing;           /* announced and not cleared */
    bool held;             /* the condition holds but the rate limit kept it quiet */
    int64_t last_fired_ms; /* when it last fired; 0: never */
};

struct alerts {
    struct clock clock;
    struct alert_rules rules;
    alert_read_fn read;
    alert_send_fn send;
    void *data;
    struct alert_point *ring; /* ALERT_RING samples, oldest at head */
    size_t head, count;
    int64_t day;         /* the UTC day of day_base; -1: none yet */
    double day_base;     /* credits_spent when that day began (or the first evaluation) */
    double last_credits; /* credits_spent at the last evaluation */
    int64_t down_since;  /* when a platform was first seen down; 0: up */
    struct alert_state state[ALERT_RULE_COUNT];
    struct metrics_family *m_state;      /* gauge {rule}: 1 firing, 0 not */
    struct metrics_family *m_events;     /* counter {rule, state}: fired, resolved */
    struct metrics_family *m_suppressed; /* counter {rule}: crossings the rate limit held */
};

struct alerts *alerts_new(const struct clock *clock, const struct alert_rules *rules,
                          alert_read_fn read, alert_send_fn send, void *data)
{
    struct alerts *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->ring = calloc(ALERT_RING, sizeof(*a->ring));
    if (a->ring == NULL) {
        free(a);
        return NULL;
    }
    if (clock != NULL)
        a->clock = *clock;
    a->read = read;
    a->send = send;
    a->data = data;
    a->day = -1;
    static const char *const l_rule[] = {"rule"};
    static const char *const l_rule_state[] = {"rule", "state"};
    a->m_state = metrics_family_new("haibot_alert_state", "Alert rules firing now (1) or not (0).",
                                    METRICS_GAUGE, l_rule, 1, NULL, 0);
    a->m_events = metrics_family_new("haibot_alerts_total",
                                     "Alert messages sent, by rule and state (fired, resolved).",
                                     METRICS_COUNTER, l_rule_state, 2, NULL, 0);
    a->m_suppressed = metrics_family_new("haibot_alerts_suppressed_total",
                                         "Alert crossings held back by the rate limit, by rule.",
                                         METRICS_COUNTER, l_rule, 1, NULL, 0);
    for (unsigned r = 0; r < ALERT_RULE_COUNT; r++)
        metrics_gauge_set(a->m_state, (const char *[]){alert_rule_names[r]}, 0);
    alerts_configure(a, rules);
    return a;
}

void alerts_free(struct alerts *a)
{
    if (a == NULL)
        return;
    free(a->ring);
    free(a);
}

void alerts_configure(struct alerts *a, const struct alert_rules *rules)
{
    if (rules != NULL)
        a->rules = *rules;
    if (a->rules.min_samples < 1)
        a->rules.min_samples = 1;
}

bool alerts_firing(const struct alerts *a, enum alert_rule r)
{
    return (unsigned)r < ALERT_RULE_COUNT && a->state[r].firing;
}

/* The sample the window starts from: the newest taken at or before
 * now - window, else the oldest kept. NULL when none is kept. */
static const struct alert_sample *alert__baseline(const struct alerts *a, int64_t now)
{
    const struct alert_sample *base = NULL;
    for (size_t i = 0; i < a->count; i++) {
        const struct alert_point *p = &a->ring[(a->head + i) % ALERT_RING];
        if (base == NULL || p->at_ms <= now - a->rules.window_ms)
            base = &p->s;
        else
            break;
    }
    return base;
}

static void alert__keep(struct alerts *a, int64_t now, const struct alert_sample *s)
{
    if (a->count == ALERT_RING) {
        a->head = (a->head + 1) % ALERT_RING;
        a->count--;
    }
    struct alert_point *p = &a->ring[(a->head + a->count) % ALERT_RING];
    p->at_ms = now;
    p->s = *s;
    a->count++;
    /* Drop what the window no longer needs: keep one sample at or before
     * its start. */
    while (a->count > 1) {
        const struct alert_point *next = &a->ring[(a->head + 1) % ALERT_RING];
        if (next->at_ms > now - a->rules.window_ms)
            break;
        a->head = (a->head + 1) % ALERT_RING;
        a->count--;
    }
}

/* The p95 of the window's latency observations by linear interpolation
 * inside the bucket holding it (as Prometheus's histogram_quantile), in
 * seconds; -1 when fewer than min_samples were observed. */
static double alert__p95(const struct alerts *a, const struct alert_sample *now,
                         const struct alert_sample *base)
{
    double delta[ALERT_LATENCY_BUCKETS];
    double total = 0;
    size_t n = now->nlatency;
    if (n == 0 || n > ALERT_LATENCY_BUCKETS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        double b = base != NULL && base->nlatency == n ? base->latency_counts[i] : 0;
        delta[i] = now->latency_counts[i] - b;
        if (delta[i] < 0)
            delta[i] = 0;
        total += delta[i];
    }
    if (total < (double)a->rules.min_samples)
        return -1;
    double rank = 0.95 * total;
    double cum = 0;
    for (size_t i = 0; i < n; i++) {
        if (cum + delta[i] >= rank && delta[i] > 0) {
            double lower = i > 0 ? now->latency_bounds[i - 1] : 0;
            double upper = now->latency_bounds[i];
            if (isinf(upper))
                return lower; /* beyond the last bound: the last bound, as Prometheus */
            return lower + (upper - lower) * (rank - cum) / delta[i];
        }
        cum += delta[i];
    }
    return n > 1 ? now->latency_bounds[n - 2] : -1;
}

/* Send one message and count it. */
static void alert__say(struct alerts *a, enum alert_rule r, bool firing, double value,
                       double threshold, int64_t now, const char *detail)
{
    char text[512];
    snprintf(text, sizeof(text), "%s %s: %s", firing ? "ALERT" : "RESOLVED", alert_rule_names[r],
             detail);
    struct alert_event ev = {.rule = r,
                             .firing = firing,
                             .value = value,
                             .threshold = threshold,
                             .at_ms = now,
                             .text = text};
    metrics_gauge_set(a->m_state, (const char *[]){alert_rule_names[r]}, firing ? 1 : 0);
    metrics_counter_add(a->m_events,
                        (const char *[]){alert_rule_names[r], firing ? "fired" : "resolved"}, 1);
    if (a->send != NULL)
        a->send(a->data, &ev);
}

/* One rule's verdict this evaluation, against its state. */
static void alert__step(struct alerts *a, enum alert_rule r, bool cond, double value,
                        double threshold, int64_t now, const char *detail)
{
    struct alert_state *st = &a->state[r];
    if (cond && !st->firing) {
        if (st->last_fired_ms == 0 || now - st->last_fired_ms >= a->rules.repeat_after_ms) {
            st->firing = true;
            st->held = false;
            st->last_fired_ms = now;
            alert__say(a, r, true, value, threshold, now, detail);
        } else if (!st->held) {
            st->held = true;
            metrics_counter_add(a->m_suppressed, (const char *[]){alert_rule_names[r]}, 1);
            log_info("alert.held", "rule=%s reason=fired less than repeat_after ago",
                     alert_rule_names[r]);
        }
        return;
    }
    if (!cond) {
        st->held = false;
        if (st->firing) {
            st->firing = false;
            alert__say(a, r, false, value, threshold, now, detail);
        }
    }
}

static double alert__pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0;
}

void alerts_eval(struct alerts *a)
{
    if (a == NULL || a->read == NULL)
        return;
    int64_t now = clock_now_ms(&a->clock);
    struct alert_sample s;
    memset(&s, 0, sizeof(s));
    a->read(a->data, &s);
    const struct alert_rules *ru = &a->rules;
    const struct alert_sample *base = alert__baseline(a, now);
    if (base == NULL)
        base = &s; /* the first evaluation: nothing happened in the window yet */
    char detail[256];

    /* Credits since 00:00 UTC (or since the daemon started that day). */
    int64_t day = now / ALERT_DAY_MS;
    if (a->day != day) {
        a->day_base = a->day < 0 ? s.credits_spent : a->last_credits;
        a->day = day;
    }
    a->last_credits = s.credits_spent;
    double spent = s.credits_spent - a->day_base;
    snprintf(detail, sizeof(detail), "credits spent today: %.0f (threshold %lld)", spent,
             (long long)ru->credits_per_day);
    alert__step(a, ALERT_CREDITS_DAY,
                ru->credits_per_day > 0 && spent > (double)ru->credits_per_day, spent,
                (double)ru->credits_per_day, now, detail);

    /* Failed generations over the window. */
    double ok = s.generations_ok - base->generations_ok;
    double failed = s.generations_failed - base->generations_failed;
    double pct = alert__pct(failed, ok + failed);
    snprintf(detail, sizeof(detail),
             "provider errors: %.1f%% of %.0f generations in the last %llds (threshold %lld%%)",
             pct, ok + failed, (long long)(ru->window_ms / 1000),
             (long long)ru->provider_error_pct);
    alert__step(a, ALERT_PROVIDER_ERRORS,
                ru->provider_error_pct > 0 && ok + failed >= (double)ru->min_samples &&
                    pct > (double)ru->provider_error_pct,
                pct, (double)ru->provider_error_pct, now, detail);

    /* Content-filter hits over the window. */
    double checks = s.filter_checks - base->filter_checks;
    double hits = s.filter_hits - base->filter_hits;
    pct = alert__pct(hits, checks);
    snprintf(detail, sizeof(detail),
             "content-filter hits: %.1f%% of %.0f checks in the last %llds (threshold %lld%%)", pct,
             checks, (long long)(ru->window_ms / 1000), (long long)ru->filter_hit_pct);
    alert__step(a, ALERT_FILTER_HITS,
                ru->filter_hit_pct > 0 && checks >= (double)ru->min_samples &&
                    pct > (double)ru->filter_hit_pct,
                pct, (double)ru->filter_hit_pct, now, detail);

    /* Provider latency p95 over the window. */
    double p95 = base == &s ? -1 : alert__p95(a, &s, base);
    snprintf(detail, sizeof(detail),
             "provider latency p95: %.0f ms in the last %llds (threshold %lld ms)",
             p95 < 0 ? 0 : p95 * 1000, (long long)(ru->window_ms / 1000),
             (long long)ru->latency_p95_ms);
    alert__step(a, ALERT_LATENCY_P95,
                ru->latency_p95_ms > 0 && p95 >= 0 && p95 * 1000 > (double)ru->latency_p95_ms,
                p95 < 0 ? 0 : p95 * 1000, (double)ru->latency_p95_ms, now, detail);

    /* Storage errors in the window. */
    double serr = s.storage_errors - base->storage_errors;
    snprintf(detail, sizeof(detail), "storage errors: %.0f in the last %llds", serr,
             (long long)(ru->window_ms / 1000));
    alert__step(a, ALERT_STORAGE_ERRORS, ru->storage_errors && serr > 0, serr, 0, now, detail);

    /* Payment failures and unmatched payments in the window. */
    double pf = s.payment_failures - base->payment_failures;
    double pu = s.payments_unmatched - base->payments_unmatched;
    snprintf(detail, sizeof(detail), "payments: %.0f failed and %.0f unmatched in the last %llds",
             pf, pu, (long long)(ru->window_ms / 1000));
    alert__step(a, ALERT_PAYMENTS, ru->payments && pf + pu > 0, pf + pu, 0, now, detail);

    /* A platform down for too long. */
    if (!s.platform_down)
        a->down_since = 0;
    else if (a->down_since == 0)
        a->down_since = now;
    double down_s = a->down_since != 0 ? (double)(now - a->down_since) / 1000.0 : 0;
    snprintf(detail, sizeof(detail), "%s down for %.0fs (threshold %llds)",
             s.platform_down ? s.platform_down_name : "platform", down_s,
             (long long)(ru->platform_down_ms / 1000));
    alert__step(a, ALERT_PLATFORM_DOWN,
                ru->platform_down_ms > 0 && a->down_since != 0 &&
                    now - a->down_since >= ru->platform_down_ms,
                down_s, (double)ru->platform_down_ms / 1000.0, now, detail);

    alert__keep(a, now, &s);
}

void alert_sample_from_metrics(struct alert_sample *s)
{
    const struct metrics_std *m = metrics_std();
    s->credits_spent = metrics_sum(m->credits_moved, 0, "generation");
    s->generations_ok = metrics_sum(m->generations, 1, "completed");
    s->generations_failed = metrics_sum(m->generations, 1, "failed");
    s->filter_checks = metrics_sum(m->filter_checks, 0, NULL);
    s->filter_hits = metrics_sum(m->filter_hits, 0, NULL);
    s->nlatency = metrics_histogram_merged(m->provider_latency, s->latency_bounds,
                                           s->latency_counts, ALERT_LATENCY_BUCKETS);
    s->storage_errors = metrics_sum(m->storage_errors, 0, NULL);
    s->payment_failures = metrics_sum(m->webhooks, 1, "error") +
                          metrics_sum(m->webhooks, 1, "unavailable") +
                          metrics_sum(m->deposits, 1, "poll_failed");
    s->payments_unmatched =
        metrics_sum(m->webhooks, 1, "unmatched") + metrics_sum(m->deposits, 1, "unmatched");
}

char *alert_event_json(const struct alert_event *ev)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    cJSON_AddStringToObject(o, "alert", alert_rule_name(ev->rule));
    cJSON_AddStringToObject(o, "state", ev->firing ? "firing" : "resolved");
    cJSON_AddNumberToObject(o, "value", isfinite(ev->value) ? ev->value : 0);
    cJSON_AddNumberToObject(o, "threshold", ev->threshold);
    cJSON_AddNumberToObject(o, "at", (double)ev->at_ms);
    cJSON_AddStringToObject(o, "text", ev->text != NULL ? ev->text : "");
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void alert__posted(struct http_request *req, int rc, void *data)
{
    (void)data;
    int status = http_request_status(req);
    if (rc < 0 || status < 200 || status >= 300)
        log_warn("alert.webhook_failed", "status=%d error=%s", status, hb_strerror(rc));
}

#define ALERT_WEBHOOK_TIMEOUT_MS 10000

int alert_webhook_post(struct http_client *http, const char *url, const struct alert_event *ev)
{
    char *body = alert_event_json(ev);
    if (body == NULL)
        return HB_ENOMEM;
    struct http_request *req = http_request_new(http, "POST", url);
    int rc = req == NULL ? HB_EINVAL : 0;
    if (rc == 0)
        rc = http_request_body_set(req, body, strlen(body), "application/json");
    free(body);
    if (rc < 0) {
        http_request_free(req);
        return rc;
    }
    http_request_timeout_set(req, ALERT_WEBHOOK_TIMEOUT_MS, 0);
    return http_request_start(req, alert__posted, NULL);
}
