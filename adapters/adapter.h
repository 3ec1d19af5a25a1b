/* The one interface between the daemon and its platform adapters.
 *
 * An adapter turns platform events into neutral invocations (core/command.h)
 * and hands them to the daemon through its host; the daemon routes them.
 * The daemon drives every adapter through the same small vtable: it never
 * calls an adapter's own functions and never asks which adapter it holds.
 *
 * Lifecycle: made by the adapter's constructor (bot/adapters.c builds each
 * from its config section), start, stop (drain), close inside the loop,
 * and, when the adapter has one, the free operation after uv_run()
 * returned (an adapter that owns a libwebsockets context can only let go
 * of it there). */
#ifndef HB_ADAPTER_H
#define HB_ADAPTER_H

#include "core/command.h"
#include "core/notify.h"

struct adapter;
struct server_request;

/** What the daemon gives an adapter. */
struct adapter_host {
    /** Route an invocation. `args` is the argument text of a text platform
     *  (the whole line after the slash, command name included, when
     *  inv->name is empty), or NULL when inv->opts are already typed. The
     *  callee takes over the option strings and the reply handle. */
    void (*dispatch)(void *data, struct invocation *inv, const char *args);
    /** The adapter has no more input and will not produce any (console end
     *  of input, a fatal close code). */
    void (*ended)(void *data, struct adapter *a);
    void *data;
};

/** How one part of an adapter is doing, for /healthz. */
enum adapter_health_state {
    ADAPTER_HEALTH_UP = 0,   /* working */
    ADAPTER_HEALTH_STARTING, /* on its way (connecting, resuming) */
    ADAPTER_HEALTH_DOWN,     /* stopped for good */
};

struct adapter_health {
    char name[64]; /* component name, e.g. "discord:shard:3" */
    enum adapter_health_state state;
    const char *detail; /* static text, or NULL when up */
};

/** An HTTP endpoint the adapter serves on the daemon's server (a
 *  platform's webhook). The route is static and outlives the adapter. */
struct adapter_route {
    const char *method;         /* "POST" */
    const char *path;           /* "/interactions/discord" */
    const char *const *headers; /* request headers serve reads, NULL-terminated */
    /** Check and handle one request, answering it exactly once with
     *  server_respond() (net/server.h). Only called while the adapter is
     *  open: the daemon answers 503 itself once it closes adapters. */
    void (*serve)(struct adapter *a, struct server_request *req);
};

struct adapter_ops {
    const char *name;               /* also the adapter's config section */
    enum command_platform platform; /* whose members it reaches (notices) */
    /** Start taking events. Returns 0 or a negative error. */
    int (*start)(struct adapter *a);
    /** Stop taking new events; replies to work in flight still go out. */
    void (*stop)(struct adapter *a);
    /** Stopping, after the commands in flight finished: send what is
     *  queued (at the platform's pace); cb once nothing is left. May be
     *  NULL: nothing to wait for. close keeps whatever is still queued. */
    void (*drain)(struct adapter *a, void (*cb)(void *data), void *data);
    /** Close every handle, inside the loop; cb runs when nothing of the
     *  adapter is left on the loop. Without a free operation the adapter
     *  is freed by then; with one, it stays until free. */
    void (*close)(struct adapter *a, void (*cb)(void *data), void *data);
    /** After close's cb ran and uv_run() returned: free what could only go
     *  once the loop stopped, and the adapter. May be NULL: close freed it. */
    void (*free)(struct adapter *a);
    /** Apply the settings that may change while running (a config reload).
     *  options points to the same options struct the adapter's constructor
     *  takes; fields that cannot change live are ignored. Returns 0, or a
     *  negative code when they do not apply (nothing changed). May be NULL:
     *  nothing of the adapter changes live. */
    int (*reload)(struct adapter *a, const void *options);
    /** The i-th part of the adapter whose health counts on its own (a
     *  Discord shard). Returns false past the last one. May be NULL: only
     *  the adapter as a whole, which the daemon tracks. */
    bool (*health)(struct adapter *a, size_t i, struct adapter_health *out);
    /** The HTTP endpoints this adapter serves as configured: sets *routes
     *  to a static array and returns its length (0: none), or a negative
     *  code (HB_EINVAL) when an endpoint is configured but what checks its
     *  requests (a key, a secret) is missing or malformed. May be NULL. */
    int (*routes)(struct adapter *a, const struct adapter_route **routes);
    /** Tell someone something unprompted (a payment booked, a generation
     *  voided at restart). May be NULL: the platform cannot. `to` and `msg`
     *  are borrowed for the call; the adapter copies what it keeps. The
     *  message goes through the same paced send path as replies (per-chat
     *  queues, rate-limit buckets), so it never jumps the queue. With
     *  to->channel_id set it goes there; otherwise to the member's DM
     *  (to->user_id). Returns 0 once queued (delivery is best effort and
     *  logged), HB_EINVAL when the target cannot be reached on this
     *  platform, or another negative code. Stage and ephemeral are
     *  ignored; buttons and an image go along (Telegram; Discord, an
     *  upload with the last piece; the console, a saved file and numbered
     *  buttons). */
    int (*notify)(struct adapter *a, const struct notify_target *to, const struct reply_msg *msg);
};

struct adapter {
    const struct adapter_ops *ops;
    void *impl;
    /* Set by the adapter before it calls its host's ended: 0 for an end
     * that is no failure (end of input), HB_EPERM when the platform
     * refused the bot's token (the daemon then exits non-zero). */
    int end_error;
};

#endif
