/* A fake Telegram Bot API on the fake HTTP server, for tests and benches.
 *
 * It answers /bot<token>/<method> like the Bot API: getMe, getUpdates (long
 * polls held until an update is queued or the poll's timeout, capped by
 * hold_max_ms), sendMessage / sendPhoto / sendInvoice (a new message_id
 * each), and ok:true for the rest. A wrong token gets 401. Scripted
 * failures answer the next calls of a method with a given status and body
 * (429 with retry_after, 409, 5xx, 400 with migrate_to_chat_id). A text
 * sent with parse_mode=HTML is read as Telegram reads it: unknown or
 * unbalanced tags, a bare '&', or more than 4096 visible UTF-16 units get
 * 400 "can't parse entities" (or "message is too long"). Every call
 * is recorded with its body (JSON, or the form fields of a multipart upload
 * as a JSON object plus the photo's size) and the loop time it arrived.
 *
 * Updates are queued as the JSON members after "update_id", which the fake
 * numbers from 1; getUpdates returns those at or after the offset, and an
 * offset confirms (drops) the ones before it. For benchmarks a backlog of
 * generated messages can stand in for a queue.
 *
 * Files: getFile answers a file_id added with tgapi_file_add() with its
 * file_path and size (an unknown one gets 400 "invalid file_id"), and
 * GET /file/bot<token>/<file_path> serves its bytes as
 * application/octet-stream, as the Bot API does (recorded as method
 * "file" with the path as the body). */
#ifndef HB_TESTS_FAKE_TELEGRAM_API_H
#define HB_TESTS_FAKE_TELEGRAM_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct tgapi;

#define TGAPI_BOT_ID 4242
#define TGAPI_BOT_USERNAME "hai_test_bot"

struct tgapi_call {
    char method[40];
    char *body;       /* the JSON body (or the form fields as JSON), heap */
    uint64_t at_ms;   /* loop time of arrival (uv_hrtime / 1e6) */
    int status;       /* what the fake answered */
    size_t photo_len; /* multipart "photo" part size, 0 when none */
    char photo_type[32];
};

/** A fake on loop (the test's), accepting `token`. NULL on failure. */
struct tgapi *tgapi_new(uv_loop_t *loop, const char *token);
/** A fake on its own thread (benchmarks); calls are counted, not recorded. */
struct tgapi *tgapi_thread_new(const char *token);
/** Close (loop fake: cb from the loop; thread fake: joins, cb may be NULL). */
void tgapi_close(struct tgapi *f, void (*cb)(void *data), void *data);
/** "http://127.0.0.1:PORT" (borrowed). */
const char *tgapi_base(const struct tgapi *f);

/** Queue an update: `members` is the JSON after "update_id", like
 *  "\"message\":{...}". Returns its update_id. */
int64_t tgapi_push(struct tgapi *f, const char *members);
/** Queue a whole update text as is (malformed ones too) under update_id id. */
void tgapi_push_raw(struct tgapi *f, int64_t id, const char *json);
/** Answer the next `count` calls of method with status and body. */
void tgapi_fail(struct tgapi *f, const char *method, int count, int status, const char *body);
/** Refuse with 400 "Bad Request: can't parse entities" every text sent
 *  with parse_mode that contains needle (NULL: stop refusing). */
void tgapi_refuse_markup(struct tgapi *f, const char *needle);
/** Answer polls at once with no updates, however long they ask to wait. */
void tgapi_empty_fast(struct tgapi *f, bool on);
/** Longest hold of a poll, ms (default 200 so closes are quick). */
void tgapi_hold_max(struct tgapi *f, uint64_t ms);
/** Bench: serve n generated "/help help" messages from nchats private chats. */
void tgapi_backlog(struct tgapi *f, int64_t n, int64_t nchats);
/** Of the backlog's chats (with nchats == n, one chat per update): how many
 *  got no sendMessage, and how many sendMessage calls beyond one each. */
void tgapi_backlog_tally(struct tgapi *f, int64_t *unanswered, int64_t *repeated);

/** Serve bytes (copied) as the file file_id at path (like "photos/file_0.jpg"). */
void tgapi_file_add(struct tgapi *f, const char *file_id, const char *path, const void *bytes,
                    size_t len);

/** Serve files only after ms milliseconds (0: at once). */
void tgapi_files_slow(struct tgapi *f, uint64_t ms);

/** Record every call (a fake on the test's loop always does; a thread fake
 *  only from this call on). A thread fake's calls are read once nothing
 *  calls it any more. */
void tgapi_record(struct tgapi *f, bool on);
/** Calls recorded so far, and one of them (borrowed). */
size_t tgapi_ncalls(const struct tgapi *f);
const struct tgapi_call *tgapi_call_at(const struct tgapi *f, size_t i);
/** How many calls of method arrived (any thread). */
size_t tgapi_count(const struct tgapi *f, const char *method);
/** Successful sends (sendMessage, editMessageText, sendPhoto) so far (any thread). */
uint64_t tgapi_sends(const struct tgapi *f);
/** The highest offset a poll confirmed. */
int64_t tgapi_confirmed(const struct tgapi *f);
/** CPU seconds the fake's own thread used (thread fake). */
double tgapi_cpu_s(const struct tgapi *f);
/** Connections the fake accepted so far (any thread). */
unsigned tgapi_connections(const struct tgapi *f);

#endif
