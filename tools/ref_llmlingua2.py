#!/usr/bin/env python3
"""ref_llmlingua2.py - reference outputs for terse's LLMLingua-2 (run on the device machine).

Makes, with no network:
  1. a small SentencePiece Unigram model (nmt_nfkc normalisation) trained on DATA/corpus text,
     turned into Hugging Face's XLM-RoBERTa tokenizer (fairseq id offset, tokenizer.json), and a
     cased WordPiece vocabulary turned into a BertTokenizerFast (mBERT settings); both get the
     100 "[NEWi]" special tokens LLMLingua-2 adds, so its resize_token_embeddings is a no-op;
  2. random-weight BertForTokenClassification and XLMRobertaForTokenClassification models
     saved with save_pretrained into OUT/rand-bert-base-multilingual-cased and
     OUT/rand-xlm-roberta-large (the names carry the substrings LLMLingua-2 dispatches on);
  3. encoder goldens: keep probabilities (softmax(logits)[..., 1]) of each model on a padded
     batch of seeded random ids, in float64 (eager attention), probs_<model>.txt;
  4. tokenizer vectors: ids, byte spans, pieces and convert_tokens_to_string of every string of
     DATA/vector_strings.json for both tokenizers, vectors_<model>.jsonl;
  5. the reference: microsoft/LLMLingua's PromptCompressor(use_llmlingua2=True) on the CPU with
     each model on the GSM8K prompt, five passages and the "\\n ? everywhere" prompt, several
     settings (ref_<model>.json), with the chunks and per-token probabilities for debugging.

Usage: python3 ref_llmlingua2.py DATA_DIR LLMLINGUA_DIR OUT_DIR
       ONLY=bert (or xlmr) remakes one model's outputs only (tests/golden/llmlingua2/bert came
       from such a second run).
On the device machine: copy this file, DATA_DIR (tests/data/llmlingua2 + gsm8k.txt, wiki.txt:
600 kB of detokenized wikitext-2 eval, cl100k_base.tiktoken) and a checkout of
microsoft/LLMLingua into scratch/, then run it there; nothing is downloaded (tiktoken reads
the rank file from its cache). nltk is not installed on the device: llmlingua/prompt_compressor.py
does `import nltk` at module load, but only control_sentence_budget (v1/LongLLMLingua's
sentence-level filter) calls nltk.sent_tokenize, and compress_prompt returns through
compress_prompt_llmlingua2 before reaching it; so when the import fails an empty module is put
in sys.modules to let llmlingua load, and nothing on the LLMLingua-2 path touches it.
Every step is guarded: a failure is written to OUT/log.txt and the next step still runs.
"""
import hashlib
import json
import os
import random
import shutil
import sys
import traceback
import types

DATA, LL, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(OUT, exist_ok=True)
LOG = open(os.path.join(OUT, "log.txt"), "w")


def log(*a):
    print(*a)
    print(*a, file=LOG, flush=True)


def step(name, fn):
    try:
        log("== " + name)
        return fn()
    except Exception:
        log("FAILED " + name + "\n" + traceback.format_exc())
        return None


# tiktoken without a download: its cache key is the sha1 of the blob URL.
TT = os.path.join(OUT, "..", "tiktoken_cache")
os.makedirs(TT, exist_ok=True)
url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
shutil.copy(os.path.join(DATA, "cl100k_base.tiktoken"),
            os.path.join(TT, hashlib.sha1(url.encode()).hexdigest()))
os.environ["TIKTOKEN_CACHE_DIR"] = os.path.abspath(TT)
try:
    import nltk  # noqa: F401  (llmlingua imports it at load; only v1's sentence filter calls it)
except ImportError:  # absent on the device: an empty module satisfies that import
    sys.modules["nltk"] = types.ModuleType("nltk")

import torch  # noqa: E402
import transformers  # noqa: E402

log("torch", torch.__version__, "transformers", transformers.__version__)
NEW = [f"[NEW{i}]" for i in range(100)]
WORK = os.path.join(OUT, "..", "work")
os.makedirs(WORK, exist_ok=True)
XDIR = os.path.join(OUT, "rand-xlm-roberta-large")
BDIR = os.path.join(OUT, "rand-bert-base-multilingual-cased")


def read(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


GSM = read("gsm8k.txt")
PASSAGES = json.loads(read("passages.json"))
QMARKS = read("qmarks.txt")
ML = read("multilingual.txt")
STRINGS = json.loads(read("vector_strings.json"))
CORPUS = os.path.join(WORK, "corpus.txt")
with open(CORPUS, "w", encoding="utf-8") as f:
    text = "\n".join([GSM, "\n".join(PASSAGES), QMARKS, ML * 3, read("wiki.txt")])
    for line in text.split("\n"):
        if line.strip():
            f.write(line.strip() + "\n")


def add_new_tokens(tok):
    try:
        tok.add_special_tokens({"additional_special_tokens": NEW})
    except Exception:
        log("add_special_tokens(additional_special_tokens) failed:\n" + traceback.format_exc())
        from tokenizers import AddedToken
        tok.add_tokens([AddedToken(t, special=True) for t in NEW], special_tokens=True)
    log("  len(tokenizer) =", len(tok))


# ---------------------------------------------------------------------------------------- 1
def make_xlmr_tokenizer():
    import sentencepiece as spm
    prefix = os.path.join(WORK, "spm")
    spm.SentencePieceTrainer.train(
        input=CORPUS, model_prefix=prefix, vocab_size=2000, model_type="unigram",
        character_coverage=0.9995, hard_vocab_limit=False, normalization_rule_name="nmt_nfkc",
        num_threads=8, minloglevel=1)
    shutil.copy(prefix + ".model", os.path.join(OUT, "spm.model"))
    tok = None
    try:
        from transformers import XLMRobertaTokenizerFast
        tok = XLMRobertaTokenizerFast(vocab_file=prefix + ".model")
        log("  XLMRobertaTokenizerFast(vocab_file=...) converted the model")
    except Exception:
        log("  XLMRobertaTokenizerFast(vocab_file) failed:\n" + traceback.format_exc())
    if tok is None or len(tok) < 100:
        tok = build_xlmr_by_hand(prefix + ".model")
    add_new_tokens(tok)
    os.makedirs(XDIR, exist_ok=True)
    tok.save_pretrained(XDIR)
    return tok


def build_xlmr_by_hand(path):
    """What transformers' XLMRobertaConverter writes, built with the tokenizers library."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import XLMRobertaTokenizerFast
    m = pb.ModelProto()
    m.ParseFromString(open(path, "rb").read())
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(p.piece, p.score) for p in m.pieces[3:]] + [("<mask>", 0.0)]
    t = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    t.normalizer = normalizers.Sequence([
        normalizers.Precompiled(m.normalizer_spec.precompiled_charsmap),
        normalizers.Replace(Regex(" {2,}"), " ")])
    t.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    t.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    t.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    log("  built the XLM-R tokenizer by hand")
    return XLMRobertaTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>",
                                   sep_token="</s>", cls_token="<s>", unk_token="<unk>",
                                   pad_token="<pad>", mask_token="<mask>")


def make_bert_tokenizer():
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast
    bt = BertWordPieceTokenizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                lowercase=False)
    bt.train([CORPUS], vocab_size=3000, min_frequency=2,
             special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    bt.save_model(WORK)
    # transformers 5 ignores vocab_file here (its BertTokenizerFast came out with the special
    # tokens only), so the trained tokenizers object is handed over as it is.
    tok = BertTokenizerFast(tokenizer_object=bt._tokenizer, do_lower_case=False,
                            tokenize_chinese_chars=True, strip_accents=None, unk_token="[UNK]",
                            sep_token="[SEP]", pad_token="[PAD]", cls_token="[CLS]",
                            mask_token="[MASK]")
    if len(tok) < 1000:
        raise RuntimeError("BERT tokenizer has only %d tokens" % len(tok))
    add_new_tokens(tok)
    os.makedirs(BDIR, exist_ok=True)
    tok.save_pretrained(BDIR)
    return tok


# ---------------------------------------------------------------------------------------- 2
def randomise(model, seed, cls_std):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.startswith("classifier") and name.endswith("weight"):
                p.copy_(cls_std * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


def make_models(xtok, btok):
    from transformers import (BertConfig, BertForTokenClassification, XLMRobertaConfig,
                              XLMRobertaForTokenClassification)
    out = {}
    if xtok is not None:
        cfg = XLMRobertaConfig(vocab_size=len(xtok), hidden_size=64, num_hidden_layers=2,
                               num_attention_heads=4, intermediate_size=128,
                               max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                               bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, num_labels=2,
                               architectures=["XLMRobertaForTokenClassification"])
        m = XLMRobertaForTokenClassification(cfg)
        randomise(m, 1234, 0.25)
        m.save_pretrained(XDIR)
        out["xlmr"] = (m, xtok, XDIR)
    if btok is not None:
        cfg = BertConfig(vocab_size=len(btok), hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=128, max_position_embeddings=512,
                         type_vocab_size=2, pad_token_id=0, layer_norm_eps=1e-12, num_labels=2,
                         architectures=["BertForTokenClassification"])
        m = BertForTokenClassification(cfg)
        randomise(m, 5678, 0.25)
        m.save_pretrained(BDIR)
        out["bert"] = (m, btok, BDIR)
    for k, (m, t, d) in out.items():
        log("  %s: %s" % (k, sorted(os.listdir(d))))
    return out


# ---------------------------------------------------------------------------------------- 3
def encoder_goldens(models):
    for key, (_, tok, d) in models.items():
        cls = type(_)
        m = cls.from_pretrained(d, attn_implementation="eager").double().eval()
        V = m.config.vocab_size
        pad = m.config.pad_token_id
        gen = torch.Generator().manual_seed(99)
        T, lens = 512, [512, 200, 37]
        ids = torch.full((3, T), pad, dtype=torch.long)
        mask = torch.zeros((3, T), dtype=torch.long)
        for b, n in enumerate(lens):
            r = torch.randint(5, V, (n,), generator=gen)
            r[r == pad] = 5
            ids[b, :n] = r
            mask[b, :n] = 1
        with torch.no_grad():
            p64 = torch.softmax(m(input_ids=ids, attention_mask=mask).logits, -1)[..., 1]
            m32 = cls.from_pretrained(d).float().eval()
            p32 = torch.softmax(m32(input_ids=ids, attention_mask=mask).logits, -1)[..., 1]
        act = mask.bool()
        log("  %s: float32 vs float64 max |dp| = %.3g, p range %.4f..%.4f" % (
            key, (p32.double() - p64)[act].abs().max().item(), p64[act].min().item(),
            p64[act].max().item()))
        with open(os.path.join(OUT, "probs_%s.txt" % key), "w") as f:
            f.write("# batch position id keep_prob (float64 reference; rows with mask 1)\n")
            for b, n in enumerate(lens):
                for t in range(n):
                    f.write("%d %d %d %.12f\n" % (b, t, ids[b, t].item(), p64[b, t].item()))


# ---------------------------------------------------------------------------------------- 4
def byte_offsets(s, offs):
    pre = [0]
    for ch in s:
        pre.append(pre[-1] + len(ch.encode("utf-8")))
    return [[pre[a], pre[b]] for a, b in offs]


def vectors(key, tok):
    with open(os.path.join(OUT, "vectors_%s.jsonl" % key), "w", encoding="utf-8") as f:
        for s in STRINGS:
            enc = tok(s, add_special_tokens=False, return_offsets_mapping=True)
            pieces = tok.convert_ids_to_tokens(enc["input_ids"])
            rec = {"text": s, "ids": enc["input_ids"],
                   "spans": byte_offsets(s, enc["offset_mapping"]), "pieces": pieces,
                   "tokenize": tok.tokenize(s), "to_string": tok.convert_tokens_to_string(pieces),
                   "with_special": tok(s)["input_ids"]}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    log("  %s: %d strings" % (key, len(STRINGS)))


# ---------------------------------------------------------------------------------------- 5
CASES = [
    ("gsm8k_r33", lambda: GSM, dict(rate=0.33, force_tokens=["\n", "?"])),
    ("gsm8k_r50_noforce", lambda: GSM, dict(rate=0.5)),
    ("gsm8k_t300", lambda: GSM, dict(target_token=300, force_tokens=["\n", "?"])),
    ("gsm8k_r40_dc_first", lambda: GSM,
     dict(rate=0.4, force_tokens=["\n", "?", "."], drop_consecutive=True, token_to_word="first")),
    ("gsm8k_r70_digit", lambda: GSM, dict(rate=0.7, force_tokens=["\n"], force_reserve_digit=True)),
    ("passages_r50", lambda: PASSAGES, dict(rate=0.5, force_tokens=["\n", "?"])),
    ("passages_t500", lambda: PASSAGES, dict(target_token=500, force_tokens=["\n", "?"])),
    ("passages_r30_noctx", lambda: PASSAGES,
     dict(rate=0.3, force_tokens=["\n", "?"], use_context_level_filter=False)),
    ("passages_ctxrate", lambda: PASSAGES,
     dict(rate=0.6, force_tokens=["\n"], context_level_rate=0.6, force_context_ids=[4])),
    ("qmarks_r40_dc", lambda: QMARKS, dict(rate=0.4, force_tokens=["\n", "?"], drop_consecutive=True)),
    ("qmarks_r60", lambda: QMARKS, dict(rate=0.6, force_tokens=["\n", "?"])),
    ("multilingual_r50", lambda: ML, dict(rate=0.5, force_tokens=["\n", "?"])),
]


def reference(models):
    sys.path.insert(0, LL)
    from llmlingua import PromptCompressor
    from llmlingua.utils import TokenClfDataset
    for key, (_, _, d) in models.items():
        def run_model():
            pc = PromptCompressor(model_name=d, device_map="cpu", use_llmlingua2=True)
            log("  %s: len(tokenizer) %d, embeddings %d, special %s" % (
                key, len(pc.tokenizer), pc.model.get_input_embeddings().weight.shape[0],
                sorted(pc.special_tokens, key=str)))
            results = []
            for name, ctx, kw in CASES:
                rec = {"name": name, "params": kw}
                try:
                    res = pc.compress_prompt(ctx(), return_word_label=True, **kw)
                    rec["result"] = res
                    rec["debug"] = debug(pc, TokenClfDataset, ctx(), kw)
                except Exception:
                    rec["error"] = traceback.format_exc()
                    log("  case %s failed:\n%s" % (name, rec["error"]))
                results.append(rec)
            with open(os.path.join(OUT, "ref_%s.json" % key), "w", encoding="utf-8") as f:
                json.dump(results, f, ensure_ascii=False, indent=1)
        step("reference " + key, run_model)


def debug(pc, TokenClfDataset, ctx, kw):
    """Chunks and per-token keep probabilities, as compress_prompt_llmlingua2 computes them."""
    ctx = [ctx] if isinstance(ctx, str) else ctx
    force = kw.get("force_tokens", [])
    token_map = {t: pc.added_tokens[i] for i, t in enumerate(force)
                 if len(pc.tokenizer.tokenize(t)) != 1}
    ends = [".", "\n"] + [token_map[c] for c in [".", "\n"] if c in token_map]
    out = []
    for c in ctx:
        for a, b in token_map.items():
            c = c.replace(a, b)
        chunks = pc._PromptCompressor__chunk_context(c, chunk_end_tokens=set(ends))
        ds = TokenClfDataset(chunks, tokenizer=pc.tokenizer, max_len=pc.max_seq_len)
        per = []
        for i in range(len(chunks)):
            it = ds[i]
            with torch.no_grad():
                lo = pc.model(input_ids=it["ids"][None], attention_mask=it["mask"][None] == 1).logits
            p = torch.softmax(lo, -1)[0, :, 1]
            sel = it["mask"] == 1
            per.append({"chunk": chunks[i], "ids": it["ids"][sel].tolist(),
                        "probs": [round(float(x), 7) for x in p[sel]]})
        out.append(per)
    return out


ONLY = os.environ.get("ONLY", "")  # "bert" or "xlmr": remake one model's outputs only
xtok = step("xlm-r tokenizer", make_xlmr_tokenizer) if ONLY in ("", "xlmr") else None
btok = step("bert tokenizer", make_bert_tokenizer) if ONLY in ("", "bert") else None
models = step("models", lambda: make_models(xtok, btok)) or {}
step("encoder goldens", lambda: encoder_goldens(models))
if xtok is not None:
    step("vectors xlmr", lambda: vectors("xlmr", xtok))
if btok is not None:
    step("vectors bert", lambda: vectors("bert", btok))
step("reference", lambda: reference(models))
log("done")
