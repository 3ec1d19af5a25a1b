/* The platforms' inbound HTTP endpoints on the daemon's server. Each
 * adapter says which routes it serves (adapters/adapter.h: Discord's
 * interactions endpoint, Telegram's webhook) and checks and answers their
 * requests itself; this module puts the routes on the server and answers
 * 503 in their place once the adapters close.
 *
 * Ownership: the server and the adapters are borrowed. The webhooks object
 * is route data of the server, so it is freed only after server_free();
 * webhooks_stop() (inside the loop, before the adapters close) makes the
 * routes answer 503 from then on, so no request reaches a closed adapter. */
#ifndef HB_WEBHOOKS_H
#define HB_WEBHOOKS_H

struct adapter;
struct server;
struct webhooks;

/** An object for the endpoints on srv (none registered yet), or NULL when
 *  out of memory. */
struct webhooks *webhooks_new(struct server *srv);

/** Serve the routes adapter a asks for through its routes operation (none
 *  is fine). Returns 0, HB_EINVAL (the adapter's endpoint lacks a key or
 *  secret, or a is NULL), HB_EEXISTS (a route is taken: added twice) or
 *  HB_ENOMEM. */
int webhooks_adapter_add(struct webhooks *wh, struct adapter *a);

/** From now on answer 503 and forget the adapters (they are closing). */
void webhooks_stop(struct webhooks *wh);

/** Free, after server_free(). NULL is fine. */
void webhooks_free(struct webhooks *wh);

#endif
