/* The metered API end to end: chat completions over HTTP/1.1 keep-alive
 * connections to the daemon's server (net/server.h, bot/api.h), each
 * authenticated by an API key, admitted, reserved, run and settled on a
 * durable ledger, and answered in OpenAI's shape.
 *
 * The provider answers at once, in process (a zero timer per call), so
 * everything measured is the daemon's own work: parsing, the key check,
 * admission, the store's commits (reservation, settlement, the key's
 * spend), the JSON answer. The load comes from a client thread with plain
 * sockets, so the daemon's loop has its thread to itself.
 *
 * Figures: completions per second with many connections at once, and the
 * latency of one request at a time (p50, p99), which with an instant
 * provider is the latency the daemon adds. For comparison, LiteLLM
 * publishes its proxy's overhead as 3.25 ms added latency
 * (https://docs.litellm.ai/docs/proxy/perf) and, per request at about
 * 1,170 requests/s over 4 instances of 4 CPUs, 2 ms median, 13 ms p99
 * (https://docs.litellm.ai/docs/benchmarks). */
#include "bench/bench.h"

#include "bot/api.h"
#include "core/apikey.h"
#include "core/catalog.h"
#include "core/core.h"
#include "core/generate.h"
#include "core/ledger.h"
#include "storage/store.h"
#include "core/provider.h"
#include "net/server.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BA_THROUGHPUT 20000
#define BA_CONNS 64
#define BA_LATENCY 2000

/* ---- the instant provider -------------------------------------------------- */

struct ba_call {
    uv_timer_t timer;
    const struct provider_events *ev;
    void *data;
    bool cancelled;
};

static void ba_call_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ba_call_fire(uv_timer_t *t)
{
    struct ba_call *c = t->data;
    struct provider_result res = {.rc = 0, .retry_after_ms = -1, .error = ""};
    if (c->cancelled) {
        res.rc = -125;
    } else {
        c->ev->text(c->data, "Hello, world", 12);
        c->ev->usage(c->data, 5, 3);
    }
    c->ev->done(c->data, &res);
    uv_close((uv_handle_t *)&c->timer, ba_call_closed);
}

static int ba_start(struct provider *p, const struct provider_request *req,
                    const struct provider_events *ev, void *data, struct provider_call **out)
{
    (void)req;
    struct ba_call *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -12;
    uv_timer_init(p->impl, &c->timer);
    c->timer.data = c;
    c->ev = ev;
    c->data = data;
    uv_timer_start(&c->timer, ba_call_fire, 0, 0);
    *out = (struct provider_call *)c;
    return 0;
}

static void ba_cancel(struct provider_call *call)
{
    ((struct ba_call *)call)->cancelled = true;
}

static void ba_free(struct provider *p)
{
    free(p);
}

static const struct provider_ops ba_ops = {.start = ba_start, .cancel = ba_cancel, .free = ba_free};

/* ---- the client thread ------------------------------------------------------ */

struct ba_load {
    int port;
    char request[1024];
    size_t request_len;
    unsigned conns;
    unsigned total;
    _Atomic unsigned next; /* requests handed out */
    _Atomic unsigned ok, bad;
    double *lat; /* per request, ms (latency phase) */
    uv_async_t done;
};

static int ba_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Read one whole response (content-length framed); returns its status, or
 * -1 when the connection ended. */
static int ba_read_response(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, buf + have, cap - have - 1);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strcasestr(buf, "content-length:");
        size_t body = cl != NULL ? strtoul(cl + 15, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - buf) + body)
            return atoi(buf + 9);
    }
}

struct ba_worker {
    struct ba_load *load;
    pthread_t thread;
};

static void *ba_worker_run(void *arg)
{
    struct ba_load *l = ((struct ba_worker *)arg)->load;
    char *buf = malloc(65536);
    int fd = -1;
    for (;;) {
        unsigned i = atomic_fetch_add(&l->next, 1);
        if (i >= l->total)
            break;
        if (fd < 0)
            fd = ba_connect(l->port);
        double t0 = bench_now();
        int status = -1;
        if (fd >= 0 && write(fd, l->request, l->request_len) == (ssize_t)l->request_len)
            status = ba_read_response(fd, buf, 65536);
        if (status < 0 && fd >= 0) {
            close(fd); /* the server ends a connection after 100 requests */
            fd = ba_connect(l->port);
            if (fd >= 0 && write(fd, l->request, l->request_len) == (ssize_t)l->request_len)
                status = ba_read_response(fd, buf, 65536);
        }
        if (l->lat != NULL)
            l->lat[i] = (bench_now() - t0) * 1000.0;
        if (status == 200)
            l->ok++;
        else
            l->bad++;
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static void *ba_load_run(void *arg)
{
    struct ba_load *l = arg;
    struct ba_worker w[BA_CONNS];
    for (unsigned i = 0; i < l->conns; i++) {
        w[i].load = l;
        pthread_create(&w[i].thread, NULL, ba_worker_run, &w[i]);
    }
    for (unsigned i = 0; i < l->conns; i++)
        pthread_join(w[i].thread, NULL);
    uv_async_send(&l->done);
    return NULL;
}

/* ---- the daemon side ----------------------------------------------------------- */

struct ba {
    uv_loop_t loop;
    struct core core;
    char key[APIKEY_LEN + 1];
    bool ready, finished;
    int rc;
    uv_timer_t flush;
};

static void ba_flush(uv_timer_t *t)
{
    struct ba *b = t->data;
    apikey_spend_flush(&b->core);
}

static void ba_created(int rc, const char *key, const struct store_apikey *rec, void *data)
{
    struct ba *b = data;
    (void)rec;
    b->rc = rc;
    if (rc == 0)
        snprintf(b->key, sizeof(b->key), "%s", key);
    b->ready = true;
}

static void ba_keys_loaded(int rc, void *data)
{
    struct ba *b = data;
    struct apikey_spec spec = {.owner = "console:bench", .creator = "console:bench", .name = "b"};
    if (rc == 0)
        rc = apikey_create(&b->core, &spec, ba_created, b);
    if (rc < 0) {
        b->rc = rc;
        b->ready = true;
    }
}

static void ba_done(uv_async_t *a)
{
    ((struct ba *)a->data)->finished = true;
}

static int ba_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Run total requests over conns connections; returns seconds. */
static double ba_phase(struct ba *b, struct ba_load *l, unsigned conns, unsigned total)
{
    l->conns = conns;
    l->total = total;
    atomic_store(&l->next, 0);
    b->finished = false;
    pthread_t t;
    double t0 = bench_now();
    pthread_create(&t, NULL, ba_load_run, l);
    while (!b->finished)
        uv_run(&b->loop, UV_RUN_ONCE);
    double secs = bench_now() - t0;
    pthread_join(t, NULL);
    return secs;
}

static void ba_closed(void *data)
{
    (void)data;
}

int bench_api(void)
{
    int rc = 0;
    log_configure(LOG_ERROR, false, NULL);
    char *dir = bench_tmpdir_new();
    char path[512];
    snprintf(path, sizeof(path), "%s/ledger.db", dir);
    struct ba b;
    memset(&b, 0, sizeof(b));
    uv_loop_init(&b.loop);
    /* The loop polls for the store's answers as the daemon's does by
     * default ([storage] spin_us). */
    struct ledger_options lopts = {.path = path, .spin_us = STORE_SPIN_US_DEFAULT};
    struct ledger *ledger = ledger_new(&b.loop, &lopts, &rc);
    struct provider *prov = calloc(1, sizeof(*prov));
    struct server_options so = {.port = 0};
    struct server *srv = server_new(&b.loop, &so);
    if (ledger == NULL || prov == NULL || srv == NULL) {
        fprintf(stderr, "bench_api: setup failed\n");
        return 1;
    }
    prov->ops = &ba_ops;
    prov->impl = &b.loop;
    /* The keys' spending is written behind, every 2 s, as the daemon does. */
    uv_timer_init(&b.loop, &b.flush);
    b.flush.data = &b;
    uv_timer_start(&b.flush, ba_flush, 2000, 2000);
    struct catalog_provider_spec p = {
        .name = "instant", .provider = prov, .timeout_ms = 30000, .max_concurrent = 1024};
    struct catalog_model_spec m = {.name = "fast",
                                   .provider = "instant",
                                   .modality = PROVIDER_TEXT,
                                   .price_request = 1,
                                   .price_output_1k = 10,
                                   .max_output_tokens = 100,
                                   .enabled = true};
    struct catalog_spec spec = {
        .providers = &p,
        .nproviders = 1,
        .models = &m,
        .nmodels = 1,
        .limits = {.queue_max = 100000, .user_queue = 100000, .user_in_flight = 1024}};
    char err[256];
    struct catalog *cat = catalog_new(&spec, err, sizeof(err));
    b.core.ledger = ledger;
    b.core.welcome_bonus = 1000000000;
    b.core.reservation_timeout_ms = 600000;
    b.core.generate = generate_new(&b.loop, &b.core, cat, NULL);
    catalog_unref(cat);
    struct api *api = api_new(srv, &b.core, 0);
    if (b.core.generate == NULL || api == NULL || apikeys_ready(&b.core, ba_keys_loaded, &b) < 0) {
        fprintf(stderr, "bench_api: setup failed\n");
        return 1;
    }
    while (!b.ready)
        uv_run(&b.loop, UV_RUN_ONCE);
    if (b.rc < 0) {
        fprintf(stderr, "bench_api: no key\n");
        return 1;
    }

    static const char body[] =
        "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":\"Say hello\"}]}";
    struct ba_load *l = calloc(1, sizeof(*l));
    l->port = server_port(srv);
    l->request_len = (size_t)snprintf(l->request, sizeof(l->request),
                                      "POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\n"
                                      "Authorization: Bearer %s\r\nContent-Type: "
                                      "application/json\r\nContent-Length: %zu\r\n\r\n%s",
                                      b.key, strlen(body), body);
    uv_async_init(&b.loop, &l->done, ba_done);
    l->done.data = &b;

    double secs = ba_phase(&b, l, BA_CONNS, BA_THROUGHPUT);
    bench_report("api_completions_per_s", l->ok / secs, "req/s");
    unsigned ok = l->ok, bad = l->bad;

    l->lat = calloc(BA_LATENCY, sizeof(double));
    l->ok = l->bad = 0;
    ba_phase(&b, l, 1, BA_LATENCY); /* each request waits for two durable commits */
    bench_disk_fsync(dir, "api");   /* the disk's own sync time, right after */
    qsort(l->lat, BA_LATENCY, sizeof(double), ba_cmp);
    bench_report("api_added_latency_p50", l->lat[BA_LATENCY / 2], "ms");
    bench_report("api_added_latency_p99", l->lat[BA_LATENCY * 99 / 100], "ms");
    bench_report("litellm_published_overhead_p99", 13, "ms");
    if (bad + l->bad > 0 || ok + l->ok != BA_THROUGHPUT + BA_LATENCY) {
        fprintf(stderr, "bench_api: %u answered 200, %u not\n", ok + l->ok, bad + l->bad);
        rc = 1;
    }

    uv_close((uv_handle_t *)&b.flush, NULL);
    uv_close((uv_handle_t *)&l->done, NULL);
    server_stop(srv);
    apikey_spend_flush(&b.core);
    generate_close(b.core.generate, ba_closed, NULL);
    ledger_close(ledger, NULL, NULL);
    uv_run(&b.loop, UV_RUN_DEFAULT);
    server_free(srv);
    api_free(api);
    if (uv_loop_close(&b.loop) != 0)
        rc = 1;
    free(l->lat);
    free(l);
    bench_tmpdir_remove(dir);
    free(dir);
    return rc;
}
