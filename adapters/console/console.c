#include "adapters/console/console.h"

#include "adapters/console/console_edit.h"

#include "base/error.h"
#include "base/hex.h"
#include "base/log.h"
#include "core/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_LINE_MAX (64 * 1024)
#define CONSOLE_READ_CHUNK (16 * 1024)
#define CONSOLE_BUTTONS_MAX 25 /* buttons of one reply that /press reaches */
#define CONSOLE_PROMPT "haibot> "

enum console_in_kind { CONSOLE_IN_STREAM, CONSOLE_IN_FILE };

struct console {
    struct adapter adapter;
    uv_loop_t *loop;
    struct adapter_host host;
    char *user;
    bool admin;
    char *image_dir;
    char *history_file; /* NULL: none kept */
    int in_fd;
    int out_fd;

    enum console_in_kind in_kind;
    union {
        uv_tty_t tty;
        uv_pipe_t pipe;
        uv_stream_t stream;
    } in;
    uv_fs_t in_req; /* file input: one read at a time */
    char *file_buf; /* file input buffer */
    int64_t file_off;
    bool reading;                    /* input is being read */
    bool in_open;                    /* the input handle needs a uv_close */
    bool ended;                      /* end of input reported to the host */
    bool input_done;                 /* end of input (or a read error) reached */
    bool paused;                     /* input paused: too many lines queued */
    bool file_reading;               /* file input: a read request is out */
    bool stopped;                    /* the adapter was stopped: no new commands */
    bool busy;                       /* a command is in flight; the next line waits */
    bool pumping;                    /* inside console__pump (no recursion) */
    struct console_line *queue_head; /* lines read, not yet run */
    struct console_line *queue_tail;
    size_t queued;

    char *line; /* partial line being assembled */
    size_t line_len;
    bool line_overflow; /* the current line passed CONSOLE_LINE_MAX */

    uint64_t seq;  /* line counter, for event ids */
    char boot[17]; /* random per run, in hex: event ids never repeat across runs */
    size_t refs;   /* replies alive + 1 while open */
    size_t handles_open;
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;

    struct console_edit *edit; /* a terminal: the prompt and line editor; else NULL */
    /* The buttons of the last reply that had some, for /press N. */
    char button_refs[CONSOLE_BUTTONS_MAX][COMMAND_BUTTON_REF_MAX + 1];
    char *button_labels[CONSOLE_BUTTONS_MAX];
    size_t nbuttons;
    bool buttons_fresh; /* the last reply printed had them: a bare number presses */
};

/* Lines run one at a time, as a shell runs them: replies come out in the
 * order the lines went in. Reading pauses while too many wait. */
#define CONSOLE_QUEUE_HIGH 256
#define CONSOLE_QUEUE_LOW 32

struct console_line {
    struct console_line *next;
    char text[];
};

struct console_reply {
    struct reply reply;
    struct console *console;
};

static void console__maybe_free(struct console *c);

/* ---- output ----------------------------------------------------------- */

/* Output is written synchronously. Putting the output descriptor in
 * non-blocking mode (as a libuv stream would) also changes it for stderr
 * whenever both share one pipe or terminal, and log lines would then be lost
 * to EAGAIN; a full pipe is better met with backpressure. */
static void console__out(struct console *c, const char *text, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = write(c->out_fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = c->out_fd, .events = POLLOUT};
            poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static void console__outs(struct console *c, const char *text)
{
    console__out(c, text, strlen(text));
}

/* ---- replies ---------------------------------------------------------- */

static int console__save_image(struct console *c, const struct reply_image *img, char *path,
                               size_t cap)
{
    const char *ext = strchr(img->filename != NULL ? img->filename : "", '.');
    snprintf(path, cap, "%s/console-%s-%llu%s", c->image_dir, c->boot, (unsigned long long)++c->seq,
             ext != NULL ? ext : ".bin");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    int rc = 0;
    while (off < img->len) {
        ssize_t n = write(fd, img->data + off, img->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = HB_EIO;
            break;
        }
        off += (size_t)n;
    }
    close(fd);
    return rc;
}

static void console__buttons_clear(struct console *c)
{
    for (size_t i = 0; i < c->nbuttons; i++)
        free(c->button_labels[i]);
    c->nbuttons = 0;
    c->buttons_fresh = false;
}

/* Print a reply's buttons numbered, and keep them for /press N. */
static void console__buttons_keep(struct console *c, const struct reply_msg *msg)
{
    console__buttons_clear(c);
    console__outs(c, "buttons:");
    for (size_t i = 0; i < msg->nbuttons; i++) {
        char num[32];
        snprintf(num, sizeof(num), " [%zu] ", i + 1);
        console__outs(c, num);
        console__outs(c, msg->buttons[i].label);
        if (i < CONSOLE_BUTTONS_MAX) {
            char *label = strdup(msg->buttons[i].label);
            if (label == NULL)
                continue;
            c->button_labels[c->nbuttons] = label;
            memcpy(c->button_refs[c->nbuttons], msg->buttons[i].ref, sizeof(c->button_refs[0]));
            c->nbuttons++;
        }
    }
    console__outs(c, "   (/press N)\n");
    c->buttons_fresh = true;
}

/* A message as the console shows it: its text after prefix (or, with no
 * text, its image's line after it), its image saved as a file and the
 * file's path, its buttons numbered for /press. */
static void console__print(struct console *c, const struct reply_msg *msg, const char *prefix)
{
    if (c->edit != NULL)
        console_edit_print_begin(c->edit);
    bool text = msg->text != NULL && msg->text[0] != '\0';
    if (text) {
        console__outs(c, prefix);
        console__outs(c, msg->text);
        console__outs(c, "\n");
    }
    if (msg->image != NULL) {
        char path[1024];
        char line[1200];
        int rc = console__save_image(c, msg->image, path, sizeof(path));
        if (rc == 0)
            snprintf(line, sizeof(line), "[image saved to %s, %zu bytes]\n", path, msg->image->len);
        else
            snprintf(line, sizeof(line), "[image of %zu bytes could not be saved in %s: %s]\n",
                     msg->image->len, c->image_dir, hb_strerror(rc));
        if (!text)
            console__outs(c, prefix);
        console__outs(c, line);
    }
    if (msg->nbuttons > 0)
        console__buttons_keep(c, msg);
    else if (msg->stage == REPLY_FINAL)
        c->buttons_fresh = false;
    if (c->edit != NULL)
        console_edit_print_end(c->edit);
}

static int console__send(struct reply *r, const struct reply_msg *msg)
{
    struct console_reply *cr = r->data;
    console__print(cr->console, msg, msg->stage == REPLY_PROGRESS ? "… " : "");
    return 0;
}

static void console__pump(struct console *c);

static void console__finish(struct reply *r)
{
    struct console_reply *cr = r->data;
    struct console *c = cr->console;
    free(cr);
    c->busy = false;
    if (!c->closing)
        console__pump(c);
    c->refs--;
    console__maybe_free(c);
}

static const struct reply_ops console_reply_ops = {.send = console__send,
                                                   .finish = console__finish};

/* ---- input ------------------------------------------------------------ */

/* "/press N", or a bare N while the last reply's buttons are the newest
 * thing shown: which button (1-based) the line presses; 0 for a line that
 * is no press; -1 for a press that names no button (answered here). */
static long console__press_which(struct console *c, const char *p)
{
    bool command = strncmp(p, "/press", 6) == 0 && (p[6] == '\0' || p[6] == ' ' || p[6] == '\t');
    const char *num = command ? p + 6 + strspn(p + 6, " \t") : p;
    char *end = NULL;
    long n = strtol(num, &end, 10);
    bool is_number = num[0] >= '0' && num[0] <= '9' && end != NULL && *end == '\0';
    if (!command) {
        /* A bare number is a chat turn unless it can only mean a button. */
        return is_number && c->buttons_fresh && n >= 1 && (size_t)n <= c->nbuttons ? n : 0;
    }
    char text[160];
    if (c->nbuttons == 0) {
        console__outs(c, "No buttons to press: /press N presses button N of the last reply "
                         "that had buttons.\n");
    } else if (!is_number || n < 1 || (size_t)n > c->nbuttons) {
        snprintf(text, sizeof(text), "Press a button by its number, 1 to %zu: /press N\n",
                 c->nbuttons);
        console__outs(c, text);
    } else {
        return n;
    }
    return -1;
}

/* Run one line: a command goes to the host, anything else gets a hint. */
static void console__run(struct console *c, char *p)
{
    long press = console__press_which(c, p);
    if (press < 0)
        return;
    struct console_reply *cr = calloc(1, sizeof(*cr));
    if (cr == NULL)
        return;
    cr->reply.ops = &console_reply_ops;
    cr->reply.data = cr;
    cr->console = c;
    c->refs++;
    c->busy = true;

    struct invocation inv;
    memset(&inv, 0, sizeof(inv));
    inv.platform = COMMAND_PLATFORM_CONSOLE;
    snprintf(inv.user_id, sizeof(inv.user_id), "%s", c->user);
    snprintf(inv.user_name, sizeof(inv.user_name), "%s", c->user);
    inv.scope = COMMAND_SCOPE_DM;
    snprintf(inv.channel_id, sizeof(inv.channel_id), "console");
    snprintf(inv.event_id, sizeof(inv.event_id), "console:%s:%llu", c->boot,
             (unsigned long long)++c->seq);
    inv.admin = c->admin;
    inv.reply = &cr->reply;
    if (press > 0) {
        /* Pressing a button is what a tap is on Telegram: the ref goes to
         * the router, which checks it belongs to this member. */
        memcpy(inv.button_ref, c->button_refs[press - 1], sizeof(inv.button_ref));
        char text[COMMAND_ID_MAX + 64];
        snprintf(text, sizeof(text), "[pressed %s]\n", c->button_labels[press - 1]);
        console__outs(c, text);
        c->buttons_fresh = false;
        c->host.dispatch(c->host.data, &inv, NULL);
        return;
    }
    if (*p != '/') {
        /* The console is a direct conversation: plain text is a chat turn,
         * as a plain message in a Telegram or Discord DM is. */
        snprintf(inv.name, sizeof(inv.name), "chat");
        c->host.dispatch(c->host.data, &inv, p);
        return;
    }
    c->host.dispatch(c->host.data, &inv, p + 1);
}

static void console__input_resume(struct console *c);

/* Run queued lines while nothing is in flight; report the end of input
 * once the last line has finished. */
static void console__pump(struct console *c)
{
    if (c->pumping)
        return;
    c->pumping = true;
    while (!c->busy && c->queue_head != NULL && !c->stopped && !c->closing) {
        struct console_line *l = c->queue_head;
        c->queue_head = l->next;
        if (c->queue_head == NULL)
            c->queue_tail = NULL;
        c->queued--;
        console__run(c, l->text);
        free(l);
    }
    c->pumping = false;
    if (c->paused && c->queued <= CONSOLE_QUEUE_LOW && !c->stopped && !c->closing)
        console__input_resume(c);
    if (c->edit != NULL && !c->busy && c->queue_head == NULL && !c->input_done && !c->stopped &&
        !c->closing)
        console_edit_prompt_show(c->edit);
    if (c->input_done && c->queue_head == NULL && !c->busy && !c->ended) {
        c->ended = true;
        log_info("console.end_of_input", NULL);
        if (c->host.ended != NULL)
            c->host.ended(c->host.data, &c->adapter);
    }
}

static void console__queue_drop(struct console *c)
{
    if (c->queued > 0)
        log_info("console.lines_dropped", "count=%zu reason=stopping", c->queued);
    while (c->queue_head != NULL) {
        struct console_line *l = c->queue_head;
        c->queue_head = l->next;
        free(l);
    }
    c->queue_tail = NULL;
    c->queued = 0;
}

static void console__line(struct console *c, char *line)
{
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || c->stopped)
        return;
    size_t plen = strlen(p);
    struct console_line *l = malloc(sizeof(*l) + plen + 1);
    if (l == NULL)
        return;
    l->next = NULL;
    memcpy(l->text, p, plen + 1);
    if (c->queue_tail != NULL)
        c->queue_tail->next = l;
    else
        c->queue_head = l;
    c->queue_tail = l;
    c->queued++;
    if (c->queued >= CONSOLE_QUEUE_HIGH && !c->paused) {
        c->paused = true;
        if (c->in_kind == CONSOLE_IN_STREAM && c->in_open)
            uv_read_stop(&c->in.stream);
    }
    console__pump(c);
}

static void console__feed(struct console *c, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (ch == '\n') {
            if (c->line_overflow) {
                log_warn("console.line_too_long", "limit=%d", CONSOLE_LINE_MAX);
                console__outs(c, "That line is too long; it was ignored.\n");
            } else {
                c->line[c->line_len] = '\0';
                console__line(c, c->line);
            }
            c->line_len = 0;
            c->line_overflow = false;
            if (c->closing || c->stopped)
                return;
            continue;
        }
        if (c->line_len + 1 >= CONSOLE_LINE_MAX) {
            c->line_overflow = true;
            continue;
        }
        c->line[c->line_len++] = ch;
    }
}

static void console__end(struct console *c)
{
    if (c->line_len > 0 && !c->line_overflow) {
        c->line[c->line_len] = '\0';
        c->line_len = 0;
        console__line(c, c->line);
    }
    c->reading = false;
    c->input_done = true;
    console__pump(c);
}

static void console__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    static char chunk[CONSOLE_READ_CHUNK];
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void console__read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct console *c = s->data;
    if (n > 0) {
        console__feed(c, buf->base, (size_t)n);
        return;
    }
    if (n < 0) {
        if (n != UV_EOF)
            log_warn("console.read_failed", "error=%s", uv_strerror((int)n));
        uv_read_stop(s);
        console__end(c);
    }
}

static void console__file_read(uv_fs_t *req);

static void console__file_next(struct console *c)
{
    uv_buf_t buf = uv_buf_init(c->file_buf, CONSOLE_READ_CHUNK);
    int rc = uv_fs_read(c->loop, &c->in_req, c->in_fd, &buf, 1, -1, console__file_read);
    if (rc < 0) {
        log_warn("console.read_failed", "error=%s", uv_strerror(rc));
        console__end(c);
    } else {
        c->refs++; /* the read request holds the console */
        c->file_reading = true;
    }
}

static void console__file_read(uv_fs_t *req)
{
    struct console *c = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    c->file_reading = false;
    /* The request's reference is dropped last: ending the input may close
     * the console from inside this callback. */
    if (n > 0 && c->reading && !c->closing) {
        console__feed(c, c->file_buf, (size_t)n);
        if (c->reading && !c->closing && !c->paused && !c->stopped)
            console__file_next(c);
    } else if (n < 0 && n != UV_ECANCELED) {
        log_warn("console.read_failed", "error=%s", uv_strerror((int)n));
        if (!c->closing)
            console__end(c);
    } else if (!c->closing && !c->stopped && n == 0) {
        console__end(c);
    }
    c->refs--;
    console__maybe_free(c);
}

static void console__input_resume(struct console *c)
{
    c->paused = false;
    if (!c->reading || c->input_done)
        return;
    if (c->in_kind == CONSOLE_IN_STREAM && c->in_open)
        uv_read_start(&c->in.stream, console__alloc, console__read);
    else if (c->in_kind == CONSOLE_IN_FILE && !c->file_reading)
        console__file_next(c);
}

/* ---- lifecycle -------------------------------------------------------- */

static void console__handle_closed(uv_handle_t *h)
{
    struct console *c = h->data;
    c->handles_open--;
    console__maybe_free(c);
}

static void console__maybe_free(struct console *c)
{
    if (!c->closing)
        return;
    if (c->refs > 0 || c->handles_open > 0)
        return;
    void (*cb)(void *) = c->close_cb;
    void *data = c->close_data;
    console__queue_drop(c);
    console__buttons_clear(c);
    free(c->user);
    free(c->image_dir);
    free(c->history_file);
    free(c->line);
    free(c->file_buf);
    free(c);
    if (cb != NULL)
        cb(data);
}

/* Why the console must leave its input alone, or NULL to read it. Under a
 * service standard input is /dev/null (a character device: reading it
 * tells nothing, reading /dev/zero would never end); started in the
 * background of a shell, the first read of the terminal would stop the
 * whole daemon (SIGTTIN, "Stopped (tty input)"). */
static const char *console__input_off(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return "standard input is closed";
    if (isatty(fd)) {
        pid_t fg = tcgetpgrp(fd);
        return fg != -1 && fg != getpgrp() ? "started in the background of its terminal" : NULL;
    }
    if (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode) || S_ISSOCK(st.st_mode))
        return NULL;
    return "standard input is not a terminal, a pipe or a file (a service?)";
}

/* The console is off: it ends as a console at end of input does, but
 * from the loop, after start returned (the host counts it started). */
static void console__off_done(uv_fs_t *req)
{
    struct console *c = req->data;
    uv_fs_req_cleanup(req);
    if (!c->closing && !c->stopped)
        console__end(c);
    c->refs--;
    console__maybe_free(c);
}

static void console__edit_line(void *data, char *line)
{
    struct console *c = data;
    if (line == NULL) {
        console__end(c);
        return;
    }
    console__line(c, line);
    free(line);
    console__pump(c); /* an empty line shows the prompt again */
}

static void console__edit_closed(void *data)
{
    struct console *c = data;
    c->handles_open--;
    console__maybe_free(c);
}

/* Whether a line typed may go to the history file. A prompt may not: a
 * chat turn (no slash), or a command with a prompt option (/chat,
 * /imagine, /admin edit), nor a line that names no command (a /chta
 * with its prompt behind it). Prompts are kept in the store alone, where
 * retention and /forget erase them; a history file would outlive both. */
static bool console__history_keeps(void *data, const char *line)
{
    (void)data;
    if (line[0] != '/')
        return false;
    char name[64];
    const char *args;
    const struct command_spec *spec = commands_match(line + 1, name, sizeof(name), &args);
    if (spec == NULL)
        return false;
    for (size_t i = 0; i < spec->noptions; i++) {
        if (strcmp(spec->options[i].name, "prompt") == 0)
            return false;
    }
    return true;
}

/* A person at a terminal (both ends of it, as the daemon's own standard
 * input and output): a banner, a prompt, line editing and history. */
static int console__edit_start(struct console *c)
{
    if (c->in_fd != STDIN_FILENO || c->out_fd != STDOUT_FILENO || !isatty(c->out_fd))
        return HB_EINVAL;
    c->edit = console_edit_new(c->loop, CONSOLE_PROMPT, c->history_file, console__edit_line,
                               console__history_keeps, c);
    if (c->edit == NULL)
        return HB_ENOMEM;
    c->handles_open++;
    c->reading = true;
    console__outs(c, "HAI Bot console. /help lists the commands; a line without a slash is a "
                     "chat turn;\n/press N presses button N of the last reply. Up and down "
                     "recall earlier lines.\nCtrl-D leaves the console (the daemon stops with "
                     "it when it is the only platform); Ctrl-C stops the daemon.\n");
    log_info("console.started", "user=%s input=terminal editing=on", c->user);
    console__pump(c);
    return 0;
}

static int console__start(struct adapter *a)
{
    struct console *c = a->impl;
    int rc = 0;
    const char *off = console__input_off(c->in_fd);
    if (off != NULL) {
        log_info("console.off",
                 "reason=%s hint=the console is for a terminal in the "
                 "foreground; the other adapters run on",
                 off);
        c->in_req.data = c;
        rc = uv_fs_fstat(c->loop, &c->in_req, c->in_fd, console__off_done);
        if (rc == 0)
            c->refs++;
        return rc;
    }
    uv_handle_type in = uv_guess_handle(c->in_fd);
    if (in == UV_TTY && console__edit_start(c) == 0)
        return 0;
    if (in == UV_TTY) {
        rc = uv_tty_init(c->loop, &c->in.tty, c->in_fd, 1);
    } else if (in == UV_NAMED_PIPE) {
        rc = uv_pipe_init(c->loop, &c->in.pipe, 0);
        if (rc == 0) {
            rc = uv_pipe_open(&c->in.pipe, c->in_fd);
            if (rc < 0) {
                c->handles_open++;
                c->in.pipe.data = c;
                uv_close((uv_handle_t *)&c->in.pipe, console__handle_closed);
                return rc;
            }
        }
    } else {
        c->in_kind = CONSOLE_IN_FILE;
    }
    if (rc < 0)
        return rc;
    c->reading = true;
    if (c->in_kind == CONSOLE_IN_FILE) {
        c->file_buf = malloc(CONSOLE_READ_CHUNK);
        if (c->file_buf == NULL)
            return HB_ENOMEM;
        c->in_req.data = c;
        console__file_next(c);
    } else {
        c->in.stream.data = c;
        c->in_open = true;
        c->handles_open++;
        rc = uv_read_start(&c->in.stream, console__alloc, console__read);
        if (rc < 0)
            return rc;
    }
    log_info("console.started", "user=%s input=%s", c->user,
             in == UV_TTY          ? "terminal"
             : in == UV_NAMED_PIPE ? "pipe"
                                   : "file");
    return 0;
}

static void console__stop(struct adapter *a)
{
    struct console *c = a->impl;
    c->stopped = true;
    console__queue_drop(c);
    if (!c->reading)
        return;
    c->reading = false;
    if (c->edit != NULL)
        console_edit_prompt_hide(c->edit);
    else if (c->in_kind == CONSOLE_IN_STREAM && c->in_open)
        uv_read_stop(&c->in.stream);
    else if (c->in_kind == CONSOLE_IN_FILE && c->file_reading)
        uv_cancel((uv_req_t *)&c->in_req);
}

static void console__close(struct adapter *a, void (*cb)(void *data), void *data)
{
    struct console *c = a->impl;
    console__stop(a);
    c->closing = true;
    c->close_cb = cb;
    c->close_data = data;
    if (c->in_open) {
        c->in_open = false;
        uv_close((uv_handle_t *)&c->in.stream, console__handle_closed);
    }
    if (c->edit != NULL) {
        struct console_edit *e = c->edit;
        c->edit = NULL;
        console_edit_close(e, console__edit_closed, c);
    }
    c->refs--; /* the open reference */
    console__maybe_free(c);
}

/* The console has one member, the operator: every notice is theirs. It is
 * written at once, as replies are, marked so it is not taken for the
 * answer to the line being run; its image and buttons as a reply's. */
static int console__notify(struct adapter *a, const struct notify_target *to,
                           const struct reply_msg *msg)
{
    struct console *c = a->impl;
    (void)to;
    if (c->closing)
        return HB_ECANCELED;
    if ((msg->text == NULL || msg->text[0] == '\0') && msg->image == NULL)
        return HB_EINVAL;
    console__print(c, msg, "[notice] ");
    return 0;
}

/* A reload changes who the local user is and whether they are an admin. */
static int console__reload(struct adapter *a, const void *options)
{
    const struct console_options *opts = options;
    struct console *c = a->impl;
    char *copy = strdup(opts->user != NULL ? opts->user : "operator");
    if (copy == NULL)
        return HB_ENOMEM;
    free(c->user);
    c->user = copy;
    c->admin = opts->admin;
    return 0;
}

static const struct adapter_ops console_ops = {.name = "console",
                                               .platform = COMMAND_PLATFORM_CONSOLE,
                                               .start = console__start,
                                               .stop = console__stop,
                                               .close = console__close,
                                               .reload = console__reload,
                                               .notify = console__notify};

struct adapter *console_new(uv_loop_t *loop, const struct console_options *opts,
                            const struct adapter_host *host)
{
    struct console *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->adapter.ops = &console_ops;
    c->adapter.impl = c;
    c->loop = loop;
    c->host = *host;
    c->user = strdup(opts->user != NULL ? opts->user : "operator");
    c->image_dir = strdup(opts->image_dir != NULL ? opts->image_dir : ".");
    if (opts->history_file != NULL && opts->history_file[0] != '\0') {
        c->history_file = strdup(opts->history_file);
        if (c->history_file == NULL)
            goto fail;
    }
    c->admin = opts->admin;
    c->in_fd = opts->in_fd;
    c->out_fd = opts->out_fd;
    c->line = malloc(CONSOLE_LINE_MAX);
    /* A start time would repeat when the daemon restarts within the same
     * second, and every event id of the previous run with it: a grant would
     * then be taken for a replay. 64 random bits never repeat in practice. */
    unsigned char nonce[8];
    if (getrandom(nonce, sizeof(nonce), 0) != (ssize_t)sizeof(nonce))
        goto fail;
    hex_encode(nonce, sizeof(nonce), c->boot);
    c->refs = 1;
    if (c->user == NULL || c->image_dir == NULL || c->line == NULL)
        goto fail;
    return &c->adapter;
fail:
    free(c->user);
    free(c->image_dir);
    free(c->history_file);
    free(c->line);
    free(c);
    return NULL;
}
