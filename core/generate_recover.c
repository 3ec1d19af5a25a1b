/* Crash recovery: void the reservations of jobs a crash or restart left
 * behind, and tell their members (at once through the host's notify, or
 * with their next generation command).
 *
 * Jobs held for an admin's approval are not voided: their records say
 * "held", and they come back held (generate_approval.c), on one daemon:
 * their record names the run holding them, and only a record whose run is
 * gone is taken over (generate__held_claim), at a start or, on a shared
 * ledger, by the heartbeat's pass.
 *
 * Only jobs of runs that are gone are voided. Each job record carries the
 * id of the run that wrote it; a record of this run is a job still in
 * flight. Alone on its ledger (SQLite's lock keeps a second daemon off the
 * file), every other run is an earlier one, gone. On a shared ledger
 * (core/cluster.h) another run is gone only once its heartbeat lease ran
 * out: its jobs are voided by the first daemon whose heartbeat sees that
 * (generate_recover_orphans), and a void id is the job's own, so a second
 * daemon voiding the same job changes nothing. */
#include "core/generate_internal.h"

#include "core/cluster.h"
#include "core/core.h"
#include "core/messages.h"
#include "core/notify.h"
#include "core/state.h"
#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GEN_RECOVER_PAGE 1000 /* records read per store job; a full page reads on */

const char *generate__run(struct generate *g)
{
    if (g->run[0] == '\0') {
        /* Process id, wall clock and boot-relative clock: no two runs on
         * one host share all three. */
        snprintf(g->run, sizeof(g->run), "run-%lx-%llx-%llx", (long)getpid(),
                 (unsigned long long)time(NULL), (unsigned long long)uv_hrtime());
    }
    return g->run;
}

const char *generate_run(struct generate *g)
{
    return generate__run(g);
}

void job__notice_deliver(struct job *job)
{
    struct generate *g = job->g;
    if (map_remove(g->notices, job->wallet) < 0)
        return;
    job__say(job, REPLY_FINAL, MSG_GEN_INTERRUPTED);
    if (g->core->ledger != NULL)
        state_put(ledger_store(g->core->ledger), GEN_NS_NOTICE, job->wallet, NULL, NULL, NULL);
}

struct recover_op {
    struct generate *g;
    void (*cb)(int rc, size_t voided, void *data);
    void *data;
    size_t pending;
    size_t voided;
    bool orphans; /* a heartbeat's pass: no held job comes back */
    bool resync;  /* this run's lease had run out: its own held records are read again */
};

struct recover_void {
    struct recover_op *op;
    char wallet[WALLET_ACCOUNT_MAX];
    char job[LEDGER_ID_LEN_MAX];
    char *quota; /* what the job counted against the limits (job__quota_record), or NULL */
    unsigned left;
    bool refunded;
    bool unnoted; /* refunded by an expiry: no notice record was written with a void */
};

int generate_notices_send(struct generate *g)
{
    const struct core_host_ops *ops = g->core->host_ops;
    if (ops == NULL || ops->notify == NULL)
        return 0;
    int told = 0;
    struct map_iter it;
    const char *wallet;
    map_iter_init(&it, g->notices);
    while (map_iter_next(&it, &wallet, NULL)) {
        struct notify_target to;
        if (notify_target_from_account(&to, wallet) < 0 ||
            ops->notify(g->core->host, &to, MSG_GEN_INTERRUPTED) < 0) {
            /* No adapter for that platform now: the member hears it with
             * their next generation command. */
            continue;
        }
        log_info("generate.notice_sent", "wallet=%s", wallet);
        if (g->core->ledger != NULL)
            state_put(ledger_store(g->core->ledger), GEN_NS_NOTICE, wallet, NULL, NULL, NULL);
        map_iter_remove(&it);
        told++;
    }
    return told;
}

static void recover__one_done(struct recover_op *op)
{
    if (--op->pending > 0)
        return;
    struct generate *g = op->g;
    /* Tell the members at once where an adapter of their platform runs;
     * the record stays for the others (and for a daemon whose adapters
     * start later: it calls generate_notices_send then). */
    generate_notices_send(g);
    if (op->orphans)
        g->orphans_busy = false;
    if (op->cb != NULL)
        op->cb(0, op->voided, op->data);
    free(op);
    /* The recovery held the engine like a job: closing waits for it. */
    g->njobs--;
    generate__maybe_free(g);
}

static void recover__notice_add(struct generate *g, const char *wallet)
{
    if (map_get(g->notices, wallet) != NULL)
        return;
    struct gen_notice *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return;
    n->since = generate__now(g);
    if (map_set(g->notices, wallet, n) < 0)
        free(n);
}

static void recover__voided(int rc, const struct ledger_result *res, void *data)
{
    struct recover_void *rv = data;
    struct recover_op *op = rv->op;
    struct generate *g = op->g;
    /* Voided now, or released by its timeout meanwhile: either way it was
     * refunded by the restart. Posted or already voided: nothing to say. */
    bool expired = rc == HB_ESTATE && res->reason != NULL && strcmp(res->reason, "expired") == 0;
    if (rc == 0 || expired)
        rv->refunded = true;
    /* A void wrote the member's notice record with it; an expiry did not. */
    if (expired)
        rv->unnoted = true;
    if (--rv->left > 0)
        return;
    struct ledger *ledger = g->core->ledger;
    if (rv->refunded) {
        op->voided++;
        recover__notice_add(g, rv->wallet);
        if (ledger != NULL && rv->unnoted)
            state_put(ledger_store(ledger), GEN_NS_NOTICE, rv->wallet, "1", NULL, NULL);
        log_info("generate.recovered", "job=%s action=voided", rv->job);
        /* Nothing was delivered: the limits give its counts back. */
        generate__quota_release_record(g, rv->wallet, rv->quota);
    }
    if (ledger != NULL)
        state_put(ledger_store(ledger), GEN_NS_JOB, rv->job, NULL, NULL, NULL);
    free(rv->quota);
    free(rv);
    recover__one_done(op);
}

static void recover__claimed(void *data)
{
    recover__one_done(data);
}

/* Whether the run that wrote a record still runs: this one; on a shared
 * ledger, one whose heartbeat has not run out (before the first read of
 * the heartbeats, every run); alone on the ledger, no other. */
static bool recover__run_alive(struct generate *g, const char *run)
{
    if (strcmp(run, generate__run(g)) == 0)
        return true;
    const struct cluster *cl = g->core->cluster;
    return cl != NULL &&
           (!cluster_runs_known(cl) || !cluster_judging(cl) || cluster_run_alive(cl, run));
}

/* A full page of ns: the next one is read too, and the recovery waits for
 * it (state_list_after lists from after the page's last key). */
static void recover__page_on(struct recover_op *op, const char *ns, const struct state_entry *e,
                             size_t n, state_list_cb cb)
{
    struct ledger *ledger = op->g->core->ledger;
    if (ledger == NULL || n < GEN_RECOVER_PAGE)
        return;
    op->pending++;
    if (state_list_after(ledger_store(ledger), ns, e, n, GEN_RECOVER_PAGE, cb, op) != 0)
        op->pending--;
}

static void recover__jobs(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct recover_op *op = data;
    struct generate *g = op->g;
    struct ledger *ledger = g->core->ledger;
    if (rc == 0)
        recover__page_on(op, GEN_NS_JOB, e, n, recover__jobs);
    for (size_t i = 0; rc == 0 && ledger != NULL && i < n; i++) {
        struct recover_void *rv = calloc(1, sizeof(*rv));
        if (rv == NULL)
            break;
        rv->op = op;
        unsigned nres = 0;
        int used = 0;
        char wallet[WALLET_ACCOUNT_MAX] = "";
        char run[64] = ""; /* absent in records written before run ids */
        if (sscanf(e[i].value, "%159s %u %n", wallet, &nres, &used) != 2) {
            nres = 0;
        } else {
            /* Then "run-..." (records since run ids), then what the limits
             * counted (records since durable limits). */
            const char *rest = e[i].value + used;
            int rlen = 0;
            if (strncmp(rest, "run-", 4) == 0 && sscanf(rest, "%63s %n", run, &rlen) == 1)
                rest += rlen;
            if (strncmp(rest, "held ", 5) == 0) {
                /* Held for an admin: not voided but brought back, held
                 * (generate_approval.c), with its reservation, by one
                 * daemon: the first to find its run gone (a record of an
                 * older build, with no run, at a start). */
                bool gone = run[0] != '\0' ? !recover__run_alive(g, run) : !op->orphans;
                /* After a lapse of this run's lease: its own held jobs
                 * that no other daemon took meanwhile come back. */
                if (op->resync && strcmp(run, generate__run(g)) == 0)
                    gone = true;
                op->pending++; /* the recovery is over once it is back */
                if (!gone || generate__held_claim(g, e[i].key, e[i].value, wallet, nres, rest + 5,
                                                  recover__claimed, op) < 0)
                    op->pending--;
                free(rv);
                continue;
            }
            if (*rest != '\0')
                rv->quota = strdup(rest);
        }
        bool alive = run[0] != '\0' && recover__run_alive(g, run);
        if (alive) {
            /* A live run's job, still running: not ours to void. */
            log_debug("generate.recover_skip", "job=%s reason=its run is alive", e[i].key);
            free(rv->quota);
            free(rv);
            continue;
        }
        snprintf(rv->wallet, sizeof(rv->wallet), "%s", wallet);
        snprintf(rv->job, sizeof(rv->job), "%s", e[i].key);
        if (nres == 0) {
            state_put(ledger_store(ledger), GEN_NS_JOB, rv->job, NULL, NULL, NULL);
            free(rv->quota);
            free(rv);
            continue;
        }
        rv->left = nres;
        op->pending++;
        for (unsigned r = 1; r <= nres; r++) {
            char vid[GEN_TRANSFER_ID_MAX], pid[LEDGER_ID_LEN_MAX + 16];
            job__void_id(rv->job, r, vid, sizeof(vid));
            snprintf(pid, sizeof(pid), "%s:r%u", rv->job, r);
            /* The member's notice record commits with the void: a kill
             * right after it cannot leave a refund untold. */
            struct ledger_note note = {.ns = GEN_NS_NOTICE, .key = rv->wallet, .value = "1"};
            if (ledger_transfer_void_noted(ledger, vid, pid, &note, recover__voided, rv) < 0) {
                struct ledger_result none;
                memset(&none, 0, sizeof(none));
                recover__voided(HB_ECANCELED, &none, rv);
            }
        }
    }
    recover__one_done(op);
}

static void recover__notices(int rc, const struct state_entry *e, size_t n, void *data)
{
    struct recover_op *op = data;
    if (rc == 0)
        recover__page_on(op, GEN_NS_NOTICE, e, n, recover__notices);
    for (size_t i = 0; rc == 0 && i < n; i++)
        recover__notice_add(op->g, e[i].key);
    recover__one_done(op);
}

int generate_recover_orphans(struct generate *g, void (*cb)(int rc, size_t voided, void *data),
                             void *data)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL || g->core->cluster == NULL || g->orphans_busy)
        return 0;
    struct recover_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->g = g;
    op->cb = cb;
    op->data = data;
    op->orphans = true;
    op->pending = 1;
    g->njobs++;
    g->orphans_busy = true;
    unsigned lapses = cluster_lapses(g->core->cluster);
    if (lapses != g->lapses_seen) {
        /* This run's lease ran out for a while: another daemon may have
         * taken its held jobs. They are let go here (records and
         * reservations stay) and those still this run's come back. */
        g->lapses_seen = lapses;
        op->resync = true;
        generate__held_let_go(g);
    }
    if (state_list(ledger_store(ledger), GEN_NS_JOB, "", GEN_RECOVER_PAGE, recover__jobs, op) < 0)
        recover__one_done(op);
    return 0;
}

int generate_recover(struct generate *g, void (*cb)(int rc, size_t voided, void *data), void *data)
{
    struct ledger *ledger = g->core->ledger;
    if (ledger == NULL)
        return HB_ECANCELED;
    struct recover_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->g = g;
    op->cb = cb;
    op->data = data;
    op->pending = 2;
    int rc =
        state_list(ledger_store(ledger), GEN_NS_NOTICE, "", GEN_RECOVER_PAGE, recover__notices, op);
    if (rc < 0) {
        free(op);
        return rc;
    }
    g->njobs++;
    generate__decided_load(g); /* before held jobs come back (generate_approval.c) */
    rc = state_list(ledger_store(ledger), GEN_NS_JOB, "", GEN_RECOVER_PAGE, recover__jobs, op);
    if (rc < 0)
        recover__one_done(op);
    return 0;
}
