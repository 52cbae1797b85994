#!/usr/bin/env python3
"""Expected word-piece ids for tests/engine/wordpiece_tokenizer_test.cc, from an independent
reference: transformers' pure-Python (slow) BertTokenizer, 4.x (5.x: BertTokenizerLegacy).
Writes sst2_dev200_{uncased,cased}_ids.txt (one line of ids per sentence of the first 200 SST-2 dev
sentences) and, with --cpp, prints the C++ table of pinned tricky cases pasted into the test.
The one case where both sequences of a pair are cut by an odd count (pair_equal_odd_removal)
follows Hugging Face's fast tokenizer instead (the test says so): the engine truncates as
transformers 5 does, and the family oracle (tests/oracle) checks it against the fast tokenizer.
Not run by the build. Usage (in a venv outside the repo, `pip install "transformers<5"`):
  python make_tokenizer_expectations.py --shared /work/shared [--cpp]
"""
import argparse
import os
import unicodedata

import transformers

if int(transformers.__version__.split(".")[0]) >= 5:
    from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy as SlowBert
else:
    from transformers import BertTokenizer as SlowBert

HERE = os.path.dirname(os.path.abspath(__file__))

# name, vocab ("uncased"/"cased"), options, text, text_pair, max_length (None: no truncation).
CASES = [
    ("accents_uncased", "uncased", {}, "Café résumé naïve", None, None),
    ("accents_cased", "cased", {}, "Café résumé naïve", None, None),
    ("upper_accents_uncased", "uncased", {}, "CAFÉ RÉSUMÉ NAÏVE ÀÉÎÕÜ Ångström", None, None),
    ("upper_accents_cased", "cased", {}, "CAFÉ RÉSUMÉ NAÏVE ÀÉÎÕÜ Ångström", None, None),
    ("decomposed_uncased", "uncased", {}, "Cafe\u0301 re\u0301sume\u0301 A\u030angstro\u0308m",
     None, None),
    ("decomposed_cased_nfc", "cased", {}, "Cafe\u0301 re\u0301sume\u0301 A\u030angstro\u0308m",
     None, None),
    ("no_strip_uncased", "uncased", {"strip_accents": False}, "Café résumé naïve", None, None),
    ("strip_cased", "cased", {"strip_accents": True}, "Café Résumé naïve", None, None),
    ("emoji_uncased", "uncased", {}, "I love it \U0001F600\U0001F44D\U0001F3FD \U0001F389! \u2603",
     None, None),
    ("emoji_cased", "cased", {}, "I love it \U0001F600\U0001F44D\U0001F3FD \U0001F389! \u2603",
     None, None),
    ("cjk_uncased", "uncased", {}, "我爱北京天安门 and 東京タワー 서울 \uf900\U0002f800", None, None),
    ("cjk_cased", "cased", {}, "我爱北京天安门 and 東京タワー 서울", None, None),
    ("cjk_no_split", "uncased", {"tokenize_chinese_chars": False}, "我爱北京 東京タワー", None, None),
    ("mixed_scripts_uncased", "uncased", {},
     "Привет мир, Ελληνικά ΟΔΟΣ, مرحبا, שלום, हिन्दी, İstanbul, straße, ﬁne, \u212b \u212a",
     None, None),
    ("mixed_scripts_cased", "cased", {},
     "Привет мир, Ελληνικά ΟΔΟΣ, مرحبا, שלום, हिन्दी, İstanbul, straße, ﬁne, \u212b \u212a",
     None, None),
    ("punctuation_runs", "uncased", {},
     "!!!...?? wow!!! (really)?! a--b 'quoted' \u201csmart\u201d \u2014 dash\u2026 $100 3.14 "
     "1,000 e-mail@x.org #tag ~^_`|{}",
     None, None),
    ("long_words", "uncased", {},
     "ok " + "a" * 100 + " " + "b" * 101 + " " + "super" * 25 + " end", None, None),
    ("long_word_with_accents", "uncased", {}, "e\u0301" * 60, None, None),
    ("empty", "uncased", {}, "", None, None),
    ("whitespace_only", "uncased", {}, "   \t\n\r\u00a0\u3000\u2028  ", None, None),
    ("control_chars", "uncased", {},
     "hello\x00world\x07 foo\u200bbar\ufffd baz\u2028qux\x1f end\x7f\u00ad! \ue000pua", None,
     None),
    ("special_tokens_in_text_uncased", "uncased", {},
     "hello [SEP] world[MASK] [sep] [[CLS]] [UNK]x [PAD]", None, None),
    ("special_tokens_in_text_cased", "cased", {}, "Hello [SEP] World [MASK]. [Sep]", None, None),
    ("unknown_word", "uncased", {}, "the \u2603\u2603 snowman \U0001D4D0", None, None),
    ("pair_no_truncation", "uncased", {}, "The cat sat.", "It was happy!", 64),
    ("pair_long_first_longer", "uncased", {},
     "This sentence is considerably longer than the other one, with many more words in it.",
     "Short one.", 16),
    ("pair_long_second_longer", "uncased", {}, "Short one.",
     "This sentence is considerably longer than the other one, with many more words in it.", 16),
    ("pair_equal_odd_removal", "uncased", {}, "one two three four five six",
     "seven eight nine ten eleven twelve", 12),
    ("pair_equal_even_removal", "uncased", {}, "one two three four five six",
     "seven eight nine ten eleven twelve", 11),
    ("pair_min_length", "uncased", {}, "alpha beta", "gamma", 3),
    ("pair_one_empty", "uncased", {}, "", "only the second text has words here", 6),
    ("single_truncated", "uncased", {}, "Tokenization of a long single sentence gets cut.", None,
     6),
    ("single_cased_truncated", "cased", {}, "Tokenization of a Long Single sentence.", None, 8),
]


def load(shared, vocab, options):
    path = os.path.join(shared, "vocab", f"bert-base-{vocab}-vocab.txt")
    return SlowBert(vocab_file=path, do_lower_case=(vocab == "uncased"), **options)


def encode(tok, text, pair, max_length):
    if max_length is None:
        return tok(text, pair)["input_ids"]
    return tok(text, pair, truncation="longest_first", max_length=max_length)["input_ids"]


def cpp_string(s):
    """A C++ literal: visible characters as UTF-8, the rest as \\x / \\u escapes."""
    out = []
    for ch in s:
        cp = ord(ch)
        if cp < 0x80:
            if 32 <= cp < 127 and ch not in '"\\':
                out.append(ch)
            elif ch in '"\\':
                out.append("\\" + ch)
            else:
                out.append('\\x%02x""' % cp)  # end the literal so the hex escape ends here
        elif unicodedata.category(ch)[0] in "LNPS":
            out.append(ch)
        elif cp <= 0xFFFF:
            out.append("\\u%04x" % cp)
        else:
            out.append("\\U%08x" % cp)
    return '"' + "".join(out) + '"sv'  # sv: keeps embedded NULs


def cpp_options(options):
    """strip_accents (-1 unset, 0, 1), tokenize_chinese_chars."""
    strip = options.get("strip_accents")
    chinese = options.get("tokenize_chinese_chars", True)
    return "%d, %s" % (-1 if strip is None else int(strip), "true" if chinese else "false")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=os.path.join(HERE, "..", "..", "..", "..", "shared"))
    parser.add_argument("--cpp", action="store_true")
    args = parser.parse_args()

    for vocab in ("uncased", "cased"):
        tok = load(args.shared, vocab, {})
        with open(os.path.join(args.shared, "data", "sst2", "dev.tsv"), encoding="utf-8") as f:
            lines = f.read().split("\n")[1:201]
        with open(os.path.join(HERE, f"sst2_dev200_{vocab}_ids.txt"), "w") as out:
            for line in lines:
                sentence = line.rsplit("\t", 1)[0]
                out.write(" ".join(str(i) for i in tok(sentence)["input_ids"]) + "\n")

    if args.cpp:
        print(f"// Generated by make_tokenizer_expectations.py (transformers {transformers.__version__}).")
        for name, vocab, options, text, pair, max_length in CASES:
            tok = load(args.shared, vocab, options)
            ids = encode(tok, text, pair, max_length)
            print("    {\"%s\", %s, %s, %s, %s, %d,\n     {%s}}," % (
                name, "true" if vocab == "uncased" else "false",
                cpp_options(options), cpp_string(text),
                "std::nullopt" if pair is None else cpp_string(pair),
                -1 if max_length is None else max_length,
                ", ".join(str(i) for i in ids)))


if __name__ == "__main__":
    main()
