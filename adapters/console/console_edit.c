#include "adapters/console/console_edit.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#define CONSOLE_EDIT_HISTORY 1000

struct console_edit {
    uv_poll_t poll;
    console_edit_line_cb cb;
    void *data;
    char *prompt;
    bool shown;   /* the handler is installed: the prompt is on screen */
    bool polling; /* the poll is started */
    void (*closed)(void *data);
    void *closed_data;
};

/* libedit's readline interface keeps its state in globals, and its line
 * handler takes no data pointer: the editor in use is this one. */
static struct console_edit *console_edit_current;

static void console_edit__line(char *line)
{
    struct console_edit *e = console_edit_current;
    if (e == NULL) {
        free(line);
        return;
    }
    if (line != NULL && line[0] != '\0')
        add_history(line);
    console_edit_prompt_hide(e);
    e->cb(e->data, line);
}

static void console_edit__readable(uv_poll_t *h, int status, int events)
{
    struct console_edit *e = h->data;
    (void)events;
    if (status < 0) {
        log_warn("console.read_failed", "error=%s", uv_strerror(status));
        console_edit_prompt_hide(e);
        e->cb(e->data, NULL);
        return;
    }
    /* One key per call; a paste arrives as many readable events. */
    if (e->shown)
        rl_callback_read_char();
}

struct console_edit *console_edit_new(uv_loop_t *loop, const char *prompt, console_edit_line_cb cb,
                                      void *data)
{
    if (console_edit_current != NULL)
        return NULL;
    struct console_edit *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->prompt = strdup(prompt);
    if (e->prompt == NULL || uv_poll_init(loop, &e->poll, STDIN_FILENO) < 0) {
        free(e->prompt);
        free(e);
        return NULL;
    }
    e->poll.data = e;
    e->cb = cb;
    e->data = data;
    /* The loop owns the signals: libedit must not install handlers. */
    rl_catch_signals = 0;
    rl_readline_name = "haibot";
    rl_instream = stdin;
    rl_outstream = stdout;
    using_history();
    stifle_history(CONSOLE_EDIT_HISTORY);
    console_edit_current = e;
    return e;
}

int console_edit_prompt_show(struct console_edit *e)
{
    if (e->shown)
        return 0;
    fflush(stdout);
    rl_callback_handler_install(e->prompt, console_edit__line);
    e->shown = true;
    if (!e->polling) {
        int rc = uv_poll_start(&e->poll, UV_READABLE, console_edit__readable);
        if (rc < 0)
            return rc;
        e->polling = true;
    }
    return 0;
}

void console_edit_prompt_hide(struct console_edit *e)
{
    if (e->polling) {
        uv_poll_stop(&e->poll);
        e->polling = false;
    }
    if (!e->shown)
        return;
    e->shown = false;
    rl_callback_handler_remove();
}

void console_edit_print_begin(struct console_edit *e)
{
    if (!e->shown)
        return;
    /* Back to the start of the prompt's line, and clear it. */
    fputs("\r\033[K", stdout);
    fflush(stdout);
}

void console_edit_print_end(struct console_edit *e)
{
    if (!e->shown)
        return;
    rl_forced_update_display();
    fflush(stdout);
}

static void console_edit__closed(uv_handle_t *h)
{
    struct console_edit *e = h->data;
    void (*cb)(void *) = e->closed;
    void *data = e->closed_data;
    free(e->prompt);
    free(e);
    if (cb != NULL)
        cb(data);
}

void console_edit_close(struct console_edit *e, void (*cb)(void *data), void *data)
{
    bool was_shown = e->shown;
    console_edit_prompt_hide(e);
    if (was_shown) {
        fputs("\n", stdout);
        fflush(stdout);
    }
    clear_history();
    console_edit_current = NULL;
    e->closed = cb;
    e->closed_data = data;
    uv_close((uv_handle_t *)&e->poll, console_edit__closed);
}
