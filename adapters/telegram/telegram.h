/* The Telegram adapter: Bot API long polling in, paced Bot API calls out.
 *
 * It polls getUpdates on the daemon's HTTP client, turns each update into a
 * neutral invocation (core/command.h) and hands it to the host; replies come
 * back through per-update reply handles and leave through a send queue per
 * chat that keeps Telegram's pace (about one message per second in a chat,
 * twenty a minute in a group, thirty a second overall) and honours 429
 * retry_after without dropping or reordering anything.
 *
 * The getUpdates offset lives in the state table (core/state.h, namespace
 * "telegram"). An update is confirmed only once what it caused is safe:
 * sent, or a row in the store's outbox written in the same transaction as
 * the offset (outbox.c). A restart loses nothing; it repeats at most the
 * sends that were in flight when the process died. Telegram Stars deposits
 * (/deposit, pre-checkout, successful payments, /admin refund) are handled
 * here, against the ledger in struct core. */
#ifndef HB_TELEGRAM_H
#define HB_TELEGRAM_H

#include "adapters/adapter.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct core;
struct http_client;

/* telegram_options.outbox_off: no outbox rows at all, as before the
 * outbox. BEFORE: the adapter as it was then: the offset written to the
 * store after each poll's updates were handled, the next poll waiting for
 * that write. NOWAIT: the offset written later, the next poll waiting for
 * nothing (no reply is safe across a kill). */
#define TELEGRAM_OUTBOX_BEFORE 1
#define TELEGRAM_OUTBOX_NOWAIT 2

/** Settings. Strings are copied by telegram_new(). Zero fields take the
 *  default named on each; the pacing fields exist so tests and benchmarks
 *  can run faster than Telegram's limits while keeping the same rules. */
struct telegram_options {
    const char *token;            /* bot token (required; registered as a log secret) */
    const char *api_base;         /* NULL: https://api.telegram.org */
    int64_t poll_timeout_s;       /* getUpdates long-poll timeout; 0: 30 */
    unsigned poll_limit;          /* updates per getUpdates, 1..100; 0: 100 */
    const char *admins;           /* "123, 456": user ids with admin rights; may be NULL */
    const char *stars_packages;   /* "50:500, 100:1100": stars:credits offered by /deposit */
    uint64_t chat_interval_ms;    /* spacing of sends in a private chat; 0: 1000 */
    uint64_t group_interval_ms;   /* spacing of sends in a group; 0: 3000 (20 a minute) */
    uint64_t global_per_s;        /* sends per second overall; 0: 30 */
    uint64_t retry_after_unit_ms; /* length of one retry_after second; 0: 1000 */
    uint64_t backoff_min_ms;      /* first back-off after an error or an empty answer; 0: 1000 */
    uint64_t backoff_max_ms;      /* longest back-off; 0: 60000 */
    unsigned max_inflight;        /* queued sends in flight at once; 0: 100 (a poll's worth) */
    size_t queue_max;             /* polling pauses while this many sends are queued or this
                                     many outbox rows wait; 0: 1000 */
    int pacing_off;               /* benchmarks: no per-chat or global pacing at all */
    int outbox_off;               /* benchmarks, the figures the outbox is measured against:
                                     TELEGRAM_OUTBOX_BEFORE or TELEGRAM_OUTBOX_NOWAIT; 0: the outbox */
    unsigned pipeline;            /* JSON calls in flight per connection (HTTP/1.1
                                     pipelining, net/http_pipe.h); 0: 8 */
    int pipeline_off;             /* every call its own libcurl transfer */
    int webhook;                  /* updates arrive through telegram_update_feed: no getUpdates */
    const char *webhook_url;      /* webhook mode: setWebhook to this URL at start; NULL or "":
                                     the operator sets the webhook */
    const char *webhook_secret;   /* the secret_token given to setWebhook (registered as a log
                                     secret); may be NULL */
};

/** A Telegram adapter on loop, calling the API through http (borrowed; it
 *  must outlive the adapter), reaching the ledger through core (borrowed).
 *  Returns NULL on bad options or out of memory. */
struct adapter *telegram_new(uv_loop_t *loop, struct http_client *http, struct core *core,
                             const struct telegram_options *opts, const struct adapter_host *host);

/** Replace the admin list and the Stars packages (a live config reload).
 *  Returns 0, or HB_EINVAL when a list does not parse (nothing changes). */
int telegram_options_update(struct adapter *a, const char *admins, const char *stars_packages);

/** Handle one update given as JSON text, as a webhook would deliver it. The
 *  same path the poller takes (deduplicated by update_id). Returns 0, or
 *  HB_EPROTO for a malformed update (logged and skipped). */
int telegram_update_feed(struct adapter *a, const char *json, size_t len);

/** Parse "123, 456" into ids (at most cap). Returns the count, or HB_EINVAL. */
int telegram_ids_parse(const char *text, int64_t *ids, size_t cap);

/** One Stars package: stars paid, credits received. */
struct telegram_package {
    int64_t stars;
    int64_t credits;
};

/** Parse "50:500, 100:1100" (at most cap). Returns the count, or HB_EINVAL. */
int telegram_packages_parse(const char *text, struct telegram_package *out, size_t cap);

/** Split text into pieces of at most max UTF-16 code units (Telegram's
 *  measure), at a newline or space when one is near, never inside a UTF-8
 *  sequence. Returns the byte length of the first piece (all of it when it
 *  fits). */
size_t telegram_text_cut(const char *text, size_t len, size_t max);

#endif
