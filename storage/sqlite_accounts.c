/* The accounts a write transaction reads and writes, kept in memory for
 * the transaction's length (one group-committed batch of jobs).
 *
 * Every charge moves system:revenue, and a split's post moves each
 * share's account: within one batch the same few rows were read back and
 * written again by a statement per transfer. An account read is kept; a
 * change to a kept account is made here and written once, when the
 * transaction commits (or before anything reads the table another way:
 * sqlite_txn_account_each). A new account is inserted at once, so a
 * duplicate fails where it is made.
 *
 * A job that fails is rolled back to its savepoint: the first value each
 * account had in the job (and whether it was still to be written) is
 * noted as the job first changes it, and put back; an account the job
 * inserted is forgotten with its row. A write that happened inside the
 * job (a flush) is noted the same way, so the database's rollback and the
 * kept values stay one. Everything kept is dropped when the transaction
 * ends. A store without a job running (store_txn_begin's callers) has no
 * savepoint: the whole transaction commits or not, and nothing is noted. */
#include "storage/store.h"

#include "base/error.h"
#include "base/map.h"
#include "storage/sqlite_internal.h"
#include "base/util.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define SQLITE_ACCOUNTS_KEEP_MAX 4096

struct sqlite_kept {
    struct store_account a;
    bool dirty;   /* changed since it was read or last written */
    uint64_t gen; /* the job that last noted its first value */
};

struct sqlite_undo {
    struct store_account a; /* the value before the job (a.id names it) */
    bool dirty;
    bool existed; /* false: the job inserted it */
};

void sqlite__accounts_drop(struct sqlite_store *s)
{
    map_free(s->accounts);
    s->accounts = NULL;
    s->nundo = 0;
}

void sqlite__accounts_job_begin(struct sqlite_store *s)
{
    s->job_gen++;
    s->nundo = 0;
    s->in_job = true;
    s->wrote_through = false;
}

void sqlite__accounts_job_end(struct sqlite_store *s, bool undo)
{
    if (undo && s->wrote_through) {
        /* An account written straight to the database (none could be
         * kept) may have been read back since: nothing kept is trusted. */
        map_free(s->accounts);
        s->accounts = NULL;
        undo = false;
    }
    for (size_t i = s->nundo; undo && i > 0; i--) {
        const struct sqlite_undo *u = &s->undo[i - 1];
        struct sqlite_kept *k = s->accounts != NULL ? map_get(s->accounts, u->a.id) : NULL;
        if (k == NULL)
            continue;
        if (!u->existed) {
            map_remove(s->accounts, u->a.id);
            continue;
        }
        k->a = u->a;
        k->dirty = u->dirty;
    }
    s->nundo = 0;
    s->in_job = false;
    s->wrote_through = false;
}

/* Note k's value before the running job first changes it. Returns 0, or
 * HB_ENOMEM (the caller then writes through, which the savepoint undoes). */
static int sqlite__accounts_note(struct sqlite_store *s, struct sqlite_kept *k, bool existed)
{
    if (!s->in_job || k->gen == s->job_gen)
        return 0;
    if (s->nundo == s->undo_cap) {
        struct sqlite_undo *grown = hb_grow(s->undo, &s->undo_cap, 16, sizeof(*grown));
        if (grown == NULL)
            return HB_ENOMEM;
        s->undo = grown;
    }
    s->undo[s->nundo++] = (struct sqlite_undo){.a = k->a, .dirty = k->dirty, .existed = existed};
    k->gen = s->job_gen;
    return 0;
}

static int sqlite__account_write(struct sqlite_store *s, const struct store_account *a)
{
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_UPDATE);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->debits_posted);
    sqlite3_bind_int64(st, 3, a->credits_posted);
    sqlite3_bind_int64(st, 4, a->debits_pending);
    sqlite3_bind_int64(st, 5, a->credits_pending);
    return store__step_done(s, st, "account_update");
}

int sqlite__accounts_flush(struct sqlite_store *s)
{
    if (s->accounts == NULL)
        return 0;
    struct map_iter it;
    map_iter_init(&it, s->accounts);
    const char *id;
    void *v;
    while (map_iter_next(&it, &id, &v)) {
        struct sqlite_kept *k = v;
        if (!k->dirty)
            continue;
        if (sqlite__accounts_note(s, k, true) < 0)
            return HB_ESTORAGE; /* cannot be undone: the job fails */
        int rc = sqlite__account_write(s, &k->a);
        if (rc < 0)
            return rc;
        k->dirty = false;
    }
    return 0;
}

/* Keep a as the database has it; the kept one, or NULL (full, or no
 * memory: then the account is read and written as before). */
static struct sqlite_kept *sqlite__account_keep(struct sqlite_store *s,
                                                const struct store_account *a)
{
    if (s->accounts == NULL && (s->accounts = map_new(free)) == NULL)
        return NULL;
    if (map_count(s->accounts) >= SQLITE_ACCOUNTS_KEEP_MAX)
        return NULL;
    struct sqlite_kept *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->a = *a;
    if (map_set(s->accounts, a->id, k) < 0) {
        free(k);
        return NULL;
    }
    return k;
}

int sqlite_txn_account_get(struct store_txn *txn, const char *id, struct store_account *out)
{
    struct sqlite_store *s = sqlite__of(txn);
    const struct sqlite_kept *k = s->accounts != NULL ? map_get(s->accounts, id) : NULL;
    if (k != NULL) {
        *out = k->a;
        return 0;
    }
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_GET);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st);
    int rc = 0;
    if (r == SQLITE_ROW)
        store__row_account(st, out);
    else if (r == SQLITE_DONE)
        rc = HB_ENOTFOUND;
    else
        rc = store__fail(s, "account_get");
    sqlite3_reset(st);
    if (rc == 0)
        sqlite__account_keep(s, out);
    return rc;
}

int sqlite_txn_account_insert(struct store_txn *txn, const struct store_account *a)
{
    struct sqlite_store *s = sqlite__of(txn);
    sqlite3_stmt *st = store__stmt(s, ST_ACCOUNT_INSERT);
    sqlite3_bind_text(st, 1, a->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, a->flags);
    sqlite3_bind_int64(st, 3, a->debits_posted);
    sqlite3_bind_int64(st, 4, a->credits_posted);
    sqlite3_bind_int64(st, 5, a->debits_pending);
    sqlite3_bind_int64(st, 6, a->credits_pending);
    sqlite3_bind_int64(st, 7, a->created_at);
    int rc = store__step_done(s, st, "account_insert");
    if (rc < 0)
        return rc;
    /* Kept with a note that the job made it, so that a rollback forgets
     * it with its row. */
    struct sqlite_kept *k = sqlite__account_keep(s, a);
    if (k != NULL && sqlite__accounts_note(s, k, false) < 0)
        map_remove(s->accounts, a->id);
    return 0;
}

int sqlite_txn_account_update(struct store_txn *txn, const struct store_account *a)
{
    struct sqlite_store *s = sqlite__of(txn);
    struct sqlite_kept *k = s->accounts != NULL ? map_get(s->accounts, a->id) : NULL;
    if (k == NULL || sqlite__accounts_note(s, k, true) < 0) {
        if (k != NULL)
            map_remove(s->accounts, a->id); /* no note, no keeping: the database has it */
        s->wrote_through = true;
        return sqlite__account_write(s, a);
    }
    /* Flags and creation time never change; the sums do. */
    k->a.debits_posted = a->debits_posted;
    k->a.credits_posted = a->credits_posted;
    k->a.debits_pending = a->debits_pending;
    k->a.credits_pending = a->credits_pending;
    k->dirty = true;
    return 0;
}
