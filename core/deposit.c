#include "core/deposit.h"

#include "core/messages.h"
#include "core/format.h"
#include "core/ledger.h"
#include "core/payref.h"
#include "core/state.h"
#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/text.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(DEPOSIT_ID_MAX == LEDGER_ID_LEN_MAX, "a deposit id is a ledger id");

/* "5.00 USD": prices are in minor units; two decimals, as most currencies. */
static void deposit__price(char *buf, size_t cap, int64_t minor, const char *currency)
{
    char cur[8] = "";
    for (size_t i = 0; currency != NULL && currency[i] != '\0' && i + 1 < sizeof(cur); i++)
        cur[i] = (char)(currency[i] >= 'a' && currency[i] <= 'z' ? currency[i] - 'a' + 'A'
                                                                 : currency[i]);
    snprintf(buf, cap, "%lld.%02lld %s", (long long)(minor / 100), (long long)(minor % 100), cur);
}

static void deposit__link(struct text_buf *t, const char *name, const char *url, const char *param,
                          const char *key, const char *account, const char *label)
{
    char ref[PAYREF_REFERENCE_MAX + 1];
    if (key == NULL || account == NULL ||
        payref_reference_make(ref, sizeof(ref), key, strlen(key), account) < 0)
        return;
    text_buf_add(t, "  %s for %s: %s%s%s=%s\n", name, label, url, strchr(url, '?') ? "&" : "?",
                 param, ref);
}

char *deposit_text_make(const struct deposit_methods *m, const char *wallet, const char *pool)
{
    bool card = m->stripe_url != NULL || m->paddle_url != NULL;
    if (!card && m->treasury == NULL)
        return NULL;
    struct text_buf t = {0};
    char a[64], b[64];
    if (card) {
        text_buf_add(&t, MSG_DEPOSIT_CARD);
        if (m->npackages > 0) {
            text_buf_add(&t, " (");
            for (size_t i = 0; i < m->npackages; i++) {
                deposit__price(a, sizeof(a), m->packages[i].price, m->currency);
                text_buf_add(&t, "%s" MSG_DEPOSIT_PACKAGE, i > 0 ? ", " : "", a,
                             format_credits(b, sizeof(b), m->packages[i].credits));
            }
            text_buf_add(&t, ")");
        }
        text_buf_add(&t, ":\n");
        bool personal = m->key != NULL && (wallet != NULL || pool != NULL);
        if (personal) {
            if (m->stripe_url != NULL) {
                deposit__link(&t, "Stripe", m->stripe_url, "client_reference_id", m->key, wallet,
                              MSG_DEPOSIT_FOR_WALLET);
                deposit__link(&t, "Stripe", m->stripe_url, "client_reference_id", m->key, pool,
                              MSG_DEPOSIT_FOR_POOL);
            }
            if (m->paddle_url != NULL) {
                deposit__link(&t, "Paddle", m->paddle_url, "reference", m->key, wallet,
                              MSG_DEPOSIT_FOR_WALLET);
                deposit__link(&t, "Paddle", m->paddle_url, "reference", m->key, pool,
                              MSG_DEPOSIT_FOR_POOL);
            }
            text_buf_add(&t, "  " MSG_DEPOSIT_LINKS_YOURS "\n");
        } else {
            if (m->stripe_url != NULL)
                text_buf_add(&t, "  Stripe: %s\n", m->stripe_url);
            if (m->paddle_url != NULL)
                text_buf_add(&t, "  Paddle: %s\n", m->paddle_url);
        }
    }
    if (m->treasury != NULL) {
        text_buf_add(&t, MSG_DEPOSIT_HBAR, m->treasury);
        if (m->tinybars_per_credit > 0) {
            /* 1 HBAR is 100,000,000 tinybars. */
            int64_t per_hbar = 100000000 / m->tinybars_per_credit;
            if (per_hbar > 0)
                text_buf_add(&t, " (" MSG_DEPOSIT_HBAR_RATE ")",
                             format_credits(a, sizeof(a), per_hbar));
        }
        for (size_t i = 0; i < m->ntokens; i++)
            text_buf_add(&t, "%s " MSG_DEPOSIT_TOKEN, i == 0 ? "; " MSG_DEPOSIT_ALSO : ",",
                         m->tokens[i].id, (long long)m->tokens[i].units_per_credit);
        text_buf_add(&t, ".\n");
        char memo[PAYREF_MEMO_MAX + 1];
        bool any = false;
        if (m->key != NULL && wallet != NULL &&
            payref_memo_make(memo, sizeof(memo), m->key, strlen(m->key), wallet) == 0) {
            text_buf_add(&t, "  " MSG_DEPOSIT_MEMO_WALLET "\n", memo);
            any = true;
        }
        if (m->key != NULL && pool != NULL &&
            payref_memo_make(memo, sizeof(memo), m->key, strlen(m->key), pool) == 0) {
            text_buf_add(&t, "  " MSG_DEPOSIT_MEMO_POOL "\n", memo);
            any = true;
        }
        text_buf_add(&t,
                     any ? "  " MSG_DEPOSIT_MEMO_EXACT "\n" : "  " MSG_DEPOSIT_MEMO_PERSONAL "\n");
    }
    text_buf_trim(&t);
    if (t.buf == NULL)
        return NULL;
    return t.buf;
}

/* ---- booking ------------------------------------------------------------ */

int deposit_id_make(char *out, size_t cap, const char *method, const char *payment,
                    const char *part)
{
    if (out == NULL || cap == 0 || method == NULL || method[0] == '\0' || payment == NULL ||
        payment[0] == '\0')
        return HB_EINVAL;
    bool more = part != NULL && part[0] != '\0';
    int n = snprintf(out, cap, "%s:%s%s%s", method, payment, more ? ":" : "", more ? part : "");
    if (n < 0 || (size_t)n >= cap || n > DEPOSIT_ID_MAX) {
        out[0] = '\0';
        return HB_EINVAL;
    }
    return 0;
}

/* One booking on its way through the ledger; strings copied. */
struct deposit_op {
    struct ledger *ledger; /* borrowed: the ledger answers every call before it is freed */
    deposit_cb cb;
    void *data;
    struct deposit_result res;
    notify_fn notify;
    void *notify_data;
    int64_t credits;
    char id[DEPOSIT_ID_MAX + 1];
    char account[DEPOSIT_ID_MAX + 1];
    char channel[COMMAND_ID_MAX]; /* "" when unknown */
    char ref[STORE_REF_SIZE];
    char method[32];
    char via[32];                  /* "" when the caller answers itself */
    char debt[DEPOSIT_ID_MAX + 8]; /* "debt:<account>" */
    int64_t owed;                  /* what debt said before the repayment */
    struct deposit_op *next;       /* the repayment queue */
};

/* Repayments run one at a time: each reads the debt and then books from
 * it, and two deposits to one account must not both repay the same debt.
 * The loop is single-threaded, so a queue in the module is enough. */
static struct deposit_op *deposit__repay_head, *deposit__repay_tail;
static bool deposit__repay_busy;

static int deposit__copy(char *dst, size_t cap, const char *src, bool required)
{
    size_t n = src != NULL ? strlen(src) : 0;
    if ((required && n == 0) || n >= cap)
        return HB_EINVAL;
    memcpy(dst, src != NULL ? src : "", n + 1);
    return 0;
}

static struct deposit_op *deposit__op_new(struct ledger *l, deposit_cb cb, void *data)
{
    struct deposit_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->ledger = l;
    op->cb = cb;
    op->data = data;
    op->res.balance = -1;
    return op;
}

static void deposit__finish(struct deposit_op *op, int rc, const char *step)
{
    if (rc < 0)
        op->res.step = step;
    op->cb(rc, &op->res, op->data);
    free(op);
}

/* Tell the owner of the account, now that the credit is durable: a wallet
 * by DM (a balance is never posted where others read it), a pool in the
 * chat its deposit was started in. */
static void deposit__notify(struct deposit_op *op)
{
    const char *note = notify_payment(op->notify, op->notify_data, op->account, op->channel,
                                      op->via, op->credits, op->res.balance);
    /* Taken by an adapter (whose outbox keeps it from here: its row is
     * written before this removal, the store keeping their order), or
     * naming nobody. Otherwise the next start sends it. */
    if (notify_note_final(note))
        notify_pending_clear(ledger_store(op->ledger), op->id);
    log_info("payment.notify",
             "account=%s credits=%" PRId64 " balance=%" PRId64 " provider=%s note=%s", op->account,
             op->credits, op->res.balance, op->method, note);
}

static void deposit__balance(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    op->res.balance = rc == 0 && r != NULL ? r->balance.available : -1;
    /* A replay was told the first time. */
    if (!op->res.existed && op->via[0] != '\0')
        deposit__notify(op);
    deposit__finish(op, 0, NULL);
}

int deposit_repay_id_make(char *out, size_t cap, const char *deposit_id)
{
    if (out == NULL || cap == 0 || deposit_id == NULL || deposit_id[0] == '\0')
        return HB_EINVAL;
    int n = snprintf(out, cap, "%s:repay", deposit_id);
    if (n >= 0 && (size_t)n < cap && n <= DEPOSIT_ID_MAX)
        return 0;
    /* Too long to append to: a digest of the deposit's id names it as well. */
    unsigned char md[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)deposit_id, strlen(deposit_id), md);
    hex_encode(md, sizeof(md), hex);
    n = snprintf(out, cap, "repay:%s", hex);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        return HB_EINVAL;
    }
    return 0;
}

static void deposit__repay_start(struct deposit_op *op);

/* The repayment of this deposit is settled (booked, or nothing was owed):
 * a replay has nothing more to repay. */
static void deposit__repay_settled(struct deposit_op *op)
{
    state_put(ledger_store(op->ledger), DEPOSIT_NS_REPAY, op->id, NULL, NULL, NULL);
}

/* No repayment was tried: only the balance is still to come. */
static void deposit__repay_done_alone(struct deposit_op *op)
{
    if (ledger_balance_get(op->ledger, op->account, deposit__balance, op) < 0)
        deposit__balance(HB_ECANCELED, NULL, op);
}

/* The repayment is over (booked, nothing owed, or failed: the credit
 * stands either way); read the balance for the answer, and let the next
 * deposit repay. */
static void deposit__repay_done(struct deposit_op *op)
{
    deposit__repay_busy = false;
    struct deposit_op *next = deposit__repay_head;
    if (next != NULL) {
        deposit__repay_head = next->next;
        if (deposit__repay_head == NULL)
            deposit__repay_tail = NULL;
        next->next = NULL;
        deposit__repay_start(next);
    }
    deposit__repay_done_alone(op);
}

static void deposit__repaid(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    (void)r;
    if (rc == 0 || rc == HB_EEXISTS || rc == HB_ECONFLICT)
        deposit__repay_settled(op);
    if (rc == 0) {
        log_info("payment.debt_repaid", "account=%s credits=%" PRId64 " owed=%" PRId64 " id=%s",
                 op->account, op->res.repaid, op->owed, op->id);
    } else {
        /* Exists: repaid when this deposit was first booked. Conflict: it
         * was, with what was owed then. Short of funds: spent meanwhile;
         * the next deposit repays. */
        if (rc != HB_EEXISTS && rc != HB_ECONFLICT)
            log_warn("payment.debt_not_repaid", "account=%s id=%s error=%s", op->account, op->id,
                     hb_strerror(rc));
        op->res.repaid = 0;
    }
    deposit__repay_done(op);
}

static void deposit__repay_funds(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    int64_t avail = rc == 0 && r != NULL ? r->balance.available : 0;
    int64_t amount = op->owed < op->credits ? op->owed : op->credits;
    if (amount > avail)
        amount = avail;
    char id[DEPOSIT_ID_MAX + 1];
    if (amount <= 0 || deposit_repay_id_make(id, sizeof(id), op->id) < 0) {
        if (rc == 0)
            deposit__repay_settled(op); /* nothing this deposit can repay */
        deposit__repay_done(op);
        return;
    }
    op->res.repaid = amount;
    char ref[STORE_REF_SIZE];
    snprintf(ref, sizeof(ref), "debt repaid from %.200s", op->id);
    struct ledger_transfer t = {.id = id,
                                .debit = op->account,
                                .credit = op->debt,
                                .amount = amount,
                                .kind = LEDGER_KIND_TRANSFER,
                                .ref = ref};
    if (ledger_transfer_create(op->ledger, &t, deposit__repaid, op) < 0)
        deposit__repaid(HB_ECANCELED, NULL, op);
}

static void deposit__repay_debt(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    /* The debt account is debited by what refunds could not take back:
     * a negative balance is what is owed. */
    op->owed = rc == 0 && r != NULL && r->balance.posted < 0 ? -r->balance.posted : 0;
    if (op->owed == 0) {
        if (rc == 0 || rc == HB_ENOTFOUND)
            deposit__repay_settled(op);
        deposit__repay_done(op);
        return;
    }
    if (ledger_balance_get(op->ledger, op->account, deposit__repay_funds, op) < 0)
        deposit__repay_done(op);
}

static void deposit__repay_start(struct deposit_op *op)
{
    deposit__repay_busy = true;
    if (ledger_balance_get(op->ledger, op->debt, deposit__repay_debt, op) < 0)
        deposit__repay_done(op);
}

static void deposit__repay_queue(struct deposit_op *op);

/* A replay: its repayment is owed only while the credit's marker is there. */
static void deposit__repay_marked(int rc, const char *value, void *data)
{
    struct deposit_op *op = data;
    if (rc == 0 && value != NULL)
        deposit__repay_queue(op);
    else
        deposit__repay_done_alone(op);
}

static void deposit__credited(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    (void)r;
    if (rc == HB_EEXISTS) {
        op->res.existed = true;
        rc = 0;
    }
    if (rc < 0) {
        deposit__finish(op, rc, "credit");
        return;
    }
    /* Credited: what the account owes is repaid first, then the balance
     * for the answer. A replay repays only when the credit's marker says a
     * stop came between the credit and its repayment (the repayment's id
     * is derived from the deposit's, so it happens once); never debt that
     * came after the credit. */
    if (snprintf(op->debt, sizeof(op->debt), "%s%s", LEDGER_DEBT_PREFIX, op->account) >=
        (int)sizeof(op->debt)) {
        deposit__repay_done_alone(op);
        return;
    }
    if (op->res.existed) {
        if (state_get(ledger_store(op->ledger), DEPOSIT_NS_REPAY, op->id, deposit__repay_marked,
                      op) < 0)
            deposit__repay_done_alone(op);
        return;
    }
    deposit__repay_queue(op);
}

static void deposit__repay_queue(struct deposit_op *op)
{
    if (deposit__repay_busy) {
        if (deposit__repay_tail != NULL)
            deposit__repay_tail->next = op;
        else
            deposit__repay_head = op;
        deposit__repay_tail = op;
        return;
    }
    deposit__repay_start(op);
}

static void deposit__opened(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    (void)r;
    /* An account that exists, even with other flags, may still take a
     * credit: the transfer below is the judge. */
    if (rc < 0 && rc != HB_EEXISTS && rc != HB_ECONFLICT) {
        deposit__finish(op, rc, "open account");
        return;
    }
    struct ledger_transfer t = {.id = op->id,
                                .debit = LEDGER_SYSTEM_DEPOSITS,
                                .credit = op->account,
                                .amount = op->credits,
                                .kind = LEDGER_KIND_DEPOSIT,
                                .ref = op->ref};
    /* The notice it owes commits with the credit: a kill right after the
     * commit cannot leave the payment untold. */
    char value[DEPOSIT_ID_MAX * 2 + COMMAND_ID_MAX + 128];
    struct ledger_note notes[2] = {
        /* Its repayment of debt is still to be looked at. */
        {.ns = DEPOSIT_NS_REPAY, .key = op->id, .value = "1"},
        {.ns = NOTIFY_NS_PENDING, .key = op->id, .value = value},
    };
    bool noted = op->via[0] != '\0' && op->notify != NULL &&
                 notify_pending_value(value, sizeof(value), op->account, op->channel, op->via,
                                      op->credits, ledger_now_ms(op->ledger)) == 0;
    rc = ledger_transfer_create_notes(op->ledger, &t, notes, noted ? 2 : 1, deposit__credited, op);
    if (rc < 0)
        deposit__finish(op, rc, "credit");
}

int deposit_credit(struct ledger *ledger, const struct deposit_credit *c, deposit_cb cb, void *data)
{
    if (c == NULL || cb == NULL || c->credits <= 0)
        return HB_EINVAL;
    if (ledger == NULL)
        return HB_ECANCELED;
    struct deposit_op *op = deposit__op_new(ledger, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    int rc = deposit__copy(op->id, sizeof(op->id), c->id, true);
    if (rc == 0)
        rc = deposit__copy(op->account, sizeof(op->account), c->account, true);
    if (rc == 0)
        rc = deposit__copy(op->channel, sizeof(op->channel), c->channel, false);
    if (rc == 0)
        rc = deposit__copy(op->ref, sizeof(op->ref), c->ref, false);
    if (rc == 0)
        rc = deposit__copy(op->method, sizeof(op->method), c->method, false);
    if (rc == 0)
        rc = deposit__copy(op->via, sizeof(op->via), c->via, false);
    if (rc < 0) {
        free(op);
        return rc;
    }
    op->credits = c->credits;
    op->notify = c->notify;
    op->notify_data = c->notify_data;
    /* A pool is funded by its group, never by a welcome bonus. */
    bool pool = strncmp(op->account, "pool:", 5) == 0;
    rc = ledger_account_open(ledger, op->account, LEDGER_ACCOUNT_NO_OVERDRAFT,
                             pool ? 0 : c->welcome_bonus, deposit__opened, op);
    if (rc < 0)
        free(op);
    return rc;
}

static void deposit__reversed(int rc, const struct ledger_result *r, void *data)
{
    struct deposit_op *op = data;
    if (rc == HB_EEXISTS) {
        op->res.existed = true;
        rc = 0;
    }
    if (rc == 0 && r != NULL)
        op->res.debt = r->debt;
    deposit__finish(op, rc, "reverse");
}

int deposit_reverse(struct ledger *ledger, const struct deposit_reversal *r, deposit_cb cb,
                    void *data)
{
    if (r == NULL || cb == NULL || r->credits <= 0 || r->id == NULL || r->id[0] == '\0' ||
        r->original == NULL || r->original[0] == '\0')
        return HB_EINVAL;
    if (ledger == NULL)
        return HB_ECANCELED;
    struct deposit_op *op = deposit__op_new(ledger, cb, data);
    if (op == NULL)
        return HB_ENOMEM;
    uint32_t kind = r->chargeback ? LEDGER_KIND_CHARGEBACK : LEDGER_KIND_REFUND;
    int rc = ledger_transfer_reverse(ledger, r->id, r->original, r->credits, kind, r->ref,
                                     deposit__reversed, op);
    if (rc < 0)
        free(op);
    return rc;
}
