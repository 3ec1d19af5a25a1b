/* The approval queue's test fixture: an engine with the approval rules of
 * these tests, a router, and a host that records notices (the admins' and
 * the members'). Shared by test_approval.c and test_approval_cluster.c. */
#ifndef HB_TEST_APPROVAL_FIXTURE_H
#define HB_TEST_APPROVAL_FIXTURE_H

#include "bot/router.h"
#include "core/approval.h"
#include "core/generate.h"
#include "core/notify.h"
#include "tests/core/test_generate.h"

#define AH_MAX 16

struct ah_notice {
    struct notify_target to;
    char text[2048];
    size_t nbuttons;
    struct reply_button buttons[8];
    char labels[8][64]; /* the buttons' labels, copied */
};

struct ah {
    struct ah_notice n[AH_MAX];
    int count;
    /* When set: a notice holding probe_on reads probe_sql on db_path as it
     * arrives, into probed (the store as the member is told). */
    const char *probe_on, *probe_sql, *db_path;
    int64_t probed;
};

struct at {
    struct gt gt;
    struct ah host;
    struct router *router;
    struct catalog *cat; /* between at_stop and at_start */
};

void at_rules(struct approval_rules *r);
void at_init_with(struct at *at, const struct catalog_limits *limits);
void at_init(struct at *at);
void at_done(struct at *at);
void at_line(struct at *at, const char *user, bool admin, const char *line,
             struct reply_capture *cap);
void at_press(struct at *at, const char *user, bool admin, const char *chat, const char *ref,
              struct reply_capture *cap);
const struct ah_notice *at_notice(struct at *at, enum command_platform platform,
                                  char id[APPROVAL_ID_LEN + 1]);
const char *at_button(const struct ah_notice *n, const char *label);
double at_outcomes(const char *outcome);
int64_t at_pending(struct at *at, const char *user);
void at_held(struct at *at, struct reply_capture *cap, int before, char id[APPROVAL_ID_LEN + 1]);
/** at_held for a job whose place in the review queue is place. */
void at_held_at(struct at *at, struct reply_capture *cap, int before, int place,
                char id[APPROVAL_ID_LEN + 1]);
void at_hold(struct at *at, struct reply_capture *cap, const char *user, const char *model,
             const char *prompt, char id[APPROVAL_ID_LEN + 1]);
void at_hold_at(struct at *at, struct reply_capture *cap, const char *user, const char *model,
                const char *prompt, int place, char id[APPROVAL_ID_LEN + 1]);
const char *at_told(struct at *at, const char *user, const char *needle);

#endif
