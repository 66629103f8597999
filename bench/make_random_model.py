"""Writes the benchmark's model folders: a seeded random-weight SAN ViT-B/16 and a matmul probe.

    python3 bench/make_random_model.py --out build/bench-models [--seed 0] [--variant vit_b_16]

OUT/vit_b_16 (OUT/VARIANT for `--variant`: scripts/device/ also writes vit_l_14_336) is what models.export
writes for the official checkpoint (the same write_model_dir), with random weights: timings do not depend on the
weights' values. It uses CLIP's vocabulary from ../shared when present; without it the tiny model's vocabulary
stands in and the text tower's token table shrinks to its size, which changes no timing (a token lookup is a gather,
whatever the table's length). OUT/probe.pt is a TorchScript module whose
`forward(like, n, reps)` multiplies two n × n matrices `reps` times, for the machine's matmul rate under LibTorch.
A folder already written by the same seed and the same model code (models/san, models/export.py) is kept.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import List, Optional

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from models.export import DEFAULT_VOCAB, write_model_dir  # noqa: E402
from models.san.config import load_preset  # noqa: E402
from models.san.model import SAN  # noqa: E402
from models.san.tokenizer import SimpleTokenizer  # noqa: E402

VARIANT = "vit_b_16"
TINY_VOCAB = REPO_ROOT / "build" / "test-models" / "tiny" / "bpe_vocab.txt.gz"
STAMP = "bench.json"


class MatmulProbe(nn.Module):
    """forward(like, n, reps): `reps` products of two random n × n matrices on `like`'s device and in its dtype
    (the addon moves and casts a float input to the model's, so a one-element tensor picks both); returns one
    element of the last product, whose copy to the host waits for the device.

    Each product writes into `c` (`out=`): written as `c = torch.mm(a, b)`, TorchScript unrolls the loop by 8 and
    drops the products whose result is overwritten unread, and the rate came out several times too high."""

    def forward(self, like: Tensor, n: int, reps: int) -> Tensor:
        a = torch.randn(n, n, device=like.device, dtype=like.dtype)
        b = torch.randn(n, n, device=like.device, dtype=like.dtype)
        c = torch.zeros(n, n, device=like.device, dtype=like.dtype)
        for _ in range(reps):
            torch.mm(a, b, out=c)
        return c[0, :1].clone()


def model_code_hash() -> str:
    """sha256 of the Python that defines and exports the model: a folder written by other code is rewritten."""
    digest = hashlib.sha256()
    for path in sorted([*(REPO_ROOT / "models" / "san").rglob("*.py"), *(REPO_ROOT / "models" / "san").rglob("*.json"),
                        REPO_ROOT / "models" / "export.py"]):
        digest.update(path.relative_to(REPO_ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def write_random(out_dir: Path, seed: int, variant: str = VARIANT) -> str:
    stamp = out_dir / STAMP
    wanted = {"seed": seed, "code": model_code_hash()}
    if (out_dir / "manifest.json").exists() and stamp.exists():
        written = json.loads(stamp.read_text())
        if all(written.get(key) == value for key, value in wanted.items()):
            return written["vocab"]
    cfg = load_preset(variant)
    vocab = DEFAULT_VOCAB if DEFAULT_VOCAB.exists() else TINY_VOCAB
    if not vocab.exists():
        raise SystemExit(f"neither {DEFAULT_VOCAB} nor {TINY_VOCAB} exists: run `bash scripts/setup.sh` first")
    if vocab == TINY_VOCAB:
        # NOTE: a stand-in vocabulary; the token table shrinks, nothing that costs time changes.
        cfg.text.vocab_size = SimpleTokenizer(vocab).vocab_size
    torch.manual_seed(seed)
    san = SAN(cfg).eval()
    write_model_dir(san, variant, vocab, out_dir)
    stamp.write_text(json.dumps({**wanted, "vocab": str(vocab)}) + "\n")
    return str(vocab)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for vit_b_16/ and probe.pt")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--variant", default=VARIANT, help="the preset to write (default vit_b_16)")
    args = parser.parse_args(argv)
    vocab = write_random(args.out / args.variant, args.seed, args.variant)
    probe = args.out / "probe.pt"
    torch.jit.save(torch.jit.script(MatmulProbe()), str(probe))  # a few kB: always the current one
    print(json.dumps({args.variant: str(args.out / args.variant), "vocab": vocab, "probe": str(probe)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
