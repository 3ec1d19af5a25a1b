/* Alerts to operators: rules over the daemon's own counters, evaluated on
 * a timer, each firing once when its condition starts to hold and saying
 * when it clears.
 *
 * The evaluator reads a struct alert_sample (cumulative counters and the
 * platforms' state) through a function the daemon provides, keeps the
 * samples of the last window, and compares the window's deltas with the
 * rules. It owns no timer and no socket: alerts_eval() runs one evaluation
 * at the clock's time (the daemon calls it from a uv_timer, tests call it
 * after moving a manual clock), and every message goes to a send function.
 *
 * Rate limit: a rule fires at most once per repeat_after_ms. A crossing
 * that comes sooner is held, and fires when the limit allows if its
 * condition still holds then; a held crossing that clears before is
 * dropped (counted in haibot_alerts_suppressed_total). A clear is said
 * only for a firing that was said. */
#ifndef HB_ALERT_H
#define HB_ALERT_H

#include "base/clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct http_client;

enum alert_rule {
    ALERT_CREDITS_DAY = 0, /* credits spent since 00:00 UTC above a threshold */
    ALERT_PROVIDER_ERRORS, /* failed generations, % of finished, over the window */
    ALERT_FILTER_HITS,     /* filter checks that blocked or redacted, %, over the window */
    ALERT_LATENCY_P95,     /* provider time to first byte, p95 over the window */
    ALERT_STORAGE_ERRORS,  /* a failed storage commit in the window */
    ALERT_PAYMENTS,        /* a failed payment webhook or an unmatched payment in the window */
    ALERT_PLATFORM_DOWN,   /* a Discord shard or the Telegram poller down too long */
    ALERT_RULE_COUNT
};

/** "credits_per_day", "provider_errors", "filter_hits", "latency_p95",
 *  "storage_errors", "payments", "platform_down". */
const char *alert_rule_name(enum alert_rule r);

#define ALERT_LATENCY_BUCKETS 17 /* bounds of the latency histogram, +Inf included */

/** What the evaluator reads at each evaluation. Counters are cumulative
 *  (since the process started); the evaluator takes differences. */
struct alert_sample {
    double credits_spent;                         /* credits charged for generations */
    double generations_ok;                        /* generations completed */
    double generations_failed;                    /* generations failed */
    double filter_checks;                         /* texts the content filter checked */
    double filter_hits;                           /* of those, blocked or redacted */
    double latency_bounds[ALERT_LATENCY_BUCKETS]; /* upper bounds, s, ascending; last +Inf */
    double latency_counts[ALERT_LATENCY_BUCKETS]; /* observations per bucket (not cumulative) */
    size_t nlatency;                              /* buckets used */
    double storage_errors;                        /* failed storage commits */
    double payment_failures;                      /* payment webhooks refused or failed */
    double payments_unmatched;                    /* payments that named no known account */
    bool platform_down;          /* a Discord shard or the Telegram poller is down now */
    char platform_down_name[64]; /* which one ("discord:shard:0", "telegram") */
};

/** Fill a sample. */
typedef void (*alert_read_fn)(void *data, struct alert_sample *out);

/** One alert message: a rule fired (firing) or cleared (!firing). text is
 *  a line for people; value and threshold the numbers behind it. */
struct alert_event {
    enum alert_rule rule;
    bool firing;
    double value;
    double threshold;
    int64_t at_ms;
    const char *text;
};

/** Deliver an alert message (to the log, a channel, a webhook). */
typedef void (*alert_send_fn)(void *data, const struct alert_event *ev);

/** The rules. A threshold of 0 (or false) turns its rule off. */
struct alert_rules {
    int64_t window_ms;          /* how far back rates and the p95 look */
    int64_t min_samples;        /* events a rate or the p95 needs in the window */
    int64_t repeat_after_ms;    /* a rule fires at most once per this */
    int64_t credits_per_day;    /* credits */
    int64_t provider_error_pct; /* percent */
    int64_t filter_hit_pct;     /* percent */
    int64_t latency_p95_ms;     /* ms */
    bool storage_errors;
    bool payments;
    int64_t platform_down_ms; /* ms */
};

struct alerts;

/** An evaluator reading through read and telling through send. NULL on no
 *  memory. The alert state families of /metrics are declared here. */
struct alerts *alerts_new(const struct clock *clock, const struct alert_rules *rules,
                          alert_read_fn read, alert_send_fn send, void *data);

void alerts_free(struct alerts *a);

/** Replace the rules (a reload). A rule turned off clears silently. */
void alerts_configure(struct alerts *a, const struct alert_rules *rules);

/** Evaluate every rule now (by the clock). */
void alerts_eval(struct alerts *a);

/** Whether rule r is firing (announced and not cleared). */
bool alerts_firing(const struct alerts *a, enum alert_rule r);

/** Fill s from the process's metrics (base/metrics.h): everything but the
 *  platforms' state, which the daemon knows. */
void alert_sample_from_metrics(struct alert_sample *s);

/** The JSON body a webhook destination receives for ev: {"alert":...,
 *  "state":"firing"|"resolved","value":...,"threshold":...,"at":ms,
 *  "text":...}. Heap string the caller frees; NULL on no memory. */
char *alert_event_json(const struct alert_event *ev);

/** POST ev as JSON to url through http (fire and forget: failures are
 *  logged with the status, never the URL's query). Returns 0 once started. */
int alert_webhook_post(struct http_client *http, const char *url, const struct alert_event *ev);

#endif
