#include "adapters/discord/appcmd.h"
#include "base/hex.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

enum {
    APPCMD_SUB_COMMAND = 1,
    APPCMD_STRING = 3,
    APPCMD_INTEGER = 4,
    APPCMD_BOOLEAN = 5,
    APPCMD_USER = 6,
    APPCMD_ATTACHMENT = 11,
};

static int appcmd__type(enum command_option_type t)
{
    switch (t) {
    case COMMAND_OPT_INTEGER:
        return APPCMD_INTEGER;
    case COMMAND_OPT_BOOLEAN:
        return APPCMD_BOOLEAN;
    case COMMAND_OPT_USER:
        return APPCMD_USER;
    case COMMAND_OPT_STRING:
    default:
        return APPCMD_STRING;
    }
}

static cJSON *appcmd__options(const struct command_spec *spec)
{
    cJSON *arr = cJSON_CreateArray();
    if (arr == NULL)
        return NULL;
    /* Discord wants required options before optional ones. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < spec->noptions; i++) {
            const struct command_option_spec *o = &spec->options[i];
            if (o->required != (pass == 0))
                continue;
            cJSON *j = cJSON_CreateObject();
            if (j == NULL)
                goto fail;
            cJSON_AddItemToArray(arr, j);
            cJSON_AddNumberToObject(j, "type", appcmd__type(o->type));
            cJSON_AddStringToObject(j, "name", o->name);
            cJSON_AddStringToObject(j, "description", o->description);
            if (o->required)
                cJSON_AddTrueToObject(j, "required");
            if (o->type == COMMAND_OPT_INTEGER && (o->min != 0 || o->max != 0)) {
                cJSON_AddNumberToObject(j, "min_value", (double)o->min);
                if (o->max != 0)
                    cJSON_AddNumberToObject(j, "max_value", (double)o->max);
            }
            if (o->type == COMMAND_OPT_STRING) {
                if (o->min > 0)
                    cJSON_AddNumberToObject(j, "min_length", (double)o->min);
                if (o->max > 0)
                    cJSON_AddNumberToObject(j, "max_length",
                                            (double)(o->max < 6000 ? o->max : 6000));
                if (o->choices != NULL) {
                    cJSON *ch = cJSON_AddArrayToObject(j, "choices");
                    for (size_t c = 0; ch != NULL && o->choices[c] != NULL && c < 25; c++) {
                        cJSON *one = cJSON_CreateObject();
                        if (one == NULL)
                            goto fail;
                        cJSON_AddStringToObject(one, "name", o->choices[c]);
                        cJSON_AddStringToObject(one, "value", o->choices[c]);
                        cJSON_AddItemToArray(ch, one);
                    }
                } else if (strcmp(o->name, "model") == 0) {
                    cJSON_AddTrueToObject(j, "autocomplete");
                }
            }
        }
    }
    /* Discord alone attaches files to a slash command: /chat takes an
     * image there (the adapter fetches it; the table has no such type). */
    if (strcmp(spec->name, "chat") == 0) {
        cJSON *j = cJSON_CreateObject();
        if (j == NULL)
            goto fail;
        cJSON_AddItemToArray(arr, j);
        cJSON_AddNumberToObject(j, "type", APPCMD_ATTACHMENT);
        cJSON_AddStringToObject(j, "name", "image");
        cJSON_AddStringToObject(j, "description", "An image for a model that sees images");
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

char *discord_appcmd_render(const struct command_spec *table, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    char *out = NULL;
    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = table[i].name;
        size_t first = strcspn(name, " ");
        bool sub = name[first] == ' ';
        /* A group is rendered once, at its first member. */
        bool seen = false;
        for (size_t k = 0; k < i && sub; k++) {
            if (strncmp(table[k].name, name, first) == 0 && table[k].name[first] == ' ')
                seen = true;
        }
        if (seen)
            continue;
        cJSON *cmd = cJSON_CreateObject();
        if (cmd == NULL)
            goto out;
        cJSON_AddItemToArray(arr, cmd);
        char top[33];
        snprintf(top, sizeof(top), "%.*s", (int)first, name);
        cJSON_AddStringToObject(cmd, "name", top);
        cJSON_AddNumberToObject(cmd, "type", 1);
        if (!sub) {
            cJSON_AddStringToObject(cmd, "description", table[i].description);
            cJSON *opts = appcmd__options(&table[i]);
            if (opts == NULL)
                goto out;
            cJSON_AddItemToObject(cmd, "options", opts);
            if (table[i].access == COMMAND_ACCESS_ADMIN)
                cJSON_AddStringToObject(cmd, "default_member_permissions", "32");
            continue;
        }
        char desc[100];
        snprintf(desc, sizeof(desc), "The %s commands", top);
        cJSON_AddStringToObject(cmd, "description", desc);
        cJSON *subs = cJSON_AddArrayToObject(cmd, "options");
        bool all_admin = true;
        for (size_t k = i; k < n && subs != NULL; k++) {
            if (strncmp(table[k].name, name, first) != 0 || table[k].name[first] != ' ')
                continue;
            if (table[k].access != COMMAND_ACCESS_ADMIN)
                all_admin = false;
            cJSON *s = cJSON_CreateObject();
            if (s == NULL)
                goto out;
            cJSON_AddItemToArray(subs, s);
            cJSON_AddNumberToObject(s, "type", APPCMD_SUB_COMMAND);
            cJSON_AddStringToObject(s, "name", table[k].name + first + 1);
            cJSON_AddStringToObject(s, "description", table[k].description);
            cJSON *opts = appcmd__options(&table[k]);
            if (opts == NULL)
                goto out;
            cJSON_AddItemToObject(s, "options", opts);
        }
        if (all_admin)
            cJSON_AddStringToObject(cmd, "default_member_permissions", "32");
    }
    out = cJSON_PrintUnformatted(arr);
out:
    cJSON_Delete(arr);
    return out;
}

void discord_appcmd_hash(const char *json, const char *scope, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    out[0] = '\0';
    if (ctx == NULL)
        return;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, scope, strlen(scope) + 1) == 1 &&
        EVP_DigestUpdate(ctx, json, strlen(json)) == 1 && EVP_DigestFinal_ex(ctx, md, &len) == 1) {
        hex_encode(md, 32, out);
    }
    EVP_MD_CTX_free(ctx);
}

int discord_invite_url(const char *application_id, char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
                     "https://discord.com/oauth2/authorize?client_id=%s"
                     "&scope=bot%%20applications.commands&permissions=%llu",
                     application_id, (unsigned long long)DISCORD_PERM_BOT);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}
