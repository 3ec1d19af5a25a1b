/* The console adapter: the daemon's own terminal as a chat.
 *
 * Reads standard input line by line (a terminal, a pipe or a file) and turns
 * each line into a neutral invocation from the local user "console:<user>":
 * "/command args" runs a command. Replies are printed on standard output;
 * images are saved as files in image_dir and their path printed. At end of
 * input the adapter tells its host that it has ended. */
#ifndef HB_CONSOLE_H
#define HB_CONSOLE_H

#include "adapters/adapter.h"

#include <stdbool.h>
#include <uv.h>

struct console_options {
    const char *user;      /* local user name (copied) */
    bool admin;            /* may the local user run admin commands */
    const char *image_dir; /* where received images are written (copied) */
    /* On a terminal, where typed lines are kept between runs (copied; a
     * leading "~/" is $HOME); NULL or "" keeps none. */
    const char *history_file;
    int in_fd;  /* input, normally 0 */
    int out_fd; /* output, normally 1 */
};

/** A console adapter on `loop`; host is copied. Returns NULL on failure.
 *  Freed through its close operation. Its reload operation takes a
 *  struct console_options and applies user and admin. */
struct adapter *console_new(uv_loop_t *loop, const struct console_options *opts,
                            const struct adapter_host *host);

#endif
