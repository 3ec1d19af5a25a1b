/* The member directory (core/member.h): usernames seen on a platform, kept
 * durably in the state table with a cache in front of it. */
#include "core/member.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "core/core.h"
#include "core/ledger.h"
#include "core/state.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct member_dir {
    struct map *names; /* "<platform>:<lower-case name>" -> heap id string */
};

struct member_dir *member_dir_new(void)
{
    struct member_dir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->names = map_new(free);
    if (d->names == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

void member_dir_free(struct member_dir *d)
{
    if (d == NULL)
        return;
    map_free(d->names);
    free(d);
}

/* The directory key of a name: "<platform>:<name>" in lower case, without a
 * leading "@". Returns false for a name that cannot be a username. */
static bool member__key(enum command_platform platform, const char *name, char *key, size_t cap)
{
    if (name[0] == '@')
        name++;
    size_t len = strlen(name);
    const char *p = command_platform_name(platform);
    if (len == 0 || len > 64 || strlen(p) + 1 + len >= cap)
        return false;
    size_t off = (size_t)snprintf(key, cap, "%s:", p);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(isalnum(c) || c == '_' || c == '.' || c == '-'))
            return false;
        key[off + i] = (char)tolower(c);
    }
    key[off + len] = '\0';
    return true;
}

static struct store *member__store(const struct core *core)
{
    return core->ledger != NULL ? ledger_store(core->ledger) : NULL;
}

/* Remember key -> id in the cache (best effort: the store is the truth). */
static void member__cache(struct core *core, const char *key, const char *id)
{
    struct member_dir *d = core->members;
    if (d == NULL)
        return;
    const char *have = map_get(d->names, key);
    if (have != NULL && strcmp(have, id) == 0)
        return;
    if (map_count(d->names) >= MEMBER_CACHE_MAX) {
        /* A cache, not the directory: start over rather than grow. */
        struct map_iter it;
        map_iter_init(&it, d->names);
        while (map_iter_next(&it, NULL, NULL))
            map_iter_remove(&it);
    }
    char *copy = strdup(id);
    if (copy != NULL && map_set(d->names, key, copy) < 0)
        free(copy);
}

/* ---- seen ---------------------------------------------------------------- */

struct member_seen_op {
    struct core *core;
    char key[STATE_KEY_MAX];
    char id[COMMAND_ID_MAX];
};

static void member__saved(int rc, const char *value, void *data)
{
    struct member_seen_op *op = data;
    (void)value;
    if (rc < 0)
        log_warn("member.not_saved", "key=%s error=%s", op->key, hb_strerror(rc));
    free(op);
}

void member_seen(struct core *core, enum command_platform platform, const char *user_id,
                 const char *username)
{
    char key[STATE_KEY_MAX];
    struct store *store = member__store(core);
    if (store == NULL || user_id == NULL || user_id[0] == '\0' || username == NULL ||
        strlen(user_id) >= COMMAND_ID_MAX || !member__key(platform, username, key, sizeof(key)))
        return;
    struct member_dir *d = core->members;
    const char *have = d != NULL ? map_get(d->names, key) : NULL;
    if (have != NULL && strcmp(have, user_id) == 0)
        return; /* known and unchanged: no store write */
    struct member_seen_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return;
    op->core = core;
    snprintf(op->key, sizeof(op->key), "%s", key);
    snprintf(op->id, sizeof(op->id), "%s", user_id);
    /* New or changed since this process last saw it (or no cache): write
     * it. After a restart each name costs one write the first time it is
     * seen. The cache is set first, so a command right behind this update
     * resolves the name without waiting for the write. */
    member__cache(core, key, user_id);
    int rc = state_put(store, MEMBER_NS_NAME, key, user_id, member__saved, op);
    if (rc < 0) {
        log_warn("member.not_saved", "key=%s error=%s", key, hb_strerror(rc));
        free(op);
    }
}

/* ---- resolve ------------------------------------------------------------- */

struct member_resolve_op {
    struct core *core;
    char key[STATE_KEY_MAX];
    member_resolve_cb cb;
    void *data;
};

static void member__looked_up(int rc, const char *value, void *data)
{
    struct member_resolve_op *op = data;
    if (rc == 0 && (value == NULL || value[0] == '\0'))
        rc = HB_ENOTFOUND;
    if (rc == 0)
        member__cache(op->core, op->key, value);
    op->cb(rc, rc == 0 ? value : NULL, op->data);
    free(op);
}

static bool member__digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        if (!isdigit((unsigned char)*s))
            return false;
    }
    return true;
}

void member_resolve(struct core *core, const struct invocation *inv, const char *ref,
                    member_resolve_cb cb, void *data)
{
    if (ref == NULL || ref[0] == '\0') {
        cb(HB_ENOTFOUND, NULL, data);
        return;
    }
    if (inv->platform == COMMAND_PLATFORM_CONSOLE) {
        /* The console has one member: its own user, by name. */
        const char *name = ref[0] == '@' ? ref + 1 : ref;
        bool self = strcmp(name, inv->user_id) == 0 || strcasecmp(name, inv->user_name) == 0;
        cb(self ? 0 : HB_ENOTFOUND, self ? inv->user_id : NULL, data);
        return;
    }
    if (member__digits(ref)) {
        /* A platform id (a Discord snowflake, a Telegram user id) names a
         * member directly, as a mention or a reply does. */
        cb(0, ref, data);
        return;
    }
    char key[STATE_KEY_MAX];
    if (!member__key(inv->platform, ref, key, sizeof(key))) {
        cb(HB_ENOTFOUND, NULL, data);
        return;
    }
    const char *cached = core->members != NULL ? map_get(core->members->names, key) : NULL;
    if (cached != NULL) {
        cb(0, cached, data);
        return;
    }
    struct store *store = member__store(core);
    struct member_resolve_op *op = store != NULL ? calloc(1, sizeof(*op)) : NULL;
    if (op == NULL) {
        cb(store == NULL ? HB_ECANCELED : HB_ENOMEM, NULL, data);
        return;
    }
    op->core = core;
    op->cb = cb;
    op->data = data;
    snprintf(op->key, sizeof(op->key), "%s", key);
    int rc = state_get(store, MEMBER_NS_NAME, key, member__looked_up, op);
    if (rc < 0) {
        free(op);
        cb(rc, NULL, data);
    }
}
