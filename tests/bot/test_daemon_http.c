/* The daemon with its HTTP server on: it listens on loopback, answers
 * /healthz and /metrics, counts the console's commands, and still stops
 * cleanly. Runs the real binary. */
#include "net/http.h"
#include "tests/bot/tcall.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_daemon_serves_health_and_metrics(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    char conf[512], db[512], text[2048];
    snprintf(conf, sizeof(conf), "%s/bot.conf", dir);
    snprintf(db, sizeof(db), "%s/haibot.db", dir);
    int port = test_port_free();
    snprintf(text, sizeof(text),
             "[storage]\npath = %s\n[console]\nenabled = true\nuser = tester\nimage_dir = %s\n"
             "[server]\nenabled = true\nport = %d\n"
             "[provider \"demo\"]\nkind = demo\n[model \"demo-chat\"]\nprovider = demo\n",
             db, dir, port);
    test_file_write(conf, text, (size_t)-1);
    char *argv[] = {(char *)test_haibot_bin(), "-c", conf, NULL};
    struct test_child c;
    test_child_start(&c, argv);
    char listening[96];
    snprintf(listening, sizeof(listening), "server.listening address=127.0.0.1 port=%d", port);
    assert_true(test_child_wait_for(&c, "err", listening, 15000));
    assert_true(write(c.in_fd, "/balance\n", 9) == 9);
    assert_true(test_child_wait_for(&c, "out", "Your wallet", 15000));

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct http_client *client = NULL;
    assert_int_equal(http_global_init(), 0);
    assert_int_equal(http_client_new(&loop, NULL, &client), 0);
    char u[128];
    struct tcall t;
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/healthz", port);
    tcall_do(&loop, client, "GET", u, NULL, NULL, 0, &t);
    assert_int_equal(t.status, 200);
    assert_non_null(strstr(t.body, "\"storage\":{\"state\":\"up\""));
    assert_non_null(strstr(t.body, "\"console\":{\"state\":\"up\""));
    assert_non_null(strstr(
        t.body,
        "\"provider:demo\":{\"state\":\"up\",\"essential\":false,\"detail\":\"no request yet\""));
    tcall_clear(&t);
    /* A provider that answered is up without the note. */
    assert_true(write(c.in_fd, "/chat hi\n", 9) == 9);
    assert_true(test_child_wait_for(&c, "out", "cost", 15000));
    tcall_do(&loop, client, "GET", u, NULL, NULL, 0, &t);
    assert_null(strstr(t.body, "no request yet"));
    assert_non_null(strstr(t.body, "\"provider:demo\":{\"state\":\"up\""));
    tcall_clear(&t);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/metrics", port);
    tcall_do(&loop, client, "GET", u, NULL, NULL, 0, &t);
    assert_int_equal(t.status, 200);
    assert_non_null(
        strstr(t.body, "haibot_commands_total{command=\"balance\",outcome=\"answered\"} 1\n"));
    assert_non_null(strstr(t.body, "haibot_http_429_total{platform=\"discord\"} 0\n"));
    tcall_clear(&t);
    http_client_close(client, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);

    int status = test_child_finish(&c, 15000);
    if (status != 0)
        fprintf(stderr, "daemon stderr:\n%s\n", c.err);
    assert_int_equal(status, 0);
    assert_non_null(strstr(c.err, "daemon.stopped"));
    test_child_free(&c);
    test_tmpdir_remove(dir);
    free(dir);
}

/* A port already taken: the daemon says so and does not start. */
static void test_daemon_port_taken(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof(a);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    char *dir = test_tmpdir_new();
    char conf[512], text[1024];
    snprintf(conf, sizeof(conf), "%s/bot.conf", dir);
    snprintf(text, sizeof(text),
             "[storage]\npath = %s/haibot.db\n[console]\nenabled = true\n[server]\nenabled = "
             "true\nport = %d\n",
             dir, ntohs(a.sin_port));
    test_file_write(conf, text, (size_t)-1);
    char *argv[] = {(char *)test_haibot_bin(), "-c", conf, NULL};
    struct test_proc p;
    test_proc_run(argv, "", 15000, &p);
    assert_int_equal(p.status, 1); /* an orderly refusal, not a crash */
    assert_non_null(strstr(p.err, "error server.listen "));
    assert_non_null(strstr(p.err, "daemon.stopped") == NULL ? "ok" : NULL);
    test_proc_free(&p);
    close(fd);
    test_tmpdir_remove(dir);
    free(dir);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_daemon_serves_health_and_metrics),
    cmocka_unit_test(test_daemon_port_taken),
};

TEST_GROUP_DEFINE(daemon_http, tests, NULL, NULL)
