/* The member directory: which member a name in a command means.
 *
 * An admin names a member as a platform lets them: a Discord user option or
 * mention (the id itself), a Telegram numeric id, a reply to the member's
 * message (the adapter fills invocation.target_id), or a `@username` the bot
 * has seen. Adapters tell the directory each username they see with
 * member_seen(); it keeps username -> id durably in the state table
 * (namespace MEMBER_NS_NAME, key "<platform>:<lower-case username>", value
 * the id), and an in-memory cache so that an update whose mapping is already
 * known costs no store write. A name nobody was seen with resolves to
 * nothing: no wallet, bonus or pool is ever opened for it.
 *
 * On the console the one member is the console's own user: its name (with
 * or without `@`) resolves to it, and nothing else does. */
#ifndef HB_MEMBER_H
#define HB_MEMBER_H

#include "core/command.h"

#include <stddef.h>

struct core;

#define MEMBER_NS_NAME "member.name" /* state namespace: username -> id */
#define MEMBER_CACHE_MAX 100000      /* names held in memory before the cache starts over */

/** The in-memory side of the directory. The store side needs none. */
struct member_dir;

/** An empty cache. NULL when out of memory. */
struct member_dir *member_dir_new(void);

/** Release the cache. d may be NULL. */
void member_dir_free(struct member_dir *d);

/** A platform saw user_id with username (without "@"; case is ignored).
 *  Remembers the mapping, writing it to the store only when it is new or
 *  changed since this process saw it (without a cache, core->members NULL,
 *  every call writes). Nothing to wait for; errors are logged. */
void member_seen(struct core *core, enum command_platform platform, const char *user_id,
                 const char *username);

/** Completion of member_resolve(): rc 0 with the member's platform user id
 *  (borrowed for the call), HB_ENOTFOUND when the reference names nobody
 *  known, or another negative code. */
typedef void (*member_resolve_cb)(int rc, const char *user_id, void *data);

/** Resolve a USER option value of inv (as core/commands.c parsed it: a
 *  bare id, or "@name") to a member of inv's platform. cb is always called,
 *  possibly before this returns. */
void member_resolve(struct core *core, const struct invocation *inv, const char *ref,
                    member_resolve_cb cb, void *data);

#endif
