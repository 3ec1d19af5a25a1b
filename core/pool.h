/* Per-scope pool settings that admins change with /admin pool: who spends
 * first (the pool or the member's wallet) and the pool's daily cap. Kept in
 * the state table under "pool", keyed by the pool's account id.
 *
 * Also a pool's move when its group gets a new id on its platform (a
 * Telegram group that became a supergroup): what the old pool holds goes to
 * the new one, once. */
#ifndef HB_POOL_H
#define HB_POOL_H

#include <stdint.h>

struct core;

enum pool_policy {
    POOL_POLICY_POOL_FIRST = 0,   /* generations here spend the pool, then the wallet */
    POOL_POLICY_WALLET_FIRST = 1, /* members spend their own wallet, then the pool */
};

struct pool_settings {
    enum pool_policy policy;
    int64_t daily_cap; /* credits the pool may spend per UTC day; 0 = no cap */
};

/** The names of the policies, as admins type them. */
const char *pool_policy_name(enum pool_policy p);
int pool_policy_parse(const char *name, enum pool_policy *out);

typedef void (*pool_settings_cb)(int rc, const struct pool_settings *s, void *data);

/** Read the settings of a pool (defaults when none were set). */
int pool_settings_get(struct core *core, const char *pool, pool_settings_cb cb, void *data);

/** Write them. cb may be NULL. */
int pool_settings_put(struct core *core, const char *pool, const struct pool_settings *s,
                      pool_settings_cb cb, void *data);

/** A pool that moves to a new scope id. Strings are borrowed for the call. */
struct pool_migration {
    const char *platform; /* "telegram" */
    const char *from;     /* the old scope id ("-42") */
    const char *to;       /* the new scope id ("-1001234") */
    const char *id;       /* the transfer's id, named by the caller from the event, so
                             that the same migration reported again books nothing twice */
    const char *ref;      /* the transfer's ref: what caused it */
};

/** How a migration ended. Borrowed by the callback for its duration. */
struct pool_migrate_result {
    int rc;                /* 0 moved; HB_EEXISTS booked before (nothing moved twice); or the
                              error of the step that failed */
    int64_t credits;       /* what it moved or tried to move; 0: the old pool was absent or
                              empty (rc then says why: 0 for empty, the read error otherwise) */
    const char *from, *to; /* the pools' account names */
};

typedef void (*pool_migrate_cb)(const struct pool_migrate_result *res, void *data);

/** Move what is available in the old pool to the new one (opened when it
 *  does not exist yet) as the one transfer m->id. A repeated migration
 *  finds the old pool empty, or meets its own transfer (HB_EEXISTS, or
 *  HB_ECONFLICT when the old pool was refilled since: that is not moved).
 *  Returns 0 and later calls cb once, or a negative code at once (HB_EINVAL
 *  for bad names or from == to, HB_ECANCELED without a ledger, HB_ENOMEM)
 *  and never calls cb. */
int pool_migrate(struct core *core, const struct pool_migration *m, pool_migrate_cb cb, void *data);

#endif
