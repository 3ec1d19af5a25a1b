/* Personas chosen in the chats, and a group's plain talk.
 *
 * A persona (bot.conf's [persona "NAME"], core/catalog.h) is chosen at four
 * levels. The one a generation uses is the first of:
 *   1. the member's own choice (/persona NAME), when the persona's allow
 *      list lets them use it where they are;
 *   2. the channel's (/admin persona set NAME channel): a Discord thread
 *      without one of its own takes its parent channel's, a Telegram forum
 *      topic without one takes its chat's;
 *   3. the server's or group's (/admin persona set NAME);
 *   4. the bot's ([bot] persona);
 * or none. A name that is no longer in bot.conf is passed over.
 *
 * The choices are kept in the store's chat_settings table (one row per
 * key: "m/<platform>:<user>", "c/<platform>:<group>/<channel>",
 * "g/<platform>:<group>") and wholly in memory, loaded once at start, so a
 * generation resolves its persona without waiting on the store. The same
 * rows hold a group's plain-talk switch (/admin plaintalk on|off): whether
 * plain messages in a Telegram group are chat turns. */
#ifndef HB_PERSONA_H
#define HB_PERSONA_H

#include "core/command.h"

#include <stdbool.h>

struct catalog;
struct catalog_persona;
struct core;

/** Where a choice applies. */
enum persona_level {
    PERSONA_LEVEL_MEMBER = 0,  /* the member, everywhere */
    PERSONA_LEVEL_CHANNEL = 1, /* the channel, thread or topic */
    PERSONA_LEVEL_GROUP = 2,   /* the server or group */
    PERSONA_LEVEL_BOT = 3,     /* [bot] persona */
    PERSONA_LEVEL_NONE = 4,    /* nothing chosen */
};

/** The in-memory copy of the choices. */
struct persona_dir;

/** An empty directory; NULL when out of memory. */
struct persona_dir *persona_dir_new(void);
/** Free it; d may be NULL. */
void persona_dir_free(struct persona_dir *d);

/** Load every stored choice into core->personas (which must exist). cb
 *  gets 0 or an error. Returns 0 (cb follows) or a negative code. */
int persona_dir_load(struct core *core, void (*cb)(int rc, void *data), void *data);

/** Read every stored choice again, replacing those known: what was chosen
 *  on another daemon on the same ledger counts here from then on. A choice
 *  made here while the rows are read wins (the next refresh reads again).
 *  HB_EBUSY while a refresh is under way; else as persona_dir_load. */
int persona_dir_refresh(struct core *core, void (*cb)(int rc, void *data), void *data);

/** persona_dir_refresh without a callback, for a change heard from another
 *  daemon (core/cluster.h): when a refresh is under way (it may have begun
 *  before that change), another read follows it. 0 or an error. */
int persona_dir_refresh_after(struct core *core);

/** Store a choice for inv at level (MEMBER, CHANNEL or GROUP; name NULL
 *  clears it) and keep it in memory at once. cb (may be NULL) gets the
 *  store's result. Returns 0 (cb follows), HB_EINVAL (a group level in a
 *  direct chat) or another negative code (no callback). */
int persona_choose(struct core *core, const struct invocation *inv, enum persona_level level,
                   const char *name, void (*cb)(int rc, void *data), void *data);

/** The persona a generation of inv uses (see above), from cat; NULL when
 *  none. *level (may be NULL) says where it came from. */
const struct catalog_persona *persona_resolve(const struct core *core, const struct catalog *cat,
                                              const struct invocation *inv,
                                              enum persona_level *level);

/** The name chosen at one level for inv ("" when none). */
const char *persona_chosen(const struct core *core, const struct invocation *inv,
                           enum persona_level level);

/** Whether plain messages in the group are chat turns (off unless an
 *  admin turned it on). */
bool persona_plaintalk(const struct core *core, enum command_platform platform,
                       const char *group_id);

/** Turn a group's plain talk on or off, stored and in memory at once; cb as
 *  persona_choose. Returns 0 (cb follows) or a negative code. */
int persona_plaintalk_set(struct core *core, const struct invocation *inv, bool on,
                          void (*cb)(int rc, void *data), void *data);

/** Fill a system prompt's variables: {date} (UTC, YYYY-MM-DD), {user} (the
 *  member's display name), {server} (inv->scope_name, "this server" /
 *  "this group" when the adapter does not know it, "a private chat" in a
 *  DM), {model} (the model's name) and {bot} (the bot's name);
 *  "{{" and "}}" are literal braces, and any other {word} stays as written.
 *  now_ms is the wall clock. Returns a heap string (NULL, or a shortened
 *  text, when memory runs out). */
char *persona_prompt_expand(const char *prompt, const struct invocation *inv, const char *model,
                            const char *bot_name, int64_t now_ms);

#endif
