/* The console's line editor on a terminal: a prompt, line editing and
 * history from libedit's readline-compatible callback interface, driven by
 * a uv_poll on standard input so the loop never blocks on the keyboard.
 * Private to the console adapter. libedit keeps one editor per process, so
 * at most one exists at a time. */
#ifndef HB_CONSOLE_EDIT_H
#define HB_CONSOLE_EDIT_H

#include <stdbool.h>
#include <uv.h>

struct console_edit;

/** Called with each line typed (heap; the callee frees it), or NULL when
 *  the operator ended the input (Ctrl-D on an empty line). The prompt is
 *  hidden while the callee works; it shows it again with
 *  console_edit_prompt_show. */
typedef void (*console_edit_line_cb)(void *data, char *line);
/** Whether a line typed may be written to the history file (it is
 *  recalled in this run either way). */
typedef bool (*console_edit_keep_cb)(void *data, const char *line);

/** An editor on standard input and output; the prompt is not shown yet.
 *  history names the file that keeps typed lines between runs (a leading
 *  "~/" is $HOME; NULL or "" keeps none): loaded now, appended to with each
 *  line keep(data, line) allows (NULL: every line). NULL when another
 *  editor exists or on failure. */
struct console_edit *console_edit_new(uv_loop_t *loop, const char *prompt, const char *history,
                                      console_edit_line_cb cb, console_edit_keep_cb keep,
                                      void *data);

/** Show the prompt and take keys (nothing when it shows already). */
int console_edit_prompt_show(struct console_edit *e);
/** Take the prompt away and stop reading keys (the terminal is cooked
 *  again while no prompt shows). */
void console_edit_prompt_hide(struct console_edit *e);

/** Around output written while the prompt may show: begin clears the
 *  prompt's line, end draws the prompt and what was typed again. */
void console_edit_print_begin(struct console_edit *e);
void console_edit_print_end(struct console_edit *e);

/** Hide the prompt, give the terminal back, and free the editor inside the
 *  loop; cb(data) once its handle is closed. */
void console_edit_close(struct console_edit *e, void (*cb)(void *data), void *data);

#endif
