#!/bin/sh
# run.sh - regenerate the evaluation reports of docs/eval/ (from the repository root, after
# `make`). Deterministic for the given seeds; timings differ from machine to machine.
#   sh docs/eval/run.sh            everything
#   sh docs/eval/run.sh corpus     one of: data corpus gsm8k timing
set -e
T=${TERSE:-build/terse}
S=${SHARED:-../shared}
what=${1:-all}

if [ "$what" = all ] || [ "$what" = data ]; then
    # 50 held-out corpus passages and the first 50 GSM8K test questions
    python3 tools/make_eval_data.py "$S" docs/eval/data 50 50
fi

if [ "$what" = all ] || [ "$what" = corpus ]; then
    # Selective Context (phrase, token, sentence) vs random dropping at the seed's ratios;
    # the default model continues each passage (32 tokens, greedy)
    $T eval --data docs/eval/data/corpus_passages.jsonl --limit 24 \
        --methods selective-phrase,selective-token,selective-sentence,random-phrase,random-token,random-sentence \
        --rates 0.8,0.65,0.5,0.35,0.2 --max-new 32 --seed 1 --out docs/eval/corpus \
        > /dev/null
fi

if [ "$what" = all ] || [ "$what" = gsm8k ]; then
    # LLMLingua and Selective Context at 2x, 5x and 10x on the GSM8K demonstrations (8,
    # split at blank lines: the file has CRLF line ends), GSM8K test questions, exact match
    # of the final number
    $T eval --data docs/eval/data/gsm8k_questions.jsonl --limit 10 \
        --context-file "$S/data/gsm8k/prompt_hardest.txt" --context-split '\r\n\r\n' \
        --question-prefix 'Question: ' --question-suffix "\\nLet's think step by step\\n" \
        --stop '\n\n' --max-new 96 \
        --methods llmlingua,selective-phrase,selective-token,random-phrase,none \
        --rates 0.5,0.2,0.1 --count-vocab "$S/vocab/tiktoken/cl100k_base.tiktoken" \
        --seed 1 --out docs/eval/gsm8k > /dev/null
fi

if [ "$what" = all ] || [ "$what" = timing ]; then
    # the 50-prompt timing run (selective-phrase and random-phrase at rate 0.5)
    $T eval --data docs/eval/data/corpus_passages.jsonl --limit 50 \
        --methods selective-phrase,random-phrase --rates 0.5 --max-new 32 --seed 1 \
        --no-texts --out docs/eval/timing50 > /dev/null
fi
