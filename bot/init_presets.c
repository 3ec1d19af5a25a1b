/* The provider presets of `haibot init` and the config text it writes.
 *
 * Prices assume one credit is worth about a tenth of a US cent ($0.001),
 * rounded up to whole credits, which leaves a margin on the cheap models:
 * gpt-4o costs $2.50 / $10 per million tokens, so 3 and 10 credits per 1000.
 * Local servers cost only electricity: one credit a request keeps a member
 * from flooding them. The operator edits every figure in bot.conf. */
#include "bot/init.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

const struct init_preset init_presets[] = {
    {"openai",
     "OpenAI",
     "openai",
     "https://api.openai.com/v1",
     "OPENAI_API_KEY",
     NULL,
     {{"gpt-4o-mini", "gpt-4o-mini", "text", 0, 1, 1, NULL},
      {"gpt-4o", "gpt-4o", "text", 0, 3, 10, NULL},
      {"dall-e-3", "dall-e-3", "image", 40, 0, 0, "1024x1024"}}},
    {"anthropic",
     "Anthropic",
     "anthropic",
     "https://api.anthropic.com/v1",
     "ANTHROPIC_API_KEY",
     NULL,
     {{"claude-haiku", "claude-3-5-haiku-latest", "text", 0, 1, 4, NULL},
      {"claude-sonnet", "claude-sonnet-4-20250514", "text", 0, 3, 15, NULL},
      {NULL, NULL, NULL, 0, 0, 0, NULL}}},
    {"openrouter",
     "OpenRouter",
     "openai",
     "https://openrouter.ai/api/v1",
     "OPENROUTER_API_KEY",
     "X-Title: HAI Bot",
     {{"gpt-4o-mini", "openai/gpt-4o-mini", "text", 0, 1, 1, NULL},
      {"claude-haiku", "anthropic/claude-3.5-haiku", "text", 0, 1, 4, NULL},
      {"llama-70b", "meta-llama/llama-3.1-70b-instruct", "text", 0, 1, 1, NULL}}},
    {"ollama",
     "Ollama on localhost",
     "openai",
     "http://127.0.0.1:11434/v1",
     NULL,
     NULL,
     {{"local", "llama3.2", "text", 1, 0, 0, NULL}, {NULL, NULL, NULL, 0, 0, 0, NULL}}},
    {"llamacpp",
     "llama.cpp server",
     "openai",
     "http://127.0.0.1:8080/v1",
     NULL,
     NULL,
     {{"local", "local", "text", 1, 0, 0, NULL}, {NULL, NULL, NULL, 0, 0, 0, NULL}}},
    {"vllm",
     "vLLM",
     "openai",
     "http://127.0.0.1:8000/v1",
     NULL,
     NULL,
     {{"local", "meta-llama/Llama-3.1-8B-Instruct", "text", 1, 0, 0, NULL},
      {NULL, NULL, NULL, 0, 0, 0, NULL}}},
    {"lmstudio",
     "LM Studio",
     "openai",
     "http://127.0.0.1:1234/v1",
     NULL,
     NULL,
     {{"local", "qwen2.5-7b-instruct", "text", 1, 0, 0, NULL}, {NULL, NULL, NULL, 0, 0, 0, NULL}}},
    {"demo",
     "the offline demo (no provider yet)",
     "demo",
     NULL,
     NULL,
     NULL,
     {{"demo-chat", "demo-chat", "text", 1, 0, 2, NULL},
      {"demo-image", "demo-image", "image", 5, 0, 0, "512x512, 256x256"},
      {NULL, NULL, NULL, 0, 0, 0, NULL}}},
    {NULL, NULL, NULL, NULL, NULL, NULL, {{NULL, NULL, NULL, 0, 0, 0, NULL}}},
};

const struct init_preset *init_preset_find(const char *name)
{
    for (const struct init_preset *p = init_presets; p->name != NULL; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

bool init_telegram_token_ok(const char *text)
{
    size_t digits = strspn(text, "0123456789");
    if (digits == 0 || digits > 20 || text[digits] != ':')
        return false;
    const char *rest = text + digits + 1;
    size_t n = strspn(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");
    return n == 35 && rest[n] == '\0';
}

static int init__b64url_value(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-' || ch == '_')
        return 62;
    return -1;
}

/* A Discord token is "<base64 of the application's id>.<timestamp>.<hmac>",
 * each part base64url without padding. */
bool init_discord_token_ok(const char *text, char *app_id, size_t cap)
{
    const char *dot1 = strchr(text, '.');
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL)
        return false;
    size_t len1 = (size_t)(dot1 - text), len2 = (size_t)(dot2 - dot1 - 1), len3 = strlen(dot2 + 1);
    if (len1 < 16 || len1 > 40 || len2 < 4 || len2 > 16 || len3 < 20 || len3 > 64)
        return false;
    for (const char *p = text; *p != '\0'; p++)
        if (*p != '.' && init__b64url_value(*p) < 0)
            return false;
    /* Decode the first part: it must be the decimal id of the application. */
    char id[32];
    size_t n = 0;
    unsigned bits = 0, acc = 0;
    for (size_t i = 0; i < len1; i++) {
        acc = (acc << 6) | (unsigned)init__b64url_value(text[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= sizeof(id))
                return false;
            id[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    id[n] = '\0';
    if (n < 15 || n > 20 || strspn(id, "0123456789") != n)
        return false;
    if (app_id != NULL && cap > 0)
        snprintf(app_id, cap, "%s", id);
    return true;
}

bool init_env_name_ok(const char *text)
{
    if (text[0] == '\0' || isdigit((unsigned char)text[0]))
        return false;
    for (const char *p = text; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return strlen(text) < 128;
}

/* A secret goes in as key_env = NAME when the operator chose that, else
 * as the value itself. */
static void init__secret(FILE *out, const char *key, const char *value, const char *env)
{
    if (env[0] != '\0')
        fprintf(out, "%s_env = %s\n", key, env);
    else if (value[0] != '\0')
        fprintf(out, "%s = %s\n", key, value);
}

static void init__models(FILE *out, const struct init_answers *a)
{
    const struct init_preset *p = a->preset;
    for (size_t i = 0; i < INIT_PRESET_MODELS && p->models[i].name != NULL; i++) {
        const struct init_model *m = &p->models[i];
        const char *upstream = i == 0 && a->model[0] != '\0' ? a->model : m->upstream;
        fprintf(out, "\n[model \"%s\"]\nprovider = %s\n", m->name, p->name);
        if (strcmp(upstream, m->name) != 0)
            fprintf(out, "upstream = %s\n", upstream);
        fprintf(out,
                "modality = %s\nprice_request = %d\nprice_input_1k = %d\nprice_output_1k = %d\n",
                m->modality, m->price_request, m->price_input_1k, m->price_output_1k);
        if (m->sizes != NULL)
            fprintf(out, "sizes = %s\n", m->sizes);
        else
            fprintf(out, "max_output_tokens = 1024\n");
        fprintf(out, "enabled = true\n");
    }
}

int init_config_write(FILE *out, const struct init_answers *a)
{
    const struct init_preset *p = a->preset;
    fprintf(out, "# HAI Bot configuration, written by `haibot init`. Every key is described\n"
                 "# in bot.conf.example; `haibot check-config -c FILE` checks an edited file.\n"
                 "# Keep this file private (chmod 600): it may hold tokens.\n\n");
    fprintf(out, "[bot]\nname = %s\nlog_level = info\n\n", a->name);
    fprintf(out, "[storage]\nbackend = sqlite\npath = haibot.db\n\n");
    fprintf(out, "[ledger]\n# Credits every new member receives once.\nwelcome_bonus = %ld\n\n",
            a->welcome_bonus);
    fprintf(out, "[console]\nenabled = %s\nuser = operator\nadmin = %s\nimage_dir = .\n\n",
            a->console ? "true" : "false", a->console_admin ? "true" : "false");
    fprintf(out, "[discord]\n# Admins on Discord are the members with Manage Server.\n");
    fprintf(out, "enabled = %s\n", a->discord ? "true" : "false");
    if (a->discord) {
        init__secret(out, "token", a->discord_token, a->discord_env);
        fprintf(out, "application_id = %s\n", a->discord_app_id);
        if (a->discord_api[0] != '\0')
            fprintf(out, "api_base = %s\n", a->discord_api);
    }
    fprintf(out, "\n[telegram]\nenabled = %s\n", a->telegram ? "true" : "false");
    if (a->telegram) {
        init__secret(out, "token", a->telegram_token, a->telegram_env);
        if (a->telegram_api[0] != '\0')
            fprintf(out, "api_base = %s\n", a->telegram_api);
        fprintf(out, "# Telegram user ids that may run admin commands.\nadmins = %s\n",
                a->telegram_admins);
    }
    fprintf(out, "\n# %s. Prices assume one credit is about $0.001.\n", p->title);
    fprintf(out, "[provider \"%s\"]\nkind = %s\n", p->name, p->kind);
    if (p->base_url != NULL)
        fprintf(out, "base_url = %s\n", a->base_url[0] != '\0' ? a->base_url : p->base_url);
    init__secret(out, "api_key", a->api_key, a->api_key_env);
    if (p->headers != NULL)
        fprintf(out, "headers = %s\n", p->headers);
    init__models(out, a);
    fflush(out);
    return ferror(out) ? -1 : 0;
}
