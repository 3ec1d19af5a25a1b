/* A reply handle for tests: records every message sent through it. */
#ifndef HB_TEST_REPLY_CAPTURE_H
#define HB_TEST_REPLY_CAPTURE_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>

struct reply_capture {
    struct reply reply;
    char *text; /* every text sent, joined with "\n" (heap) */
    size_t nmsgs;
    size_t nprogress;
    bool last_ephemeral;
    bool last_personal;
    char *public_text;   /* texts of the messages others may read (neither ephemeral nor
                            personal), joined with "\n" (heap) */
    char *personal_text; /* texts of the personal messages, joined likewise (heap) */
    char *shown_text;    /* texts of the messages that are not personal, joined likewise (heap):
                            what a Telegram group reads, where an ephemeral note is shown in
                            place for everyone */
    size_t npersonal;
    size_t nasides;  /* personal messages marked aside */
    size_t nbuttons; /* buttons on the last message that is not an aside */
    struct reply_button buttons[8];
    size_t image_bytes;           /* size of the last image */
    unsigned char image_head[32]; /* its first bytes (a PNG's signature and IHDR) */
    char *last_markdown; /* the model-Markdown part of the last message that had one (heap) */
    int finished;        /* how many times finish was called */
};

/** Prepare a capture; its reply handle is &cap->reply. */
void reply_capture_init(struct reply_capture *cap);
/** Free what it recorded. */
void reply_capture_close(struct reply_capture *cap);

#endif
