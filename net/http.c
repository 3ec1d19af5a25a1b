/* The HTTP client on the loop. See net/http.h for the contract.
 *
 * libcurl tells us which sockets to watch (socket callback) and when to call
 * it back (timer callback); we watch sockets with uv_poll and the deadline
 * with one uv_timer, and feed events to curl_multi_socket_action(). Finished
 * transfers are collected with curl_multi_info_read() after each call.
 *
 * libcurl forbids most multi calls from inside its own callbacks (the write
 * and header callbacks, where the caller's stream callbacks run). So
 * cancelling, closing and starting from there are deferred: they mark the
 * request or the client and start the "kick" timer with a zero timeout,
 * whose callback does the work from a clean stack on the next loop turn.
 *
 * This file is that driver and the client; the request object, its response
 * callbacks and raw connections are in http_request.c. */
#include "net/http.h"

#include "base/error.h"
#include "base/log.h"
#include "net/http_internal.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static pthread_once_t http_global_once = PTHREAD_ONCE_INIT;
static int http_global_rc = 0;

static void http__global_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        http_global_rc = HB_EIO;
}

int http_global_init(void)
{
    pthread_once(&http_global_once, http__global_init_once);
    return http_global_rc;
}

void http_global_shutdown(void)
{
    curl_global_cleanup();
}

/* ---- small helpers ---------------------------------------------------- */

static void http__kick_fire(uv_timer_t *timer);

void http__kick(struct http_client *client)
{
    if (!client->torn_down)
        (void)uv_timer_start(&client->kick, http__kick_fire, 0, 0);
}

void http__error_set(struct http_request *req, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->error, sizeof(req->error), fmt, ap);
    va_end(ap);
    log_redact(req->error, sizeof(req->error));
}

static void http__list_remove(struct http_request *req)
{
    struct http_client *client = req->client;
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        client->reqs = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    client->nreqs--;
}

static void http__maybe_free_client(struct http_client *client)
{
    if (!client->torn_down || client->handles_open > 0)
        return;
    void (*cb)(void *) = client->close_cb;
    void *data = client->close_data;
    free(client->fds);
    free(client->ca_file);
    free(client->user_agent);
    free(client);
    if (cb != NULL)
        cb(data);
}

static void http__handle_closed(uv_handle_t *handle)
{
    struct http_client *client = handle->data;
    client->handles_open--;
    http__maybe_free_client(client);
}

static void http__sock_closed(uv_handle_t *handle)
{
    struct http_sock *sock = container_of(handle, struct http_sock, poll);
    struct http_client *client = sock->client;
    free(sock);
    client->handles_open--;
    http__maybe_free_client(client);
}

static void http__sock_close(struct http_sock *sock)
{
    struct http_client *client = sock->client;
    if (sock->prev != NULL)
        sock->prev->next = sock->next;
    else
        client->socks = sock->next;
    if (sock->next != NULL)
        sock->next->prev = sock->prev;
    sock->prev = sock->next = NULL;
    if (sock->fd >= 0 && (size_t)sock->fd < client->nfds && client->fds[sock->fd].sock == sock)
        client->fds[sock->fd].sock = NULL;
    uv_close((uv_handle_t *)&sock->poll, http__sock_closed);
}

/* The slot of a connection's socket, or NULL when curl did not open fd
 * through http__curl_open_socket. */
static struct http_fd *http__fd(struct http_client *client, curl_socket_t fd)
{
    if (fd < 0 || (size_t)fd >= client->nfds || !client->fds[fd].conn)
        return NULL;
    return &client->fds[fd];
}

/* Map a finished transfer's CURLcode to our codes and a message. */
static int http__result_map(struct http_request *req, CURLcode res)
{
    const char *detail = req->curl_error[0] != '\0' ? req->curl_error : curl_easy_strerror(res);
    long oserr = 0;
    switch (res) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        http__error_set(req, "timed out: %s", detail);
        return HB_ETIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        http__error_set(req, "could not resolve host: %s", detail);
        return UV_EAI_NONAME;
    case CURLE_COULDNT_CONNECT:
        curl_easy_getinfo(req->easy, CURLINFO_OS_ERRNO, &oserr);
        http__error_set(req, "could not connect: %s", detail);
        if (oserr == ECONNREFUSED)
            return UV_ECONNREFUSED;
        if (oserr == ENETUNREACH)
            return UV_ENETUNREACH;
        if (oserr == EHOSTUNREACH)
            return UV_EHOSTUNREACH;
        return UV_ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY:
        http__error_set(req, "out of memory");
        return HB_ENOMEM;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        http__error_set(req, "TLS failed: %s", detail);
        return HB_EPROTO;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
        http__error_set(req, "bad response: %s", detail);
        return HB_EPROTO;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        http__error_set(req, "connection failed: %s", detail);
        return HB_EIO;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        http__error_set(req, "bad URL: %s", detail);
        return HB_EINVAL;
    default:
        http__error_set(req, "transfer failed: %s", detail);
        return HB_EIO;
    }
}

/* Complete a started request: out of the multi handle, log, call back,
 * free. Never called from inside a libcurl callback. */
static void http__request_finish(struct http_request *req, int rc)
{
    struct http_client *client = req->client;
    http__list_remove(req);
    if (req->in_multi) {
        client->in_curl++;
        curl_multi_remove_handle(client->multi, req->easy);
        client->in_curl--;
        req->in_multi = false;
    }
    req->end_ns = uv_hrtime();
    if (rc == 0)
        req->error[0] = '\0';
    else if (req->error[0] == '\0')
        http__error_set(req, "%s", hb_strerror(rc));
    if (log_enabled(LOG_DEBUG)) {
        log_debug("http.request", "method=%s url=%s status=%d ms=%.1f rc=%d error=%s", req->method,
                  req->url, req->status, http_request_elapsed_ms(req), rc, req->error);
    }
    req->done_cb(req, rc, req->data);
    http_request_free(req);
}

/* A raw connection is up: it stays in the multi handle (curl_easy_send and
 * curl_easy_recv need that) and leaves the request list; its socket is no
 * longer curl's to watch, so a poll still open on it is closed first. */
static void http__connection_ready(struct http_request *req)
{
    struct http_client *client = req->client;
    http__list_remove(req);
    req->handed_over = true;
    req->end_ns = uv_hrtime();
    client->nconns++;
    curl_socket_t fd = http_connection_fd(req);
    for (struct http_sock *sock = client->socks; sock != NULL; sock = sock->next) {
        if (sock->fd == fd) {
            curl_multi_assign(client->multi, fd, NULL);
            http__sock_close(sock);
            break;
        }
    }
    req->done_cb(req, 0, req->data);
}

/* Read every finished transfer from the multi handle. The CURLMsg dies with
 * curl_easy_cleanup (in http_request_free), so copy it first. */
static void http__multi_check(struct http_client *client)
{
    CURLMsg *msg;
    int left = 0;
    for (;;) {
        msg = curl_multi_info_read(client->multi, &left);
        if (msg == NULL)
            break;
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct http_request *req = (struct http_request *)(void *)priv;
        if (req == NULL)
            continue;
        long status = 0;
        if (curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0)
            req->status = (int)status;
        int rc;
        if (req->canceled)
            rc = HB_ECANCELED;
        else if (req->abort_rc != 0)
            rc = req->abort_rc;
        else
            rc = http__result_map(req, res);
        if (rc == 0 && req->connect_only)
            http__connection_ready(req);
        else
            http__request_finish(req, rc);
        if (client->multi == NULL)
            break;
    }
}

static void http__socket_action(struct http_client *client, curl_socket_t fd, int flags)
{
    int running = 0;
    client->in_curl++;
    curl_multi_socket_action(client->multi, fd, flags, &running);
    client->in_curl--;
    http__multi_check(client);
}

/* ---- uv side ----------------------------------------------------------- */

static void http__poll_cb(uv_poll_t *poll, int status, int events)
{
    struct http_sock *sock = container_of(poll, struct http_sock, poll);
    struct http_client *client = sock->client;
    if (sock->idle) {
        /* A kept connection spoke between transfers: the server closed it
         * (or sent what nobody asked for). curl is not watching it and
         * finds it dead when it next looks; until then, no more wake-ups. */
        uv_poll_stop(&sock->poll);
        sock->events = 0;
        return;
    }
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    if (client->multi != NULL)
        http__socket_action(client, sock->fd, flags);
}

static void http__timer_fire(uv_timer_t *timer)
{
    struct http_client *client = container_of(timer, struct http_client, timer);
    if (client->multi != NULL)
        http__socket_action(client, CURL_SOCKET_TIMEOUT, 0);
}

static void http__teardown(struct http_client *client)
{
    client->torn_down = true;
    while (client->nspare > 0)
        curl_easy_cleanup(client->spare[--client->nspare]);
    client->in_curl++;
    curl_multi_cleanup(client->multi);
    client->in_curl--;
    client->multi = NULL;
    while (client->socks != NULL)
        http__sock_close(client->socks);
    uv_close((uv_handle_t *)&client->timer, http__handle_closed);
    uv_close((uv_handle_t *)&client->kick, http__handle_closed);
}

static void http__kick_fire(uv_timer_t *timer)
{
    struct http_client *client = container_of(timer, struct http_client, kick);
    /* Deferred starts first: a request started from a stream callback. */
    for (struct http_request *req = client->reqs; req != NULL; req = req->next) {
        if (req->in_multi || req->canceled || client->closing)
            continue;
        client->in_curl++;
        CURLMcode mc = curl_multi_add_handle(client->multi, req->easy);
        client->in_curl--;
        if (mc == CURLM_OK) {
            req->in_multi = true;
        } else {
            http__error_set(req, "could not start: %s", curl_multi_strerror(mc));
            req->abort_rc = HB_EIO;
            req->canceled = true;
        }
    }
    /* Then cancellations, one at a time: a callback may change the list. */
    for (;;) {
        struct http_request *req = client->reqs;
        while (req != NULL && !req->canceled && !(client->closing))
            req = req->next;
        if (req == NULL)
            break;
        int rc = req->abort_rc != 0 && !client->closing ? req->abort_rc : HB_ECANCELED;
        http__request_finish(req, rc);
    }
    if (client->closing && client->reqs == NULL && client->nconns == 0 && !client->torn_down)
        http__teardown(client);
}

/* ---- curl side ---------------------------------------------------------- */

static int http__curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct http_client *client = userp;
    struct http_sock *sock = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            if (!client->torn_down)
                curl_multi_assign(client->multi, fd, NULL);
            if (client->torn_down || http__fd(client, fd) == NULL) {
                http__sock_close(sock);
                return 0;
            }
            /* A connection back in curl's cache: its watch is kept for the
             * next transfer (readable only: a close by the server) and
             * closed when curl closes the socket (http__curl_close_socket). */
            sock->idle = true;
            /* as before, a connection curl is not using keeps no loop running */
            uv_unref((uv_handle_t *)&sock->poll);
            if (sock->events != UV_READABLE && uv_is_active((uv_handle_t *)&sock->poll)) {
                if (uv_poll_start(&sock->poll, UV_READABLE, http__poll_cb) == 0)
                    sock->events = UV_READABLE;
                else
                    http__sock_close(sock);
            }
        }
        return 0;
    }
    if (sock == NULL) {
        if (client->torn_down)
            return -1;
        struct http_fd *slot = http__fd(client, fd);
        sock = slot != NULL ? slot->sock : NULL;
        if (sock == NULL) {
            sock = calloc(1, sizeof(*sock));
            if (sock == NULL)
                return -1;
            if (uv_poll_init_socket(client->loop, &sock->poll, fd) != 0) {
                free(sock);
                return -1;
            }
            sock->fd = fd;
            sock->client = client;
            sock->poll.data = client;
            sock->next = client->socks;
            if (client->socks != NULL)
                client->socks->prev = sock;
            client->socks = sock;
            client->handles_open++;
            client->watches_made++;
            if (slot != NULL)
                slot->sock = sock;
        }
        if (sock->idle) {
            sock->idle = false;
            uv_ref((uv_handle_t *)&sock->poll);
        }
        curl_multi_assign(client->multi, fd, sock);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    /* libcurl repeats the same wish often; each restart costs an
     * epoll_ctl, so only a change of events touches the poll. */
    if (events == sock->events && uv_is_active((uv_handle_t *)&sock->poll))
        return 0;
    if (uv_poll_start(&sock->poll, events, http__poll_cb) != 0)
        return -1;
    sock->events = events;
    return 0;
}

/* curl opens every connection's socket here, so that it is known as one
 * (its watch may outlive a transfer) and its close comes to
 * http__curl_close_socket. A socket curl makes otherwise (the resolver's
 * wake-up pair) is closed by curl directly: its watch ends with curl's
 * interest in it, as before. */
curl_socket_t http__curl_open_socket(void *clientp, curlsocktype purpose,
                                     struct curl_sockaddr *address)
{
    struct http_client *client = clientp;
    (void)purpose;
    int fd = socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    if ((size_t)fd >= client->nfds) {
        size_t n = client->nfds != 0 ? client->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct http_fd *fds = realloc(client->fds, n * sizeof(*fds));
        if (fds == NULL)
            return fd; /* not known as a connection: watched per transfer */
        memset(fds + client->nfds, 0, (n - client->nfds) * sizeof(*fds));
        client->fds = fds;
        client->nfds = n;
    }
    client->fds[fd] = (struct http_fd){.conn = true};
    return fd;
}

/* curl closes a socket: its watch first (the poll must not outlive the
 * descriptor, whose number the next socket may take). curl has said
 * CURL_POLL_REMOVE for it already. */
int http__curl_close_socket(void *clientp, curl_socket_t fd)
{
    struct http_client *client = clientp;
    struct http_fd *slot = http__fd(client, fd);
    if (slot != NULL) {
        if (slot->sock != NULL)
            http__sock_close(slot->sock);
        *slot = (struct http_fd){0};
    }
    return close(fd);
}

static int http__curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_client *client = userp;
    if (client->torn_down)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&client->timer);
    else
        uv_timer_start(&client->timer, http__timer_fire, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- client ------------------------------------------------------------- */

int http_client_new(uv_loop_t *loop, const struct http_client_options *opts,
                    struct http_client **out)
{
    int rc = 0;
    struct http_client *client = NULL;
    *out = NULL;
    if (loop == NULL)
        return HB_EINVAL;
    rc = http_global_init();
    if (rc < 0)
        return rc;
    client = calloc(1, sizeof(*client));
    if (client == NULL)
        return HB_ENOMEM;
    client->loop = loop;
    if (opts != NULL)
        client->opts = *opts;
    if (client->opts.timeout_ms == 0)
        client->opts.timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    if (client->opts.connect_timeout_ms == 0)
        client->opts.connect_timeout_ms = HTTP_DEFAULT_CONNECT_MS;
    if (client->opts.max_body == 0)
        client->opts.max_body = HTTP_DEFAULT_MAX_BODY;
    client->user_agent =
        strdup(client->opts.user_agent != NULL ? client->opts.user_agent : HTTP_DEFAULT_AGENT);
    client->opts.user_agent = NULL;
    if (client->opts.ca_file != NULL) {
        client->ca_file = strdup(client->opts.ca_file);
        if (client->ca_file == NULL) {
            rc = HB_ENOMEM;
            goto out;
        }
    }
    client->opts.ca_file = NULL;
    client->multi = curl_multi_init();
    if (client->user_agent == NULL || client->multi == NULL) {
        rc = HB_ENOMEM;
        goto out;
    }
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, http__curl_socket_cb);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, http__curl_timer_cb);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
    /* libcurl's own default keeps four connections per transfer running at
     * the moment one ends: when a burst drains, the connections it opened
     * are closed and the next burst connects again. A fixed cache keeps
     * them for reuse. */
    curl_multi_setopt(client->multi, CURLMOPT_MAXCONNECTS,
                      client->opts.max_idle_connections > 0 ? client->opts.max_idle_connections
                                                            : HTTP_DEFAULT_IDLE_CONNS);
    if (client->opts.max_host_connections > 0)
        curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          client->opts.max_host_connections);
    /* Both timers are initialised last so that nothing above needs closing. */
    uv_timer_init(loop, &client->timer);
    uv_timer_init(loop, &client->kick);
    client->timer.data = client;
    client->kick.data = client;
    client->handles_open = 2;
out:
    if (rc < 0) {
        if (client->multi != NULL)
            curl_multi_cleanup(client->multi);
        free(client->ca_file);
        free(client->user_agent);
        free(client);
        return rc;
    }
    *out = client;
    return 0;
}

void http_client_close(struct http_client *client, void (*cb)(void *data), void *data)
{
    if (client == NULL || client->closing)
        return;
    client->closing = true;
    client->close_cb = cb;
    client->close_data = data;
    for (struct http_request *req = client->reqs; req != NULL; req = req->next)
        req->canceled = true;
    http__kick(client);
}

size_t http_client_active(const struct http_client *client)
{
    return client->nreqs;
}

unsigned long http_client_watches_made(const struct http_client *client)
{
    return client->watches_made;
}

int http_request_start(struct http_request *req, http_done_cb cb, void *data)
{
    int rc = 0;
    if (req == NULL)
        return HB_EINVAL;
    if (req->started)
        return HB_EINVAL; /* already the client's; leave it alone */
    struct http_client *client = req->client;
    if (cb == NULL) {
        rc = HB_EINVAL;
        goto out;
    }
    if (client->closing) {
        rc = HB_ESTATE;
        goto out;
    }
    rc = http__easy_setup(req);
    if (rc < 0)
        goto out;
    req->done_cb = cb;
    req->data = data;
    req->started = true;
    req->start_ns = uv_hrtime();
    if (client->in_curl == 0) {
        client->in_curl++;
        CURLMcode mc = curl_multi_add_handle(client->multi, req->easy);
        client->in_curl--;
        if (mc != CURLM_OK) {
            rc = mc == CURLM_OUT_OF_MEMORY ? HB_ENOMEM : HB_EIO;
            goto out;
        }
        req->in_multi = true;
    } else {
        http__kick(client); /* from inside a curl callback: add it next turn */
    }
    req->next = client->reqs;
    if (client->reqs != NULL)
        client->reqs->prev = req;
    client->reqs = req;
    client->nreqs++;
out:
    if (rc < 0)
        http_request_free(req);
    return rc;
}

void http_request_cancel(struct http_request *req)
{
    if (req == NULL || !req->started || req->canceled)
        return;
    req->canceled = true;
    http__kick(req->client);
}
