/* One wallet across platforms: a member's identities joined to one wallet.
 *
 * An identity is "<platform>:<user id>" (the name of its own wallet
 * account). /link on one platform gives the member a one-time code;
 * /link CODE on another platform links that second identity to the wallet
 * of the first (the code's creator's wallet survives). The second
 * identity's own wallet gives its whole available balance to the surviving
 * wallet in one ledger transfer (kind transfer, tag "link"); what it has
 * reserved stays there until settled. From then on every command of the
 * linked identity spends the surviving wallet. /unlink takes the identity
 * back to its own wallet (the money stays); a wallet's holder unlinking
 * releases every identity linked into it.
 *
 * Links are kept durably in the store (store_txn_link_*) and all of them
 * in memory (loaded at start with link_dir_load), so resolving a member's
 * wallet costs no store round trip. Open codes are kept in the store,
 * hashed (never the code itself), so a code made through one daemon of a
 * shared ledger is taken through any other, and a restart keeps it. A
 * code is LINK_CODE_LEN characters from an alphabet without look-alikes,
 * lives LINK_CODE_TTL_MS, is used once, and a member may try
 * LINK_TRIES_MAX codes per LINK_TRIES_WINDOW_MS (counted in the store too,
 * from the member's first try of the window).
 *
 * Welcome bonuses: a linked identity's own wallet is opened (without a
 * bonus) when it links, so it never gets one later; one linked into a
 * wallet spends that wallet, which got its bonus when it opened. */
#ifndef HB_LINK_H
#define HB_LINK_H

#include "core/command.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;

#define LINK_CODE_LEN 8
#define LINK_CODE_ALPHABET "ABCDEFGHJKMNPQRSTUVWXYZ23456789" /* no 0/O, 1/I/L */
#define LINK_CODE_TTL_MS (10 * 60 * 1000)                    /* a code lives 10 minutes */
#define LINK_TRIES_MAX 5                                     /* codes tried per member ... */
#define LINK_TRIES_WINDOW_MS (10 * 60 * 1000)                /* ... per 10 minutes */
#define LINK_CODES_MAX 10000     /* open codes held before new ones are refused */
#define LINK_IDENTITY_MAX 160    /* "<platform>:<user id>", NUL included */
#define LINK_TRANSFER_TAG "link" /* the tag of the balance moved by a link */

/** The links and open codes in memory. */
struct link_dir;

/** An empty directory; NULL when out of memory. */
struct link_dir *link_dir_new(void);

/** Release it (d may be NULL). */
void link_dir_free(struct link_dir *d);

/** Read every link from the store into core->links (made here when NULL);
 *  cb(rc, data) once done (cb may be NULL; failures are logged). Returns
 *  0 (cb follows) or a negative code. */
int link_dir_load(struct core *core, void (*cb)(int rc, void *data), void *data);

/** Read the links again on a shared ledger: links and unlinks another
 *  daemon made replace what this one holds (except identities it is
 *  linking itself). The cluster's heartbeat calls it (bot/generation.c).
 *  Returns 0 or a negative code. */
int link_dir_refresh(struct core *core);

/** The wallet account identity spends when linked (borrowed until the next
 *  link change), or NULL when it spends its own. */
const char *link_wallet(const struct core *core, const char *identity);

/** The wallet account "<platform>:<user>" spends (its own, or the one it
 *  is linked to) into buf. Returns 0 or HB_EINVAL. */
int link_wallet_name(const struct core *core, const char *platform, const char *user, char *buf,
                     size_t cap);

/** How many identities are linked into wallet (other than its holder). */
size_t link_count_into(const struct core *core, const char *wallet);

/** Completion of link_code_new: rc 0 with the code (borrowed for the
 *  call), or HB_EBUSY when LINK_CODES_MAX codes are open, HB_ECONFLICT
 *  when the code drawn is open already (vanishingly rare: ask again), or
 *  a storage error (code NULL). */
typedef void (*link_code_new_cb)(int rc, const char *code, void *data);

/** A new code for identity, replacing an open one of theirs, kept in the
 *  store (hashed). Codes are hashed on libuv's thread pool, one at a time
 *  in the order they came (new, taken and voided alike), then written.
 *  Returns 0 (cb follows once it is durable), or HB_ECANCELED (no links
 *  or ledger), HB_ENOMEM, HB_EIO (no randomness). */
int link_code_new(struct core *core, const char *identity, link_code_new_cb cb, void *data);

/** What link_code_take found. */
enum link_code_result {
    LINK_CODE_OK,      /* creator holds the code's creator */
    LINK_CODE_WRONG,   /* no such code (or already used) */
    LINK_CODE_EXPIRED, /* the code's time passed */
    LINK_CODE_LIMITED, /* too many tries: *retry_ms says how long to wait */
};

/** Completion of link_code_take: rc 0 or a storage error; r what was
 *  found; creator (borrowed) with LINK_CODE_OK; retry_ms how long to wait
 *  with LINK_CODE_LIMITED. */
typedef void (*link_code_take_cb)(int rc, enum link_code_result r, const char *creator,
                                  int64_t retry_ms, void *data);

/** Use identity's try of text (case, spaces and dashes ignored): counts a
 *  try (in the store, so every daemon of a shared ledger counts the same
 *  tries), and takes the code away (single use) whatever the outcome,
 *  unless the member had no tries left. Returns 0 (cb follows, also with
 *  the store's error), or HB_ECANCELED / HB_ENOMEM (no callback). */
int link_code_take(struct core *core, const char *identity, const char *text, link_code_take_cb cb,
                   void *data);

/** Void the open code text without counting a try (it was shown where
 *  others read it). */
void link_code_void(struct core *core, const char *text);

/** Why a link may not be made. */
enum link_refusal {
    LINK_OK,
    LINK_SELF,          /* the same identity */
    LINK_SAME_PLATFORM, /* the wallet has an identity on the joiner's platform */
    LINK_JOINER_LINKED, /* the joiner is linked already */
    LINK_JOINER_HOLDS,  /* identities are linked into the joiner's wallet */
    LINK_BUSY,          /* a link of one of them is being written */
};

/** May joiner be linked to creator's wallet? The surviving wallet goes to
 *  wallet (cap bytes). */
enum link_refusal link_check(const struct core *core, const char *joiner, const char *creator,
                             char *wallet, size_t cap);

/** When link_check said LINK_BUSY: cb(data) once no link of a nor b is
 *  being written any more (the one under way was written or failed; at
 *  once when neither is), to check again. Returns 0 (cb follows) or a
 *  negative code. */
int link_when_idle(struct core *core, const char *a, const char *b, void (*cb)(void *data),
                   void *data);

/** Completion of link_join: rc 0 once linked durably; moved is the
 *  available balance the joiner's own wallet gave over, held what it keeps
 *  reserved for work in progress. */
typedef void (*link_join_cb)(int rc, int64_t moved, int64_t held, void *data);

/** Link joiner to wallet (link_check said yes): open the joiner's own
 *  wallet without a bonus, move its available balance to wallet as the
 *  transfer "link:<joiner>:<event>" and write the link in the same
 *  transaction. event names the causing event. Returns 0 (cb follows) or
 *  a negative code. */
int link_join(struct core *core, const char *joiner, const char *wallet, const char *event,
              link_join_cb cb, void *data);

/** Completion of link_unlink: rc 0 once durable; n identities unlinked,
 *  named in ids (borrowed for the call). */
typedef void (*link_unlink_cb)(int rc, size_t n, const char *const *ids, void *data);

/** Unlink identity: when it is linked, it alone; when it holds a wallet
 *  others are linked into, all of them. n is 0 when there was nothing to
 *  unlink. Returns 0 (cb follows) or a negative code. */
int link_unlink(struct core *core, const char *identity, link_unlink_cb cb, void *data);

/** The identity of an invocation's member into buf. Returns 0 or HB_EINVAL. */
int link_identity(const struct invocation *inv, char *buf, size_t cap);

#endif
