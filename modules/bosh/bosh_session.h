/* bosh_session.h — the inside of the BOSH connection manager, shared by its two files:
 *
 *   bosh_route.c    the front door: POST /http-bind, parsing request bodies, session
 *                   creation, and the rules a request must pass on arrival (secure sessions,
 *                   the rid window, repeated rids, overactivity).
 *   bosh_session.c  one session over time: the sid table, requests processed in rid order,
 *                   held and answered, the responses kept for resending, the output queue, the
 *                   wait, inactivity and pause timers, the terminal <body/> and the end; and
 *                   the functions of bosh_link.h the link calls.
 *
 * Section numbers (§) are those of XEP-0124 unless another XEP is named. */
#ifndef TERN_MODULE_BOSH_SESSION_H
#define TERN_MODULE_BOSH_SESSION_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include <tern/http.h>

#include "bosh_link.h"

/* Our side of the session rules, announced in the session creation response (§7.2). */
#define BOSH_VERSION_MAJOR 1
#define BOSH_VERSION_MINOR 11
#define BOSH_MAX_WAIT 60      /* seconds a request may be held */
/* The HTTP listener answers the requests of one connection in order, so a pipelined second
 * request waits behind the held one anyway: more than one held request would buy nothing. */
#define BOSH_MAX_HOLD 1
#define BOSH_INACTIVITY 60    /* seconds without any request before the session ends */
#define BOSH_MAXPAUSE 120
#define BOSH_POLLING 2        /* shortest interval between empty requests */
#define BOSH_KEPT_RESPONSES 2 /* = 'requests' (§14.3) */
#define BOSH_SID_LEN 32
#define BOSH_CONTENT_TYPE "text/xml; charset=utf-8"

typedef struct bosh_request bosh_request;

/* One request of a session, from its arrival until it is answered. */
struct bosh_request {
    bosh_session *s;
    uint64_t rid;
    /* The HTTP request, and a resend of the same rid while it is open (§14.3): both get the
     * same response. NULL once gone (the client closed that connection). */
    tern_http_request *http[2];
    tern_xml *body;           /* the <body/> wrapper (attributes; children are in payloads) */
    tern_xml **payloads;
    size_t n_payloads;
    tern_stream_error error;  /* with error_text: a payload broke a limit of client streams */
    char *error_text;
    bool creation, pause, restart, terminate;
    bool empty;               /* no payloads and nothing else to do: a poll */
    struct event *timer;      /* held: `wait`; pending: how long a missing rid is waited for */
    bosh_request *next;
};

typedef struct kept_response {
    uint64_t rid;
    char *body; /* NULL: none */
    size_t len;
} kept_response;

struct bosh_session {
    char sid[BOSH_SID_LEN + 1];
    uint64_t id;               /* the c2s id, for logs */
    bosh_link *link;
    const bosh_link_ops *link_ops; /* how the session drives its client stream (bosh_link.c) */
    char *peer, *to, *content_type;
    char *authid, *from;       /* our stream header (XEP-0206 §4) */
    char *key;                 /* §15: the next request's key must hash to this */
    unsigned wait, hold, requests, ver_minor;
    unsigned pause;            /* §12: the inactivity the last pause request asked for, or 0 */
    bool legacy;               /* no 'ver' in the creation request (§17.1) */
    bool acks, secure;
    uint64_t next_rid;         /* every lower rid has been received */
    bosh_request *pending;     /* received, waiting for a lower rid (or their turn): rid order */
    bosh_request *held;        /* processed, not answered yet: rid order */
    size_t n_pending, n_held;
    kept_response kept[BOSH_KEPT_RESPONSES];
    size_t kept_next;
    tern_buf queue;            /* payloads for the client, serialized */
    bool queue_stream_ns;      /* the queue holds stream: elements */
    bool overflow;
    bool input_paused, restart_expected;
    const char *terminal;      /* the session ends: the condition ("" for none) */
    bool ended;                /* out of the table; the c2s is being told */
    const char *end_reason;
    uint64_t last_arrival_ms;  /* of the last new request (§11, §13) */
    bool last_empty, last_answer_empty;
    struct event *inactivity, *work_ev, *end_ev;
    bosh_session *all_prev, *all_next; /* every session (bosh_session.c) */
};

static inline size_t bosh_outstanding(const bosh_session *s) { return s->n_held + s->n_pending; }

/* ---- bosh_session.c, for bosh_route.c ---- */

/* Sessions by sid: bosh_route.c registers a new session once its sid is drawn; a session leaves
 * the table when it ends. */
void bosh_session_register(bosh_session *s);
bosh_session *bosh_session_by_sid(const char *sid);
/* Ends every session at once, held requests answered with system-shutdown and each client
 * stream ended: the module's code is about to be unmapped. */
void bosh_session_end_all(const char *reason);
/* A session with its events and buffers; bosh_route.c fills in the rest. */
bosh_session *bosh_session_new(void);
/* A request for session s, answering `http`; takes the body and the payloads. */
bosh_request *bosh_request_new(bosh_session *s, tern_http_request *http, uint64_t rid,
                               tern_xml *body, tern_xml **payloads, size_t n_payloads);
void bosh_request_free(bosh_request *r);
/* A new request within the window: processed once every lower rid was (§14.2). */
void bosh_session_accept(bosh_session *s, bosh_request *r);
/* The open (held or pending) request with this rid, or NULL. */
bosh_request *bosh_session_find_open(bosh_session *s, uint64_t rid);
/* `copy` repeats the open request `open`: it gets the same answer; `copy` is freed. */
void bosh_session_attach(bosh_request *open, bosh_request *copy);
/* The kept response to `rid` (§14.3), or NULL. */
const kept_response *bosh_session_find_kept(const bosh_session *s, uint64_t rid);
/* Starts the inactivity timer if nothing is open (§12). */
void bosh_session_idle(bosh_session *s);
/* A terminal binding condition of ours (§17.2): every open request and `extra` (a request
 * not in the session's lists, or NULL) get it, and the session ends. */
void bosh_session_fail(bosh_session *s, const char *condition, bosh_request *extra);
/* The terminal <body/> that is owed goes to every open request and `extra`. */
void bosh_session_deliver_terminal(bosh_session *s, bosh_request *extra);

#endif
