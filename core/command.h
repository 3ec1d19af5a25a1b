/* The neutral command path, shared by every adapter.
 *
 * An adapter turns a platform event (a Discord interaction, a Telegram
 * update, a console line) into a struct invocation: who, where, which
 * command, typed options, a stable event id, and a reply handle. The router
 * validates the options against the command table (core/commands.h) and runs
 * the handler. Handlers answer through the reply handle with neutral
 * messages (text, an image, buttons, progress, ephemeral notes, personal
 * answers) that each adapter renders for its platform.
 *
 * Nothing here knows a Discord or Telegram type. */
#ifndef HB_COMMAND_H
#define HB_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COMMAND_MAX_OPTIONS 8
#define COMMAND_ID_MAX 96 /* user, scope, channel ids: "discord:1234..." fits */
#define COMMAND_EVENT_ID_MAX 128
#define COMMAND_BUTTON_REF_MAX 64 /* Telegram allows 64 bytes of callback data */
#define COMMAND_ROLES_MAX 250     /* a Discord guild has at most 250 roles */

enum command_platform {
    COMMAND_PLATFORM_CONSOLE = 0,
    COMMAND_PLATFORM_DISCORD = 1,
    COMMAND_PLATFORM_TELEGRAM = 2,
};

/** "console", "discord" or "telegram". */
const char *command_platform_name(enum command_platform p);

enum command_scope {
    COMMAND_SCOPE_DM = 0,    /* a direct conversation with the bot (console too) */
    COMMAND_SCOPE_GROUP = 1, /* a Discord guild or a Telegram group */
};

enum command_option_type {
    COMMAND_OPT_STRING = 0,
    COMMAND_OPT_INTEGER = 1,
    COMMAND_OPT_BOOLEAN = 2,
    COMMAND_OPT_USER = 3, /* a member of the same platform: its platform user id */
};

/** A typed option value after validation. Strings are owned by the
 *  invocation that holds them. */
struct command_value {
    bool set;
    enum command_option_type type;
    int64_t integer; /* INTEGER; BOOLEAN as 0/1 */
    char *string;    /* STRING and USER; NULL otherwise */
};

/* ---- Replies ---------------------------------------------------------- */

enum reply_stage {
    REPLY_PROGRESS = 0, /* an update that a later message replaces (queued, partial text) */
    REPLY_FINAL = 1,    /* the answer; more finals may follow (a long text split) */
};

struct reply_image {
    const unsigned char *data; /* borrowed for the duration of the send call */
    size_t len;
    const char *mime;     /* "image/png" */
    const char *filename; /* "image.png" */
};

struct reply_button {
    const char *label;                    /* what the member sees */
    char ref[COMMAND_BUTTON_REF_MAX + 1]; /* opaque reference the handler checks */
};

/** A neutral reply message; everything is borrowed for the duration of
 *  reply_send(): adapters copy what they keep. */
struct reply_msg {
    enum reply_stage stage;
    bool ephemeral;   /* a note for the asker: hidden from others where the platform can,
                         shown in place where it cannot */
    bool personal;    /* the member's own data (balances, history): never shown where others
                         read it. Ephemeral on Discord; from a Telegram group it goes to the
                         member's private chat and the group hears only where it went */
    bool aside;       /* with personal: worth showing only in place; where the platform cannot
                         hide it there (a Telegram group, a Discord channel message) it is
                         left out rather than sent elsewhere */
    const char *text; /* may be NULL when an image is sent */
    const struct reply_image *image;    /* optional */
    const struct reply_button *buttons; /* optional, nbuttons of them */
    size_t nbuttons;
    /* The first markdown_len bytes of text are model output in Markdown,
     * which an adapter may render; the rest is the bot's own plain text. */
    size_t markdown_len;
    bool secret; /* shown once (a new API key, a link code): never written to durable storage (an
                    adapter's outbox), so a crash may lose it rather than keep it */
};

struct reply;

/** What an adapter implements for its reply handles. */
struct reply_ops {
    /** Deliver a message (render, pace, split as the platform needs).
     *  Returns 0 or a negative error; the caller may ignore errors. */
    int (*send)(struct reply *r, const struct reply_msg *msg);
    /** The handler is done with the handle; the adapter frees it. */
    void (*finish)(struct reply *r);
};

#define REPLY_LANDED_REF_MAX 320

/** A reply handle. Adapters embed it in their own per-event struct. */
struct reply {
    const struct reply_ops *ops;
    void *data; /* the adapter's */
    /* Where an answer landed: a handler that wants to know (a conversation
     * continued by replies to the bot's answer) sets landed, landed_data
     * (which must outlive the handle: struct core does) and landed_ref;
     * an adapter that learns a sent message's id calls reply_landed() for
     * each message it sends or edits after that. All zero: nobody asks. */
    void (*landed)(void *data, const char *ref, const char *chat_id, const char *message_id);
    void *landed_data;
    char landed_ref[REPLY_LANDED_REF_MAX];
};

/** Send one message through a reply handle. */
int reply_send(struct reply *r, const struct reply_msg *msg);

/** Convenience: send plain text (stage FINAL unless progress is true). */
int reply_text(struct reply *r, bool ephemeral, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Convenience: send a personal answer (stage FINAL; see reply_msg.personal). */
int reply_personal(struct reply *r, const char *text);

/** Convenience: a personal answer that carries a secret (a new key, a link
 *  code): also marked reply_msg.secret, so no adapter keeps it. */
int reply_secret(struct reply *r, const char *text);

/** Release the handle: the adapter may free it. Called exactly once. */
void reply_finish(struct reply *r);

/** An adapter sent (or edited) message_id in chat_id for r: tell the
 *  handler that asked (struct reply.landed); nothing when none did. */
void reply_landed(struct reply *r, const char *chat_id, const char *message_id);

/** A handle that wraps another (the router's) passes on who asks where the
 *  answer lands; call it before forwarding a send to inner. */
void reply_landed_forward(const struct reply *outer, struct reply *inner);

/* ---- Invocations ------------------------------------------------------ */

struct command_spec;

/** An image a member attached to a chat turn (a Discord attachment, a
 *  Telegram photo), fetched by the adapter within [limits] image_max_bytes
 *  and of a kind core/attach.h recognised by its bytes. */
struct invocation_image {
    unsigned char *data; /* heap, owned */
    size_t len;
    char mime[32]; /* "image/png", "image/jpeg", "image/webp" or "image/gif" */
};

/** One command call, neutral. The adapter fills the identity fields, the
 *  command name and either the typed options (Discord) or the raw argument
 *  text (console, Telegram) that command_args_parse() turns into options. */
struct invocation {
    enum command_platform platform;
    char user_id[COMMAND_ID_MAX];   /* platform user id, without the platform prefix */
    char user_name[COMMAND_ID_MAX]; /* display name, for replies */
    enum command_scope scope;
    char scope_id[COMMAND_ID_MAX]; /* guild id / group chat id; empty in a DM */
    char channel_id[COMMAND_ID_MAX];
    char parent_channel_id[COMMAND_ID_MAX]; /* a Discord thread's channel (channel_id is the
                                               thread); "" outside a thread */
    char scope_name[COMMAND_ID_MAX]; /* the group's title where the platform says it; may be "" */
    char event_id[COMMAND_EVENT_ID_MAX]; /* stable id of the causing event */
    bool admin;                          /* the adapter's verdict on admin rights */
    uint64_t roles[COMMAND_ROLES_MAX];   /* the member's role ids in this group (Discord), for
                                            [access]; nroles of them */
    size_t nroles;
    char name[32];                               /* command name without the slash */
    char button_ref[COMMAND_BUTTON_REF_MAX + 1]; /* a button press: the pressed button's
                                                    ref (see core/button.h); else "" */
    char target_id[COMMAND_ID_MAX];              /* the member whose message this command replies to
                                                    (their platform user id), for a member option the
                                                    text does not name; "" when none */
    char target_name[COMMAND_ID_MAX]; /* how replies name that member ("@alice"); may be "" */
    char reply_to_id[COMMAND_ID_MAX]; /* the message (in channel_id) this one replies to: a
                                         reply to the bot's answer continues its conversation;
                                         "" when none */
    char thread_id[COMMAND_ID_MAX];   /* a Telegram forum topic within channel_id, "" none (a
                                         Discord thread is a channel of its own) */
    const struct command_spec *spec;  /* set by the router */
    struct command_value opts[COMMAND_MAX_OPTIONS]; /* in the spec's option order */
    struct reply *reply;                            /* where answers go */
    struct invocation_image *image; /* an attached image (owned; invocation_clear frees it;
                                       whoever takes it sets this NULL); NULL: none */
};

/** Free the option strings and the image an invocation owns (not the reply
 *  handle). */
void invocation_clear(struct invocation *inv);

/** Free an attached image (NULL is fine). */
void invocation_image_free(struct invocation_image *img);

/** The wallet account id of the invoking member: "<platform>:<user_id>". */
void invocation_wallet(const struct invocation *inv, char *buf, size_t cap);

#endif
