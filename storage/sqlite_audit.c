/* The audit trail's records in SQLite: its own chain head, appends and
 * reads. The chain hash itself is core/audit.c's. */
#include "storage/store.h"

#include "base/error.h"
#include "storage/sqlite_internal.h"

#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

static void audit__copy_hash(uint8_t dst[STORE_HASH_SIZE], sqlite3_stmt *st, int col)
{
    memset(dst, 0, STORE_HASH_SIZE);
    const void *h = sqlite3_column_blob(st, col);
    int hn = sqlite3_column_bytes(st, col);
    if (h != NULL)
        memcpy(dst, h, hn < STORE_HASH_SIZE ? (size_t)hn : STORE_HASH_SIZE);
}

static void audit__row(sqlite3_stmt *st, struct store_audit *a)
{
    a->seq = (uint64_t)sqlite3_column_int64(st, 0);
    a->ts = sqlite3_column_int64(st, 1);
    store__copy_text(a->actor, sizeof(a->actor), st, 2);
    store__copy_text(a->action, sizeof(a->action), st, 3);
    store__copy_text(a->subject, sizeof(a->subject), st, 4);
    store__copy_text(a->detail, sizeof(a->detail), st, 5);
    audit__copy_hash(a->prev, st, 6);
    audit__copy_hash(a->hash, st, 7);
}

/* A seq and hash from a one-row statement; 0 and zeros when it has none. */
static int audit__head_read(struct sqlite_store *s, enum store_stmt_id id, uint64_t *seq,
                            uint8_t hash[STORE_HASH_SIZE], const char *what)
{
    *seq = 0;
    memset(hash, 0, STORE_HASH_SIZE);
    if (s->stmt[id] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, id);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(st, 0);
        audit__copy_hash(hash, st, 1);
    } else if (r != SQLITE_DONE) {
        rc = store__fail(s, what);
    }
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_audit_head(struct store_txn *txn, uint64_t *seq, uint8_t hash[STORE_HASH_SIZE])
{
    return audit__head_read(sqlite__of(txn), ST_AUDIT_HEAD, seq, hash, "audit_head");
}

int sqlite_txn_audit_head_recorded(struct store_txn *txn, uint64_t *seq,
                                   uint8_t hash[STORE_HASH_SIZE])
{
    return audit__head_read(sqlite__of(txn), ST_AUDIT_HEAD_RECORDED, seq, hash,
                            "audit_head_recorded");
}

int sqlite_txn_audit_append(struct store_txn *txn, const struct store_audit *a)
{
    struct sqlite_store *s = sqlite__of(txn);
    uint64_t head = 0;
    uint8_t hash[STORE_HASH_SIZE];
    int rc = sqlite_txn_audit_head(txn, &head, hash);
    if (rc < 0)
        return rc;
    if (a->seq != head + 1 || memcmp(a->prev, hash, STORE_HASH_SIZE) != 0)
        return HB_EINVAL;
    sqlite3_stmt *st = store__stmt(s, ST_AUDIT_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a->seq);
    sqlite3_bind_int64(st, 2, a->ts);
    sqlite3_bind_text(st, 3, a->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, a->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, a->subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, a->detail, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 7, a->prev, STORE_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, a->hash, STORE_HASH_SIZE, SQLITE_STATIC);
    rc = store__step_done(s, st, "audit_append");
    if (rc < 0)
        return rc;
    st = store__stmt(s, ST_AUDIT_HEAD_RECORD);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)a->seq);
    sqlite3_bind_blob(st, 2, a->hash, STORE_HASH_SIZE, SQLITE_STATIC);
    return store__step_done(s, st, "audit_head_record");
}

int sqlite_txn_audit_each(struct store_txn *txn, uint64_t from_seq,
                          int (*fn)(const struct store_audit *a, void *data), void *data)
{
    struct sqlite_store *s = sqlite__of(txn);
    struct store_audit a;
    if (s->stmt[ST_AUDIT_EACH] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_AUDIT_EACH);
    sqlite3_bind_int64(st, 1, from_seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)from_seq);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        audit__row(st, &a);
        rc = fn(&a, data);
        if (rc != 0)
            break;
    }
    if (rc == 0 && r != SQLITE_DONE)
        rc = store__fail(s, "audit_each");
    sqlite3_reset(st);
    return rc;
}

int sqlite_txn_audit_page(struct store_txn *txn, const char *match, uint64_t before_seq,
                          size_t skip, struct store_audit *out, size_t max, size_t *n)
{
    struct sqlite_store *s = sqlite__of(txn);
    *n = 0;
    if (s->stmt[ST_AUDIT_PAGE] == NULL)
        return HB_ESCHEMA;
    sqlite3_stmt *st = store__stmt(s, ST_AUDIT_PAGE);
    if (match != NULL)
        sqlite3_bind_text(st, 1, match, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before_seq > INT64_MAX ? INT64_MAX : (sqlite3_int64)before_seq);
    sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (sqlite3_int64)max);
    sqlite3_bind_int64(st, 4, skip > INT64_MAX ? INT64_MAX : (sqlite3_int64)skip);
    int rc = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW && *n < max)
        audit__row(st, &out[(*n)++]);
    if (r != SQLITE_ROW && r != SQLITE_DONE)
        rc = store__fail(s, "audit_page");
    sqlite3_reset(st);
    return rc;
}
