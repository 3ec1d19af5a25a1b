/* Personas chosen in the chats, and a group's plain talk. See persona.h. */
#include "core/persona.h"

#include "core/catalog.h"
#include "core/core.h"
#include "core/ledger.h"
#include "base/error.h"
#include "base/log.h"
#include "base/map.h"
#include "base/text.h"
#include "base/util.h"
#include "base/clock.h"
#include "storage/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PERSONA_KEY_MAX (3 * COMMAND_ID_MAX + 32)
#define PERSONA_NAME_MAX 64

/* One row of chat_settings, as held in memory. */
struct persona_row {
    char persona[PERSONA_NAME_MAX]; /* "" when none is set here */
    int plaintalk;                  /* -1 unset, 0 off, 1 on */
};

struct persona_dir {
    struct map *rows; /* key -> struct persona_row */
    unsigned sets;    /* choices made here, so that a refresh sees it raced one */
    bool refreshing;  /* a persona_dir_refresh read is under way */
    bool again;       /* asked for meanwhile: read once more after it */
};

struct persona_dir *persona_dir_new(void)
{
    struct persona_dir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    d->rows = map_new(free);
    if (d->rows == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

void persona_dir_free(struct persona_dir *d)
{
    if (d == NULL)
        return;
    map_free(d->rows);
    free(d);
}

/* The row under key, made when absent and create is set. */
static struct persona_row *persona__row(struct persona_dir *d, const char *key, bool create)
{
    struct persona_row *r = map_get(d->rows, key);
    if (r != NULL || !create)
        return r;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->plaintalk = -1;
    if (map_set(d->rows, key, r) < 0) {
        free(r);
        return NULL;
    }
    return r;
}

/* Drop a row that holds nothing any more. */
static void persona__row_tidy(struct persona_dir *d, const char *key)
{
    const struct persona_row *r = map_get(d->rows, key);
    if (r != NULL && r->persona[0] == '\0' && r->plaintalk < 0)
        map_remove(d->rows, key);
}

/* ---- keys ------------------------------------------------------------- */

static void persona__member_key(const struct invocation *inv, char *buf, size_t cap)
{
    snprintf(buf, cap, "m/%s:%s", command_platform_name(inv->platform), inv->user_id);
}

static void persona__group_key(enum command_platform platform, const char *group, char *buf,
                               size_t cap)
{
    snprintf(buf, cap, "g/%s:%s", command_platform_name(platform), group);
}

/* The channel the invocation is in, and the one that channel inherits
 * from: a Discord thread's parent channel, or a Telegram topic's chat. */
static void persona__channel_keys(const struct invocation *inv, char *own, char *parent, size_t cap)
{
    const char *p = command_platform_name(inv->platform);
    parent[0] = '\0';
    if (inv->thread_id[0] != '\0') {
        snprintf(own, cap, "c/%s:%s/%s/topic:%s", p, inv->scope_id, inv->channel_id,
                 inv->thread_id);
        snprintf(parent, cap, "c/%s:%s/%s", p, inv->scope_id, inv->channel_id);
        return;
    }
    snprintf(own, cap, "c/%s:%s/%s", p, inv->scope_id, inv->channel_id);
    if (inv->parent_channel_id[0] != '\0')
        snprintf(parent, cap, "c/%s:%s/%s", p, inv->scope_id, inv->parent_channel_id);
}

/* ---- the store -------------------------------------------------------- */

struct persona_op {
    struct store_job job;
    struct core *core;
    char key[PERSONA_KEY_MAX];
    unsigned fields;
    char *persona;
    int plaintalk;
    struct map *loaded; /* load: the rows read */
    bool refresh;       /* ... replacing the rows known, unless a choice was made */
    unsigned sets_at;   /* here meanwhile (personas->sets moved) */
    void (*cb)(int rc, void *data);
    void *data;
};

static int persona__collect(const char *key, const char *persona, int plaintalk, void *data)
{
    struct persona_op *op = data;
    struct persona_row *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return HB_ENOMEM;
    snprintf(r->persona, sizeof(r->persona), "%s", persona != NULL ? persona : "");
    r->plaintalk = plaintalk;
    if (map_set(op->loaded, key, r) < 0) {
        free(r);
        return HB_ENOMEM;
    }
    return 0;
}

static int persona__run(struct store_txn *txn, struct store_job *job)
{
    struct persona_op *op = container_of(job, struct persona_op, job);
    if (op->loaded != NULL)
        return store_txn_chat_each(txn, persona__collect, op);
    return store_txn_chat_put(txn, op->key, op->fields, op->persona, op->plaintalk,
                              clock_real_ms());
}

static void persona__done(struct store_job *job, int rc)
{
    struct persona_op *op = container_of(job, struct persona_op, job);
    struct persona_dir *dir = op->core->personas;
    if (op->refresh && dir != NULL) {
        /* A choice made here while the rows were read is newer than what
         * was read: keep the rows, and the next refresh reads again. */
        if (rc == 0 && dir->sets == op->sets_at) {
            map_free(dir->rows);
            dir->rows = op->loaded;
            op->loaded = NULL;
        }
        dir->refreshing = false;
    } else if (op->loaded != NULL && rc == 0 && dir != NULL) {
        /* What was chosen while the rows were read stays (it is newer). */
        struct map_iter it;
        const char *key;
        void *v;
        map_iter_init(&it, op->loaded);
        while (map_iter_next(&it, &key, &v)) {
            if (map_get(op->core->personas->rows, key) != NULL)
                continue;
            char copy[PERSONA_KEY_MAX];
            snprintf(copy, sizeof(copy), "%s", key);
            void *row = map_take(op->loaded, copy); /* frees key */
            if (map_set(op->core->personas->rows, copy, row) < 0) {
                free(row);
                rc = HB_ENOMEM;
            }
        }
    }
    if (op->cb != NULL)
        op->cb(rc, op->data);
    struct core *core = op->core;
    bool again = op->refresh && dir != NULL && dir->again && core->personas == dir;
    map_free(op->loaded);
    free(op->persona);
    free(op);
    if (again) {
        dir->again = false;
        int arc = persona_dir_refresh_after(core);
        if (arc < 0)
            log_warn("persona.refresh_failed", "error=%s", hb_strerror(arc));
    }
}

static int persona__submit(struct core *core, struct persona_op *op)
{
    op->core = core;
    op->job.run = persona__run;
    op->job.done = persona__done;
    int rc =
        core->ledger != NULL ? store_submit(ledger_store(core->ledger), &op->job) : HB_ECANCELED;
    if (rc < 0) {
        map_free(op->loaded);
        free(op->persona);
        free(op);
    }
    return rc;
}

static int persona__read(struct core *core, bool refresh, void (*cb)(int rc, void *data),
                         void *data)
{
    if (core->personas == NULL)
        return HB_EINVAL;
    if (refresh && core->personas->refreshing)
        return HB_EBUSY;
    struct persona_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    op->loaded = map_new(free);
    op->refresh = refresh;
    op->sets_at = core->personas->sets;
    op->cb = cb;
    op->data = data;
    if (op->loaded == NULL) {
        free(op);
        return HB_ENOMEM;
    }
    int rc = persona__submit(core, op);
    if (rc == 0 && refresh)
        core->personas->refreshing = true;
    return rc;
}

int persona_dir_load(struct core *core, void (*cb)(int rc, void *data), void *data)
{
    return persona__read(core, false, cb, data);
}

int persona_dir_refresh(struct core *core, void (*cb)(int rc, void *data), void *data)
{
    return persona__read(core, true, cb, data);
}

int persona_dir_refresh_after(struct core *core)
{
    int rc = persona__read(core, true, NULL, NULL);
    if (rc == HB_EBUSY) {
        core->personas->again = true;
        rc = 0;
    }
    return rc;
}

/* Write one field of key's row: in memory now, in the store next. */
static int persona__put(struct core *core, const char *key, unsigned fields, const char *persona,
                        int plaintalk, void (*cb)(int rc, void *data), void *data)
{
    if (core->personas == NULL || core->ledger == NULL)
        return HB_ECANCELED;
    struct persona_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return HB_ENOMEM;
    snprintf(op->key, sizeof(op->key), "%s", key);
    op->fields = fields;
    op->plaintalk = plaintalk;
    op->cb = cb;
    op->data = data;
    if (persona != NULL) {
        op->persona = strdup(persona);
        if (op->persona == NULL) {
            free(op);
            return HB_ENOMEM;
        }
    }
    struct persona_row *r = persona__row(core->personas, key, true);
    if (r == NULL) {
        free(op->persona);
        free(op);
        return HB_ENOMEM;
    }
    core->personas->sets++; /* a refresh under way reads from before it */
    if (fields & STORE_CHAT_PERSONA)
        snprintf(r->persona, sizeof(r->persona), "%s", persona != NULL ? persona : "");
    if (fields & STORE_CHAT_PLAINTALK)
        r->plaintalk = plaintalk;
    persona__row_tidy(core->personas, key);
    return persona__submit(core, op);
}

/* ---- choosing and resolving -------------------------------------------- */

static int persona__level_key(const struct invocation *inv, enum persona_level level, char *buf,
                              size_t cap)
{
    char parent[PERSONA_KEY_MAX];
    switch (level) {
    case PERSONA_LEVEL_MEMBER:
        persona__member_key(inv, buf, cap);
        return 0;
    case PERSONA_LEVEL_CHANNEL:
        if (inv->scope != COMMAND_SCOPE_GROUP)
            return HB_EINVAL;
        persona__channel_keys(inv, buf, parent, cap);
        return 0;
    case PERSONA_LEVEL_GROUP:
        if (inv->scope != COMMAND_SCOPE_GROUP)
            return HB_EINVAL;
        persona__group_key(inv->platform, inv->scope_id, buf, cap);
        return 0;
    default:
        return HB_EINVAL;
    }
}

int persona_choose(struct core *core, const struct invocation *inv, enum persona_level level,
                   const char *name, void (*cb)(int rc, void *data), void *data)
{
    char key[PERSONA_KEY_MAX];
    int rc = persona__level_key(inv, level, key, sizeof(key));
    if (rc < 0)
        return rc;
    if (name != NULL && strlen(name) >= PERSONA_NAME_MAX)
        return HB_EINVAL;
    return persona__put(core, key, STORE_CHAT_PERSONA, name, -1, cb, data);
}

static const char *persona__at(const struct core *core, const char *key)
{
    if (core->personas == NULL || key[0] == '\0')
        return "";
    const struct persona_row *r = map_get(core->personas->rows, key);
    return r != NULL ? r->persona : "";
}

const char *persona_chosen(const struct core *core, const struct invocation *inv,
                           enum persona_level level)
{
    char key[PERSONA_KEY_MAX];
    if (persona__level_key(inv, level, key, sizeof(key)) < 0)
        return "";
    return persona__at(core, key);
}

const struct catalog_persona *persona_resolve(const struct core *core, const struct catalog *cat,
                                              const struct invocation *inv,
                                              enum persona_level *level)
{
    char key[PERSONA_KEY_MAX];
    char parent[PERSONA_KEY_MAX];
    const struct catalog_persona *p = NULL;
    enum persona_level at = PERSONA_LEVEL_NONE;
    persona__member_key(inv, key, sizeof(key));
    p = catalog_persona_find(cat, persona__at(core, key));
    if (p != NULL && catalog_persona_allowed(p, inv)) {
        at = PERSONA_LEVEL_MEMBER;
        goto out;
    }
    p = NULL;
    if (inv->scope == COMMAND_SCOPE_GROUP) {
        persona__channel_keys(inv, key, parent, sizeof(key));
        p = catalog_persona_find(cat, persona__at(core, key));
        if (p == NULL)
            p = catalog_persona_find(cat, persona__at(core, parent));
        if (p != NULL) {
            at = PERSONA_LEVEL_CHANNEL;
            goto out;
        }
        persona__group_key(inv->platform, inv->scope_id, key, sizeof(key));
        p = catalog_persona_find(cat, persona__at(core, key));
        if (p != NULL) {
            at = PERSONA_LEVEL_GROUP;
            goto out;
        }
    }
    p = catalog_persona_default(cat);
    if (p != NULL)
        at = PERSONA_LEVEL_BOT;
out:
    if (level != NULL)
        *level = at;
    return p;
}

bool persona_plaintalk(const struct core *core, enum command_platform platform,
                       const char *group_id)
{
    if (core->personas == NULL)
        return false;
    char key[PERSONA_KEY_MAX];
    persona__group_key(platform, group_id, key, sizeof(key));
    const struct persona_row *r = map_get(core->personas->rows, key);
    return r != NULL && r->plaintalk > 0;
}

int persona_plaintalk_set(struct core *core, const struct invocation *inv, bool on,
                          void (*cb)(int rc, void *data), void *data)
{
    if (inv->scope != COMMAND_SCOPE_GROUP)
        return HB_EINVAL;
    char key[PERSONA_KEY_MAX];
    persona__group_key(inv->platform, inv->scope_id, key, sizeof(key));
    /* Off is the default: clearing the field says so and keeps no row. */
    return persona__put(core, key, STORE_CHAT_PLAINTALK, NULL, on ? 1 : -1, cb, data);
}

/* ---- the prompt's variables -------------------------------------------- */

char *persona_prompt_expand(const char *prompt, const struct invocation *inv, const char *model,
                            const char *bot_name, int64_t now_ms)
{
    struct text_buf t = {0};
    char date[16];
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(date, sizeof(date), "%Y-%m-%d", &tm);
    const char *server = inv->scope_name;
    if (inv->scope != COMMAND_SCOPE_GROUP)
        server = "a private chat";
    else if (server[0] == '\0')
        server = inv->platform == COMMAND_PLATFORM_DISCORD ? "this server" : "this group";
    const char *user = inv->user_name[0] != '\0' ? inv->user_name : inv->user_id;
    for (const char *p = prompt; *p != '\0';) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) {
            text_buf_put(&t, p, 1);
            p += 2;
            continue;
        }
        const char *value = NULL;
        size_t len = 0;
        static const char *const names[] = {"{date}", "{user}", "{server}", "{model}", "{bot}"};
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && value == NULL; i++) {
            len = strlen(names[i]);
            if (strncmp(p, names[i], len) != 0)
                continue;
            const char *values[] = {date, user, server, model != NULL ? model : "",
                                    bot_name != NULL ? bot_name : ""};
            value = values[i];
        }
        if (value != NULL) {
            text_buf_put(&t, value, strlen(value));
            p += len;
            continue;
        }
        size_t run = strcspn(p + 1, "{}") + 1;
        text_buf_put(&t, p, run);
        p += run;
    }
    if (t.buf == NULL)
        return strdup("");
    return t.buf;
}
