/* What the fake Discord gateway's files share: its structs and the helpers
 * discord_gateway.c and discord_gateway_wire.c call in each other. Private
 * to tests/fake/discord_gateway*.c; tests/fake/discord_gateway.h is the API. */
#ifndef HB_TEST_FAKE_DISCORD_GATEWAY_INTERNAL_H
#define HB_TEST_FAKE_DISCORD_GATEWAY_INTERNAL_H

#include "tests/fake/discord_gateway.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <zlib.h>
#include <zstd.h>

enum fake_kind {
    FK_TEXT,     /* a whole payload (sent as is, through zlib) */
    FK_DISPATCH, /* a new event: takes the next seq, kept for resumes */
    FK_MISSED,   /* as FK_DISPATCH, but not sent */
    FK_BURST,
    FK_FLOOD,
    FK_CORRUPT,
    FK_KICK,
    FK_INVALID,   /* op 9; code says resumable */
    FK_DROP_ACKS, /* commands only: applied to the connection at once */
    FK_STOP,
};

struct fake_item {
    struct fake_item *next;
    enum fake_kind kind;
    char *type;
    char *text;     /* FK_TEXT: the payload; FK_DISPATCH/MISSED: the d */
    size_t count;   /* FK_BURST/FLOOD: events left */
    size_t d_bytes; /* FK_BURST/FLOOD */
    int code;       /* FK_KICK; FK_DROP_ACKS: on/off */
};

struct fake_list {
    struct fake_item *head;
    struct fake_item *tail;
};

/* One logged event, for replays. Generated events keep only their size. */
struct fake_event {
    int64_t seq;
    char *type;
    char *d; /* NULL: generated from seq and d_bytes */
    size_t d_bytes;
};

/* A precompressed cycle of payloads (flood), each already a whole
 * websocket frame, back to back: many go out in one write, as a busy
 * gateway's do, so the fake's own cost per frame stays out of the way. */
struct fake_cycle {
    unsigned char *buf; /* LWS_PRE bytes, then the frames */
    size_t *off;        /* frame i starts at buf + off[i] */
    size_t *len;        /* header and payload */
    size_t n;
};

struct fake_conn {
    struct fake_gateway *f;
    struct lws *wsi;
    z_stream z;
    bool z_ready;
    bool header_sent; /* the two zlib header bytes go before the first payload */
    ZSTD_CCtx *zc;    /* compress=zstd-stream asked for: the connection's stream */
    bool zc_open;     /* a zstd frame has begun and not ended */
    bool zc_fresh;    /* the next payload starts a new frame */
    bool text;        /* FAKE_SEND_TEXT: payloads go as text, uncompressed */
    bool drop_acks;
    bool closing;
    struct fake_list items;
    char *rx; /* a text message being assembled */
    size_t rx_len;
    struct fake_cycle cycle; /* while a flood runs */
    size_t cycle_at;
};

struct fake_gateway {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    bool threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool started;
    bool start_failed;
    struct lws_context *ctx;
    uv_async_t async;
    bool closed;
    int port;
    char url[64];
    struct fake_gateway_options opt;

    struct fake_list cmds;    /* from any thread, under mu */
    struct fake_list pending; /* waiting for a connection */
    struct fake_conn *current;

    /* the session */
    unsigned session_no;
    bool session_valid;
    struct fake_event *log;
    size_t nlog;
    size_t caplog;

    struct fake_gateway_stats st; /* under mu */

    unsigned char *zbuf; /* compression output */
    size_t zcap;
    char *gen; /* generated payload text */
    size_t gencap;
};

/* ---- discord_gateway.c ---- */

/* Count what the client did, for the test's stats. */
void fake__seen(struct fake_gateway *f, enum fake_gateway_seen what);
/* strdup that ends the test process when memory runs out. */
char *fake__strdup(const char *s);
void fake__item_free(struct fake_item *it);
void fake__list_push(struct fake_list *l, struct fake_item *it, bool front);
struct fake_item *fake__list_pop(struct fake_list *l);
/* A new item of kind with copies of type and text (either may be NULL). */
struct fake_item *fake__item(enum fake_kind kind, const char *type, const char *text);

/* ---- discord_gateway_wire.c ---- */

/* Forget the session's logged events. */
void fake__log_clear(struct fake_gateway *f);
void fake__cycle_free(struct fake_cycle *cy);
/* Write what the connection has queued until the socket is full. Returns -1
 * to close the connection. */
int fake__writable(struct fake_conn *c);
void fake__queue(struct fake_conn *c, struct fake_item *it, bool front);
void fake__queue_text(struct fake_conn *c, const char *text, bool front);
/* One complete text message from the client. */
void fake__client_payload(struct fake_conn *c, const char *text, size_t len);

#endif
