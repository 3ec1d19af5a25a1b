/* The credit ledger: accounts, transfers, reservations, and the proof.
 *
 * Double entry: every transfer debits one account and credits another by the
 * same integer amount, so the balances of all accounts sum to zero. An
 * account's balance is credits_posted - debits_posted; its available balance
 * also subtracts the debits it has reserved (pending). Accounts flagged
 * LEDGER_ACCOUNT_NO_OVERDRAFT never go below zero, reservations included.
 *
 * Two-phase transfers: a pending transfer reserves credits until it is
 * posted (all of it or less, releasing the rest), voided, or its timeout
 * passes (the ledger voids it). Posts and voids are new transfers linked to
 * the pending one; a pending transfer resolves exactly once.
 *
 * Idempotency: the caller names every transfer with an id derived from the
 * event that caused it. A replay with the same fields completes with
 * HB_EEXISTS (a success: nothing happened twice) and the transfer as first
 * committed; the same id with different fields completes with HB_ECONFLICT
 * and result->field naming the first field that differs.
 *
 * History is append-only. A refund or chargeback is a reversal: a new
 * transfer back. When the credits were already spent, the shortfall is
 * booked to the account's debt account ("debt:<account>").
 *
 * Every committed transfer carries SHA-256 over the previous entry's hash and
 * its own canonical bytes; ledger_verify_file recomputes the chain and the
 * invariants.
 *
 * Asynchronous calls are made on the loop thread. Each returns 0 and later
 * calls its callback exactly once, on the loop, after the operation's
 * transaction is durably committed (or failed); or returns a negative code
 * at once (HB_EINVAL for a malformed request, HB_ENOMEM, HB_ECANCELED while
 * closing) and never calls it. */
#ifndef HB_LEDGER_H
#define HB_LEDGER_H

#include "storage/store.h"
#include "base/clock.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#define LEDGER_ID_LEN_MAX 120 /* longest caller id or account id, in bytes */

/* System accounts, created at start. */
#define LEDGER_SYSTEM_DEPOSITS "system:deposits" /* outside money coming in */
#define LEDGER_SYSTEM_BONUS "system:bonus"       /* welcome bonuses */
#define LEDGER_SYSTEM_GRANTS "system:grants"     /* operator grants */
#define LEDGER_SYSTEM_REVENUE "system:revenue"   /* credits spent on generations */
#define LEDGER_DEBT_PREFIX "debt:"               /* "debt:<account>": owed clawbacks */

/* Account flags. */
#define LEDGER_ACCOUNT_NO_OVERDRAFT 0x1u /* available balance never below zero */

/* Transfer flags. A request sets at most one of PENDING, POST and VOID; the
 * others are set by the ledger. */
#define LEDGER_TRANSFER_PENDING 0x01u  /* reserve: post or void later */
#define LEDGER_TRANSFER_POST 0x02u     /* settle the pending transfer pending_id */
#define LEDGER_TRANSFER_VOID 0x04u     /* release the pending transfer pending_id */
#define LEDGER_TRANSFER_REVERSAL 0x08u /* reverses the transfer in link */
#define LEDGER_TRANSFER_EXPIRED 0x10u  /* a void made because the timeout passed */
#define LEDGER_TRANSFER_DEBT 0x20u     /* the part of a reversal booked to debt */

enum ledger_kind {
    LEDGER_KIND_DEPOSIT = 1,    /* money in from outside (payment) */
    LEDGER_KIND_BONUS = 2,      /* welcome bonus */
    LEDGER_KIND_GRANT = 3,      /* operator grant */
    LEDGER_KIND_GENERATION = 4, /* spent on a generation; tag names the model */
    LEDGER_KIND_REFUND = 5,     /* refund to the payer */
    LEDGER_KIND_REVERSAL = 6,   /* correction of a mistake */
    LEDGER_KIND_CHARGEBACK = 7, /* a payment taken back by the platform */
    LEDGER_KIND_TRANSFER = 8,   /* between wallets and pools */
    LEDGER_KIND_SHARE = 9,      /* a revenue share of a generation's charge ([revenue]) */
    LEDGER_KIND_MAX = 9
};

/** A transfer request. Strings are borrowed for the duration of the call;
 *  NULL reads as "". */
struct ledger_transfer {
    const char *id;         /* caller's id, derived from the causing event */
    const char *debit;      /* account debited (may be omitted on post/void) */
    const char *credit;     /* account credited (may be omitted on post/void) */
    int64_t amount;         /* credits > 0; a void may give 0 */
    uint32_t kind;          /* enum ledger_kind (may be 0 on post/void: inherited) */
    uint32_t flags;         /* 0, PENDING, POST or VOID */
    const char *pending_id; /* POST/VOID: the pending transfer */
    int64_t timeout_ms;     /* PENDING: ms until it expires; 0 = never */
    const char *ref;        /* what caused it (free text, no prompt text) */
    const char *tag;        /* generation: the model name */
    /* Optional, new plain or pending transfers and voids only (and the post
     * of ledger_transfer_post_split): runs on the store's thread inside the
     * transfer's own transaction, after every ledger check passed and before
     * anything is written, and never for a replay. A negative return fails
     * the transfer with that code, and what guard wrote is undone with it.
     * Lets other durable counts (the generation limits) move all-or-none
     * with a reservation, its charge or its void, in the same commit.
     * It may run more than once for one transfer (the store runs a group
     * of jobs again when a later one fails: storage/store.h, grouped), so
     * it sets what it reports rather than adds to it, and keeps nothing
     * outside the transaction. guard_data is the caller's and must live
     * until the callback. */
    int (*guard)(struct store_txn *txn, void *guard_data);
    void *guard_data;
};

/** An account's balance. */
struct ledger_balance {
    int64_t posted;          /* credits_posted - debits_posted */
    int64_t pending_debits;  /* reserved by open pending debits */
    int64_t pending_credits; /* promised by open pending credits */
    int64_t available;       /* posted - pending_debits */
    int64_t debits_posted;   /* everything that ever left the account (spent) */
    int64_t created_at;      /* ms since the epoch the account was opened */
};

/** What an operation produced. Borrowed by the callback for its duration. */
struct ledger_result {
    struct store_transfer transfer; /* the transfer committed, or the one that exists */
    const char *field;             /* HB_ECONFLICT / HB_EINVAL: the offending field ("amount"...) */
    const char *reason;            /* HB_ESTATE: "posted", "voided", "expired", "not pending"... */
    char account[STORE_ID_SIZE];   /* HB_ENOTFOUND / HB_EFUNDS: the account concerned */
    size_t index;                  /* batches: index of the transfer that failed */
    int64_t debt;                  /* reversals: credits booked to the debt account */
    int64_t reversed;              /* ledger_transfer_get: what its reversals add up to */
    struct ledger_balance balance; /* ledger_balance_get; a transfer newly applied: its debit
                                      account's, after it (then debit_balance is set) */
    bool debit_balance;            /* balance is the new transfer's debit account's */
    const struct store_transfer *history; /* ledger_history_get: newest first */
    size_t history_count;
    const struct store_usage *usage; /* ledger_usage_get: by day, then model */
    size_t usage_count;
    size_t expired;    /* ledger_expire_run: reservations voided */
    uint64_t head_seq; /* ledger_head_get: chain head */
    uint8_t head_hash[STORE_HASH_SIZE];
};

typedef void (*ledger_cb)(int rc, const struct ledger_result *result, void *data);

struct ledger_options {
    enum store_backend_kind backend; /* SQLite (the default) or PostgreSQL */
    const char *path;                /* SQLite: database file (borrowed for the call) */
    const char *url;                 /* PostgreSQL: connection string (borrowed; a secret) */
    struct clock clock;              /* ms since the epoch; the zero value reads the real clock */
    bool single_commit;              /* one transaction per operation (benchmark baseline) */
    bool relaxed_sync;               /* tests on tmpfs only: commits are not durable */
    unsigned batch_max;              /* most operations per transaction; 0 = default */
    unsigned readers;                /* the store's readers (store.h) */
    unsigned spin_us;     /* the loop polls this long for the store's answers (store.h); 0: never */
    bool no_expire_timer; /* do not void on a timer (tests call ledger_expire_run) */
    int64_t expire_poll_ms; /* PostgreSQL: also look for expired reservations (other daemons')
                               this often; 0 = LEDGER_EXPIRE_POLL_MS. SQLite: never */
};

#define LEDGER_EXPIRE_POLL_MS 60000

struct ledger;

/** Open the ledger on `loop`: open and migrate the database, create the
 *  system accounts, void every reservation whose timeout has passed (those a
 *  crash left behind), and start the store's thread. Returns NULL with *rc
 *  set on failure (HB_ESCHEMA for a database newer than this build). */
struct ledger *ledger_new(uv_loop_t *loop, const struct ledger_options *opts, int *rc);

/** The store the ledger writes through, for other durable records that
 *  share its thread and its group commits (core/state.h). Borrowed; valid
 *  until ledger_close(). */
struct store *ledger_store(struct ledger *ledger);

/** The loop the ledger answers on (ledger_new's), for work that goes
 *  with a store job, such as a slow hash made on libuv's thread pool. */
uv_loop_t *ledger_loop(struct ledger *ledger);

/** The ledger's clock (ledger_options.clock): ms since the epoch. */
int64_t ledger_now_ms(const struct ledger *ledger);

/** Finish every queued operation (their callbacks fire), stop the thread,
 *  close the handles and free the ledger; then cb(data) (cb may be NULL). */
void ledger_close(struct ledger *ledger, void (*cb)(void *data), void *data);

/** Create an account with `flags` if it does not exist, and give a new
 *  account the welcome bonus (0: none) from LEDGER_SYSTEM_BONUS once, as the
 *  transfer "bonus:<account>". An existing account completes with
 *  HB_EEXISTS (or HB_ECONFLICT, field "flags", when its flags differ). */
int ledger_account_open(struct ledger *ledger, const char *account, uint32_t flags, int64_t bonus,
                        ledger_cb cb, void *data);

/** Create one transfer (plain, pending, post or void). Errors through the
 *  callback: HB_ENOTFOUND (result->account or field "pending_id"), HB_EFUNDS
 *  (result->account), HB_ESTATE (result->reason), HB_EINVAL (result->field),
 *  HB_ECONFLICT (result->field), HB_EOVERFLOW.
 *
 *  Every movement of credits is durable before its callback runs. A
 *  pending transfer (a hold, not a movement) is answered once committed,
 *  visible to every later check, with its sync made right after: a power
 *  cut in between takes it back, and with it nothing else, since its post
 *  or void cannot be durable before it is (a process crash loses nothing:
 *  the commit is in the operating system's hands). */
int ledger_transfer_create(struct ledger *ledger, const struct ledger_transfer *t, ledger_cb cb,
                           void *data);

/** A state row (core/state.h) written in the same store transaction as a
 *  transfer, only when the transfer is newly applied: what must not be
 *  lost if the process dies right after the commit (a notice owed for a
 *  payment or a voided job). value NULL deletes the row. */
struct ledger_note {
    const char *ns;
    const char *key;
    const char *value;
};

/** ledger_transfer_create, and note (may be NULL) with it, atomically. */
int ledger_transfer_create_noted(struct ledger *ledger, const struct ledger_transfer *t,
                                 const struct ledger_note *note, ledger_cb cb, void *data);

/** The same with n notes (at most LEDGER_NOTES_MAX), all in the transfer's
 *  transaction. */
#define LEDGER_NOTES_MAX 2
int ledger_transfer_create_notes(struct ledger *ledger, const struct ledger_transfer *t,
                                 const struct ledger_note *notes, size_t n, ledger_cb cb,
                                 void *data);

/** Post `amount` (1..reserved) of the pending transfer pending_id as `id`. */
int ledger_transfer_post(struct ledger *ledger, const char *id, const char *pending_id,
                         int64_t amount, ledger_cb cb, void *data);
/** ledger_transfer_post, and note (may be NULL) with it, atomically. */
int ledger_transfer_post_noted(struct ledger *ledger, const char *id, const char *pending_id,
                               int64_t amount, const struct ledger_note *note, ledger_cb cb,
                               void *data);

/** One share of a posted charge (ledger_transfer_post_split). */
struct ledger_share {
    const char *account; /* credited; opened when missing (LEDGER_ACCOUNT_NO_OVERDRAFT
                            unless it starts with "system:") */
    int64_t amount;      /* > 0 */
};
#define LEDGER_SHARES_MAX 9

/** Post post->amount of the pending transfer post->pending_id as post->id
 *  (post->guard, when set, runs as for a new transfer; other fields are
 *  ignored), note (may be NULL) with it, and in the same transaction n plain
 *  transfers "<id>:s<i>" (kind LEDGER_KIND_SHARE, the pending transfer's
 *  ref and tag) from the pending transfer's credit account to each share's
 *  account: the charge and its split commit together or not at all. The
 *  shares must add up to amount exactly (else HB_EINVAL, field "shares"),
 *  so a split never creates or loses a credit. A replay of an id that
 *  exists completes with HB_EEXISTS and moves nothing again (its shares
 *  committed with it). The result is the post's, as ledger_transfer_post
 *  gives it. */
int ledger_transfer_post_split(struct ledger *ledger, const struct ledger_transfer *post,
                               const struct ledger_share *shares, size_t n,
                               const struct ledger_note *note, ledger_cb cb, void *data);

/** Void the pending transfer pending_id as `id`, releasing all of it;
 *  note (may be NULL) is written with it (ledger_transfer_create_noted). */
int ledger_transfer_void(struct ledger *ledger, const char *id, const char *pending_id,
                         ledger_cb cb, void *data);
int ledger_transfer_void_noted(struct ledger *ledger, const char *id, const char *pending_id,
                               const struct ledger_note *note, ledger_cb cb, void *data);

/** Create n transfers that all apply or none does. On failure result->index
 *  names the failing one and rc is its error. All of them existing already
 *  completes with HB_EEXISTS. */
int ledger_batch_create(struct ledger *ledger, const struct ledger_transfer *ts, size_t n,
                        ledger_cb cb, void *data);

/** Reverse `amount` of a posted transfer as `id` (kind REFUND, REVERSAL or
 *  CHARGEBACK). What the credited account can no longer cover is booked as
 *  "<id>:debt" from "debt:<account>"; result->debt says how much. Reversals
 *  of one transfer never add up to more than its amount. */
int ledger_transfer_reverse(struct ledger *ledger, const char *id, const char *original_id,
                            int64_t amount, uint32_t kind, const char *ref, ledger_cb cb,
                            void *data);

/** Read one transfer by id into result->transfer (HB_ENOTFOUND), and what
 *  the reversals of it add up to so far into result->reversed. */
int ledger_transfer_get(struct ledger *ledger, const char *id, ledger_cb cb, void *data);

/** Read an account's balance into result->balance (HB_ENOTFOUND). */
int ledger_balance_get(struct ledger *ledger, const char *account, ledger_cb cb, void *data);

/** Page through an account's history, newest first: at most `limit` (1..100)
 *  transfers with seq < before_seq (0 = from the newest). A page to show:
 *  with the store's readers (store_submit_read) it sees what was committed,
 *  not the operations still queued. */
int ledger_history_get(struct ledger *ledger, const char *account, uint64_t before_seq,
                       size_t limit, ledger_cb cb, void *data);

/** Generation usage per day and model with from_ms <= ts < to_ms, for the
 *  transfers debiting `account` (NULL = everyone). Posted amounts only. A
 *  page to show, read as ledger_history_get's. */
int ledger_usage_get(struct ledger *ledger, const char *account, int64_t from_ms, int64_t to_ms,
                     ledger_cb cb, void *data);

/** ledger_usage_get for a rule that decides on it (a pool's daily cap):
 *  read where the writes are, after every operation submitted before it. */
int ledger_usage_exact(struct ledger *ledger, const char *account, int64_t from_ms, int64_t to_ms,
                       ledger_cb cb, void *data);

/** Void every reservation whose timeout has passed by the ledger's clock
 *  (the ledger also does this on its own timer); result->expired counts. */
int ledger_expire_run(struct ledger *ledger, ledger_cb cb, void *data);

/** Read the chain head into result->head_seq and result->head_hash. */
int ledger_head_get(struct ledger *ledger, ledger_cb cb, void *data);

/** A kind's name for statistics: "deposit", "generation", ... */
const char *ledger_kind_name(uint32_t kind);

/** "discord:<user>" (platform and id as given) into buf. Returns 0, or
 *  HB_EINVAL when empty or longer than LEDGER_ID_LEN_MAX. */
int ledger_wallet_name(char *buf, size_t cap, const char *platform, const char *user);

/** "pool:<platform>:<group>" into buf, as ledger_wallet_name. */
int ledger_pool_name(char *buf, size_t cap, const char *platform, const char *group);

/** `haibot ledger verify`: recompute the hash chain and the invariants of
 *  the database at db_path (read only; safe beside a running daemon).
 *  Writes a report to out. Returns 0 when intact, 1 when broken (the report
 *  names the first bad entry and what is wrong), or a negative code when it
 *  cannot check (missing file, schema). */
int ledger_verify_file(const char *db_path, FILE *out);

/** A chain head as published: the entry's position and its hash. */
struct ledger_head {
    uint64_t seq;                  /* the entry's position, from 1 */
    uint8_t hash[STORE_HASH_SIZE]; /* its SHA-256 chain hash */
};

/** Parse "SEQ:HASH" (HASH: 64 hex digits), as `ledger verify --head` takes
 *  it. Returns 0 or HB_EINVAL. */
int ledger_head_parse(const char *text, struct ledger_head *out);

/** ledger_verify_file, and also fail (1) unless the chain holds the
 *  published head: entry head->seq exists and has head->hash. A rewritten
 *  or truncated history cannot hold a head published before the rewrite.
 *  head NULL is ledger_verify_file. */
int ledger_verify_file_head(const char *db_path, const struct ledger_head *head, FILE *out);

/** `haibot ledger head`: print "seq=<n> hash=<hex>" of the chain head.
 *  Returns 0 or a negative code. */
int ledger_head_file(const char *db_path, FILE *out);

/** ledger_verify_file_head and ledger_head_file on the database `where`
 *  names (either backend; opened read only). */
int ledger_verify_store(const struct store_options *where, const struct ledger_head *head,
                        FILE *out);
int ledger_head_store(const struct store_options *where, FILE *out);

#endif
