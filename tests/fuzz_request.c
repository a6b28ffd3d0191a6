/* fuzz_request.c - libFuzzer target: the JSON request parser behind `terse serve`'s
 * /v1/compress, `terse batch` and the Python module (terse_request_parse).
 *
 * Build: make fuzz (clang -fsanitize=fuzzer,address,undefined). Run from the repository root:
 *     ./build/fuzz/fuzz_request -dict=tests/fuzz_request.dict -max_total_time=600 [corpus_dir]
 *
 * Checked for every input, strict and lenient (abort() on violation): the call returns TERSE_OK
 * with a result, or TERSE_ERR_INVALID / TERSE_ERR_NOMEM without one and with a message; an
 * accepted request has at least one context, every context a NUL-terminated string, a rate
 * in (0, 1], a target >= 0, lists whose pointers and counts agree; nothing leaks (ASan).
 */
#include "terse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_request: violated: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int flags = 0; flags <= TERSE_REQUEST_STRICT; flags++) {
        terse_request *q = (terse_request *)1;
        int st = terse_request_parse((const char *)data, size, flags, &q);
        if (st != TERSE_OK) {
            check(q == NULL, "no request on error");
            check(st == TERSE_ERR_INVALID || st == TERSE_ERR_NOMEM, "status");
            check(terse_last_error()[0] != 0, "an error message");
            continue;
        }
        const terse_prompt *p = terse_request_prompt(q);
        terse_compress_params cp = terse_request_params(q);
        check(p && p->n_contexts >= 0 && (p->n_contexts == 0 || p->contexts), "contexts");
        size_t total = 0;
        for (int32_t i = 0; i < p->n_contexts; i++) total += strlen(p->contexts[i]);
        if (p->instruction) total += strlen(p->instruction);
        if (p->question) total += strlen(p->question);
        check(total <= size, "strings come from the input");
        check(cp.rate > 0 && cp.rate <= 1, "rate in (0, 1]");
        check(cp.target >= 0, "target >= 0");
        check(cp.n_force_tokens == 0 || cp.force_tokens, "force tokens");
        for (int32_t i = 0; i < cp.n_force_tokens; i++) total += strlen(cp.force_tokens[i]);
        check(cp.n_protect_patterns == 0 || cp.protect_patterns, "patterns");
        for (int32_t i = 0; i < cp.n_protect_patterns; i++) (void)strlen(cp.protect_patterns[i]);
        check(cp.n_force_context_ids == 0 || cp.force_context_ids, "context ids");
        for (int32_t i = 0; i < cp.n_force_context_ids; i++) check(cp.force_context_ids[i] >= 0, "id >= 0");
        check(cp.method >= TERSE_METHOD_SELECTIVE && cp.method <= TERSE_METHOD_LONGLLMLINGUA, "method");
        check(cp.unit >= TERSE_UNIT_TOKEN && cp.unit <= TERSE_UNIT_SENTENCE, "unit");
        terse_request_free(q);
    }
    return 0;
}
