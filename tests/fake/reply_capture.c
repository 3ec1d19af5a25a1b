#include "tests/fake/reply_capture.h"

#include <stdlib.h>
#include <string.h>

/* Append text to *buf, joined with "\n". */
static int reply_capture__join(char **buf, const char *text)
{
    size_t old = *buf != NULL ? strlen(*buf) : 0;
    size_t add = strlen(text);
    char *grown = realloc(*buf, old + add + 2);
    if (grown == NULL)
        return -1;
    if (old > 0)
        grown[old++] = '\n';
    memcpy(grown + old, text, add + 1);
    *buf = grown;
    return 0;
}

static int reply_capture__send(struct reply *r, const struct reply_msg *msg)
{
    struct reply_capture *cap = r->data;
    cap->nmsgs++;
    if (msg->stage == REPLY_PROGRESS)
        cap->nprogress++;
    cap->last_ephemeral = msg->ephemeral;
    cap->last_personal = msg->personal;
    if (msg->personal) {
        cap->npersonal++;
        if (msg->aside)
            cap->nasides++;
    }
    if (msg->text != NULL) {
        if (reply_capture__join(&cap->text, msg->text) < 0)
            return -1;
        char **which = msg->personal    ? &cap->personal_text
                       : msg->ephemeral ? NULL
                                        : &cap->public_text;
        if (which != NULL && reply_capture__join(which, msg->text) < 0)
            return -1;
        if (!msg->personal && reply_capture__join(&cap->shown_text, msg->text) < 0)
            return -1;
    }
    if (msg->text != NULL && msg->markdown_len > 0) {
        free(cap->last_markdown);
        cap->last_markdown = strndup(msg->text, msg->markdown_len);
    }
    if (msg->aside)
        return 0; /* a by-the-way note: the answer's buttons and image stay the last seen */
    cap->nbuttons = msg->nbuttons < 8 ? msg->nbuttons : 8;
    for (size_t i = 0; i < cap->nbuttons; i++)
        cap->buttons[i] = msg->buttons[i];
    if (msg->image != NULL) {
        cap->image_bytes = msg->image->len;
        size_t head =
            msg->image->len < sizeof(cap->image_head) ? msg->image->len : sizeof(cap->image_head);
        memcpy(cap->image_head, msg->image->data, head);
    }
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
    free(cap->public_text);
    free(cap->personal_text);
    free(cap->shown_text);
    free(cap->last_markdown);
    cap->last_markdown = NULL;
    cap->text = NULL;
    cap->public_text = NULL;
    cap->personal_text = NULL;
    cap->shown_text = NULL;
}
