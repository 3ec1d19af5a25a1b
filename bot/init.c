/* `haibot init`: flags, the questions on a terminal, the token checks, and
 * the private file. It runs before any loop exists and only for the
 * operator at the keyboard, so the token checks are plain blocking libcurl
 * calls with a short timeout. Tokens and keys never reach the screen: they
 * are read without echo and no message quotes them. */
#include "bot/init.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define INIT_TELEGRAM_API "https://api.telegram.org"
#define INIT_DISCORD_API "https://discord.com/api/v10"
#define INIT_TRIES 3

struct init_run {
    struct init_answers a;
    const char *path;
    bool force;
    bool interactive;
    bool check; /* call getMe and /users/@me */
    FILE *in, *out;
};

/* ---- reading answers ------------------------------------------------- */

static bool init__text_ok(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f)
            return false;
    return true;
}

static void init__trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    size_t lead = strspn(s, " \t");
    memmove(s, s + lead, strlen(s + lead) + 1);
}

/* Ask one question; an empty answer takes def. Secret answers are read
 * without echo. Returns 0, or -1 at the end of input. */
static int init__ask(struct init_run *r, const char *question, const char *def, bool secret,
                     char *buf, size_t cap)
{
    struct termios saved;
    bool echo_off = false;
    int fd = fileno(r->in);
    if (secret && isatty(fd) && tcgetattr(fd, &saved) == 0) {
        struct termios quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        echo_off = tcsetattr(fd, TCSANOW, &quiet) == 0;
    }
    /* The question comes after echo is off: what is typed once it shows
     * is never echoed. */
    if (def != NULL && def[0] != '\0' && !secret)
        fprintf(r->out, "%s [%s]: ", question, def);
    else
        fprintf(r->out, "%s: ", question);
    fflush(r->out);
    char *got = fgets(buf, (int)cap, r->in);
    if (echo_off) {
        tcsetattr(fd, TCSANOW, &saved);
        fputs("\n", r->out);
    }
    if (got == NULL)
        return -1;
    init__trim(buf);
    if (buf[0] == '\0' && def != NULL)
        snprintf(buf, cap, "%s", def);
    return 0;
}

static int init__ask_yes(struct init_run *r, const char *question, bool def, bool *yes)
{
    char buf[16];
    for (int i = 0; i < INIT_TRIES; i++) {
        if (init__ask(r, question, def ? "Y/n" : "y/N", false, buf, sizeof(buf)) < 0)
            return -1;
        if (strcmp(buf, "Y/n") == 0 || strcmp(buf, "y/N") == 0) {
            *yes = def;
            return 0;
        }
        if (strcasecmp(buf, "y") == 0 || strcasecmp(buf, "yes") == 0 || strcasecmp(buf, "n") == 0 ||
            strcasecmp(buf, "no") == 0) {
            *yes = buf[0] == 'y' || buf[0] == 'Y';
            return 0;
        }
        fprintf(r->out, "Please answer y or n.\n");
    }
    return -1;
}

/* ---- checks shared by flags and questions ---------------------------- */

static bool init__ids_ok(const char *s)
{
    for (const char *p = s; *p != '\0'; p++)
        if (!(*p >= '0' && *p <= '9') && *p != ',' && *p != ' ' && *p != '-')
            return false;
    return true;
}

static bool init__url_ok(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
           strpbrk(s, " \t") == NULL && init__text_ok(s);
}

/* The token the file will hold, or the one its variable holds now. */
static const char *init__token_value(const char *token, const char *env)
{
    if (token[0] != '\0')
        return token;
    const char *v = env[0] != '\0' ? getenv(env) : NULL;
    return v != NULL ? v : "";
}

static int init__platform_set(struct init_answers *a, const char *list)
{
    a->console = a->telegram = a->discord = false;
    char copy[INIT_TEXT_MAX];
    snprintf(copy, sizeof(copy), "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
        if (strcasecmp(t, "console") == 0)
            a->console = true;
        else if (strcasecmp(t, "telegram") == 0)
            a->telegram = true;
        else if (strcasecmp(t, "discord") == 0)
            a->discord = true;
        else
            return -1;
    }
    return a->console || a->telegram || a->discord ? 0 : -1;
}

/* Check every answer; prints each problem. Returns the count of problems. */
static int init__validate(struct init_run *r)
{
    struct init_answers *a = &r->a;
    int bad = 0;
    const char *texts[] = {a->name, a->telegram_token, a->discord_token, a->api_key, a->model};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        if (!init__text_ok(texts[i])) {
            fprintf(stderr, "haibot init: an answer holds a control character\n");
            bad++;
            break;
        }
    /* A value ends at " #" or " ;" (a comment) in bot.conf, and a key or a
     * model id holds no space at all. */
    if (a->name[0] == '\0' || strstr(a->name, " #") != NULL || strstr(a->name, " ;") != NULL) {
        fprintf(stderr, "haibot init: the bot's name may not be empty or hold \" #\" or \" ;\"\n");
        bad++;
    }
    if (strpbrk(a->api_key, " \t") != NULL || strpbrk(a->model, " \t") != NULL) {
        fprintf(stderr, "haibot init: an API key or a model id holds no spaces\n");
        bad++;
    }
    const char *envs[] = {a->telegram_env, a->discord_env, a->api_key_env};
    for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
        if (envs[i][0] != '\0' && !init_env_name_ok(envs[i])) {
            fprintf(stderr, "haibot init: '%s' is not an environment variable name\n", envs[i]);
            bad++;
        }
    if (!a->console && !a->telegram && !a->discord) {
        fprintf(stderr, "haibot init: choose at least one platform (console, telegram, discord)\n");
        bad++;
    }
    if (a->telegram) {
        const char *t = init__token_value(a->telegram_token, a->telegram_env);
        if (t[0] == '\0' && a->telegram_env[0] == '\0') {
            fprintf(stderr,
                    "haibot init: Telegram needs --telegram-token or --telegram-token-env\n");
            bad++;
        } else if (t[0] != '\0' && !init_telegram_token_ok(t)) {
            fprintf(stderr, "haibot init: the Telegram token does not look like one from "
                            "@BotFather (digits, a colon, 35 letters, digits, - or _)\n");
            bad++;
        }
        if (!init__ids_ok(a->telegram_admins)) {
            fprintf(stderr, "haibot init: Telegram admins are numeric user ids\n");
            bad++;
        }
        if (a->telegram_api[0] != '\0' && !init__url_ok(a->telegram_api)) {
            fprintf(stderr, "haibot init: --telegram-api is not an http(s) URL\n");
            bad++;
        }
    }
    if (a->discord) {
        const char *t = init__token_value(a->discord_token, a->discord_env);
        char id[32] = "";
        if (t[0] == '\0' && a->discord_env[0] == '\0') {
            fprintf(stderr, "haibot init: Discord needs --discord-token or --discord-token-env\n");
            bad++;
        } else if (t[0] != '\0' && !init_discord_token_ok(t, id, sizeof(id))) {
            fprintf(stderr, "haibot init: the Discord token does not look like a bot token "
                            "(three base64url parts separated by dots)\n");
            bad++;
        }
        if (a->discord_app_id[0] == '\0')
            snprintf(a->discord_app_id, sizeof(a->discord_app_id), "%s", id);
        if (a->discord_app_id[0] == '\0' ||
            strspn(a->discord_app_id, "0123456789") != strlen(a->discord_app_id)) {
            fprintf(stderr, "haibot init: Discord needs the application's id "
                            "(--discord-application-id, or a token that names it)\n");
            bad++;
        }
        if (a->discord_api[0] != '\0' && !init__url_ok(a->discord_api)) {
            fprintf(stderr, "haibot init: --discord-api is not an http(s) URL\n");
            bad++;
        }
    }
    if (a->preset->base_url != NULL && a->base_url[0] != '\0' && !init__url_ok(a->base_url)) {
        fprintf(stderr, "haibot init: the provider's base URL is not an http(s) URL\n");
        bad++;
    }
    if (a->welcome_bonus < 0 || a->welcome_bonus > 1000000000) {
        fprintf(stderr, "haibot init: the welcome bonus is 0 to 1000000000 credits\n");
        bad++;
    }
    return bad;
}

/* ---- the token checks ------------------------------------------------- */

struct init_body {
    char data[8192];
    size_t len;
};

static size_t init__collect(char *ptr, size_t size, size_t n, void *userdata)
{
    struct init_body *b = userdata;
    size_t len = size * n;
    size_t room = sizeof(b->data) - 1 - b->len;
    size_t take = len < room ? len : room;
    memcpy(b->data + b->len, ptr, take);
    b->len += take;
    b->data[b->len] = '\0';
    return len;
}

/* GET url (with an optional header); the status, or -1 when the server
 * could not be reached. The URL may hold a token: it is never printed. */
static long init__get(const char *url, const char *header, struct init_body *body)
{
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return -1;
    struct curl_slist *h = header != NULL ? curl_slist_append(NULL, header) : NULL;
    body->len = 0;
    body->data[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, init__collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "haibot-init");
    long status = -1;
    CURLcode rc = curl_easy_perform(curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    else
        fprintf(stderr, "haibot init: the check could not reach the server: %s\n",
                curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(curl);
    return status;
}

/* 0: accepted (or unreachable, said so); 1: refused. */
static int init__check_telegram(struct init_run *r, const char *token)
{
    const char *base = r->a.telegram_api[0] != '\0' ? r->a.telegram_api : INIT_TELEGRAM_API;
    char url[INIT_TEXT_MAX * 2 + 32];
    snprintf(url, sizeof(url), "%s/bot%s/getMe", base, token);
    struct init_body body;
    long status = init__get(url, NULL, &body);
    if (status < 0)
        return 0;
    cJSON *j = cJSON_Parse(body.data);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "result");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(res, "username");
    int rc = 0;
    if (status == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
        fprintf(r->out, "Telegram: the token works, the bot is @%s\n",
                cJSON_IsString(user) ? user->valuestring : "?");
    } else {
        fprintf(stderr, "haibot init: Telegram refused the token (HTTP %ld)\n", status);
        rc = 1;
    }
    cJSON_Delete(j);
    return rc;
}

static int init__check_discord(struct init_run *r, const char *token)
{
    const char *base = r->a.discord_api[0] != '\0' ? r->a.discord_api : INIT_DISCORD_API;
    char url[INIT_TEXT_MAX + 32];
    char auth[INIT_TEXT_MAX + 32];
    snprintf(url, sizeof(url), "%s/users/@me", base);
    snprintf(auth, sizeof(auth), "Authorization: Bot %s", token);
    struct init_body body;
    long status = init__get(url, auth, &body);
    if (status < 0)
        return 0;
    cJSON *j = cJSON_Parse(body.data);
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(j, "username");
    int rc = 0;
    if (status == 200) {
        fprintf(r->out, "Discord: the token works, the bot is %s\n",
                cJSON_IsString(user) ? user->valuestring : "?");
    } else {
        fprintf(stderr, "haibot init: Discord refused the token (HTTP %ld)\n", status);
        rc = 1;
    }
    cJSON_Delete(j);
    return rc;
}

static int init__check_tokens(struct init_run *r)
{
    int bad = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 0;
    const char *t = init__token_value(r->a.telegram_token, r->a.telegram_env);
    if (r->a.telegram && t[0] != '\0')
        bad += init__check_telegram(r, t);
    t = init__token_value(r->a.discord_token, r->a.discord_env);
    if (r->a.discord && t[0] != '\0')
        bad += init__check_discord(r, t);
    curl_global_cleanup();
    return bad;
}

/* ---- the questions ---------------------------------------------------- */

/* Where a token lives (file or a variable), then its value. */
static int init__ask_token(struct init_run *r, const char *platform, const char *def_env,
                           char *token, char *env, bool (*ok)(const char *))
{
    char buf[INIT_TEXT_MAX];
    char q[160];
    snprintf(q, sizeof(q),
             "Keep the %s token in an environment variable (recommended) or in the "
             "file? env/file",
             platform);
    for (;;) {
        if (init__ask(r, q, "env", false, buf, sizeof(buf)) < 0)
            return -1;
        if (strcmp(buf, "env") == 0 || strcmp(buf, "file") == 0)
            break;
        fprintf(r->out, "Please answer env or file.\n");
    }
    bool in_env = strcmp(buf, "env") == 0;
    if (in_env) {
        snprintf(q, sizeof(q), "Environment variable for the %s token", platform);
        for (;;) {
            if (init__ask(r, q, def_env, false, env, INIT_TEXT_MAX) < 0)
                return -1;
            if (init_env_name_ok(env))
                break;
            fprintf(r->out, "A name of letters, digits and _, please.\n");
        }
        const char *now = getenv(env);
        if (now != NULL && now[0] != '\0') {
            if (!ok(now))
                fprintf(r->out, "$%s does not hold a %s token now.\n", env, platform);
            return 0;
        }
    }
    snprintf(q, sizeof(q), "%s bot token%s", platform,
             in_env ? " (only checked, not written; empty to skip)" : "");
    for (int i = 0; i < INIT_TRIES; i++) {
        if (init__ask(r, q, NULL, true, token, INIT_TEXT_MAX) < 0)
            return -1;
        if ((in_env && token[0] == '\0') || ok(token))
            return 0;
        fprintf(r->out, "That does not look like a %s bot token.\n", platform);
    }
    return -1;
}

static bool init__telegram_ok(const char *t)
{
    return init_telegram_token_ok(t);
}

static bool init__discord_ok(const char *t)
{
    return init_discord_token_ok(t, NULL, 0);
}

static int init__questions(struct init_run *r)
{
    struct init_answers *a = &r->a;
    char buf[INIT_TEXT_MAX];
    fprintf(r->out,
            "HAI Bot setup: a few questions, then %s is written (mode 0600).\n"
            "Press Enter to take the answer in brackets.\n\n",
            r->path);
    /* Flags given with the questions are their defaults. */
    char def[INIT_TEXT_MAX];
    snprintf(def, sizeof(def), "%s", a->name);
    if (init__ask(r, "Bot name", def, false, a->name, sizeof(a->name)) < 0)
        return -1;
    snprintf(def, sizeof(def), "%s%s%s%s%s", a->console ? "console" : "",
             a->console && (a->telegram || a->discord) ? ", " : "", a->telegram ? "telegram" : "",
             a->telegram && a->discord ? ", " : "", a->discord ? "discord" : "");
    for (;;) {
        if (init__ask(r, "Platforms (console, telegram, discord)", def, false, buf, sizeof(buf)) <
            0)
            return -1;
        if (init__platform_set(a, buf) == 0)
            break;
        fprintf(r->out, "Name one or more of console, telegram, discord.\n");
    }
    if (a->telegram) {
        if (init__ask_token(r, "Telegram", "TELEGRAM_TOKEN", a->telegram_token, a->telegram_env,
                            init__telegram_ok) < 0)
            return -1;
        snprintf(def, sizeof(def), "%s", a->telegram_admins);
        for (;;) {
            if (init__ask(r,
                          "Telegram admins (numeric user ids, comma-separated; the bot tells "
                          "you yours on /start)",
                          def, false, a->telegram_admins, sizeof(a->telegram_admins)) < 0)
                return -1;
            if (init__ids_ok(a->telegram_admins))
                break;
            fprintf(r->out, "Numbers separated by commas, please.\n");
        }
    }
    if (a->discord) {
        if (init__ask_token(r, "Discord", "DISCORD_TOKEN", a->discord_token, a->discord_env,
                            init__discord_ok) < 0)
            return -1;
        const char *t = init__token_value(a->discord_token, a->discord_env);
        if (t[0] == '\0' || !init_discord_token_ok(t, a->discord_app_id, sizeof(a->discord_app_id)))
            if (init__ask(r, "Discord application id", "", false, a->discord_app_id,
                          sizeof(a->discord_app_id)) < 0)
                return -1;
    }
    fprintf(r->out, "Providers:");
    for (const struct init_preset *p = init_presets; p->name != NULL; p++)
        fprintf(r->out, " %s (%s)%s", p->name, p->title, p[1].name != NULL ? "," : "\n");
    for (;;) {
        if (init__ask(r, "Provider", a->preset != NULL ? a->preset->name : "demo", false, buf,
                      sizeof(buf)) < 0)
            return -1;
        a->preset = init_preset_find(buf);
        if (a->preset != NULL)
            break;
        fprintf(r->out, "One of the names above, please.\n");
    }
    snprintf(def, sizeof(def), "%s", a->base_url[0] != '\0' ? a->base_url : "");
    if (a->preset->base_url != NULL &&
        init__ask(r, "Provider base URL", def[0] != '\0' ? def : a->preset->base_url, false,
                  a->base_url, sizeof(a->base_url)) < 0)
        return -1;
    if (a->preset->key_env != NULL) {
        bool in_env = true;
        if (init__ask_yes(r, "Read the API key from an environment variable (recommended)?", true,
                          &in_env) < 0)
            return -1;
        if (in_env) {
            if (init__ask(r, "Environment variable for the API key", a->preset->key_env, false,
                          a->api_key_env, sizeof(a->api_key_env)) < 0)
                return -1;
        } else if (init__ask(r, "API key", NULL, true, a->api_key, sizeof(a->api_key)) < 0) {
            return -1;
        }
    }
    snprintf(def, sizeof(def), "%ld", a->welcome_bonus);
    if (init__ask(r, "Welcome bonus (credits for each new member)", def, false, buf, sizeof(buf)) <
        0)
        return -1;
    char *end = NULL;
    a->welcome_bonus = strtol(buf, &end, 10);
    if (end == buf || *end != '\0')
        a->welcome_bonus = -1;
    if (a->console &&
        init__ask_yes(r, "May the console user run admin commands?", true, &a->console_admin) < 0)
        return -1;
    if ((a->telegram || a->discord) &&
        init__ask_yes(r, "Check the tokens with Telegram/Discord now (needs the network)?", false,
                      &r->check) < 0)
        return -1;
    return 0;
}

/* ---- flags ------------------------------------------------------------- */

struct init_flag {
    const char *name;
    size_t field; /* offset in struct init_answers of a char[INIT_TEXT_MAX] */
};

#define INIT_FLAG(n, f)                                                                            \
    {                                                                                              \
        n, offsetof(struct init_answers, f)                                                        \
    }
static const struct init_flag init_flags[] = {
    INIT_FLAG("--name", name),
    INIT_FLAG("--telegram-token", telegram_token),
    INIT_FLAG("--telegram-token-env", telegram_env),
    INIT_FLAG("--telegram-api", telegram_api),
    INIT_FLAG("--telegram-admins", telegram_admins),
    INIT_FLAG("--discord-token", discord_token),
    INIT_FLAG("--discord-token-env", discord_env),
    INIT_FLAG("--discord-api", discord_api),
    INIT_FLAG("--discord-application-id", discord_app_id),
    INIT_FLAG("--base-url", base_url),
    INIT_FLAG("--api-key", api_key),
    INIT_FLAG("--api-key-env", api_key_env),
    INIT_FLAG("--model", model),
};

static void init__usage(FILE *out)
{
    fprintf(out,
            "Usage: haibot init [-c FILE] [--force]       ask on the terminal, write FILE "
            "(default bot.conf)\n"
            "       haibot init --non-interactive [-c FILE] [--force] [--check-tokens]\n"
            "         --platforms console,telegram,discord   (default console)\n"
            "         --telegram-token TOKEN | --telegram-token-env NAME  [--telegram-admins IDS]\n"
            "         --discord-token TOKEN | --discord-token-env NAME  [--discord-application-id "
            "ID]\n"
            "         --provider NAME  (");
    for (const struct init_preset *p = init_presets; p->name != NULL; p++)
        fprintf(out, "%s%s", p->name, p[1].name != NULL ? ", " : "; default demo)\n");
    fprintf(out, "         --api-key KEY | --api-key-env NAME  [--base-url URL] [--model ID]\n"
                 "         --welcome-bonus N  --console-admin yes|no  --name NAME\n"
                 "         --telegram-api URL  --discord-api URL   (API bases, for a local "
                 "server)\n"
                 "With both a token and its -env flag, the token is only checked and the file "
                 "names the variable.\n");
}

/* Returns 0, 1 for --help, or -1 on a bad flag. */
static int init__flags(struct init_run *r, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        bool is_switch = true;
        if (strcmp(arg, "--non-interactive") == 0)
            r->interactive = false;
        else if (strcmp(arg, "--force") == 0)
            r->force = true;
        else if (strcmp(arg, "--check-tokens") == 0)
            r->check = true;
        else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
            return 1;
        else
            is_switch = false;
        if (is_switch)
            continue;
        const char *value = eq != NULL ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (value == NULL || strlen(value) >= INIT_TEXT_MAX) {
            fprintf(stderr, "haibot init: %.*s needs a value\n", (int)nlen, arg);
            return -1;
        }
        if (eq == NULL)
            i++;
        bool known = true;
        if ((nlen == 2 && strncmp(arg, "-c", 2) == 0) ||
            (nlen == 8 && strncmp(arg, "--config", 8) == 0)) {
            r->path = value;
        } else if (strncmp(arg, "--platforms", nlen) == 0 && nlen == 11) {
            if (init__platform_set(&r->a, value) < 0) {
                fprintf(stderr, "haibot init: --platforms takes console, telegram, discord\n");
                return -1;
            }
        } else if (strncmp(arg, "--provider", nlen) == 0 && nlen == 10) {
            r->a.preset = init_preset_find(value);
            if (r->a.preset == NULL) {
                fprintf(stderr, "haibot init: no provider preset called '%s'\n", value);
                return -1;
            }
        } else if (strncmp(arg, "--welcome-bonus", nlen) == 0 && nlen == 15) {
            char *end = NULL;
            r->a.welcome_bonus = strtol(value, &end, 10);
            if (end == value || *end != '\0')
                r->a.welcome_bonus = -1;
        } else if (strncmp(arg, "--console-admin", nlen) == 0 && nlen == 15) {
            r->a.console_admin = strcmp(value, "yes") == 0 || strcmp(value, "true") == 0;
        } else {
            known = false;
            for (size_t k = 0; k < sizeof(init_flags) / sizeof(init_flags[0]); k++)
                if (strlen(init_flags[k].name) == nlen &&
                    strncmp(arg, init_flags[k].name, nlen) == 0) {
                    snprintf((char *)&r->a + init_flags[k].field, INIT_TEXT_MAX, "%s", value);
                    known = true;
                }
        }
        if (!known) {
            fprintf(stderr, "haibot init: unknown flag '%.*s'\n", (int)nlen, arg);
            return -1;
        }
    }
    return 0;
}

/* ---- the file ------------------------------------------------------------ */

/* Write the config with mode 0600 whatever the umask; never over an
 * existing file unless forced, and then through a new file renamed into
 * place, so a reader never sees half a config. */
static int init__write(struct init_run *r)
{
    char tmp[4096];
    const char *target = r->path;
    if (r->force) {
        snprintf(tmp, sizeof(tmp), "%s.init-tmp", r->path);
        unlink(tmp);
        target = tmp;
    }
    int fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "haibot init: cannot create %s: %s\n", target, strerror(errno));
        return -1;
    }
    FILE *f = fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        close(fd);
        unlink(target);
        return -1;
    }
    int rc = init_config_write(f, &r->a);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc == 0 && r->force && rename(tmp, r->path) != 0)
        rc = -1;
    if (rc < 0) {
        fprintf(stderr, "haibot init: writing %s failed: %s\n", r->path, strerror(errno));
        unlink(target);
    }
    return rc;
}

static void init__next_steps(struct init_run *r)
{
    const struct init_answers *a = &r->a;
    fprintf(r->out, "Wrote %s (mode 0600).\n", r->path);
    const char *envs[] = {a->telegram ? a->telegram_env : "", a->discord ? a->discord_env : "",
                          a->api_key_env};
    for (size_t i = 0; i < 3; i++)
        if (envs[i][0] != '\0')
            fprintf(r->out, "Set %s in the daemon's environment (export %s=...).\n", envs[i],
                    envs[i]);
    fprintf(r->out, "Next: haibot check-config -c %s, then haibot -c %s\n", r->path, r->path);
}

int init_main(int argc, char **argv)
{
    struct init_run r;
    memset(&r, 0, sizeof(r));
    r.path = "bot.conf";
    r.interactive = true;
    r.in = stdin;
    r.out = stdout;
    snprintf(r.a.name, sizeof(r.a.name), "HAI Bot");
    r.a.console = true;
    r.a.console_admin = true;
    r.a.welcome_bonus = 100;
    int rc = init__flags(&r, argc, argv);
    if (rc != 0) {
        init__usage(rc > 0 ? stdout : stderr);
        return rc > 0 ? 0 : 2;
    }
    if (access(r.path, F_OK) == 0 && !r.force) {
        fprintf(stderr,
                "haibot init: %s exists; init never overwrites a config (--force "
                "replaces it)\n",
                r.path);
        return 1;
    }
    if (r.interactive) {
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, "haibot init: standard input is not a terminal; answer with flags "
                            "and --non-interactive (haibot init --help)\n");
            return 2;
        }
        if (init__questions(&r) < 0) {
            fprintf(stderr, "\nhaibot init: stopped; nothing was written\n");
            return 1;
        }
    }
    if (r.a.preset == NULL)
        r.a.preset = init_preset_find("demo");
    if (r.a.preset->key_env != NULL && r.a.api_key[0] == '\0' && r.a.api_key_env[0] == '\0')
        snprintf(r.a.api_key_env, sizeof(r.a.api_key_env), "%s", r.a.preset->key_env);
    if (init__validate(&r) > 0)
        return 1;
    /* With a variable named, a token given too is only checked, never written. */
    if (r.check && init__check_tokens(&r) > 0) {
        fprintf(stderr, "haibot init: nothing was written\n");
        return 1;
    }
    if (r.a.telegram_env[0] != '\0')
        r.a.telegram_token[0] = '\0';
    if (r.a.discord_env[0] != '\0')
        r.a.discord_token[0] = '\0';
    if (r.a.api_key_env[0] != '\0')
        r.a.api_key[0] = '\0';
    if (init__write(&r) < 0)
        return 1;
    init__next_steps(&r);
    return 0;
}
