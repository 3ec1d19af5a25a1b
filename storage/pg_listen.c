/* store_listen on PostgreSQL: what other daemons change, heard at their
 * commit instead of at the next heartbeat's read.
 *
 * Triggers on what every daemon keeps in memory (API keys, wallet links,
 * chat settings, the feature, revenue and contest rows of the state
 * table; schema version 6, pg.c) send NOTIFY hb_changed with what changed; the server
 * delivers it when the writing transaction commits, once per transaction
 * and name. This file holds the other end: a connection of its own that
 * only LISTENs, driven by the loop through a uv_poll on its socket. It is
 * made without blocking (PQconnectStart and PQconnectPoll), so a server
 * that is down costs the loop nothing (libpq still resolves a host name
 * in PQconnectStart: hostaddr in the connection string spares the loop
 * even that lookup); a lost connection is made again with backoff, and
 * the caller is told "*" then, since what changed meanwhile was not
 * heard. */
#include "storage/pg_internal.h"

#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define PG_LISTEN_CHANNEL "hb_changed"
#define PG_LISTEN_BACKOFF_MIN_MS 100
#define PG_LISTEN_BACKOFF_MAX_MS 5000

enum pg_listen_state {
    PG_LISTEN_CONNECTING, /* PQconnectPoll until CONNECTION_OK */
    PG_LISTEN_LISTENING,  /* LISTEN sent; notifications read as they come */
    PG_LISTEN_WAITING,    /* no connection: the retry timer runs */
};

struct store_listener {
    uv_loop_t *loop;
    char *url; /* a secret; never logged */
    PGconn *conn;
    uv_poll_t *poll; /* on the socket of conn; made again when that changes */
    int poll_fd;
    uv_timer_t retry;
    uint64_t backoff_ms;
    enum pg_listen_state state;
    bool heard_once; /* a connection listened before: a new one says "*" */
    bool closing;
    void (*on_change)(const char *what, void *data);
    void *data;
};

static void pg_listen__connect(struct store_listener *l);

static void pg_listen__poll_free(uv_handle_t *h)
{
    free(h);
}

/* Stop watching the socket; the handle closes on the loop. Before
 * PQfinish: the descriptor's number may be the next socket's. */
static void pg_listen__unwatch(struct store_listener *l)
{
    if (l->poll != NULL) {
        uv_close((uv_handle_t *)l->poll, pg_listen__poll_free);
        l->poll = NULL;
    }
}

static void pg_listen__drop(struct store_listener *l)
{
    pg_listen__unwatch(l);
    if (l->conn != NULL) {
        PQfinish(l->conn);
        l->conn = NULL;
    }
}

static void pg_listen__retry_cb(uv_timer_t *t)
{
    pg_listen__connect(t->data);
}

/* The connection failed or was lost: drop it and try again after the
 * backoff, which doubles up to its ceiling. */
static void pg_listen__lost(struct store_listener *l, const char *what)
{
    if (l->conn != NULL) {
        char buf[256];
        log_warn("store.listen_lost", "backend=postgres during=%s err=%s retry_ms=%" PRIu64, what,
                 pg__msg(PQerrorMessage(l->conn), buf, sizeof(buf)),
                 l->backoff_ms == 0 ? (uint64_t)PG_LISTEN_BACKOFF_MIN_MS : l->backoff_ms * 2);
    }
    pg_listen__drop(l);
    l->backoff_ms = l->backoff_ms == 0 ? PG_LISTEN_BACKOFF_MIN_MS : l->backoff_ms * 2;
    if (l->backoff_ms > PG_LISTEN_BACKOFF_MAX_MS)
        l->backoff_ms = PG_LISTEN_BACKOFF_MAX_MS;
    l->state = PG_LISTEN_WAITING;
    uv_timer_start(&l->retry, pg_listen__retry_cb, l->backoff_ms, 0);
}

static void pg_listen__poll_cb(uv_poll_t *p, int status, int events);

/* Watch the connection's socket for `events`; libpq may change the socket
 * while it connects, and then the watch is made again on the new one. */
static int pg_listen__watch(struct store_listener *l, int events)
{
    int fd = PQsocket(l->conn);
    if (fd < 0)
        return HB_EIO;
    if (l->poll != NULL && l->poll_fd != fd)
        pg_listen__unwatch(l);
    if (l->poll == NULL) {
        l->poll = malloc(sizeof(*l->poll));
        if (l->poll == NULL)
            return HB_ENOMEM;
        if (uv_poll_init(l->loop, l->poll, fd) < 0) {
            free(l->poll);
            l->poll = NULL;
            return HB_EIO;
        }
        l->poll->data = l;
        l->poll_fd = fd;
        uv_unref((uv_handle_t *)l->poll); /* holds no loop open, as the timer */
    }
    return uv_poll_start(l->poll, events, pg_listen__poll_cb) < 0 ? HB_EIO : 0;
}

/* One step of the connection being made, as PQconnectPoll asks. */
static void pg_listen__connecting(struct store_listener *l)
{
    PostgresPollingStatusType st = PQconnectPoll(l->conn);
    int rc = 0;
    if (st == PGRES_POLLING_READING) {
        rc = pg_listen__watch(l, UV_READABLE);
    } else if (st == PGRES_POLLING_WRITING) {
        rc = pg_listen__watch(l, UV_WRITABLE);
    } else if (st == PGRES_POLLING_OK) {
        /* LISTEN is a few bytes: sent at once on a fresh connection. */
        if (PQsetnonblocking(l->conn, 1) != 0 ||
            PQsendQuery(l->conn, "LISTEN " PG_LISTEN_CHANNEL) != 1 || PQflush(l->conn) != 0) {
            pg_listen__lost(l, "listen");
            return;
        }
        l->state = PG_LISTEN_LISTENING;
        l->backoff_ms = 0;
        rc = pg_listen__watch(l, UV_READABLE);
        if (rc == 0 && l->heard_once) {
            log_info("store.listen_resumed", "backend=postgres");
            l->on_change("*", l->data);
        }
        l->heard_once = true;
    } else {
        pg_listen__lost(l, "connect");
        return;
    }
    if (rc < 0)
        pg_listen__lost(l, "watch");
}

/* What the server sent: the LISTEN's answer, then notifications. */
static void pg_listen__readable(struct store_listener *l)
{
    if (PQconsumeInput(l->conn) != 1) {
        pg_listen__lost(l, "read");
        return;
    }
    while (PQisBusy(l->conn) == 0) {
        PGresult *r = PQgetResult(l->conn);
        if (r == NULL)
            break;
        bool failed = PQresultStatus(r) == PGRES_FATAL_ERROR;
        PQclear(r);
        if (failed) {
            pg_listen__lost(l, "listen");
            return;
        }
    }
    PGnotify *n;
    while (!l->closing && l->conn != NULL && (n = PQnotifies(l->conn)) != NULL) {
        l->on_change(n->extra != NULL ? n->extra : "*", l->data);
        PQfreemem(n);
    }
    if (!l->closing && l->conn != NULL && PQstatus(l->conn) != CONNECTION_OK)
        pg_listen__lost(l, "read");
}

static void pg_listen__poll_cb(uv_poll_t *p, int status, int events)
{
    (void)events;
    struct store_listener *l = p->data;
    if (l->closing || l->poll != p)
        return;
    if (status < 0) {
        pg_listen__lost(l, "poll");
        return;
    }
    if (l->state == PG_LISTEN_CONNECTING)
        pg_listen__connecting(l);
    else if (l->state == PG_LISTEN_LISTENING)
        pg_listen__readable(l);
}

static void pg_listen__connect(struct store_listener *l)
{
    if (l->closing)
        return;
    l->state = PG_LISTEN_CONNECTING;
    l->conn = pg__conn_start(l->url, true);
    if (l->conn == NULL || PQstatus(l->conn) == CONNECTION_BAD) {
        pg_listen__lost(l, "connect");
        return;
    }
    /* The first step: libpq has the socket and waits to write. */
    if (pg_listen__watch(l, UV_WRITABLE) < 0)
        pg_listen__lost(l, "watch");
}

struct store_listener *pg__listen(struct store *base, uv_loop_t *loop,
                                  void (*on_change)(const char *what, void *data), void *data,
                                  int *rc)
{
    struct pg_store *s = (struct pg_store *)base;
    int err = 0;
    struct store_listener *l = calloc(1, sizeof(*l));
    if (l == NULL || (l->url = strdup(s->url)) == NULL) {
        err = HB_ENOMEM;
        goto fail;
    }
    if (uv_timer_init(loop, &l->retry) < 0) {
        err = HB_EIO;
        goto fail;
    }
    l->retry.data = l;
    uv_unref((uv_handle_t *)&l->retry);
    l->loop = loop;
    l->on_change = on_change;
    l->data = data;
    pg_listen__connect(l);
    if (rc != NULL)
        *rc = 0;
    return l;
fail:
    if (l != NULL)
        free(l->url);
    free(l);
    if (rc != NULL)
        *rc = err;
    return NULL;
}

static void pg_listen__timer_closed(uv_handle_t *h)
{
    struct store_listener *l = h->data;
    free(l->url);
    free(l);
}

void store_listener_close(struct store_listener *l)
{
    if (l == NULL || l->closing)
        return;
    l->closing = true;
    pg_listen__drop(l);
    uv_close((uv_handle_t *)&l->retry, pg_listen__timer_closed);
}
