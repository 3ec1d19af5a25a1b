#include "core/command.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>

const char *command_platform_name(enum command_platform p)
{
    switch (p) {
    case COMMAND_PLATFORM_CONSOLE:
        return "console";
    case COMMAND_PLATFORM_DISCORD:
        return "discord";
    case COMMAND_PLATFORM_TELEGRAM:
        return "telegram";
    }
    return "unknown";
}

int reply_send(struct reply *r, const struct reply_msg *msg)
{
    return r->ops->send(r, msg);
}

int reply_text(struct reply *r, bool ephemeral, const char *fmt, ...)
{
    char stack[1024];
    char *text = stack;
    va_list ap;
    va_start(ap, fmt);
    if (strcmp(fmt, "%s") == 0) {
        /* Text made elsewhere: no copy. */
        struct reply_msg msg = {
            .stage = REPLY_FINAL, .ephemeral = ephemeral, .text = va_arg(ap, const char *)};
        va_end(ap);
        return reply_send(r, &msg);
    }
    int n = vsnprintf(stack, sizeof(stack), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof(stack)) {
        text = malloc((size_t)n + 1);
        if (text == NULL)
            return -1;
        va_start(ap, fmt);
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    struct reply_msg msg = {.stage = REPLY_FINAL, .ephemeral = ephemeral, .text = text};
    int rc = reply_send(r, &msg);
    if (text != stack)
        free(text);
    return rc;
}

int reply_personal(struct reply *r, const char *text)
{
    struct reply_msg msg = {
        .stage = REPLY_FINAL, .ephemeral = true, .personal = true, .text = text};
    return reply_send(r, &msg);
}

int reply_secret(struct reply *r, const char *text)
{
    struct reply_msg msg = {
        .stage = REPLY_FINAL, .ephemeral = true, .personal = true, .secret = true, .text = text};
    return reply_send(r, &msg);
}

void reply_finish(struct reply *r)
{
    r->ops->finish(r);
}

void reply_landed_forward(const struct reply *outer, struct reply *inner)
{
    if (outer->landed == NULL || inner == NULL)
        return;
    inner->landed = outer->landed;
    inner->landed_data = outer->landed_data;
    memcpy(inner->landed_ref, outer->landed_ref, sizeof(inner->landed_ref));
}

void reply_landed(struct reply *r, const char *chat_id, const char *message_id)
{
    if (r == NULL || r->landed == NULL || chat_id == NULL || message_id == NULL ||
        chat_id[0] == '\0' || message_id[0] == '\0')
        return;
    r->landed(r->landed_data, r->landed_ref, chat_id, message_id);
}

void invocation_clear(struct invocation *inv)
{
    for (size_t i = 0; i < COMMAND_MAX_OPTIONS; i++) {
        free(inv->opts[i].string);
        inv->opts[i].string = NULL;
        inv->opts[i].set = false;
    }
    invocation_image_free(inv->image);
    inv->image = NULL;
}

void invocation_image_free(struct invocation_image *img)
{
    if (img == NULL)
        return;
    free(img->data);
    free(img);
}

void invocation_wallet(const struct invocation *inv, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:%s", command_platform_name(inv->platform), inv->user_id);
}
