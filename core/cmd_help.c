/* /help: the command table, rendered as text. */
#include "core/core.h"
#include "core/handlers.h"
#include "core/messages.h"
#include "base/text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cmd_help__type_name(enum command_option_type t)
{
    switch (t) {
    case COMMAND_OPT_STRING:
        return MSG_HELP_TYPE_TEXT;
    case COMMAND_OPT_INTEGER:
        return MSG_HELP_TYPE_NUMBER;
    case COMMAND_OPT_BOOLEAN:
        return MSG_HELP_TYPE_YES_NO;
    case COMMAND_OPT_USER:
        return MSG_HELP_TYPE_MEMBER;
    }
    return MSG_HELP_TYPE_VALUE;
}

static void cmd_help__one(struct invocation *inv, const struct command_spec *c)
{
    struct text_buf t = {0};
    text_buf_add(&t, "/%s", c->name);
    for (size_t i = 0; i < c->noptions; i++) {
        const struct command_option_spec *o = &c->options[i];
        text_buf_add(&t, o->required ? " <%s>" : " [%s]", o->name);
    }
    text_buf_add(&t, "\n%s%s\n", c->description,
                 c->access == COMMAND_ACCESS_ADMIN ? MSG_HELP_ADMINS_ONLY : "");
    for (size_t i = 0; i < c->noptions; i++) {
        const struct command_option_spec *o = &c->options[i];
        text_buf_add(&t, MSG_HELP_OPTION_LINE, o->name, cmd_help__type_name(o->type),
                     o->required ? "" : MSG_HELP_OPTIONAL, o->description);
        if (o->choices != NULL) {
            text_buf_add(&t, MSG_HELP_ONE_OF);
            for (const char *const *ch = o->choices; *ch != NULL; ch++)
                text_buf_add(&t, " %s", *ch);
        }
        text_buf_add(&t, "\n");
    }
    text_buf_add(&t, MSG_HELP_EXAMPLE, c->example);
    reply_text(inv->reply, true, "%s", text_buf_str(&t));
    free(t.buf);
}

void cmd_help(struct core *core, struct invocation *inv)
{
    const char *want = inv->opts[0].set ? inv->opts[0].string : NULL;
    size_t n;
    const struct command_spec *table = commands_table(&n);
    if (want != NULL) {
        while (*want == '/')
            want++;
        char name[64];
        const char *args;
        const struct command_spec *c = commands_match(want, name, sizeof(name), &args);
        if (c == NULL || (c->access == COMMAND_ACCESS_ADMIN && !inv->admin))
            reply_text(inv->reply, true, MSG_HELP_NO_SUCH_COMMAND, name);
        else
            cmd_help__one(inv, c);
        reply_finish(inv->reply);
        return;
    }
    struct text_buf t = {0};
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        if (table[i].access != COMMAND_ACCESS_ADMIN || inv->admin)
            width = (int)strlen(table[i].name) > width ? (int)strlen(table[i].name) : width;
    }
    text_buf_add(&t, MSG_HELP_COMMANDS,
                 core->bot_name != NULL ? core->bot_name : MSG_COMMON_BOT_NAME);
    for (size_t i = 0; i < n; i++) {
        if (table[i].access == COMMAND_ACCESS_ADMIN)
            continue;
        text_buf_add(&t, "  /%-*s  %s\n", width, table[i].name, table[i].description);
    }
    if (inv->admin) {
        text_buf_add(&t, MSG_HELP_ADMIN_COMMANDS);
        for (size_t i = 0; i < n; i++) {
            if (table[i].access == COMMAND_ACCESS_ADMIN)
                text_buf_add(&t, "  /%-*s  %s\n", width, table[i].name, table[i].description);
        }
    }
    text_buf_add(&t, MSG_HELP_MORE);
    reply_text(inv->reply, true, "%s", text_buf_str(&t));
    free(t.buf);
    reply_finish(inv->reply);
}
