/* API keys: bearer keys of the metered API, paid in credits.
 *
 * A key is "hai-" and 64 hex digits (32 random bytes from RAND_bytes). It
 * is shown once, to its owner, when it is made; the store keeps only
 * HMAC-SHA256 of it under a server secret (32 random bytes made on first
 * use and kept in the state table, "apikey" / "secret"). A key is high
 * entropy, so a keyed SHA-256 is enough: a stolen database does not give
 * a key back, and the secret keeps a hash from being checked offline
 * against guesses without it. A presented key is found by its hash, and the
 * stored hash is compared in constant time (CRYPTO_memcmp).
 *
 * Which account a key spends: its owner's wallet ("<platform>:<user>"), or
 * a group's pool ("pool:<platform>:<group>") when an admin of the group
 * made it for the group. Per key: a spending cap per UTC day and in total,
 * the models it may use, a requests-per-minute limit, an expiry.
 *
 * Every key is held in memory, read once from the store on first use, so
 * a request is checked without waiting on the store. Writes (create,
 * revoke, spend) go to the store as jobs and show in memory at once.
 *
 * The clear key never reaches the store, a log line or an error message;
 * only apikey_create's callback sees it. */
#ifndef HB_APIKEY_H
#define HB_APIKEY_H

#include "storage/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct apikeys;

#define APIKEY_PREFIX "hai-"
#define APIKEY_LEN 68       /* "hai-" and 64 hex digits */
#define APIKEY_SHOWN_LEN 12 /* the prefix lists show: "hai-" and 8 hex digits */
#define APIKEYS_PER_OWNER 25

/** A key's record and what is counted of it in memory. */
struct apikey {
    struct store_apikey rec;
    int64_t rate_minute; /* the minute (ms / 60000) rate_count counts */
    unsigned rate_count; /* requests in that minute */
    int64_t unsaved;     /* spent (in rec already) but not yet written: apikey_spend_flush */
    int64_t unsaved_day; /* the day (ms / APIKEY_DAY_MS) it was spent on */
    int64_t unsaved_at;  /* ms of its latest request */
};

/** An empty directory; NULL when out of memory. */
struct apikeys *apikeys_new(void);

/** Free it (no job may be under way: call after the store stopped). NULL
 *  is fine. */
void apikeys_free(struct apikeys *d);

/** Read the keys again from the store, once loaded: keys another daemon
 *  of a shared ledger made appear, and one it revoked (or spent through)
 *  takes its stored record. The cluster's heartbeat calls it
 *  (bot/generation.c). Returns 0 or a negative code. */
int apikeys_refresh(struct core *core);

/** Read the keys again now (or join the read under way) and call cb(data)
 *  once it is over, whatever it found: a key another daemon made a moment
 *  ago is known here then. Returns 0 (cb follows) or a negative code (no
 *  callback). apikeys_refresh_forget drops the callbacks with data (its
 *  owner goes). */
int apikeys_refresh_wait(struct core *core, void (*cb)(void *data), void *data);
void apikeys_refresh_forget(struct core *core, const void *data);

/** Call cb once the keys are in memory (at once, from inside, when they
 *  are; else after the store read them). rc is 0 or why they could not be
 *  read. Returns 0 (cb follows) or a negative code (no callback). */
int apikeys_ready(struct core *core, void (*cb)(int rc, void *data), void *data);

/** Whether the keys are in memory. */
bool apikeys_loaded(const struct core *core);

/** What a new key is to be. Strings are borrowed for the call. */
struct apikey_spec {
    const char *owner;   /* account it spends */
    const char *creator; /* "<platform>:<user>" */
    const char *name;    /* [A-Za-z0-9._-], 1..32 characters */
    const char *models;  /* "a,b" or NULL/"" = any */
    int64_t cap_day;     /* credits per UTC day, 0 = none */
    int64_t cap_total;   /* credits in total, 0 = none */
    int64_t rpm;         /* requests per minute, 0 = none */
    int64_t expires_at;  /* ms since the epoch, 0 = never */
};

/** Called once the key is durable: rc 0 with the clear key (shown once:
 *  the callee must not keep or log it) and its record, or an error and
 *  NULLs. */
typedef void (*apikey_created_cb)(int rc, const char *key, const struct store_apikey *rec,
                                  void *data);

/** Make a key (the keys must be loaded). Returns 0 (cb follows), HB_EINVAL
 *  (a bad name), HB_EEXISTS (the owner has a key of that name in force),
 *  HB_ELIMIT (APIKEYS_PER_OWNER in force), HB_ESTATE (not loaded), or
 *  another negative code. */
int apikey_create(struct core *core, const struct apikey_spec *spec, apikey_created_cb cb,
                  void *data);

/** The keys in force of owner (NULL: every owner), oldest first, at most
 *  max of them into out[] (borrowed until the next change). Returns how
 *  many there are (may exceed max). */
size_t apikeys_list(const struct core *core, const char *owner, const struct apikey **out,
                    size_t max);

/** The key in force of owner (NULL: any owner) whose name or shown prefix
 *  is `which`. NULL when none, or when a prefix fits several. */
const struct apikey *apikey_find(const struct core *core, const char *owner, const char *which);

/** Revoke key id (now, in memory; cb, may be NULL, gets the store's
 *  result). Returns 0 (cb follows), HB_ENOTFOUND, or another negative
 *  code. */
int apikey_revoke(struct core *core, const char *id, void (*cb)(int rc, void *data), void *data);

/** Why a presented key was refused. */
enum apikey_verdict {
    APIKEY_OK = 0,
    APIKEY_UNKNOWN,  /* not a key of ours (or malformed) */
    APIKEY_REVOKED,  /* revoked */
    APIKEY_EXPIRED,  /* past its expiry */
    APIKEY_NOTREADY, /* the keys are not loaded yet */
};

/** Find the key `presented` (the bearer token; borrowed) at now_ms. On
 *  APIKEY_OK *out is the key (valid until the next change of the
 *  directory: use it within the loop callback). */
enum apikey_verdict apikey_authenticate(struct core *core, const char *presented, int64_t now_ms,
                                        struct apikey **out);

/** Count a request against the key's per-minute limit. Returns true when
 *  it may go; false with *retry_after_ms (until the next minute). */
bool apikey_rate_take(struct apikey *k, int64_t now_ms, int64_t *retry_after_ms);

/** Completion of apikey_rate_take_shared: rc 0 (it may go), HB_ELIMIT
 *  (the minute's requests are used up: retry_after_ms until the next
 *  minute), or a storage error. */
typedef void (*apikey_rate_cb)(int rc, int64_t retry_after_ms, void *data);

/** apikey_rate_take on a ledger several daemons share: the key's requests
 *  of the minute are counted in the store (the counter "api.rpm:<id>"),
 *  so the limit holds across every daemon the requests reach. Returns 0
 *  (cb follows) or a negative code. */
int apikey_rate_take_shared(struct core *core, const struct apikey *k, int64_t now_ms,
                            apikey_rate_cb cb, void *data);

/** Whether the key may use model `name`. */
bool apikey_model_allowed(const struct apikey *k, const char *name);

/** What the key may still spend now: the least of its caps' room (INT64_MAX
 *  when it has none); 0 or less when a cap is reached. *daily says whether
 *  the daily cap is the one that binds. */
int64_t apikey_room(const struct apikey *k, int64_t now_ms, bool *daily);

/** Count credits charged through key id: in memory now (the caps see it at
 *  once), in the store with the next apikey_spend_flush. A key's spending
 *  is a counter, not money (the ledger holds the charge), so it is written
 *  behind: a write of its own after every request would take a commit
 *  that the next request's reservation waits behind. */
void apikey_spend_record(struct core *core, const char *id, int64_t amount, int64_t now_ms);

/** Write every key's unsaved spending in one store job: the daemon does
 *  every 2 seconds (so a crash forgets at most that much of the counters,
 *  never a charge) and before the ledger closes. Returns how many keys it
 *  wrote, or a negative code (the amounts stay unsaved). */
int apikey_spend_flush(struct core *core);

/** Keyed hash of a key under the directory's secret (tests). Returns 0 or
 *  HB_ESTATE when the secret is not loaded. */
int apikey_hash(const struct core *core, const char *key, uint8_t out[STORE_HASH_SIZE]);

#endif
