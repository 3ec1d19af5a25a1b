/* A gateway connection's stream decompressed off the loop. See ginflate.h.
 *
 * Input: the loop appends each pushed message to `in`; the worker swaps
 * `in` for its empty `work` and inflates that. Output: a ring of
 * GINFLATE_OUT_CAP bytes that the worker writes results into and the loop
 * reads them from, so a payload is copied once on its way (from the
 * decompressor into the ring) and the memory is the ring's alone. A result
 * too large for the ring goes beside it in a block of its own. The ring's
 * two ends are counters that only grow, read and written under mu; the
 * bytes between them belong to the side whose they are. */
#include "adapters/discord/ginflate.h"

#include "base/error.h"
#include "base/util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GX_PUBLISH_BYTES (32 * 1024) /* results are handed over at least this often */
#define GX_STACK_BYTES (1024 * 1024)
#define GX_ALIGN 8

/* A growable byte buffer of pushed messages. */
struct gx_buf {
    unsigned char *p;
    size_t len;
    size_t cap;
};

/* A pushed message part, followed by its bytes. */
struct gx_rec {
    uint32_t len;
    uint8_t binary;
    uint8_t end;
};

/* A result in the ring, followed (unless big) by len bytes of
 * payload and a NUL, the whole rounded up to GX_ALIGN. */
struct gx_res {
    int32_t rc;
    uint8_t switched;
    uint8_t text;
    uint8_t kind;
    uint8_t wrap; /* no result: the next one is at the ring's start */
    size_t len;
    char *big; /* the payload, when it did not fit the ring */
};

struct ginflate {
    bool inline_;
    ginflate_deliver_fn deliver;
    ginflate_flow_fn flow;
    void *data;

    /* The worker's while it runs; the loop's once it stopped (and always
     * when inline). */
    struct discord_zstream zs;
    struct gx_buf work; /* input taken from `in` */
    size_t work_at;     /* its next record */
    size_t wtail;       /* the ring's end as written, published or not */
    size_t head_seen;   /* the ring's start when last looked */
    size_t published;   /* wtail when last handed over */
    bool stream_broken; /* nothing more is inflated */
    bool held_set;      /* stopped with a result the ring had no room for */
    struct gx_res held;
    const char *held_json;
    bool direct; /* results go to the caller at once (inline, or stopped) */

    /* Shared, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the worker waits for input, or for room */
    struct gx_buf in;    /* pushed, not yet taken by the worker */
    unsigned char *ring; /* GINFLATE_OUT_CAP bytes */
    size_t head;         /* the ring's start: what the loop has taken */
    size_t tail;         /* the ring's end as handed over */
    bool waiting;        /* the worker waits on wake */
    bool tell_taken;     /* the loop stopped reading: say when `in` is taken */
    atomic_bool stop;    /* the loop wants the worker gone */

    /* The loop's. */
    struct gx_buf stage; /* pushed this turn of the loop, moved to `in` before it waits */
    size_t in_seen;      /* in's length when last looked */
    bool want_tell;      /* reading stopped: ask the worker to say when it took `in` */
    pthread_t thread;
    bool running;      /* thread was started and not joined */
    uv_async_t async;  /* the worker handed something over */
    uv_prepare_t kick; /* wakes a waiting worker before the loop next waits */
    bool kick_armed;
    int handles_open;
    bool delivering;
    bool broken; /* a stream error was delivered: nothing more is read */
    bool paused; /* the caller was asked to stop reading */
    bool freed;  /* the owner let go */
};

static int gx__reserve(struct gx_buf *b, size_t more)
{
    if (more > SIZE_MAX - b->len)
        return HB_ENOMEM;
    while (b->len + more > b->cap) {
        unsigned char *p = hb_grow(b->p, &b->cap, 4096, 1);
        if (p == NULL)
            return HB_ENOMEM;
        b->p = p;
    }
    return 0;
}

static size_t gx__align(size_t n)
{
    return (n + GX_ALIGN - 1) & ~(size_t)(GX_ALIGN - 1);
}

/* Bytes a result takes in the ring. */
static size_t gx__size(const struct gx_res *r)
{
    return gx__align(sizeof(*r) + (r->big != NULL ? 0 : r->len + 1));
}

/* The result at counter *at of the ring (moved past a wrap to the ring's
 * start), and where its payload is. */
static const struct gx_res *gx__at(const struct ginflate *gx, size_t *at, const char **json)
{
    size_t end = GINFLATE_OUT_CAP - *at % GINFLATE_OUT_CAP;
    const struct gx_res *r = (const void *)(gx->ring + *at % GINFLATE_OUT_CAP);
    if (end < sizeof(*r) || r->wrap) {
        *at += end;
        r = (const void *)gx->ring;
    }
    *json = r->big != NULL ? r->big : (const char *)(r + 1);
    return r;
}

static void gx__deliver_one(struct ginflate *gx, const struct gx_res *r, const char *json)
{
    struct ginflated out = {.rc = r->rc,
                            .json = json,
                            .len = r->len,
                            .switched = r->switched != 0,
                            .text = r->text != 0,
                            .kind = (enum discord_compress)r->kind};
    if (r->rc < 0 && r->rc != HB_EOVERFLOW) {
        gx->broken = true;
        gx->stage.len = 0;
        if (gx->paused) {
            /* Nothing more is inflated, so nothing waits for room: the
             * socket is read again (its close handshake needs that). */
            gx->paused = false;
            gx->flow(gx->data, false);
        }
    }
    gx->delivering = true;
    gx->deliver(gx->data, &out);
    gx->delivering = false;
}

/* ---- the worker ------------------------------------------------------------ */

/* Hand what was written over to the loop. Called with mu held. */
static void gx__publish_locked(struct ginflate *gx)
{
    gx->tail = gx->wtail;
    gx->head_seen = gx->head;
    gx->published = gx->wtail;
}

static void gx__publish(struct ginflate *gx)
{
    if (gx->wtail == gx->published)
        return;
    pthread_mutex_lock(&gx->mu);
    gx__publish_locked(gx);
    pthread_mutex_unlock(&gx->mu);
    uv_async_send(&gx->async);
}

/* Put one result in the ring (or, direct, hand it to the caller). Returns
 * false when the worker was stopped while waiting for room: the result is
 * held for ginflate_drain. */
static bool gx__emit(struct ginflate *gx, struct gx_res *r, const char *json)
{
    if (gx->direct) {
        gx__deliver_one(gx, r, json);
        return true;
    }
    const size_t cap = GINFLATE_OUT_CAP;
    if (r->len + 1 + sizeof(*r) > cap / 2) {
        r->big = malloc(r->len + 1);
        if (r->big == NULL) {
            r->rc = HB_ENOMEM;
            r->len = 0;
        } else {
            memcpy(r->big, json, r->len);
            r->big[r->len] = '\0';
        }
    }
    size_t need = gx__size(r);
    size_t pos = gx->wtail % cap, end = cap - pos;
    size_t want = need <= end ? need : end + need;
    if (cap - (gx->wtail - gx->head_seen) < want) {
        /* No room: hand over what there is and wait for the loop. */
        pthread_mutex_lock(&gx->mu);
        gx__publish_locked(gx);
        uv_async_send(&gx->async);
        while (cap - (gx->wtail - gx->head) < want && !atomic_load(&gx->stop)) {
            gx->waiting = true;
            pthread_cond_wait(&gx->wake, &gx->mu);
            gx->waiting = false;
        }
        gx->head_seen = gx->head;
        pthread_mutex_unlock(&gx->mu);
        if (cap - (gx->wtail - gx->head_seen) < want) {
            gx->held = *r;
            gx->held_json = r->big != NULL ? r->big : json;
            gx->held_set = true;
            return false;
        }
    }
    if (need > end) {
        /* To the ring's start; a gap too short for a header says so by
         * its size alone. */
        if (end >= sizeof(*r)) {
            struct gx_res w = {.wrap = 1};
            memcpy(gx->ring + pos, &w, sizeof(w));
        }
        gx->wtail += end;
        pos = 0;
    }
    memcpy(gx->ring + pos, r, sizeof(*r));
    if (r->big == NULL) {
        memcpy(gx->ring + pos + sizeof(*r), json, r->len);
        gx->ring[pos + sizeof(*r) + r->len] = '\0';
    }
    gx->wtail += need;
    if (gx->wtail - gx->published >= GX_PUBLISH_BYTES)
        gx__publish(gx);
    return true;
}

/* Feed one message part to the stream and emit what it completed.
 * Returns false once nothing more is to be inflated (the stream broke, or
 * the worker was stopped holding a result). */
static bool gx__feed(struct ginflate *gx, const unsigned char *src, size_t len, bool binary,
                     bool end)
{
    const char *json = NULL;
    size_t jlen = 0;
    int rc = binary ? discord_zstream_feed_part(&gx->zs, src, len, end, &json, &jlen)
                    : discord_zstream_feed_text(&gx->zs, src, len, end, &json, &jlen);
    if (rc == 0)
        return true;
    struct gx_res r = {.rc = rc,
                       .switched = (uint8_t)gx->zs.switched,
                       .text = (uint8_t)gx->zs.text,
                       .kind = (uint8_t)gx->zs.kind,
                       .len = rc == 1 ? jlen : 0};
    bool room = gx__emit(gx, &r, rc == 1 ? json : "");
    if (r.rc < 0 && r.rc != HB_EOVERFLOW) {
        gx->stream_broken = true;
        return false;
    }
    return room;
}

/* Inflate the next record of work. */
static bool gx__step(struct ginflate *gx)
{
    struct gx_rec h;
    memcpy(&h, gx->work.p + gx->work_at, sizeof(h));
    const unsigned char *src = gx->work.p + gx->work_at + sizeof(h);
    gx->work_at += sizeof(h) + h.len;
    return gx__feed(gx, src, h.len, h.binary != 0, h.end != 0);
}

static void *gx__thread(void *arg)
{
    struct ginflate *gx = arg;
    pthread_setname_np(pthread_self(), "haibot-inflate");
    pthread_mutex_lock(&gx->mu);
    while (!atomic_load(&gx->stop)) {
        if (gx->stream_broken || gx->held_set || gx->in.len == 0) {
            gx->waiting = true;
            pthread_cond_wait(&gx->wake, &gx->mu);
            gx->waiting = false;
            continue;
        }
        struct gx_buf t = gx->work;
        gx->work = gx->in;
        gx->in = t;
        gx->in.len = 0;
        gx->work_at = 0;
        bool tell = gx->tell_taken;
        gx->tell_taken = false;
        pthread_mutex_unlock(&gx->mu);
        if (tell)
            uv_async_send(&gx->async); /* the loop may read again */
        while (gx->work_at < gx->work.len && !atomic_load(&gx->stop) && gx__step(gx)) {
        }
        gx__publish(gx);
        pthread_mutex_lock(&gx->mu);
    }
    pthread_mutex_unlock(&gx->mu);
    return NULL;
}

/* ---- the loop ---------------------------------------------------------------- */

static void gx__closed(uv_handle_t *h)
{
    struct ginflate *gx = h->data;
    if (--gx->handles_open == 0)
        free(gx);
}

/* Stop the worker where it stands (between two records, or waiting); from
 * here the loop owns everything. */
static void gx__join(struct ginflate *gx)
{
    if (!gx->running)
        return;
    pthread_mutex_lock(&gx->mu);
    atomic_store(&gx->stop, true);
    pthread_cond_signal(&gx->wake);
    pthread_mutex_unlock(&gx->mu);
    pthread_join(gx->thread, NULL);
    gx->running = false;
    gx->tail = gx->wtail;
}

static void gx__destroy(struct ginflate *gx)
{
    gx__join(gx);
    for (size_t at = gx->head; gx->ring != NULL && at < gx->tail;) {
        const char *json;
        const struct gx_res *r = gx__at(gx, &at, &json);
        at += gx__size(r);
        free(r->big);
    }
    if (gx->held_set)
        free(gx->held.big);
    discord_zstream_free(&gx->zs);
    free(gx->work.p);
    free(gx->in.p);
    free(gx->stage.p);
    free(gx->ring);
    if (gx->inline_) {
        free(gx);
        return;
    }
    pthread_mutex_destroy(&gx->mu);
    pthread_cond_destroy(&gx->wake);
    if (gx->handles_open == 0) {
        free(gx);
        return;
    }
    uv_close((uv_handle_t *)&gx->async, gx__closed);
    uv_close((uv_handle_t *)&gx->kick, gx__closed);
}

/* The ring up to at was taken: its room goes back to the worker. */
static void gx__give_back(struct ginflate *gx, size_t at)
{
    if (!gx->running) {
        gx->head = at;
        return;
    }
    pthread_mutex_lock(&gx->mu);
    gx->head = at;
    if (gx->waiting)
        pthread_cond_signal(&gx->wake);
    pthread_mutex_unlock(&gx->mu);
}

/* Hand the ring's results up to end to the caller, in order, giving room
 * back to the worker as it goes. Returns false once the caller let go (gx
 * is gone then). */
static bool gx__deliver(struct ginflate *gx, size_t end)
{
    size_t at = gx->head;
    while (at < end && !gx->freed) {
        const char *json;
        const struct gx_res *r = gx__at(gx, &at, &json);
        struct gx_res copy = *r;
        at += gx__size(r);
        gx__deliver_one(gx, &copy, json);
        free(copy.big);
        if (at - gx->head >= GX_PUBLISH_BYTES)
            gx__give_back(gx, at);
    }
    gx__give_back(gx, at);
    if (gx->freed) {
        gx__destroy(gx);
        return false;
    }
    return true;
}

static void gx__async(uv_async_t *a)
{
    struct ginflate *gx = a->data;
    if (gx->freed || gx->delivering || !gx->running)
        return;
    pthread_mutex_lock(&gx->mu);
    size_t end = gx->tail;
    gx->in_seen = gx->in.len;
    bool resume = gx->paused && gx->in_seen + gx->stage.len < GINFLATE_PEND_CAP;
    if (gx->paused && !resume)
        gx->tell_taken = true; /* still too much: ask again */
    pthread_mutex_unlock(&gx->mu);
    if (resume) {
        gx->paused = false;
        gx->flow(gx->data, false);
    }
    gx__deliver(gx, end);
}

/* Append src's bytes to dst (a swap when dst is empty). Returns 0 or
 * HB_ENOMEM (src is kept then). */
static int gx__move(struct gx_buf *dst, struct gx_buf *src)
{
    if (dst->len == 0) {
        struct gx_buf t = *dst;
        *dst = *src;
        *src = t;
    } else if (src->len > 0) {
        if (gx__reserve(dst, src->len) < 0)
            return HB_ENOMEM;
        memcpy(dst->p + dst->len, src->p, src->len);
        dst->len += src->len;
    }
    src->len = 0;
    return 0;
}

/* Before the loop waits: what this turn pushed goes to the worker, with
 * one lock and at most one wake for all of it. */
static void gx__kick(uv_prepare_t *c)
{
    struct ginflate *gx = c->data;
    pthread_mutex_lock(&gx->mu);
    int rc = gx__move(&gx->in, &gx->stage);
    gx->in_seen = gx->in.len;
    if (gx->want_tell && rc == 0) {
        gx->tell_taken = true;
        gx->want_tell = false;
    }
    if (gx->waiting)
        pthread_cond_signal(&gx->wake);
    pthread_mutex_unlock(&gx->mu);
    if (rc == 0) {
        uv_prepare_stop(c);
        gx->kick_armed = false;
    }
}

struct ginflate *ginflate_new(uv_loop_t *loop, enum discord_compress kind, size_t max_payload,
                              bool inline_, ginflate_deliver_fn deliver, ginflate_flow_fn flow,
                              void *data)
{
    struct ginflate *gx = calloc(1, sizeof(*gx));
    if (gx == NULL)
        return NULL;
    if (discord_zstream_init(&gx->zs, kind, max_payload) < 0) {
        free(gx);
        return NULL;
    }
    gx->inline_ = inline_;
    gx->direct = inline_;
    gx->deliver = deliver;
    gx->flow = flow;
    gx->data = data;
    if (inline_)
        return gx;
    pthread_mutex_init(&gx->mu, NULL);
    pthread_cond_init(&gx->wake, NULL);
    atomic_init(&gx->stop, false);
    gx->ring = malloc(GINFLATE_OUT_CAP);
    if (gx->ring != NULL && uv_async_init(loop, &gx->async, gx__async) == 0) {
        uv_prepare_init(loop, &gx->kick);
        gx->handles_open = 2;
        gx->async.data = gx;
        gx->kick.data = gx;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, GX_STACK_BYTES);
        gx->running = pthread_create(&gx->thread, &attr, gx__thread, gx) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!gx->running) {
        /* No thread to be had: inflated on the loop, then. */
        gx__destroy(gx);
        return ginflate_new(loop, kind, max_payload, true, deliver, flow, data);
    }
    return gx;
}

int ginflate_push(struct ginflate *gx, const void *in, size_t len, bool binary, bool end)
{
    if (gx->broken || gx->freed)
        return 0;
    if (gx->inline_) {
        gx__feed(gx, in, len, binary, end);
        if (gx->freed)
            gx__destroy(gx);
        return 0;
    }
    if (len > UINT32_MAX)
        return HB_ENOMEM;
    struct gx_rec h = {.len = (uint32_t)len, .binary = binary, .end = end};
    if (gx__reserve(&gx->stage, sizeof(h) + len) < 0)
        return HB_ENOMEM;
    memcpy(gx->stage.p + gx->stage.len, &h, sizeof(h));
    memcpy(gx->stage.p + gx->stage.len + sizeof(h), in, len);
    gx->stage.len += sizeof(h) + len;
    if (!gx->kick_armed) {
        gx->kick_armed = true;
        uv_prepare_start(&gx->kick, gx__kick);
    }
    if (!gx->paused && gx->in_seen + gx->stage.len >= GINFLATE_PEND_CAP) {
        gx->paused = true;
        gx->want_tell = true;
        gx->flow(gx->data, true);
    }
    return 0;
}

void ginflate_drain(struct ginflate *gx)
{
    if (gx == NULL || gx->inline_ || gx->freed || gx->delivering || !gx->running)
        return;
    gx__join(gx);
    if (!gx__deliver(gx, gx->tail) || gx->broken)
        return; /* nothing follows a broken stream's error */
    gx->direct = true;
    if (gx->held_set) {
        gx->held_set = false;
        gx__deliver_one(gx, &gx->held, gx->held_json);
        free(gx->held.big);
        if (gx->freed) {
            gx__destroy(gx);
            return;
        }
    }
    /* The rest of what was pushed, inflated here. */
    struct gx_buf *next[2] = {&gx->in, &gx->stage};
    for (int i = 0;; i++) {
        while (!gx->stream_broken && gx->work_at < gx->work.len && !gx->freed && gx__step(gx)) {
        }
        if (i == 2 || gx->stream_broken || gx->freed)
            break;
        struct gx_buf t = gx->work;
        gx->work = *next[i];
        *next[i] = t;
        next[i]->len = 0;
        gx->work_at = 0;
    }
    if (gx->freed)
        gx__destroy(gx);
}

void ginflate_free(struct ginflate *gx)
{
    if (gx == NULL || gx->freed)
        return;
    gx->freed = true;
    if (!gx->delivering)
        gx__destroy(gx);
}
