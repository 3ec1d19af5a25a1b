#include "adapters/console/console_edit.h"

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <editline/readline.h>

#define CONSOLE_EDIT_HISTORY 1000

struct console_edit {
    uv_poll_t poll;
    console_edit_line_cb cb;
    console_edit_keep_cb keep;
    void *data;
    char *prompt;
    bool shown;   /* the handler is installed: the prompt is on screen */
    bool polling; /* the poll is started */
    void (*closed)(void *data);
    void *closed_data;
    char *history; /* the file that keeps typed lines between runs; NULL none */
    char *last;    /* the last line recalled, not recalled twice in a row */
    char *written; /* the file's last line, not written twice in a row */
};

/* libedit's readline interface keeps its state in globals, and its line
 * handler takes no data pointer: the editor in use is this one. */
static struct console_edit *console_edit_current;

/* ---- history kept between runs ------------------------------------------ */

/* A plain text file, one line per entry, private to its user (0600), as a
 * shell keeps its own, less what the console keeps off the disk (prompts:
 * see console.c). Each line typed is appended when it is entered, so a
 * daemon killed keeps what was typed before; a file grown past twice the
 * history's size is rewritten with its newest entries at the next start. A
 * line typed after a space is not kept (nor recalled), as in a shell: the
 * way to run something without it staying on disk. */

static void console_edit__history_off(struct console_edit *e, const char *what)
{
    log_warn("console.history_off", "path=%s op=%s error=%s", e->history, what, strerror(errno));
    free(e->history);
    e->history = NULL;
}

/* "~/x" is $HOME/x; NULL when there is no such home (nothing kept). */
static char *console_edit__history_path(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return NULL;
    if (strncmp(path, "~/", 2) != 0)
        return strdup(path);
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        log_info("console.history_off", "reason=HOME is not set, for %s", path);
        return NULL;
    }
    size_t n = strlen(home) + strlen(path);
    char *full = malloc(n);
    if (full != NULL)
        snprintf(full, n, "%s/%s", home, path + 2);
    return full;
}

/* Rewrite the file with the newest entries (ring[first..] then [..first)). */
static void console_edit__history_trim(struct console_edit *e, char **ring, size_t n, size_t first)
{
    size_t len = strlen(e->history) + 8;
    char *tmp = malloc(len);
    if (tmp == NULL)
        return;
    snprintf(tmp, len, "%s.new", e->history);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = fprintf(f, "%s\n", ring[(first + i) % n]) >= 0;
    if (f != NULL)
        ok = fclose(f) == 0 && ok;
    else if (fd >= 0)
        close(fd);
    if (!ok || rename(tmp, e->history) < 0) {
        log_warn("console.history_not_trimmed", "path=%s error=%s", e->history, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
}

static void console_edit__history_load(struct console_edit *e)
{
    FILE *f = fopen(e->history, "re");
    if (f == NULL) {
        if (errno != ENOENT)
            console_edit__history_off(e, "read");
        return;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0)
        log_warn("console.history_mode",
                 "path=%s mode=%o problem=\"readable or writable by other "
                 "users\" hint=\"make it private with chmod 600\"",
                 e->history, (unsigned)(st.st_mode & 0777));
    /* The newest entries, in a ring, for a trim. */
    char **ring = calloc(CONSOLE_EDIT_HISTORY, sizeof(*ring));
    size_t count = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while (ring != NULL && (n = getline(&line, &cap, f)) >= 0) {
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (n == 0)
            continue;
        add_history(line);
        size_t at = count++ % CONSOLE_EDIT_HISTORY;
        free(ring[at]);
        ring[at] = line;
        line = NULL;
        cap = 0;
    }
    free(line);
    fclose(f);
    if (count > 0 && ring != NULL) {
        free(e->last);
        e->last = strdup(ring[(count - 1) % CONSOLE_EDIT_HISTORY]);
        free(e->written);
        e->written = e->last != NULL ? strdup(e->last) : NULL;
    }
    if (count > 2 * CONSOLE_EDIT_HISTORY)
        console_edit__history_trim(e, ring, CONSOLE_EDIT_HISTORY, count % CONSOLE_EDIT_HISTORY);
    for (size_t i = 0; ring != NULL && i < CONSOLE_EDIT_HISTORY; i++)
        free(ring[i]);
    free(ring);
}

static void console_edit__history_add(struct console_edit *e, const char *line)
{
    if (line[0] == '\0' || line[0] == ' ' || (e->last != NULL && strcmp(e->last, line) == 0))
        return;
    add_history(line);
    free(e->last);
    e->last = strdup(line);
    if (e->history == NULL || (e->keep != NULL && !e->keep(e->data, line)) ||
        (e->written != NULL && strcmp(e->written, line) == 0))
        return;
    int fd = open(e->history, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        console_edit__history_off(e, "open");
        return;
    }
    size_t n = strlen(line);
    bool ok = write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1;
    if (close(fd) < 0 || !ok) {
        console_edit__history_off(e, "write");
        return;
    }
    free(e->written);
    e->written = strdup(line);
}

/* ---- the editor -------------------------------------------------------- */

static void console_edit__line(char *line)
{
    struct console_edit *e = console_edit_current;
    if (e == NULL) {
        free(line);
        return;
    }
    if (line != NULL)
        console_edit__history_add(e, line);
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

struct console_edit *console_edit_new(uv_loop_t *loop, const char *prompt, const char *history,
                                      console_edit_line_cb cb, console_edit_keep_cb keep,
                                      void *data)
{
    if (console_edit_current != NULL)
        return NULL;
    struct console_edit *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->prompt = strdup(prompt);
    e->history = console_edit__history_path(history);
    if (e->prompt == NULL || uv_poll_init(loop, &e->poll, STDIN_FILENO) < 0) {
        free(e->prompt);
        free(e->history);
        free(e);
        return NULL;
    }
    e->poll.data = e;
    e->cb = cb;
    e->keep = keep;
    e->data = data;
    /* The loop owns the signals: libedit must not install handlers. */
    rl_catch_signals = 0;
    rl_readline_name = "haibot";
    rl_instream = stdin;
    rl_outstream = stdout;
    using_history();
    stifle_history(CONSOLE_EDIT_HISTORY);
    if (e->history != NULL)
        console_edit__history_load(e);
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
    free(e->history);
    free(e->last);
    free(e->written);
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
