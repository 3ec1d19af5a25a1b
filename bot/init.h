/* `haibot init`: the first-run setup. Asks a few questions on a terminal
 * (or takes them all as flags with --non-interactive) and writes a private
 * bot.conf: the platforms and their tokens, a provider preset with its
 * models and prices, the welcome bonus and the admins.
 *
 * Split in two: init.c talks to the operator (flags, prompts, the token
 * checks against Telegram and Discord) and writes the file; init_presets.c
 * holds the provider presets and renders the config text. */
#ifndef HB_INIT_H
#define HB_INIT_H

#include <stdbool.h>
#include <stdio.h>

#define INIT_TEXT_MAX 512

/** One model a provider preset offers. */
struct init_model {
    const char *name;     /* the [model "NAME"] section */
    const char *upstream; /* the provider's id for it */
    const char *modality; /* "text" or "image" */
    int price_request;    /* credits */
    int price_input_1k;   /* credits per 1000 input tokens */
    int price_output_1k;  /* credits per 1000 output tokens */
    const char *sizes;    /* image models: "1024x1024"; else NULL */
};

#define INIT_PRESET_MODELS 3

/** A provider preset: a wire protocol, where it listens, its key. */
struct init_preset {
    const char *name;     /* what the operator types: "openai" */
    const char *title;    /* "OpenAI" */
    const char *kind;     /* [provider] kind */
    const char *base_url; /* NULL for demo */
    const char *key_env;  /* default environment variable of the key; NULL: no key */
    const char *headers;  /* extra headers; NULL: none */
    struct init_model models[INIT_PRESET_MODELS]; /* name NULL ends the list early */
};

/** The presets, ending with one whose name is NULL. */
extern const struct init_preset init_presets[];

/** The preset called name, or NULL. */
const struct init_preset *init_preset_find(const char *name);

/** Everything the config needs; strings are "" when not set. */
struct init_answers {
    char name[INIT_TEXT_MAX]; /* the bot's name */
    bool console, telegram, discord;
    char telegram_token[INIT_TEXT_MAX];  /* written only when telegram_env is "" */
    char telegram_env[INIT_TEXT_MAX];    /* token_env = NAME, or "" */
    char telegram_api[INIT_TEXT_MAX];    /* api_base when not the default, or "" */
    char telegram_admins[INIT_TEXT_MAX]; /* comma-separated user ids */
    char discord_token[INIT_TEXT_MAX];   /* written only when discord_env is "" */
    char discord_env[INIT_TEXT_MAX];     /* token_env = NAME, or "" */
    char discord_api[INIT_TEXT_MAX];     /* api_base when not the default, or "" */
    char discord_app_id[INIT_TEXT_MAX];  /* the application's id */
    const struct init_preset *preset;    /* never NULL once chosen */
    char base_url[INIT_TEXT_MAX];        /* the provider's base URL */
    char api_key[INIT_TEXT_MAX];         /* written only when api_key_env is "" */
    char api_key_env[INIT_TEXT_MAX];     /* api_key_env = NAME, or "" */
    char model[INIT_TEXT_MAX];           /* upstream of the first model, or "" for the preset's */
    long welcome_bonus;                  /* credits */
    bool console_admin;                  /* [console] admin */
};

/** Write the config text for a to out. Returns 0, or -1 when out fails. */
int init_config_write(FILE *out, const struct init_answers *a);

/** Whether text has the shape of a Telegram bot token (digits:35 chars). */
bool init_telegram_token_ok(const char *text);

/** Whether text has the shape of a Discord bot token (three base64url parts,
 *  the first the application's id in base64); when it has, the id is
 *  copied into app_id (cap bytes; may be NULL). */
bool init_discord_token_ok(const char *text, char *app_id, size_t cap);

/** Whether text is a usable environment variable name. */
bool init_env_name_ok(const char *text);

/** `haibot init [flags]`: argv[0] is "init". Returns the exit code. */
int init_main(int argc, char **argv);

#endif
