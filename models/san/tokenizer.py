"""Reference CLIP tokenizer (open_clip 2.16 `SimpleTokenizer` and `tokenize`), for any merges file.

lib/tokenizer.ts is checked against it token for token. Text is fixed with ftfy when it is installed, otherwise
(Debian 12 has no package for it) with `fix_text_subset`, the same part of ftfy that lib/tokenizer.ts reproduces;
then HTML-unescaped twice, stripped, whitespace-collapsed, lower-cased, pre-split with CLIP's regular expression
and byte-level BPE encoded.
"""
import gzip
import html
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import regex
import torch

try:
    import ftfy
except ImportError:  # fix_text_subset is used instead
    ftfy = None

START_OF_TEXT = "<start_of_text>"
END_OF_TEXT = "<end_of_text>"
END_OF_WORD = "</w>"
# CLIP reads at most this many merges (the merges file goes on beyond them); a smaller file is used whole.
MAX_MERGES = 49152 - 256 - 2
CONTEXT_LENGTH = 77
# CLIP's pre-split of cleaned text into words, numbers (digit by digit) and punctuation runs.
PRE_SPLIT = regex.compile(
    rf"{START_OF_TEXT}|{END_OF_TEXT}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
    regex.IGNORECASE)


@lru_cache()
def bytes_to_unicode() -> Dict[int, str]:
    """CLIP's reversible map from the 256 byte values to printable characters (printable Latin-1 map to themselves)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


# NOTE: without ftfy, the part of ftfy.fix_text that changes class names and prompts is done as lib/tokenizer.ts's
# fixText does it: the same characters, in the same order. Not reproduced: mojibake, control characters, line breaks,
# half-width forms, ftfy's own HTML unescaping, and its uncurling of U+02BC (so "ŉ" gives "ʼn" here, "'n" in ftfy).
CURLY_SINGLE = regex.compile("[\u2018\u2019\u201a\u201b]")
CURLY_DOUBLE = regex.compile("[\u201c\u201d\u201e\u201f]")
LIGATURES = str.maketrans({
    "\u0132": "IJ", "\u0133": "ij", "\u0149": "\u02bcn", "\u01c7": "LJ", "\u01c8": "Lj", "\u01c9": "lj",
    "\u01ca": "NJ", "\u01cb": "Nj", "\u01cc": "nj", "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi",
    "\ufb04": "ffl", "\ufb05": "\u017ft", "\ufb06": "st",
})
# Full-width ASCII (U+FF01-U+FF5E) to ASCII, the ideographic space to a space.
FULL_WIDTH = str.maketrans({**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}, 0x3000: " "})


def fix_text_subset(text: str) -> str:
    """Curly quotes to straight ones, Latin ligatures split, full-width ASCII to ASCII, then NFC."""
    text = CURLY_DOUBLE.sub('"', CURLY_SINGLE.sub("'", text))
    text = text.translate(LIGATURES).translate(FULL_WIDTH)
    return unicodedata.normalize("NFC", text)


def clean_text(text: str) -> str:
    text = ftfy.fix_text(text) if ftfy is not None else fix_text_subset(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


def read_merges(bpe_path: Union[str, Path]) -> List[Tuple[str, str]]:
    """Merges of a gzip file in CLIP's format: a header line, then one "first second" pair per line."""
    with gzip.open(bpe_path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")[1:MAX_MERGES + 1]
    merges = []
    for number, line in enumerate(lines, start=2):
        if not line:
            continue
        pair = tuple(line.split())
        if len(pair) != 2:
            raise ValueError(f"{bpe_path}: line {number} is not a BPE merge 'first second': {line!r}")
        merges.append(pair)
    return merges


def merge_pair(word: Tuple[str, ...], pair: Tuple[str, str]) -> Tuple[str, ...]:
    """word with every non-overlapping occurrence of pair, left to right, joined into one symbol: one BPE step."""
    merged, i = [], 0
    while i < len(word):
        if i < len(word) - 1 and (word[i], word[i + 1]) == pair:
            merged.append(word[i] + word[i + 1])
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)


class SimpleTokenizer:
    def __init__(self, bpe_path: Union[str, Path]):
        merges = read_merges(bpe_path)
        byte_chars = list(bytes_to_unicode().values())
        vocab = byte_chars + [c + END_OF_WORD for c in byte_chars] + ["".join(m) for m in merges]
        vocab += [START_OF_TEXT, END_OF_TEXT]
        self.byte_encoder = bytes_to_unicode()
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.bpe_ranks = {pair: rank for rank, pair in enumerate(merges)}
        # Special tokens typed in the text are kept whole, as CLIP does (its cache maps them to themselves).
        self.cache = {START_OF_TEXT: START_OF_TEXT, END_OF_TEXT: END_OF_TEXT}
        self.vocab_size = len(vocab)
        self.sot_token = self.encoder[START_OF_TEXT]
        self.eot_token = self.encoder[END_OF_TEXT]

    def bpe(self, token: str) -> str:
        """Space-separated BPE symbols of one pre-split token (already byte-encoded); the last ends with </w>."""
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + END_OF_WORD,)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if best not in self.bpe_ranks:
                break
            word = merge_pair(word, best)
        self.cache[token] = " ".join(word)
        return self.cache[token]

    def encode(self, text: str) -> List[int]:
        ids = []
        for token in PRE_SPLIT.findall(clean_text(text)):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[symbol] for symbol in self.bpe(token).split(" "))
        return ids


def tokenize(tokenizer: SimpleTokenizer, texts: Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """(B, context_length) int64: <start_of_text>, the text's tokens, <end_of_text>, zeros; too long keeps EOT last."""
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [tokenizer.sot_token] + tokenizer.encode(text) + [tokenizer.eot_token]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = tokenizer.eot_token
        result[row, :len(ids)] = torch.tensor(ids)
    return result
