/* The command handlers, one per command (core/cmd_*.c). Private to core/:
 * everything else reaches them through the command table. */
#ifndef HB_HANDLERS_H
#define HB_HANDLERS_H

#include "core/commands.h"

void cmd_help(struct core *core, struct invocation *inv);
void cmd_start(struct core *core, struct invocation *inv);
void cmd_balance(struct core *core, struct invocation *inv);
void cmd_history(struct core *core, struct invocation *inv);
void cmd_history_button(struct core *core, struct invocation *inv);
void cmd_usage(struct core *core, struct invocation *inv);
void cmd_deposit(struct core *core, struct invocation *inv);
void cmd_pool(struct core *core, struct invocation *inv);
void cmd_leaderboard(struct core *core, struct invocation *inv);
/* The gallery of a server or group (core/cmd_gallery.c). */
void cmd_gallery(struct core *core, struct invocation *inv);
void cmd_gallery_button(struct core *core, struct invocation *inv);
void cmd_trending(struct core *core, struct invocation *inv);
void cmd_profile(struct core *core, struct invocation *inv);
void cmd_earnings(struct core *core, struct invocation *inv);
void cmd_admin_grant(struct core *core, struct invocation *inv);
void cmd_admin_revoke(struct core *core, struct invocation *inv);
void cmd_admin_pool_grant(struct core *core, struct invocation *inv);
void cmd_admin_pool_limit(struct core *core, struct invocation *inv);
void cmd_admin_pool_policy(struct core *core, struct invocation *inv);
void cmd_admin_model_enable(struct core *core, struct invocation *inv);
void cmd_admin_model_disable(struct core *core, struct invocation *inv);
void cmd_admin_stats(struct core *core, struct invocation *inv);
void cmd_admin_reload(struct core *core, struct invocation *inv);
void cmd_admin_feature(struct core *core, struct invocation *inv);
void cmd_admin_revenue(struct core *core, struct invocation *inv);
void cmd_notify(struct core *core, struct invocation *inv);

/* Contests (core/cmd_contest.c). */
void cmd_contest(struct core *core, struct invocation *inv);
void cmd_admin_contest_start(struct core *core, struct invocation *inv);
void cmd_admin_contest_stop(struct core *core, struct invocation *inv);

/* One wallet across platforms (core/cmd_link.c). */
void cmd_link(struct core *core, struct invocation *inv);
void cmd_unlink(struct core *core, struct invocation *inv);

/* Oversight and support (core/cmd_audit.c). */
void cmd_admin_audit(struct core *core, struct invocation *inv);
void cmd_admin_audit_button(struct core *core, struct invocation *inv);
void cmd_admin_member(struct core *core, struct invocation *inv);
void cmd_admin_payments_unmatched(struct core *core, struct invocation *inv);
void cmd_admin_payments_assign(struct core *core, struct invocation *inv);

/* The approval queue (core/cmd_approval.c). */
void cmd_admin_approvals(struct core *core, struct invocation *inv);
void cmd_admin_approve(struct core *core, struct invocation *inv);
void cmd_admin_reject(struct core *core, struct invocation *inv);
void cmd_admin_edit(struct core *core, struct invocation *inv);
void cmd_admin_approval_button(struct core *core, struct invocation *inv);

/* Generation (core/cmd_generate.c). */
void cmd_chat(struct core *core, struct invocation *inv);
void cmd_imagine(struct core *core, struct invocation *inv);
void cmd_new(struct core *core, struct invocation *inv);
void cmd_forget(struct core *core, struct invocation *inv);
void cmd_models(struct core *core, struct invocation *inv);
void cmd_models_button(struct core *core, struct invocation *inv);
void cmd_model(struct core *core, struct invocation *inv);
void cmd_generate_button(struct core *core, struct invocation *inv);

/* Personas (core/cmd_persona.c). */
void cmd_persona(struct core *core, struct invocation *inv);
void cmd_persona_button(struct core *core, struct invocation *inv);
void cmd_admin_persona_set(struct core *core, struct invocation *inv);
void cmd_admin_persona_clear(struct core *core, struct invocation *inv);
void cmd_admin_plaintalk(struct core *core, struct invocation *inv);

/* API keys (core/cmd_apikey.c). */
void cmd_apikey_create(struct core *core, struct invocation *inv);
void cmd_apikey_list(struct core *core, struct invocation *inv);
void cmd_apikey_revoke(struct core *core, struct invocation *inv);

#endif
