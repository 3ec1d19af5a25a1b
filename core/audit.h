/* The audit trail: every admin action and decision, append-only and
 * hash-chained (its own chain beside the ledger's).
 *
 * An entry names who acted (the actor: an admin as "<platform>:<user id>",
 * or "config" for a reload, "system" for what the daemon found itself),
 * what was done (the action: "grant", "model.disable", "config.reload",
 * "payment.unmatched", ...), what it was done to (the subject: a wallet, a
 * pool, a payment), and a small JSON object of details. Never put a secret
 * or prompt text in any of them.
 *
 * Writes are store jobs: they run on the store's thread in its group
 * commits and call back on the loop once durable. Entry n stores the hash of
 * entry n - 1 and SHA-256 over that and its own canonical bytes (core/chain.h),
 * so an edited, removed or reordered entry is found by audit_verify_txn. */
#ifndef HB_AUDIT_H
#define HB_AUDIT_H

#include "core/command.h"
#include "storage/store.h"

#include <cjson/cJSON.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct core;

#define AUDIT_ACTOR_CONFIG "config" /* a reload from the file or SIGHUP */
#define AUDIT_ACTOR_SYSTEM "system" /* the daemon itself (a payment it could not book) */

/** rc is 0 once the entry is durable, or why it was not written. */
typedef void (*audit_cb)(int rc, void *data);

/** Append an entry. actor NULL reads as "system"; subject and detail_json
 *  may be NULL (""). detail_json should be a JSON object's text (at most
 *  STORE_AUDIT_DETAIL_SIZE - 1 bytes). Every string is copied. cb may be
 *  NULL. Returns 0 (cb follows), or HB_EINVAL (no store, no action, or a
 *  string too long), HB_ENOMEM, HB_ECANCELED (the store is stopping); then
 *  cb is never called. */
int audit_record(struct store *store, const char *actor, const char *action, const char *subject,
                 const char *detail_json, audit_cb cb, void *data);

/** Fill an entry's actor (NULL: "system"), action, subject and detail
 *  (NULL: "") and its time (the real clock). Returns 0, or HB_EINVAL when
 *  action is empty or a string does not fit. */
int audit_entry_set(struct store_audit *e, const char *actor, const char *action,
                    const char *subject, const char *detail_json);

/** Seal e (seq, prev and hash) after the trail's head and append it inside
 *  txn, on the store's thread: for an entry that must commit together with
 *  what it records (a ledger transfer's guard, another store job). */
int audit_append_txn(struct store_txn *txn, struct store_audit *e);

/** The actor string of an invocation's member: "<platform>:<user id>". */
void audit_actor(char *buf, size_t cap, const struct invocation *inv);

/** Record an entry whose detail is a cJSON object (consumed: freed here,
 *  NULL for none), without waiting: a failure is logged, never reported.
 *  Later store jobs see the entry (jobs run in order). Returns what
 *  audit_record returned. */
int audit_note(struct store *store, const char *actor, const char *action, const char *subject,
               cJSON *detail);

/** audit_note for a command handler: the actor is inv's member, the store
 *  core's ledger's (nothing is recorded while the ledger is stopping). */
int audit_note_inv(struct core *core, const struct invocation *inv, const char *action,
                   const char *subject, cJSON *detail);

/** A page of entries, newest first; borrowed by the callback. */
typedef void (*audit_list_cb)(int rc, const struct store_audit *entries, size_t n, void *data);

/** Read entries with seq < before_seq (0: no bound) whose actor, action or
 *  subject equals match (NULL: every entry), newest first, skipping skip of
 *  them, at most max (<= 100). Returns 0 (cb follows) or a negative code. */
int audit_list(struct store *store, const char *match, uint64_t before_seq, size_t skip, size_t max,
               audit_list_cb cb, void *data);

/** What a walk of the trail found. */
struct audit_verify_result {
    uint64_t entries;              /* entries walked */
    uint8_t head[STORE_HASH_SIZE]; /* the last entry's hash */
    char where[64];                /* broken: "entry seq=N" */
    char what[256];                /* broken: what is wrong there */
};

/** Recompute the chain inside txn: seq continuity from 1, each entry's
 *  prev and hash, and the recorded head. Returns 0 (intact), 1 (broken:
 *  where and what say how), or a negative code. */
int audit_verify_txn(struct store_txn *txn, struct audit_verify_result *res);

/** `haibot audit verify`: open the database read-only, walk the trail and
 *  print one line to out ("audit verify: ok entries=N head=N hash=HEX" or
 *  "audit verify: FAILED at entry seq=N: ..."). Returns 0, 1 (broken), or
 *  a negative code (cannot check). */
int audit_verify_file(const char *db_path, FILE *out);

/** audit_verify_file on the database `where` names (either backend). */
int audit_verify_store(const struct store_options *where, FILE *out);

/** Print the outcome of a walk as audit_verify_file does; returns rc. */
int audit_verify_print(int rc, const struct audit_verify_result *res, FILE *out);

#endif
