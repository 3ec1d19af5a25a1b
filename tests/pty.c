#include "tests/pty.h"
#include "tests/test.h"

#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

void test_pty_start(struct test_pty *p, char *const argv[])
{
    memset(p, 0, sizeof(*p));
    struct winsize ws = {.ws_row = 40, .ws_col = 120};
    fflush(stdout);
    fflush(stderr);
    int fd = -1;
    pid_t pid = forkpty(&fd, NULL, NULL, &ws);
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    p->pid = pid;
    p->fd = fd;
    p->out = calloc(1, 1);
    assert_non_null(p->out);
    signal(SIGPIPE, SIG_IGN);
}

/* Read once for up to wait_ms; false at end of file (the child is gone). */
static bool test__pty_pump(struct test_pty *p, int wait_ms)
{
    if (p->fd < 0)
        return false;
    struct pollfd pf = {p->fd, POLLIN, 0};
    if (poll(&pf, 1, wait_ms) <= 0)
        return true;
    char buf[4096];
    ssize_t n = read(p->fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0) {
        close(p->fd);
        p->fd = -1;
        return false;
    }
    char *grown = realloc(p->out, p->len + (size_t)n + 1);
    assert_non_null(grown);
    memcpy(grown + p->len, buf, (size_t)n);
    p->len += (size_t)n;
    grown[p->len] = '\0';
    p->out = grown;
    return true;
}

bool test_pty_wait_for(struct test_pty *p, const char *needle, int timeout_ms)
{
    uint64_t until = test_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        const char *hit = strstr(p->out + p->seen, needle);
        if (hit != NULL) {
            p->seen = (size_t)(hit - p->out) + strlen(needle);
            return true;
        }
        uint64_t now = test_now_ms();
        if (now >= until || !test__pty_pump(p, (int)(until - now)))
            return strstr(p->out + p->seen, needle) != NULL;
    }
}

void test_pty_type(struct test_pty *p, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len && p->fd >= 0) {
        ssize_t n = write(p->fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}

int test_pty_finish(struct test_pty *p, int timeout_ms)
{
    uint64_t until = test_now_ms() + (uint64_t)timeout_ms;
    int status = 0;
    for (;;) {
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid)
            break;
        if (test_now_ms() >= until) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
            break;
        }
        if (!test__pty_pump(p, 50))
            usleep(10 * 1000);
    }
    while (test__pty_pump(p, 0) && p->fd >= 0) {
        struct pollfd pf = {p->fd, POLLIN, 0};
        if (poll(&pf, 1, 0) <= 0)
            break;
    }
    p->pid = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void test_pty_free(struct test_pty *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, NULL, 0);
    }
    if (p->fd >= 0)
        close(p->fd);
    free(p->out);
    memset(p, 0, sizeof(*p));
    p->fd = -1;
}
