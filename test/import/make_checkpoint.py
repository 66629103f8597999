"""Fixtures of test/import: a seeded random SAN checkpoint in the official format, and the Python exporter's folder.

    python3 test/import/make_checkpoint.py --variant tiny --out DIR [--seed 0] [--vocab FILE] [--extra]

Writes DIR/checkpoint.pth (`torch.save({"model": state_dict, "iteration": ...})`, with the training-only
criterion.empty_weight as the official files have it), then runs the Python exporter on that file into DIR/python/
(models.san.checkpoint.load_san + models.export.write_model_dir, what `python3 -m models.export` does) with the
reference cases (models.reference_cases) beside it. A variant the package does not ship (tiny) also gets its
architecture template in DIR/architectures/. --extra also writes files that are not SAN checkpoints into DIR/bad/,
and the same weights in other containers and types into DIR/formats/: a bare state dict, {"state_dict": ...} of
nn.Parameters, and float16 tensors, whose Python export (with its reference cases) goes to DIR/python-half/.
"""
import argparse
import sys
import zipfile
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from models.export import write_model_dir  # noqa: E402
from models.export_architecture import SHIPPED_VARIANTS, write_architecture  # noqa: E402
from models.reference_cases import write_reference_cases  # noqa: E402
from models.san.checkpoint import load_san  # noqa: E402
from models.san.config import load_preset  # noqa: E402
from models.san.model import SAN  # noqa: E402


def write_bad_files(out: Path, state_dict):
    """Files an importer must refuse, each with a clear message."""
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out / "random.zip", "w") as archive:
        archive.writestr("readme.txt", "not a checkpoint")
    (out / "text.pth").write_text("not a checkpoint\n")
    torch.save({"losses": [0.5, 0.25], "note": "a torch.save of something else"}, out / "not_weights.pth")
    torch.save({"model": {"fc.weight": torch.zeros(4, 3), "fc.bias": torch.zeros(4)}}, out / "other_model.pth")
    missing = dict(state_dict)
    del missing["side_adapter_network.query_embed"]
    missing["extra.weight"] = torch.zeros(2)
    torch.save({"model": missing}, out / "missing_key.pth")
    torch.save({"model": state_dict}, out / "legacy.pth", _use_new_zipfile_serialization=False)
    full = (out / "not_weights.pth").read_bytes()
    (out / "truncated.pth").write_bytes(full[: len(full) // 2])


def write_formats(out: Path, san: SAN, vocab: Path, seed: int):
    """The same weights as other files an importer must read as the exporter does."""
    out.mkdir(parents=True, exist_ok=True)
    torch.save(san.state_dict(), out / "bare.pth")
    torch.save({"state_dict": san.state_dict(keep_vars=True), "epoch": 3}, out / "state_dict_params.pth")
    torch.save({"model": {key: value.half() for key, value in san.state_dict().items()}}, out / "half.pth")
    half, variant = load_san(out / "half.pth")
    write_model_dir(half, variant, vocab, out.parent / "python-half")
    write_reference_cases(out.parent / "python-half", seed)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab", type=Path, default=REPO_ROOT / "assets" / "clip" / "bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--extra", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    model = SAN(load_preset(args.variant))
    state_dict = model.state_dict()
    checkpoint = args.out / "checkpoint.pth"
    torch.save({"model": {"criterion.empty_weight": torch.ones(172), **state_dict}, "iteration": 89999}, checkpoint)
    if args.extra:
        write_bad_files(args.out / "bad", state_dict)
        write_formats(args.out / "formats", model, args.vocab, args.seed)
    del state_dict, model
    san, variant = load_san(checkpoint)
    write_model_dir(san, variant, args.vocab, args.out / "python")
    del san
    write_reference_cases(args.out / "python", args.seed)
    if args.variant not in SHIPPED_VARIANTS:
        write_architecture(args.variant, args.vocab, args.out / "architectures" / args.variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
