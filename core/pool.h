/* Per-scope pool settings that admins change with /admin pool: who spends
 * first (the pool or the member's wallet) and the pool's daily cap. Kept in
 * the state table under "pool", keyed by the pool's account id. */
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

#endif
