#include "core/feature.h"

#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "core/commands.h"
#include "core/state.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const feature_names[FEATURE_COUNT] = {"chat", "images", "payments", "approvals"};

/* Which commands each feature owns, by table name. Names not in the table
 * yet (the approval commands) cost nothing and take effect once they are. */
static const struct {
    const char *command;
    enum feature feature;
} feature_commands[] = {
    {"chat", FEATURE_CHAT},
    {"new", FEATURE_CHAT},
    {"imagine", FEATURE_IMAGES},
    {"deposit", FEATURE_PAYMENTS},
    {"admin approvals", FEATURE_APPROVALS},
    {"admin approve", FEATURE_APPROVALS},
    {"admin reject", FEATURE_APPROVALS},
};

struct features {
    bool global_off[FEATURE_COUNT]; /* [features] says off */
    struct map *groups;             /* "<platform>:<group>" -> mask of features switched off,
                                       stored as the pointer's value (no allocation) */
    unsigned loading;               /* loads out in the store */
    bool freed;                     /* features_free ran: the last load's answer frees it */
    unsigned sets;                  /* switches made here, so that a refresh sees it raced one */
    /* A refresh asked for while a read was under way (which may have
     * begun before the change that asked for it): made after it. */
    bool again;
    struct store *again_store;
};

const char *feature_name(enum feature f)
{
    return (unsigned)f < FEATURE_COUNT ? feature_names[f] : "none";
}

enum feature feature_parse(const char *name)
{
    for (unsigned i = 0; name != NULL && i < FEATURE_COUNT; i++) {
        if (strcmp(feature_names[i], name) == 0)
            return (enum feature)i;
    }
    return FEATURE_COUNT;
}

enum feature feature_of_command(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(feature_commands) / sizeof(feature_commands[0]);
         i++) {
        if (strcmp(feature_commands[i].command, name) == 0)
            return feature_commands[i].feature;
    }
    return FEATURE_COUNT;
}

struct features *features_new(void)
{
    struct features *fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return NULL;
    fs->groups = map_new(NULL);
    if (fs->groups == NULL) {
        free(fs);
        return NULL;
    }
    return fs;
}

static void features__destroy(struct features *fs)
{
    map_free(fs->groups);
    free(fs);
}

void features_free(struct features *fs)
{
    if (fs == NULL)
        return;
    /* A load still queued in the store answers later: it finds fs there,
     * freed, and tells nobody. */
    fs->freed = true;
    if (fs->loading == 0)
        features__destroy(fs);
}

void features_global_set(struct features *fs, enum feature f, bool on)
{
    if (fs != NULL && (unsigned)f < FEATURE_COUNT)
        fs->global_off[f] = !on;
}

bool features_global_on(const struct features *fs, enum feature f)
{
    return fs == NULL || (unsigned)f >= FEATURE_COUNT || !fs->global_off[f];
}

static void features__group_key(char *buf, size_t cap, enum command_platform platform,
                                const char *scope_id)
{
    snprintf(buf, cap, "%s:%s", command_platform_name(platform), scope_id);
}

static uintptr_t features__mask(const struct features *fs, enum command_platform platform,
                                const char *scope_id)
{
    if (fs == NULL || scope_id == NULL || scope_id[0] == '\0')
        return 0;
    char key[COMMAND_ID_MAX + 16];
    features__group_key(key, sizeof(key), platform, scope_id);
    return (uintptr_t)map_get(fs->groups, key);
}

bool features_group_off(const struct features *fs, enum feature f, enum command_platform platform,
                        const char *scope_id)
{
    if ((unsigned)f >= FEATURE_COUNT)
        return false;
    return (features__mask(fs, platform, scope_id) & ((uintptr_t)1 << f)) != 0;
}

bool features_on(const struct features *fs, enum feature f, enum command_platform platform,
                 const char *scope_id)
{
    return features_global_on(fs, f) && !features_group_off(fs, f, platform, scope_id);
}

bool features_command_listed(const struct features *fs, const struct command_spec *spec)
{
    return features_global_on(fs, feature_of_command(spec->name));
}

size_t features_table_listed(const struct features *fs, const struct command_spec *table, size_t n,
                             struct command_spec *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (features_command_listed(fs, &table[i]))
            out[m++] = table[i];
    }
    return m;
}

/* Set or clear bit f of a group's mask in groups (the cache, or a refresh's
 * copy of it). */
static int features__cache_set(struct map *groups, const char *group, enum feature f, bool on)
{
    uintptr_t mask = (uintptr_t)map_get(groups, group);
    if (on)
        mask &= ~((uintptr_t)1 << f);
    else
        mask |= (uintptr_t)1 << f;
    if (mask == 0) {
        map_remove(groups, group);
        return 0;
    }
    return map_set(groups, group, (void *)mask);
}

struct features_op {
    struct features *fs;
    features_cb cb;
    void *data;
    struct map *fresh; /* a refresh: the switches as read, replacing the cache at the end */
    unsigned sets_at;  /* ... unless a switch was made here meanwhile (fs->sets moved) */
};

/* One switch row: its key is "<platform>:<group>:<feature>", the group
 * key everything before the last colon. */
static int features__row(const char *key, const char *value, void *data)
{
    struct features_op *op = data;
    struct features *fs = op->fs;
    if (fs->freed)
        return HB_ECANCELED;
    const char *colon = strrchr(key, ':');
    if (colon == NULL || (size_t)(colon - key) >= COMMAND_ID_MAX + 16)
        return 0;
    enum feature f = feature_parse(colon + 1);
    if (f == FEATURE_COUNT)
        return 0;
    char group[COMMAND_ID_MAX + 16];
    snprintf(group, sizeof(group), "%.*s", (int)(colon - key), key);
    struct map *groups = op->fresh != NULL ? op->fresh : fs->groups;
    return features__cache_set(groups, group, f, strcmp(value, "off") != 0) < 0 ? HB_ENOMEM : 0;
}

static int features__read(struct features *fs, struct store *store, bool fresh, features_cb cb,
                          void *data);

static void features__read_done(int rc, void *data)
{
    struct features_op *op = data;
    struct features *fs = op->fs;
    if (fs->freed) {
        map_free(op->fresh);
        free(op);
        if (--fs->loading == 0)
            features__destroy(fs);
        return;
    }
    if (op->fresh != NULL) {
        /* A switch made here while the rows were read is newer than what
         * was read: keep the cache, and the next refresh reads again. */
        if (rc < 0) {
            log_warn("features.refresh_failed", "error=%s", hb_strerror(rc));
        } else if (fs->sets == op->sets_at) {
            map_free(fs->groups);
            fs->groups = op->fresh;
            op->fresh = NULL;
        }
        map_free(op->fresh);
    } else if (rc < 0) {
        log_warn("features.load_failed", "error=%s", hb_strerror(rc));
    } else {
        log_info("features.loaded", "groups=%zu", map_count(fs->groups));
    }
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
    if (--fs->loading == 0 && fs->again && !fs->freed) {
        fs->again = false;
        int again = features__read(fs, fs->again_store, true, NULL, NULL);
        if (again < 0)
            log_warn("features.refresh_failed", "error=%s", hb_strerror(again));
    }
}

static int features__read(struct features *fs, struct store *store, bool fresh, features_cb cb,
                          void *data)
{
    struct features_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct features_op){.fs = fs, .cb = cb, .data = data, .sets_at = fs->sets};
    if (fresh && (op->fresh = map_new(NULL)) == NULL) {
        free(op);
        return HB_ENOMEM;
    }
    int rc = state_read_all(store, FEATURE_NS, features__row, features__read_done, op);
    if (rc < 0) {
        map_free(op->fresh);
        free(op);
        return rc;
    }
    fs->loading++;
    return 0;
}

int features_load(struct features *fs, struct store *store, features_cb cb, void *data)
{
    return features__read(fs, store, false, cb, data);
}

int features_refresh(struct features *fs, struct store *store, features_cb cb, void *data)
{
    if (fs == NULL || store == NULL)
        return HB_EINVAL;
    if (fs->loading > 0)
        return HB_EBUSY; /* a load or a refresh is under way */
    return features__read(fs, store, true, cb, data);
}

int features_refresh_after(struct features *fs, struct store *store)
{
    int rc = features_refresh(fs, store, NULL, NULL);
    if (rc == HB_EBUSY) {
        fs->again = true;
        fs->again_store = store;
        rc = 0;
    }
    return rc;
}

static void features__stored(int rc, const char *value, void *data)
{
    (void)value;
    struct features_op *op = data;
    if (rc < 0)
        log_warn("features.not_stored", "error=%s", hb_strerror(rc));
    if (op->cb != NULL)
        op->cb(rc, op->data);
    free(op);
}

int features_group_set(struct features *fs, struct store *store, enum command_platform platform,
                       const char *scope_id, enum feature f, bool on, features_cb cb, void *data)
{
    if (fs == NULL || (unsigned)f >= FEATURE_COUNT || scope_id == NULL || scope_id[0] == '\0')
        return HB_EINVAL;
    char group[COMMAND_ID_MAX + 16];
    features__group_key(group, sizeof(group), platform, scope_id);
    char key[sizeof(group) + 16];
    snprintf(key, sizeof(key), "%s:%s", group, feature_name(f));
    struct features_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    *op = (struct features_op){.fs = fs, .cb = cb, .data = data};
    int rc = state_put(store, FEATURE_NS, key, on ? "on" : "off", features__stored, op);
    if (rc < 0) {
        free(op);
        return rc;
    }
    /* The store has it; a cache that cannot grow only misses it until the
     * next start reads it back. A refresh under way reads from before it. */
    fs->sets++;
    if (features__cache_set(fs->groups, group, f, on) < 0)
        log_warn("features.not_cached", "error=%s", hb_strerror(HB_ENOMEM));
    return 0;
}
