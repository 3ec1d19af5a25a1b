/* A gateway connection's stream decompressed off the loop.
 *
 * Inflating is most of what taking a gateway payload in costs (zlib-stream
 * above all), and a stream must be inflated in order, one message after
 * another. So the loop thread only copies each websocket message as it
 * comes, and a thread of the connection's own (`haibot-inflate`) inflates
 * them while the loop goes on reading, scanning, filtering and dispatching
 * the payloads it already gave. The payloads come back to the loop in the
 * order they were sent, through a uv_async; what one turn of the loop read
 * goes to the thread with one lock and at most one wake, before the loop
 * next waits.
 *
 * Memory stays bounded: the payloads waiting for the loop fill a ring of
 * GINFLATE_OUT_CAP bytes, and the thread waits while it is full (a payload
 * too large for the ring waits beside it); while GINFLATE_PEND_CAP
 * compressed bytes or more wait for the thread, the caller is asked to stop
 * reading (flow control on the socket) until the thread has taken them.
 *
 * `inline_` (benchmarks: the path as it was) inflates each message on the
 * loop at once, and delivers before ginflate_push returns. */
#ifndef HB_DISCORD_GINFLATE_H
#define HB_DISCORD_GINFLATE_H

#include "adapters/discord/zstream.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define GINFLATE_OUT_CAP (128 * 1024)
#define GINFLATE_PEND_CAP (32 * 1024)

/* One result, as discord_zstream_feed_part gave it, and the stream's flags
 * when it did. */
struct ginflated {
    int rc; /* 1: a payload; HB_EOVERFLOW: one too large, dropped; other < 0: the stream broke */
    const char *json; /* rc 1: the payload, NUL-terminated, valid during the call */
    size_t len;
    bool switched; /* the stream is of the other kind than asked (zstream.h) */
    bool text;     /* a text message came */
    enum discord_compress kind;
};

/* A result, on the loop. After one with rc < 0 other than HB_EOVERFLOW none
 * follow. */
typedef void (*ginflate_deliver_fn)(void *data, const struct ginflated *r);
/* Stop reading (pause true) or read again. */
typedef void (*ginflate_flow_fn)(void *data, bool pause);

struct ginflate;

/** A connection's decompression (inline when no thread can be started).
 *  Returns NULL without memory. */
struct ginflate *ginflate_new(uv_loop_t *loop, enum discord_compress kind, size_t max_payload,
                              bool inline_, ginflate_deliver_fn deliver, ginflate_flow_fn flow,
                              void *data);

/** One websocket message, or part of one (end: this part ends it; binary:
 *  a binary message, else text). The bytes are copied. Returns 0, or
 *  HB_ENOMEM (the stream cannot go on). */
int ginflate_push(struct ginflate *gx, const void *in, size_t len, bool binary, bool end);

/** Deliver now every payload of what was pushed (the connection ended:
 *  what it received before its end is taken in first). Waits for a batch in
 *  flight. */
void ginflate_drain(struct ginflate *gx);

/** No more deliveries; the memory goes once a batch in flight is back. May
 *  be called from the deliver callback. NULL is ignored. */
void ginflate_free(struct ginflate *gx);

#endif
