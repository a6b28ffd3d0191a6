/* request.c - a compression request as one JSON object (the prompt plus options, with
 * LLMLingua's keyword names), parsed and validated into a terse_prompt and
 * terse_compress_params. One parser for every front-end that takes JSON: `terse serve`,
 * `terse batch`, the Python module. Errors name the field, what it is and what was expected. */
#include "base/base.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct terse_request {
    json_t *root;                   /* owns every string below */
    terse_prompt prompt;
    const char **contexts;
    terse_compress_params p;        /* the options given, on top of the defaults */
    const char **force, **protect;
    int32_t *force_ids;
};

static const char *kind(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int bad(const char *field, const json_t *v, const char *want) {
    return terse_err(TERSE_ERR_INVALID, "request: \"%s\" is %s, expected %s", field, kind(v), want);
}

static int get_bool(const char *k, const json_t *v, int *out) {
    if (!json_is_boolean(v)) return bad(k, v, "true or false");
    *out = json_is_true(v);
    return TERSE_OK;
}

static int get_num(const char *k, const json_t *v, double lo, double hi, double *out) {
    if (!json_is_number(v)) return bad(k, v, "a number");
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return terse_err(TERSE_ERR_INVALID, "request: \"%s\" is %g, expected a number in [%g, %g]",
                         k, x, lo, hi);
    *out = x;
    return TERSE_OK;
}

static int get_int(const char *k, const json_t *v, int64_t lo, int64_t hi, int64_t *out) {
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
        fabs(json_real_value(v)) < 9e15) {
        *out = (int64_t)json_real_value(v);
    } else if (json_is_integer(v)) {
        *out = json_integer_value(v);
    } else {
        return bad(k, v, "an integer");
    }
    if (*out < lo || *out > hi)
        return terse_err(TERSE_ERR_INVALID, "request: \"%s\" is %lld, expected an integer in "
                         "[%lld, %lld]", k, (long long)*out, (long long)lo, (long long)hi);
    return TERSE_OK;
}

/* One of names[] (NULL-terminated); *out = its index. */
static int get_enum(const char *k, const json_t *v, const char *const *names, int *out) {
    if (!json_is_string(v)) return bad(k, v, "a string");
    const char *s = json_string_value(v);
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i])) { *out = i; return TERSE_OK; }
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    return terse_err(TERSE_ERR_INVALID, "request: \"%s\" is \"%.64s\", expected one of: %s", k, s, list);
}

/* An array of strings (or one string) -> a malloc'ed array of borrowed pointers. */
static int get_strings(const char *k, const json_t *v, int allow_one, const char ***out,
                       int32_t *n, int32_t max) {
    if (allow_one && json_is_string(v)) {
        *out = terse_malloc(sizeof **out, "request strings");
        if (!*out) return TERSE_ERR_NOMEM;
        (*out)[0] = json_string_value(v);
        *n = 1;
        return TERSE_OK;
    }
    if (!json_is_array(v)) return bad(k, v, allow_one ? "a string or an array of strings" : "an array of strings");
    size_t m = json_array_size(v);
    if (m > (size_t)max)
        return terse_err(TERSE_ERR_INVALID, "request: \"%s\" has %zu entries, at most %d allowed", k, m, max);
    *out = terse_calloc(m ? m : 1, sizeof **out, "request strings");
    if (!*out) return TERSE_ERR_NOMEM;
    for (size_t i = 0; i < m; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return terse_err(TERSE_ERR_INVALID, "request: \"%s\"[%zu] is %s, expected a string", k, i, kind(e));
        (*out)[i] = json_string_value(e);
    }
    *n = (int32_t)m;
    return TERSE_OK;
}

#define MAX_LIST 100000

static int set_field(terse_request *q, const char *k, json_t *v, int flags) {
    terse_compress_params *p = &q->p;
    int b = 0, e = 0;
    int64_t i;
    double x;
    int st = TERSE_OK;
    static const char *const methods[] = {"selective", "llmlingua", "longllmlingua", NULL};
    static const char *const units[] = {"token", "phrase", "sentence", NULL};
    static const char *const conds[] = {"none", "before", "after", "none_condition",
                                        "before_condition", "after_condition", NULL};
    static const char *const reorders[] = {"original", "sort", "two_stage", NULL};

    if (!strcmp(k, "instruction") || !strcmp(k, "question")) {
        if (!json_is_string(v)) return bad(k, v, "a string");
        if (k[0] == 'i') q->prompt.instruction = json_string_value(v);
        else q->prompt.question = json_string_value(v);
    } else if (!strcmp(k, "context") || !strcmp(k, "contexts") || !strcmp(k, "prompt")) {
        if (q->contexts)
            return terse_err(TERSE_ERR_INVALID, "request: \"%s\" given twice (with \"context\", "
                             "\"contexts\" or \"prompt\")", k);
        int32_t n;
        if ((st = get_strings(k, v, 1, &q->contexts, &n, MAX_LIST))) return st;
        q->prompt.contexts = q->contexts;
        q->prompt.n_contexts = n;
    } else if (!strcmp(k, "method")) {
        if (!(st = get_enum(k, v, methods, &e))) p->method = (terse_method)e;
    } else if (!strcmp(k, "unit")) {
        if (!(st = get_enum(k, v, units, &e))) p->unit = (terse_unit)e;
    } else if (!strcmp(k, "rate")) {
        if (!(st = get_num(k, v, 0, 1, &x))) {
            if (x <= 0) return terse_err(TERSE_ERR_INVALID, "request: \"rate\" is %g, expected a number in (0, 1]", x);
            p->rate = x;
        }
    } else if (!strcmp(k, "target_token") || !strcmp(k, "target")) {
        if (!(st = get_int(k, v, -1, INT32_MAX, &i))) {
            if (i == 0) return terse_err(TERSE_ERR_INVALID, "request: \"%s\" is 0, expected -1 (none) or a positive count", k);
            p->target = i < 0 ? 0 : i;
        }
    } else if (!strcmp(k, "force_tokens")) {
        st = get_strings(k, v, 0, &q->force, &p->n_force_tokens, MAX_LIST);
        p->force_tokens = q->force;
    } else if (!strcmp(k, "protect")) {
        st = get_strings(k, v, 1, &q->protect, &p->n_protect_patterns, MAX_LIST);
        p->protect_patterns = q->protect;
    } else if (!strcmp(k, "force_context_ids")) {
        if (json_is_null(v)) return TERSE_OK;
        if (!json_is_array(v)) return bad(k, v, "an array of integers");
        size_t m = json_array_size(v);
        if (m > MAX_LIST) return terse_err(TERSE_ERR_INVALID, "request: \"%s\" has %zu entries, at most %d allowed", k, m, MAX_LIST);
        q->force_ids = terse_calloc(m ? m : 1, sizeof *q->force_ids, "request ids");
        if (!q->force_ids) return TERSE_ERR_NOMEM;
        for (size_t j = 0; j < m; j++) {
            char name[64];
            snprintf(name, sizeof name, "force_context_ids[%zu]", j);
            if ((st = get_int(name, json_array_get(v, j), 0, INT32_MAX, &i))) return st;
            q->force_ids[j] = (int32_t)i;
        }
        p->force_context_ids = q->force_ids;
        p->n_force_context_ids = (int32_t)m;
    } else if (!strcmp(k, "keep_digits") || !strcmp(k, "force_reserve_digit")) {
        st = get_bool(k, v, &p->keep_digits);
    } else if (!strcmp(k, "compat")) {
        st = get_bool(k, v, &p->compat);
    } else if (!strcmp(k, "structured")) {
        st = get_bool(k, v, &p->structured);
    } else if (!strcmp(k, "keep_layout")) {
        st = get_bool(k, v, &p->keep_layout);
    } else if (!strcmp(k, "return_tokens")) {
        st = get_bool(k, v, &p->return_tokens);
    } else if (!strcmp(k, "iterative_size")) {
        if (!(st = get_int(k, v, 1, 1 << 20, &i))) p->iterative_size = (int32_t)i;
    } else if (!strcmp(k, "use_context_level_filter")) {
        st = get_bool(k, v, &p->use_context_filter);
    } else if (!strcmp(k, "use_sentence_level_filter")) {
        st = get_bool(k, v, &p->use_sentence_filter);
    } else if (!strcmp(k, "use_token_level_filter")) {
        st = get_bool(k, v, &p->use_token_filter);
    } else if (!strcmp(k, "condition_in_question")) {
        /* "X_condition" = mode X plus contrastive token scores, as upstream */
        if (!(st = get_enum(k, v, conds, &e))) {
            p->condition_in_question = (terse_condition)(e % 3);
            if (e >= 3) p->condition_compare = 1;
        }
    } else if (!strcmp(k, "condition_compare")) {
        if (!(st = get_bool(k, v, &b))) p->condition_compare |= b;
    } else if (!strcmp(k, "reorder_context")) {
        if (!(st = get_enum(k, v, reorders, &e))) p->reorder = (terse_reorder)e;
    } else if (!strcmp(k, "dynamic_context_compression_ratio")) {
        st = get_num(k, v, -1, 1, &p->dynamic_ratio);
    } else if (!strcmp(k, "add_instruction")) {
        st = get_bool(k, v, &p->add_instruction);
    } else if (!strcmp(k, "concate_question")) {
        st = get_bool(k, v, &p->concate_question);
    } else if (!strcmp(k, "keep_first_sentence") || !strcmp(k, "keep_last_sentence") ||
               !strcmp(k, "keep_sentence_number")) {
        if (!(st = get_int(k, v, 0, INT32_MAX, &i))) {
            if (!strcmp(k, "keep_first_sentence")) p->keep_first_sentence = (int32_t)i;
            else if (!strcmp(k, "keep_last_sentence")) p->keep_last_sentence = (int32_t)i;
            else p->keep_sentence_number = (int32_t)i;
        }
    } else if (!strcmp(k, "high_priority_bonus")) {
        st = get_num(k, v, -1e9, 1e9, &p->high_priority_bonus);
    } else if (!strcmp(k, "token_budget_ratio")) {
        st = get_num(k, v, 0, 1e6, &p->token_budget_ratio);
    } else if (!strcmp(k, "context_budget")) {
        /* upstream eval()s target_token + this string; terse takes "+N", "*N" or "*N+M" */
        if (!json_is_string(v)) return bad(k, v, "a string such as \"+100\" or \"*1.5\"");
        const char *s = json_string_value(v);
        double mul = 1, add = 0;
        char *end;
        while (*s == ' ') s++;
        if (*s == '*') {
            mul = strtod(s + 1, &end);
            s = end;
            while (*s == ' ') s++;
        }
        if (*s == '+' || *s == '-') {
            add = strtod(s, &end);
            s = end;
        }
        while (*s == ' ') s++;
        if (*s || !isfinite(mul) || !isfinite(add) || mul < 0)
            return terse_err(TERSE_ERR_INVALID, "request: \"context_budget\" is \"%.64s\", expected "
                             "\"+N\", \"*N\" or \"*N+M\"", json_string_value(v));
        p->context_budget_mul = mul;
        p->context_budget_add = add;
    } else if (!strcmp(k, "carry")) {
        if (!(st = get_int(k, v, 0, 1 << 20, &i))) p->carry = (int32_t)i;
    } else if (flags & TERSE_REQUEST_STRICT) {
        return terse_err(TERSE_ERR_INVALID, "request: unknown field \"%.64s\"", k);
    }
    return st;
}

int terse_request_parse(const char *json, size_t len, int flags, terse_request **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_request_parse: NULL out");
    *out = NULL;
    if (!json) return terse_err(TERSE_ERR_INVALID, "terse_request_parse: NULL json");
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (!root)
        return terse_err(TERSE_ERR_INVALID, "request: invalid JSON at line %d, column %d: %s",
                         err.line, err.column, err.text);
    if (!json_is_object(root)) {
        int st = terse_err(TERSE_ERR_INVALID, "request: the body is %s, expected a JSON object", kind(root));
        json_decref(root);
        return st;
    }
    terse_request *q = terse_calloc(1, sizeof *q, "request");
    if (!q) { json_decref(root); return TERSE_ERR_NOMEM; }
    q->root = root;
    q->p = terse_compress_default_params();
    const char *k;
    json_t *v;
    int st = TERSE_OK;
    json_object_foreach(root, k, v) {
        if ((st = set_field(q, k, v, flags))) break;
    }
    if (!st && !q->contexts)
        st = terse_err(TERSE_ERR_INVALID, "request: no \"context\" (a string or a list of strings; "
                       "also \"contexts\" or \"prompt\")");
    if (st) { terse_request_free(q); return st; }
    *out = q;
    return TERSE_OK;
}

void terse_request_free(terse_request *q) {
    if (!q) return;
    json_decref(q->root);
    free(q->contexts);
    free(q->force);
    free(q->protect);
    free(q->force_ids);
    free(q);
}

const terse_prompt *terse_request_prompt(const terse_request *q) { return q ? &q->prompt : NULL; }

terse_compress_params terse_request_params(const terse_request *q) {
    return q ? q->p : terse_compress_default_params();
}

int terse_compress_json(terse_ctx *ctx, const char *request, size_t len, int flags,
                        const terse_vocab *count_vocab, char **out) {
    if (!out) return terse_err(TERSE_ERR_INVALID, "terse_compress_json: NULL out");
    *out = NULL;
    if (!ctx) return terse_err(TERSE_ERR_INVALID, "terse_compress_json: NULL ctx");
    terse_request *q;
    int st = terse_request_parse(request, len, flags, &q);
    if (st) return st;
    terse_compress_params p = terse_request_params(q);
    p.count_vocab = count_vocab;
    terse_result *r = NULL;
    st = terse_compress(ctx, terse_request_prompt(q), p, &r);
    if (!st) st = terse_result_json(r, p.return_tokens, out);
    if (!st && (flags & TERSE_REQUEST_COMPACT)) {   /* the same JSON on one line */
        json_t *o = json_loads(*out, 0, NULL);
        char *line = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        free(*out);
        *out = line;
        if (!line) st = terse_err(TERSE_ERR_NOMEM, "terse_compress_json: compact dump");
    }
    terse_result_free(r);
    terse_request_free(q);
    return st;
}
