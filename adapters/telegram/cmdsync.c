/* The command menu: setMyCommands with the command table's member
 * commands, sent only when the list differs from the one last set (its hash
 * is kept in the state table). */
#include "adapters/telegram/telegram_internal.h"

#include "core/commands.h"
#include "core/core.h"
#include "core/feature.h"
#include "base/error.h"
#include "core/ledger.h"
#include "base/log.h"
#include "core/state.h"
#include "base/hash.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The command list for setMyCommands: the table's top-level names for
 * members (admin commands are not advertised, nor the commands of a
 * feature switched off in [features]), plus /deposit when Stars packages
 * are offered and the table has no deposit of its own. */
static cJSON *tg__commands_json(const struct tg *tg)
{
    size_t n;
    const struct command_spec *table = commands_table(&n);
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "commands");
    bool have_deposit = false;
    for (size_t i = 0; i < n && list != NULL; i++) {
        if (table[i].access != COMMAND_ACCESS_MEMBER ||
            !features_command_listed(tg->core != NULL ? tg->core->features : NULL, &table[i]))
            continue;
        char name[33];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(table[i].name, " "), table[i].name);
        bool dup = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, list)
        {
            if (strcmp(tg_json_str(c, "command"), name) == 0)
                dup = true;
        }
        if (dup)
            continue;
        if (strcmp(name, "deposit") == 0)
            have_deposit = true;
        cJSON *c2 = cJSON_CreateObject();
        cJSON_AddStringToObject(c2, "command", name);
        cJSON_AddStringToObject(c2, "description", table[i].description);
        cJSON_AddItemToArray(list, c2);
    }
    if (!have_deposit && tg->npackages > 0 && list != NULL &&
        features_global_on(tg->core != NULL ? tg->core->features : NULL, FEATURE_PAYMENTS)) {
        cJSON *c2 = cJSON_CreateObject();
        cJSON_AddStringToObject(c2, "command", "deposit");
        cJSON_AddStringToObject(c2, "description", "Buy credits with Telegram Stars");
        cJSON_AddItemToArray(list, c2);
    }
    return root;
}

struct tg_cmdsync {
    struct tg *tg;
    char *json;
    char hash[24];
};

static void tg__cmdsync_free(struct tg_cmdsync *cs)
{
    struct tg *tg = cs->tg;
    free(cs->json);
    free(cs);
    tg_unref(tg);
}

static void tg__commands_stored(int rc, const char *value, void *data)
{
    (void)value;
    if (rc < 0)
        log_warn("telegram.commands_hash_not_stored", "error=%s", hb_strerror(rc));
    tg__cmdsync_free(data);
}

static void tg__commands_set(struct tg *tg, void *data, const struct tg_result *res)
{
    struct tg_cmdsync *cs = data;
    if (res->rc == 0 && res->status == 200 && res->ok) {
        log_info("telegram.commands_set", "hash=%s", cs->hash);
        if (tg->core != NULL && tg->core->ledger != NULL &&
            state_put(ledger_store(tg->core->ledger), TG_STATE_NS, "commands_hash", cs->hash,
                      tg__commands_stored, cs) == 0)
            return;
    } else if (res->rc != HB_ECANCELED) {
        log_warn("telegram.commands_not_set", "status=%d description=%s error=%s", res->status,
                 res->description, hb_strerror(res->rc));
    }
    tg__cmdsync_free(cs);
}

static void tg__commands_hash_loaded(int rc, const char *value, void *data)
{
    struct tg_cmdsync *cs = data;
    struct tg *tg = cs->tg;
    if (rc == 0 && value != NULL && strcmp(value, cs->hash) == 0) {
        log_debug("telegram.commands_unchanged", "hash=%s", cs->hash);
        tg__cmdsync_free(cs);
        return;
    }
    struct http_request *req = tg->closing ? NULL : tg_request_new(tg, "setMyCommands");
    if (req == NULL ||
        http_request_body_set(req, cs->json, strlen(cs->json), "application/json") < 0 ||
        tg_request_start(tg, req, tg__commands_set, cs, NULL) < 0) {
        if (req != NULL && tg->closing)
            http_request_free(req);
        tg__cmdsync_free(cs);
    }
}

void tg_commands_sync(struct tg *tg)
{
    struct tg_cmdsync *cs = calloc(1, sizeof(*cs));
    cJSON *j = tg__commands_json(tg);
    if (cs == NULL || j == NULL) {
        free(cs);
        cJSON_Delete(j);
        return;
    }
    cs->tg = tg;
    cs->json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (cs->json == NULL) {
        free(cs);
        return;
    }
    snprintf(cs->hash, sizeof(cs->hash), "%016" PRIx64, hash_fnv1a64_str(cs->json));
    tg_ref(tg);
    if (tg->core == NULL || tg->core->ledger == NULL ||
        state_get(ledger_store(tg->core->ledger), TG_STATE_NS, "commands_hash",
                  tg__commands_hash_loaded, cs) < 0)
        tg__commands_hash_loaded(HB_ENOTFOUND, NULL, cs);
}
