"""Writes a seeded random `tiny` SAN model folder, with its own small BPE vocabulary and reference fixtures.

    python3 -m models.make_tiny --out DIR --seed N

The folder is what models.export writes for official weights (same code), plus DIR/reference/ for the native
addon's tests. It needs nothing from ../shared and takes a few seconds.
"""
import argparse
import collections
import gzip
import io
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from .export import write_model_dir
from .reference_cases import write_reference_cases
from .san.config import load_preset
from .san.model import SAN
from .san.text import VILD_TEMPLATES
from .san.tokenizer import END_OF_WORD, PRE_SPLIT, bytes_to_unicode, clean_text, merge_pair

VARIANT = "tiny"
# Text the tiny vocabulary is learned from: class names (some with synonyms, as ADE-150 writes them) and the
# prompt templates, so that tokenizing prompts exercises multi-symbol merges.
CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road, route", "bed", "window", "grass", "cabinet",
    "sidewalk, pavement", "person, individual, someone, somebody, mortal, soul", "earth, ground", "door", "table",
    "mountain, mount", "plant", "curtain", "chair", "car", "water", "painting, picture", "sofa", "shelf", "house",
    "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock, stone", "wardrobe, closet, press",
    "lamp", "bathtub", "railing", "cushion", "base, pedestal, stand", "box", "column, pillar", "signboard, sign",
    "chest of drawers, chest, bureau, dresser", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator",
    "grandstand, covered stand", "path", "stairs", "runway", "case, display case, showcase, vitrine", "pool table",
    "pillow", "screen door, screen", "stairway, staircase", "river", "bridge, span", "bookcase", "blind, screen",
    "coffee table", "toilet, can, commode, crapper", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm, palm tree", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "aeroplane",
    "bicycle", "bird", "bottle", "bus", "cat", "cow", "diningtable", "dog", "horse", "motorbike", "pottedplant",
    "sheep", "train", "tvmonitor", "traffic light", "fire hydrant", "stop sign", "parking meter", "giraffe",
    "zebra", "umbrella", "handbag", "suitcase", "frisbee", "skateboard", "surfboard", "tennis racket", "wine glass",
    "banana", "sandwich", "broccoli", "pizza", "donut", "cake", "laptop", "keyboard", "microwave", "toaster",
    "scissors", "teddy bear", "hair drier", "toothbrush", "sky-other", "wall-brick", "door-stuff", "playingfield",
)


def learn_merges(texts: Sequence[str], count: int) -> List[Tuple[str, str]]:
    """`count` BPE merges learned on `texts` after CLIP's clean-up and pre-split, most frequent pair first.

    Ties go to the smallest pair in string order, so the result depends only on the texts.
    """
    byte_encoder = bytes_to_unicode()
    words: Dict[Tuple[str, ...], int] = collections.Counter()
    for text in texts:
        for token in PRE_SPLIT.findall(clean_text(text)):
            symbols = [byte_encoder[b] for b in token.encode("utf-8")]
            words[tuple(symbols[:-1]) + (symbols[-1] + END_OF_WORD,)] += 1

    merges: List[Tuple[str, str]] = []
    while len(merges) < count:
        pairs: Dict[Tuple[str, str], int] = collections.Counter()
        for word, freq in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += freq
        if not pairs:
            raise ValueError(f"the corpus allows only {len(merges)} merges, {count} were asked for")
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merges.append(best)
        words = collections.Counter({merge_pair(word, best): freq for word, freq in words.items()})
    return merges


def write_vocab(merges: Sequence[Tuple[str, str]], path: Path):
    """gzip file in CLIP's format (header line, one merge per line), byte-identical for the same merges."""
    text = "#version: 0.2 (san-node tiny vocabulary)\n" + "".join(f"{a} {b}\n" for a, b in merges)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(text.encode("utf-8"))
    path.write_bytes(buffer.getvalue())


def make_tiny(out_dir: Path, seed: int) -> Dict:
    cfg = load_preset(VARIANT)
    # 256 byte symbols, each also with </w>, then the merges, then the two special tokens.
    merges = learn_merges(CLASS_NAMES + VILD_TEMPLATES, cfg.text.vocab_size - 2 * 256 - 2)
    torch.manual_seed(seed)
    san = SAN(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        vocab_path = Path(tmp) / "bpe_vocab.txt.gz"
        write_vocab(merges, vocab_path)
        manifest = write_model_dir(san, VARIANT, vocab_path, out_dir)
    write_reference_cases(out_dir, seed)
    return manifest


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.make_tiny", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="model folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights and fixture inputs")
    args = parser.parse_args(argv)
    make_tiny(args.out, args.seed)
    print(f"Wrote the tiny model (seed {args.seed}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
