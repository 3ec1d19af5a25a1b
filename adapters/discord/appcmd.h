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

/** Render n specs as a JSON array (heap text the caller frees), or NULL on
 *  no memory. Equal tables render to equal text. */
char *discord_appcmd_render(const struct command_spec *table, size_t n);

/** SHA-256 (hex) of the rendered text and the registration scope ("global"
 *  or a guild id): when it matches the stored one, the overwrite is
 *  skipped. */
void discord_appcmd_hash(const char *json, const char *scope, char out[65]);

#endif
