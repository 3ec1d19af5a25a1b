#include "tests/fake/reply_capture.h"

#include <stdlib.h>
#include <string.h>

static int reply_capture__send(struct reply *r, const struct reply_msg *msg)
{
    struct reply_capture *cap = r->data;
    cap->nmsgs++;
    if (msg->stage == REPLY_PROGRESS)
        cap->nprogress++;
    cap->last_ephemeral = msg->ephemeral;
    if (msg->text != NULL) {
        size_t old = cap->text != NULL ? strlen(cap->text) : 0;
        size_t add = strlen(msg->text);
        char *grown = realloc(cap->text, old + add + 2);
        if (grown == NULL)
            return -1;
        if (old > 0)
            grown[old++] = '\n';
        memcpy(grown + old, msg->text, add + 1);
        cap->text = grown;
    }
    cap->nbuttons = msg->nbuttons < 8 ? msg->nbuttons : 8;
    for (size_t i = 0; i < cap->nbuttons; i++)
        cap->buttons[i] = msg->buttons[i];
    if (msg->image != NULL)
        cap->image_bytes = msg->image->len;
    return 0;
}

static void reply_capture__finish(struct reply *r)
{
    struct reply_capture *cap = r->data;
    cap->finished++;
}

static const struct reply_ops reply_capture_ops = {.send = reply_capture__send,
                                                   .finish = reply_capture__finish};

void reply_capture_init(struct reply_capture *cap)
{
    memset(cap, 0, sizeof(*cap));
    cap->reply.ops = &reply_capture_ops;
    cap->reply.data = cap;
}

void reply_capture_close(struct reply_capture *cap)
{
    free(cap->text);
    cap->text = NULL;
}
