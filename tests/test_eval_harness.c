/* test_eval_harness.c - datasets, the evaluation loop and its reports, on a tiny random-weight
 * model (fast, deterministic), plus the KL divergence against a hand-computed value and the
 * BERTScore-style F1's invariants (identity gives 1, P and R swap with the arguments). */
#include "terse.h"

#include <jansson.h>

#include "helpers.h"

static const char *DATA =
    "{\"prompt\": \"The old lighthouse stood on the cliff. Its keeper was a quiet man. Every "
    "night he climbed the stairs and lit the lamp. Ships passed safely.\"}\n"
    "\n"
    "{\"instruction\": \"Answer.\", \"contexts\": [\"Tom has 3 apples. He buys 4 more.\", "
    "\"Apples are red.\"], \"question\": \"How many apples?\", \"answer\": \"3 + 4 = 7\\n#### 7\"}\n";

/* everything of a report's JSON but the timings */
static char *strip_times(const char *json) {
    json_error_t e;
    json_t *o = json_loads(json, 0, &e);
    if (!o) return NULL;
    json_object_del(o, "seconds");
    json_t *items = json_object_get(o, "items"), *it, *run;
    size_t i, j;
    json_array_foreach(items, i, it) {
        json_array_foreach(json_object_get(it, "runs"), j, run) json_object_del(run, "latency");
    }
    json_array_foreach(json_object_get(o, "summary"), i, it) json_object_del(it, "latency");
    char *s = json_dumps(o, JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

int main(void) {
    /* KL by hand: p = (1/2, 1/2), q = (9/10, 1/10): 0.5 ln(5/9) + 0.5 ln 5 = 0.5108256... */
    float lp[2] = {logf(0.5f), logf(0.5f)}, lq[2] = {logf(0.9f), logf(0.1f)};
    double kl = terse_kl(lp, lq, 2);
    CHECK(fabs(kl - 0.5 * (log(5.0 / 9.0) + log(5.0))) < 1e-6, "KL %.9f", kl);
    CHECK(terse_kl(lp, lp, 2) == 0.0, "KL(p||p)");
    float lz[2] = {0.0f, -INFINITY};
    CHECK(isinf(terse_kl(lp, lz, 2)), "KL with q_i = 0 < p_i is infinite");
    CHECK(fabs(terse_kl(lz, lp, 2) - log(2.0)) < 1e-6, "KL with p_i = 0 terms skipped");

    /* datasets */
    terse_dataset *d = NULL;
    CHECK_OK(terse_dataset_parse(DATA, strlen(DATA), &d));
    CHECK(terse_dataset_size(d) == 2, "items %d", terse_dataset_size(d));
    terse_dataset *bad = NULL;
    CHECK(terse_dataset_parse("{\"prompt\": 3}\n", 14, &bad) < 0 && !bad, "number prompt refused");
    CHECK(strstr(terse_last_error(), "line 1") != NULL, "error names the line: %s", terse_last_error());
    CHECK(terse_dataset_parse("{\"x\": \"y\"}\n", 11, &bad) < 0, "item without text refused");
    CHECK(terse_dataset_parse("not json\n", 9, &bad) < 0, "bad JSON refused");
    CHECK(terse_dataset_parse("\n\n", 2, &bad) < 0, "empty dataset refused");

    /* a tiny model */
    const char *path = "build/tests/harness_model.gguf";
    terse_random_params rp = {.arch = "llama", .n_vocab = 300, .n_ctx = 512, .n_embd = 32,
                              .n_layer = 2, .n_head = 2, .n_ff = 64, .type = TERSE_TYPE_F32,
                              .seed = 3, .init_std = 0.5f};
    CHECK_OK(terse_write_random_model(path, &rp));
    terse_model *m = NULL;
    CHECK_OK(terse_model_load(path, terse_model_default_params(), &m));
    terse_ctx *c = test_ctx(m, 0);
    if (!c || !d) { terse_dataset_free(d); terse_model_free(m); return test_summary("eval_harness"); }

    /* BERTScore invariants */
    terse_prf bs, bs2;
    CHECK_OK(terse_bertscore(c, "the lamp was lit", "the lamp was lit", &bs));
    CHECK(fabs(bs.f - 1) < 1e-5 && fabs(bs.p - 1) < 1e-5, "identity F %.6f", bs.f);
    CHECK_OK(terse_bertscore(c, "the lamp was lit", "ships passed safely at night", &bs));
    CHECK_OK(terse_bertscore(c, "ships passed safely at night", "the lamp was lit", &bs2));
    CHECK(bs.f < 0.999 && fabs(bs.p - bs2.r) < 1e-6 && fabs(bs.r - bs2.p) < 1e-6,
          "P/R swap: %.6f %.6f / %.6f %.6f", bs.p, bs.r, bs2.p, bs2.r);
    CHECK_OK(terse_bertscore(c, "", "the lamp", &bs));
    CHECK(bs.f == 0, "empty candidate F %.3f", bs.f);

    /* the loop */
    const char *methods[] = {"selective-token", "random-phrase", "tfidf", "none"};
    const double rates[] = {0.5, 0.8};
    terse_evaluate_params p = terse_evaluate_default_params();
    p.methods = methods;
    p.n_methods = 4;
    p.rates = rates;
    p.n_rates = 2;
    p.max_new_tokens = 6;
    terse_report *r1 = NULL, *r2 = NULL;
    CHECK_OK(terse_evaluate(c, c, d, &p, &r1));
    CHECK_OK(terse_evaluate(c, c, d, &p, &r2));
    char *j1 = NULL, *j2 = NULL, *md = NULL, *svg = NULL;
    if (r1 && r2) {
        CHECK_OK(terse_report_json(r1, &j1));
        CHECK_OK(terse_report_json(r2, &j2));
        char *s1 = j1 ? strip_times(j1) : NULL, *s2 = j2 ? strip_times(j2) : NULL;
        CHECK(s1 && s2 && !strcmp(s1, s2), "two runs give the same report");
        free(s1);
        free(s2);
        json_error_t e;
        json_t *o = j1 ? json_loads(j1, 0, &e) : NULL;
        CHECK(o != NULL, "report is JSON: %s", o ? "" : e.text);
        /* full + 3 rated methods x 2 rates + none = 8 rows per item, 6 groups */
        json_t *items = json_object_get(o, "items");
        CHECK(json_array_size(items) == 2, "items in report");
        CHECK(json_array_size(json_object_get(json_array_get(items, 0), "runs")) == 8, "runs per item");
        json_t *sum = json_object_get(o, "summary");
        CHECK(json_array_size(sum) == 8, "summary groups %zu", json_array_size(sum));
        json_t *full = json_array_get(sum, 0);
        CHECK(!strcmp(json_string_value(json_object_get(full, "method")), "full"), "full first");
        CHECK(json_real_value(json_object_get(full, "kl")) == 0 ||
              json_integer_value(json_object_get(full, "kl")) == 0, "full KL 0");
        /* exact match is measured only where there is an answer: item 2 */
        json_t *run0 = json_array_get(json_object_get(json_array_get(items, 0), "runs"), 0);
        CHECK(json_is_null(json_object_get(run0, "exact_match")), "no answer, no EM");
        json_t *run1 = json_array_get(json_object_get(json_array_get(items, 1), "runs"), 0);
        CHECK(json_is_number(json_object_get(run1, "exact_match")), "EM with an answer");
        /* the "none" control keeps instruction + question only */
        json_t *runs1 = json_object_get(json_array_get(items, 1), "runs");
        json_t *none = json_array_get(runs1, json_array_size(runs1) - 1);
        CHECK(!strcmp(json_string_value(json_object_get(none, "method")), "none") &&
              !strcmp(json_string_value(json_object_get(none, "prompt")), "Answer.\n\nHow many apples?"),
              "none prompt");
        json_decref(o);
        CHECK_OK(terse_report_markdown(r1, &md));
        CHECK(md && strstr(md, "| selective-token | 0.50 |") && strstr(md, "| none | 1.00 |"),
              "markdown rows:\n%s", md);
        CHECK_OK(terse_report_svg(r1, "rougeL", &svg));
        CHECK(svg && !strncmp(svg, "<svg", 4) && strstr(svg, "polyline") && strstr(svg, "</svg>"),
              "svg");
        char *none_svg = NULL;
        CHECK(terse_report_svg(r1, "nope", &none_svg) < 0 && !none_svg, "unknown metric refused");
        CHECK_OK(terse_report_write(r1, "build/tests/eval_report"));
        FILE *f = fopen("build/tests/eval_report/report.md", "r");
        CHECK(f != NULL, "report.md written");
        if (f) fclose(f);
    }
    free(j1);
    free(j2);
    free(md);
    free(svg);
    terse_report_free(r1);
    terse_report_free(r2);

    /* an item with nothing to compress runs on the full prompt; LongLLMLingua without a
     * question is skipped with a note, not an error */
    {
        const char *odd = "{\"question\": \"How many?\", \"answer\": \"#### 2\"}\n"
                          "{\"prompt\": \"A passage with no question at all.\"}\n";
        terse_dataset *d2 = NULL;
        CHECK_OK(terse_dataset_parse(odd, strlen(odd), &d2));
        const char *m2[] = {"selective-phrase", "longllmlingua"};
        terse_evaluate_params p2 = terse_evaluate_default_params();
        p2.methods = m2;
        p2.n_methods = 2;
        p2.max_new_tokens = 4;
        terse_report *r3 = NULL;
        char *j3 = NULL;
        CHECK_OK(terse_evaluate(c, c, d2, &p2, &r3));
        if (r3) CHECK_OK(terse_report_json(r3, &j3));
        CHECK(j3 && strstr(j3, "item 0 has no contexts: selective-phrase ran on the full prompt"),
              "no-context note");
        CHECK(j3 && strstr(j3, "item 1: longllmlingua at rate 0.5 skipped"), "skip note");
        free(j3);
        terse_report_free(r3);
        terse_dataset_free(d2);
    }

    /* bad parameters */
    const char *unknown[] = {"zip"};
    p.methods = unknown;
    p.n_methods = 1;
    terse_report *rr = NULL;
    CHECK(terse_evaluate(c, c, d, &p, &rr) < 0 && !rr, "unknown method refused");
    p.methods = methods;
    p.n_methods = 4;
    const double bad_rate[] = {1.5};
    p.rates = bad_rate;
    p.n_rates = 1;
    CHECK(terse_evaluate(c, c, d, &p, &rr) < 0 && !rr, "rate 1.5 refused");

    terse_ctx_free(c);
    terse_model_free(m);
    terse_dataset_free(d);
    remove(path);
    return test_summary("eval_harness");
}
