/* harness.c - the evaluation loop behind `terse eval`: datasets (JSONL), and for each item
 * the target model's output after the full prompt and after every method x rate, scored.
 *
 * One item, step by step:
 *   1. the prompt: [shared_context,] the item's contexts, instruction and question (wrapped in
 *      question_prefix/suffix); "full" = terse_baseline_compress(FULL) assembles it exactly as
 *      terse_compress does;
 *   2. the target writes after the full prompt (BOS + tokens, the most recent n_ctx -
 *      max_new_tokens tokens if longer): the reference output Y; the log-softmax rows that
 *      predict each token of Y after the full prompt are kept (P, nY x V);
 *   3. for each method and rate: compress (terse_compress with compressor, or a baseline),
 *      timed; one forward pass of compressed prompt + Y gives the rows Q (KL(P||Q) averaged
 *      over Y's tokens), the cache is cut back to the prompt and the target writes its own
 *      output with the same decoding settings; that output is scored against Y (BLEU, ROUGE,
 *      METEOR, BERTScore) and, when the item has a reference answer, against it (exact match
 *      of the final number, ROUGE-L).
 * Method "soft" (params.soft): the shared context is replaced by the soft prompt; the target
 * reads BOS, the soft vectors, then the rest of the item's prompt (its tokens count N + rest).
 * Methods "gist" and "gist-full" (a target with a gist token): the item's instruction as K
 * cached gist tokens, or in full, in the gist model's template (gist_eval.c).
 * Rows are aggregated per method x rate into means. Same inputs and seed, same report.
 * Not here: the report formats (report.c), the metrics themselves (one file each).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "eval/gist_eval.h"
#include "eval/report.h"
#include "train/gist.h"

/* ---------------------------------------------------------------------------------------- */
/* Datasets                                                                                  */

typedef struct {
    char *instruction;
    char **contexts;
    int32_t n_contexts;
    char *question;
    char *reference;
} ev_item;

struct terse_dataset {
    ev_item *items;
    int32_t n;
};

static void item_free(ev_item *it) {
    free(it->instruction);
    for (int32_t i = 0; i < it->n_contexts; i++) free(it->contexts[i]);
    free(it->contexts);
    free(it->question);
    free(it->reference);
}

void terse_dataset_free(terse_dataset *d) {
    if (!d) return;
    for (int32_t i = 0; i < d->n; i++) item_free(&d->items[i]);
    free(d->items);
    free(d);
}

int32_t terse_dataset_size(const terse_dataset *d) { return d ? d->n : 0; }

/* a string field of o into *out (copied), NULL when absent; error when not a string */
static int get_string(json_t *o, const char *key, int64_t line, char **out) {
    *out = NULL;
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return TERSE_OK;
    if (!json_is_string(v))
        return terse_err(TERSE_ERR_FORMAT, "dataset line %lld: \"%s\" is not a string",
                         (long long)line, key);
    *out = strndup(json_string_value(v), json_string_length(v));
    return *out ? TERSE_OK : terse_err(TERSE_ERR_NOMEM, "dataset line %lld", (long long)line);
}

static int parse_item(json_t *o, int64_t line, ev_item *it) {
    memset(it, 0, sizeof *it);
    if (!json_is_object(o))
        return terse_err(TERSE_ERR_FORMAT, "dataset line %lld: not a JSON object", (long long)line);
    char *prompt = NULL;
    int rc = get_string(o, "prompt", line, &prompt);
    if (!rc) rc = get_string(o, "instruction", line, &it->instruction);
    if (!rc) rc = get_string(o, "question", line, &it->question);
    if (!rc) rc = get_string(o, "reference", line, &it->reference);
    if (!rc && !it->reference) rc = get_string(o, "answer", line, &it->reference);
    if (!rc && !it->reference) rc = get_string(o, "output", line, &it->reference);
    json_t *ctx = json_object_get(o, "contexts");
    if (!ctx) ctx = json_object_get(o, "context");
    json_t *input = json_object_get(o, "input");   /* instruction data: its input */
    if (!ctx && !prompt && json_is_string(input) && json_string_length(input) > 0) ctx = input;
    if (!rc && prompt) {
        if (ctx) rc = terse_err(TERSE_ERR_FORMAT, "dataset line %lld: both \"prompt\" and "
                                "\"contexts\"", (long long)line);
        it->contexts = terse_malloc(sizeof *it->contexts, "dataset");
        if (!rc && !it->contexts) rc = TERSE_ERR_NOMEM;
        if (!rc) it->contexts[it->n_contexts++] = prompt, prompt = NULL;
    } else if (!rc && ctx) {
        if (json_is_string(ctx)) {
            it->contexts = terse_malloc(sizeof *it->contexts, "dataset");
            if (!it->contexts) rc = TERSE_ERR_NOMEM;
            else if (!(it->contexts[0] = strdup(json_string_value(ctx)))) rc = TERSE_ERR_NOMEM;
            else it->n_contexts = 1;
        } else if (json_is_array(ctx)) {
            size_t n = json_array_size(ctx);
            it->contexts = terse_calloc(n ? n : 1, sizeof *it->contexts, "dataset");
            if (!it->contexts) rc = TERSE_ERR_NOMEM;
            for (size_t i = 0; !rc && i < n; i++) {
                json_t *s = json_array_get(ctx, i);
                if (!json_is_string(s)) {
                    rc = terse_err(TERSE_ERR_FORMAT, "dataset line %lld: contexts[%zu] is not a "
                                   "string", (long long)line, i);
                    break;
                }
                if (!(it->contexts[i] = strdup(json_string_value(s)))) rc = TERSE_ERR_NOMEM;
                else it->n_contexts++;
            }
        } else {
            rc = terse_err(TERSE_ERR_FORMAT, "dataset line %lld: \"contexts\" is neither a string "
                           "nor an array", (long long)line);
        }
    }
    free(prompt);
    if (!rc && it->n_contexts == 0 && !it->question && !it->instruction)
        rc = terse_err(TERSE_ERR_FORMAT, "dataset line %lld: no \"prompt\", \"contexts\", "
                       "\"instruction\" or \"question\"", (long long)line);
    if (rc) item_free(it), memset(it, 0, sizeof *it);
    return rc;
}

int terse_dataset_parse(const char *text, size_t len, terse_dataset **out) {
    if (!text || !out) return terse_err(TERSE_ERR_INVALID, "terse_dataset_parse: NULL");
    *out = NULL;
    terse_dataset *d = terse_calloc(1, sizeof *d, "dataset");
    if (!d) return TERSE_ERR_NOMEM;
    int32_t cap = 0;
    int64_t line = 0;
    int rc = TERSE_OK;
    for (size_t p = 0; p < len && !rc;) {
        const char *nl = memchr(text + p, '\n', len - p);
        size_t e = nl ? (size_t)(nl - text) : len;
        line++;
        size_t a = p;
        while (a < e && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        if (a < e) {
            json_error_t jerr;
            json_t *o = json_loadb(text + a, e - a, 0, &jerr);
            if (!o) {
                rc = terse_err(TERSE_ERR_FORMAT, "dataset line %lld: %s", (long long)line, jerr.text);
                break;
            }
            if (d->n == cap) {
                cap = cap ? cap * 2 : 64;
                ev_item *it = terse_reallocarray(d->items, (size_t)cap, sizeof *it, "dataset");
                if (!it) { json_decref(o); rc = TERSE_ERR_NOMEM; break; }
                d->items = it;
            }
            rc = parse_item(o, line, &d->items[d->n]);
            json_decref(o);
            if (!rc) d->n++;
        }
        p = e + 1;
    }
    if (!rc && d->n == 0) rc = terse_err(TERSE_ERR_FORMAT, "dataset: no items");
    if (rc) { terse_dataset_free(d); return rc; }
    *out = d;
    return TERSE_OK;
}

int terse_dataset_load(const char *path, terse_dataset **out) {
    if (!path || !out) return terse_err(TERSE_ERR_INVALID, "terse_dataset_load: NULL");
    char *text;
    size_t len;
    int rc = terse_read_all(path, &text, &len);
    if (rc) return terse_err_wrap(rc, "reading dataset %s", path);
    rc = terse_dataset_parse(text, len, out);
    free(text);
    return rc ? terse_err_wrap(rc, "%s", path) : TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* Methods                                                                                   */

static const struct {
    const char *name;
    int is_baseline;    /* 1: terse_baseline_compress, 0: terse_compress, 2: soft prompt,
                           3: gist (gist_eval.c) */
    int kind;           /* terse_baseline or terse_method */
    terse_unit unit;
    int rated;          /* 0: one run, rate 1 (none, full) */
} method_table[] = {
    {"selective-token", 0, TERSE_METHOD_SELECTIVE, TERSE_UNIT_TOKEN, 1},
    {"selective-phrase", 0, TERSE_METHOD_SELECTIVE, TERSE_UNIT_PHRASE, 1},
    {"selective-sentence", 0, TERSE_METHOD_SELECTIVE, TERSE_UNIT_SENTENCE, 1},
    {"llmlingua", 0, TERSE_METHOD_LLMLINGUA, TERSE_UNIT_TOKEN, 1},
    {"longllmlingua", 0, TERSE_METHOD_LONGLLMLINGUA, TERSE_UNIT_TOKEN, 1},
    {"random-token", 1, TERSE_BASELINE_RANDOM_TOKEN, TERSE_UNIT_TOKEN, 1},
    {"random-phrase", 1, TERSE_BASELINE_RANDOM_PHRASE, TERSE_UNIT_PHRASE, 1},
    {"random-sentence", 1, TERSE_BASELINE_RANDOM_SENTENCE, TERSE_UNIT_SENTENCE, 1},
    {"tfidf", 1, TERSE_BASELINE_TFIDF, TERSE_UNIT_PHRASE, 1},
    {"none", 1, TERSE_BASELINE_NO_CONTEXT, TERSE_UNIT_TOKEN, 0},
    {"full", 1, TERSE_BASELINE_FULL, TERSE_UNIT_TOKEN, 0},
    {"soft", 2, TERSE_BASELINE_FULL, TERSE_UNIT_TOKEN, 0},
    {"gist", 3, TERSE_BASELINE_FULL, TERSE_UNIT_TOKEN, 0},
    {"gist-full", 3, TERSE_BASELINE_FULL, TERSE_UNIT_TOKEN, 0},
};
enum { N_METHOD_KINDS = sizeof method_table / sizeof *method_table };

const char *ev_method_name(int i) {
    return i >= 0 && i < (int)N_METHOD_KINDS ? method_table[i].name : "?";
}

static int method_index(const char *name) {
    for (int i = 0; i < (int)N_METHOD_KINDS; i++)
        if (!strcmp(method_table[i].name, name)) return i;
    return -1;
}

terse_evaluate_params terse_evaluate_default_params(void) {
    terse_evaluate_params p;
    memset(&p, 0, sizeof p);
    p.max_new_tokens = 64;
    p.sample = terse_sample_default_params();
    p.seed = 1;
    p.keep_texts = 1;
    p.heatmaps = 1;
    p.gist_k = 0; /* the target's trained K */
    return p;
}

/* ---------------------------------------------------------------------------------------- */
/* Running one prompt on the target                                                          */

typedef struct {
    terse_ctx *c;
    const terse_vocab *v;
    int32_t V, n_ctx;
    const terse_evaluate_params *p;
    const terse_soft *soft;     /* set while the "soft" method runs */
} target;

/* rows predicting cont[0..nc) after BOS + soft + ids[k..n) (ids[0] is BOS when k = 1) */
static int soft_next_logprobs(const target *t, const int32_t *ids, int32_t n, const int32_t *cont,
                              int32_t nc, float *rows) {
    int32_t k = terse_vocab_bos(t->v) >= 0, m = n - k + nc - 1, pre;
    int rc = (pre = terse_soft_prefix(t->c, t->soft)) < 0 ? pre : TERSE_OK;
    if (!rc && pre + m > t->n_ctx)
        rc = terse_err(TERSE_ERR_RANGE, "soft prompt (%d) + prompt (%d) + output (%d) exceed n_ctx %d",
                       pre, n - k, nc, t->n_ctx);
    int32_t *in = rc ? NULL : terse_malloc((size_t)(m + 1) * sizeof *in, "soft prompt rows");
    if (!rc && !in) rc = TERSE_ERR_NOMEM;
    int32_t first = 0; /* rows before the batch: the soft prompt's last row predicts */
    if (!rc && n - k == 0) {
        terse_soft_info in_;
        terse_soft_get_info(t->soft, &in_);
        rc = terse_eval_logits(t->c, in_.n_tokens - 1, rows, 1);
        first = 1;
    }
    if (!rc && m > 0) {
        memcpy(in, ids + k, (size_t)(n - k) * sizeof *in);
        memcpy(in + n - k, cont, (size_t)(nc - 1) * sizeof *in);
        terse_batch b = {.n = m, .ids = in};
        rc = terse_eval(t->c, &b);
        for (int32_t i = first; i < nc && !rc; i++)
            rc = terse_eval_logits(t->c, n - k - 1 + i, rows + (size_t)i * (size_t)t->V, 1);
    }
    free(in);
    return rc;
}

/* BOS + tokens of text, keeping the most recent tokens that leave room for the output */
static int prompt_ids(const target *t, const char *text, int32_t **ids, int32_t *n,
                      int64_t *n_all, int *truncated) {
    size_t len = strlen(text);
    int64_t m = terse_token_count(t->v, text, len);
    if (m < 0) return (int)m;
    int32_t bos = terse_vocab_bos(t->v);
    int64_t total = m + (bos >= 0 ? 1 : 0);
    int32_t *all = terse_malloc((size_t)(total + 1) * sizeof *all, "prompt ids");
    if (!all) return TERSE_ERR_NOMEM;
    int64_t k = 0;
    if (bos >= 0) all[k++] = bos;
    int64_t got = terse_tokenize(t->v, text, len, 0, all + k, NULL, m + 1);
    if (got < 0) { free(all); return (int)got; }
    total = k + got;
    *n_all = total;
    int64_t room = t->n_ctx - t->p->max_new_tokens - 1;
    *truncated = 0;
    if (total > room) { /* keep BOS and the most recent tokens */
        int64_t keep = room - k;
        memmove(all + k, all + total - keep, (size_t)keep * sizeof *all);
        total = room;
        *truncated = 1;
    }
    if (total == 0) { free(all); return terse_err(TERSE_ERR_INVALID, "empty prompt and no BOS"); }
    *ids = all;
    *n = (int32_t)total;
    return TERSE_OK;
}

/* the target's output after ids (cache: empty or ids[0..n-1) already evaluated when warm) */
static int generate_text(const target *t, const int32_t *ids, int32_t n, int warm, char **text,
                         int32_t **out_ids, int32_t *n_out) {
    int32_t *gen = terse_malloc((size_t)(t->p->max_new_tokens + 1) * sizeof *gen, "output ids");
    if (!gen) return TERSE_ERR_NOMEM;
    int32_t g;
    if (t->soft) { /* BOS, the soft vectors, then ids after their BOS */
        int32_t k = terse_vocab_bos(t->v) >= 0;
        int rc = terse_soft_prefix(t->c, t->soft);
        if (rc < 0) { free(gen); return rc; }
        g = terse_generate(t->c, ids + k, n - k, t->p->sample, gen, t->p->max_new_tokens);
    } else if (warm) {
        int rc = terse_kv_truncate(t->c, n - 1);
        if (rc) { free(gen); return rc; }
        g = terse_generate(t->c, ids + n - 1, 1, t->p->sample, gen, t->p->max_new_tokens);
    } else {
        terse_kv_clear(t->c);
        g = terse_generate(t->c, ids, n, t->p->sample, gen, t->p->max_new_tokens);
    }
    if (g < 0) { free(gen); return g; }
    int64_t need = terse_detokenize(t->v, gen, g, NULL, 0);
    if (need < 0) { free(gen); return (int)need; }
    char *s = terse_malloc((size_t)need + 1, "output text");
    if (!s) { free(gen); return TERSE_ERR_NOMEM; }
    terse_detokenize(t->v, gen, g, s, need + 1);
    s[need] = 0;
    if (t->p->stop && *t->p->stop) {
        char *cut = strstr(s, t->p->stop);
        if (cut) *cut = 0;
    }
    *text = s;
    if (out_ids) *out_ids = gen, *n_out = g;
    else free(gen);
    return TERSE_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* The loop                                                                                  */

static char *join_wrapped(const char *pre, const char *s, const char *post) {
    terse_buf b = {0};
    terse_buf_puts(&b, pre ? pre : "");
    terse_buf_puts(&b, s);
    terse_buf_puts(&b, post ? post : "");
    char *out;
    return terse_buf_take(&b, &out) ? NULL : out;
}

static int score_output(terse_ctx *tc, const terse_wordnet *wn, const char *out, const char *ref,
                        const char *answer, ev_row *r) {
    int rc = terse_bleu_sentence(out, &ref, 1, &r->bleu);
    terse_rouge rg;
    if (!rc) rc = terse_rouge_score(ref, out, 1, &rg);
    if (!rc) r->rouge1 = rg.rouge1.f, r->rouge2 = rg.rouge2.f, r->rougeL = rg.rougeL.f;
    r->meteor = NAN;
    if (!rc && wn) rc = terse_meteor(wn, ref, out, &r->meteor);
    terse_prf bs;
    if (!rc) rc = terse_bertscore(tc, out, ref, &bs);
    if (!rc) r->bert = bs.f;
    r->em = NAN;
    r->ans_rougeL = NAN;
    if (!rc && answer) {
        r->em = terse_exact_match(out, answer);
        if (!(rc = terse_rouge_score(answer, out, 1, &rg))) r->ans_rougeL = rg.rougeL.f;
    }
    return rc;
}

int terse_evaluate(terse_ctx *compressor, terse_ctx *tgt, const terse_dataset *d,
                   const terse_evaluate_params *pp, terse_report **out) {
    if (!compressor || !tgt || !d || !out)
        return terse_err(TERSE_ERR_INVALID, "terse_evaluate: NULL argument");
    *out = NULL;
    terse_evaluate_params p = pp ? *pp : terse_evaluate_default_params();
    if (p.max_new_tokens < 1) return terse_err(TERSE_ERR_INVALID, "max_new_tokens %d", p.max_new_tokens);
    static const char *const default_methods[] = {"selective-phrase", "random-phrase"};
    static const double default_rate = 0.5;
    if (!p.methods || p.n_methods <= 0) p.methods = default_methods, p.n_methods = 2;
    if (!p.rates || p.n_rates <= 0) p.rates = &default_rate, p.n_rates = 1;
    for (int32_t i = 0; i < p.n_rates; i++)
        if (!(p.rates[i] > 0 && p.rates[i] <= 1))
            return terse_err(TERSE_ERR_INVALID, "rate %g not in (0, 1]", p.rates[i]);
    for (int32_t i = 0; i < p.n_methods; i++) {
        if (method_index(p.methods[i]) < 0)
            return terse_err(TERSE_ERR_INVALID, "unknown method \"%s\"", p.methods[i]);
        if (!strcmp(p.methods[i], "soft") && !p.soft)
            return terse_err(TERSE_ERR_INVALID, "method \"soft\" needs a soft prompt (params.soft)");
        if (method_table[method_index(p.methods[i])].is_baseline == 3) {
            if (gist_token_id(terse_ctx_model(tgt)) < 0)
                return terse_err(TERSE_ERR_INVALID, "method \"%s\" needs a target model with a "
                                 "gist token (terse finetune --gist K)", p.methods[i]);
            if (p.gist_k < 0 || p.gist_k > GIST_MAX_K)
                return terse_err(TERSE_ERR_INVALID, "gist_k %d (1..%d, 0: the model's)", p.gist_k,
                                 GIST_MAX_K);
            if (!p.gist_k) p.gist_k = terse_model_gist_k(terse_ctx_model(tgt));
        }
    }

    target t = {.c = tgt, .p = &p};
    t.v = terse_model_vocab(terse_ctx_model(tgt));
    if (!t.v) return terse_err(TERSE_ERR_INVALID, "the target model has no vocabulary");
    t.V = terse_vocab_size(t.v);
    t.n_ctx = terse_ctx_n_ctx(tgt);
    const terse_vocab *cv = terse_model_vocab(terse_ctx_model(compressor));
    if (!cv) return terse_err(TERSE_ERR_INVALID, "the compressor model has no vocabulary");
    if (t.n_ctx <= p.max_new_tokens + 8)
        return terse_err(TERSE_ERR_INVALID, "n_ctx %d leaves no room for a prompt and %d new "
                         "tokens", t.n_ctx, p.max_new_tokens);

    int32_t first = p.offset > 0 ? p.offset : 0;
    int32_t last = d->n;
    if (p.limit > 0 && first + p.limit < last) last = first + p.limit;
    if (first >= last) return terse_err(TERSE_ERR_INVALID, "offset %d leaves no items of %d", first, d->n);

    terse_report *r;
    int rc = ev_report_new(&p, &r);
    if (rc) return rc;
    ev_report_models(r, terse_ctx_model(compressor), terse_ctx_model(tgt));
    terse_wordnet *wn = NULL;
    if (terse_wordnet_load(p.wordnet_dir, &wn) != TERSE_OK) {
        wn = NULL;
        ev_report_note(r, "METEOR skipped: WordNet not found (install wordnet-base)");
        terse_err_clear();
    }
    int64_t runs_per_item = 1;
    for (int32_t m = 0; m < p.n_methods; m++)
        runs_per_item += method_table[method_index(p.methods[m])].rated ? p.n_rates : 1;
    int64_t done_runs = 0, total_runs = runs_per_item * (last - first);
    double t_start = terse_now();
    /* the shared context, split into pieces when asked */
    ev_words shared;
    memset(&shared, 0, sizeof shared);
    if (p.shared_context) {
        const char *sep = p.shared_context_split, *s = p.shared_context, *q;
        size_t ls = sep ? strlen(sep) : 0;
        while (ls && (q = strstr(s, sep))) {
            if (q > s) ev_words_push(&shared, s, (size_t)(q - s));
            s = q + ls;
        }
        if (*s) ev_words_push(&shared, s, strlen(s));
    }
    if ((rc = ev_words_done(&shared))) { terse_report_free(r); terse_wordnet_free(wn); return rc; }
    if (p.soft) {
        terse_soft_info si;
        terse_soft_get_info(p.soft, &si);
        if (!p.shared_context)
            ev_report_note(r, "soft: no shared context to replace; the soft prompt is put before "
                           "each full prompt");
        else if (si.prompt && strcmp(si.prompt, p.shared_context))
            ev_report_note(r, "soft: the soft prompt was distilled from another text than the "
                           "shared context");
    }
    float *P = terse_malloc((size_t)(p.max_new_tokens + 1) * (size_t)t.V * sizeof *P, "rows P");
    float *Q = terse_malloc((size_t)(p.max_new_tokens + 1) * (size_t)t.V * sizeof *Q, "rows Q");
    if (!P || !Q) rc = TERSE_ERR_NOMEM;

    for (int32_t i = first; i < last && !rc; i++) {
        const ev_item *it = &d->items[i];
        /* the prompt */
        int32_t n_ctx_items = it->n_contexts + shared.n;
        const char **ctxs = terse_calloc((size_t)(n_ctx_items ? n_ctx_items : 1), sizeof *ctxs, "contexts");
        char *question = it->question ? join_wrapped(p.question_prefix, it->question, p.question_suffix) : NULL;
        if (!ctxs || (it->question && !question)) { free(ctxs); free(question); rc = TERSE_ERR_NOMEM; break; }
        int32_t k = 0;
        for (int32_t c = 0; c < shared.n; c++) ctxs[k++] = shared.w[c];
        for (int32_t c = 0; c < it->n_contexts; c++) ctxs[k++] = it->contexts[c];
        terse_prompt pr = {.instruction = it->instruction, .contexts = ctxs,
                           .n_contexts = n_ctx_items, .question = question};

        /* 2. the full prompt's output Y and its rows P */
        char *full_text = NULL, *y_text = NULL;
        int32_t *full_ids = NULL, *y_ids = NULL, n_full = 0, n_y = 0;
        int truncated = 0;
        rc = terse_baseline_compress(cv, &pr, TERSE_BASELINE_FULL, 1.0, p.seed, &full_text, NULL);
        int64_t orig_target_tokens = 0;
        if (!rc) rc = prompt_ids(&t, full_text, &full_ids, &n_full, &orig_target_tokens, &truncated);
        if (!rc) rc = generate_text(&t, full_ids, n_full, 0, &y_text, &y_ids, &n_y);
        if (!rc && n_y > 0) rc = ev_next_logprobs(tgt, full_ids, n_full, y_ids, n_y, t.V, P);
        if (!rc && truncated)
            ev_report_note(r, "item %d: prompt longer than the target's context; its most "
                           "recent tokens were kept", i);
        int64_t orig_model_tokens = !rc ? terse_token_count(cv, full_text, strlen(full_text)) : 0;
        if (!rc) rc = ev_report_item(r, i, full_text, y_text, it->reference);

        /* 3. every method x rate; "full" is the first row of each item */
        for (int32_t m = -1; m < p.n_methods && !rc; m++) {
            int mi = m < 0 ? method_index("full") : method_index(p.methods[m]);
            if (m >= 0 && mi == method_index("full")) continue;
            int32_t n_r = method_table[mi].rated ? p.n_rates : 1;
            for (int32_t ri = 0; ri < n_r && !rc; ri++) {
                double rate = method_table[mi].rated ? p.rates[ri] : 1.0;
                ev_row row;
                memset(&row, 0, sizeof row);
                row.item = i;
                row.method = mi;
                row.rate = rate;
                char *ctext = NULL;
                terse_result *res = NULL;
                double t0 = terse_now();
                if (method_table[mi].is_baseline == 3) { /* gist, gist-full: gist_eval.c */
                    ev_gist_args ga = {.instruction = it->instruction, .contexts = ctxs,
                                       .n_contexts = n_ctx_items, .question = question,
                                       .K = p.gist_k, .full = !strcmp(method_table[mi].name, "gist-full"),
                                       .y = y_ids, .n_y = n_y, .P = P, .Q = Q, .V = t.V,
                                       .sample = &p.sample, .max_new = p.max_new_tokens,
                                       .stop = p.stop};
                    char *gp = NULL, *go = NULL;
                    if (!it->instruction || !*it->instruction) {
                        ev_report_note(r, "item %d has no instruction: %s skipped", i,
                                       method_table[mi].name);
                    } else {
                        rc = ev_gist_run(tgt, &ga, &row, &gp, &go);
                        row.latency = 0;
                        row.origin_model_tokens = orig_model_tokens;
                        row.origin_target_tokens = orig_target_tokens;
                        row.rate_model = orig_model_tokens ?
                                         (double)row.compressed_model_tokens / orig_model_tokens : 0;
                        row.rate_count = NAN;
                        if (!rc) rc = score_output(tgt, wn, go, y_text, it->reference, &row);
                        if (!rc) rc = ev_report_row(r, &row, gp, go);
                        if (rc) rc = terse_err_wrap(rc, "item %d, %s", i, method_table[mi].name);
                    }
                    free(gp), free(go);
                    done_runs++;
                    if (p.progress) p.progress(p.progress_user, done_runs, total_runs);
                    continue;
                }
                if (method_table[mi].is_baseline == 2) {
                    /* the item's prompt without the shared context; the soft prompt before it */
                    terse_prompt rest = pr;
                    rest.contexts += shared.n;
                    rest.n_contexts -= shared.n;
                    char *rt = NULL;
                    rc = terse_baseline_compress(cv, &rest, TERSE_BASELINE_FULL, 1.0, p.seed, &rt, NULL);
                    if (!rc && shared.n > 0 && *rt) { /* the separator that followed the shared context */
                        ctext = join_wrapped("\n\n", rt, NULL);
                        if (!ctext) rc = TERSE_ERR_NOMEM;
                        free(rt);
                    } else ctext = rt;
                    terse_soft_info si;
                    terse_soft_get_info(p.soft, &si);
                    row.latency = 0;
                    row.compressed_model_tokens = rc ? 0 : si.n_tokens + terse_token_count(cv, ctext, strlen(ctext));
                } else if (method_table[mi].is_baseline) {
                    /* the budget in the same vocabulary as terse_compress's */
                    rc = terse_baseline_compress(p.count_vocab ? p.count_vocab : cv, &pr,
                                                 (terse_baseline)method_table[mi].kind, rate,
                                                 p.seed, &ctext, NULL);
                    row.latency = terse_now() - t0;
                    row.compressed_model_tokens = rc ? 0 : terse_token_count(cv, ctext, strlen(ctext));
                } else if (pr.n_contexts == 0) {
                    /* nothing to compress: the compressors keep instruction and question */
                    ev_report_note(r, "item %d has no contexts: %s ran on the full prompt", i,
                                   method_table[mi].name);
                    ctext = strdup(full_text);
                    if (!ctext) rc = TERSE_ERR_NOMEM;
                    row.latency = 0;
                    row.compressed_model_tokens = orig_model_tokens;
                } else {
                    terse_compress_params cp = terse_compress_default_params();
                    cp.method = (terse_method)method_table[mi].kind;
                    cp.unit = method_table[mi].unit;
                    cp.rate = rate;
                    cp.compat = p.compat;
                    cp.count_vocab = p.count_vocab;
                    cp.return_tokens = p.heatmaps && i == first;
                    rc = terse_compress(compressor, &pr, cp, &res);
                    row.latency = terse_now() - t0;
                    if (rc == TERSE_ERR_INVALID) { /* e.g. LongLLMLingua without a question */
                        ev_report_note(r, "item %d: %s at rate %g skipped: %s", i,
                                       method_table[mi].name, rate, terse_last_error());
                        terse_err_clear();
                        rc = TERSE_OK;
                        done_runs++;
                        if (p.progress) p.progress(p.progress_user, done_runs, total_runs);
                        continue;
                    }
                    if (!rc) {
                        terse_compress_stats st;
                        terse_result_get_stats(res, &st);
                        row.compressed_model_tokens = st.compressed_model_tokens;
                        row.latency = st.seconds;
                        if (p.count_vocab) {
                            row.origin_count_tokens = st.origin_count_tokens;
                            row.compressed_count_tokens = st.compressed_count_tokens;
                        }
                        ctext = strdup(terse_result_text(res, NULL));
                        if (!ctext) rc = TERSE_ERR_NOMEM;
                        if (!rc && cp.return_tokens) rc = ev_report_heatmap(r, p.methods[m], rate, res);
                    }
                    terse_result_free(res);
                }
                if (rc) { rc = terse_err_wrap(rc, "item %d, %s at rate %g", i, method_table[mi].name, rate); break; }
                if (p.count_vocab && method_table[mi].is_baseline) {
                    row.origin_count_tokens = terse_token_count(p.count_vocab, full_text, strlen(full_text));
                    row.compressed_count_tokens = terse_token_count(p.count_vocab, ctext, strlen(ctext));
                }
                row.origin_model_tokens = orig_model_tokens;
                row.rate_model = orig_model_tokens ? (double)row.compressed_model_tokens / orig_model_tokens : 0;
                row.rate_count = row.origin_count_tokens > 0 ?
                                 (double)row.compressed_count_tokens / row.origin_count_tokens : NAN;

                /* the target: rows Q along Y, then its own output */
                int32_t *cids = NULL, nc = 0;
                int trunc2 = 0;
                int64_t n_all = 0;
                char *o_text = NULL;
                rc = prompt_ids(&t, ctext, &cids, &nc, &n_all, &trunc2);
                if (!rc) {
                    row.origin_target_tokens = orig_target_tokens;
                    row.compressed_target_tokens = n_all;
                    row.kl = 0;
                    int warm = 0;
                    t.soft = method_table[mi].is_baseline == 2 ? p.soft : NULL;
                    if (t.soft) {
                        terse_soft_info si;
                        terse_soft_get_info(p.soft, &si);
                        row.compressed_target_tokens = n_all + si.n_tokens;
                    }
                    if (n_y > 0) {
                        rc = t.soft ? soft_next_logprobs(&t, cids, nc, y_ids, n_y, Q)
                                    : ev_next_logprobs(tgt, cids, nc, y_ids, n_y, t.V, Q);
                        for (int32_t y = 0; !rc && y < n_y; y++)
                            row.kl += terse_kl(P + (size_t)y * t.V, Q + (size_t)y * t.V, t.V);
                        row.kl /= n_y;
                        warm = !rc;
                    }
                    if (!rc) rc = generate_text(&t, cids, nc, warm, &o_text, NULL, NULL);
                    t.soft = NULL;
                    if (!rc) rc = score_output(tgt, wn, o_text, y_text, it->reference, &row);
                    if (!rc) rc = ev_report_row(r, &row, ctext, o_text);
                }
                free(cids);
                free(o_text);
                free(ctext);
                done_runs++;
                if (p.progress) p.progress(p.progress_user, done_runs, total_runs);
            }
        }
        free(full_text);
        free(y_text);
        free(full_ids);
        free(y_ids);
        free(ctxs);
        free(question);
    }
    free(P);
    free(Q);
    ev_words_free(&shared);
    terse_wordnet_free(wn);
    if (rc) { terse_report_free(r); return rc; }
    ev_report_finish(r, terse_now() - t_start, last - first);
    *out = r;
    return TERSE_OK;
}
