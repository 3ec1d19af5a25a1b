/* Config reloads in the audit trail: which keys changed, never a value. */
#ifndef HB_CONFIG_AUDIT_H
#define HB_CONFIG_AUDIT_H

#include "bot/config.h"

#include <stdbool.h>
#include <stddef.h>

struct store;

/** Record one "config.reload" entry (actor "config", subject "bot.conf")
 *  naming each changed key as `section.key` or `section "instance".key`
 *  (an added or removed instance as `.(added)` / `.(removed)`), and whether
 *  a restart is needed. Values are never read: some are secrets. Nothing is
 *  recorded for no change. Returns 0, or what audit_record returned (the
 *  failure is logged too). */
int config_changes_audit(struct store *store, const struct config_change *changes, size_t n,
                         bool restart_required);

#endif
