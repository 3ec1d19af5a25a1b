/* /help: the command table, rendered as text. */
#include "core/core.h"
#include "core/handlers.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cmd_help__type_name(enum command_option_type t)
{
    switch (t) {
    case COMMAND_OPT_STRING: return "text";
    case COMMAND_OPT_INTEGER: return "number";
    case COMMAND_OPT_BOOLEAN: return "yes/no";
    case COMMAND_OPT_USER: return "member";
    }
    return "value";
}

/* Append formatted text to a growing buffer; on allocation failure the
 * buffer keeps what it had. */
static void cmd_help__put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void cmd_help__put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (*len + (size_t)n + 1 > *cap) {
        size_t ncap = (*cap + (size_t)n + 1) * 2;
        char *grown = realloc(*buf, ncap);
        if (grown == NULL)
            return;
        *buf = grown;
        *cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(*buf + *len, *cap - *len, fmt, ap);
    va_end(ap);
    *len += (size_t)n;
}

static void cmd_help__one(struct invocation *inv, const struct command_spec *c)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    cmd_help__put(&buf, &len, &cap, "/%s", c->name);
    for (size_t i = 0; i < c->noptions; i++) {
        const struct command_option_spec *o = &c->options[i];
        cmd_help__put(&buf, &len, &cap, o->required ? " <%s>" : " [%s]", o->name);
    }
    cmd_help__put(&buf, &len, &cap, "\n%s%s\n", c->description,
                  c->access == COMMAND_ACCESS_ADMIN ? " (admins only)" : "");
    for (size_t i = 0; i < c->noptions; i++) {
        const struct command_option_spec *o = &c->options[i];
        cmd_help__put(&buf, &len, &cap, "  %s (%s%s): %s", o->name, cmd_help__type_name(o->type),
                      o->required ? "" : ", optional", o->description);
        if (o->choices != NULL) {
            cmd_help__put(&buf, &len, &cap, "; one of");
            for (const char *const *ch = o->choices; *ch != NULL; ch++)
                cmd_help__put(&buf, &len, &cap, " %s", *ch);
        }
        cmd_help__put(&buf, &len, &cap, "\n");
    }
    cmd_help__put(&buf, &len, &cap, "Example: %s", c->example);
    if (buf != NULL)
        reply_text(inv->reply, true, "%s", buf);
    free(buf);
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
            reply_text(inv->reply, true, "There is no command /%s. Type /help for the list.", name);
        else
            cmd_help__one(inv, c);
        reply_finish(inv->reply);
        return;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int width = 0;
    for (size_t i = 0; i < n; i++) {
        if (table[i].access != COMMAND_ACCESS_ADMIN || inv->admin)
            width = (int)strlen(table[i].name) > width ? (int)strlen(table[i].name) : width;
    }
    cmd_help__put(&buf, &len, &cap, "%s commands:\n", core->bot_name != NULL ? core->bot_name : "HAI Bot");
    for (size_t i = 0; i < n; i++) {
        if (table[i].access == COMMAND_ACCESS_ADMIN)
            continue;
        cmd_help__put(&buf, &len, &cap, "  /%-*s  %s\n", width, table[i].name, table[i].description);
    }
    if (inv->admin) {
        cmd_help__put(&buf, &len, &cap, "Admin commands:\n");
        for (size_t i = 0; i < n; i++) {
            if (table[i].access == COMMAND_ACCESS_ADMIN)
                cmd_help__put(&buf, &len, &cap, "  /%-*s  %s\n", width, table[i].name,
                              table[i].description);
        }
    }
    cmd_help__put(&buf, &len, &cap, "Type /help <command> for its options.");
    if (buf != NULL)
        reply_text(inv->reply, true, "%s", buf);
    free(buf);
    reply_finish(inv->reply);
}
