/* The command table (core/commands.h) rendered as Discord application
 * commands, for a bulk overwrite (PUT /applications/{app}/commands, or the
 * guild's). Names with a space become subcommands of their first word;
 * groups whose every subcommand is for admins ask for Manage Server by
 * default; a string option named "model" autocompletes. */
#ifndef HB_DISCORD_APPCMD_H
#define HB_DISCORD_APPCMD_H

#include "core/commands.h"

#include <stddef.h>

#define DISCORD_PERM_ADMINISTRATOR 0x8ull
#define DISCORD_PERM_MANAGE_GUILD 0x20ull

/* What the bot needs in a channel: see it, answer (also in threads, where
 * conversations go on), show images as attachments and link previews, and
 * read the message a member replied to. */
#define DISCORD_PERM_BOT                                                                           \
    ((1ull << 10) /* View Channel */ | (1ull << 11) /* Send Messages */ |                          \
     (1ull << 14) /* Embed Links */ | (1ull << 15) /* Attach Files */ |                            \
     (1ull << 16) /* Read Message History */ | (1ull << 38) /* Send Messages in Threads */)

/** The URL that adds the bot to a server with the scopes it needs ("bot"
 *  and "applications.commands", so its slash commands show) and
 *  DISCORD_PERM_BOT, into buf (cap bytes). Returns its length, or -1 when
 *  it does not fit. */
int discord_invite_url(const char *application_id, char *buf, size_t cap);

/** Render n specs as a JSON array (heap text the caller frees), or NULL on
 *  no memory. Equal tables render to equal text. */
char *discord_appcmd_render(const struct command_spec *table, size_t n);

/** SHA-256 (hex) of the rendered text and the registration scope ("global"
 *  or a guild id): when it matches the stored one, the overwrite is
 *  skipped. */
void discord_appcmd_hash(const char *json, const char *scope, char out[65]);

#endif
