/* text.h - segmentation of text into sentences, phrases and words, all as byte spans
 * (internal interface; text.c).
 *
 * Every function takes s[0..n) (any bytes; invalid UTF-8 is treated as single-byte "letters"),
 * returns the number of spans or a negative status, and on success stores a malloc'ed array in
 * *out (free() it; NULL when the count is 0).
 *
 * Two families:
 *  - "tiling" segmenters (text_sentences, text_phrases, text_words): the spans cover the text
 *    exactly, in order, with no gaps; each unit carries its LEADING whitespace (as byte-level
 *    BPE tokens do: " dog"), so unit boundaries fall on token boundaries. Whitespace at the
 *    very end of the text joins the last unit.
 *  - text_sentences_ref: Selective Context's sentence splitter, regex
 *    (?<!\w\.\w.)(?<![A-Z][a-z]\.)(?<=\.|\?)\s applied with re.split, pieces strip()ped and
 *    empty pieces dropped: spans of the stripped pieces (gaps between them).
 */
#ifndef TERSE_TEXT_H
#define TERSE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "terse.h"

/* Sentences, tiling. A sentence ends after ., !, ?, or CJK 。！？ (plus closing quotes and
 * brackets) when whitespace or the end follows (CJK: always), except after an abbreviation
 * (Mr. Dr. e.g. i.e. etc. vs. single capital initials, ...) or a decimal/number like "3.5";
 * and at every line break (lists, code, tables keep their lines). */
int64_t text_sentences(const char *s, size_t n, terse_span **out);

/* Selective Context's reference splitter (see above); Python-compatible at the level of code
 * points: \w = letters, digits, underscore (non-ASCII letters counted as \w), \s = Unicode
 * whitespace. */
int64_t text_sentences_ref(const char *s, size_t n, terse_span **out);

/* Words, tiling: leading whitespace + a run of word characters (letters, digits, ', and
 * inner hyphens/periods as in "e-mail", "3.5"), or one punctuation character, or one CJK
 * ideograph/kana/hangul syllable. */
int64_t text_words(const char *s, size_t n, terse_span **out);

/* Phrases, tiling: a deterministic noun-phrase chunker over text_words. A chunk is an optional
 * determiner / possessive / number followed by content words, ended by punctuation, a
 * closed-class word (preposition, conjunction, pronoun, auxiliary, frequent verb, adverb in
 * -ly) or a line break; chunks are at most 6 words. Every other word or punctuation mark is a
 * unit of its own, as after spaCy's merge_noun_chunks. Differences from spaCy's
 * en_core_web_sm noun_chunks (no tagger or parser here): verbs outside the closed lists are
 * taken as content words and may join a chunk ("the dog barked" is one unit), adjectives
 * after a noun are not separated, and coordinated nouns split at "and". */
int64_t text_phrases(const char *s, size_t n, terse_span **out);

/* UTF-8 by Python's bytes.decode("utf-8", errors="replace") rule: text_utf8_step returns the
 * length of the character at s[i] (*valid = 1) or of the maximal invalid subsequence there
 * (*valid = 0: a lead byte and the continuation bytes it accepts; surrogates, overlongs and
 * code points past U+10FFFF are invalid at their second byte), which Python replaces with one
 * U+FFFD. text_utf8_invalid counts those subsequences; text_utf8_replace writes s with each
 * one replaced by U+FFFD to out (room for 3n bytes; out may not overlap s) and returns the
 * length written. */
size_t text_utf8_step(const char *s, size_t n, size_t i, int *valid);
int64_t text_utf8_invalid(const char *s, size_t n);
int64_t text_utf8_replace(const char *s, size_t n, char *out);

/* Number expressions, not tiling: maximal runs of ASCII digits joined by operators between
 * digits (+ - * / = ^ % and the signs U+00D7, U+00F7, U+2212 with at most one space on either
 * side; . , : with none): "1000/5 = 200", "32+114=146", "3.5", "1,000", "12:30" ("1, 2" is
 * two). Compression never cuts inside one. */
int64_t text_numbers(const char *s, size_t n, terse_span **out);

/* Code point classes used above (exposed for tests). */
int text_is_space(uint32_t cp);
int text_is_word(uint32_t cp);   /* Python's \w, approximately for non-ASCII */
int text_is_cjk(uint32_t cp);

#endif
