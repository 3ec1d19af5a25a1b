/* The credit ledger's rules and its asynchronous API (core/ledger.h).
 *
 * Every operation becomes a store job. Its run function applies the rules on
 * the store's thread, inside the transaction (and savepoint) that will hold
 * its writes, so a balance check sees exactly what is committed before it,
 * also within one group commit. Its done function runs on the loop thread
 * once that transaction is durable and calls the caller's callback. */
#include "core/ledger.h"

#include "base/error.h"
#include "core/ledger_internal.h"
#include "base/log.h"
#include "base/metrics.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LEDGER_EXPIRE_CHUNK 64       /* reservations voided per store call */
#define LEDGER_HISTORY_MAX 100       /* largest history page */
#define LEDGER_USAGE_MAX 1000        /* most usage rows per query */
#define LEDGER_RESOLVE_FLAGS (LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID)
#define LEDGER_REQUEST_FLAGS (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_POST | LEDGER_TRANSFER_VOID)

enum ledger_op_type {
    LEDGER_OP_ACCOUNT_OPEN,
    LEDGER_OP_TRANSFER,
    LEDGER_OP_BATCH,
    LEDGER_OP_REVERSE,
    LEDGER_OP_GET,
    LEDGER_OP_BALANCE,
    LEDGER_OP_HISTORY,
    LEDGER_OP_USAGE,
    LEDGER_OP_EXPIRE,
    LEDGER_OP_HEAD,
};

/* A request, copied out of the caller's strings. */
struct ledger_req {
    char id[STORE_ID_SIZE];
    char debit[STORE_ID_SIZE];
    char credit[STORE_ID_SIZE];
    int64_t amount;
    uint32_t kind;
    uint32_t flags;
    char link[STORE_ID_SIZE]; /* pending id (post, void) or original (reversal) */
    int64_t timeout_ms;
    char ref[STORE_REF_SIZE];
    char tag[STORE_TAG_SIZE];
};

struct ledger_op {
    struct store_job job;       /* first: the store hands it back */
    struct ledger *ledger;
    enum ledger_op_type type;
    int64_t now;                /* the ledger's clock when submitted, ms */
    ledger_cb cb;
    void *data;
    bool internal;              /* the ledger's own expiry run */
    struct ledger_result result;
    int64_t next_expiry;        /* earliest expiry this op created or found; 0 none */
    struct ledger_req one;      /* the request of single-transfer operations */
    struct ledger_req *reqs;    /* batch: n requests (heap) */
    size_t n;
    uint64_t before_seq;        /* history */
    int64_t from, to;           /* usage */
    bool any_account;           /* usage over every account */
    struct store_transfer *rows; /* history page (heap) */
    struct store_usage *usage;  /* usage rows (heap) */
};

struct ledger {
    uv_loop_t *loop;
    struct store *store;
    uv_timer_t timer;           /* voids reservations as they expire */
    int64_t (*clock)(void *data);
    void *clock_data;
    bool timer_enabled;
    int64_t timer_at;           /* expiry the timer is armed for; 0 = idle */
    bool expire_running;        /* an internal expiry run is queued */
    bool expire_again;          /* the timer fired during that run */
    bool closing;
    int close_pending;          /* handles still closing */
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- Small helpers ----------------------------------------------------------- */

static int64_t ledger__real_clock(void *data)
{
    (void)data;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t ledger__now(const struct ledger *l)
{
    return l->clock(l->clock_data);
}

/* Copy a caller string; NULL reads as "". Fails when it does not fit in
 * max_len bytes. */
static int ledger__copy(char *dst, size_t cap, size_t max_len, const char *src)
{
    if (src == NULL)
        src = "";
    size_t n = strlen(src);
    if (n > max_len || n >= cap)
        return HB_EINVAL;
    memcpy(dst, src, n + 1);
    return 0;
}

static int ledger__concat(char *dst, size_t cap, const char *a, const char *b)
{
    int n = snprintf(dst, cap, "%s%s", a, b);
    return n < 0 || (size_t)n >= cap ? HB_EINVAL : 0;
}

int ledger_wallet_name(char *buf, size_t cap, const char *platform, const char *user)
{
    if (platform == NULL || user == NULL || platform[0] == '\0' || user[0] == '\0')
        return HB_EINVAL;
    int n = snprintf(buf, cap, "%s:%s", platform, user);
    return n < 0 || (size_t)n >= cap || n > LEDGER_ID_LEN_MAX ? HB_EINVAL : 0;
}

int ledger_pool_name(char *buf, size_t cap, const char *platform, const char *group)
{
    if (platform == NULL || group == NULL || platform[0] == '\0' || group[0] == '\0')
        return HB_EINVAL;
    int n = snprintf(buf, cap, "pool:%s:%s", platform, group);
    return n < 0 || (size_t)n >= cap || n > LEDGER_ID_LEN_MAX ? HB_EINVAL : 0;
}

/* ---- Canonical encoding and the chain hash ------------------------------------ */

static size_t ledger__put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
    return 8;
}

static size_t ledger__put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
    return 4;
}

static size_t ledger__put_str(uint8_t *p, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    size_t off = ledger__put_u32(p, (uint32_t)n);
    memcpy(p + off, s, n);
    return off + n;
}

/* The canonical bytes: a version tag, then every field in a fixed order,
 * integers big-endian, strings length-prefixed. Independent of the backend. */
static size_t ledger__encode(const struct store_transfer *t, uint8_t *p)
{
    size_t n = 0;
    memcpy(p, "HBL1", 4);
    n += 4;
    n += ledger__put_u64(p + n, t->seq);
    n += ledger__put_str(p + n, t->id, sizeof(t->id));
    n += ledger__put_str(p + n, t->debit, sizeof(t->debit));
    n += ledger__put_str(p + n, t->credit, sizeof(t->credit));
    n += ledger__put_u64(p + n, (uint64_t)t->amount);
    n += ledger__put_u32(p + n, t->kind);
    n += ledger__put_u32(p + n, t->flags);
    n += ledger__put_str(p + n, t->link, sizeof(t->link));
    n += ledger__put_u64(p + n, (uint64_t)t->expires_at);
    n += ledger__put_u64(p + n, (uint64_t)t->ts);
    n += ledger__put_str(p + n, t->ref, sizeof(t->ref));
    n += ledger__put_str(p + n, t->tag, sizeof(t->tag));
    return n;
}

int ledger__hash(const uint8_t prev[STORE_HASH_SIZE], const struct store_transfer *t,
                 uint8_t out[STORE_HASH_SIZE])
{
    uint8_t buf[4 + 8 * 4 + 4 * 2 + 6 * 4 + 4 * STORE_ID_SIZE + STORE_REF_SIZE + STORE_TAG_SIZE];
    size_t n = ledger__encode(t, buf);
    unsigned int len = 0;
    int rc = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, prev, STORE_HASH_SIZE) != 1 || EVP_DigestUpdate(ctx, buf, n) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != STORE_HASH_SIZE)
        rc = HB_ENOMEM;
    EVP_MD_CTX_free(ctx);
    return rc;
}

void ledger__hex(const uint8_t hash[STORE_HASH_SIZE], char out[2 * STORE_HASH_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < STORE_HASH_SIZE; i++) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 15];
    }
    out[2 * STORE_HASH_SIZE] = '\0';
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

static int ledger__account_load(struct store_txn *txn, struct ledger_op *op, const char *id,
                                struct store_account *a)
{
    int rc = store_txn_account_get(txn, id, a);
    if (rc == HB_ENOTFOUND)
        snprintf(op->result.account, sizeof(op->result.account), "%s", id);
    return rc;
}

/* Seal a transfer with the next sequence number and its chain hash, and
 * append it. */
static int ledger__append(struct store_txn *txn, struct store_transfer *t)
{
    uint64_t seq = 0;
    uint8_t prev[STORE_HASH_SIZE];
    int rc = store_txn_head(txn, &seq, prev);
    if (rc < 0)
        goto out;
    t->seq = seq + 1;
    rc = ledger__hash(prev, t, t->hash);
    if (rc < 0)
        goto out;
    rc = store_txn_transfer_append(txn, t);
out:
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
    if (rc == 0)
        res->transfer = t;
out:
    return rc;
}

/* Apply one transfer request: a replay, a post or void, or a new plain or
 * pending transfer. */
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
    memset(&t, 0, sizeof(t));
    memcpy(t.id, r->id, sizeof(t.id));
    memcpy(t.debit, r->debit, sizeof(t.debit));
    memcpy(t.credit, r->credit, sizeof(t.credit));
    t.amount = r->amount;
    t.kind = r->kind;
    t.flags = r->flags;
    t.ts = op->now;
    if (pending && r->timeout_ms > 0) {
        t.expires_at = op->now;
        rc = ledger__add(&t.expires_at, r->timeout_ms);
        if (rc < 0)
            goto out;
    }
    memcpy(t.ref, r->ref, sizeof(t.ref));
    memcpy(t.tag, r->tag, sizeof(t.tag));
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
    if ((orig.flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID | LEDGER_TRANSFER_REVERSAL)) != 0) {
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

/* Void every reservation whose timeout passed by op->now. */
static int ledger__expire_run(struct store_txn *txn, struct ledger_op *op)
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

static int ledger__run(struct store_txn *txn, struct store_job *job)
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
        break;
    case LEDGER_OP_BALANCE:
        rc = ledger__account_load(txn, op, op->one.id, &a);
        if (rc < 0)
            break;
        res->balance.posted = a.credits_posted;
        rc = ledger__sub(&res->balance.posted, a.debits_posted);
        res->balance.pending_debits = a.debits_pending;
        res->balance.pending_credits = a.credits_pending;
        if (rc == 0)
            rc = ledger__available(&a, &res->balance.available);
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

/* ---- The loop side -------------------------------------------------------------- */

static void ledger__op_free(struct ledger_op *op)
{
    if (op == NULL)
        return;
    free(op->reqs);
    free(op->rows);
    free(op->usage);
    free(op);
}

static void ledger__expire_submit(struct ledger *l);

static void ledger__timer_cb(uv_timer_t *timer)
{
    struct ledger *l = timer->data;
    l->timer_at = 0;
    ledger__expire_submit(l);
}

/* Make sure the timer fires by `at` (ms since the epoch). */
static void ledger__timer_arm(struct ledger *l, int64_t at)
{
    if (at <= 0 || !l->timer_enabled || l->closing)
        return;
    if (l->timer_at != 0 && l->timer_at <= at)
        return;
    int64_t delay = at - ledger__now(l);
    if (delay < 0)
        delay = 0;
    l->timer_at = at;
    uv_timer_start(&l->timer, ledger__timer_cb, (uint64_t)delay, 0);
}

const char *ledger_kind_name(uint32_t kind)
{
    static const char *const names[] = {"other",  "deposit",  "bonus",      "grant",   "generation",
                                        "refund", "reversal", "chargeback", "transfer"};
    return kind <= LEDGER_KIND_MAX ? names[kind] : "other";
}

/* Count credits that moved (reservations and releases are not moves). */
static void ledger__count(const struct ledger_op *op, int rc)
{
    if (rc != 0)
        return;
    const struct store_transfer *t = &op->result.transfer;
    switch (op->type) {
    case LEDGER_OP_TRANSFER:
    case LEDGER_OP_REVERSE:
        if ((t->flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID)) == 0 && t->amount > 0)
            metrics_counter_add(metrics_std()->credits_moved,
                                (const char *[]){ledger_kind_name(t->kind)}, (double)t->amount);
        break;
    case LEDGER_OP_ACCOUNT_OPEN:
        if (op->one.amount > 0)
            metrics_counter_add(metrics_std()->credits_moved, (const char *[]){"bonus"},
                                (double)op->one.amount);
        break;
    case LEDGER_OP_BATCH:
        for (size_t i = 0; i < op->n; i++) {
            if ((op->reqs[i].flags & (LEDGER_TRANSFER_PENDING | LEDGER_TRANSFER_VOID)) == 0)
                metrics_counter_add(metrics_std()->credits_moved,
                                    (const char *[]){ledger_kind_name(op->reqs[i].kind)},
                                    (double)op->reqs[i].amount);
        }
        break;
    default:
        break;
    }
}

static void ledger__done(struct store_job *job, int rc)
{
    struct ledger_op *op = (struct ledger_op *)job;
    struct ledger *l = op->ledger;
    ledger__count(op, rc);
    if (op->type == LEDGER_OP_EXPIRE) {
        if (rc < 0)
            log_error("ledger.expire", "err=%s", hb_strerror(rc));
        else if (op->result.expired > 0)
            log_info("ledger.expired", "count=%zu", op->result.expired);
    }
    if (op->internal) {
        l->expire_running = false;
        /* After a failure, try again in a second rather than never. */
        if (rc < 0)
            ledger__timer_arm(l, ledger__now(l) + 1000);
    }
    if (rc == 0 || (op->type == LEDGER_OP_EXPIRE && rc >= 0))
        ledger__timer_arm(l, op->next_expiry);
    if (op->cb != NULL)
        op->cb(rc, &op->result, op->data);
    if (op->internal && l->expire_again && !l->closing) {
        l->expire_again = false;
        ledger__expire_submit(l);
    }
    ledger__op_free(op);
}

static struct ledger_op *ledger__op_new(struct ledger *l, enum ledger_op_type type, ledger_cb cb,
                                        void *data)
{
    struct ledger_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->job.run = ledger__run;
    op->job.done = ledger__done;
    op->ledger = l;
    op->type = type;
    op->now = ledger__now(l);
    op->cb = cb;
    op->data = data;
    return op;
}

static int ledger__op_submit(struct ledger *l, struct ledger_op *op)
{
    int rc = l->closing ? HB_ECANCELED : store_submit(l->store, &op->job);
    if (rc < 0)
        ledger__op_free(op);
    return rc;
}

static void ledger__expire_submit(struct ledger *l)
{
    if (l->closing)
        return;
    if (l->expire_running) {
        l->expire_again = true;
        return;
    }
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_EXPIRE, NULL, NULL);
    if (op == NULL) {
        ledger__timer_arm(l, ledger__now(l) + 1000);
        return;
    }
    op->internal = true;
    if (ledger__op_submit(l, op) == 0)
        l->expire_running = true;
}

/* Copy and check one caller request. */
static int ledger__req_init(struct ledger_req *r, const struct ledger_transfer *t)
{
    int rc = HB_EINVAL;
    memset(r, 0, sizeof(*r));
    if (t == NULL)
        goto out;
    if (ledger__copy(r->id, sizeof(r->id), LEDGER_ID_LEN_MAX, t->id) < 0 || r->id[0] == '\0' ||
        ledger__copy(r->debit, sizeof(r->debit), LEDGER_ID_LEN_MAX, t->debit) < 0 ||
        ledger__copy(r->credit, sizeof(r->credit), LEDGER_ID_LEN_MAX, t->credit) < 0 ||
        ledger__copy(r->link, sizeof(r->link), LEDGER_ID_LEN_MAX, t->pending_id) < 0 ||
        ledger__copy(r->ref, sizeof(r->ref), STORE_REF_SIZE - 1, t->ref) < 0 ||
        ledger__copy(r->tag, sizeof(r->tag), STORE_TAG_SIZE - 1, t->tag) < 0)
        goto out;
    r->amount = t->amount;
    r->kind = t->kind;
    r->flags = t->flags;
    r->timeout_ms = t->timeout_ms;
    if (r->kind > LEDGER_KIND_MAX || r->timeout_ms < 0)
        goto out;
    switch (r->flags) {
    case 0:
    case LEDGER_TRANSFER_PENDING:
        if (r->debit[0] == '\0' || r->credit[0] == '\0' || strcmp(r->debit, r->credit) == 0 ||
            r->amount <= 0 || r->kind == 0 || r->link[0] != '\0' ||
            (r->flags == 0 && r->timeout_ms != 0))
            goto out;
        break;
    case LEDGER_TRANSFER_POST:
    case LEDGER_TRANSFER_VOID:
        if (r->link[0] == '\0' || r->timeout_ms != 0 || r->amount < 0 ||
            (r->flags == LEDGER_TRANSFER_POST && r->amount == 0))
            goto out;
        break;
    default:
        goto out;
    }
    rc = 0;
out:
    return rc;
}

int ledger_transfer_create(struct ledger *l, const struct ledger_transfer *t, ledger_cb cb,
                           void *data)
{
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_TRANSFER, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    int rc = ledger__req_init(&op->one, t);
    if (rc < 0) {
        ledger__op_free(op);
        return rc;
    }
    return ledger__op_submit(l, op);
}

int ledger_transfer_post(struct ledger *l, const char *id, const char *pending_id, int64_t amount,
                         ledger_cb cb, void *data)
{
    struct ledger_transfer t = {.id = id, .pending_id = pending_id, .amount = amount,
                                .flags = LEDGER_TRANSFER_POST};
    return ledger_transfer_create(l, &t, cb, data);
}

int ledger_transfer_void(struct ledger *l, const char *id, const char *pending_id, ledger_cb cb,
                         void *data)
{
    struct ledger_transfer t = {.id = id, .pending_id = pending_id, .flags = LEDGER_TRANSFER_VOID};
    return ledger_transfer_create(l, &t, cb, data);
}

int ledger_batch_create(struct ledger *l, const struct ledger_transfer *ts, size_t n, ledger_cb cb,
                        void *data)
{
    int rc = 0;
    struct ledger_op *op = NULL;
    if (ts == NULL || n == 0 || n > 10000) {
        rc = HB_EINVAL;
        goto out;
    }
    op = ledger__op_new(l, LEDGER_OP_BATCH, cb, data);
    if (op != NULL)
        op->reqs = calloc(n, sizeof(*op->reqs));
    if (op == NULL || op->reqs == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    op->n = n;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ledger__req_init(&op->reqs[i], &ts[i]);
    if (rc < 0)
        goto out;
    rc = ledger__op_submit(l, op);
    op = NULL;
out:
    ledger__op_free(op);
    return rc;
}

/* An operation whose only argument is one id or account id. */
static int ledger__simple(struct ledger *l, enum ledger_op_type type, const char *id, ledger_cb cb,
                          void *data, struct ledger_op **opp)
{
    struct ledger_op *op = ledger__op_new(l, type, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    if (ledger__copy(op->one.id, sizeof(op->one.id), LEDGER_ID_LEN_MAX, id) < 0 ||
        op->one.id[0] == '\0') {
        ledger__op_free(op);
        return HB_EINVAL;
    }
    if (opp != NULL) {
        *opp = op;
        return 0;
    }
    return ledger__op_submit(l, op);
}

int ledger_account_open(struct ledger *l, const char *account, uint32_t flags, int64_t bonus,
                        ledger_cb cb, void *data)
{
    struct ledger_op *op = NULL;
    if (bonus < 0 || (flags & ~LEDGER_ACCOUNT_NO_OVERDRAFT) != 0)
        return HB_EINVAL;
    int rc = ledger__simple(l, LEDGER_OP_ACCOUNT_OPEN, account, cb, data, &op);
    if (rc < 0)
        return rc;
    op->one.flags = flags;
    op->one.amount = bonus;
    return ledger__op_submit(l, op);
}

int ledger_transfer_reverse(struct ledger *l, const char *id, const char *original_id,
                            int64_t amount, uint32_t kind, const char *ref, ledger_cb cb,
                            void *data)
{
    struct ledger_op *op = NULL;
    if (amount <= 0 || (kind != LEDGER_KIND_REFUND && kind != LEDGER_KIND_REVERSAL &&
                        kind != LEDGER_KIND_CHARGEBACK))
        return HB_EINVAL;
    int rc = ledger__simple(l, LEDGER_OP_REVERSE, id, cb, data, &op);
    if (rc < 0)
        return rc;
    if (ledger__copy(op->one.link, sizeof(op->one.link), LEDGER_ID_LEN_MAX, original_id) < 0 ||
        op->one.link[0] == '\0' ||
        ledger__copy(op->one.ref, sizeof(op->one.ref), STORE_REF_SIZE - 1, ref) < 0) {
        ledger__op_free(op);
        return HB_EINVAL;
    }
    op->one.amount = amount;
    op->one.kind = kind;
    op->one.flags = LEDGER_TRANSFER_REVERSAL;
    return ledger__op_submit(l, op);
}

int ledger_transfer_get(struct ledger *l, const char *id, ledger_cb cb, void *data)
{
    return ledger__simple(l, LEDGER_OP_GET, id, cb, data, NULL);
}

int ledger_balance_get(struct ledger *l, const char *account, ledger_cb cb, void *data)
{
    return ledger__simple(l, LEDGER_OP_BALANCE, account, cb, data, NULL);
}

int ledger_history_get(struct ledger *l, const char *account, uint64_t before_seq, size_t limit,
                       ledger_cb cb, void *data)
{
    struct ledger_op *op = NULL;
    if (limit == 0 || limit > LEDGER_HISTORY_MAX)
        return HB_EINVAL;
    int rc = ledger__simple(l, LEDGER_OP_HISTORY, account, cb, data, &op);
    if (rc < 0)
        return rc;
    op->rows = calloc(limit, sizeof(*op->rows));
    if (op->rows == NULL) {
        ledger__op_free(op);
        return HB_ENOMEM;
    }
    op->n = limit;
    op->before_seq = before_seq;
    return ledger__op_submit(l, op);
}

int ledger_usage_get(struct ledger *l, const char *account, int64_t from_ms, int64_t to_ms,
                     ledger_cb cb, void *data)
{
    struct ledger_op *op = NULL;
    int rc = 0;
    if (from_ms > to_ms)
        return HB_EINVAL;
    if (account != NULL) {
        rc = ledger__simple(l, LEDGER_OP_USAGE, account, cb, data, &op);
    } else {
        op = ledger__op_new(l, LEDGER_OP_USAGE, cb, data);
        rc = op != NULL ? 0 : HB_ENOMEM;
    }
    if (rc < 0)
        return rc;
    op->any_account = account == NULL;
    op->from = from_ms;
    op->to = to_ms;
    op->usage = calloc(LEDGER_USAGE_MAX, sizeof(*op->usage));
    if (op->usage == NULL) {
        ledger__op_free(op);
        return HB_ENOMEM;
    }
    return ledger__op_submit(l, op);
}

int ledger_expire_run(struct ledger *l, ledger_cb cb, void *data)
{
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_EXPIRE, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    return ledger__op_submit(l, op);
}

int ledger_head_get(struct ledger *l, ledger_cb cb, void *data)
{
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_HEAD, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    return ledger__op_submit(l, op);
}

/* ---- Start and close ------------------------------------------------------------- */

/* Before the thread starts: create the system accounts and void what
 * expired while the daemon was down (or crashed). Returns the next expiry. */
static int ledger__startup(struct ledger *l, int64_t *next_expiry)
{
    static const char *const system_accounts[] = {LEDGER_SYSTEM_DEPOSITS, LEDGER_SYSTEM_BONUS,
                                                  LEDGER_SYSTEM_GRANTS, LEDGER_SYSTEM_REVENUE};
    struct store_txn *txn = NULL;
    struct ledger_op *op = ledger__op_new(l, LEDGER_OP_EXPIRE, NULL, NULL);
    int rc = op != NULL ? 0 : HB_ENOMEM;
    if (rc < 0)
        goto out;
    rc = store_txn_begin(l->store, true, &txn);
    if (rc < 0)
        goto out;
    for (size_t i = 0; i < sizeof(system_accounts) / sizeof(system_accounts[0]); i++) {
        struct store_account a;
        rc = store_txn_account_get(txn, system_accounts[i], &a);
        if (rc == HB_ENOTFOUND) {
            memset(&a, 0, sizeof(a));
            snprintf(a.id, sizeof(a.id), "%s", system_accounts[i]);
            a.created_at = op->now;
            rc = store_txn_account_insert(txn, &a);
        }
        if (rc < 0)
            goto out;
    }
    rc = ledger__expire_run(txn, op);
    if (rc < 0)
        goto out;
    rc = store_txn_end(txn, true);
    txn = NULL;
    if (rc < 0)
        goto out;
    if (op->result.expired > 0)
        log_info("ledger.expired", "count=%zu at=start", op->result.expired);
    *next_expiry = op->next_expiry;
out:
    if (txn != NULL)
        store_txn_end(txn, false);
    ledger__op_free(op);
    return rc;
}

static void ledger__free_on_close(uv_handle_t *handle)
{
    free(handle->data);
}

struct ledger *ledger_new(uv_loop_t *loop, const struct ledger_options *opts, int *rc_out)
{
    int rc = 0;
    int64_t next = 0;
    struct ledger *l = NULL;
    if (loop == NULL || opts == NULL) {
        rc = HB_EINVAL;
        goto out;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    l->loop = loop;
    l->clock = opts->clock != NULL ? opts->clock : ledger__real_clock;
    l->clock_data = opts->clock_data;
    l->timer_enabled = !opts->no_expire_timer;
    struct store_options so = {.path = opts->path,
                               .single_commit = opts->single_commit,
                               .relaxed_sync = opts->relaxed_sync,
                               .batch_max = opts->batch_max};
    l->store = store_new(&so, &rc);
    if (l->store == NULL)
        goto out;
    rc = ledger__startup(l, &next);
    if (rc < 0)
        goto out;
    rc = uv_timer_init(loop, &l->timer);
    if (rc < 0)
        goto out;
    l->timer.data = l;
    rc = store_start(l->store, loop);
    if (rc < 0) {
        /* The timer handle is initialised: it must be closed, not freed. */
        l->closing = true;
        store_free(l->store);
        uv_close((uv_handle_t *)&l->timer, ledger__free_on_close);
        l = NULL;
        goto out;
    }
    ledger__timer_arm(l, next);
out:
    if (rc < 0 && l != NULL) {
        store_free(l->store);
        free(l);
        l = NULL;
    }
    if (rc_out != NULL)
        *rc_out = rc;
    return l;
}

static void ledger__close_step(struct ledger *l)
{
    if (--l->close_pending > 0)
        return;
    void (*cb)(void *data) = l->close_cb;
    void *data = l->close_data;
    store_free(l->store);
    free(l);
    if (cb != NULL)
        cb(data);
}

static void ledger__timer_closed(uv_handle_t *handle)
{
    ledger__close_step(handle->data);
}

static void ledger__store_stopped(struct store *store, void *data)
{
    (void)store;
    ledger__close_step(data);
}

void ledger_close(struct ledger *l, void (*cb)(void *data), void *data)
{
    if (l == NULL || l->closing)
        return;
    l->closing = true;
    l->close_cb = cb;
    l->close_data = data;
    l->close_pending = 2;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, ledger__timer_closed);
    store_stop(l->store, ledger__store_stopped, l);
}

struct store *ledger_store(struct ledger *ledger)
{
    return ledger->store;
}
