/* The operator's controls, wired to the running daemon: feature switches
 * (core/feature.h), revenue shares (core/revenue.h), member notices (core/notice.h) and alerts
 * (core/alert.h) with their destinations and timers. */
#ifndef HB_OPERATOR_H
#define HB_OPERATOR_H

#include "core/notify.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct config;
struct core;
struct http_client;
struct store;

/** What the daemon lends the operator's controls. */
struct operator_host {
    /** Whether a part of a chat platform (a Discord shard, the Telegram
     *  poller) is not up now; its name in name (cap bytes). */
    bool (*platform_down)(void *data, char *name, size_t cap);
    notify_fn notify; /* to a member, group or channel (core/notify.h) */
    void *data;       /* passed to both */
};

struct operator;

/** The controls for core (borrowed: its features and notices pointers are
 *  set here and cleared by operator_free). http may be NULL until
 *  operator_start. NULL on no memory. */
struct operator* operator_new(uv_loop_t *loop, struct core *core, const struct operator_host *host);

/** Apply [features], [revenue], [notices] and [alerts] (at start and on each reload).
 *  cfg is read during the call and its strings kept only while it is the
 *  running config (the daemon swaps configs after this call returns). */
void operator_configure(struct operator* op, const struct config *cfg);

/** Start on the open store: read the groups' switches and revenue
 *  overrides, begin notices and
 *  the alert timer. Returns 0 or a negative code. */
int operator_start(struct operator* op, struct store *store, struct http_client *http);

/** Evaluate the alert rules now (the timer does this every interval). */
void operator_alerts_eval(struct operator* op);

/** Stop the timers; cb(data) once their handles are closed. */
void operator_close(struct operator* op, void (*cb)(void *data), void *data);

/** Free it (after operator_close's callback, or when never started).
 *  NULL is fine. */
void operator_free(struct operator* op);

#endif
