/* Telegram poller failover: two daemons (the real binary, HAIBOT_BIN) over
 * one PostgreSQL ledger and the fake Bot API with a backlog. The poller is
 * killed (SIGKILL) a quarter of the way through, in the middle of a poll's
 * replies; the figure is the time
 * from the kill until the standby polls, beside the lease it must stay
 * under, and the updates left unanswered or answered twice once the
 * standby finished the backlog. It runs twice: unpaced, and at Telegram's
 * own limit of 30 sends a second. HAIBOT_BENCH_PG_URL names the server
 * (`make bench` starts one); without it the bench is skipped. */
#include "bench/bench.h"

#include "tests/fake/telegram_api.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define FO_UPDATES 4000
#define FO_PACED_UPDATES 400 /* at 30 a second: 13 s */
#define FO_LEASE_S 3
#define FO_TOKEN "123456:FAILOVER-bench-abcdef"

struct fo_daemon {
    pid_t pid;
    int err_fd; /* its stderr */
    char *out;  /* everything it wrote there */
    size_t len;
    size_t cap;
};

static int fo__spawn(struct fo_daemon *d, const char *bin, const char *conf)
{
    int p[2];
    memset(d, 0, sizeof(*d));
    if (pipe(p) < 0)
        return -1;
    d->pid = fork();
    if (d->pid < 0)
        return -1;
    if (d->pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(p[1], 2);
        close(p[0]);
        execl(bin, bin, "-c", conf, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    d->err_fd = p[0];
    fcntl(d->err_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

/* Read what the daemons wrote for up to ms (neither blocks on a full
 * pipe); true once needle is in d's output (d may be NULL). */
static bool fo__pump(struct fo_daemon *all, int n, struct fo_daemon *d, const char *needle, int ms)
{
    struct pollfd fds[2];
    for (int i = 0; i < n; i++)
        fds[i] = (struct pollfd){.fd = all[i].err_fd, .events = POLLIN};
    poll(fds, (nfds_t)n, ms);
    for (int i = 0; i < n; i++) {
        struct fo_daemon *x = &all[i];
        for (;;) {
            if (x->cap - x->len < 4096) {
                size_t cap = x->cap != 0 ? x->cap * 2 : 65536;
                char *out = realloc(x->out, cap);
                if (out == NULL)
                    break;
                x->out = out;
                x->cap = cap;
            }
            ssize_t r = read(x->err_fd, x->out + x->len, x->cap - x->len - 1);
            if (r <= 0)
                break;
            x->len += (size_t)r;
            x->out[x->len] = '\0';
        }
    }
    return d != NULL && d->out != NULL && strstr(d->out, needle) != NULL;
}

static bool fo__wait(struct fo_daemon *all, int n, struct fo_daemon *d, const char *needle,
                     int timeout_ms)
{
    double end = bench_now() + timeout_ms / 1000.0;
    while (bench_now() < end) {
        if (fo__pump(all, n, d, needle, 10))
            return true;
    }
    return false;
}

static void fo__stop(struct fo_daemon *d, int sig)
{
    if (d->pid > 0) {
        kill(d->pid, sig);
        waitpid(d->pid, NULL, 0);
    }
    close(d->err_fd);
    free(d->out);
}

/* A fresh database on the bench's server; its connection string in url. */
static int fo__database(const char *server, char *url, size_t cap)
{
    PGconn *c = PQconnectdb(server);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return -1;
    }
    static int seq; /* one database a scenario */
    seq++;
    char sql[96];
    snprintf(sql, sizeof(sql), "CREATE DATABASE hb_failover_%ld_%d", (long)getpid(), seq);
    PGresult *r = PQexec(c, sql);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(r);
    PQfinish(c);
    /* A keyword given again overrides the earlier one. */
    snprintf(url, cap, "%s dbname=hb_failover_%ld_%d", server, (long)getpid(), seq);
    return rc;
}

/* One failover: n updates, the daemons sending at most pace a second; the
 * poller is killed once the fake took a quarter of the replies (and half a
 * poll). Figures are reported with the prefix name. */
static int fo__scenario(const char *server, const char *bin, const char *name, int n, int pace)
{
    char url[1024];
    if (fo__database(server, url, sizeof(url)) < 0)
        return -1;
    char *dir = bench_tmpdir_new();
    struct tgapi *api = tgapi_thread_new(FO_TOKEN);
    if (dir == NULL || api == NULL)
        return -1;
    char conf[2][512];
    for (int i = 0; i < 2; i++) {
        snprintf(conf[i], sizeof(conf[i]), "%s/bot%d.conf", dir, i);
        FILE *f = fopen(conf[i], "w");
        if (f == NULL)
            return -1;
        fprintf(f,
                "[bot]\nname = Failover Bench\nlog_level = info\n"
                "[storage]\nbackend = postgres\npostgres_url = %s\nlease = %d\n"
                "[console]\nenabled = false\n"
                "[telegram]\nenabled = true\ntoken = " FO_TOKEN "\napi_base = %s\n"
                "poll_timeout = 1\nsends_per_second = %d\n",
                url, FO_LEASE_S, tgapi_base(api), pace);
        fclose(f);
        chmod(conf[i], 0600);
    }
    struct fo_daemon d[2];
    int rc = -1;
    if (fo__spawn(&d[0], bin, conf[0]) < 0)
        goto out_api;
    if (!fo__wait(d, 1, &d[0], "telegram.polling", 30000) || fo__spawn(&d[1], bin, conf[1]) < 0) {
        fo__stop(&d[0], SIGKILL);
        goto out_api;
    }
    bool ready = fo__wait(d, 2, &d[1], "role=standby", 30000);
    /* The backlog arrives once both daemons are up: given before, the
     * poller had answered all of it while the standby started, and the
     * kill found nothing left to lose or repeat. */
    tgapi_backlog(api, n, n);
    double end = bench_now() + 60;
    /* Half a poll past a poll's end (the bot polls 100 at a time): a kill
     * at a round count of replies would land just after a poll was
     * answered, where the fewest repeats are. */
    while (ready && tgapi_sends(api) < (size_t)n / 4 + 50 && bench_now() < end)
        fo__pump(d, 2, NULL, NULL, 5);
    double killed = bench_now();
    kill(d[0].pid, SIGKILL);
    size_t killed_at = tgapi_sends(api);
    bool took = ready && fo__wait(d, 2, &d[1], "telegram.polling", 30000);
    double takeover_ms = (bench_now() - killed) * 1000;
    int64_t unanswered = n, repeated = 0;
    end = bench_now() + 120;
    while (took && bench_now() < end) {
        tgapi_backlog_tally(api, &unanswered, &repeated);
        if (unanswered == 0)
            break;
        fo__pump(d, 2, NULL, NULL, 20);
    }
    fo__stop(&d[0], SIGKILL);
    fo__stop(&d[1], SIGTERM);
    if (took) {
        char key[96];
        snprintf(key, sizeof(key), "%s_takeover_ms", name);
        bench_report(key, takeover_ms, "ms");
        snprintf(key, sizeof(key), "%s_lease_ms", name);
        bench_report(key, FO_LEASE_S * 1000, "ms");
        snprintf(key, sizeof(key), "%s_unanswered", name);
        bench_report(key, (double)unanswered, "updates");
        snprintf(key, sizeof(key), "%s_repeated", name);
        bench_report(key, (double)repeated, "updates");
        /* Where the kill fell: replies the fake had taken by then. */
        snprintf(key, sizeof(key), "%s_killed_at", name);
        bench_report(key, (double)killed_at, "replies");
        rc = 0;
    }
out_api:
    tgapi_close(api, NULL, NULL);
    bench_tmpdir_remove(dir);
    free(dir);
    return rc;
}

int bench_telegram_failover(void)
{
    const char *server = getenv("HAIBOT_BENCH_PG_URL");
    const char *bin = getenv("HAIBOT_BIN");
    if (server == NULL || server[0] == '\0' || bin == NULL) {
        fprintf(stderr, "bench telegram_failover: HAIBOT_BENCH_PG_URL or HAIBOT_BIN is not set; "
                        "skipped\n");
        return 0;
    }
    /* Unpaced: a poll's replies all go at once, the most a kill can repeat. */
    if (fo__scenario(server, bin, "telegram_failover", FO_UPDATES, 100000) < 0)
        return -1;
    /* At Telegram's own limit (30 sends a second, the default): replies wait
     * in the queue and the outbox, and a kill repeats only what was in
     * flight or sent and not yet removed. */
    return fo__scenario(server, bin, "telegram_failover_paced", FO_PACED_UPDATES, 30);
}
