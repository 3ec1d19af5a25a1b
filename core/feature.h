/* Feature switches: chat, images, payments and approvals, each on or off
 * for the whole bot ([features] in bot.conf, live) and per server or group
 * (set by its admins with /admin feature, kept in the state table).
 *
 * A feature is on in a group when it is on globally and the group has not
 * switched it off: the operator's switch wins, a group may only narrow it.
 * The per-group switches are cached in memory, read once at start
 * (features_load) and written through on every change, so the router
 * checks a command without waiting for the store. */
#ifndef HB_FEATURE_H
#define HB_FEATURE_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>

struct command_spec;
struct store;

enum feature {
    FEATURE_CHAT = 0,      /* /chat, /new, chat turns */
    FEATURE_IMAGES = 1,    /* /imagine and its buttons */
    FEATURE_PAYMENTS = 2,  /* /deposit and paid top-ups offered by commands */
    FEATURE_APPROVALS = 3, /* holding costly generations for an admin's approval */
    FEATURE_COUNT = 4,     /* how many; also "no feature" */
};

/** State namespace of the per-group switches: key "<platform>:<group>:<feature>",
 *  value "on" or "off". */
#define FEATURE_NS "feature"

/** "chat", "images", "payments", "approvals". */
const char *feature_name(enum feature f);

/** The feature named name, or FEATURE_COUNT when none is. */
enum feature feature_parse(const char *name);

/** The feature a command (by its table name, "imagine", "admin approve")
 *  belongs to, or FEATURE_COUNT when it belongs to none and is always
 *  offered. */
enum feature feature_of_command(const char *name);

struct features;

/** Every feature on, no group switch known. NULL when out of memory. */
struct features *features_new(void);

/** Free it (NULL is fine). */
void features_free(struct features *fs);

/** Set the global switch of f (from [features]; live). */
void features_global_set(struct features *fs, enum feature f, bool on);

/** The global switch of f. fs NULL: on. */
bool features_global_on(const struct features *fs, enum feature f);

/** Whether f is on where a member speaks: globally, and in their group
 *  (platform, scope_id; scope_id NULL or "" in a DM). fs NULL: on. */
bool features_on(const struct features *fs, enum feature f, enum command_platform platform,
                 const char *scope_id);

/** Whether the group switch of f is off (regardless of the global one). */
bool features_group_off(const struct features *fs, enum feature f, enum command_platform platform,
                        const char *scope_id);

/** Whether a platform's command list should offer spec: false when its
 *  feature is off globally. fs NULL: true. */
bool features_command_listed(const struct features *fs, const struct command_spec *spec);

/** Copy the entries of table (n of them) that features_command_listed keeps
 *  into out (room for n); returns how many. For the platforms' command
 *  registrations (Telegram setMyCommands, Discord application commands). */
size_t features_table_listed(const struct features *fs, const struct command_spec *table, size_t n,
                             struct command_spec *out);

/** Completion of a load or a write: rc 0 or a negative code. */
typedef void (*features_cb)(int rc, void *data);

/** Read every per-group switch from the store into the cache. cb may be
 *  NULL. Returns 0 (cb follows) or a negative code (no callback). */
int features_load(struct features *fs, struct store *store, features_cb cb, void *data);

/** Read every per-group switch again, replacing the cache: what another
 *  daemon on the same ledger switched counts here from then on. A switch
 *  made here while the rows are read wins (the cache stays; the next
 *  refresh reads again). HB_EBUSY while a load or refresh is under way;
 *  else as features_load. */
int features_refresh(struct features *fs, struct store *store, features_cb cb, void *data);

/** features_refresh without a callback, for a change heard from another
 *  daemon (core/cluster.h): when a load or a refresh is under way (it may
 *  have begun before that change), another read follows it. 0 or an
 *  error. */
int features_refresh_after(struct features *fs, struct store *store);

/** Switch f on or off in a group: the cache at once, the store durably
 *  (cb after the commit; may be NULL). Returns 0 (cb follows) or a
 *  negative code (nothing changed, no callback). */
int features_group_set(struct features *fs, struct store *store, enum command_platform platform,
                       const char *scope_id, enum feature f, bool on, features_cb cb, void *data);

#endif
