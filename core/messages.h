/* Every text a member sees in a reply, in one place.
 *
 * Each reply is a named macro that expands to a string literal, so the call
 * sites keep passing literal format strings and -Wformat=2 keeps checking
 * every argument against its conversion specifiers. Names are
 * MSG_<AREA>_<WHAT>, grouped by command below.
 *
 * The texts are what members see today, byte for byte; tests assert on them.
 * Change a text here, not at its call site. A new text is also listed in
 * tests/core/test_messages.c, which checks every entry.
 *
 * Next step: a [messages] section in bot.conf that overrides these defaults
 * by name, each override validated at load against the default's conversion
 * specifiers (same count, order and types), so an operator's wording can
 * never break a format call. Log event names and log fields are not replies
 * and do not belong here; neither do the command table's help descriptions. */
#ifndef HB_CORE_MESSAGES_H
#define HB_CORE_MESSAGES_H

/* ---- Shared by the member commands -------------------------------------- */

#define MSG_COMMON_OUT_OF_MEMORY "The bot is out of memory; please try again later."
/* The bot's name when bot.conf does not give one (/start, /help). */
#define MSG_COMMON_BOT_NAME "HAI Bot"
/* Periods /usage and /admin stats report on, as they read after "the
 * last". */
#define MSG_PERIOD_DAY "day"
#define MSG_PERIOD_WEEK "7 days"
#define MSG_PERIOD_MONTH "30 days"
#define MSG_PERIOD_YEAR "year"
/* %s: the model name asked for (/admin model, /chat, /imagine). */
#define MSG_COMMON_NO_SUCH_MODEL "There is no model called \"%s\". See /models for the list."

/* ---- Credits: /start /balance /history /usage /deposit /pool ------------- */

/* %s: the error. */
#define MSG_CREDITS_FAILED "Sorry, that did not work (%s). Nothing was charged; please try again."
/* %s: the bonus in credits. */
#define MSG_CREDITS_WELCOME_BONUS                                                                  \
    "Welcome! Your wallet is open and holds a welcome bonus of %s credits.\n"
#define MSG_CREDITS_WELCOME "Welcome! Your wallet is open.\n"
/* %s: whose balance ("Your wallet", "This group's pool"); %s: credits available. */
#define MSG_CREDITS_BALANCE_LINE "%s: %s credits available"
/* %s: credits in total; %s: credits reserved. */
#define MSG_CREDITS_BALANCE_HELD " (%s in total, %s reserved for work in progress)"
#define MSG_CREDITS_YOUR_WALLET "Your wallet"
#define MSG_CREDITS_GROUP_POOL "This group's pool"

/* %s: the bot's name. */
#define MSG_START_WELCOME_BACK "Welcome back to %s.\n"
/* %s: the platform; %s: the member's id there; %s: again the platform; %s: again the id. An
 * operator needs it for bot.conf ([telegram] admins, [access] lists). */
#define MSG_START_YOUR_ID "Your %s user id is %s (in bot.conf's [access] lists: %s:%s).\n"
#define MSG_START_HOW_CREDITS_WORK                                                                 \
    "\nHow credits work: every generation (/chat, /imagine) costs credits, shown before "          \
    "it runs. The bot reserves the most it could cost, charges what the work really "              \
    "used, and refunds the rest; a failed generation costs nothing.\n"                             \
    "/balance shows your credits, /history your transfers, /usage your spending, "                 \
    "/deposit how to top up, and /help everything else."

#define MSG_BALANCE_POOL_EMPTY "This group's pool: empty (admins fund it with /admin pool grant)\n"
/* %s: credits owed on debt:<wallet>. */
#define MSG_CREDITS_DEBT                                                                           \
    "You owe %s credits: a refund took back credits you had already spent. Your next "             \
    "deposits repay it first.\n"
/* %s: credits owed on debt:<pool>. */
#define MSG_CREDITS_POOL_DEBT                                                                      \
    "This group's pool owes %s credits: a refund took back credits it had already spent. Its "     \
    "next deposits repay it first.\n"
#define MSG_HISTORY_DEBT_REPAID "debt repaid"

/* %s: when; %s: amount; %s: what for. */
#define MSG_HISTORY_RESERVED "%s  %s reserved for a %s"
/* %s: when; %s: what for; %s: MSG_HISTORY_EXPIRED or "". */
#define MSG_HISTORY_RELEASED "%s  reservation released (%s)%s"
#define MSG_HISTORY_EXPIRED ", it expired"
/* %s: when; %s: "+" or "-"; %s: amount; %s: what for. */
#define MSG_HISTORY_ENTRY "%s  %s%s  %s"
/* %s: the transfer's tag. */
#define MSG_HISTORY_TAG " (%s)"
#define MSG_HISTORY_NONE "No transfers yet."
#define MSG_HISTORY_NO_OLDER "No older transfers."
/* %lld: the page number, from 1. */
#define MSG_HISTORY_HEADER "Your transfers, newest first (page %lld):\n"
#define MSG_HISTORY_BUTTON_NEWER "Newer"
#define MSG_HISTORY_BUTTON_OLDER "Older"
#define MSG_HISTORY_BUTTON_NOT_YOURS "That button belongs to someone else's /history."
#define MSG_HISTORY_BUTTON_EXPIRED "This button is no longer active. Try /history."

/* %s: the period. */
#define MSG_USAGE_NONE "No generations in the last %s."
/* %s: the period. */
#define MSG_USAGE_HEADER "Your spending in the last %s:\n"
/* %s: day; %s: model tag; %lld: count; %s: "s" or ""; %s: credits. */
#define MSG_USAGE_LINE "%s  %s: %lld generation%s, %s credits\n"
/* Shown for a generation recorded without a model tag. */
#define MSG_USAGE_NO_TAG "(model)"
/* %lld: count; %s: "s" or ""; %s: credits. */
#define MSG_USAGE_TOTAL "Total: %lld generation%s, %s credits."
/* /usage chart. %s: the period. */
#define MSG_USAGE_CHART_TITLE "Your spending per day and model, last %s"
#define MSG_USAGE_CHART_CAPTION "Your spending in the last %s, per day and model.\n"
/* /admin stats chart. %s: MSG_STATS_SCOPE_POOL or MSG_STATS_SCOPE_BOT; %s: the period. */
#define MSG_STATS_CHART_TITLE "%s: spending per day and model, last %s"
/* A chart that could not be drawn. %s: why. */
#define MSG_CHART_FAILED "The chart could not be drawn (%s)."

#define MSG_DEPOSIT_NOT_SET_UP                                                                     \
    "No payment method is set up on this bot yet. An admin can add credits to "                    \
    "your wallet with /admin grant."
#define MSG_DEPOSIT_POOL_HINT                                                                      \
    "\nThis group's pool is also funded by its admins with /admin pool grant; "                    \
    "/pool shows it."

#define MSG_POOL_EMPTY "This group's pool is empty.\n"
/* %s: MSG_POOL_POLICY_POOL_FIRST or MSG_POOL_POLICY_WALLET_FIRST. */
#define MSG_POOL_WHO_SPENDS "Who spends it: every member here, %s.\n"
#define MSG_POOL_POLICY_POOL_FIRST "before their own wallet (pool first)"
#define MSG_POOL_POLICY_WALLET_FIRST "once their own wallet is empty (wallet first)"
/* %s: credits per day. */
#define MSG_POOL_DAILY_CAP "Daily cap: %s credits per day."
#define MSG_POOL_NO_DAILY_CAP "Daily cap: none."
#define MSG_POOL_NOT_HERE                                                                          \
    "Pools belong to servers and groups: use /pool there. Here you spend your "                    \
    "own wallet (/balance)."

/* ---- Admin: /admin reload, grant, revoke, pool, model ------------------- */

#define MSG_ADMIN_RELOAD_UNAVAILABLE "Reloading is not available here."
/* %s: the error. */
#define MSG_ADMIN_FAILED "That did not work (%s); nothing was moved."
/* %s: credits; %s: the member; %s: credits now available. */
#define MSG_ADMIN_GRANTED "Granted %s credits to %s. Their wallet now has %s available."
/* %s: credits; %s: the member; %s: credits now available. */
#define MSG_ADMIN_REVOKED "Revoked %s credits from %s. Their wallet now has %s available."
/* In a group the confirmation names what moved and to whom; the member's
 * balance is the admin's alone (MSG_ADMIN_WALLET_NOW, an aside).
 * %s: credits; %s: the member. */
#define MSG_ADMIN_GRANTED_HERE "Granted %s credits to %s."
/* %s: credits; %s: the member. */
#define MSG_ADMIN_REVOKED_HERE "Revoked %s credits from %s."
/* %s: the member; %s: credits now available. */
#define MSG_ADMIN_WALLET_NOW "%s's wallet now has %s credits available."
/* %s: credits; %s: credits now available. */
#define MSG_ADMIN_POOL_GRANTED "Added %s credits to this group's pool. It now has %s available."
/* %s: the member; %s: credits asked for. */
#define MSG_ADMIN_REVOKE_SHORT                                                                     \
    "%s does not have %s credits available; nothing was revoked. /admin revoke "                   \
    "takes at most what is available."
/* The same refusal in a group, without the amount the member lacks.
 * %s: the member. */
#define MSG_ADMIN_REVOKE_SHORT_HERE                                                                \
    "%s does not have that many credits available; nothing was revoked. /admin revoke takes "      \
    "at most what is available."
/* A member reference that names nobody the bot knows (core/member.h).
 * Telegram: %s: the name as written; %s: the command ("admin grant");
 * %s: the amount as written. */
#define MSG_ADMIN_MEMBER_UNKNOWN_TELEGRAM                                                          \
    "I don't know %s yet: reply to one of their messages with /%s %s, or use their "               \
    "numeric id. Nothing was moved."
/* Discord: %s: the name as written. */
#define MSG_ADMIN_MEMBER_UNKNOWN_DISCORD                                                           \
    "I don't know %s: pick the member in the command's member option, or mention them. "           \
    "Nothing was moved."
/* Console: %s: the name as written; %s: the console's own user. */
#define MSG_ADMIN_MEMBER_UNKNOWN_CONSOLE                                                           \
    "I don't know %s: the console's one member is you (%s). Members of Discord and "               \
    "Telegram are named there. Nothing was moved."
/* %s: the field that differs. */
#define MSG_ADMIN_CONFLICT "This request was already handled with other values (%s)."
#define MSG_ADMIN_POOL_NOT_HERE "Pools belong to servers and groups: run this there."
/* How grant replies name a group's pool. */
#define MSG_ADMIN_POOL_SHOWN "this group's pool"
/* %s: the error. */
#define MSG_ADMIN_NOT_SAVED "The setting could not be saved (%s)."
/* %s: MSG_ADMIN_POLICY_POOL_FIRST or MSG_ADMIN_POLICY_WALLET_FIRST. */
#define MSG_ADMIN_POLICY_SET "This group's members now spend %s."
#define MSG_ADMIN_POLICY_POOL_FIRST "the pool first, then their own wallet"
#define MSG_ADMIN_POLICY_WALLET_FIRST "their own wallet first, then the pool"
/* %s: credits a day. */
#define MSG_ADMIN_CAP_SET "This group's pool may now spend at most %s credits a day."
#define MSG_ADMIN_CAP_REMOVED "This group's pool has no daily cap now."
/* %s: the model. */
#define MSG_ADMIN_MODEL_ENABLED "%s is available in this group again (as bot.conf allows)."
/* %s: the model. */
#define MSG_ADMIN_MODEL_DISABLED "%s is turned off in this group."
#define MSG_ADMIN_MODEL_NOT_HERE "Models are switched per server or group: run this there."
#define MSG_ADMIN_NOT_SAVED_RETRY "The setting could not be saved; please try again."

/* ---- /admin audit, /admin member, /admin payments ----------------------- */

/* %lld: the page, from 1. */
#define MSG_AUDIT_HEADER "Audit trail, newest first (page %lld):\n"
/* %s: the member, action or subject asked for; %lld: the page. */
#define MSG_AUDIT_HEADER_FOR "Audit trail for %s, newest first (page %lld):\n"
/* %s: the entry's number; %s: when; %s: who; %s: what; %s: to what. The
 * entry's details follow on the same line. */
#define MSG_AUDIT_ENTRY "#%s %s  %s  %s  %s"
#define MSG_AUDIT_NONE "The audit trail has no entries for this."
#define MSG_AUDIT_NO_OLDER "There are no older audit entries."
#define MSG_AUDIT_BUTTON_NEWER "Newer"
#define MSG_AUDIT_BUTTON_OLDER "Older"
#define MSG_AUDIT_BUTTON_EXPIRED "This button is no longer active. Try /admin audit."
/* %s: why. */
#define MSG_AUDIT_FAILED "The audit trail could not be read (%s)."
/* %s: the member as named; %s: their wallet account. */
#define MSG_MEMBER_HEADER "%s (%s)\n"
/* %s: available; %s: posted; %s: reserved. */
#define MSG_MEMBER_BALANCE "Wallet: %s credits available (%s posted, %s reserved).\n"
#define MSG_MEMBER_RESERVATIONS "Open reservations:\n"
#define MSG_MEMBER_TRANSFERS "Recent transfers:\n"
#define MSG_MEMBER_NO_TRANSFERS "No transfers yet.\n"
/* %lld: how many; %s: credits they cost. */
#define MSG_MEMBER_GENERATIONS "Generations in the last 30 days: %lld, costing %s credits.\n"
/* %s: the model; %lld: how many; %s: credits. */
#define MSG_MEMBER_MODEL "  %s: %lld, %s credits\n"
/* %s: the member as named. */
#define MSG_MEMBER_UNKNOWN "I know no member %s here; nothing was looked up or moved."
/* %s: the member as named. */
#define MSG_MEMBER_NO_WALLET "%s has no wallet yet."
/* %s: why. */
#define MSG_MEMBER_FAILED "The member's figures could not be read (%s)."
#define MSG_PAYMENTS_UNMATCHED_HEADER "Payments that named no member (id, then what was seen):\n"
/* %s: "hedera:" or ""; %s: the rest of the id; %s: what the payment said. */
#define MSG_PAYMENTS_UNMATCHED_ENTRY "%s%s  %s\n"
#define MSG_PAYMENTS_UNMATCHED_NONE "No unmatched payments."
#define MSG_PAYMENTS_UNMATCHED_HINT                                                                \
    "Credit one to a member with /admin payments assign <id> <member> [credits]."
/* %s: the id given. */
#define MSG_PAYMENTS_UNKNOWN "No unmatched payment has the id %s; see /admin payments unmatched."
/* %s: the payment; %s: the account it went to. */
#define MSG_PAYMENTS_ALREADY "Payment %s was already assigned to %s; nothing was credited again."
#define MSG_PAYMENTS_ANOTHER_MEMBER "another member"
/* %s: the payment; %s: the payment again, for the example. */
#define MSG_PAYMENTS_NEED_CREDITS                                                                  \
    "Payment %s does not say how many credits it buys; give them: /admin payments assign %s "      \
    "<member> <credits>."
/* %s: the payment; %s: the member; %s: credits. */
#define MSG_PAYMENTS_ASSIGNED "Assigned payment %s to %s: %s credits credited."
/* %s: why. */
#define MSG_PAYMENTS_FAILED "The payment could not be assigned (%s); nothing was credited."

/* ---- The router: what it answers itself, before any handler runs -------- */

/* %s: the command typed; %s: the closest command. */
#define MSG_ROUTER_UNKNOWN_SUGGEST "Unknown command /%s. Did you mean /%s? Type /help for the list."
/* %s: the command typed. */
#define MSG_ROUTER_UNKNOWN "Unknown command /%s. Type /help for the list."
#define MSG_ROUTER_SHUTTING_DOWN "The bot is shutting down; please try again in a moment."
#define MSG_ROUTER_BUTTON_INACTIVE "This button is no longer active."
/* %s: the command. */
#define MSG_ROUTER_ADMINS_ONLY "Only admins can use /%s."
/* %s: the platform; %s: the member's id there (as [access] lists write it). */
#define MSG_ROUTER_BLOCKED "Sorry, you may not use this bot here. Your id is %s:%s."
/* %s: the platform; %s: the member's id there. */
#define MSG_ROUTER_NO_DMS                                                                          \
    "This bot does not answer direct messages; use it in a server or group. Your id is %s:%s."

/* %s: the feature ("images"). */
#define MSG_ROUTER_FEATURE_OFF "%s is switched off here."
/* %s: the feature. */
#define MSG_ROUTER_FEATURE_OFF_GLOBAL "%s is switched off on this bot."

/* ---- Trending models and creator standing (/trending, /profile) ----------- */

#define MSG_TREND_HEAD "Trending models this week (since Monday, UTC), by generations:"
#define MSG_TREND_HERE "\nHere:"
#define MSG_TREND_OVERALL "\nOn the whole bot:"
/* %zu: rank; %s: the model; %lld, %s: generations and the plural's "s". */
#define MSG_TREND_ROW "\n  %zu. %s: %lld generation%s"
#define MSG_TREND_NOTHING "\n  none yet"
/* %s: why. */
#define MSG_TREND_FAILED "The trending models could not be read (%s)."
#define MSG_PROFILE_NOT_HERE "Standing is kept per server or group: run /profile there."
/* %s: why. */
#define MSG_PROFILE_FAILED "The profile could not be read (%s)."
/* %s: the member; MSG_PROFILE follows. */
#define MSG_PROFILE_HEAD "%s in this group:\n"
/* Generations made (week, all), upvotes received (week, all) and rank by
 * upvotes (week, all), each a number or one of the fragments below. */
#define MSG_PROFILE                                                                                \
    "Generations made: %s this week, %s in all.\nUpvotes received: %s this week, %s in "           \
    "all.\nRank by upvotes: %s this week, %s in all."
/* After MSG_PROFILE: contest placings among the paid winners and prize
 * credits won, all time, each a number or MSG_PROFILE_UNKNOWN. */
#define MSG_PROFILE_CONTESTS "\nContest wins: %s in all. Prizes won: %s credits in all."
#define MSG_PROFILE_UNKNOWN "not among the top 100"
/* %zu: the member's rank; %zu: creators ranked. */
#define MSG_PROFILE_RANK "#%zu of %zu"
#define MSG_PROFILE_RANK_NONE "none yet"
#define MSG_PROFILE_RANK_OUTSIDE "outside the top 100"

/* ---- Revenue shares (/earnings, /admin revenue) ---------------------------- */

/* %lld: credits this week; %lld: credits in all; %lld, %s: shares and the plural's "s". */
#define MSG_EARNINGS                                                                               \
    "Revenue shares credited to your wallet: %lld credits this week (since Monday, UTC), %lld in " \
    "all, from %lld share%s."
/* As MSG_EARNINGS, over the wallet's newest transfers only. */
#define MSG_EARNINGS_RECENT                                                                        \
    "Revenue shares credited to your wallet: %lld credits this week (since Monday, UTC), %lld in " \
    "its newest 5,000 transfers, from %lld share%s."
#define MSG_EARNINGS_NONE                                                                          \
    "No revenue shares have been credited to your wallet: they come from the operator's "          \
    "[revenue] shares that name it."
#define MSG_EARNINGS_NONE_RECENT                                                                   \
    "No revenue shares were credited to your wallet within its newest 5,000 transfers."
/* Holder payouts (core/holders.h), after MSG_EARNINGS or alone. %lld: credits this week;
 * %lld: credits in all; %lld, %s: payouts and the plural's "s". */
#define MSG_EARNINGS_HOLDERS                                                                       \
    "Holder payouts credited to your wallet: %lld credits this week (since Monday, UTC), %lld in " \
    "all, from %lld payout%s."
/* %s: why. */
#define MSG_EARNINGS_FAILED "Your earnings could not be read (%s)."

#define MSG_REVENUE_NONE                                                                           \
    "No revenue shares are set up on this bot: every credit spent goes to system:revenue."
#define MSG_REVENUE_NOT_HERE "Revenue shares are adjusted per server or group: run this there."
#define MSG_REVENUE_FIXED "The operator has fixed every share: none can be adjusted here."
/* The split's header; then one MSG_REVENUE_LINE per share. */
#define MSG_REVENUE_HEAD "Revenue shares of every credit spent here:"
/* %s: the account as configured; %s: its part ("25%"); %s: MSG_REVENUE_RANGE or "". */
#define MSG_REVENUE_LINE "\n  %s %s%s"
/* %s: lowest part; %s: highest part. */
#define MSG_REVENUE_RANGE " (adjustable here, %s to %s)"
/* %s: the remainder account; %s: this group ("discord:123"). */
#define MSG_REVENUE_TAIL "\nRounding leftovers go to %s. <scope> is this group (%s)."
/* %s: the remainder account. */
#define MSG_REVENUE_TAIL_PRIVATE                                                                   \
    "\nRounding leftovers go to %s; so do the <scope> shares here, where there is no group."
#define MSG_REVENUE_OVERRIDDEN                                                                     \
    "\nThis group's own split is in effect; /admin revenue reset returns to the operator's."
/* %s: an example account; %s: the adjustable shares' sum. */
#define MSG_REVENUE_HOWTO                                                                          \
    "\nTo adjust: /admin revenue %s 30%% ... (the adjustable shares keep adding up to %s)."
/* %s: why the override was refused. */
#define MSG_REVENUE_BAD "That split cannot be used here: %s. /admin revenue shows the shares."
/* Said before the split (MSG_REVENUE_HEAD ...) after a change. */
#define MSG_REVENUE_SAVED "Saved."
#define MSG_REVENUE_RESET "This group uses the operator's split again."

/* ---- Feature switches and member notices -------------------------------- */

#define MSG_FEATURE_NOT_HERE "Features are switched per server or group: run this there."
/* %s: the feature; %s: on or off. */
#define MSG_FEATURE_SET "%s is now %s in this group."
/* %s: the feature; %s: on or off; then why it does not matter. */
#define MSG_FEATURE_SET_GLOBAL_OFF                                                                 \
    "%s is now %s in this group, but the operator has switched it off for the whole bot."
/* %s: the feature; %s: on or off here; %s: on or off for the bot. */
#define MSG_FEATURE_STATE "%s is %s in this group (%s for the whole bot)."
#define MSG_NOTIFY_ON                                                                              \
    "Notices are on: I tell you when your balance runs low and when your images are upvoted."
#define MSG_NOTIFY_OFF                                                                             \
    "Notices are off: no low-balance or upvote notices. /notify on turns them back on."
/* %s: the wallet's credits; %s: the threshold. */
#define MSG_NOTICE_LOW_WALLET                                                                      \
    "Your wallet is running low: %s credits left (below %s). Top up with /deposit. "               \
    "/notify off stops these notices."
/* %s: the pool's credits; %s: the threshold. */
#define MSG_NOTICE_LOW_POOL                                                                        \
    "This group's pool is running low: %s credits left (below %s). Admins can top it up "          \
    "with /deposit here or /admin pool grant."
/* %s: how many upvotes. */
#define MSG_NOTICE_UPVOTES "Your images got %s new upvote%s. /notify off stops these notices."

/* ---- Options: why a command's options were refused ---------------------- */

/* %s: the option; %.40s: what was typed. */
#define MSG_OPTION_NOT_INTEGER "Option `%s` must be a whole number (got \"%.40s\")."
/* %s: the option; %.40s: what was typed. */
#define MSG_OPTION_NOT_BOOLEAN "Option `%s` must be yes or no (got \"%.40s\")."
/* %s: the option; %.40s: what was typed. */
#define MSG_OPTION_NOT_USER                                                                        \
    "Option `%s` must name a member: a mention, @username, a numeric user id or a user name, "     \
    "without a platform in front (got \"%.40s\")."
/* %s: the option; %s: its description; %s: the command's example. */
#define MSG_OPTION_MISSING "Missing `%s`: %s. Example: %s"
/* %s: the option. */
#define MSG_OPTION_WRONG_TYPE "Option `%s` has the wrong type."
/* %s: the option; %lld: minimum; %lld: maximum; %lld: the value given. */
#define MSG_OPTION_OUT_OF_RANGE "Option `%s` must be between %lld and %lld (got %lld)."
/* %s: the option; %lld: the minimum length. */
#define MSG_OPTION_TOO_SHORT "Option `%s` must be at least %lld characters long."
/* %s: the option; %zu: its length; %lld: the limit. */
#define MSG_OPTION_TOO_LONG "Option `%s` is %zu characters long; the limit is %lld."
/* %s: the option; %s: the choices, comma-separated. */
#define MSG_OPTION_NOT_A_CHOICE "Option `%s` must be one of: %s."
/* %.60s: the extra words; %s: the command; %s: the command's example. */
#define MSG_OPTION_TOO_MANY_WORDS "Too many words: \"%.60s\" is not an option of /%s. Example: %s"

/* ---- /help --------------------------------------------------------------- */

/* What each option type reads as in "/help <command>". */
#define MSG_HELP_TYPE_TEXT "text"
#define MSG_HELP_TYPE_NUMBER "number"
#define MSG_HELP_TYPE_YES_NO "yes/no"
#define MSG_HELP_TYPE_MEMBER "member"
#define MSG_HELP_TYPE_VALUE "value"
/* Appended to an admin command's description. */
#define MSG_HELP_ADMINS_ONLY " (admins only)"
/* %s: option; %s: type; %s: MSG_HELP_OPTIONAL or ""; %s: description. */
#define MSG_HELP_OPTION_LINE "  %s (%s%s): %s"
#define MSG_HELP_OPTIONAL ", optional"
/* Followed by the choices, each after a space. */
#define MSG_HELP_ONE_OF "; one of"
/* %s: the command's example. */
#define MSG_HELP_EXAMPLE "Example: %s"
/* %s: the command asked for. */
#define MSG_HELP_NO_SUCH_COMMAND "There is no command /%s. Type /help for the list."
/* %s: the bot's name. */
#define MSG_HELP_COMMANDS "%s commands:\n"
#define MSG_HELP_ADMIN_COMMANDS "Admin commands:\n"
#define MSG_HELP_MORE "Type /help <command> for its options."

/* ---- /leaderboard --------------------------------------------------------- */

/* %s: the error. */
#define MSG_BOARD_READ_FAILED "The leaderboard could not be read (%s)."
/* %s: the period, one of MSG_BOARD_PERIOD_*. */
#define MSG_BOARD_EMPTY "No upvoted generations here %s. Upvote an image with its Upvote button."
/* %s: the period, one of MSG_BOARD_PERIOD_*. */
#define MSG_BOARD_HEADER "Most upvoted generations here %s:\n"
/* The calendar periods a board covers, as they read after "here". */
#define MSG_BOARD_PERIOD_DAY "today (UTC)"
#define MSG_BOARD_PERIOD_WEEK "this week (since Monday, UTC)"
#define MSG_BOARD_PERIOD_MONTH "this month (UTC)"
#define MSG_BOARD_PERIOD_ALL "so far"
/* %zu: rank; %lld: upvotes; %s: "s" or ""; %s: creator; %s: model. */
#define MSG_BOARD_ROW "%zu. %lld upvote%s: an image by %s (%s)\n"
#define MSG_BOARD_UNKNOWN_MODEL "unknown model"
#define MSG_BOARD_NOT_HERE "Leaderboards belong to servers and groups: use /leaderboard there."

/* ---- /gallery ----------------------------------------------------------------- */

#define MSG_GALLERY_NOT_HERE "Galleries belong to servers and groups: use /gallery there."
/* %s: the error. */
#define MSG_GALLERY_FAILED "The gallery could not be read (%s)."
/* %s: the period, one of MSG_BOARD_PERIOD_*. */
#define MSG_GALLERY_EMPTY_NEW "No images were made here %s. Make one with /imagine."
/* %s: the period, one of MSG_BOARD_PERIOD_*. */
#define MSG_GALLERY_EMPTY_TOP                                                                      \
    "No image made here was upvoted %s. Upvote one with its Upvote button, or see /gallery new."
/* %lld: the page; the period may have no more. */
#define MSG_GALLERY_NO_PAGE "Page %lld of this gallery is empty: there are fewer images."
/* %s: the period; %s: the order; %lld: the page. */
#define MSG_GALLERY_HEADER "Gallery here %s, %s, page %lld:"
#define MSG_GALLERY_ORDER_NEW "newest first"
#define MSG_GALLERY_ORDER_TOP "most upvoted first"
/* %zu: its place; %s: creator; %s: model; %lld: upvotes; %s: "s" or "". */
#define MSG_GALLERY_ROW "%zu. By %s with %s: %lld upvote%s"
/* %lld: the page. */
#define MSG_GALLERY_PAGES "Page %lld."
#define MSG_GALLERY_PREV "Previous page"
#define MSG_GALLERY_NEXT "Next page"
#define MSG_GALLERY_BUTTON_NOT_YOURS "These buttons belong to whoever asked: run /gallery yourself."
#define MSG_GALLERY_BUTTON_EXPIRED "This button no longer works: run /gallery again."

/* ---- /admin stats ----------------------------------------------------------- */

/* %s: the refusals by reason, or MSG_STATS_NONE. */
#define MSG_STATS_REFUSED "Refused: %s\n"
/* %s: the failures by provider, or MSG_STATS_NONE. */
#define MSG_STATS_FAILED "Failed (nothing charged), by provider: %s\n"
#define MSG_STATS_NONE "none"
/* %s: the error. */
#define MSG_STATS_READ_FAILED "The statistics could not be read (%s)."
/* %s: MSG_STATS_SCOPE_POOL or MSG_STATS_SCOPE_BOT; %s: the period. */
#define MSG_STATS_HEADER "%s, last %s:\n"
#define MSG_STATS_SCOPE_POOL "This group's pool"
#define MSG_STATS_SCOPE_BOT "The whole bot"
/* %lld: generations; %s: credits. */
#define MSG_STATS_TOTALS "Generations charged: %lld; credits spent: %s\n"
#define MSG_STATS_TOP_MODELS "Top models:"
/* %s: "," or ""; %s: model; %lld: generations; %s: credits. */
#define MSG_STATS_MODEL "%s %s (%lld, %s credits)"
#define MSG_STATS_UNAVAILABLE "The statistics are not available right now."

/* ---- Generation commands: /chat /imagine /new /models /model, buttons ---- */

#define MSG_GEN_UNAVAILABLE "Generation is not available here."
#define MSG_GEN_NEW_CONVERSATION "Started a new conversation: /chat forgets what came before."
/* /forget. %lld: messages (questions and answers) erased. */
#define MSG_GEN_FORGOTTEN                                                                          \
    "Erased: %lld stored message(s) of your conversations are deleted for good, and /chat "        \
    "starts afresh everywhere."
#define MSG_GEN_FORGET_FAILED                                                                      \
    "Your conversations could not be erased just now; nothing was kept from this attempt. "        \
    "Please try /forget again in a moment."
/* Price parts of a model, joined with ", ". %lld: credits. */
#define MSG_MODELS_PRICE_REQUEST "%lld per request"
/* %s: ", " or ""; %lld: credits. */
#define MSG_MODELS_PRICE_INPUT "%s%lld per 1k input tokens"
/* %s: ", " or ""; %lld: credits. */
#define MSG_MODELS_PRICE_OUTPUT "%s%lld per 1k output tokens"
#define MSG_MODELS_PRICE_FREE "free"
/* %s: model; %s: MSG_MODELS_DEMO or ""; %s: "text" or "image"; %s: price;
 * %lld: most credits a request; %s: MSG_MODELS_YOUR_CHOICE or "". */
#define MSG_MODELS_LINE "\n  %s%s (%s): %s; up to %lld credits a request%s"
#define MSG_MODELS_DEMO " [demo: offline sample answers]"
#define MSG_MODELS_YOUR_CHOICE " — your choice"
/* Followed by the sizes, each as " <w>x<h>". */
#define MSG_MODELS_SIZES "; sizes"
#define MSG_MODELS_NONE "Models: none available to you right now."
#define MSG_MODELS_NO_MORE "Models: no more pages."
/* %s: MSG_MODELS_A_PAGE or ""; %s: the model lines. */
#define MSG_MODELS_LIST                                                                            \
    "Models%s:%s\nPick one with /model <name>, or name it: /chat hello model:<name>."
#define MSG_MODELS_A_PAGE " (a page of them)"
#define MSG_MODELS_BUTTON_PREVIOUS "Previous"
#define MSG_MODELS_BUTTON_NEXT "Next"
#define MSG_MODELS_BUTTON_NOT_YOURS "That button belongs to someone else's /models."
#define MSG_MODELS_BUTTON_EXPIRED "This button is no longer active. Try /models."
/* %s: the name asked for. */
#define MSG_MODEL_UNKNOWN "There is no model called \"%s\" that you can use. See /models."
/* %s: the error. */
#define MSG_MODEL_NOT_SAVED "Your choice could not be saved (%s)."
/* %s: "/chat" or "/imagine"; %s: the model; %s: MSG_GEN_DEMO or "". */
#define MSG_MODEL_CHOSEN "From now on your %s generations use %s%s."
#define MSG_GEN_BUTTON_NOT_YOURS "This button is not yours to press."

/* ---- The generation engine: progress, results, refusals, buttons --------- */

/* When a limit resets. %lld: minutes. */
#define MSG_GEN_UNTIL_MIN "in %lld min"
/* %lld: hours; %lld: minutes. */
#define MSG_GEN_UNTIL_H_MIN "in %lld h %lld min"
/* Appended to a demo model's name (also in /model's answer). */
#define MSG_GEN_DEMO " (demo)"
/* Footer parts. %lld: posted balance; %lld: reserved for other jobs. */
#define MSG_GEN_FOOTER_BALANCE_HELD " · balance %lld (%lld reserved for other jobs)"
/* %lld: posted balance. */
#define MSG_GEN_FOOTER_BALANCE " · balance %lld"
/* %s: model; %s: MSG_GEN_DEMO or ""; %lld: credits; %s: "s" or "";
 * %s: one of the balance parts or "". */
#define MSG_GEN_FOOTER "— %s%s · cost %lld credit%s%s"
/* The wallet's balance after a generation in a group, to the member alone
 * (the public footer shows the cost only). %lld: posted balance; %lld:
 * reserved for other jobs. */
#define MSG_GEN_ASIDE_BALANCE_HELD "Your wallet: %lld credits (%lld reserved for other jobs)."
/* %lld: posted balance. */
#define MSG_GEN_ASIDE_BALANCE "Your wallet: %lld credits."
/* %s: the answer; %s: the footer. */
#define MSG_GEN_ANSWER "%s\n\n%s"
#define MSG_GEN_BUTTON_REGENERATE "Regenerate"
#define MSG_GEN_BUTTON_UPVOTE "Upvote"
/* %s: the filter rule. */
#define MSG_GEN_OUTPUT_FILTERED "The answer was withheld by the content filter (rule %s)."
/* %s: why it failed, a full sentence. */
#define MSG_GEN_FAILED "%s Nothing was charged."
#define MSG_GEN_TIMED_OUT "The generation ran out of time."
/* The price, shown before the work runs: what the job reserved.
 * %lld: the most it may cost; %s: "s" or "". */
#define MSG_GEN_PRICE "up to %lld credit%s; you are charged what it uses"
/* %s: model; %s: MSG_GEN_DEMO or ""; %s: MSG_GEN_PRICE. */
#define MSG_GEN_GENERATING "Generating with %s%s: %s…"
/* %zu: position in the queue; %s: MSG_GEN_PRICE. */
#define MSG_GEN_QUEUED "Queued: position %zu (%s)."
/* %s: model; %s: MSG_GEN_DEMO or ""; %lld: most it costs; %lld: balance. */
#define MSG_GEN_FUNDS_SHORT_BALANCE                                                                \
    "Not enough credits: %s%s costs up to %lld credits and your balance is %lld. "                 \
    "Nothing was reserved."
/* The wallet's balance after a refusal for funds in a group, to the
 * member alone (the refusal names the price only). %lld: credits available. */
#define MSG_GEN_ASIDE_AVAILABLE "Your wallet: %lld credits available."
/* %s: model; %s: MSG_GEN_DEMO or ""; %lld: most it costs. */
#define MSG_GEN_FUNDS_SHORT                                                                        \
    "Not enough credits: %s%s costs up to %lld credits. Nothing was reserved."
#define MSG_GEN_STOPPING "The bot is stopping."
/* %s: the fallback model; %s: the error. */
#define MSG_GEN_FALLBACK_NOT_RESERVED "The fallback model %s could not be reserved (%s)."
/* %s: model. */
#define MSG_GEN_FUNDS_SHORT_FOR "Not enough credits for %s. Nothing was reserved."
/* %s: the error. */
#define MSG_GEN_NOT_RESERVED "Credits could not be reserved (%s); please try again."
/* %s: model that failed; %s: the next model; %s: MSG_GEN_DEMO or "". */
#define MSG_GEN_FALLING_BACK "%s failed; trying %s%s…"
/* Told in the member's next reply, or by a notice, after a restart. */
#define MSG_GEN_INTERRUPTED                                                                        \
    "A generation of yours was interrupted when the bot restarted; its reservation was "           \
    "released and nothing was charged."
/* %s: "text" or "image". */
#define MSG_GEN_NO_MODEL "No %s model is available right now."
/* %s: model. */
#define MSG_GEN_MODEL_OFF "The model %s is switched off right now. See /models for the others."
/* %s: model. */
#define MSG_GEN_MODEL_OFF_HERE "This group's admins turned %s off here. See /models for the others."
/* %s: model; %s: MSG_GEN_MAKES_TEXT or MSG_GEN_MAKES_IMAGES; %s: "/chat" or "/imagine". */
#define MSG_GEN_WRONG_COMMAND "%s makes %s; use %s."
#define MSG_GEN_MAKES_TEXT "text"
#define MSG_GEN_MAKES_IMAGES "images"
/* %s: model. */
#define MSG_GEN_MODEL_NOT_ALLOWED "You may not use %s here. See /models for the models you can use."
/* %s: model; %s: size asked for; %s: the sizes it makes. */
#define MSG_GEN_BAD_SIZE "%s does not make %s images; sizes: %s."
/* %zu: prompt length; %lld: the limit. */
#define MSG_GEN_PROMPT_TOO_LONG "The prompt is %zu characters long; the limit is %lld."
/* %s: the filter rule. */
#define MSG_GEN_PROMPT_FILTERED "The prompt was refused by the content filter (rule %s)."
/* %lld: the limit; %s: when it resets. */
#define MSG_GEN_USER_LIMIT "You have used your %lld generations for this hour; the limit resets %s."
/* %lld: the limit; %s: when it resets. */
#define MSG_GEN_GROUP_LIMIT                                                                        \
    "This group has used its %lld generations for today; the limit resets %s "                     \
    "(00:00 UTC)."
/* %lld: the allowance; %s: when it resets. */
#define MSG_GEN_TOKEN_CAP                                                                          \
    "The bot has used its daily allowance of %lld tokens; it resets %s (00:00 "                    \
    "UTC)."
/* %lld: tokens the job may use; %lld: the allowance; %lld: tokens left;
 * %s: when it resets. */
#define MSG_GEN_TOKEN_CAP_SHORT                                                                    \
    "This could use up to %lld tokens, and the bot's daily allowance of %lld tokens has %lld "     \
    "left; nothing was charged. Try a shorter prompt, or again when it resets %s (00:00 UTC)."
/* %s: the fallback model; %lld: the allowance. */
#define MSG_GEN_TOKEN_CAP_FALLBACK                                                                 \
    "The fallback model %s could use more tokens than the bot's daily allowance of %lld has "      \
    "left."
/* %lld: credits the request may cost; %lld: the key's daily cap; %lld:
 * what is left of it today. */
#define MSG_GEN_KEY_DAY_CAP                                                                        \
    "This request may cost up to %lld credits, and this key's daily cap of %lld has %lld left "    \
    "today; nothing was charged."
/* %lld: credits the request may cost; %lld: the key's cap; %lld: what is
 * left of it. */
#define MSG_GEN_KEY_TOTAL_CAP                                                                      \
    "This request may cost up to %lld credits, and this key's spending cap of %lld has %lld "      \
    "left; nothing was charged."
/* %lld: credits the request may cost; %lld: the pool's daily cap; %lld:
 * what is left of it today; %s: when it resets. */
#define MSG_GEN_POOL_CAP                                                                           \
    "This may cost up to %lld credits, and this group's pool has %lld a day to spend, %lld of "    \
    "it left today; nothing was charged. It resets %s (00:00 UTC)."
/* %u: generations; %s: "s" or "". */
#define MSG_GEN_USER_BUSY                                                                          \
    "You already have %u generation%s waiting or running; please wait for "                        \
    "them to finish."
/* %zu: generations waiting. */
#define MSG_GEN_BOT_BUSY                                                                           \
    "The bot is busy (%zu generations waiting); please try again in a "                            \
    "minute."
/* %s: the error. */
#define MSG_GEN_WALLET_FAILED "Your wallet could not be opened (%s); please try again."
#define MSG_GEN_BAD_REQUEST "This request could not be read; please try again."
#define MSG_GEN_TOO_OLD "This image is too old to regenerate; use /imagine to make a new one."
#define MSG_GEN_CANCELLED "The bot is stopping; the generation was cancelled."
#define MSG_GEN_CALLER_GONE "The caller left; the generation was stopped."

#define MSG_UPVOTE_DONE "Upvoted. Thank you!"
#define MSG_UPVOTE_FAILED "The upvote could not be recorded; please try again."
#define MSG_UPVOTE_AGAIN "You have already upvoted this image."
#define MSG_UPVOTE_UNKNOWN "This image is unknown; it cannot be upvoted."
#define MSG_UPVOTE_INVALID "This button is not valid."
#define MSG_UPVOTE_OWN "You cannot upvote your own image."

/* ---- /deposit: the configured payment methods (bot/deposit.c) ---------- */

#define MSG_DEPOSIT_CARD "Pay by card"
/* %s: the price; %s: credits. */
#define MSG_DEPOSIT_PACKAGE "%s buys %s credits"
#define MSG_DEPOSIT_FOR_WALLET "your wallet"
#define MSG_DEPOSIT_FOR_POOL "this group's pool"
#define MSG_DEPOSIT_LINKS_YOURS "Each link is yours: it tells the bot whom to credit."
/* %s: the treasury account. */
#define MSG_DEPOSIT_HBAR "Pay with HBAR: send it to account %s"
/* %s: credits one HBAR buys. */
#define MSG_DEPOSIT_HBAR_RATE "1 HBAR buys %s credits"
#define MSG_DEPOSIT_ALSO "also"
/* %s: the token id; %lld: its units per credit. */
#define MSG_DEPOSIT_TOKEN "token %s (%lld units a credit)"
/* %s: the memo. */
#define MSG_DEPOSIT_MEMO_WALLET "Memo for your wallet: %s"
/* %s: the memo. */
#define MSG_DEPOSIT_MEMO_POOL "Memo for this group's pool: %s"
#define MSG_DEPOSIT_MEMO_EXACT                                                                     \
    "Put the memo on the transfer exactly as shown; a transfer without it cannot be credited."
#define MSG_DEPOSIT_MEMO_PERSONAL                                                                  \
    "Put your personal memo on the transfer; a transfer without it cannot be credited."

/* ---- Notices a member did not ask for (core/notify.c) ------------------- */

/* %s: MSG_NOTIFY_A or _YOUR; %s: how it was paid; %s: credits. */
#define MSG_NOTIFY_PAYMENT "%s %s payment arrived: %s credits."
#define MSG_NOTIFY_A "A"
#define MSG_NOTIFY_YOUR "Your"
/* %s: MSG_NOTIFY_POOL or _WALLET; %s: the balance. */
#define MSG_NOTIFY_BALANCE "%s now has %s credits available."
#define MSG_NOTIFY_POOL "This group's pool"
#define MSG_NOTIFY_WALLET "Your wallet"

/* ---- Telegram: personal answers, Stars payments and refunds ------------ */

/* A personal answer asked for in a Telegram group goes to the member's
 * private chat; the group hears only where it went. */
#define MSG_TG_ANSWER_IN_DM "I sent you the answer in a private message."
/* The private chat is not open (the member never pressed Start, or blocked
 * the bot). %s: the bot's username. */
#define MSG_TG_DM_CLOSED                                                                           \
    "That answer is yours alone, and I cannot message you privately yet: open "                    \
    "https://t.me/%s?start, press Start, then ask again."
#define MSG_TG_DM_CLOSED_NO_LINK                                                                   \
    "That answer is yours alone, and I cannot message you privately yet: open a private chat "     \
    "with me, press Start, then ask again."

/* %lld: credits (invoice title and price label). */
#define MSG_TG_STARS_TITLE "%lld credits"
/* %lld: credits; %s: MSG_TG_STARS_FOR_*; %lld: Stars. */
#define MSG_TG_STARS_DESCRIPTION "%lld credits for %s, paid with %lld Stars."
#define MSG_TG_STARS_FOR_POOL "this group's pool"
#define MSG_TG_STARS_FOR_WALLET "your wallet"
#define MSG_TG_STARS_UNAVAILABLE "The bot cannot take payments right now; please try later."
#define MSG_TG_STARS_NOT_OFFERED                                                                   \
    "This package is no longer offered. Send /deposit again to see the current ones."
/* %s: MSG_TG_STARS_THANKS; %lld credits; %lld Stars; %s: whose
 * balance (MSG_TG_STARS_FOR_*); %lld: the balance. */
#define MSG_TG_STARS_CREDITED "%s %lld credits added for %lld Stars. Balance of %s: %lld credits."
#define MSG_TG_STARS_THANKS "Thank you!"
/* %lld: credits of the payment that repaid debt (follows MSG_TG_STARS_CREDITED). */
#define MSG_TG_STARS_REPAID " %lld of them repaid what was owed after an earlier refund."
/* %lld: credits. */
#define MSG_TG_STARS_ADDED "%lld credits were added."
/* %s: the charge id. */
#define MSG_TG_STARS_NOT_CREDITED                                                                  \
    "Your payment arrived but could not be credited yet. An admin can see it under charge id %s."
/* %s: the charge id. */
#define MSG_TG_STARS_UNKNOWN                                                                       \
    "Your payment arrived, but the bot cannot tell what it was for. An admin can refund it: "      \
    "charge id %s."
/* %lld Stars; %lld user id; %lld credits; %s account; %lld of them as debt. */
#define MSG_TG_REFUND_DONE                                                                         \
    "Refunded %lld Stars to user %lld; %lld credits taken back from %s (%lld of them booked as "   \
    "debt)."
/* The same in a group, for a member's wallet: what it owes afterwards is
 * the admin's alone (MSG_TG_REFUND_DEBT, an aside). %lld Stars; %lld user
 * id; %lld credits; %s account. */
#define MSG_TG_REFUND_DONE_HERE "Refunded %lld Stars to user %lld; %lld credits taken back from %s."
/* %lld: credits booked as debt; %s: account. */
#define MSG_TG_REFUND_DEBT "%lld of the credits taken back from %s were booked as debt."
/* %s: the error. */
#define MSG_TG_REFUND_UNRECORDED                                                                   \
    "Telegram refunded the Stars, but the ledger did not record the reversal (%s). Run the "       \
    "refund again to record it."
/* %s: Telegram's reason. */
#define MSG_TG_REFUND_REFUSED "Telegram refused the refund: %s"
/* %s: the charge id. */
#define MSG_TG_REFUND_NO_CHARGE "No Telegram Stars payment has charge id %s."
/* %s: the error. */
#define MSG_TG_REFUND_NOT_SENT "The refund could not be sent: %s"
#define MSG_TG_REFUND_BAD_CHARGE "That is not a charge id this bot can refund."
#define MSG_TG_REFUND_ADMINS_ONLY "Only admins can use /admin refund."
#define MSG_TG_REFUND_USAGE "Usage: /admin refund <telegram payment charge id>"
#define MSG_TG_BUSY "The bot is busy; please try again."

/* ---- Images members attach to a chat turn ------------------------------- */

/* Shown while a member's image is fetched; the answer replaces it. */
#define MSG_ATTACH_FETCHING "Fetching your image…"
/* The text that goes with an image sent without one (a photo without a
 * caption). */
#define MSG_ATTACH_DEFAULT_PROMPT "What is in this image?"
/* %s: the model asked for; %s: a model that sees images (twice). */
#define MSG_ATTACH_NO_VISION                                                                       \
    "%s cannot see images. %s can: send the image again with model:%s, or pick it with /model. "   \
    "Nothing was charged."
/* %s: the model asked for. */
#define MSG_ATTACH_NO_VISION_ANYWHERE                                                              \
    "%s cannot see images, and no model here can. Describe the image in words instead; nothing "   \
    "was charged."
/* %zu: the limit in KiB. */
#define MSG_ATTACH_TOO_LARGE                                                                       \
    "That image is too large: the limit is %zu KiB. Send a smaller one; nothing was charged."
#define MSG_ATTACH_NOT_IMAGE                                                                       \
    "That file is not an image I can read: send a PNG, JPEG, WebP or GIF. Nothing was charged."
/* %s: why (a short reason). */
#define MSG_ATTACH_FETCH_FAILED                                                                    \
    "I could not fetch your image (%s); please send it again. Nothing was charged."
#define MSG_ATTACH_HOST_REFUSED                                                                    \
    "I only fetch images attached on the platform itself, never from a link. Nothing was "         \
    "fetched or charged."
/* Images go to /chat only. */
#define MSG_ATTACH_CHAT_ONLY "Images go with /chat (or a plain message); this command takes none."

/* ---- /persona, /admin persona and /admin plaintalk ------------------------ */

#define MSG_PERSONA_NONE "No personas are set up on this bot."
/* %s: the persona lines. */
#define MSG_PERSONA_LIST "Personas (choose one with /persona NAME, or /persona none):%s"
/* %s: name; %s: description, or ""; %s: MSG_PERSONA_IN_USE or "". */
#define MSG_PERSONA_LINE "\n  %s%s%s"
#define MSG_PERSONA_IN_USE " (in use here)"
/* %s: the persona in use and where it comes from (MSG_PERSONA_FROM_*). */
#define MSG_PERSONA_CURRENT "\nIn use here: %s."
#define MSG_PERSONA_CURRENT_NONE "\nNo persona is in use here."
/* %s: name. */
#define MSG_PERSONA_FROM_MEMBER "%s (your choice)"
#define MSG_PERSONA_FROM_CHANNEL "%s (this channel's)"
#define MSG_PERSONA_FROM_GROUP "%s (this group's)"
#define MSG_PERSONA_FROM_BOT "%s (the bot's default)"
#define MSG_PERSONA_BUTTON_NONE "None"
/* %s: the name asked for. */
#define MSG_PERSONA_UNKNOWN "There is no persona called \"%s\" that you can use here. See /persona."
/* %s: name. */
#define MSG_PERSONA_CHOSEN "From now on your /chat uses the persona %s."
#define MSG_PERSONA_CLEARED "You no longer choose a persona: /chat uses the one set here, if any."
/* %s: the system prompt as bot.conf writes it. */
#define MSG_PERSONA_PROMPT "\nIts system prompt:\n%s"
/* %s: the error. */
#define MSG_PERSONA_NOT_SAVED "The choice could not be saved (%s)."
#define MSG_PERSONA_BUTTON_NOT_YOURS "That button belongs to someone else's /persona."
#define MSG_PERSONA_BUTTON_EXPIRED "This button is no longer active. Try /persona."
#define MSG_ADMIN_PERSONA_NOT_HERE "Personas are set per server or group: run this there."
/* %s: persona; %s: MSG_ADMIN_PERSONA_WHERE_*. */
#define MSG_ADMIN_PERSONA_SET "%s is now the persona of %s."
/* %s: MSG_ADMIN_PERSONA_WHERE_*. */
#define MSG_ADMIN_PERSONA_CLEARED "No persona is set for %s any more."
#define MSG_ADMIN_PERSONA_WHERE_CHANNEL "this channel"
#define MSG_ADMIN_PERSONA_WHERE_TOPIC "this topic"
#define MSG_ADMIN_PERSONA_WHERE_GROUP "this server or group"
/* %s: the name asked for. */
#define MSG_ADMIN_PERSONA_UNKNOWN "There is no persona called \"%s\" in bot.conf."
#define MSG_ADMIN_PLAINTALK_NOT_HERE "Plain talk is set per Telegram group: run this there."
#define MSG_ADMIN_PLAINTALK_ON                                                                     \
    "Plain messages in this group are now chat turns: the bot answers every message."
#define MSG_ADMIN_PLAINTALK_OFF                                                                    \
    "Plain messages in this group are ignored again: the bot answers commands, mentions and "      \
    "replies."
/* ---- The approval queue (core/generate_approval.c, core/cmd_approval.c) ---- */

/* To the member. %zu: place in the review queue; %s: MSG_GEN_PRICE. */
#define MSG_APPR_WAITING                                                                           \
    "Your request waits for an admin's review: place %zu in the review queue (%s, reserved "       \
    "until then)."
/* %zu: the place in the queue. */
#define MSG_APPR_WAITING_FREE                                                                      \
    "Your request waits for an admin's review: place %zu in the review queue (free: nothing is "   \
    "reserved)."
#define MSG_APPR_APPROVED "An admin approved your request; it runs now."
#define MSG_APPR_EDITED "An admin edited your prompt before approving it; it runs now."
/* %s: the reason. Then MSG_APPR_RELEASED or MSG_APPR_FREE_ENDED. */
#define MSG_APPR_REJECTED "An admin rejected your request (%s)."
#define MSG_APPR_IMAGE_LOST                                                                        \
    "Your request waiting for review could not be kept over a restart: its image did not read "    \
    "back; send the image again."
#define MSG_APPR_TIMED_OUT "Nobody reviewed your request in time."
/* After one of the three above: what held credits, or a free job. */
#define MSG_APPR_RELEASED "Its reservation was released and nothing was charged."
#define MSG_APPR_FREE_ENDED "Nothing was charged."
/* To admins. %s id; %s member; %s where; %s model; %lld credits; %s why. */
#define MSG_APPR_NOTICE "Approval needed [%s]: %s (%s) asks %s for up to %lld credits (held: %s)."
/* %s id; %s member; %s where; %s model; %s why. */
#define MSG_APPR_NOTICE_FREE "Approval needed [%s]: %s (%s) asks %s (free) (held: %s)."
/* %s: the prompt. */
#define MSG_APPR_NOTICE_PROMPT "\nPrompt: %s"
/* %s: the id, three times. */
#define MSG_APPR_NOTICE_HOW                                                                        \
    "\n/admin approve %s, /admin edit %s <prompt>, /admin reject %s [reason]"
#define MSG_APPR_BUTTON_APPROVE "Approve"
#define MSG_APPR_BUTTON_EDIT "Edit"
#define MSG_APPR_BUTTON_REJECT "Reject"
/* %s: a reason. */
#define MSG_APPR_BUTTON_REJECT_WITH "Reject: %s"
#define MSG_APPR_REASON_DEFAULT "no reason given"
#define MSG_APPR_EMPTY "Nothing waits for approval."
#define MSG_APPR_LIST_HEAD "Waiting for approval:"
/* %s id; %s member; %s model; %lld credits; %s why; %lld minutes waiting. */
#define MSG_APPR_LIST_ITEM "\n[%s] %s, %s, up to %lld credits, held: %s, waiting %lld min"
/* %zu: how many more than the list shows. */
#define MSG_APPR_LIST_MORE "\n...and %zu more (the oldest are shown)."
/* %s: the id. */
#define MSG_APPR_NOT_FOUND "No held request has the id %s (see /admin approvals)."
/* %s id; %s outcome; %s who. */
#define MSG_APPR_ALREADY "Request %s was already decided: %s by %s."
/* %s id; %s outcome. */
#define MSG_APPR_DONE "Request %s %s."
/* %s id; %s outcome: a decision left for the daemon holding the job. */
#define MSG_APPR_FORWARDED "Request %s %s (it takes effect within a few seconds)."
/* %s id. */
#define MSG_APPR_FENCED                                                                            \
    "The bot lost touch with its database for a moment; decide request %s again in a few "         \
    "seconds."
#define MSG_APPR_NOT_YOURS                                                                         \
    "Only admins of the request's server or group, or of the approval chat, decide it."
/* %s: the id. */
#define MSG_APPR_EDIT_HOW "To edit request %s, type: /admin edit %s <new prompt>"

/* One wallet across platforms (core/cmd_link.c). */
/* %s the code; %lld minutes it lives; %s the code again. */
#define MSG_LINK_CODE                                                                              \
    "Your link code: %s (valid %lld minutes, once). On your other platform (Discord, Telegram or " \
    "the console) send: /link %s\nThat account then spends this wallet: its available credits "    \
    "move here, and its own wallet stays as it is otherwise."
#define MSG_LINK_CODES_FULL "Too many link codes are open right now. Try again in a few minutes."
#define MSG_LINK_DM_ONLY "Link codes are private: send /link to me in a private chat."
#define MSG_LINK_CODE_SHOWN                                                                        \
    "A link code is private: this one was shown in the group, so it no longer works. Make a new "  \
    "one with /link in a private chat, and send it to me there."
#define MSG_LINK_WRONG                                                                             \
    "That link code is wrong or already used. Make a new one with /link on your other platform."
#define MSG_LINK_EXPIRED                                                                           \
    "That link code has expired. Make a new one with /link on your other platform."
/* %lld: minutes to wait. */
#define MSG_LINK_LIMITED "Too many link codes tried. Try again in %lld minutes."
#define MSG_LINK_SELF "That code is your own: send it from your account on another platform."
#define MSG_LINK_SAME_PLATFORM                                                                     \
    "That wallet already has an account on this platform: each platform links one account."
/* %s: the wallet. */
#define MSG_LINK_ALREADY                                                                           \
    "This account already spends the wallet of %s. Send /unlink first to link it elsewhere."
#define MSG_LINK_HOLDS                                                                             \
    "Other accounts spend this account's wallet. Make the code here with /link and send it from "  \
    "the other platform instead."
#define MSG_LINK_BUSY                                                                              \
    "A link of this wallet is being made right now. Make a new code and try again in a moment."
/* %s: the wallet; %s the credits moved. */
#define MSG_LINK_DONE                                                                              \
    "Linked: this account now spends the wallet of %s. Its own available balance moved there: %s " \
    "credits."
#define MSG_LINK_HELD                                                                              \
    "Credits it had reserved stay in its own wallet until those generations settle."
/* %s: why. */
#define MSG_LINK_FAILED                                                                            \
    "Sorry, the link did not work (%s). Nothing changed; make a new code and try again."
#define MSG_LINK_RACED                                                                             \
    "Sorry, one of these accounts was linked another way a moment ago, so this link was not "      \
    "made. Nothing changed; make a new code if you still want it."
#define MSG_UNLINK_NONE "This account is not linked to another one."
#define MSG_UNLINK_SELF                                                                            \
    "Unlinked: this account has its own wallet again. The credits stay in the shared wallet."
/* %zu: how many. */
#define MSG_UNLINK_OTHERS                                                                          \
    "Unlinked %zu other accounts: each has its own wallet again. The credits stay in this wallet."
/* %s: the wallet. */
#define MSG_HISTORY_LINKED                                                                         \
    "This account spends the wallet of %s (linked): this is that wallet's history. Your own "      \
    "wallet's earlier entries are kept and show again after /unlink."

/* ---- Contests (/contest, /admin contest) --------------------------------- */

#define MSG_CONTEST_NOT_HERE "Contests run per server or group: run this there."
/* %zu: place; %s: creator; %lld: upvotes; %s: "s" or "". An entry's thumbnail. */
#define MSG_CONTEST_THUMB "%zu. %s: %lld upvote%s"
/* %zu: place; %s: creator; %lld: upvotes; %s: "s" or "". A winning image. */
#define MSG_CONTEST_WINNER_IMAGE "Winning image %zu: by %s, %lld upvote%s"
#define MSG_CONTEST_NONE                                                                           \
    "No contest runs here. An admin starts one with /admin contest start [week|DAYS] [prize]."
/* %s: the end ("2026-12-07 00:00 UTC"); %s: the time left ("1d 6h 0m"). */
#define MSG_CONTEST_HEAD "Contest here: ends %s (in %s)."
/* %s: the end, as MSG_CONTEST_HEAD. */
#define MSG_CONTEST_ENDING "Contest here: ended %s; its results are being paid and posted."
/* %lld: credits in the prize account; %s: the account. */
#define MSG_CONTEST_POOL "\nPrize pool: %lld credits (%s)."
/* %lld: the prize set at the start, paid from the pool. */
#define MSG_CONTEST_PRIZE " Prize: %lld credits of it."
/* %zu: winners; %s: their parts ("50/30/20"). */
#define MSG_CONTEST_SPLIT "\nThe top %zu creators win %s %% of the prize."
#define MSG_CONTEST_STANDINGS "\nStandings (upvotes cast since the start):"
#define MSG_CONTEST_EMPTY "\n  no upvotes yet"
/* %zu: rank; %s: creator; %lld, %s: upvotes and the plural's "s"; %s: the image's id. */
#define MSG_CONTEST_ROW "\n  %zu. %s: %lld upvote%s (image %s)"
/* %s: why. */
#define MSG_CONTEST_FAILED "The contest could not be read (%s)."
/* %s: the end; %s: the prize text. */
#define MSG_CONTEST_STARTED                                                                        \
    "Contest started: upvotes cast here until %s count, and the top creators win %s."
#define MSG_CONTEST_PRIZE_ALL "the prize pool (system:prizes:<scope>) as it stands then"
/* %lld: credits. */
#define MSG_CONTEST_PRIZE_SET "%lld credits from the prize pool (system:prizes:<scope>)"
#define MSG_CONTEST_RUNNING                                                                        \
    "A contest already runs here; /contest shows it, /admin contest stop ends it."
#define MSG_CONTEST_BAD_PERIOD                                                                     \
    "The period is week (until Monday 00:00 UTC) or a number of days from 1 to 366."
#define MSG_CONTEST_STOPPED "Contest stopped: nothing was paid, the prize pool stays as it is."
#define MSG_CONTEST_NO_CONTEST "No contest runs here."
#define MSG_CONTEST_IS_ENDING "This contest has ended and is being paid: it cannot be stopped."
/* %s: why. */
#define MSG_CONTEST_NOT_SAVED "Nothing changed: the contest could not be saved (%s)."

#endif
