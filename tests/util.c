/* Shared test helpers: temporary directories, files, child processes. */
#include "tests/test.h"

#include "adapters/stripe/stripe.h"

#include <errno.h>
#include <libpq-fe.h>
#include <uv.h>
#include <sqlite3.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *test_tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/haibot-test-XXXXXX", base != NULL ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    assert_non_null(dir);
    char *copy = strdup(dir);
    assert_non_null(copy);
    return copy;
}

static int test__rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_tmpdir_remove(const char *dir)
{
    if (dir != NULL)
        nftw(dir, test__rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void test_file_write(const char *path, const void *text, size_t len)
{
    if (len == (size_t)-1)
        len = strlen(text);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

char *test_file_read(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out != NULL)
        *len_out = len;
    return buf;
}

const char *test_haibot_bin(void)
{
    const char *bin = getenv("HAIBOT_BIN");
    return bin != NULL ? bin : "build/asan/haibot";
}

static void test__append(char **buf, size_t *len, const char *data, size_t n)
{
    char *grown = realloc(*buf, *len + n + 1);
    assert_non_null(grown);
    memcpy(grown + *len, data, n);
    *len += n;
    grown[*len] = '\0';
    *buf = grown;
}

void test_child_start(struct test_child *c, char *const argv[])
{
    int in[2], out[2], err[2];
    memset(c, 0, sizeof(*c));
    assert_int_equal(pipe2(in, O_CLOEXEC), 0);
    assert_int_equal(pipe2(out, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        execv(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    c->pid = pid;
    c->in_fd = in[1];
    c->out_fd = out[0];
    c->err_fd = err[0];
    c->out = calloc(1, 1);
    c->err = calloc(1, 1);
    assert_non_null(c->out);
    assert_non_null(c->err);
    /* Writes to a child that has exited must not kill the test runner. */
    signal(SIGPIPE, SIG_IGN);
}

/* Poll the child's output pipes once for up to wait_ms. Returns false when
 * both are at end of file. */
static bool test__child_pump(struct test_child *c, int wait_ms)
{
    struct pollfd p[2] = {{c->out_fd, POLLIN, 0}, {c->err_fd, POLLIN, 0}};
    if (c->out_fd < 0 && c->err_fd < 0)
        return false;
    int n = poll(p, 2, wait_ms);
    if (n <= 0)
        return true;
    char buf[8192];
    for (int i = 0; i < 2; i++) {
        if (p[i].fd < 0 || p[i].revents == 0)
            continue;
        ssize_t r = read(p[i].fd, buf, sizeof(buf));
        if (r > 0) {
            if (i == 0)
                test__append(&c->out, &c->out_len, buf, (size_t)r);
            else
                test__append(&c->err, &c->err_len, buf, (size_t)r);
        } else if (r == 0 || errno != EINTR) {
            close(p[i].fd);
            if (i == 0)
                c->out_fd = -1;
            else
                c->err_fd = -1;
        }
    }
    return true;
}

bool test_child_wait_for(struct test_child *c, const char *stream, const char *needle,
                         int timeout_ms)
{
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        const char *hay = strcmp(stream, "out") == 0 ? c->out : c->err;
        if (strstr(hay, needle) != NULL)
            return true;
        uint64_t now = test_now_ms();
        if (now >= deadline)
            return false;
        if (!test__child_pump(c, (int)(deadline - now)))
            return strstr(strcmp(stream, "out") == 0 ? c->out : c->err, needle) != NULL;
    }
}

int test_child_finish(struct test_child *c, int timeout_ms)
{
    if (c->in_fd >= 0) {
        close(c->in_fd);
        c->in_fd = -1;
    }
    uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
    int status = 0;
    bool killed = false;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid)
            break;
        if (!killed && test_now_ms() >= deadline) {
            kill(c->pid, SIGKILL);
            killed = true;
        }
        if (!test__child_pump(c, 20))
            usleep(5000);
    }
    while (test__child_pump(c, 0) && (c->out_fd >= 0 || c->err_fd >= 0)) {
        /* drain what is left */
        struct pollfd p[2] = {{c->out_fd, POLLIN, 0}, {c->err_fd, POLLIN, 0}};
        if (poll(p, 2, 0) <= 0)
            break;
    }
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    c->out_fd = c->err_fd = -1;
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

void test_child_free(struct test_child *c)
{
    if (c->in_fd >= 0)
        close(c->in_fd);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    free(c->out);
    free(c->err);
    memset(c, 0, sizeof(*c));
}

void test_proc_run(char *const argv[], const char *input, int timeout_ms, struct test_proc *out)
{
    struct test_child c;
    test_child_start(&c, argv);
    if (input != NULL) {
        size_t len = strlen(input);
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(c.in_fd, input + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    out->status = test_child_finish(&c, timeout_ms);
    out->out = c.out;
    out->err = c.err;
    c.out = c.err = NULL;
    test_child_free(&c);
}

void test_proc_free(struct test_proc *p)
{
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

/* 127.0.0.1:port */
static struct sockaddr_in test__loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    return a;
}

int test_port_free(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = test__loopback(0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

int test_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = test__loopback(port);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

int test_stripe_send(int port, const char *secret, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = test__loopback(port);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    char sig[256];
    size_t len = strlen(body);
    assert_int_equal(stripe_signature_make(sig, sizeof(sig), secret, body, len, time(NULL)), 0);
    char req[4096];
    int n = snprintf(req, sizeof(req),
                     "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nStripe-Signature: %s\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     sig, len, body);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    return fd;
}

int test_http_status(int fd)
{
    char buf[2048];
    size_t len = 0;
    while (len + 1 < sizeof(buf)) {
        ssize_t n = recv(fd, buf + len, sizeof(buf) - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
    int status = -1;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        status = -1;
    return status;
}

bool test_recv_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms,
                     void (*pump)(void *data), void *pump_data)
{
    size_t len = 0;
    buf[0] = '\0';
    uint64_t until = test_now_ms() + (uint64_t)timeout_ms;
    while (test_now_ms() < until && len + 1 < cap) {
        if (pump != NULL)
            pump(pump_data);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, pump != NULL ? 1 : 50) <= 0)
            continue;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        if (needle != NULL && strstr(buf, needle) != NULL)
            return true;
    }
    return needle == NULL;
}

void test_daemon_dir_init(struct test_daemon_dir *f, const char *name)
{
    memset(f, 0, sizeof(*f));
    f->dir = test_tmpdir_new();
    snprintf(f->conf, sizeof(f->conf), "%s/bot.conf", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/haibot.db", f->dir);
    char text[2048];
    snprintf(text, sizeof(text),
             "[bot]\nname = %s\n"
             "[storage]\npath = %s\n"
             "[console]\nuser = tester\nadmin = true\nimage_dir = %s\n",
             name, f->db, f->dir);
    test_file_write(f->conf, text, (size_t)-1);
    chmod(f->conf, 0600);
}

void test_daemon_dir_free(struct test_daemon_dir *f)
{
    test_tmpdir_remove(f->dir);
    free(f->dir);
    f->dir = NULL;
}

int test_daemon_dir_setup(void **state)
{
    struct test_daemon_dir *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    test_daemon_dir_init(f, "Test Bot");
    *state = f;
    return 0;
}

int test_daemon_dir_teardown(void **state)
{
    struct test_daemon_dir *f = *state;
    test_daemon_dir_free(f);
    free(f);
    return 0;
}

int64_t test_sql_int(const char *db_path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int64_t test_sql_int_wait(struct uv_loop_s *loop, const char *db_path, const char *sql)
{
    int64_t n = 0;
    for (int i = 0; i < 500 && (n = test_sql_int(db_path, sql)) == 0; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    return n;
}

/* A connection to url, or NULL with the reason on stderr. */
static PGconn *test__pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        return c;
    /* The message names the host and the database, never a password. */
    fprintf(stderr, "test_pg: cannot connect to PostgreSQL: %s",
            c != NULL ? PQerrorMessage(c) : "out of memory\n");
    PQfinish(c);
    return NULL;
}

/* Append "keyword='value' " to buf, quoted as libpq reads it. */
static bool test__pg_append(char *buf, size_t cap, size_t *len, const char *kw, const char *val)
{
    int n = snprintf(buf + *len, cap - *len, "%s%s='", *len > 0 ? " " : "", kw);
    if (n < 0 || (size_t)n >= cap - *len)
        return false;
    *len += (size_t)n;
    for (const char *p = val; *p != '\0'; p++) {
        if (*len + 3 >= cap)
            return false;
        if (*p == '\'' || *p == '\\')
            buf[(*len)++] = '\\';
        buf[(*len)++] = *p;
    }
    buf[(*len)++] = '\'';
    buf[*len] = '\0';
    return true;
}

int test_pg_db(char *url, size_t cap)
{
    static unsigned made; /* databases made by this process */
    const char *base = getenv("HAIBOT_TEST_PG_URL");
    char name[64];
    bool created = false;
    if (base == NULL || base[0] == '\0') {
        fprintf(stderr, "test_pg_db: HAIBOT_TEST_PG_URL is not set. `make test` starts a "
                        "throwaway PostgreSQL and sets it; to run the test binary by hand, "
                        "start one with `tools/pg-cluster.sh start DIR` and export "
                        "HAIBOT_TEST_PG_URL as the connection string it prints.\n");
        return -1;
    }
    PGconn *c = test__pg_connect(base);
    if (c == NULL)
        return -1;
    /* A name another run on the same server may have taken is skipped. */
    for (int tries = 0; tries < 100 && !created; tries++) {
        char sql[128];
        snprintf(name, sizeof(name), "hb_%ld_%u", (long)getpid(), made++);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
        PGresult *r = PQexec(c, sql);
        created = PQresultStatus(r) == PGRES_COMMAND_OK;
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool taken = !created && state != NULL && strcmp(state, "42P04") == 0;
        if (!created && !taken)
            fprintf(stderr, "test_pg_db: %s: %s", sql, PQerrorMessage(c));
        PQclear(r);
        if (!created && !taken)
            break;
    }
    PQfinish(c);
    if (!created)
        return -1;
    /* The server's connection string with dbname replaced, in key=value
     * form whatever form it came in. */
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(base, &err);
    if (opts == NULL) {
        fprintf(stderr, "test_pg_db: HAIBOT_TEST_PG_URL does not parse: %s",
                err != NULL ? err : "out of memory\n");
        PQfreemem(err);
        return -1;
    }
    size_t len = 0;
    bool fits = cap > 0;
    if (fits)
        url[0] = '\0';
    for (PQconninfoOption *o = opts; fits && o->keyword != NULL; o++) {
        if (o->val != NULL && strcmp(o->keyword, "dbname") != 0)
            fits = test__pg_append(url, cap, &len, o->keyword, o->val);
    }
    if (fits)
        fits = test__pg_append(url, cap, &len, "dbname", name);
    PQconninfoFree(opts);
    if (!fits) {
        fprintf(stderr, "test_pg_db: the connection string is longer than %zu bytes\n", cap);
        return -1;
    }
    return 0;
}

int test_pg_exec(const char *url, const char *sql, bool quiet)
{
    PGconn *c = test__pg_connect(url);
    if (c == NULL)
        return -1;
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
    if (rc < 0 && !quiet)
        fprintf(stderr, "test_pg_exec: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return rc;
}

int64_t test_pg_int(const char *url, const char *sql)
{
    PGconn *c = test__pg_connect(url);
    assert_non_null(c);
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    int64_t v = -1;
    if (!ok)
        fprintf(stderr, "test_pg_int: %s: %s", sql, PQerrorMessage(c));
    else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    assert_true(ok);
    return v;
}

static void test__run_fired(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

void test_run_for(uv_loop_t *loop, uint64_t ms)
{
    uv_timer_t t;
    bool fired = false;
    uv_timer_init(loop, &t);
    t.data = &fired;
    uv_timer_start(&t, test__run_fired, ms, 0);
    while (!fired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
}
