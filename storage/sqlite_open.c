/* Opening the SQLite store: the file created private, the schema migrated
 * to the version asked for, and every statement prepared once. The schema's
 * history and the statements' text live here too. */
#include "storage/store.h"

#include "base/error.h"
#include "base/log.h"
#include "storage/sqlite_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_BUSY_TIMEOUT_MS 5000

/* Schema migrations, in order: entry i takes the database from version i to
 * version i + 1. Never edit an entry once released; append a new one. */
static const char *const store_migrations[] = {
    /* 1: accounts, the append-only transfer history, open reservations. */
    "CREATE TABLE accounts ("
    " id TEXT PRIMARY KEY,"
    " flags INTEGER NOT NULL,"
    " debits_posted INTEGER NOT NULL,"
    " credits_posted INTEGER NOT NULL,"
    " debits_pending INTEGER NOT NULL,"
    " credits_pending INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE transfers ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " debit_account TEXT NOT NULL,"
    " credit_account TEXT NOT NULL,"
    " amount INTEGER NOT NULL,"
    " kind INTEGER NOT NULL,"
    " flags INTEGER NOT NULL,"
    " link TEXT,"
    " expires_at INTEGER NOT NULL,"
    " ts INTEGER NOT NULL,"
    " ref TEXT NOT NULL,"
    " tag TEXT NOT NULL,"
    " hash BLOB NOT NULL"
    ");"
    "CREATE INDEX transfers_debit ON transfers(debit_account);"
    "CREATE INDEX transfers_credit ON transfers(credit_account);"
    "CREATE INDEX transfers_link ON transfers(link) WHERE link IS NOT NULL;"
    "CREATE TABLE pending ("
    " id TEXT PRIMARY KEY,"
    " expires_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX pending_expires ON pending(expires_at);"
    /* The chain head as of the last commit: a truncated history shows. */
    "CREATE TABLE head ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL"
    ");"
    /* History is append-only: the database itself refuses edits. (Someone
     * with the file can drop these; the hash chain is what catches that.) */
    "CREATE TRIGGER transfers_no_update BEFORE UPDATE ON transfers"
    " BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;"
    "CREATE TRIGGER transfers_no_delete BEFORE DELETE ON transfers"
    " BEGIN SELECT RAISE(ABORT, 'transfers are append-only'); END;",
    /* 2: usage statistics per day and model read transfers by kind and time. */
    "CREATE INDEX transfers_usage ON transfers(kind, ts);",
    /* 3: small durable state outside the ledger (preferences, adapter
     * cursors, per-scope settings), keyed by namespace and key. */
    "CREATE TABLE state ("
    " ns TEXT NOT NULL,"
    " key TEXT NOT NULL,"
    " value TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (ns, key)"
    ") WITHOUT ROWID;",
    /* 4: upvotes counted per scope, calendar period and image, so that a
     * leaderboard is an indexed top-N read however many votes a group
     * holds. The votes recorded one per state row before ("gen.vote" keys
     * "<scope>/<day>/<image>/<voter>", values "<creator>|<model>") are
     * counted into every period they fall in (day, ISO week, month, all),
     * then removed. The ISO week is the year and week of the Thursday of
     * the vote's week (day 0, 1970-01-01, was a Thursday). */
    "CREATE TABLE votes ("
    " scope TEXT NOT NULL,"
    " period TEXT NOT NULL,"
    " image TEXT NOT NULL,"
    " creator TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " count INTEGER NOT NULL,"
    " PRIMARY KEY (scope, period, image)"
    ") WITHOUT ROWID;"
    "CREATE INDEX votes_top ON votes(scope, period, count DESC, image);"
    "WITH"
    " k1 AS (SELECT substr(key, 1, instr(key, '/') - 1) AS scope,"
    "  substr(key, instr(key, '/') + 1) AS rest, value FROM state"
    "  WHERE ns = 'gen.vote' AND instr(key, '/') > 1),"
    " k2 AS (SELECT scope, CAST(substr(rest, 1, instr(rest, '/') - 1) AS INTEGER) AS day,"
    "  substr(rest, instr(rest, '/') + 1) AS rest, value FROM k1 WHERE instr(rest, '/') > 1),"
    " v AS (SELECT scope, day, day - (day + 3) % 7 + 3 AS thursday,"
    "  substr(rest, 1, instr(rest, '/') - 1) AS image,"
    "  substr(value, 1, instr(value || '|', '|') - 1) AS creator,"
    "  substr(value, instr(value || '|', '|') + 1) AS model FROM k2"
    "  WHERE instr(rest, '/') > 1 AND day >= 0),"
    " p AS ("
    "  SELECT scope, 'd' || date(day * 86400, 'unixepoch') AS period, image, creator, model"
    "  FROM v UNION ALL"
    "  SELECT scope, 'w' || strftime('%Y', thursday * 86400, 'unixepoch') || '-W' ||"
    "  printf('%02d', (CAST(strftime('%j', thursday * 86400, 'unixepoch') AS INTEGER) - 1)"
    "  / 7 + 1), image, creator, model FROM v UNION ALL"
    "  SELECT scope, 'm' || strftime('%Y-%m', day * 86400, 'unixepoch'), image, creator, model"
    "  FROM v UNION ALL"
    "  SELECT scope, 'all', image, creator, model FROM v)"
    " INSERT INTO votes (scope, period, image, creator, model, count)"
    " SELECT scope, period, image, MIN(creator), MIN(model), COUNT(*) FROM p"
    " GROUP BY scope, period, image;"
    "DELETE FROM state WHERE ns = 'gen.vote';",
    /* 5: durable limit counters (generations per member per hour, per group
     * per day, tokens per day), one row per name and window, changed only by
     * conditional increments so that a restart or a second daemon on the
     * same ledger sees the exact count. */
    "CREATE TABLE counters ("
    " name TEXT NOT NULL,"
    " win INTEGER NOT NULL,"
    " used INTEGER NOT NULL CHECK (used >= 0),"
    " PRIMARY KEY (name, win)"
    ") WITHOUT ROWID;",
    /* 6: the outbox: messages owed to someone (a reply whose update was
     * confirmed, a notice), kept until they are sent or found undeliverable.
     * Each channel (an adapter) numbers its own rows; body is the
     * channel's own encoding of the call, data an optional attachment. */
    "CREATE TABLE outbox ("
    " channel TEXT NOT NULL,"
    " id INTEGER NOT NULL,"
    " chat INTEGER NOT NULL,"
    " body TEXT NOT NULL,"
    " data BLOB,"
    " created_at INTEGER NOT NULL,"
    " failed_at INTEGER NOT NULL DEFAULT 0,"
    " error TEXT,"
    " PRIMARY KEY (channel, id)"
    ") WITHOUT ROWID;",
    /* 7: conversations /chat remembers (storage/sqlite_conv.c), outside the
     * ledger since they are the member's to erase: a conversation and its
     * owner, its numbered turns, the place whose plain messages continue
     * it, and the bot's messages whose replies continue it. */
    "CREATE TABLE conversations ("
    " id TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX conversations_owner ON conversations(owner);"
    "CREATE TABLE conversation_turns ("
    " conv TEXT NOT NULL,"
    " seq INTEGER NOT NULL,"
    " role TEXT NOT NULL,"
    " text TEXT NOT NULL,"
    " at INTEGER NOT NULL,"
    " PRIMARY KEY (conv, seq)"
    ") WITHOUT ROWID;"
    "CREATE INDEX conversation_turns_at ON conversation_turns(at);"
    "CREATE TABLE conversation_places ("
    " place TEXT PRIMARY KEY,"
    " conv TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX conversation_places_owner ON conversation_places(owner);"
    "CREATE TABLE conversation_messages ("
    " message TEXT PRIMARY KEY,"
    " conv TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX conversation_messages_owner ON conversation_messages(owner);"
    "CREATE INDEX conversation_messages_at ON conversation_messages(at);",
    /* 8: chat settings chosen in the chats themselves (storage/sqlite_chat.c):
     * the persona of a server or group, of a channel or topic, and each
     * member's own choice, and whether a group's plain talk is a chat turn.
     * NULL leaves a setting to what is above it. */
    "CREATE TABLE chat_settings ("
    " key TEXT PRIMARY KEY,"
    " persona TEXT,"
    " plaintalk INTEGER,"
    " updated_at INTEGER NOT NULL"
    ") WITHOUT ROWID;",
    /* 9: the audit trail: who did what (grants, pool and model settings,
     * config reloads, unmatched payments and their resolution), its own
     * hash chain beside the ledger's, append-only like the transfers, with
     * its head recorded so that removing the newest entries shows. */
    "CREATE TABLE audit ("
    " seq INTEGER PRIMARY KEY,"
    " ts INTEGER NOT NULL,"
    " actor TEXT NOT NULL,"
    " action TEXT NOT NULL,"
    " subject TEXT NOT NULL,"
    " detail TEXT NOT NULL,"
    " prev BLOB NOT NULL,"
    " hash BLOB NOT NULL"
    ");"
    "CREATE INDEX audit_subject ON audit(subject, seq);"
    "CREATE INDEX audit_action ON audit(action, seq);"
    "CREATE INDEX audit_actor ON audit(actor, seq);"
    "CREATE TABLE audit_head ("
    " one INTEGER PRIMARY KEY CHECK (one = 1),"
    " seq INTEGER NOT NULL,"
    " hash BLOB NOT NULL"
    ");"
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;",
    /* 10: wallet links (storage/sqlite_link.c): a member's identity on one
     * platform that spends the wallet of their identity on another. A row
     * per linked identity; /unlink deletes it. */
    "CREATE TABLE wallet_links ("
    " identity TEXT PRIMARY KEY,"
    " wallet TEXT NOT NULL,"
    " linked_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX wallet_links_wallet ON wallet_links(wallet);",
    /* 11: API keys (storage/sqlite_apikey.c): who owns each (a wallet, or a
     * group's pool), its name and shown prefix, a keyed SHA-256 of the key
     * (never the key), its limits, when it was last used and what it spent
     * (in total and on its last day of use), and whether it was revoked. */
    "CREATE TABLE apikeys ("
    " id TEXT PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " creator TEXT NOT NULL,"
    " name TEXT NOT NULL,"
    " prefix TEXT NOT NULL,"
    " hash BLOB NOT NULL UNIQUE,"
    " created_at INTEGER NOT NULL,"
    " last_used INTEGER NOT NULL,"
    " spend INTEGER NOT NULL,"
    " spend_day INTEGER NOT NULL,"
    " day_spend INTEGER NOT NULL,"
    " cap_day INTEGER NOT NULL,"
    " cap_total INTEGER NOT NULL,"
    " models TEXT NOT NULL,"
    " rpm INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " revoked_at INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE INDEX apikeys_owner ON apikeys(owner);",
    /* 12: generated images (storage/sqlite_image.c), so that Regenerate,
     * /gallery and contests outlive a restart: who made each where, with
     * which model, its bytes and a small PNG thumbnail of it (NULL when it
     * could not be made: not a PNG), and its owner's prompt for Regenerate
     * (NULL once erased by /forget). The bytes are the last columns, so a
     * read of the others never touches them. A gallery page is a walk of
     * images_scope (newest first) or of votes_top (most upvoted);
     * retention walks images_created. */
    "CREATE TABLE images ("
    " id TEXT PRIMARY KEY,"
    " scope TEXT NOT NULL,"
    " owner TEXT NOT NULL,"
    " platform INTEGER NOT NULL,"
    " user_id TEXT NOT NULL,"
    " scope_id TEXT NOT NULL,"
    " model TEXT NOT NULL,"
    " size TEXT NOT NULL,"
    " mime TEXT NOT NULL,"
    " prompt TEXT,"
    " created_at INTEGER NOT NULL,"
    " thumb BLOB,"
    " data BLOB NOT NULL"
    ");"
    "CREATE INDEX images_scope ON images(scope, created_at, id);"
    "CREATE INDEX images_created ON images(created_at);"
    "CREATE INDEX images_owner ON images(owner);",
    /* 13: an API key's spending caps are limit counters (core/generate_quota.c),
     * which each reservation through the key counts against in its own
     * commit: they start from what each key spent so far. */
    STORE_SQL_KEY_CAPS_SEED,
};

#define STORE_STATE_VERSION 3   /* the first schema with the state table */
#define STORE_VOTES_VERSION 4   /* the first schema with the votes table */
#define STORE_COUNTER_VERSION 5 /* the first schema with the counters table */
#define STORE_OUTBOX_VERSION 6  /* the first schema with the outbox */
#define STORE_CONV_VERSION 7    /* the first schema with the conversation tables */
#define STORE_AUDIT_VERSION 9   /* the first schema with the audit trail */

#define STORE_SCHEMA_LATEST ((int)(sizeof(store_migrations) / sizeof(store_migrations[0])))

#define STORE_TRANSFER_COLS                                                                        \
    "seq, id, debit_account, credit_account, amount, kind, flags, link, expires_at, ts, "          \
    "ref, tag, hash"

#define STORE_AUDIT_COLS "seq, ts, actor, action, subject, detail, prev, hash"

const char *const store__sql[ST_COUNT] = {
    [ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT job",
    [ST_RELEASE] = "RELEASE job",
    [ST_ROLLBACK_TO] = "ROLLBACK TO job",
    [ST_ACCOUNT_GET] = "SELECT id, flags, debits_posted, credits_posted, debits_pending,"
                       " credits_pending, created_at FROM accounts WHERE id = ?1",
    [ST_ACCOUNT_INSERT] = "INSERT INTO accounts (id, flags, debits_posted, credits_posted,"
                          " debits_pending, credits_pending, created_at)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_ACCOUNT_UPDATE] = "UPDATE accounts SET debits_posted = ?2, credits_posted = ?3,"
                          " debits_pending = ?4, credits_pending = ?5 WHERE id = ?1",
    [ST_ACCOUNT_EACH] = "SELECT id, flags, debits_posted, credits_posted, debits_pending,"
                        " credits_pending, created_at FROM accounts ORDER BY id",
    [ST_TRANSFER_GET] = "SELECT " STORE_TRANSFER_COLS " FROM transfers WHERE id = ?1",
    [ST_TRANSFER_INSERT] = "INSERT INTO transfers (" STORE_TRANSFER_COLS ")"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_TRANSFER_EACH] = "SELECT " STORE_TRANSFER_COLS " FROM transfers WHERE seq >= ?1"
                         " ORDER BY seq",
    [ST_HEAD] = "SELECT seq, hash FROM transfers ORDER BY seq DESC LIMIT 1",
    [ST_HEAD_RECORD] = "INSERT OR REPLACE INTO head (one, seq, hash) VALUES (1, ?1, ?2)",
    [ST_HEAD_RECORDED] = "SELECT seq, hash FROM head WHERE one = 1",
    [ST_FIND_LINK] = "SELECT " STORE_TRANSFER_COLS " FROM transfers"
                     " WHERE link = ?1 AND (flags & ?2) != 0 ORDER BY seq LIMIT 1",
    [ST_LINK_SUM] = "SELECT COALESCE(SUM(amount), 0) FROM transfers"
                    " WHERE link = ?1 AND (flags & ?2) != 0",
    [ST_PENDING_ADD] = "INSERT INTO pending (id, expires_at) VALUES (?1, ?2)",
    [ST_PENDING_REMOVE] = "DELETE FROM pending WHERE id = ?1",
    [ST_PENDING_EXPIRED] = "SELECT id FROM pending WHERE expires_at > 0 AND expires_at <= ?1"
                           " ORDER BY expires_at, id LIMIT ?2",
    [ST_PENDING_NEXT] = "SELECT MIN(expires_at) FROM pending WHERE expires_at > 0",
    [ST_PENDING_EACH] = "SELECT id, expires_at FROM pending ORDER BY id",
    [ST_HISTORY] = "SELECT " STORE_TRANSFER_COLS " FROM transfers"
                   " WHERE (debit_account = ?1 OR credit_account = ?1) AND seq < ?2"
                   " ORDER BY seq DESC LIMIT ?3",
    [ST_USAGE] = "SELECT ts / 86400000, tag, SUM(amount), COUNT(*) FROM transfers"
                 " WHERE kind = ?1 AND ts >= ?2 AND ts < ?3 AND (flags & ?4) = 0"
                 " AND (?5 IS NULL OR debit_account = ?5)"
                 " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT ?6",
    [ST_STATE_GET] = "SELECT value FROM state WHERE ns = ?1 AND key = ?2",
    [ST_STATE_PUT] = "INSERT INTO state (ns, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)"
                     " ON CONFLICT (ns, key) DO UPDATE SET value = ?3, updated_at = ?4",
    [ST_STATE_DELETE] = "DELETE FROM state WHERE ns = ?1 AND key = ?2",
    [ST_STATE_EACH] = "SELECT key, value FROM state WHERE ns = ?1 AND key >= ?2 ORDER BY key",
    [ST_VOTE_ADD] = "INSERT INTO votes (scope, period, image, creator, model, count)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    " ON CONFLICT (scope, period, image) DO UPDATE SET count = count + ?6",
    [ST_VOTE_TOP] = "SELECT image, creator, model, count FROM votes"
                    " WHERE scope = ?1 AND period = ?2 ORDER BY count DESC, image LIMIT ?3",
    [ST_COUNTER_ENSURE] = "INSERT INTO counters (name, win, used) VALUES (?1, ?2, 0)"
                          " ON CONFLICT (name, win) DO NOTHING",
    /* One statement decides and adds: the bound is checked against the
     * stored value, never against a copy read earlier. */
    [ST_COUNTER_ADD] = "UPDATE counters SET used = MAX(used + ?3, 0)"
                       " WHERE name = ?1 AND win = ?2"
                       " AND (?3 <= 0 OR ?4 <= 0 OR used + ?3 <= ?4) RETURNING used",
    [ST_COUNTER_GET] = "SELECT used FROM counters WHERE name = ?1 AND win = ?2",
    [ST_COUNTER_SET] = "UPDATE counters SET used = ?3 WHERE name = ?1 AND win = ?2",
    [ST_COUNTER_PRUNE] = "DELETE FROM counters WHERE name = ?1 AND win < ?2",
    [ST_OUTBOX_PUT] = "INSERT OR REPLACE INTO outbox (channel, id, chat, body, data, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_OUTBOX_REMOVE] = "DELETE FROM outbox WHERE channel = ?1 AND id = ?2",
    [ST_OUTBOX_FAIL] = "UPDATE outbox SET failed_at = ?3, error = ?4, data = NULL"
                       " WHERE channel = ?1 AND id = ?2",
    [ST_OUTBOX_PURGE] =
        "DELETE FROM outbox WHERE channel = ?1 AND failed_at != 0 AND failed_at < ?2",
    [ST_OUTBOX_EACH] =
        "SELECT id, chat, body, data FROM outbox WHERE channel = ?1 AND failed_at = 0"
        " AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_OUTBOX_MAX] = "SELECT COALESCE(MAX(id), 0) FROM outbox WHERE channel = ?1",
    [ST_OUTBOX_COUNT] = "SELECT COUNT(*) FROM outbox WHERE channel = ?1 AND (failed_at != 0) = ?2",
    [ST_OUTBOX_CHANNELS] = "SELECT DISTINCT channel FROM outbox WHERE channel = ?1"
                           " OR substr(channel, 1, length(?1) + 1) = ?1 || '/' ORDER BY channel",
    [ST_OUTBOX_MOVE] = "UPDATE outbox SET channel = ?2 WHERE channel = ?1 AND (?3 = 0 OR id <= ?3)",
    [ST_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [ST_AUDIT_HEAD_RECORD] =
        "INSERT OR REPLACE INTO audit_head (one, seq, hash) VALUES (1, ?1, ?2)",
    [ST_AUDIT_HEAD_RECORDED] = "SELECT seq, hash FROM audit_head WHERE one = 1",
    [ST_AUDIT_INSERT] = "INSERT INTO audit (" STORE_AUDIT_COLS ")"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_AUDIT_EACH] = "SELECT " STORE_AUDIT_COLS " FROM audit WHERE seq >= ?1 ORDER BY seq",
    [ST_AUDIT_PAGE] = "SELECT " STORE_AUDIT_COLS " FROM audit"
                      " WHERE (?1 IS NULL OR actor = ?1 OR action = ?1 OR subject = ?1)"
                      " AND (?2 = 0 OR seq < ?2) ORDER BY seq DESC LIMIT ?3 OFFSET ?4",
};

int store_schema_latest(void)
{
    return STORE_SCHEMA_LATEST;
}

/* ---- Opening and migrations ---------------------------------------------- */

static int store__pragma_int(struct sqlite_store *s, const char *sql, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = store__fail(s, sql);
        goto out;
    }
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = store__fail(s, sql);
        goto out;
    }
    *out = sqlite3_column_int(st, 0);
out:
    sqlite3_finalize(st);
    return rc;
}

static int store__exec(struct sqlite_store *s, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        log_error("store.error", "op=exec err=%s", err != NULL ? err : "unknown");
        sqlite3_free(err);
        return HB_ESTORAGE;
    }
    return 0;
}

static int store__migrate(struct sqlite_store *s, int target)
{
    int rc = 0;
    while (s->base.version < target) {
        char sql[64];
        int next = s->base.version + 1;
        rc = store__exec(s, "BEGIN IMMEDIATE");
        if (rc < 0)
            goto out;
        rc = store__exec(s, store_migrations[s->base.version]);
        if (rc == 0) {
            snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", next);
            rc = store__exec(s, sql);
        }
        if (rc == 0)
            rc = store__exec(s, "COMMIT");
        if (rc < 0) {
            store__exec(s, "ROLLBACK");
            goto out;
        }
        log_info("store.migrated", "version=%d", next);
        s->base.version = next;
    }
out:
    return rc;
}

/* Create the database file with mode 0600 so that no other user can read the
 * ledger; SQLite gives its -wal and -shm files the same mode. */
static int store__file_create(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : HB_EIO;
    int rc = fchmod(fd, 0600) == 0 ? 0 : HB_EIO;
    close(fd);
    return rc;
}

/* Say that the database cannot be written, and why, once for every cause. */
static void store__read_only_log(const char *path, const char *why)
{
    log_error("store.read_only",
              "path=%s problem=%s hint=the daemon writes every credit movement; put the "
              "database on a writable disk, or use haibot ledger verify/head/backup to read it",
              path, why);
}

/* One daemon per database: an exclusive lock on `<path>.lock`, held for the
 * store's life, with the holder's pid in the file for the message the next
 * one prints. Two daemons on one SQLite file would each treat the other's
 * running jobs as left over by a restart. flock() locks belong to the open
 * file, so a second store in the same process is refused too, and the
 * kernel drops the lock when the process dies however it ends. Readers
 * (ledger verify/head/backup) do not take it. */
static int store__lock(struct sqlite_store *s, const char *path)
{
    char lock_path[4096];
    int n = snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
    if (n < 0 || (size_t)n >= sizeof(lock_path))
        return HB_EINVAL;
    int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int err = errno;
        if (err == EROFS || err == EACCES || err == EPERM)
            store__read_only_log(path, strerror(err));
        else
            log_error("store.lock", "path=%s err=%s", lock_path, strerror(err));
        return HB_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            char buf[32] = "";
            ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
            long pid = got > 0 ? strtol(buf, NULL, 10) : 0;
            char holder[32] = "unknown";
            if (pid > 0)
                snprintf(holder, sizeof(holder), "%ld", pid);
            log_error("store.locked",
                      "path=%s holder_pid=%s problem=another haibot daemon is running on this "
                      "database hint=one daemon per SQLite database: stop the other one "
                      "first",
                      path, holder);
        } else {
            log_error("store.lock", "path=%s err=%s", lock_path, strerror(err));
        }
        close(fd);
        return HB_EBUSY;
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* Still locked; only the message of a refused daemon loses the pid. */
        log_warn("store.lock", "path=%s problem=the pid could not be written err=%s", lock_path,
                 strerror(errno));
    }
    s->lock_fd = fd;
    return 0;
}

static void sqlite__free(struct store *base);

static const struct store_ops sqlite__ops = {
    .begin = sqlite__begin,
    .commit = sqlite__commit,
    .commit_early = sqlite__commit_early,
    .sync_owed = sqlite__sync_owed,
    .rollback = sqlite__rollback,
    .savepoint = sqlite__savepoint,
    .release = sqlite__release,
    .rollback_to = sqlite__rollback_to,
    .group_jobs = true,
    .head_record = sqlite__head_record,
    .after_batch = sqlite__after_batch,
    .free = sqlite__free,
    .account_get = sqlite_txn_account_get,
    .account_insert = sqlite_txn_account_insert,
    .account_update = sqlite_txn_account_update,
    .transfer_get = sqlite_txn_transfer_get,
    .head = sqlite_txn_head,
    .head_recorded = sqlite_txn_head_recorded,
    .transfer_append = sqlite_txn_transfer_append,
    .transfer_find_link = sqlite_txn_transfer_find_link,
    .link_sum = sqlite_txn_link_sum,
    .pending_add = sqlite_txn_pending_add,
    .pending_remove = sqlite_txn_pending_remove,
    .pending_expired = sqlite_txn_pending_expired,
    .pending_next = sqlite_txn_pending_next,
    .transfer_each = sqlite_txn_transfer_each,
    .account_each = sqlite_txn_account_each,
    .pending_each = sqlite_txn_pending_each,
    .history = sqlite_txn_history,
    .usage = sqlite_txn_usage,
    .state_get = sqlite_txn_state_get,
    .state_put = sqlite_txn_state_put,
    .state_each = sqlite_txn_state_each,
    .state_range = sqlite_txn_state_range,
    .chat_put = sqlite_txn_chat_put,
    .chat_each = sqlite_txn_chat_each,
    .link_put = sqlite_txn_link_put,
    .link_remove = sqlite_txn_link_remove,
    .link_each = sqlite_txn_link_each,
    .vote_add = sqlite_txn_vote_add,
    .vote_top = sqlite_txn_vote_top,
    .counter_add = sqlite_txn_counter_add,
    .counter_get = sqlite_txn_counter_get,
    .conv_get = sqlite_txn_conv_get,
    .conv_put = sqlite_txn_conv_put,
    .conv_turns = sqlite_txn_conv_turns,
    .conv_turn_put = sqlite_txn_conv_turn_put,
    .conv_trim = sqlite_txn_conv_trim,
    .conv_place_get = sqlite_txn_conv_place_get,
    .conv_message_get = sqlite_txn_conv_message_get,
    .conv_places_each = sqlite_txn_conv_places_each,
    .conv_place_put = sqlite_txn_conv_place_put,
    .conv_message_put = sqlite_txn_conv_message_put,
    .conv_forget = sqlite_txn_conv_forget,
    .conv_expire = sqlite_txn_conv_expire,
    .vacuum_after = sqlite_txn_vacuum_after,
    .outbox_put = sqlite_txn_outbox_put,
    .outbox_remove = sqlite_txn_outbox_remove,
    .outbox_fail = sqlite_txn_outbox_fail,
    .outbox_each = sqlite_txn_outbox_each,
    .outbox_max = sqlite_txn_outbox_max,
    .outbox_count = sqlite_txn_outbox_count,
    .outbox_channels = sqlite_txn_outbox_channels,
    .outbox_move = sqlite_txn_outbox_move,
    .audit_head = sqlite_txn_audit_head,
    .audit_head_recorded = sqlite_txn_audit_head_recorded,
    .audit_append = sqlite_txn_audit_append,
    .audit_each = sqlite_txn_audit_each,
    .audit_page = sqlite_txn_audit_page,
    .apikey_insert = sqlite_txn_apikey_insert,
    .apikey_each = sqlite_txn_apikey_each,
    .apikey_revoke = sqlite_txn_apikey_revoke,
    .apikey_spend = sqlite_txn_apikey_spend,
    .image_put = sqlite_txn_image_put,
    .image_get = sqlite_txn_image_get,
    .image_page = sqlite_txn_image_page,
    .image_prune = sqlite_txn_image_prune,
    .image_forget = sqlite_txn_image_forget,
};

/* Before SQLite initializes itself: without its memory statistics (which
 * nothing here reads), an allocation takes no global mutex. Every
 * statement allocates and frees, and the store thread paid two mutex calls
 * for each, some five hundred per generation job. Refused harmlessly when
 * SQLite was initialized already. */
static void sqlite__configure(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

struct store *store__sqlite_new(const struct store_options *opts, int *rc_out)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, sqlite__configure);
    int rc = 0;
    struct sqlite_store *s = NULL;
    if (opts == NULL || opts->path == NULL || opts->path[0] == '\0' || opts->schema_version < 0 ||
        opts->schema_version > STORE_SCHEMA_LATEST) {
        rc = HB_EINVAL;
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    store__init(&s->base, &sqlite__ops, opts);
    s->lock_fd = -1;
    s->data_version = -1; /* nothing kept yet */
    if (!opts->read_only) {
        rc = store__file_create(opts->path);
        if (rc < 0) {
            log_error("store.open", "path=%s err=%s", opts->path, strerror(errno));
            goto out;
        }
        rc = store__lock(s, opts->path);
        if (rc < 0)
            goto out;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    /* A durable writer gathers each commit's WAL frames into one write (see
     * sqlite_vfs.c); it needs the sync of synchronous=FULL at every commit. */
    const char *vfs = !opts->read_only && !opts->relaxed_sync ? sqlite_walbuf_vfs() : NULL;
    if (sqlite3_open_v2(opts->path, &s->db, flags, vfs) != SQLITE_OK) {
        log_error("store.open", "path=%s err=%s", opts->path,
                  s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
        rc = HB_ESTORAGE;
        goto out;
    }
    /* SQLite falls back to reading when it cannot write the file (a
     * read-only mount, a file without write permission): every commit would
     * then fail while the daemon looks alive. */
    if (!opts->read_only && sqlite3_db_readonly(s->db, "main") == 1) {
        store__read_only_log(opts->path, "the database file cannot be written");
        rc = HB_EIO;
        goto out;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(s->db, 1);
    rc = store__pragma_int(s, "PRAGMA user_version", &s->base.version);
    if (rc < 0)
        goto out;
    if (s->base.version > STORE_SCHEMA_LATEST) {
        log_error("store.schema_newer",
                  "path=%s version=%d supported=%d hint=\"this database was written by a newer "
                  "haibot; run that version\"",
                  opts->path, s->base.version, STORE_SCHEMA_LATEST);
        rc = HB_ESCHEMA;
        goto out;
    }
    if (opts->read_only && s->base.version == 0) {
        log_error("store.no_ledger",
                  "path=%s problem=the file holds no ledger (empty, or a copy made without its "
                  "-wal file) hint=copy a running ledger with haibot ledger backup",
                  opts->path);
        rc = HB_ESCHEMA;
        goto out;
    }
    if (opts->read_only && s->base.version != STORE_SCHEMA_LATEST) {
        log_error("store.schema_older",
                  "path=%s version=%d expected=%d hint=\"start the daemon once to upgrade it\"",
                  opts->path, s->base.version, STORE_SCHEMA_LATEST);
        rc = HB_ESCHEMA;
        goto out;
    }
    /* No auto_vacuum: its pointer-map pages cost the ledger's group
     * commit about a quarter of its rate. Erased rows are zeroed in place
     * (secure_delete below) and their pages reused; the file does not
     * shrink by itself. */
    if (!opts->read_only) {
        /* The page stays SQLite's default of 4,096 bytes. A commit copies
         * every page it changed whole into the WAL, some 28 KB a
         * generation (mostly index pages at random places, measured with
         * about five jobs a commit); pages of 2,048 or 1,024 bytes
         * (three rounds each on the generation bench, taking turns) gave
         * no better rate (9,151 to 12,016 and 7,259 to 9,298 jobs/s,
         * against 8,692 to 11,446): the indexes grow deeper.
         * WAL lets readers (verify) run beside the writer; FULL makes every
         * commit durable before it returns. */
        rc = store__exec(s, "PRAGMA journal_mode = WAL");
        /* A larger page cache keeps the indexes' hot pages in memory under
         * load; checkpoints run less often and move more pages each. */
        if (rc == 0)
            rc = store__exec(s, "PRAGMA cache_size = -65536");
        /* A checkpoint runs inside the COMMIT that takes the WAL past this
         * many frames, and nearly all of its time is the database's sync
         * (about 5 ms for the 400 or so pages a generation bench's
         * checkpoint copies): that commit's jobs, and those queued behind
         * it, wait for it. On that bench, against 8,192: 2,048 or 4,096
         * frames made the added latency's p99 5 or 1.8 times as long (a
         * checkpoint for every 35 or 70 jobs run one at a time); 16,384
         * or 32,768 made its p50 1.2 or 1.5 times as long, and the rate no
         * better. A thread of its own for checkpoints (a second connection,
         * the writer copying only the frames added meanwhile) gave 1.03
         * times the rate and a p99 1.17 times as long: the jobs' own syncs
         * of the WAL were slow while it synced the database. */
        if (rc == 0)
            rc = store__exec(s, "PRAGMA wal_autocheckpoint = 8192");
        /* Each job of a group commit runs in a savepoint, whose undo
         * copies (the statement journal) would otherwise go to a file in
         * /var/tmp, page by page: about half the writes of a batch. They
         * only serve a rollback inside the open transaction (crash
         * recovery is the WAL's), so memory is enough. */
        if (rc == 0)
            rc = store__exec(s, "PRAGMA temp_store = MEMORY");
        if (rc == 0)
            rc = store__exec(s, opts->relaxed_sync ? "PRAGMA synchronous = NORMAL"
                                                   : "PRAGMA synchronous = FULL");
        /* Deleted rows are overwritten with zeros, so that an erased
         * conversation does not linger in free space of the file. */
        if (rc == 0)
            rc = store__exec(s, "PRAGMA secure_delete = ON");
        if (rc < 0)
            goto out;
        rc = store__migrate(s,
                            opts->schema_version != 0 ? opts->schema_version : STORE_SCHEMA_LATEST);
        if (rc < 0)
            goto out;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        /* A database held at an older version (tests of upgrades) lacks the
         * later tables; their statements stay unprepared. */
        if (i >= ST_STATE_GET && s->base.version < STORE_STATE_VERSION)
            continue;
        if (i >= ST_VOTE_ADD && i <= ST_VOTE_TOP && s->base.version < STORE_VOTES_VERSION)
            continue;
        if (i >= ST_COUNTER_ENSURE && i <= ST_COUNTER_PRUNE &&
            s->base.version < STORE_COUNTER_VERSION)
            continue;

        if (i >= ST_OUTBOX_PUT && i <= ST_OUTBOX_MOVE && s->base.version < STORE_OUTBOX_VERSION)
            continue;
        if (i >= ST_AUDIT_HEAD && s->base.version < STORE_AUDIT_VERSION)
            continue;
        if (sqlite3_prepare_v3(s->db, store__sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
                               NULL) != SQLITE_OK) {
            rc = store__fail(s, store__sql[i]);
            goto out;
        }
    }
    if (s->base.version >= STORE_CONV_VERSION) {
        rc = store__conv_prepare(s);
        if (rc < 0)
            goto out;
    }
    if (opts->read_only) {
        /* A read-only store writes nothing, also by mistake: a job sent to
         * a reader that writes fails (SQLITE_READONLY), as on PostgreSQL. */
        rc = store__exec(s, "PRAGMA query_only = ON");
        if (rc < 0)
            goto out;
    }
    if (!opts->read_only && opts->readers > 0) {
        /* Readers: read-only connections to the same file, each on a thread of its
         * own (store.c), for store_submit_read's pages. WAL lets them read beside
         * the writer: a long read (a month of usage, a big gallery) no longer holds
         * up the ledger's batches, and a batch's sync holds up no page. They open
         * through the default VFS: every frame a commit publishes was written to
         * the file at its sync (sqlite_vfs.c), so a reader never looks for one
         * still in the writer's buffer. */
        rc = store__readers_open(&s->base, opts);
        if (rc < 0)
            goto out;
    }
    if (!opts->read_only)
        log_info("store.opened", "path=%s version=%d readers=%u", opts->path, s->base.version,
                 s->base.nreaders);
out:
    if (rc < 0 && s != NULL) {
        sqlite__free(&s->base);
        s = NULL;
    }
    if (rc_out != NULL)
        *rc_out = rc;
    return s != NULL ? &s->base : NULL;
}

static void sqlite__free(struct store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    store__readers_close(base);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmt[i]);
    store__conv_finalize(s);
    if (s->db != NULL)
        sqlite3_close(s->db);
    /* After the database is closed: the next daemon may start now. */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    sqlite__kept_drop(s);
    free(s->undo);
    free(s);
}
