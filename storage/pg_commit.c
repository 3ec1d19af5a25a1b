/* COMMIT on PostgreSQL (storage/pg.c), and a commit whose answer was lost.
 *
 * The connection can break after the server took the COMMIT and before
 * its answer arrived: the transaction may have committed or not, and the
 * batch's jobs would all be told it failed. So the transaction's id is
 * asked for first (pg_current_xact_id_if_assigned: none when the batch
 * wrote nothing, and so nothing to lose), one round trip more per write
 * transaction (a reader's asks nothing). When the answer is lost, a new
 * connection asks the server what became of that id (pg_xact_status,
 * PostgreSQL 13): committed, and the batch succeeded; aborted, and it
 * failed; still in progress, and it asks again, for a few seconds at
 * most. */
#include "storage/pg_internal.h"

#include "base/error.h"
#include "base/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define PG_OUTCOME_FOR_MS 2000 /* asked for this long at most ... */
#define PG_OUTCOME_WAIT_MS 50  /* ... this long apart */

static const char pg_sql_xact_id[] = "SELECT pg_current_xact_id_if_assigned()::text";
static const char pg_sql_xact_status[] = "SELECT pg_xact_status($1::text::xid8)";

/* COMMIT, and its answer: a transaction the server had aborted answers
 * COMMIT with ROLLBACK, which is a failure here. */
static int pg__commit_sent(struct pg_store *s)
{
    if (!PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0))
        return pg__broke(s, NULL, "commit");
    s->queued++;
    PGresult *r = NULL;
    int rc = pg__drain(s, &r, "commit");
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0)
        rc = pg__broke(s, NULL, "commit");
    PQclear(r);
    return rc;
}

static void pg__nap(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The COMMIT of transaction xid got no answer: what became of it, asked
 * on a new connection. 0 when it committed, HB_ESTORAGE otherwise (or
 * when the server cannot be asked). */
static int pg__commit_outcome(struct pg_store *s, const char *xid)
{
    /* Each try may take a connection's own timeout when the server is
     * away; none starts past the deadline. */
    uint64_t until = uv_hrtime() + (uint64_t)PG_OUTCOME_FOR_MS * 1000000u;
    for (int i = 0; i == 0 || uv_hrtime() < until; i++) {
        if (i > 0)
            pg__nap(PG_OUTCOME_WAIT_MS);
        if (pg__connect(s) < 0 || pg__pipeline_on(s) < 0)
            continue;
        struct pg_params p = {.n = 1, .value = {xid}};
        int rc = 0;
        PGresult *r = pg__run(s, pg_sql_xact_status, &p, PGRES_TUPLES_OK, "commit_status", &rc);
        if (r == NULL)
            continue;
        char status[32] = "";
        if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            snprintf(status, sizeof(status), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (strcmp(status, "in progress") == 0)
            continue; /* the old session is still finishing it */
        bool committed = strcmp(status, "committed") == 0;
        log_warn("store.commit_answer_lost", "backend=postgres outcome=%s",
                 committed           ? "committed"
                 : status[0] != '\0' ? "aborted"
                                     : "unknown");
        return committed ? 0 : HB_ESTORAGE;
    }
    log_error("store.commit_answer_lost", "backend=postgres outcome=unknown hint=%s",
              "the server could not be asked; the batch is reported failed");
    return HB_ESTORAGE;
}

int pg__commit(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->broken)
        return HB_ESTORAGE; /* store.c rolls it back */
    /* The writes put off go out, and COMMIT is the sync point of every
     * write still queued: any failure fails it. The transaction's id is
     * read first, with them. */
    int rc = pg__puts_commit(s);
    bool write = s->cache_on; /* a write transaction (pg__begin): a reader's asks nothing */
    s->cache_on = false;
    char xid[32] = "";
    if (rc == 0 && write) {
        PGresult *r = pg__run(s, pg_sql_xact_id, NULL, PGRES_TUPLES_OK, "commit", &rc);
        if (r != NULL && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
            snprintf(xid, sizeof(xid), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    if (rc == 0) {
        rc = pg__commit_sent(s);
        /* No answer at all (the connection broke, not the server said
         * no): the transaction may have committed. */
        if (rc < 0 && xid[0] != '\0' && PQstatus(s->conn) != CONNECTION_OK)
            rc = pg__commit_outcome(s, xid);
    }
    if (rc == 0)
        pg__cache_committed(s, &s->base.txn);
    else
        pg__caches_forget(s);
    return rc;
}
