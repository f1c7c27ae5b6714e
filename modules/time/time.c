/* time — XEP-0202 Entity Time: the server's UTC time and its zone offset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tern/module.h>
#include <time.h>

static tern_event_result time_answer(const tern_stanza_event *ev, void *data)
{
    (void)data;
    time_t now = time(NULL);
    struct tm utc, local;
    gmtime_r(&now, &utc);
    localtime_r(&now, &local);
    char utc_text[32], tzo[24];
    /* XEP-0082 DateTime and TZD formats. */
    strftime(utc_text, sizeof utc_text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    long offset = local.tm_gmtoff / 60;
    snprintf(tzo, sizeof tzo, "%c%02ld:%02ld", offset < 0 ? '-' : '+', labs(offset) / 60,
             labs(offset) % 60);
    tern_xml *reply = tern_iq_result_new(ev);
    tern_xml *t = xml_add_child(reply, "time", NS_TIME);
    tern_xml_add_text_child(t, "tzo", NULL, tzo);
    tern_xml_add_text_child(t, "utc", NULL, utc_text);
    tern_reply(ev, reply);
    return TERN_HANDLED;
}

static int time_load(tern_host *host, void **state, char *err, size_t err_len)
{
    (void)state;
    (void)err;
    (void)err_len;
    tern_hook_iq(host, "get", "host", NS_TIME, "time", time_answer, NULL);
    tern_disco_add_feature(host, NS_TIME);
    return 0;
}

TERN_MODULE("time", time_load, NULL);
