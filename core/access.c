/* Who may use the bot: the allow and block lists. See access.h. */
#include "core/access.h"

#include "base/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCESS_PLATFORMS 3 /* console, discord, telegram: enum command_platform */

/* One list entry: a platform and an id of it. Roles keep their numeric
 * value, which is how invocations carry them. */
struct access_entry {
    enum command_platform platform;
    char id[COMMAND_ID_MAX];
    uint64_t number; /* roles: the role id */
};

struct access_list {
    struct access_entry *items;
    size_t count;
    bool names[ACCESS_PLATFORMS]; /* some entry is of this platform */
};

struct access_rules {
    struct access_list allow_users, block_users;
    struct access_list allow_roles, block_roles;
    struct access_list allow_groups, block_groups;
    bool dms;
    enum access_reply reply;
};

static bool access__digits(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/* A Discord snowflake: a decimal number that fits in 64 bits, not 0. */
static bool access__snowflake(const char *s, uint64_t *out)
{
    size_t len = strlen(s);
    if (!access__digits(s, len) || len > 20)
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno != 0 || v == 0)
        return false;
    *out = (uint64_t)v;
    return true;
}

/* A Telegram id: a whole number within 64 bits, negative only for groups. */
static bool access__telegram_id(const char *s, bool negative_ok)
{
    const char *d = s;
    if (*d == '-') {
        if (!negative_ok)
            return false;
        d++;
    }
    size_t len = strlen(d);
    if (!access__digits(d, len) || len > 19)
        return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    return errno == 0 && v != 0;
}

/* Parse one "platform:id" entry of a list of kind; 0 or HB_EINVAL with err. */
static int access__entry_parse(const char *word, enum access_list_kind kind, struct access_entry *e,
                               char *err, size_t errcap)
{
    static const char *const kinds[] = {"a member", "a role", "a group"};
    const char *colon = strchr(word, ':');
    memset(e, 0, sizeof(*e));
    if (colon == NULL) {
        snprintf(err, errcap, "\"%s\" names no platform: write %s as discord:<id> or telegram:<id>",
                 word, kinds[kind]);
        return HB_EINVAL;
    }
    size_t plen = (size_t)(colon - word);
    const char *id = colon + 1;
    if (strlen(id) >= COMMAND_ID_MAX || id[0] == '\0') {
        snprintf(err, errcap, "\"%.*s\" has no id after the platform", (int)plen, word);
        return HB_EINVAL;
    }
    snprintf(e->id, sizeof(e->id), "%s", id);
    if (plen == 7 && strncmp(word, "discord", 7) == 0) {
        e->platform = COMMAND_PLATFORM_DISCORD;
        if (!access__snowflake(id, &e->number)) {
            snprintf(err, errcap, "\"%s\": a Discord id is a number (a snowflake such as %s)", word,
                     "discord:80351110224678912");
            return HB_EINVAL;
        }
        return 0;
    }
    if (plen == 8 && strncmp(word, "telegram", 8) == 0) {
        e->platform = COMMAND_PLATFORM_TELEGRAM;
        if (kind == ACCESS_LIST_ROLES) {
            snprintf(err, errcap, "\"%s\": Telegram has no roles; roles are discord:<role id>",
                     word);
            return HB_EINVAL;
        }
        if (!access__telegram_id(id, kind == ACCESS_LIST_GROUPS)) {
            if (kind == ACCESS_LIST_USERS && id[0] == '-')
                snprintf(err, errcap,
                         "\"%s\": a Telegram user id is a positive number; a negative id is a "
                         "group chat (list it in allow_groups or block_groups)",
                         word);
            else
                snprintf(err, errcap, "\"%s\": a Telegram id is a whole number (such as %s)", word,
                         kind == ACCESS_LIST_GROUPS ? "telegram:-1001234567890"
                                                    : "telegram:123456789");
            return HB_EINVAL;
        }
        return 0;
    }
    if (plen == 7 && strncmp(word, "console", 7) == 0) {
        e->platform = COMMAND_PLATFORM_CONSOLE;
        if (kind != ACCESS_LIST_USERS) {
            snprintf(err, errcap, "\"%s\": the console has only its one user, no %s", word,
                     kind == ACCESS_LIST_ROLES ? "roles" : "groups");
            return HB_EINVAL;
        }
        return 0;
    }
    snprintf(err, errcap, "\"%s\": unknown platform \"%.*s\" (discord, telegram or console)", word,
             (int)plen, word);
    return HB_EINVAL;
}

/* Parse each entry of a comma- or space-separated list into out (or only
 * check them when out is NULL); stops at the first error. */
static int access__list_each(const char *list, enum access_list_kind kind, struct access_list *out,
                             char *err, size_t errcap)
{
    if (list == NULL)
        return 0;
    char *copy = strdup(list);
    if (copy == NULL) {
        snprintf(err, errcap, "out of memory");
        return HB_ENOMEM;
    }
    int rc = 0;
    for (char *save = NULL, *w = strtok_r(copy, ", \t", &save); w != NULL && rc == 0;
         w = strtok_r(NULL, ", \t", &save)) {
        struct access_entry e;
        rc = access__entry_parse(w, kind, &e, err, errcap);
        if (rc < 0 || out == NULL)
            continue;
        struct access_entry *grown = realloc(out->items, (out->count + 1) * sizeof(*grown));
        if (grown == NULL) {
            snprintf(err, errcap, "out of memory");
            rc = HB_ENOMEM;
            continue;
        }
        out->items = grown;
        out->items[out->count++] = e;
        out->names[e.platform] = true;
    }
    free(copy);
    return rc;
}

int access_list_check(const char *list, enum access_list_kind kind, char *err, size_t errcap)
{
    return access__list_each(list, kind, NULL, err, errcap);
}

static void access__list_free(struct access_list *l)
{
    free(l->items);
    memset(l, 0, sizeof(*l));
}

void access_rules_free(struct access_rules *rules)
{
    if (rules == NULL)
        return;
    access__list_free(&rules->allow_users);
    access__list_free(&rules->block_users);
    access__list_free(&rules->allow_roles);
    access__list_free(&rules->block_roles);
    access__list_free(&rules->allow_groups);
    access__list_free(&rules->block_groups);
    free(rules);
}

struct access_rules *access_rules_new(const struct access_settings *s, char *err, size_t errcap)
{
    struct access_rules *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    r->dms = s->dms;
    r->reply = s->reply;
    int rc = access__list_each(s->allow_users, ACCESS_LIST_USERS, &r->allow_users, err, errcap);
    if (rc == 0)
        rc = access__list_each(s->block_users, ACCESS_LIST_USERS, &r->block_users, err, errcap);
    if (rc == 0)
        rc = access__list_each(s->allow_roles, ACCESS_LIST_ROLES, &r->allow_roles, err, errcap);
    if (rc == 0)
        rc = access__list_each(s->block_roles, ACCESS_LIST_ROLES, &r->block_roles, err, errcap);
    if (rc == 0)
        rc = access__list_each(s->allow_groups, ACCESS_LIST_GROUPS, &r->allow_groups, err, errcap);
    if (rc == 0)
        rc = access__list_each(s->block_groups, ACCESS_LIST_GROUPS, &r->block_groups, err, errcap);
    if (rc < 0) {
        access_rules_free(r);
        return NULL;
    }
    return r;
}

static bool access__has_id(const struct access_list *l, enum command_platform p, const char *id)
{
    if (id[0] == '\0')
        return false;
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i].platform == p && strcmp(l->items[i].id, id) == 0)
            return true;
    }
    return false;
}

static bool access__has_role(const struct access_list *l, const struct invocation *inv)
{
    for (size_t i = 0; i < l->count; i++) {
        if (l->items[i].platform != inv->platform)
            continue;
        for (size_t j = 0; j < inv->nroles && j < COMMAND_ROLES_MAX; j++) {
            if (inv->roles[j] == l->items[i].number)
                return true;
        }
    }
    return false;
}

static bool access__names(const struct access_list *l, enum command_platform p)
{
    return (size_t)p < ACCESS_PLATFORMS && l->names[p];
}

enum access_verdict access_check(const struct access_rules *r, const struct invocation *inv)
{
    if (r == NULL || inv->admin)
        return ACCESS_ALLOWED;
    enum command_platform p = inv->platform;
    bool group = inv->scope == COMMAND_SCOPE_GROUP;
    if (access__has_id(&r->block_users, p, inv->user_id) || access__has_role(&r->block_roles, inv))
        return ACCESS_BLOCKED;
    if (group && access__has_id(&r->block_groups, p, inv->scope_id))
        return ACCESS_BLOCKED;
    if (!group && !r->dms)
        return ACCESS_NO_DMS;
    /* Who: a member list or a role list of this platform lets in only
     * those it names (a role counts only where roles exist: in a group). */
    if (access__names(&r->allow_users, p) || access__names(&r->allow_roles, p)) {
        bool listed = access__has_id(&r->allow_users, p, inv->user_id) ||
                      (group && access__has_role(&r->allow_roles, inv));
        if (!listed)
            return ACCESS_BLOCKED;
    }
    /* Where: a group list of this platform lets in only those groups. */
    if (group && access__names(&r->allow_groups, p) &&
        !access__has_id(&r->allow_groups, p, inv->scope_id))
        return ACCESS_BLOCKED;
    return ACCESS_ALLOWED;
}

enum access_reply access_reply_mode(const struct access_rules *rules)
{
    return rules != NULL ? rules->reply : ACCESS_REPLY_MESSAGE;
}
