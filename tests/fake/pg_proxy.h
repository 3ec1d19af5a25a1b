/* A PostgreSQL connection relay for tests, on its own thread: it passes
 * libpq's bytes to the server's Unix socket and back unchanged, and on
 * request loses the answer to one COMMIT, as a network failure does. The
 * server then commits the transaction while the client sees its
 * connection break: a commit whose outcome the client cannot know. */
#ifndef HB_TEST_FAKE_PG_PROXY_H
#define HB_TEST_FAKE_PG_PROXY_H

#include <stdbool.h>
#include <stddef.h>

struct pg_proxy;

/** A relay for the server of url (a key=value connection string whose
 *  host is a socket directory, as the test cluster's); *proxied (cap
 *  bytes) is then the same string with the relay's directory as host.
 *  NULL on failure. */
struct pg_proxy *pg_proxy_start(const char *url, char *proxied, size_t cap);

/** Lose the answer of the first COMMIT a connection sends after it has
 *  sent bytes containing marker (a statement's parameter, say): the
 *  COMMIT goes to the server, and the client's connection is closed
 *  before any answer. Once only. */
void pg_proxy_lose_commit_after(struct pg_proxy *p, const char *marker);

/** After the COMMIT answer lost next, refuse every new connection (close
 *  it at once, as a server out of reach) for ms: the client can neither
 *  ask what became of the transaction nor read it back meanwhile. */
void pg_proxy_refuse_after_loss(struct pg_proxy *p, unsigned ms);

/** Whether new connections are being refused now. */
bool pg_proxy_refusing(struct pg_proxy *p);

/** How many COMMIT answers were lost so far. */
unsigned pg_proxy_lost(struct pg_proxy *p);

/** Stop the thread, close every connection and remove the directory. */
void pg_proxy_stop(struct pg_proxy *p);

#endif
