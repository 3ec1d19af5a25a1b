/* The credit ledger's rules. They run on the store's thread, inside the
 * transaction (and savepoint) of the operation, so a balance check sees
 * exactly what is committed before it. */
#include "core/ledger.h"

#include "base/error.h"
#include "core/ledger_internal.h"
#include "base/log.h"

#include <stdio.h>
#include <string.h>

#define LEDGER_EXPIRE_CHUNK 64 /* reservations voided per store call */
#define LEDGER_RESOLVE_FLAGS (LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID)
#define LEDGER_REQUEST_FLAGS (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID)

static int ledger__concat(char *dst, size_t cap, const char *a, const char *b)
{
    int n = snprintf(dst, cap, "%s%s", a, b);
    return n < 0 || (size_t)n >= cap ? HB_EINVAL : 0;
}

/* ---- Rules (store thread, inside the operation's savepoint) ------------------- */

static int ledger__add(int64_t *sum, int64_t v)
{
    return __builtin_add_overflow(*sum, v, sum) ? HB_EOVERFLOW : 0;
}

static int ledger__sub(int64_t *sum, int64_t v)
{
    return __builtin_sub_overflow(*sum, v, sum) ? HB_EOVERFLOW : 0;
}

/* Credits an account can still spend: posted balance minus reservations. */
static int ledger__available(const struct store_account *a, int64_t *out)
{
    int64_t v = a->credits_posted;
    int rc = ledger__sub(&v, a->debits_posted);
    if (rc == 0)
        rc = ledger__sub(&v, a->debits_pending);
    *out = v;
    return rc;
}

/* An account's balance as ledger_balance_get reports it. */
static int ledger__balance_of(const struct store_account *a, struct ledger_balance *out)
{
    out->posted = a->credits_posted;
    int rc = ledger__sub(&out->posted, a->debits_posted);
    out->pending_debits = a->debits_pending;
    out->pending_credits = a->credits_pending;
    out->debits_posted = a->debits_posted;
    out->created_at = a->created_at;
    if (rc == 0)
        rc = ledger__available(a, &out->available);
    return rc;
}

static int ledger__account_load(struct store_txn *txn, struct ledger_op *op, const char *id,
                                struct store_account *a)
{
    int rc = store_txn_account_get(txn, id, a);
    if (rc == HB_ENOTFOUND)
        snprintf(op->result.account, sizeof(op->result.account), "%s", id);
    return rc;
}

static void ledger__note_expiry(struct ledger_op *op, int64_t at)
{
    if (at > 0 && (op->next_expiry == 0 || at < op->next_expiry))
        op->next_expiry = at;
}

/* The same id again: HB_EEXISTS when the request matches what was committed,
 * HB_ECONFLICT naming the first field that differs. Posts and voids inherit
 * fields from the pending transfer, so only the fields they give count. */
static int ledger__compare(const struct ledger_req *r, const struct store_transfer *old,
                           struct ledger_op *op)
{
    const char *f = NULL;
    uint32_t oflags = old->flags & LEDGER_REQUEST_FLAGS;
    op->result.transfer = *old;
    if ((old->flags & LEDGER_TRANSFER_REVERSAL) != 0 || oflags != r->flags) {
        f = "flags";
    } else if ((r->flags & LEDGER_RESOLVE_FLAGS) != 0) {
        if (strcmp(r->link, old->link) != 0)
            f = "pending_id";
        else if (r->debit[0] != '\0' && strcmp(r->debit, old->debit) != 0)
            f = "debit";
        else if (r->credit[0] != '\0' && strcmp(r->credit, old->credit) != 0)
            f = "credit";
        else if (r->amount != 0 && r->amount != old->amount)
            f = "amount";
        else if (r->kind != 0 && r->kind != old->kind)
            f = "kind";
        else if (r->ref[0] != '\0' && strcmp(r->ref, old->ref) != 0)
            f = "ref";
        else if (r->tag[0] != '\0' && strcmp(r->tag, old->tag) != 0)
            f = "tag";
    } else {
        int64_t timeout = old->expires_at != 0 ? old->expires_at - old->ts : 0;
        if (strcmp(r->debit, old->debit) != 0)
            f = "debit";
        else if (strcmp(r->credit, old->credit) != 0)
            f = "credit";
        else if (r->amount != old->amount)
            f = "amount";
        else if (r->kind != old->kind)
            f = "kind";
        else if (r->timeout_ms != timeout)
            f = "timeout";
        else if (strcmp(r->ref, old->ref) != 0)
            f = "ref";
        else if (strcmp(r->tag, old->tag) != 0)
            f = "tag";
    }
    op->result.field = f;
    return f != NULL ? HB_ECONFLICT : HB_EEXISTS;
}

/* Post or void the pending transfer r->link. extra adds
 * LEDGER_TRANSFER_EXPIRED for voids made by the expiry. */
static int ledger__resolve(struct store_txn *txn, struct ledger_op *op, const struct ledger_req *r,
                           uint32_t extra)
{
    struct store_transfer p, t;
    struct store_account d, c;
    struct ledger_result *res = &op->result;
    bool post = (r->flags & LEDGER_TRANSFER_POST) != 0;
    int rc = store_txn_transfer_get(txn, r->link, &p);
    if (rc == HB_ENOTFOUND)
        res->field = "pending_id";
    if (rc < 0)
        goto out;
    if ((p.flags & LEDGER_TRANSFER_PENDING) == 0) {
        res->reason = "not pending";
        rc = HB_ESTATE;
        goto out;
    }
    rc = store_txn_transfer_find_link(txn, p.id, LEDGER_RESOLVE_FLAGS, &t);
    if (rc == 0) {
        res->reason = (t.flags & LEDGER_TRANSFER_EXPIRED) != 0 ? "expired"
                      : (t.flags & LEDGER_TRANSFER_POST) != 0  ? "posted"
                                                               : "voided";
        rc = HB_ESTATE;
        goto out;
    }
    if (rc != HB_ENOTFOUND)
        goto out;
    /* Posting after the timeout is refused even before the expiry has run;
     * voiding then is harmless (it does what the expiry would). */
    if (post && p.expires_at != 0 && op->now >= p.expires_at) {
        res->reason = "expired";
        rc = HB_ESTATE;
        goto out;
    }
    rc = HB_EINVAL;
    if (r->debit[0] != '\0' && strcmp(r->debit, p.debit) != 0) {
        res->field = "debit";
        goto out;
    }
    if (r->credit[0] != '\0' && strcmp(r->credit, p.credit) != 0) {
        res->field = "credit";
        goto out;
    }
    if (r->kind != 0 && r->kind != p.kind) {
        res->field = "kind";
        goto out;
    }
    if (r->tag[0] != '\0' && strcmp(r->tag, p.tag) != 0) {
        res->field = "tag";
        goto out;
    }
    if ((post && r->amount > p.amount) || (!post && r->amount != 0 && r->amount != p.amount)) {
        res->field = "amount";
        goto out;
    }
    rc = ledger__account_load(txn, op, p.debit, &d);
    if (rc == 0)
        rc = ledger__account_load(txn, op, p.credit, &c);
    if (rc < 0)
        goto out;
    rc = ledger__sub(&d.debits_pending, p.amount);
    if (rc == 0)
        rc = ledger__sub(&c.credits_pending, p.amount);
    if (rc == 0 && post)
        rc = ledger__add(&d.debits_posted, r->amount);
    if (rc == 0 && post)
        rc = ledger__add(&c.credits_posted, r->amount);
    if (rc < 0)
        goto out;
    if (d.debits_pending < 0 || c.credits_pending < 0) {
        log_error("ledger.corrupt", "pending=%s reason=reservation exceeds account sums", p.id);
        rc = HB_ETAMPER;
        goto out;
    }
    if (r->guard != NULL) {
        /* The caller's own counts, in this post's or void's savepoint. */
        rc = r->guard(txn, r->guard_data);
        if (rc < 0)
            goto out;
    }
    memset(&t, 0, sizeof(t));
    memcpy(t.id, r->id, sizeof(t.id));
    memcpy(t.debit, p.debit, sizeof(t.debit));
    memcpy(t.credit, p.credit, sizeof(t.credit));
    t.amount = post ? r->amount : p.amount;
    t.kind = p.kind;
    t.flags = r->flags | extra;
    memcpy(t.link, p.id, sizeof(t.link));
    t.ts = op->now;
    memcpy(t.ref, r->ref[0] != '\0' ? r->ref : p.ref, sizeof(t.ref));
    memcpy(t.tag, p.tag, sizeof(t.tag));
    rc = ledger__append(txn, &t);
    if (rc == 0)
        rc = store_txn_account_update(txn, &d);
    if (rc == 0)
        rc = store_txn_account_update(txn, &c);
    if (rc == 0)
        rc = store_txn_pending_remove(txn, p.id);
    if (rc == 0) {
        res->transfer = t;
        res->debit_balance = ledger__balance_of(&d, &res->balance) == 0;
    }
out:
    return rc;
}

/* Apply one transfer request: a replay, a post or void, or a new plain or
 * pending transfer. A new one leaves its debit account's balance in the
 * result, so the caller need not read it again. */
/* The transfer a request makes at now (no expiry yet). */
static void ledger__transfer_of(struct store_transfer *t, const struct ledger_req *r, int64_t now)
{
    memset(t, 0, sizeof(*t));
    memcpy(t->id, r->id, sizeof(t->id));
    memcpy(t->debit, r->debit, sizeof(t->debit));
    memcpy(t->credit, r->credit, sizeof(t->credit));
    t->amount = r->amount;
    t->kind = r->kind;
    t->flags = r->flags;
    t->ts = now;
    memcpy(t->ref, r->ref, sizeof(t->ref));
    memcpy(t->tag, r->tag, sizeof(t->tag));
}

static int ledger__transfer_apply(struct store_txn *txn, struct ledger_op *op,
                                  const struct ledger_req *r)
{
    struct store_transfer t;
    struct store_account d, c;
    struct ledger_result *res = &op->result;
    bool pending = (r->flags & LEDGER_TRANSFER_PENDING) != 0;
    int rc = store_txn_transfer_get(txn, r->id, &t);
    if (rc == 0) {
        rc = ledger__compare(r, &t, op);
        goto out;
    }
    if (rc != HB_ENOTFOUND)
        goto out;
    if ((r->flags & LEDGER_RESOLVE_FLAGS) != 0) {
        rc = ledger__resolve(txn, op, r, 0);
        goto out;
    }
    rc = ledger__account_load(txn, op, r->debit, &d);
    if (rc == 0)
        rc = ledger__account_load(txn, op, r->credit, &c);
    if (rc < 0)
        goto out;
    if ((d.flags & LEDGER_ACCOUNT_NO_OVERDRAFT) != 0) {
        int64_t avail = 0;
        rc = ledger__available(&d, &avail);
        if (rc < 0)
            goto out;
        if (avail < r->amount) {
            snprintf(res->account, sizeof(res->account), "%s", d.id);
            rc = HB_EFUNDS;
            goto out;
        }
    }
    rc = ledger__add(pending ? &d.debits_pending : &d.debits_posted, r->amount);
    if (rc == 0)
        rc = ledger__add(pending ? &c.credits_pending : &c.credits_posted, r->amount);
    if (rc < 0)
        goto out;
    if (r->guard != NULL) {
        /* The caller's own counts, in this transfer's savepoint. */
        rc = r->guard(txn, r->guard_data);
        if (rc < 0)
            goto out;
    }
    ledger__transfer_of(&t, r, op->now);
    if (pending && r->timeout_ms > 0) {
        t.expires_at = op->now;
        rc = ledger__add(&t.expires_at, r->timeout_ms);
        if (rc < 0)
            goto out;
    }
    rc = ledger__append(txn, &t);
    if (rc == 0)
        rc = store_txn_account_update(txn, &d);
    if (rc == 0)
        rc = store_txn_account_update(txn, &c);
    if (rc == 0 && pending)
        rc = store_txn_pending_add(txn, t.id, t.expires_at);
    if (rc < 0)
        goto out;
    res->transfer = t;
    res->debit_balance = ledger__balance_of(&d, &res->balance) == 0;
    if (pending)
        ledger__note_expiry(op, t.expires_at);
out:
    return rc;
}

static int ledger__account_open_run(struct store_txn *txn, struct ledger_op *op)
{
    const struct ledger_req *r = &op->one;
    struct store_account a;
    int rc = store_txn_account_get(txn, r->id, &a);
    if (rc == 0) {
        if (a.flags != r->flags) {
            op->result.field = "flags";
            rc = HB_ECONFLICT;
        } else {
            rc = HB_EEXISTS;
        }
        goto out;
    }
    if (rc != HB_ENOTFOUND)
        goto out;
    memset(&a, 0, sizeof(a));
    memcpy(a.id, r->id, sizeof(a.id));
    a.flags = r->flags;
    a.created_at = op->now;
    rc = store_txn_account_insert(txn, &a);
    if (rc < 0 || r->amount == 0)
        goto out;
    /* The bonus id is derived from the account, so it is granted once even
     * if the account record were ever recreated. */
    struct ledger_req bonus;
    memset(&bonus, 0, sizeof(bonus));
    rc = ledger__concat(bonus.id, sizeof(bonus.id), "bonus:", r->id);
    if (rc < 0)
        goto out;
    memcpy(bonus.debit, LEDGER_SYSTEM_BONUS, sizeof(LEDGER_SYSTEM_BONUS));
    memcpy(bonus.credit, r->id, sizeof(bonus.credit));
    bonus.amount = r->amount;
    bonus.kind = LEDGER_KIND_BONUS;
    memcpy(bonus.ref, "welcome bonus", sizeof("welcome bonus"));
    rc = ledger__transfer_apply(txn, op, &bonus);
    if (rc == HB_EEXISTS)
        rc = 0;
out:
    return rc;
}

/* A reversal replayed: compare with the committed part(s). */
static int ledger__reverse_compare(struct store_txn *txn, struct ledger_op *op,
                                   const struct store_transfer *old)
{
    const struct ledger_req *r = &op->one;
    struct store_transfer debt;
    char debt_id[STORE_ID_SIZE];
    int64_t total = old->amount;
    int rc = 0;
    op->result.transfer = *old;
    op->result.field = NULL;
    if ((old->flags & LEDGER_TRANSFER_DEBT) != 0) {
        op->result.debt = old->amount;
    } else if (ledger__concat(debt_id, sizeof(debt_id), r->id, ":debt") == 0) {
        rc = store_txn_transfer_get(txn, debt_id, &debt);
        if (rc == 0) {
            total += debt.amount;
            op->result.debt = debt.amount;
        } else if (rc != HB_ENOTFOUND) {
            goto out;
        }
    }
    if ((old->flags & LEDGER_TRANSFER_REVERSAL) == 0)
        op->result.field = "flags";
    else if (strcmp(old->link, r->link) != 0)
        op->result.field = "original_id";
    else if (total != r->amount)
        op->result.field = "amount";
    else if (old->kind != r->kind)
        op->result.field = "kind";
    else if (strcmp(old->ref, r->ref) != 0)
        op->result.field = "ref";
    rc = op->result.field != NULL ? HB_ECONFLICT : HB_EEXISTS;
out:
    return rc;
}

static int ledger__reverse_run(struct store_txn *txn, struct ledger_op *op)
{
    const struct ledger_req *r = &op->one;
    struct ledger_result *res = &op->result;
    struct store_transfer orig, t1, t2;
    struct store_account from, to, debt;
    int64_t reversed = 0;
    int64_t take = r->amount;
    int rc = store_txn_transfer_get(txn, r->id, &t1);
    if (rc == 0) {
        rc = ledger__reverse_compare(txn, op, &t1);
        goto out;
    }
    if (rc != HB_ENOTFOUND)
        goto out;
    rc = store_txn_transfer_get(txn, r->link, &orig);
    if (rc == HB_ENOTFOUND)
        res->field = "original_id";
    if (rc < 0)
        goto out;
    if ((orig.flags &
         (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID | LEDGER_TRANSFER_REVERSAL)) != 0) {
        res->reason = "not reversible";
        rc = HB_ESTATE;
        goto out;
    }
    rc = store_txn_link_sum(txn, orig.id, LEDGER_TRANSFER_REVERSAL, &reversed);
    if (rc < 0)
        goto out;
    if (reversed >= orig.amount) {
        res->reason = "reversed";
        rc = HB_ESTATE;
        goto out;
    }
    if (r->amount > orig.amount - reversed) {
        res->field = "amount";
        rc = HB_EINVAL;
        goto out;
    }
    rc = ledger__account_load(txn, op, orig.credit, &from);
    if (rc == 0)
        rc = ledger__account_load(txn, op, orig.debit, &to);
    if (rc < 0)
        goto out;
    if ((from.flags & LEDGER_ACCOUNT_NO_OVERDRAFT) != 0) {
        int64_t avail = 0;
        rc = ledger__available(&from, &avail);
        if (rc < 0)
            goto out;
        take = avail < 0 ? 0 : avail < r->amount ? avail : r->amount;
    }
    int64_t shortfall = r->amount - take;
    memset(&t1, 0, sizeof(t1));
    memcpy(t1.debit, orig.credit, sizeof(t1.debit));
    memcpy(t1.credit, orig.debit, sizeof(t1.credit));
    t1.kind = r->kind;
    t1.flags = LEDGER_TRANSFER_REVERSAL;
    memcpy(t1.link, orig.id, sizeof(t1.link));
    t1.ts = op->now;
    memcpy(t1.ref, r->ref, sizeof(t1.ref));
    t2 = t1;
    if (take > 0) {
        memcpy(t1.id, r->id, sizeof(t1.id));
        t1.amount = take;
        rc = ledger__add(&from.debits_posted, take);
        if (rc == 0)
            rc = ledger__add(&to.credits_posted, take);
        if (rc == 0)
            rc = ledger__append(txn, &t1);
        if (rc == 0)
            rc = store_txn_account_update(txn, &from);
        if (rc < 0)
            goto out;
        res->transfer = t1;
    }
    if (shortfall > 0) {
        /* The credits were spent: what cannot be taken back is owed, and
         * the debt account shows it. */
        rc = ledger__concat(t2.debit, sizeof(t2.debit), LEDGER_DEBT_PREFIX, orig.credit);
        if (rc == 0)
            rc = take > 0 ? ledger__concat(t2.id, sizeof(t2.id), r->id, ":debt")
                          : ledger__copy(t2.id, sizeof(t2.id), STORE_ID_SIZE - 1, r->id);
        if (rc < 0)
            goto out;
        if (strcmp(t2.debit, orig.debit) == 0) {
            snprintf(res->account, sizeof(res->account), "%s", from.id);
            rc = HB_EFUNDS;
            goto out;
        }
        rc = store_txn_account_get(txn, t2.debit, &debt);
        if (rc == HB_ENOTFOUND) {
            memset(&debt, 0, sizeof(debt));
            memcpy(debt.id, t2.debit, sizeof(debt.id));
            debt.created_at = op->now;
            rc = store_txn_account_insert(txn, &debt);
        }
        if (rc < 0)
            goto out;
        t2.amount = shortfall;
        t2.flags |= LEDGER_TRANSFER_DEBT;
        rc = ledger__add(&debt.debits_posted, shortfall);
        if (rc == 0)
            rc = ledger__add(&to.credits_posted, shortfall);
        if (rc == 0)
            rc = ledger__append(txn, &t2);
        if (rc == 0)
            rc = store_txn_account_update(txn, &debt);
        if (rc < 0)
            goto out;
        if (take == 0)
            res->transfer = t2;
        res->debt = shortfall;
    }
    rc = store_txn_account_update(txn, &to);
out:
    return rc;
}

/* The shares of a post just applied (ledger_transfer_post_split): plain
 * transfers from the account the post credited, each share's account
 * opened on its first share. The result stays the post's.
 *
 * Each share is the transfer ledger__transfer_apply would make, with the
 * account they all debit read once and written once, instead of read and
 * written again for every share: on the settlement path that was most of
 * what a split cost the store. It needs no overdraft check: the post has
 * just credited it with what the shares take. */
static int ledger__shares_apply(struct store_txn *txn, struct ledger_op *op)
{
    struct ledger_result post = op->result;
    struct store_account d;
    int rc = ledger__account_load(txn, op, post.transfer.credit, &d);
    size_t i = 0;
    for (; i < op->n && rc == 0; i++) {
        struct ledger_req *r = &op->reqs[i];
        struct store_transfer t;
        struct store_account c;
        memcpy(r->debit, post.transfer.credit, sizeof(r->debit));
        memcpy(r->ref, post.transfer.ref, sizeof(r->ref));
        memcpy(r->tag, post.transfer.tag, sizeof(r->tag));
        if (strcmp(r->debit, r->credit) == 0) {
            op->result.field = "shares"; /* a share back to where the charge went */
            rc = HB_EINVAL;
            break;
        }
        rc = store_txn_transfer_get(txn, r->id, &t);
        if (rc == 0) {
            op->result.field = "shares"; /* a share's id taken while its post was new */
            rc = HB_ECONFLICT;
            break;
        }
        if (rc != HB_ENOTFOUND)
            break;
        rc = store_txn_account_get(txn, r->credit, &c);
        if (rc == HB_ENOTFOUND) {
            memset(&c, 0, sizeof(c));
            memcpy(c.id, r->credit, sizeof(c.id));
            c.flags = strncmp(c.id, "system:", 7) == 0 ? 0u : LEDGER_ACCOUNT_NO_OVERDRAFT;
            c.created_at = op->now;
            rc = store_txn_account_insert(txn, &c);
        }
        if (rc == 0)
            rc = ledger__add(&d.debits_posted, r->amount);
        if (rc == 0)
            rc = ledger__add(&c.credits_posted, r->amount);
        if (rc < 0)
            break;
        ledger__transfer_of(&t, r, op->now);
        rc = ledger__append(txn, &t);
        if (rc == 0)
            rc = store_txn_account_update(txn, &c);
    }
    if (rc < 0) {
        op->result.index = i + 1;
        return rc;
    }
    rc = store_txn_account_update(txn, &d);
    if (rc == 0)
        op->result = post;
    return rc;
}

/* Void every reservation whose timeout passed by op->now. */
int ledger__expire_run(struct store_txn *txn, struct ledger_op *op)
{
    char ids[LEDGER_EXPIRE_CHUNK][STORE_ID_SIZE];
    size_t n = 0;
    int rc = 0;
    do {
        rc = store_txn_pending_expired(txn, op->now, ids, LEDGER_EXPIRE_CHUNK, &n);
        if (rc < 0)
            goto out;
        for (size_t i = 0; i < n; i++) {
            struct ledger_req r;
            memset(&r, 0, sizeof(r));
            rc = ledger__concat(r.id, sizeof(r.id), "expire:", ids[i]);
            if (rc < 0)
                goto out;
            r.flags = LEDGER_TRANSFER_VOID;
            memcpy(r.link, ids[i], sizeof(r.link));
            rc = ledger__resolve(txn, op, &r, LEDGER_TRANSFER_EXPIRED);
            if (rc < 0)
                goto out;
            op->result.expired++;
        }
    } while (n == LEDGER_EXPIRE_CHUNK);
    int64_t next = 0;
    rc = store_txn_pending_next(txn, &next);
    op->next_expiry = next;
out:
    return rc;
}

int ledger__run(struct store_txn *txn, struct store_job *job)
{
    struct ledger_op *op = (struct ledger_op *)job;
    struct ledger_result *res = &op->result;
    struct store_account a;
    int rc = 0;
    switch (op->type) {
    case LEDGER_OP_ACCOUNT_OPEN:
        rc = ledger__account_open_run(txn, op);
        break;
    case LEDGER_OP_TRANSFER:
        rc = ledger__transfer_apply(txn, op, &op->one);
        if (rc == 0 && op->n > 0)
            rc = ledger__shares_apply(txn, op);
        /* The notes commit with the transfer or not at all. */
        for (size_t i = 0; rc == 0 && i < op->nnotes; i++)
            rc = store_txn_state_put(txn, op->note_ns[i], op->note_key[i], op->note_value[i],
                                     op->now);
        break;
    case LEDGER_OP_BATCH: {
        bool any_new = false;
        for (size_t i = 0; i < op->n; i++) {
            rc = ledger__transfer_apply(txn, op, &op->reqs[i]);
            if (rc < 0 && rc != HB_EEXISTS) {
                res->index = i;
                goto out;
            }
            any_new = any_new || rc == 0;
        }
        rc = any_new ? 0 : HB_EEXISTS;
        break;
    }
    case LEDGER_OP_REVERSE:
        rc = ledger__reverse_run(txn, op);
        break;
    case LEDGER_OP_GET:
        rc = store_txn_transfer_get(txn, op->one.id, &res->transfer);
        if (rc == 0)
            rc = store_txn_link_sum(txn, op->one.id, LEDGER_TRANSFER_REVERSAL, &res->reversed);
        break;
    case LEDGER_OP_BALANCE:
        rc = ledger__account_load(txn, op, op->one.id, &a);
        if (rc == 0)
            rc = ledger__balance_of(&a, &res->balance);
        break;
    case LEDGER_OP_HISTORY:
        rc = store_txn_history(txn, op->one.id, op->before_seq, op->rows, op->n,
                               &res->history_count);
        res->history = op->rows;
        break;
    case LEDGER_OP_USAGE:
        rc = store_txn_usage(txn, LEDGER_KIND_GENERATION,
                             LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID,
                             op->any_account ? NULL : op->one.id, op->from, op->to, op->usage,
                             LEDGER_USAGE_MAX, &res->usage_count);
        res->usage = op->usage;
        break;
    case LEDGER_OP_EXPIRE:
        rc = ledger__expire_run(txn, op);
        break;
    case LEDGER_OP_HEAD:
        rc = store_txn_head(txn, &res->head_seq, res->head_hash);
        break;
    }
out:
    return rc;
}
