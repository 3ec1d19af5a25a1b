/* What the ledger's own files share: the operation that travels to the store
 * thread and back (ledger.c builds it, ledger_rules.c runs it), and the
 * canonical encoding and chain hash of a transfer (ledger_chain.c). */
#ifndef HB_LEDGER_INTERNAL_H
#define HB_LEDGER_INTERNAL_H

#include "core/ledger.h"
#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LEDGER_USAGE_MAX 1000 /* most usage rows per query */

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
    int (*guard)(struct store_txn *txn, void *guard_data); /* see struct ledger_transfer */
    void *guard_data;
};

struct ledger_op {
    struct store_job job; /* first: the store hands it back */
    struct ledger *ledger;
    enum ledger_op_type type;
    int64_t now; /* the ledger's clock when submitted, ms */
    ledger_cb cb;
    void *data;
    bool internal; /* the ledger's own expiry run */
    bool known;    /* an open answered from the accounts known to exist */
    struct ledger_result result;
    int64_t next_expiry;     /* earliest expiry this op created or found; 0 none */
    struct ledger_req one;   /* the request of single-transfer operations */
    struct ledger_req *reqs; /* batch: n requests (heap) */
    size_t n;
    uint64_t before_seq;         /* history */
    int64_t from, to;            /* usage */
    bool any_account;            /* usage over every account */
    bool shown;                  /* a page only shown: the store's readers may read it */
    struct store_transfer *rows; /* history page (heap) */
    struct store_usage *usage;   /* usage rows (heap) */
    /* State rows written with a new transfer (heap), nnotes of them. */
    char *note_ns[LEDGER_NOTES_MAX], *note_key[LEDGER_NOTES_MAX], *note_value[LEDGER_NOTES_MAX];
    size_t nnotes;
};

/** Copy a caller string; NULL reads as "". Fails with HB_EINVAL when it does
 *  not fit in max_len bytes (ledger.c). */
int ledger__copy(char *dst, size_t cap, size_t max_len, const char *src);

/** The store job's run function: applies op's rules inside txn
 *  (ledger_rules.c). */
int ledger__run(struct store_txn *txn, struct store_job *job);

/** Void every reservation whose timeout passed by op->now; op->next_expiry
 *  receives the next one (ledger_rules.c). */
int ledger__expire_run(struct store_txn *txn, struct ledger_op *op);

/** Seal t with the next sequence number and its chain hash, and append it
 *  (ledger_chain.c). */
int ledger__append(struct store_txn *txn, struct store_transfer *t);

/** SHA-256 over prev (the previous entry's hash, zeros before the first) and
 *  the canonical bytes of t (every field but the hash itself). Returns 0, or
 *  HB_ENOMEM when the digest cannot run. */
int ledger__hash(const uint8_t prev[STORE_HASH_SIZE], const struct store_transfer *t,
                 uint8_t out[STORE_HASH_SIZE]);

/** Lower-case hex of a hash into out (65 bytes). */
void ledger__hex(const uint8_t hash[STORE_HASH_SIZE], char out[2 * STORE_HASH_SIZE + 1]);

#endif
