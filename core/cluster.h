/* Several daemons over one ledger: who is alive, and who holds a duty.
 *
 * Work is split without a coordinator of our own, through the shared store
 * itself: a lease is a row of the state table ("lease" namespace) naming
 * its holder and when it runs out, taken and renewed by a store job that
 * reads and writes it in one transaction. The store's write transactions
 * run one at a time across daemons (storage/pg.c), so two daemons can never
 * both take a free lease.
 *
 * Every daemon holds the lease "run:<its run id>" and renews it as its
 * heartbeat; a run whose lease ran out is gone, and its jobs are another
 * daemon's to void (core/generate_recover.c). The Telegram poller is held
 * through the lease "telegram:<bot id>" (adapters/telegram/poll.c).
 *
 * Clocks: a lease's end is written and judged by one clock, the store's
 * (the PostgreSQL server's, read in the lease's own transaction), so the
 * daemons' host clocks may disagree: none takes a lease another holds, nor
 * a live daemon for dead. Lease ends given to callers are turned into
 * this daemon's clock. Each holder counts its own lease from before it
 * asked, on its monotonic clock (adapters/telegram/poll.c). A store with
 * no clock (SQLite: one daemon) uses the daemon's.
 *
 * A daemon alone on its ledger (SQLite) has no cluster: core->cluster is
 * NULL and nothing here runs. */
#ifndef HB_CLUSTER_H
#define HB_CLUSTER_H

#include "base/clock.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct store;
struct cluster;

#define CLUSTER_LEASE_NS "lease"
#define CLUSTER_RUN_MAX 64 /* a run id, NUL included */

/** Called after a lease attempt: rc 0 when this daemon holds it now (until
 *  its end), HB_EBUSY when another run holds it (holder names it),
 *  HB_ECANCELED when the cluster was freed meanwhile, or a storage error.
 *  until is when the holder's lease ends (ms since the epoch by this
 *  daemon's clock; 0 when not known). Always called once the attempt was queued. */
typedef void (*cluster_lease_cb)(int rc, const char *holder, int64_t until, void *data);

/** A daemon's part in a shared ledger: run is its run id (copied),
 *  lease_ms how long its leases last. Starts the heartbeat at once (the
 *  first beat is written before this returns to the loop), and calls
 *  tick(tick_data) after every beat (the daemon voids dead runs' jobs
 *  there); tick may be NULL. */
struct cluster *cluster_new(uv_loop_t *loop, struct store *store, const char *run, int64_t lease_ms,
                            const struct clock *clock, void (*tick)(void *data), void *tick_data);

/** Stop the heartbeat and free (its timer closes on the loop). The run's
 *  heartbeat lease is given up as the store's last job (store_submit_last),
 *  once store_stop finished every other: the others take this run for gone
 *  then, not a lease later. Other leases it held run out by themselves
 *  unless dropped (cluster_lease_drop). NULL is ignored. */
void cluster_free(struct cluster *c);

/** Hear at once of what another daemon changed that every daemon keeps in
 *  memory, instead of at the next beat's read (store_listen): cb(what,
 *  data) with what store_listen names ("apikeys", "state:feature", ...),
 *  or "*" (read everything again) after the listening connection was lost
 *  and made again. Stops with
 *  cluster_free. 0, HB_ESTATE when already listening, or store_listen's
 *  error (UV_ENOTSUP on a store no other daemon writes). */
int cluster_on_change(struct cluster *c, void (*cb)(const char *what, void *data), void *data);

const char *cluster_run(const struct cluster *c);
int64_t cluster_lease_ms(const struct cluster *c);

/** How long a lease taken now lasts: the lease less the time the one
 *  taking over needs once it ran out (a tenth, at most 1 s), so that a
 *  dead holder is replaced within cluster_lease_ms. A holder counts its
 *  lease's end by this. */
int64_t cluster_lease_term_ms(const struct cluster *c);

/** Take or renew the lease `name` for this daemon's run. */
int cluster_lease_take(struct cluster *c, const char *name, cluster_lease_cb cb, void *data);

/** Give up the lease `name` if this run holds it (on a clean stop), so
 *  another daemon takes over at once. cb may be NULL. */
int cluster_lease_drop(struct cluster *c, const char *name, cluster_lease_cb cb, void *data);

/** Whether the run `run` is alive as of the leases read last (refreshed
 *  with every heartbeat): its heartbeat lease has not run out. This run is
 *  always alive. */
bool cluster_run_alive(const struct cluster *c, const char *run);

/** Whether the list of live runs has been read at least once. */
bool cluster_runs_known(const struct cluster *c);

/** Whether this run's own lease may have run out: no beat renewed it
 *  within a lease row's term (cluster_lease_term_ms), counted from when
 *  the last renewing beat was asked, so never later than the store's own
 *  end of the row. Another daemon may then judge this run gone and take
 *  its held jobs: this one must not act on them meanwhile. */
bool cluster_fenced(const struct cluster *c);

/** Whether this daemon may judge other runs gone (cluster_run_alive false
 *  meaning dead): the runs were read, it is not fenced, and, after a gap
 *  in its own beats (a database outage, a stalled host), it has beaten
 *  again for a whole lease, so that every live daemon had time to renew
 *  its lease after the same outage. Before that, a run whose lease ran
 *  out may be a live daemon that has not beaten again yet. */
bool cluster_judging(const struct cluster *c);

/** How many times a beat found this run's own lease had run out before it
 *  renewed it (cluster_fenced had been true): the daemon's held jobs may
 *  have been taken over meanwhile, so it reads them again. */
unsigned cluster_lapses(const struct cluster *c);

#endif
