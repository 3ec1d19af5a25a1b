#include "bot/webhooks.h"

#include "adapters/adapter.h"
#include "base/error.h"
#include "base/log.h"
#include "net/server.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* One route on the server: which adapter serves it, and how. */
struct webhooks_route {
    struct webhooks_route *next;
    struct webhooks *wh;
    struct adapter *adapter;           /* borrowed until webhooks_stop() */
    const struct adapter_route *route; /* static, the adapter's */
};

struct webhooks {
    struct server *srv;
    struct webhooks_route *routes; /* every route added, freed with the object */
    bool closed;
};

struct webhooks *webhooks_new(struct server *srv)
{
    struct webhooks *wh = calloc(1, sizeof(*wh));
    if (wh == NULL)
        return NULL;
    wh->srv = srv;
    return wh;
}

static void webhooks__serve(struct server_request *req, void *data)
{
    struct webhooks_route *r = data;
    if (r->wh->closed || r->adapter == NULL) {
        server_respond(req, 503, NULL, "shutting down\n", 14, NULL);
        return;
    }
    r->route->serve(r->adapter, req);
}

int webhooks_adapter_add(struct webhooks *wh, struct adapter *a)
{
    if (a == NULL)
        return HB_EINVAL;
    if (a->ops->routes == NULL)
        return 0;
    const struct adapter_route *routes = NULL;
    int n = a->ops->routes(a, &routes);
    if (n < 0)
        return n;
    for (int i = 0; i < n; i++) {
        struct webhooks_route *r = calloc(1, sizeof(*r));
        if (r == NULL)
            return HB_ENOMEM;
        r->wh = wh;
        r->adapter = a;
        r->route = &routes[i];
        int rc = server_route_add(wh->srv, routes[i].method, routes[i].path, routes[i].headers,
                                  webhooks__serve, r);
        if (rc < 0) {
            free(r);
            return rc;
        }
        r->next = wh->routes;
        wh->routes = r;
        char event[64];
        snprintf(event, sizeof(event), "webhooks.%s", a->ops->name);
        log_info(event, "path=%s", routes[i].path);
    }
    return 0;
}

void webhooks_stop(struct webhooks *wh)
{
    if (wh == NULL)
        return;
    wh->closed = true;
    for (struct webhooks_route *r = wh->routes; r != NULL; r = r->next)
        r->adapter = NULL;
}

void webhooks_free(struct webhooks *wh)
{
    if (wh == NULL)
        return;
    while (wh->routes != NULL) {
        struct webhooks_route *r = wh->routes;
        wh->routes = r->next;
        free(r);
    }
    free(wh);
}
