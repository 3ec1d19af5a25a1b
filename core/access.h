/* Who may use the bot: allow and block lists, platform-neutral.
 *
 * The lists name members, roles and groups as "<platform>:<id>", because
 * ids of different platforms may collide: "discord:80351110224678912",
 * "telegram:123456789", "telegram:-1001234567890", "console:operator".
 * The daemon builds the rules from bot.conf's [access] section and the
 * router checks every invocation against them before any handler runs, so
 * a refused member gets no wallet and no welcome bonus.
 *
 * The rule, in order:
 *   1. Admins (the adapter's verdict, inv->admin) are always allowed.
 *   2. A member named in block_users, holding a role in block_roles, or
 *      speaking in a group named in block_groups is blocked.
 *   3. A DM is refused when DMs are off (the console counts as a DM).
 *   4. Allow lists restrict only the platform they name: when allow_users
 *      or allow_roles name a member or role of the invocation's platform,
 *      the member must be listed or hold a listed role; when allow_groups
 *      names a group of that platform, a group invocation must come from a
 *      listed group (DMs are governed by rule 3 alone).
 *   5. Everyone else is allowed. */
#ifndef HB_ACCESS_H
#define HB_ACCESS_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>

enum access_verdict {
    ACCESS_ALLOWED = 0,
    ACCESS_BLOCKED = 1, /* a block list names them, or an allow list leaves them out */
    ACCESS_NO_DMS = 2,  /* a DM while DMs are off */
};

enum access_reply {
    ACCESS_REPLY_MESSAGE = 0, /* a refused member hears one short message */
    ACCESS_REPLY_SILENT = 1,  /* a refused member hears nothing */
};

/* Which kind of id a list holds: decides what a valid entry looks like. */
enum access_list_kind {
    ACCESS_LIST_USERS = 0,  /* discord:<snowflake>, telegram:<user id>, console:<name> */
    ACCESS_LIST_ROLES = 1,  /* discord:<role snowflake> */
    ACCESS_LIST_GROUPS = 2, /* discord:<guild snowflake>, telegram:<chat id> (often -100...) */
};

/** The settings the rules are built from; every string is a comma- or
 *  space-separated list, or NULL for none. Borrowed for the call. */
struct access_settings {
    const char *allow_users;
    const char *block_users;
    const char *allow_roles;
    const char *block_roles;
    const char *allow_groups;
    const char *block_groups;
    bool dms;                /* DMs (and the console) are allowed */
    enum access_reply reply; /* what a refused member hears */
};

struct access_rules;

/** Check one list: returns 0 when every entry is valid for kind, else
 *  HB_EINVAL with err saying which entry and why (one sentence). */
int access_list_check(const char *list, enum access_list_kind kind, char *err, size_t errcap);

/** Build rules from settings. Returns NULL when an entry is invalid (err
 *  says why) or memory runs out (err says so). The caller frees the rules
 *  with access_rules_free(). */
struct access_rules *access_rules_new(const struct access_settings *s, char *err, size_t errcap);

/** Free rules from access_rules_new(). NULL is fine. */
void access_rules_free(struct access_rules *rules);

/** The verdict for one invocation (see the rule above). NULL rules allow
 *  everyone. */
enum access_verdict access_check(const struct access_rules *rules, const struct invocation *inv);

/** What a refused member hears. NULL rules: a message. */
enum access_reply access_reply_mode(const struct access_rules *rules);

#endif
