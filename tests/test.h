/* The test harness: cmocka for assertions and groups, one runner
 * (tests/main.c) and one registration list (tests/test_list.h).
 *
 * A test file ends with
 *
 *     static const struct CMUnitTest tests[] = { cmocka_unit_test(...), ... };
 *     TEST_GROUP_DEFINE(name, tests, setup, teardown)
 *
 * and tests/test_list.h gains one line TEST_GROUP(name). */
#ifndef HB_TEST_H
#define HB_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <cmocka.h>

#define TEST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define TEST_GROUP_DEFINE(name, list, setup, teardown)                                             \
    int test_group_##name(size_t *ntests);                                                         \
    int test_group_##name(size_t *ntests)                                                          \
    {                                                                                              \
        *ntests = TEST_ARRAY_SIZE(list);                                                           \
        return _cmocka_run_group_tests(#name, list, TEST_ARRAY_SIZE(list), setup, teardown);       \
    }

/** A fresh, empty directory under $TMPDIR for this test; removed (with its
 *  contents) by test_tmpdir_remove(). Returns a heap string the caller frees. */
char *test_tmpdir_new(void);
void test_tmpdir_remove(const char *dir);

/** Write `len` bytes (or strlen(text) when len is (size_t)-1) to a file. */
void test_file_write(const char *path, const void *text, size_t len);

/** Read a whole file; returns a NUL-terminated heap string, or NULL. */
char *test_file_read(const char *path, size_t *len_out);

/* The first column of the first row sql gives, read from the database at
 * db_path on a connection of its own (WAL lets it read beside the store's
 * thread); -1 when there is no row. */
int64_t test_sql_int(const char *db_path, const char *sql);
/** test_sql_int, waiting (running loop, up to 5 s) while it reads 0: for a
 *  row written after the answer the test saw (an audit entry). */
struct uv_loop_s;
int64_t test_sql_int_wait(struct uv_loop_s *loop, const char *db_path, const char *sql);

/** A fresh, empty PostgreSQL database for this test, made on the server
 *  $HAIBOT_TEST_PG_URL names (`make test` starts a throwaway cluster and
 *  sets it: tools/pg-cluster.sh): CREATE DATABASE hb_<pid>_<n>, and its
 *  libpq connection string (the server's, with dbname replaced) into url.
 *  Returns 0, or -1 with the reason on stderr (the variable unset, the
 *  server unreachable, url too small): the caller's test then fails, it is
 *  never skipped. The database is left behind; the cluster goes with it. */
int test_pg_db(char *url, size_t cap);

/** Run sql on the database url names, on a connection of its own. Returns
 *  0 when it succeeded, -1 when the server refused it (the reason on
 *  stderr unless quiet). */
int test_pg_exec(const char *url, const char *sql, bool quiet);

/** The first column of the first row sql gives on the database url names,
 *  as an integer; -1 when there is no row. Asserts the query succeeded. */
int64_t test_pg_int(const char *url, const char *sql);

/** A temporary directory holding a daemon's config and database: bot.conf
 *  names the bot, puts the ledger at dir/haibot.db, and turns on the
 *  console for user "tester" (an admin, images into dir). */
struct test_daemon_dir {
    char *dir;      /* heap; removed with its contents by test_daemon_dir_free */
    char conf[512]; /* dir/bot.conf, mode 0600 */
    char db[512];   /* dir/haibot.db */
};

/** Make the directory and write its bot.conf for a bot called name. */
void test_daemon_dir_init(struct test_daemon_dir *f, const char *name);
void test_daemon_dir_free(struct test_daemon_dir *f);

/** cmocka setup and teardown: *state becomes a heap test_daemon_dir for a
 *  bot called "Test Bot", made and removed around each test. */
int test_daemon_dir_setup(void **state);
int test_daemon_dir_teardown(void **state);

/** Path of the daemon binary under test ($HAIBOT_BIN, else build/asan/haibot). */
const char *test_haibot_bin(void);

/** The result of running a child process. */
struct test_proc {
    int status; /* exit code, or 128 + signal number */
    char *out;  /* everything written to stdout (heap) */
    char *err;  /* everything written to stderr (heap) */
};

/** Run argv (argv[0] is the program path) with `input` on stdin (NULL: empty
 *  stdin), wait up to timeout_ms, and collect its output. Kills the child
 *  with SIGKILL when the timeout passes (status is then 128 + 9). */
void test_proc_run(char *const argv[], const char *input, int timeout_ms, struct test_proc *out);
void test_proc_free(struct test_proc *p);

/** A child process left running, with pipes to it. */
struct test_child {
    int pid;
    int in_fd;  /* write end of its stdin, or -1 */
    int out_fd; /* read end of its stdout */
    int err_fd; /* read end of its stderr */
    char *out;  /* collected so far (heap) */
    size_t out_len;
    char *err;
    size_t err_len;
};

/** Start argv with pipes; the caller drives it with the calls below. */
void test_child_start(struct test_child *c, char *const argv[]);
/** Read from stdout and stderr until `needle` appears in the named stream
 *  ("out" or "err") or timeout_ms passes. Returns true when it appeared. */
bool test_child_wait_for(struct test_child *c, const char *stream, const char *needle,
                         int timeout_ms);
/** Close stdin, wait for exit (up to timeout_ms, then SIGKILL); returns status
 *  as test_proc's. Collects remaining output. */
int test_child_finish(struct test_child *c, int timeout_ms);
void test_child_free(struct test_child *c);

struct uv_loop_s;
/** Run loop for ms (a timer of its own ends the wait), then once more
 *  without waiting, so that the timer's close is done. */
void test_run_for(struct uv_loop_s *loop, uint64_t ms);

/** A loopback TCP port nobody listens on right now. */
int test_port_free(void);

/** A blocking TCP connection to 127.0.0.1:port (asserted). */
int test_tcp_connect(int port);

/** Send body to 127.0.0.1:port as Stripe would, signed with secret (its
 *  Stripe-Signature), to /webhooks/stripe in one write, with 10 s socket
 *  timeouts. Returns the socket, or -1 when nobody listens (a daemon
 *  starting, or gone); test_http_status reads the answer. */
int test_stripe_send(int port, const char *secret, const char *body);

/** Read an HTTP answer on fd to its end, close fd, and return its status;
 *  -1 when none came. */
int test_http_status(int fd);

/** Read from fd into buf (NUL-terminated, at most cap - 1 bytes) until
 *  needle appears (NULL: until the peer closes or buf is full) or
 *  timeout_ms passes, calling pump(pump_data) between reads when not NULL
 *  (a loop in this process that must run for the peer to answer). Returns
 *  true when needle appeared (NULL: always). */
bool test_recv_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms,
                     void (*pump)(void *data), void *pump_data);

/** Milliseconds on a monotonic clock. */
uint64_t test_now_ms(void);

#endif
