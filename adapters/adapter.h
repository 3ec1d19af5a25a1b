/* The one interface between the daemon and its platform adapters.
 *
 * An adapter turns platform events into neutral invocations (core/command.h)
 * and hands them to the daemon through its host; the daemon routes them.
 * The daemon drives every adapter through the same small vtable. */
#ifndef HB_ADAPTER_H
#define HB_ADAPTER_H

#include "core/command.h"
#include "core/notify.h"

struct adapter;

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

struct adapter_ops {
    const char *name;
    /** Start taking events. Returns 0 or a negative error. */
    int (*start)(struct adapter *a);
    /** Stop taking new events; replies to work in flight still go out. */
    void (*stop)(struct adapter *a);
    /** Close every handle and free the adapter; cb runs when it is gone. */
    void (*close)(struct adapter *a, void (*cb)(void *data), void *data);
    /** Tell someone something unprompted (a payment booked, a generation
     *  voided at restart). May be NULL: the platform cannot. `to` and `msg`
     *  are borrowed for the call; the adapter copies what it keeps. The
     *  message goes through the same paced send path as replies (per-chat
     *  queues, rate-limit buckets), so it never jumps the queue. With
     *  to->channel_id set it goes there; otherwise to the member's DM
     *  (to->user_id). Returns 0 once queued (delivery is best effort and
     *  logged), HB_EINVAL when the target cannot be reached on this
     *  platform, or another negative code. Stage, ephemeral and buttons are
     *  ignored; images may be. */
    int (*notify)(struct adapter *a, const struct notify_target *to,
                  const struct reply_msg *msg);
};

struct adapter {
    const struct adapter_ops *ops;
    void *impl;
};

#endif
