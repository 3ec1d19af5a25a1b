/* A child process on a pseudo-terminal, for tests of what a person at a
 * terminal sees (prompts, echo-less questions, line editing). */
#ifndef HB_TEST_PTY_H
#define HB_TEST_PTY_H

#include <stdbool.h>
#include <stddef.h>

struct test_pty {
    int pid;
    int fd;    /* the terminal's master side */
    char *out; /* everything the child wrote to its terminal (heap) */
    size_t len;
    size_t seen; /* test_pty_wait_for searches from here */
};

/** Start argv with its stdin, stdout and stderr on a new terminal. */
void test_pty_start(struct test_pty *p, char *const argv[]);
/** Read until needle appears after the last match, or timeout_ms passes.
 *  Returns true when it appeared (the next search starts after it). */
bool test_pty_wait_for(struct test_pty *p, const char *needle, int timeout_ms);
/** Type text at the terminal. */
void test_pty_type(struct test_pty *p, const char *text);
/** Wait for exit (up to timeout_ms, then SIGKILL); status as test_proc's. */
int test_pty_finish(struct test_pty *p, int timeout_ms);
void test_pty_free(struct test_pty *p);

#endif
