/* fuzz_jid.c — libFuzzer target for the JID parser (src/core/jid.c).
 *
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc fuzz/fuzz_jid.c src/core/jid.c \
 *        $(pkg-config --cflags --libs libidn libidn2)
 * Besides crashes it checks two properties: a failure leaves the jid zeroed, and a prepared JID
 * parses back to itself (preparation is idempotent), so a bug in the split or the joins shows. */
#include "tern/jid.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    tern_jid jid;
    const char *why = NULL;
    if (jid_parse(text, &jid, &why) == 0) {
        tern_jid again, copy, bare;
        if (jid_parse(jid.full, &again, &why) != 0 || !jid_equal(&again, &jid))
            abort();
        jid_copy(&copy, &jid);
        jid_bare(&bare, &jid);
        if (!jid_equal(&copy, &jid) || !jid_equal_bare(&bare, &jid) || bare.resource)
            abort();
        jid_free(&again);
        jid_free(&copy);
        jid_free(&bare);
        jid_free(&jid);
    } else if (!why || jid.storage_ || jid.full) {
        abort();
    }
    free(text);
    return 0;
}
