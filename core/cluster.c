/* Several daemons over one ledger (core/cluster.h): the heartbeat and the
 * leases, each a state row "holder until" taken in one store job. */
#include "core/cluster.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "base/util.h"
#include "core/state.h"
#include "storage/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLUSTER_NAME_MAX 128

struct cluster {
    struct store *store;
    char run[CLUSTER_RUN_MAX];
    int64_t lease_ms;
    int64_t term_ms; /* how long a lease row lasts: cluster_new says why */
    struct clock clock;
    uv_timer_t timer;
    struct map *alive; /* run ids whose heartbeat lease had not run out, as last read */
    bool known;        /* alive has been read once */
    void (*tick)(void *data);
    void *tick_data;
    unsigned refs;                  /* the timer and the jobs in flight */
    bool freeing;                   /* cluster_free was called: free once refs reach 0 */
    bool beating;                   /* a beat is in flight: the timer does not start another */
    struct store_listener *changes; /* cluster_on_change's; NULL until then */
    /* The store's clock less this daemon's, as the last lease job found
     * it (0 when the store has no clock): lease ends are the store's
     * times, and this turns them into this daemon's. */
    int64_t skew;
    /* The same, measured when the lease job's answer came back (the time
     * it waited for the store counted against the store's clock): what
     * judging other runs by uses, since it never makes a live run look
     * gone early. */
    int64_t judge_skew;
    struct map *reading; /* the runs found alive so far by a read of several pages */
    /* This daemon's own heartbeat, by its clock: when the beat in flight
     * was asked, when the last one that renewed was asked, since when the
     * beats have renewed without a gap longer than a lease row lasts
     * (0: since the first), and how many such gaps there were. */
    int64_t beat_at;
    int64_t ok_at;
    int64_t healthy_since;
    unsigned lapses;
};

struct lease_job {
    struct store_job job;
    struct cluster *c;
    char name[CLUSTER_NAME_MAX];
    char holder[CLUSTER_RUN_MAX]; /* the run holding it, when another */
    int64_t until;                /* when the holder's lease ends (the store's clock) */
    int64_t now;                  /* this daemon's clock when asked */
    int64_t skew;                 /* the store's clock less now, when read */
    int64_t store_now;            /* the store's clock when read (now without one) */
    bool drop;
    bool last; /* the run's own row, given up as the store's last job */
    cluster_lease_cb cb;
    void *data;
};

static void cluster__unref(struct cluster *c)
{
    if (--c->refs > 0 || !c->freeing)
        return;
    map_free(c->alive);
    free(c);
}

/* "holder until" into its parts; false when the value is not one. */
static bool cluster__parse(const char *value, char holder[CLUSTER_RUN_MAX], int64_t *until)
{
    return sscanf(value, "%63s %" SCNd64, holder, until) == 2;
}

static int cluster__lease_run(struct store_txn *txn, struct store_job *job)
{
    struct lease_job *lj = container_of(job, struct lease_job, job);
    struct cluster *c = lj->c;
    /* One clock judges every daemon's leases: the store's (PostgreSQL
     * server's) when it has one, so hosts whose clocks disagree never both
     * hold a lease nor take a live daemon for dead. */
    int64_t now = lj->now; /* kept when the store has no clock */
    int rc = store_txn_clock_ms(txn, &now);
    if (rc < 0 && rc != UV_ENOTSUP)
        return rc;
    lj->skew = now - lj->now;
    lj->store_now = now;
    char *value = NULL;
    rc = store_txn_state_get(txn, CLUSTER_LEASE_NS, lj->name, &value);
    if (rc < 0 && rc != HB_ENOTFOUND)
        return rc;
    char holder[CLUSTER_RUN_MAX] = "";
    int64_t until = 0;
    bool held = rc == 0 && cluster__parse(value, holder, &until);
    free(value);
    bool mine = held && strcmp(holder, c->run) == 0;
    if (held && !mine && until > now) {
        snprintf(lj->holder, sizeof(lj->holder), "%s", holder);
        lj->until = until;
        return HB_EBUSY;
    }
    lj->until = lj->drop ? 0 : now + c->term_ms;
    if (lj->drop)
        return mine ? store_txn_state_put(txn, CLUSTER_LEASE_NS, lj->name, NULL, now) : 0;
    char text[CLUSTER_RUN_MAX + 24];
    snprintf(text, sizeof(text), "%s %" PRId64, c->run, now + c->term_ms);
    return store_txn_state_put(txn, CLUSTER_LEASE_NS, lj->name, text, now);
}

static void cluster__lease_done(struct store_job *job, int rc)
{
    struct lease_job *lj = container_of(job, struct lease_job, job);
    struct cluster *c = lj->c;
    if (rc == 0 || rc == HB_EBUSY) {
        c->skew = lj->skew;
        c->judge_skew = lj->store_now - clock_now_ms(&c->clock);
    }
    if (lj->last && rc == 0)
        log_info("cluster.left",
                 "run=%s note=\"the others take this run for gone at their next "
                 "heartbeat\"",
                 c->run);
    /* Always answered (HB_ECANCELED once freeing): callers hold references.
     * The lease's end by this daemon's clock. */
    if (lj->cb != NULL)
        lj->cb(c->freeing ? HB_ECANCELED : rc, rc == HB_EBUSY ? lj->holder : c->run,
               lj->until != 0 ? lj->until - lj->skew : 0, lj->data);
    free(lj);
    cluster__unref(c);
}

static int cluster__lease(struct cluster *c, const char *name, bool drop, bool last,
                          cluster_lease_cb cb, void *data)
{
    if (c == NULL || c->freeing || strlen(name) >= CLUSTER_NAME_MAX)
        return HB_EINVAL;
    struct lease_job *lj = calloc(1, sizeof(*lj));
    if (lj == NULL)
        return HB_ENOMEM;
    lj->job.run = cluster__lease_run;
    lj->job.done = cluster__lease_done;
    lj->c = c;
    snprintf(lj->name, sizeof(lj->name), "%s", name);
    lj->now = clock_now_ms(&c->clock);
    lj->drop = drop;
    lj->last = last;
    lj->cb = cb;
    lj->data = data;
    int rc = last ? store_submit_last(c->store, &lj->job) : store_submit(c->store, &lj->job);
    if (rc < 0) {
        free(lj);
        return rc;
    }
    c->refs++;
    return 0;
}

int cluster_lease_take(struct cluster *c, const char *name, cluster_lease_cb cb, void *data)
{
    return cluster__lease(c, name, false, false, cb, data);
}

int cluster_lease_drop(struct cluster *c, const char *name, cluster_lease_cb cb, void *data)
{
    return cluster__lease(c, name, true, false, cb, data);
}

/* ---- The heartbeat ----------------------------------------------------------- */

#define CLUSTER_RUNS_PAGE 1000                     /* heartbeat rows read per store job */
#define CLUSTER_RUNS_END "run;"                    /* after every "run:" key (';' follows ':') */
#define CLUSTER_RUN_FORGET_MS (24 * 3600 * 1000LL) /* a run this long gone: its row goes */

static void cluster__runs_read(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct cluster *c = data;
    if (rc == 0 && !c->freeing) {
        int64_t now = clock_now_ms(&c->clock) + c->judge_skew; /* the store's, if anything late */
        if (c->reading == NULL)
            c->reading = map_new(NULL);
        for (size_t i = 0; c->reading != NULL && i < n; i++) {
            char holder[CLUSTER_RUN_MAX];
            int64_t until = 0;
            /* Keys are "run:<id>", and each run holds its own. */
            bool parsed = cluster__parse(e[i].value, holder, &until);
            if (parsed && until > now)
                map_set(c->reading, e[i].key + 4, (void *)1);
            else if (!parsed || now - until > CLUSTER_RUN_FORGET_MS)
                /* Long gone (its jobs were voided or taken over long
                 * since): its row goes, as listed, so rows of every run
                 * that ever ran do not pile up. */
                state_remove_if(c->store, CLUSTER_LEASE_NS, e[i].key, e[i].value, NULL, NULL);
        }
        /* A full page: the rest is read before anyone is judged gone; if
         * it cannot be, the last whole read stands. */
        int more = c->reading != NULL
                       ? state_list_range_after(c->store, CLUSTER_LEASE_NS, e, n, CLUSTER_RUNS_END,
                                                CLUSTER_RUNS_PAGE, cluster__runs_read, c)
                       : HB_ENOMEM;
        if (more == 0)
            return;
        if (more == HB_ENOTFOUND) {
            map_free(c->alive);
            c->alive = c->reading;
            c->reading = NULL;
            c->known = true;
        }
    }
    map_free(c->reading);
    c->reading = NULL;
    c->beating = false;
    if (!c->freeing && c->tick != NULL && c->known)
        c->tick(c->tick_data);
    cluster__unref(c);
}

static void cluster__beaten(int rc, const char *holder, int64_t until, void *data)
{
    struct cluster *c = data;
    (void)holder;
    (void)until;
    if (c->freeing) {
        c->beating = false;
        return;
    }
    if (rc < 0) {
        log_warn("cluster.heartbeat_failed", "run=%s error=%s", c->run, hb_strerror(rc));
    } else {
        int64_t renewed = clock_now_ms(&c->clock);
        if (c->ok_at != 0 && renewed - c->ok_at >= c->term_ms) {
            /* This run's lease may have run out before this beat renewed
             * it (counted to when the renewal came back: a beat asked in
             * time may have waited past the end): the others may have
             * judged it gone and taken its jobs, and theirs may have run
             * out meanwhile too. */
            c->healthy_since = renewed;
            c->lapses++;
            log_warn("cluster.lapsed", "run=%s gap_ms=%" PRId64, c->run, renewed - c->ok_at);
        }
        c->ok_at = c->beat_at;
    }
    c->refs++;
    if (state_list_range(c->store, CLUSTER_LEASE_NS, "run:", CLUSTER_RUNS_END, CLUSTER_RUNS_PAGE,
                         cluster__runs_read, c) < 0) {
        c->beating = false;
        cluster__unref(c);
    }
}

/* The run's heartbeat lease: "run:<run id>". */
static void cluster__run_lease(const struct cluster *c, char name[CLUSTER_NAME_MAX])
{
    snprintf(name, CLUSTER_NAME_MAX, "run:%s", c->run);
}

static void cluster__beat(uv_timer_t *t)
{
    struct cluster *c = t->data;
    if (c->beating || c->freeing)
        return;
    char name[CLUSTER_NAME_MAX];
    cluster__run_lease(c, name);
    c->beating = true;
    c->beat_at = clock_now_ms(&c->clock);
    if (cluster_lease_take(c, name, cluster__beaten, c) < 0)
        c->beating = false;
}

struct cluster *cluster_new(uv_loop_t *loop, struct store *store, const char *run, int64_t lease_ms,
                            const struct clock *clock, void (*tick)(void *data), void *tick_data)
{
    if (run == NULL || strlen(run) >= CLUSTER_RUN_MAX || lease_ms <= 0)
        return NULL;
    struct cluster *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->alive = map_new(NULL);
    if (c->alive == NULL || uv_timer_init(loop, &c->timer) < 0) {
        map_free(c->alive);
        free(c);
        return NULL;
    }
    c->store = store;
    snprintf(c->run, sizeof(c->run), "%s", run);
    c->lease_ms = lease_ms;
    /* A lease row lasts the lease less what the one taking over needs
     * once it ran out (its timer's slack, a store round trip, its first
     * poll): a tenth, at most a second. So a dead holder is replaced
     * within the configured lease, not just after it. */
    c->term_ms = lease_ms - (lease_ms / 10 < 1000 ? lease_ms / 10 : 1000);
    if (clock != NULL)
        c->clock = *clock;
    c->tick = tick;
    c->tick_data = tick_data;
    c->timer.data = c;
    c->refs = 1; /* the timer */
    /* A beat a third of the lease: two may be lost before the run looks
     * gone. */
    uint64_t every = (uint64_t)(lease_ms / 3 > 0 ? lease_ms / 3 : 1);
    uv_timer_start(&c->timer, cluster__beat, 0, every);
    log_info("cluster.joined", "run=%s lease_ms=%" PRId64, c->run, lease_ms);
    return c;
}

static void cluster__timer_closed(uv_handle_t *h)
{
    cluster__unref(h->data);
}

void cluster_free(struct cluster *c)
{
    if (c == NULL)
        return;
    /* Its heartbeat row is given up as the store's last job, once every
     * other job of this daemon is done (the ledger closes last of all):
     * the others then take over at once what this run leaves (Discord's
     * outbox rows, jobs held for approval) instead of a lease later.
     * Given up here, the run would be gone to the others while this
     * daemon's jobs still settle (generate_close finishes after this). A
     * crash, or a store that cannot take the job, leaves the row to run
     * out by itself. */
    char name[CLUSTER_NAME_MAX];
    cluster__run_lease(c, name);
    (void)cluster__lease(c, name, true, true, NULL, NULL);
    c->freeing = true;
    store_listener_close(c->changes);
    c->changes = NULL;
    uv_close((uv_handle_t *)&c->timer, cluster__timer_closed);
}

int cluster_on_change(struct cluster *c, void (*cb)(const char *what, void *data), void *data)
{
    if (c->changes != NULL)
        return HB_ESTATE;
    int rc = 0;
    c->changes = store_listen(c->store, c->timer.loop, cb, data, &rc);
    if (c->changes != NULL)
        log_info("cluster.listening", "run=%s", c->run);
    return rc;
}

const char *cluster_run(const struct cluster *c)
{
    return c->run;
}

int64_t cluster_lease_ms(const struct cluster *c)
{
    return c->lease_ms;
}

int64_t cluster_lease_term_ms(const struct cluster *c)
{
    return c->term_ms;
}

bool cluster_run_alive(const struct cluster *c, const char *run)
{
    return strcmp(run, c->run) == 0 || map_get(c->alive, run) != NULL;
}

bool cluster_runs_known(const struct cluster *c)
{
    return c->known;
}

bool cluster_fenced(const struct cluster *c)
{
    return c->ok_at == 0 || clock_now_ms(&c->clock) - c->ok_at >= c->term_ms;
}

bool cluster_judging(const struct cluster *c)
{
    int64_t now = clock_now_ms(&c->clock);
    return c->known && !cluster_fenced(c) &&
           (c->healthy_since == 0 || now - c->healthy_since >= c->lease_ms);
}

unsigned cluster_lapses(const struct cluster *c)
{
    return c->lapses;
}
