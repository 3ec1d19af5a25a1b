/* The text form of a command's options ("/usage month chart",
 * "/admin grant amount:500 @alice"): tokens, name:value pairs, yes/no
 * options by their name, and positional words filling the rest in order
 * (core/commands.h). */
#include "core/commands.h"

#include "base/error.h"
#include "core/messages.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Does a positional word name a member by itself ("@name", a mention)? In a
 * reply to a member's message, other words fill the other options. */
static bool args__names_member(const char *word)
{
    return word[0] == '@' || strncmp(word, "<@", 2) == 0;
}

/* Cut the next token from *p: a double-quoted run (quotes removed, \" kept as
 * a quote) or a run of non-space. Returns a heap string or NULL at the end. */
static char *commands__token(const char **p, const char **start)
{
    const char *s = *p;
    while (isspace((unsigned char)*s))
        s++;
    *start = s;
    if (*s == '\0') {
        *p = s;
        return NULL;
    }
    size_t cap = strlen(s) + 1;
    char *tok = malloc(cap);
    if (tok == NULL)
        return NULL;
    size_t n = 0;
    bool quoted = false;
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            quoted = !quoted;
            continue;
        }
        if (*s == '\\' && s[1] == '"') {
            tok[n++] = '"';
            s++;
            continue;
        }
        if (!quoted && isspace((unsigned char)*s))
            break;
        tok[n++] = *s;
    }
    tok[n] = '\0';
    *p = s;
    return tok;
}

/* The yes/no option called word, or -1. */
static int commands__flag_index(const struct command_spec *spec, const char *word)
{
    for (size_t i = 0; i < spec->noptions; i++)
        if (spec->options[i].type == COMMAND_OPT_BOOLEAN &&
            strcasecmp(spec->options[i].name, word) == 0)
            return (int)i;
    return -1;
}

int command_args_parse(const struct command_spec *spec, const char *args, struct invocation *inv,
                       char *err, size_t errcap)
{
    int rc = 0;
    size_t cap = strlen(args) + 1;
    char *rest = malloc(cap); /* positional words, single-spaced */
    if (rest == NULL)
        return HB_ENOMEM;
    rest[0] = '\0';
    size_t restlen = 0;
    const char *p = args;
    const char *start;
    char *tok;
    while ((tok = commands__token(&p, &start)) != NULL) {
        char *colon = strchr(tok, ':');
        int idx = -1;
        if (colon != NULL && colon != tok) {
            *colon = '\0';
            idx = command_option_index(spec, tok);
            if (idx < 0)
                *colon = ':';
        }
        if (idx >= 0) {
            rc = command_option_set_text(spec, (size_t)idx, colon + 1, inv, err, errcap);
            free(tok);
            if (rc < 0)
                goto out;
            continue;
        }
        /* A yes/no option's own name turns it on ("/usage chart month"). */
        idx = colon == NULL ? commands__flag_index(spec, tok) : -1;
        if (idx >= 0 && !inv->opts[idx].set) {
            rc = command_option_set_text(spec, (size_t)idx, "yes", inv, err, errcap);
            free(tok);
            if (rc < 0)
                goto out;
            continue;
        }
        size_t tlen = strlen(tok);
        if (restlen > 0)
            rest[restlen++] = '\x1f'; /* word separator that no token contains */
        memcpy(rest + restlen, tok, tlen);
        restlen += tlen;
        rest[restlen] = '\0';
        free(tok);
    }

    /* Fill the unset options in order from the positional words. A command
     * sent as a reply to a member's message names that member, unless a
     * word names one itself. */
    char *cursor = restlen > 0 ? rest : NULL;
    for (size_t i = 0; i < spec->noptions; i++) {
        if (inv->opts[i].set)
            continue;
        const struct command_option_spec *o = &spec->options[i];
        if (o->type == COMMAND_OPT_USER && inv->target_id[0] != '\0' &&
            (cursor == NULL || !args__names_member(cursor))) {
            rc = command_option_set_text(spec, i, inv->target_id, inv, err, errcap);
            if (rc < 0)
                goto out;
            continue;
        }
        if (cursor == NULL)
            break;
        char *word = cursor;
        if (o->type == COMMAND_OPT_STRING && o->rest) {
            for (char *c = word; *c != '\0'; c++) {
                if (*c == '\x1f')
                    *c = ' ';
            }
            cursor = NULL;
        } else {
            char *sep = strchr(word, '\x1f');
            if (sep != NULL) {
                *sep = '\0';
                cursor = sep + 1;
            } else {
                cursor = NULL;
            }
        }
        rc = command_option_set_text(spec, i, word, inv, err, errcap);
        if (rc < 0)
            goto out;
    }
    if (cursor != NULL) {
        for (char *c = cursor; *c != '\0'; c++) {
            if (*c == '\x1f')
                *c = ' ';
        }
        snprintf(err, errcap, MSG_OPTION_TOO_MANY_WORDS, cursor, spec->name, spec->example);
        rc = HB_EINVAL;
        goto out;
    }
    rc = command_options_validate(spec, inv, err, errcap);
out:
    free(rest);
    return rc;
}
