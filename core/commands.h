/* The command table: every command, once, as data.
 *
 * Each adapter renders this table into its platform (Discord application
 * commands, Telegram setMyCommands, the console's /help), and the router
 * validates every invocation against it before a handler runs. Subcommands
 * are entries whose name has a space ("admin grant"); Discord renders them
 * as subcommands of "admin", text platforms match the longest name. */
#ifndef HB_COMMANDS_H
#define HB_COMMANDS_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;

enum command_access {
    COMMAND_ACCESS_MEMBER = 0, /* anyone */
    COMMAND_ACCESS_ADMIN = 1,  /* the adapter said the invoker is an admin */
};

struct command_option_spec {
    const char *name;        /* lower case, [a-z0-9_], at most 32 bytes (Discord) */
    const char *description; /* at most 100 characters (Discord) */
    enum command_option_type type;
    bool required;
    int64_t min;                /* INTEGER: smallest value; STRING: shortest length in characters */
    int64_t max;                /* INTEGER: largest value; STRING: longest length; 0 = no limit */
    const char *const *choices; /* STRING: NULL-terminated allowed values, or NULL */
    bool rest;                  /* STRING on text platforms: takes the rest of the line */
};

/** A handler runs on the loop. It owns nothing of the invocation after it
 *  returns unless it took a copy; it must call reply_finish() exactly once,
 *  now or later, when it has said all it will say. */
typedef void (*command_handler_fn)(struct core *core, struct invocation *inv);

struct command_spec {
    const char *name;        /* "help", "admin grant" */
    const char *description; /* one line, at most 100 characters */
    const char *example;     /* an example invocation for /help */
    enum command_access access;
    const struct command_option_spec *options;
    size_t noptions;
    command_handler_fn handler;
    bool personal;             /* answers the member's own data: adapters acknowledge it privately
                                  (Discord: an ephemeral deferral), see reply_msg.personal */
    const char *button_prefix; /* button refs "<prefix>:..." made by this command */
    command_handler_fn on_button; /* runs for a press of one of those buttons */
};

/** The command whose buttons carry refs starting "<prefix>:". NULL if none. */
const struct command_spec *commands_find_button(const char *ref);

/** The table, and its size. */
const struct command_spec *commands_table(size_t *count);

/** Find a command by exact name ("admin grant"). NULL when unknown. */
const struct command_spec *commands_find(const char *name);

/** Split a text line ("imagine a cat size:512") into the longest matching
 *  command name and the argument text that follows. Returns the spec, or NULL
 *  (then `name` holds the first word, for a "did you mean" reply). */
const struct command_spec *commands_match(const char *line, char *name, size_t namecap,
                                          const char **args);

/** Parse argument text for a spec into inv->opts: `option:value` tokens set
 *  named options anywhere in the text, double quotes group words, the rest
 *  fills the options in order and a `rest` string option takes the remaining
 *  words. Values are then validated as by command_options_validate().
 *  Returns 0, or HB_EINVAL with a sentence for the member in err. */
int command_args_parse(const struct command_spec *spec, const char *args, struct invocation *inv,
                       char *err, size_t errcap);

/** Check inv->opts against the spec: required options present, integers in
 *  range, string lengths (in characters) and choices, well-formed users.
 *  Returns 0, or HB_EINVAL with a sentence for the member in err. */
int command_options_validate(const struct command_spec *spec, struct invocation *inv, char *err,
                             size_t errcap);

/** Set option `index` of inv from text, typed as the spec says. Used by the
 *  text parser and by adapters that receive options as strings. Returns 0, or
 *  HB_EINVAL with a sentence in err. */
int command_option_set_text(const struct command_spec *spec, size_t index, const char *text,
                            struct invocation *inv, char *err, size_t errcap);

/** Index of an option by name in a spec, or -1. */
int command_option_index(const struct command_spec *spec, const char *name);

/** Length of a UTF-8 string in code points. */
size_t command_utf8_len(const char *s);

#endif
