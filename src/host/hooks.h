/* hooks.h — the per-host event bus behind tern_hook_*() (see tern/module.h). */
#ifndef TERN_HOOKS_H
#define TERN_HOOKS_H

#include "host/host.h"

tern_event_result hooks_run_stanza(tern_host *host, const char *event,
                                   const tern_stanza_event *ev);
void hooks_run_session(tern_host *host, const char *event, tern_session *session);
void hooks_run_features(tern_host *host, tern_session *session, tern_xml *features);
void hooks_run_account(tern_host *host, const char *event, const char *bare);
/* The delivery hooks of priority below `below` (INT_MAX: all), in descending priority;
 * TERN_HANDLED when one took the stanza. */
tern_event_result hooks_run_deliver(tern_host *host, tern_session *session,
                                    const tern_xml *stanza, int below);
/* The element hooks that claim the element's namespace (and name). */
tern_event_result hooks_run_element(tern_host *host, tern_session *session,
                                    const tern_xml *element);
/* The reply of the module that claims the iq's payload namespace before authentication, or
 * NULL; *claimed says whether any module claims that namespace. */
tern_xml *hooks_run_preauth_iq(const tern_preauth *stream, const tern_xml *iq, bool *claimed);
void hooks_run_preauth_features(const tern_preauth *stream, tern_xml *features);
/* Frees every hook list of the host (host_free). */
void hooks_free_all(tern_host *host);
void hooks_remove_owner(tern_host *host, const module_instance *owner);

#endif
