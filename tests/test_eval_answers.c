/* test_eval_answers.c - final-answer extraction and exact match, GSM8K style. The reference
 * format is GSM8K's (Cobbe et al. 2021; ../shared/data/gsm8k/test.jsonl: a solution ending in
 * "#### N"); the first item's answer is 18 (Janet's ducks: 16 - 3 - 4 = 9 eggs at $2). */
#include "terse.h"

#include "harness.h"

static void check_ans(const char *text, const char *want) {
    char buf[64];
    int n = terse_final_answer(text, buf, sizeof buf);
    CHECK(n == (int)strlen(want) && !strcmp(buf, want), "answer of \"%s\" = \"%s\" (%d), want \"%s\"",
          text, buf, n, want);
}

int main(void) {
    check_ans("Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n"
              "She makes 9 * 2 = $<<9*2=18>>18 every day at the farmer's market.\n#### 18", "18");
    check_ans("The answer is 20.", "20");
    check_ans("so 1,234 people came. #### 1,234", "1234");
    check_ans("He pays $18.00 in total", "18");
    check_ans("a drop of -5 degrees", "-5");
    check_ans("5-3 = 2", "2");
    check_ans("x is 0.50", "0.5");
    check_ans("#### -0", "0");
    check_ans("#### 007", "7");
    check_ans("no number here", "");
    check_ans("3 apples and 4 pears; 7 in all.\n#### 7\nextra 99", "7");
    check_ans("it costs .5 dollars", "0.5");

    CHECK(terse_exact_match("So she makes $18 a day.", "... #### 18"), "18 matches");
    CHECK(!terse_exact_match("So she makes $18.5 a day.", "#### 18"), "18.5 does not");
    CHECK(!terse_exact_match("I don't know", "#### 18"), "no number");
    CHECK(terse_exact_match("The answer is 1,000.", "#### 1000"), "commas");
    char small[2];
    CHECK(terse_final_answer("#### 12345", small, sizeof small) < 0, "small buffer refused");

    /* the first GSM8K test item, from the fixture when present */
    char path[512];
    snprintf(path, sizeof path, "%s/data/gsm8k/test.jsonl", test_shared_dir());
    FILE *f = fopen(path, "r");
    if (f) {
        char line[8192];
        if (fgets(line, sizeof line, f)) {
            /* the JSON escapes newlines; "#### 18" is still there verbatim */
            char buf[32];
            CHECK(terse_final_answer(line, buf, sizeof buf) > 0 && !strcmp(buf, "18"),
                  "gsm8k test[0] answer %s", buf);
        }
        fclose(f);
    }
    return test_summary("eval_answers");
}
