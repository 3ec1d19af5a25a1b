/* The command router: finds the command, validates its options against the
 * table, checks access, runs the handler, and counts work in flight so the
 * daemon can drain before it stops. */
#ifndef HB_ROUTER_H
#define HB_ROUTER_H

#include "core/command.h"

#include <stddef.h>

struct config;
struct core;
struct router;

/** A router for handlers that reach `core` (borrowed; must outlive it). */
struct router *router_new(struct core *core);

/** Free the router. Work in flight must have finished (router_in_flight 0).
 *  NULL is fine. */
void router_free(struct router *r);

/** Check every later invocation against cfg's [access] rules (who may use
 *  the bot, core/access.h); a refused one reaches no handler. cfg is read
 *  during the call only. Returns 0, or HB_ENOMEM with the previous rules
 *  kept. Called at start and on every reload (the rules are live). */
int router_access_configure(struct router *r, const struct config *cfg);

/** Route an invocation. The router takes over inv's option strings and its
 *  reply handle (inv itself is copied, so it may live on the caller's
 *  stack). With args != NULL the options come from text: when inv->name is
 *  empty, args begins with the command name. Every path ends in exactly one
 *  reply_finish() on the caller's reply handle. */
void router_dispatch(struct router *r, struct invocation *inv, const char *args);

/** Invocations whose handler has not finished its reply yet. */
size_t router_in_flight(const struct router *r);

/** Refuse new invocations from now on ("shutting down") and call cb once no
 *  work is in flight (at once if none is). */
void router_drain(struct router *r, void (*cb)(void *data), void *data);

#endif
