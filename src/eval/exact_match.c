/* exact_match.c - exact-match accuracy of final answers, GSM8K style (Cobbe et al. 2021; the
 * LLMLingua evaluation scripts score GSM8K the same way): the reference's answer is the number
 * after "####"; a model's answer is the last number it wrote. Numbers are compared as
 * normalised strings: commas (thousands separators) and a leading '+' dropped, a fractional
 * part of zeros dropped ("18.00" -> "18"), "-0" -> "0".
 *
 * Not here: units, fractions ("1/2"), numbers written as words, answer-extraction prompts.
 */
#include <string.h>

#include "eval/eval.h"

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* The number starting at s (which holds a digit, or '-'/'+'/'.' followed by a digit):
 * its end; digits may be grouped with commas ("1,234") and have one fractional part. */
static const char *number_end(const char *s) {
    const char *p = s;
    if (*p == '-' || *p == '+') p++;
    while (is_digit(*p) || (*p == ',' && is_digit(p[1]) && p > s && is_digit(p[-1]))) p++;
    if (*p == '.' && is_digit(p[1]))
        for (p++; is_digit(*p); p++) {}
    return p;
}

static bool number_start(const char *text, const char *p) {
    if (is_digit(*p)) return p == text || !(is_digit(p[-1]) || p[-1] == ',' || p[-1] == '.');
    if ((*p == '-' || *p == '+') && is_digit(p[1])) /* a sign, not "5-3"'s minus */
        return p == text || !(is_digit(p[-1]) || (p[-1] >= 'a' && p[-1] <= 'z') ||
                              (p[-1] >= 'A' && p[-1] <= 'Z'));
    if (*p == '.' && is_digit(p[1])) return p == text || !is_digit(p[-1]);
    return false;
}

/* normalised copy of the number [s, e) into buf; returns length or negative status */
static int normalise(const char *s, const char *e, char *buf, size_t cap) {
    char tmp[128];
    size_t n = 0;
    bool neg = false;
    if (*s == '-') neg = true, s++;
    else if (*s == '+') s++;
    for (const char *p = s; p < e && n + 1 < sizeof tmp; p++)
        if (*p != ',') tmp[n++] = *p;
    tmp[n] = 0;
    char *dot = strchr(tmp, '.');
    if (dot) {
        size_t k = strlen(tmp);
        while (k > (size_t)(dot - tmp) + 1 && tmp[k - 1] == '0') tmp[--k] = 0;
        if (tmp[k - 1] == '.') tmp[--k] = 0;
        n = k;
    }
    if (n == 0) tmp[0] = '0', tmp[1] = 0, n = 1; /* ".0" */
    if (tmp[0] == '.' && n + 2 < sizeof tmp) {      /* ".5" -> "0.5" */
        memmove(tmp + 1, tmp, n + 1);
        tmp[0] = '0';
        n++;
    }
    /* leading zeros of the integer part ("007" -> "7") */
    size_t z = 0;
    while (z + 1 < n && tmp[z] == '0' && tmp[z + 1] != '.') z++;
    memmove(tmp, tmp + z, n - z + 1);
    n -= z;
    if (!strcmp(tmp, "0")) neg = false;
    size_t need = n + (neg ? 1 : 0);
    if (need + 1 > cap) return terse_err(TERSE_ERR_RANGE, "answer of %zu bytes, buffer %zu",
                                         need, cap);
    size_t o = 0;
    if (neg) buf[o++] = '-';
    memcpy(buf + o, tmp, n + 1);
    return (int)need;
}

int terse_final_answer(const char *text, char *buf, size_t cap) {
    if (!text || !buf || cap == 0) return terse_err(TERSE_ERR_INVALID, "terse_final_answer: NULL");
    buf[0] = 0;
    const char *from = text, *mark = NULL, *p = text;
    while ((p = strstr(p, "####"))) mark = p, p += 4;
    if (mark) {
        /* the first number after the last "####" */
        for (const char *q = mark + 4; *q; q++)
            if (number_start(text, q)) return normalise(q, number_end(q), buf, cap);
        from = mark + 4;
    }
    const char *last = NULL, *last_end = NULL;
    for (const char *q = from; *q;) {
        if (number_start(text, q)) {
            last = q;
            last_end = number_end(q);
            q = last_end;
        } else {
            q++;
        }
    }
    return last ? normalise(last, last_end, buf, cap) : 0;
}

int terse_exact_match(const char *output, const char *reference) {
    char a[128], b[128];
    if (!output || !reference) return 0;
    int na = terse_final_answer(output, a, sizeof a);
    int nb = terse_final_answer(reference, b, sizeof b);
    return na > 0 && nb > 0 && !strcmp(a, b);
}
