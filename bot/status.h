/* Health and metrics over the HTTP server: GET /healthz and GET /metrics.
 *
 * /healthz answers 200 with a small JSON object of every component's state
 * (storage, each adapter, each provider, each payment method), or 503 when
 * an essential one is down. Storage is probed on every request (a tiny
 * durable write through the store's thread, so a stuck database, a full disk
 * or a read-only one shows); the other components report their state with
 * status_component_set().
 *
 * /metrics answers the registry of base/metrics.h in the Prometheus text
 * format; with a bearer token configured, only to requests that carry it. */
#ifndef HB_STATUS_H
#define HB_STATUS_H

#include <stdbool.h>

struct server;
struct status;
struct ledger;

enum status_state { STATUS_DOWN = 0, STATUS_UP = 1, STATUS_STARTING = 2 };

/** Probe storage: call done(rc, arg) once, later, from the loop; rc 0 when
 *  storage answers. Returns 0, or a negative code (storage is down; done
 *  is not called). */
typedef int (*status_probe_fn)(void *data, void (*done)(int rc, void *arg), void *arg);

struct status_options {
    const char *metrics_token;     /* bearer token for /metrics (copied); NULL: open */
    status_probe_fn storage_probe; /* NULL: storage is not reported */
    void *storage_probe_data;
};

/** Register /healthz and /metrics on srv (borrowed; it must outlive the
 *  status, which is freed after the loop has run out, as the server is).
 *  Returns NULL on no memory or when the routes are taken. */
struct status *status_new(struct server *srv, const struct status_options *opts);

/** Free after uv_run() returned (probes still running have completed). */
void status_free(struct status *st);

/** Record a component's state ("console", "provider:openai", "stripe"...).
 *  Essential components that are down turn /healthz into 503. detail may
 *  be NULL; both strings are copied. Returns 0 or HB_ENOMEM. */
int status_component_set(struct status *st, const char *name, bool essential,
                         enum status_state state, const char *detail);

/** A storage probe over the ledger whose pointer is at data (a `struct
 *  ledger **`, so a closed ledger set to NULL reads as down): it commits a
 *  counter in the state table ("health" / "probe"), so storage is up only
 *  while commits succeed. */
int status_probe_ledger(void *data, void (*done)(int rc, void *arg), void *arg);

#endif
