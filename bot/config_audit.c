/* Config reloads in the audit trail. */
#include "bot/config_audit.h"

#include "core/audit.h"

#include <stdio.h>

int config_changes_audit(struct store *store, const struct config_change *changes, size_t n,
                         bool restart_required)
{
    if (store == NULL || n == 0)
        return 0;
    cJSON *detail = cJSON_CreateObject();
    cJSON *changed = cJSON_AddArrayToObject(detail, "changed");
    for (size_t i = 0; i < n && changed != NULL; i++) {
        const struct config_change *c = &changes[i];
        char name[256];
        snprintf(name, sizeof(name), "%s%s%s%s.%s", c->section, c->instance != NULL ? " \"" : "",
                 c->instance != NULL ? c->instance : "", c->instance != NULL ? "\"" : "",
                 c->key != NULL                   ? c->key
                 : c->kind == CONFIG_CHANGE_ADDED ? "(added)"
                                                  : "(removed)");
        cJSON_AddItemToArray(changed, cJSON_CreateString(name));
    }
    cJSON_AddBoolToObject(detail, "restart_required", restart_required);
    return audit_note(store, AUDIT_ACTOR_CONFIG, "config.reload", "bot.conf", detail);
}
