/* A PostgreSQL relay that can lose a COMMIT's answer (tests/fake/pg_proxy.h). */
#include "tests/fake/pg_proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define PG_PROXY_PAIRS 32

struct pg_pair {
    int c, s;    /* the client's connection, the server's */
    bool marked; /* the marker went by on this connection */
};

struct pg_proxy {
    pthread_t thread;
    int lfd;
    int wake[2];
    char *dir;
    char upstream[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char port[8];
    pthread_mutex_t mu; /* guards marker, armed, lost, refuse_ms, refuse_until */
    char marker[128];
    bool armed;
    unsigned lost;
    unsigned refuse_ms;    /* pg_proxy_refuse_after_loss */
    uint64_t refuse_until; /* monotonic ms: new connections are refused until then */
    struct pg_pair pairs[PG_PROXY_PAIRS];
    size_t n;
};

/* url's host (a socket directory) and port. False when it does not parse
 * or they do not fit. */
static bool pg_proxy_server(const char *url, char *host, size_t host_cap, char *port,
                            size_t port_cap)
{
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (opts == NULL)
        return false;
    snprintf(port, port_cap, "5432");
    host[0] = '\0';
    bool ok = true;
    for (PQconninfoOption *o = opts; ok && o->keyword != NULL; o++) {
        bool is_host = strcmp(o->keyword, "host") == 0;
        if (o->val == NULL || (!is_host && strcmp(o->keyword, "port") != 0))
            continue;
        ok = snprintf(is_host ? host : port, is_host ? host_cap : port_cap, "%s", o->val) <
             (int)(is_host ? host_cap : port_cap);
    }
    PQconninfoFree(opts);
    return ok && host[0] == '/';
}

static int pg_proxy_unix(const char *path, bool listen_on)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(a.sun_path))
        return -1;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int rc = listen_on ? bind(fd, (struct sockaddr *)&a, sizeof(a))
                       : connect(fd, (struct sockaddr *)&a, sizeof(a));
    if (rc == 0 && listen_on)
        rc = listen(fd, 16);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool pg_proxy_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

static uint64_t pg_proxy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pg_proxy_drop(struct pg_proxy *p, size_t i)
{
    close(p->pairs[i].c);
    close(p->pairs[i].s);
    p->pairs[i] = p->pairs[--p->n];
}

/* What the client sent: passed on, unless it is the COMMIT whose answer
 * is to be lost. False: the pair is gone. */
static bool pg_proxy_from_client(struct pg_proxy *p, struct pg_pair *pair, const char *buf,
                                 size_t len)
{
    static const char commit[] = "COMMIT"; /* with its NUL: a statement's text */
    bool lose = false;
    pthread_mutex_lock(&p->mu);
    if (p->armed) {
        const char *from = buf;
        if (!pair->marked) {
            const char *m = memmem(buf, len, p->marker, strlen(p->marker));
            pair->marked = m != NULL;
            from = m;
        }
        if (pair->marked && memmem(from, len - (size_t)(from - buf), commit, sizeof(commit)))
            lose = true;
        if (lose) {
            p->armed = false;
            p->lost++;
            if (p->refuse_ms > 0)
                p->refuse_until = pg_proxy_now_ms() + p->refuse_ms;
            p->refuse_ms = 0;
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (!pg_proxy_write(pair->s, buf, len))
        return false;
    /* The server has the COMMIT and will run it; the client never hears. */
    return !lose;
}

static void *pg_proxy_run(void *arg)
{
    struct pg_proxy *p = arg;
    struct pollfd fds[2 + 2 * PG_PROXY_PAIRS];
    char buf[65536];
    for (;;) {
        fds[0] = (struct pollfd){.fd = p->wake[0], .events = POLLIN};
        fds[1] = (struct pollfd){.fd = p->lfd, .events = POLLIN};
        for (size_t i = 0; i < p->n; i++) {
            fds[2 + 2 * i] = (struct pollfd){.fd = p->pairs[i].c, .events = POLLIN};
            fds[3 + 2 * i] = (struct pollfd){.fd = p->pairs[i].s, .events = POLLIN};
        }
        size_t n = p->n;
        if (poll(fds, 2 + 2 * n, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (fds[0].revents != 0)
            break;
        /* Back to front: a dropped pair takes the last one's place. */
        for (size_t k = n; k-- > 0;) {
            struct pg_pair *pair = &p->pairs[k];
            bool keep = true;
            for (int side = 0; side < 2 && keep; side++) {
                if (fds[2 + 2 * k + (size_t)side].revents == 0)
                    continue;
                ssize_t got = read(side == 0 ? pair->c : pair->s, buf, sizeof(buf));
                if (got <= 0)
                    keep = false;
                else if (side == 0)
                    keep = pg_proxy_from_client(p, pair, buf, (size_t)got);
                else
                    keep = pg_proxy_write(pair->c, buf, (size_t)got);
            }
            if (!keep)
                pg_proxy_drop(p, k);
        }
        if ((fds[1].revents & POLLIN) != 0) {
            int c = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
            pthread_mutex_lock(&p->mu);
            bool refuse = pg_proxy_now_ms() < p->refuse_until;
            pthread_mutex_unlock(&p->mu);
            int s = c >= 0 && !refuse ? pg_proxy_unix(p->upstream, false) : -1;
            if (c >= 0 && (s < 0 || p->n == PG_PROXY_PAIRS)) {
                close(c);
                if (s >= 0)
                    close(s);
            } else if (c >= 0) {
                p->pairs[p->n++] = (struct pg_pair){.c = c, .s = s};
            }
        }
    }
    while (p->n > 0)
        pg_proxy_drop(p, p->n - 1);
    return NULL;
}

struct pg_proxy *pg_proxy_start(const char *url, char *proxied, size_t cap)
{
    char host[72], port[8]; /* the socket's path fits in sun_path */
    if (!pg_proxy_server(url, host, sizeof(host), port, sizeof(port)))
        return NULL;
    struct pg_proxy *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->lfd = p->wake[0] = p->wake[1] = -1;
    pthread_mutex_init(&p->mu, NULL);
    snprintf(p->upstream, sizeof(p->upstream), "%s/.s.PGSQL.%s", host, port);
    snprintf(p->port, sizeof(p->port), "%s", port);
    const char *tmp = getenv("TMPDIR");
    if (asprintf(&p->dir, "%s/pgproxy-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp") < 0) {
        free(p);
        return NULL;
    }
    char path[sizeof(p->upstream)];
    int n = -1, m = -1;
    if (mkdtemp(p->dir) != NULL && strpbrk(p->dir, "'\\") == NULL) {
        n = snprintf(path, sizeof(path), "%s/.s.PGSQL.%s", p->dir, port);
        /* A keyword given twice takes its last value (libpq). */
        m = snprintf(proxied, cap, "%s host='%s'", url, p->dir);
    }
    if (n < 0 || (size_t)n >= sizeof(path) || m < 0 || (size_t)m >= cap ||
        (p->lfd = pg_proxy_unix(path, true)) < 0 || pipe2(p->wake, O_CLOEXEC) != 0 ||
        pthread_create(&p->thread, NULL, pg_proxy_run, p) != 0) {
        if (p->lfd >= 0)
            close(p->lfd);
        if (n >= 0)
            unlink(path);
        rmdir(p->dir);
        free(p->dir);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

void pg_proxy_lose_commit_after(struct pg_proxy *p, const char *marker)
{
    pthread_mutex_lock(&p->mu);
    snprintf(p->marker, sizeof(p->marker), "%s", marker);
    p->armed = true;
    pthread_mutex_unlock(&p->mu);
}

void pg_proxy_refuse_after_loss(struct pg_proxy *p, unsigned ms)
{
    pthread_mutex_lock(&p->mu);
    p->refuse_ms = ms;
    pthread_mutex_unlock(&p->mu);
}

bool pg_proxy_refusing(struct pg_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    bool refusing = pg_proxy_now_ms() < p->refuse_until;
    pthread_mutex_unlock(&p->mu);
    return refusing;
}

unsigned pg_proxy_lost(struct pg_proxy *p)
{
    pthread_mutex_lock(&p->mu);
    unsigned n = p->lost;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void pg_proxy_stop(struct pg_proxy *p)
{
    if (p == NULL)
        return;
    (void)!write(p->wake[1], "x", 1);
    pthread_join(p->thread, NULL);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    char path[sizeof(p->upstream) + 64];
    snprintf(path, sizeof(path), "%s/.s.PGSQL.%s", p->dir, p->port);
    unlink(path);
    rmdir(p->dir);
    free(p->dir);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
