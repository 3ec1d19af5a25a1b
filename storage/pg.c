/* The PostgreSQL backend of the store (storage/store.h): one database that
 * several daemons share.
 *
 * libpq runs on the store's thread, as SQLite does: the group commit of
 * store.c already turns many jobs into one transaction, so one blocking
 * connection per daemon carries the writes, and nothing of PostgreSQL's
 * round trips reaches the loop. Statements are prepared once per
 * connection, the first time they run. The pool's other connections are
 * readers (store__readers_open): read-only stores, each with a thread of its
 * own, for store_submit_read's pages.
 *
 * Several daemons: a write transaction begins by taking one transaction
 * advisory lock (pg_advisory_xact_lock), so the write transactions of every
 * daemon run one after another, each a whole batch of jobs. PostgreSQL
 * releases it only once the commit is visible to every later snapshot. Everything a batch
 * reads (a balance, whether an id exists, the chain head) is then what the
 * other daemons committed before it, and nothing changes under it: no
 * overdraft across daemons, one chain with no fork. Group commit still pays
 * off: one lock, one commit and one flush per batch. (The lock writes
 * nothing, unlike a row lock: a batch that only read commits without a
 * WAL flush.)
 *
 * A lost connection (the server restarted) fails the batch in flight, whose
 * jobs complete with HB_ESTORAGE (the caller sees the error, nothing is
 * acknowledged that did not commit), unless it broke during COMMIT and the
 * server says the transaction committed (pg_commit.c); the next batch
 * reconnects, waiting 100 ms, then twice as long each time up to 5 s,
 * while the server stays away. Opening and migrations are here; the
 * records in pg_records.c, pg_conv.c and pg_more.c, parameters in
 * pg_params.c, COMMIT in pg_commit.c. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "storage/pg_internal.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define PG_BACKOFF_MIN_NS (100ull * 1000 * 1000)
#define PG_BACKOFF_MAX_NS (5000ull * 1000 * 1000)
/* Most jobs per transaction. */
#define PG_BATCH_MAX 1024u
/* Most SAVEPOINTs sent per transaction: a job that sends a statement runs
 * in a subtransaction of its own (pg_puts.c), and past 64 of them in one
 * transaction PostgreSQL's per-backend cache of subtransaction ids
 * overflows and every row visibility check slows down (measured: a batch
 * of 4096 such jobs ran slower than one transaction per job). A batch
 * ends there; its other jobs go first into the next (store.c). */
#define PG_SAVEPOINTS_MAX 60u

/* Schema migrations, in order: entry i takes the database from version i to
 * version i + 1. Never edit an entry once released; append a new one. Text
 * keys sort as bytes (COLLATE "C"), as SQLite's do, whatever the database's
 * locale. */
static const char *const pg_migrations[] = {
    /* 1 to 4: every table the SQLite schema has at its version 11.
     * 1: accounts, the append-only transfer history, open reservations and
     * the chain head. */
    "CREATE TABLE accounts ("
    " id TEXT COLLATE \"C\" PRIMARY KEY,"
    " flags BIGINT NOT NULL,"
    " debits_posted BIGINT NOT NULL,"
    " credits_posted BIGINT NOT NULL,"
    " debits_pending BIGINT NOT NULL,"
    " credits_pending BIGINT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE transfers ("
    " seq BIGINT PRIMARY KEY,"
    " id TEXT COLLATE \"C\" NOT NULL UNIQUE,"
    " debit_account TEXT COLLATE \"C\" NOT NULL,"
    " credit_account TEXT COLLATE \"C\" NOT NULL,"
    " amount BIGINT NOT NULL,"
    " kind BIGINT NOT NULL,"
    " flags BIGINT NOT NULL,"
    " link TEXT COLLATE \"C\","
    " expires_at BIGINT NOT NULL,"
    " ts BIGINT NOT NULL,"
    " ref TEXT NOT NULL,"
    " tag TEXT COLLATE \"C\" NOT NULL,"
    " hash BYTEA NOT NULL);"
    "CREATE INDEX transfers_debit ON transfers(debit_account);"
    "CREATE INDEX transfers_credit ON transfers(credit_account);"
    "CREATE INDEX transfers_link ON transfers(link) WHERE link IS NOT NULL;"
    "CREATE INDEX transfers_usage ON transfers(kind, ts);"
    "CREATE TABLE pending ("
    " id TEXT COLLATE \"C\" PRIMARY KEY,"
    " expires_at BIGINT NOT NULL);"
    "CREATE INDEX pending_expires ON pending(expires_at);"
    /* The chain head as of the last commit that appended; its one row
     * always exists, so recording it is an UPDATE. */
    "CREATE TABLE head ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " seq BIGINT NOT NULL,"
    " hash BYTEA NOT NULL);"
    "INSERT INTO head (one, seq, hash) VALUES (1, 0, '\\x');"
    "CREATE FUNCTION hb_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $$BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END$$;"
    "CREATE TRIGGER transfers_append_only BEFORE UPDATE OR DELETE ON transfers"
    " FOR EACH ROW EXECUTE FUNCTION hb_append_only();",
    /* 2: state, vote counts, limit counters and the outbox. */
    "CREATE TABLE state ("
    " ns TEXT COLLATE \"C\" NOT NULL,"
    " key TEXT COLLATE \"C\" NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_at BIGINT NOT NULL,"
    " PRIMARY KEY (ns, key));"
    "CREATE TABLE votes ("
    " scope TEXT COLLATE \"C\" NOT NULL,"
    " period TEXT COLLATE \"C\" NOT NULL,"
    " image TEXT COLLATE \"C\" NOT NULL,"
    " creator TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " count BIGINT NOT NULL,"
    " PRIMARY KEY (scope, period, image));"
    "CREATE INDEX votes_top ON votes(scope, period, count DESC, image);"
    "CREATE TABLE counters ("
    " name TEXT COLLATE \"C\" NOT NULL,"
    " win BIGINT NOT NULL,"
    " used BIGINT NOT NULL CHECK (used >= 0),"
    " PRIMARY KEY (name, win));"
    "CREATE TABLE outbox ("
    " channel TEXT COLLATE \"C\" NOT NULL,"
    " id BIGINT NOT NULL,"
    " chat BIGINT NOT NULL,"
    " body TEXT NOT NULL,"
    " data BYTEA,"
    " created_at BIGINT NOT NULL,"
    " failed_at BIGINT NOT NULL DEFAULT 0,"
    " error TEXT,"
    " PRIMARY KEY (channel, id));",
    /* 3: conversations and chat settings. */
    "CREATE TABLE conversations ("
    " id TEXT COLLATE \"C\" PRIMARY KEY,"
    " owner TEXT COLLATE \"C\" NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE INDEX conversations_owner ON conversations(owner);"
    "CREATE TABLE conversation_turns ("
    " conv TEXT COLLATE \"C\" NOT NULL,"
    " seq BIGINT NOT NULL,"
    " role TEXT NOT NULL,"
    " text TEXT NOT NULL,"
    " at BIGINT NOT NULL,"
    " PRIMARY KEY (conv, seq));"
    "CREATE INDEX conversation_turns_at ON conversation_turns(at);"
    "CREATE TABLE conversation_places ("
    " place TEXT COLLATE \"C\" PRIMARY KEY,"
    " conv TEXT COLLATE \"C\" NOT NULL,"
    " owner TEXT COLLATE \"C\" NOT NULL,"
    " updated_at BIGINT NOT NULL);"
    "CREATE INDEX conversation_places_owner ON conversation_places(owner);"
    "CREATE TABLE conversation_messages ("
    " message TEXT COLLATE \"C\" PRIMARY KEY,"
    " conv TEXT COLLATE \"C\" NOT NULL,"
    " owner TEXT COLLATE \"C\" NOT NULL,"
    " at BIGINT NOT NULL);"
    "CREATE INDEX conversation_messages_owner ON conversation_messages(owner);"
    "CREATE INDEX conversation_messages_at ON conversation_messages(at);"
    "CREATE TABLE chat_settings ("
    " key TEXT COLLATE \"C\" PRIMARY KEY,"
    " persona TEXT,"
    " plaintalk INTEGER,"
    " updated_at BIGINT NOT NULL);",
    /* 4: the audit trail, wallet links and API keys. */
    "CREATE TABLE audit ("
    " seq BIGINT PRIMARY KEY,"
    " ts BIGINT NOT NULL,"
    " actor TEXT COLLATE \"C\" NOT NULL,"
    " action TEXT COLLATE \"C\" NOT NULL,"
    " subject TEXT COLLATE \"C\" NOT NULL,"
    " detail TEXT NOT NULL,"
    " prev BYTEA NOT NULL,"
    " hash BYTEA NOT NULL);"
    "CREATE INDEX audit_subject ON audit(subject, seq);"
    "CREATE INDEX audit_action ON audit(action, seq);"
    "CREATE INDEX audit_actor ON audit(actor, seq);"
    "CREATE TABLE audit_head ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " seq BIGINT NOT NULL,"
    " hash BYTEA NOT NULL);"
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION hb_append_only();"
    "CREATE TABLE wallet_links ("
    " identity TEXT COLLATE \"C\" PRIMARY KEY,"
    " wallet TEXT COLLATE \"C\" NOT NULL,"
    " linked_at BIGINT NOT NULL);"
    "CREATE INDEX wallet_links_wallet ON wallet_links(wallet);"
    "CREATE TABLE apikeys ("
    " id TEXT COLLATE \"C\" PRIMARY KEY,"
    " owner TEXT COLLATE \"C\" NOT NULL,"
    " creator TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " prefix TEXT NOT NULL,"
    " hash BYTEA NOT NULL UNIQUE,"
    " created_at BIGINT NOT NULL,"
    " last_used BIGINT NOT NULL,"
    " spend BIGINT NOT NULL,"
    " spend_day BIGINT NOT NULL,"
    " day_spend BIGINT NOT NULL,"
    " cap_day BIGINT NOT NULL,"
    " cap_total BIGINT NOT NULL,"
    " models TEXT NOT NULL,"
    " rpm BIGINT NOT NULL,"
    " expires_at BIGINT NOT NULL,"
    " revoked_at BIGINT NOT NULL);"
    "CREATE INDEX apikeys_owner ON apikeys(owner);",
    /* 5: generated images (pg_image.c), as the SQLite schema's version 12:
     * who made each where, with which model, its bytes and thumbnail, and
     * its owner's prompt for Regenerate (NULL once erased by /forget). */
    "CREATE TABLE images ("
    " id TEXT COLLATE \"C\" PRIMARY KEY,"
    " scope TEXT COLLATE \"C\" NOT NULL,"
    " owner TEXT COLLATE \"C\" NOT NULL,"
    " platform INTEGER NOT NULL,"
    " user_id TEXT NOT NULL,"
    " scope_id TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " size TEXT NOT NULL,"
    " mime TEXT NOT NULL,"
    " prompt TEXT,"
    " created_at BIGINT NOT NULL,"
    " thumb BYTEA,"
    " data BYTEA NOT NULL);"
    "CREATE INDEX images_scope ON images(scope, created_at, id);"
    "CREATE INDEX images_created ON images(created_at);"
    "CREATE INDEX images_owner ON images(owner);",
    /* 6: what every daemon keeps in memory (API keys, wallet links, the
     * personas chosen in chats, the groups' feature switches, revenue
     * overrides and contests) is announced to the others when a change to it commits
     * (pg_listen.c), once per transaction and name: the table's, or
     * "state:<namespace>". A key's spend, written at every request, is
     * not announced, nor is any other namespace of the state table. */
    "CREATE FUNCTION hb_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN PERFORM pg_notify('hb_changed', TG_TABLE_NAME); RETURN NULL; END $$;"
    "CREATE FUNCTION hb_state_changed() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN PERFORM pg_notify('hb_changed', 'state:' || COALESCE(NEW.ns, OLD.ns));"
    " RETURN NULL; END $$;"
    "CREATE TRIGGER apikeys_changed AFTER INSERT OR DELETE OR UPDATE OF owner, name, prefix,"
    " hash, cap_day, cap_total, models, rpm, expires_at, revoked_at ON apikeys"
    " FOR EACH STATEMENT EXECUTE FUNCTION hb_changed();"
    "CREATE TRIGGER wallet_links_changed AFTER INSERT OR UPDATE OR DELETE ON wallet_links"
    " FOR EACH STATEMENT EXECUTE FUNCTION hb_changed();"
    "CREATE TRIGGER chat_settings_changed AFTER INSERT OR UPDATE OR DELETE ON chat_settings"
    " FOR EACH STATEMENT EXECUTE FUNCTION hb_changed();"
    "CREATE TRIGGER state_changed_in AFTER INSERT OR UPDATE ON state FOR EACH ROW"
    " WHEN (NEW.ns IN ('feature', 'revenue', 'contest')) EXECUTE FUNCTION hb_state_changed();"
    "CREATE TRIGGER state_changed_out AFTER DELETE ON state FOR EACH ROW"
    " WHEN (OLD.ns IN ('feature', 'revenue', 'contest')) EXECUTE FUNCTION hb_state_changed();",
    /* 7: an API key's spending caps are limit counters, as the SQLite
     * schema's version 13: they start from what each key spent so far. */
    STORE_SQL_KEY_CAPS_SEED,
};

#define PG_SCHEMA_LATEST ((int)(sizeof(pg_migrations) / sizeof(pg_migrations[0])))

/* ---- Statements -------------------------------------------------------------- */

/* PostgreSQL's message as one log value: its first line, quotes made
 * single (they would end the quoted value). */
const char *pg__msg(const char *msg, char *buf, size_t cap)
{
    size_t n = 0;
    for (; msg[n] != '\0' && msg[n] != '\n' && n + 1 < cap; n++)
        buf[n] = msg[n] == '"' ? '\'' : msg[n];
    buf[n] = '\0';
    return buf;
}

/* Log what failed with PostgreSQL's primary message: never the statement's
 * values (a unique violation's detail names the key). */
static int pg__fail(struct pg_store *s, const PGresult *r, const char *what)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL)
        msg = PQerrorMessage(s->conn);
    if (state != NULL && strcmp(state, "23505") == 0)
        return HB_EEXISTS;
    char buf[256];
    log_error("store.error", "backend=postgres op=%s state=%s err=%s", what,
              state != NULL ? state : "-", pg__msg(msg, buf, sizeof(buf)));
    return HB_ESTORAGE;
}

/* The connection failed, or a rollback to a savepoint did: the
 * transaction can only roll back, and every job of its batch fails
 * (store.c). */
int pg__broke(struct pg_store *s, const PGresult *r, const char *what)
{
    s->broken = true;
    return pg__fail(s, r, what);
}

/* The statement's name on this connection: its text's address. Prepared
 * the first time it runs on a connection (a reconnect starts over); in
 * pipeline mode the preparation is queued before its first use. */
static int pg__prepare(struct pg_store *s, const char *sql, const struct pg_params *p,
                       char name[32], const char *what)
{
    snprintf(name, 32, "h%" PRIxPTR, (uintptr_t)sql);
    size_t i = ((uintptr_t)sql >> 3) % PG_PREPARED_MAX;
    for (size_t n = 0; n < PG_PREPARED_MAX && s->prepared[i] != NULL;
         n++, i = (i + 1) % PG_PREPARED_MAX) {
        if (s->prepared[i] == sql)
            return 0;
    }
    if (s->prepared[i] != NULL)
        abort(); /* more statements than PG_PREPARED_MAX */
    int rc = 0;
    if (s->pipeline) {
        if (!PQsendPrepare(s->conn, name, sql, p != NULL ? p->n : 0, NULL))
            return pg__broke(s, NULL, what);
        s->queued++;
    } else {
        PGresult *r = PQprepare(s->conn, name, sql, p != NULL ? p->n : 0, NULL);
        rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg__fail(s, r, what);
        PQclear(r);
    }
    if (rc == 0)
        s->prepared[i] = sql;
    return rc;
}

/* Pipeline mode: queue a prepared statement; its result is read later. */
int pg__send(struct pg_store *s, const char *sql, const struct pg_params *p, const char *what)
{
    if (s->broken)
        return HB_ESTORAGE;
    char name[32];
    int rc = pg__prepare(s, sql, p, name, what);
    if (rc < 0)
        return rc;
    if (!PQsendQueryPrepared(s->conn, name, p != NULL ? p->n : 0, p != NULL ? p->value : NULL,
                             p != NULL ? p->length : NULL, p != NULL ? p->format : NULL, 0))
        return pg__broke(s, NULL, what);
    s->queued++;
    return 0;
}

/* Pipeline mode: a sync point. Read the result of every queued command:
 * 0, or the first failure (the transaction is broken then). With keep,
 * the last command's result, when everything succeeded, is kept there. */
int pg__drain(struct pg_store *s, PGresult **keep, const char *what)
{
    if (keep != NULL)
        *keep = NULL;
    if (!PQpipelineSync(s->conn)) {
        s->queued = 0;
        return pg__broke(s, NULL, what);
    }
    int rc = 0;
    for (unsigned i = 0; i < s->queued; i++) {
        PGresult *r = PQgetResult(s->conn);
        if (r == NULL) {
            rc = rc < 0 ? rc : pg__broke(s, NULL, what); /* the connection is gone */
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        /* A failed statement fails its job (which rolls back to its
         * savepoint); a lost connection breaks the transaction, and so
         * does a failure among writes of a job that already ended
         * (pg__job_end). */
        if (!ok && rc == 0) {
            rc = pg__fail(s, st == PGRES_PIPELINE_ABORTED ? NULL : r, what);
            /* Only a job's own SAVEPOINT can undo a failed statement;
             * without one the transaction is lost. */
            if (s->deferred || !s->in_job || !s->job_sp)
                s->broken = true;
        }
        if (ok && rc == 0 && keep != NULL && i + 1 == s->queued)
            *keep = r;
        else
            PQclear(r);
        /* Each command's results end with a NULL. */
        for (PGresult *more = PQgetResult(s->conn); more != NULL; more = PQgetResult(s->conn))
            PQclear(more);
    }
    s->queued = 0;
    s->deferred = false;
    PGresult *sync = PQgetResult(s->conn);
    if ((sync == NULL || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) && rc == 0)
        rc = pg__broke(s, NULL, what);
    PQclear(sync);
    if (rc < 0 && keep != NULL && *keep != NULL) {
        PQclear(*keep);
        *keep = NULL;
    }
    return rc;
}

/* Before a statement of a write transaction: the job that sends it gets
 * its savepoint, and a read sees every write put off (pg_puts.c). */
static int pg__before(struct pg_store *s, bool read)
{
    return s->cache_on ? pg__puts_before(s, read) : 0;
}

/* A write whose result is read: in pipeline mode its job's SAVEPOINT goes
 * first, so that the job's failure undoes it (pg__run alone takes it for
 * a read). */
static PGresult *pg__run_write(struct pg_store *s, const char *sql, const struct pg_params *p,
                               ExecStatusType expect, const char *what, int *rc)
{
    *rc = s->pipeline ? pg__before(s, false) : 0;
    return *rc < 0 ? NULL : pg__run(s, sql, p, expect, what, rc);
}

PGresult *pg__query_write(struct store_txn *txn, const char *sql, const struct pg_params *p,
                          const char *what, int *rc)
{
    return pg__run_write(pg__of(txn), sql, p, PGRES_TUPLES_OK, what, rc);
}

PGresult *pg__run(struct pg_store *s, const char *sql, const struct pg_params *p,
                  ExecStatusType expect, const char *what, int *rc)
{
    char name[32];
    PGresult *r = NULL;
    if (s->pipeline) {
        *rc = pg__before(s, true);
        if (*rc == 0)
            *rc = pg__send(s, sql, p, what);
        if (*rc == 0)
            *rc = pg__drain(s, &r, what);
        if (*rc < 0)
            return NULL;
    } else {
        *rc = pg__prepare(s, sql, p, name, what);
        if (*rc < 0)
            return NULL;
        r = PQexecPrepared(s->conn, name, p != NULL ? p->n : 0, p != NULL ? p->value : NULL,
                           p != NULL ? p->length : NULL, p != NULL ? p->format : NULL, 0);
    }
    if (PQresultStatus(r) != expect) {
        *rc = pg__fail(s, r, what);
        PQclear(r);
        return NULL;
    }
    return r;
}

int pg__do(struct pg_store *s, const char *sql, const struct pg_params *p, const char *what,
           int64_t *changed)
{
    /* A write whose count nobody asks for waits for no answer: its result
     * is read at the next sync point (a read, or the commit). */
    if (s->pipeline && changed == NULL) {
        int rc = pg__before(s, false);
        return rc < 0 ? rc : pg__send(s, sql, p, what);
    }
    int rc = 0;
    PGresult *r = pg__run_write(s, sql, p, PGRES_COMMAND_OK, what, &rc);
    if (r == NULL)
        return rc;
    if (changed != NULL)
        *changed = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return 0;
}

int pg__exec(struct pg_store *s, const char *sql, const char *what)
{
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : pg__fail(s, r, what);
    PQclear(r);
    return rc < 0 ? HB_ESTORAGE : 0;
}

/* Transaction control (not prepared): in pipeline mode queued, or waited
 * for with wait. */
int pg__ctl(struct pg_store *s, const char *sql, bool wait, const char *what)
{
    if (!s->pipeline) {
        int rc = pg__exec(s, sql, what);
        if (rc < 0)
            s->broken = true;
        return rc;
    }
    if (!PQsendQueryParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0))
        return pg__broke(s, NULL, what);
    s->queued++;
    return wait ? pg__drain(s, NULL, what) : 0;
}

/* Into pipeline mode, once the connection is open and migrated. */
int pg__pipeline_on(struct pg_store *s)
{
    if (!PQenterPipelineMode(s->conn))
        return pg__fail(s, NULL, "pipeline");
    s->pipeline = true;
    s->queued = 0;
    return 0;
}

/* ---- Connection ----------------------------------------------------------------- */

/* A notice or warning the server sends beside an answer: its primary
 * message, into the log, where libpq would print the whole text, detail
 * included, raw on stderr. */
static void pg__notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    char buf[256];
    log_warn("store.server_notice", "backend=postgres severity=%s msg=\"%s\"",
             sev != NULL ? sev : "-", pg__msg(msg != NULL ? msg : "", buf, sizeof(buf)));
}

PGconn *pg__conn_start(const char *url, bool nonblocking)
{
    /* Dead peers are noticed in seconds, not at TCP's minutes: defaults
     * before the connection string, which overrides any of them (libpq
     * keeps the last value of a key, and dbname expands the string). */
    static const char *const keys[] = {"connect_timeout",
                                       "keepalives",
                                       "keepalives_idle",
                                       "keepalives_interval",
                                       "keepalives_count",
                                       "dbname",
                                       NULL};
    const char *const values[] = {"10", "1", "10", "5", "3", url, NULL};
    return nonblocking ? PQconnectStartParams(keys, values, 1) : PQconnectdbParams(keys, values, 1);
}

int pg__url_check(const char *url)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    if (opts == NULL) {
        /* libpq's own message quotes the string, password and all. */
        if (err != NULL)
            PQfreemem(err);
        log_error("store.unreachable",
                  "backend=postgres err=the connection string does not parse hint=[storage] "
                  "postgres_url is key=value pairs or a postgresql:// URI");
        return HB_EINVAL;
    }
    /* Its password is a secret of its own in every log line: libpq's
     * errors may quote parts of the string. */
    for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        if (o->val != NULL && strcmp(o->keyword, "password") == 0)
            log_secret_add(o->val);
    }
    PQconninfoFree(opts);
    return 0;
}

/* Connect (again): a fresh connection forgets its prepared statements. */
int pg__connect(struct pg_store *s)
{
    if (s->conn != NULL)
        PQfinish(s->conn);
    memset(s->prepared, 0, sizeof(s->prepared));
    s->pipeline = false;
    s->queued = 0;
    s->broken = false;
    s->conn = pg__conn_start(s->url, false);
    if (s->conn == NULL)
        return HB_ENOMEM;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char buf[256];
        log_error("store.unreachable",
                  "backend=postgres err=%s hint=is the server up, and does [storage] "
                  "postgres_url name its host, database and role?",
                  pg__msg(PQerrorMessage(s->conn), buf, sizeof(buf)));
        return HB_EIO;
    }
    PQsetNoticeReceiver(s->conn, pg__notice, NULL);
    /* Notices (an IF NOT EXISTS that found the table) are not errors. */
    int rc = pg__exec(s, "SET client_min_messages = warning", "connect");
    /* Every write transaction holds the write lock that all daemons share,
     * and one of ours is never idle for long between its statements. A
     * daemon frozen inside one (stopped, its host paused) would hold every
     * other daemon's writes, its Telegram lease's takeover included: the
     * server ends such a session after two seconds, below the shortest
     * lease (3 s). The frozen daemon finds its connection gone and
     * reconnects; the batch in flight fails, acknowledged to nobody. */
    if (rc == 0)
        rc = pg__exec(s, "SET idle_in_transaction_session_timeout = 2000", "connect");
    return rc;
}

/* Whether an idle connection is still open: what the server sent while it
 * sat idle is read (its last words when it ended the session, then the
 * end of the stream), a few reads at most; nothing waiting means open. */
static bool pg__alive(PGconn *c)
{
    for (int i = 0; i < 4 && PQstatus(c) == CONNECTION_OK; i++) {
        struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            return true;
        if (!PQconsumeInput(c))
            return false;
    }
    return PQstatus(c) == CONNECTION_OK;
}

/* Before a transaction: reconnect a connection the server dropped, no
 * sooner than the backoff allows. One that sat idle while the server
 * restarted (or ended its session) is noticed here, rather than by the
 * batch's first statement failing. */
static int pg__ready(struct pg_store *s)
{
    if (s->conn != NULL && pg__alive(s->conn))
        return 0;
    uint64_t now = uv_hrtime();
    if (now < s->retry_at_ns)
        return HB_ESTORAGE;
    int rc = pg__connect(s);
    if (rc == 0)
        rc = pg__pipeline_on(s);
    if (rc == 0) {
        log_info("store.reconnected", "backend=postgres");
        s->backoff_ns = 0;
        return 0;
    }
    s->backoff_ns = s->backoff_ns == 0 ? PG_BACKOFF_MIN_NS : s->backoff_ns * 2;
    if (s->backoff_ns > PG_BACKOFF_MAX_NS)
        s->backoff_ns = PG_BACKOFF_MAX_NS;
    s->retry_at_ns = now + s->backoff_ns;
    return HB_ESTORAGE;
}

/* ---- Transactions (store_backend.h) ---------------------------------------------- */

static const char pg_lock_head[] = "SELECT pg_advisory_xact_lock(7256002)";

static int pg__begin(struct store *base, bool write)
{
    struct pg_store *s = (struct pg_store *)base;
    int rc = pg__ready(s);
    if (rc < 0)
        return rc;
    s->broken = false;
    pg__puts_clear(s);
    /* A reader's batch (write, read_only) reads each statement's latest
     * commits and may write nothing; a tool's read sees one snapshot. */
    const char *begin = !write         ? "BEGIN ISOLATION LEVEL REPEATABLE READ"
                        : s->read_only ? "BEGIN READ ONLY"
                                       : "BEGIN";
    rc = pg__ctl(s, begin, !write, "begin");
    if (rc == 0 && write && !s->read_only) {
        /* Every daemon's write transactions queue here, one at a time. */
        PGresult *r = pg__run(s, pg_lock_head, NULL, PGRES_TUPLES_OK, "lock_head", &rc);
        PQclear(r);
    }
    if (rc == 0) {
        s->cache_on = write && !s->read_only;
        s->accounts_checked = false;
    } else if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
        pg__ctl(s, "ROLLBACK", true, "rollback");
    return rc;
}

static void pg__rollback(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    s->cache_on = false;
    pg__caches_forget(s);
    pg__puts_clear(s);
    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
        if (s->pipeline && s->queued > 0)
            pg__drain(s, NULL, "rollback");
        s->broken = false;
        pg__ctl(s, "ROLLBACK", true, "rollback");
    }
    s->broken = false;
}

/* A savepoint per job, sent only once the job sends a statement
 * (pg_puts.c): a job that fails undoes its own writes. A job's statements
 * are answered by the time it ends (pg__job_end), so a failed write fails
 * its own job, never another. */
static int pg__savepoint(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->broken)
        return HB_ESTORAGE;
    pg__puts_job_start(s);
    return 0;
}

static int pg__release(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    bool sent = s->in_job && s->job_sp;
    s->in_job = false;
    if (s->broken)
        return HB_ESTORAGE;
    return sent ? pg__ctl(s, "RELEASE SAVEPOINT job", false, "release") : 0;
}

static int pg__rollback_to(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->broken)
        return HB_ESTORAGE;
    bool sent = s->job_sp;
    pg__puts_job_undo(s);
    if (!sent)
        return 0;         /* nothing of the job reached the server */
    pg__caches_forget(s); /* they may hold the job's undone writes */
    int rc = pg__ctl(s, "ROLLBACK TO SAVEPOINT job", true, "rollback_to");
    if (rc < 0)
        s->broken = true;
    return rc;
}

/* Enough subtransactions in this one: the batch ends here. */
static bool pg__batch_full(struct store *base)
{
    return ((struct pg_store *)base)->savepoints >= PG_SAVEPOINTS_MAX;
}

/* A job ran: the answers to its queued writes (one round trip for all of
 * them). Any failure is the job's: HB_ESTORAGE, and store.c rolls it back
 * to its savepoint. */
static int pg__job_end(struct store *base, struct store_job *job)
{
    struct pg_store *s = (struct pg_store *)base;
    if (s->broken)
        return HB_ESTORAGE;
    if (!s->pipeline || s->queued == 0)
        return 0;
    if (job->keys[0] != NULL && job->keys[0][0] != '\0') {
        /* A ledger operation (store_submit_keyed) checked everything its
         * writes depend on before writing, under the write lock: they can
         * fail only as the store does. Their answers are read with the
         * next sync point; a failure then fails the whole batch (broken),
         * never a job already told it succeeded, since nothing is told
         * before the commit. */
        s->deferred = true;
        return 0;
    }
    return pg__drain(s, NULL, "job") < 0 ? HB_ESTORAGE : 0;
}

static int pg__head_record(struct store_txn *txn)
{
    struct pg_params p;
    pg__params_init(&p);
    pg__int(&p, (int64_t)txn->head_seq);
    pg__bin(&p, txn->head_hash, STORE_HASH_SIZE);
    return pg__do(pg__of(txn), "UPDATE head SET seq = $1, hash = $2 WHERE one = 1", &p,
                  "head_record", NULL);
}

/* ---- Opening and migrations ---------------------------------------------------- */

/* Migrate to target under an advisory lock: daemons starting together
 * migrate once, the others wait and find it done. */
static int pg__migrate(struct pg_store *s, int target, bool read_only)
{
    int rc = pg__exec(s, "BEGIN", "migrate");
    if (rc < 0)
        return rc;
    if (!read_only) {
        rc = pg__exec(s, "SELECT pg_advisory_xact_lock(7256001)", "migrate");
        if (rc == 0)
            rc = pg__exec(s,
                          "CREATE TABLE IF NOT EXISTS hb_schema ("
                          " one INTEGER PRIMARY KEY CHECK (one = 1), version INTEGER NOT NULL)",
                          "migrate");
    }
    PGresult *r = NULL;
    if (rc == 0) {
        r = PQexec(s->conn, "SELECT version FROM hb_schema WHERE one = 1");
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            rc = read_only ? HB_ESCHEMA : pg__fail(s, r, "migrate");
    }
    int version = rc == 0 && PQntuples(r) == 1 ? (int)pg__int_at(r, 0, 0) : 0;
    PQclear(r);
    if (rc == 0 && version > PG_SCHEMA_LATEST) {
        log_error("store.schema_newer",
                  "backend=postgres version=%d supported=%d hint=this database was written "
                  "by a newer haibot; run that version",
                  version, PG_SCHEMA_LATEST);
        rc = HB_ESCHEMA;
    }
    if (rc == 0 && read_only && version != PG_SCHEMA_LATEST) {
        log_error("store.schema_older",
                  "backend=postgres version=%d expected=%d hint=start the daemon once to "
                  "upgrade it",
                  version, PG_SCHEMA_LATEST);
        rc = HB_ESCHEMA;
    }
    for (; rc == 0 && !read_only && version < target; version++) {
        rc = pg__exec(s, pg_migrations[version], "migrate");
        if (rc == 0) {
            char sql[128];
            snprintf(sql, sizeof(sql),
                     "INSERT INTO hb_schema (one, version) VALUES (1, %d)"
                     " ON CONFLICT (one) DO UPDATE SET version = %d",
                     version + 1, version + 1);
            rc = pg__exec(s, sql, "migrate");
        }
        if (rc == 0)
            log_info("store.migrated", "backend=postgres version=%d", version + 1);
    }
    s->base.version = version;
    if (rc == 0)
        rc = pg__exec(s, "COMMIT", "migrate");
    else
        pg__exec(s, "ROLLBACK", "migrate");
    return rc;
}

static void pg__free(struct store *base)
{
    struct pg_store *s = (struct pg_store *)base;
    store__readers_close(base);
    if (s->conn != NULL)
        PQfinish(s->conn);
    map_free(s->accounts);
    pg__puts_free(s);
    free(s->keys.buf);
    if (s->url != NULL) {
        /* The connection string may hold a password. */
        explicit_bzero(s->url, strlen(s->url));
        free(s->url);
    }
    free(s);
}

static const struct store_ops pg__ops = {
    .begin = pg__begin,
    .commit = pg__commit,
    .rollback = pg__rollback,
    .savepoint = pg__savepoint,
    .release = pg__release,
    .rollback_to = pg__rollback_to,
    .head_record = pg__head_record,
    .job_end = pg__job_end,
    .batch_begin = pg__batch_begin,
    .batch_full = pg__batch_full,
    .after_batch = pg__vacuum,
    .listen = pg__listen,
    .free = pg__free,
    .clock_ms = pg_txn_clock_ms,
    .account_get = pg_txn_account_get,
    .account_insert = pg_txn_account_insert,
    .account_update = pg_txn_account_update,
    .transfer_get = pg_txn_transfer_get,
    .head = pg_txn_head,
    .head_recorded = pg_txn_head_recorded,
    .transfer_append = pg_txn_transfer_append,
    .transfer_find_link = pg_txn_transfer_find_link,
    .link_sum = pg_txn_link_sum,
    .pending_add = pg_txn_pending_add,
    .pending_remove = pg_txn_pending_remove,
    .pending_expired = pg_txn_pending_expired,
    .pending_next = pg_txn_pending_next,
    .transfer_each = pg_txn_transfer_each,
    .account_each = pg_txn_account_each,
    .pending_each = pg_txn_pending_each,
    .history = pg_txn_history,
    .usage = pg_txn_usage,
    .state_get = pg_txn_state_get,
    .state_put = pg_txn_state_put,
    .state_each = pg_txn_state_each,
    .state_range = pg_txn_state_range,
    .chat_put = pg_txn_chat_put,
    .chat_each = pg_txn_chat_each,
    .link_put = pg_txn_link_put,
    .link_remove = pg_txn_link_remove,
    .link_each = pg_txn_link_each,
    .vote_add = pg_txn_vote_add,
    .vote_top = pg_txn_vote_top,
    .counter_add = pg_txn_counter_add,
    .counter_get = pg_txn_counter_get,
    .conv_get = pg_txn_conv_get,
    .conv_put = pg_txn_conv_put,
    .conv_turns = pg_txn_conv_turns,
    .conv_turn_put = pg_txn_conv_turn_put,
    .conv_trim = pg_txn_conv_trim,
    .conv_place_get = pg_txn_conv_place_get,
    .conv_message_get = pg_txn_conv_message_get,
    .conv_places_each = pg_txn_conv_places_each,
    .conv_place_put = pg_txn_conv_place_put,
    .conv_message_put = pg_txn_conv_message_put,
    .conv_forget = pg_txn_conv_forget,
    .conv_expire = pg_txn_conv_expire,
    .vacuum_after = pg_txn_vacuum_after,
    .outbox_put = pg_txn_outbox_put,
    .outbox_remove = pg_txn_outbox_remove,
    .outbox_fail = pg_txn_outbox_fail,
    .outbox_each = pg_txn_outbox_each,
    .outbox_max = pg_txn_outbox_max,
    .outbox_count = pg_txn_outbox_count,
    .outbox_channels = pg_txn_outbox_channels,
    .outbox_move = pg_txn_outbox_move,
    .audit_head = pg_txn_audit_head,
    .audit_head_recorded = pg_txn_audit_head_recorded,
    .audit_append = pg_txn_audit_append,
    .audit_each = pg_txn_audit_each,
    .audit_page = pg_txn_audit_page,
    .apikey_insert = pg_txn_apikey_insert,
    .apikey_each = pg_txn_apikey_each,
    .apikey_revoke = pg_txn_apikey_revoke,
    .apikey_spend = pg_txn_apikey_spend,
    .image_put = pg_txn_image_put,
    .image_get = pg_txn_image_get,
    .image_page = pg_txn_image_page,
    .image_prune = pg_txn_image_prune,
    .image_forget = pg_txn_image_forget,
};

struct store *store__pg_new(const struct store_options *opts, int *rc_out)
{
    int rc = 0;
    struct pg_store *s = NULL;
    if (opts == NULL || opts->url == NULL || opts->url[0] == '\0' || opts->schema_version < 0 ||
        opts->schema_version > PG_SCHEMA_LATEST) {
        rc = HB_EINVAL;
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->url = strdup(opts->url)) == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    store__init(&s->base, &pg__ops, opts);
    if (s->base.batch_max > PG_BATCH_MAX)
        s->base.batch_max = PG_BATCH_MAX;
    s->read_only = opts->read_only;
    rc = pg__url_check(s->url);
    if (rc == 0)
        rc = pg__connect(s);
    if (rc < 0)
        goto out;
    rc = pg__migrate(s, opts->schema_version != 0 ? opts->schema_version : PG_SCHEMA_LATEST,
                     opts->read_only);
    if (rc < 0)
        goto out;
    rc = pg__pipeline_on(s);
    if (rc < 0)
        goto out;
    if (!opts->read_only)
        rc = store__readers_open(&s->base, opts); /* the pool: freed with the store */
    if (rc == 0 && !opts->read_only)
        log_info("store.opened", "backend=postgres version=%d readers=%u", s->base.version,
                 s->base.nreaders);
out:
    if (rc < 0 && s != NULL) {
        pg__free(&s->base);
        s = NULL;
    }
    if (rc_out != NULL)
        *rc_out = rc;
    return s != NULL ? &s->base : NULL;
}
