"""Exports a SAN checkpoint to a model folder: two TorchScript files, the BPE vocabulary and manifest.json.

    python3 -m models.export --checkpoint san_vit_b_16.pth --out DIR [--variant auto] [--vocab FILE.txt.gz]

docs/models.md describes the folder and every manifest field.
"""
import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from .san.checkpoint import CheckpointError, load_san
from .san.model import SAN, SanSegmenter
from .san.text import TEMPLATE_SETS
from .san.tokenizer import SimpleTokenizer, tokenize

FORMAT_VERSION = 1
# What this export's methods do beyond format_version 1's first exports, for runtimes that also read older folders:
# segment_size_lists: san.pt's `segment` takes image and output sizes as integer lists, not int64 tensors.
# segment_bands: on a CPU, `segment` post-processes a band of output rows at a time (models/san/postprocess.py), so
# its memory does not grow with the output size.
# classify_float32: `classify` (and `segment`'s classification) reads the class embeddings in float32 whatever the
# model's dtype, so a runtime may hand them over unrounded (layers' mixed precision, docs/models.md).
CAPABILITIES = ["segment_size_lists", "segment_bands", "classify_float32"]
MANIFEST = "manifest.json"
FILES = {"san": "san.pt", "text_encoder": "text_encoder.pt", "bpe_vocab": "bpe_vocab.txt.gz"}
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VOCAB = REPO_ROOT / "assets" / "clip" / "bpe_simple_vocab_16e6.txt.gz"  # shipped with the package (MIT)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(san: SAN, variant: str, tokenizer: SimpleTokenizer, out_dir: Path) -> Dict[str, Any]:
    cfg = san.cfg
    clip, side, text = cfg.clip_visual, cfg.side_adapter, cfg.text
    return {
        "format_version": FORMAT_VERSION,
        "variant": variant,
        "torch_version": torch.__version__,
        "capabilities": CAPABILITIES,
        "files": {role: {"name": name, "sha256": sha256(out_dir / name)} for role, name in FILES.items()},
        "dims": {
            "embed_dim": clip.output_dim,
            "num_queries": side.num_queries,
            "mask_stride": side.patch_size,
            "clip_width": clip.width,
            "clip_layers": clip.layers,
            "clip_heads": clip.heads,
            "clip_patch_size": clip.patch_size,
            "side_width": side.width,
            "side_depth": side.depth,
            "text_width": text.width,
            "text_layers": text.layers,
        },
        "image": {
            "layout": "NCHW",
            "dtype": "uint8",
            "channel_order": "RGB",
            "pixel_mean": cfg.pixel_mean_255,
            "pixel_std": cfg.pixel_std_255,
            "size_divisibility": cfg.size_divisibility,
            "clip_resolution": cfg.clip_resolution,
        },
        "resize": {
            "short_edge": cfg.resize_short_edge,
            "max_size": cfg.resize_max_size,
            "size_divisibility": cfg.size_divisibility,
        },
        "logit_scale": san.ov_classifier.logit_scale.exp().item(),
        "text": {
            "context_length": text.context_length,
            "vocab_size": tokenizer.vocab_size,
            "sot_token": tokenizer.sot_token,
            "eot_token": tokenizer.eot_token,
            "template_set": cfg.template_set,
            "templates": list(TEMPLATE_SETS[cfg.template_set]),
        },
    }


def write_model_dir(san: SAN, variant: str, vocab_path: Path, out_dir: Path) -> Dict[str, Any]:
    """Scripts the image side and the text encoder of `san`, copies the vocabulary, writes the manifest."""
    tokenizer = SimpleTokenizer(vocab_path)
    if tokenizer.vocab_size != san.cfg.text.vocab_size:
        raise ValueError(f"{vocab_path} gives {tokenizer.vocab_size} tokens but the {variant} text encoder has "
                         f"{san.cfg.text.vocab_size}; pass the vocabulary the model was trained with (--vocab)")
    san = san.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(SanSegmenter(san)), str(out_dir / FILES["san"]))
    torch.jit.save(torch.jit.script(san.ov_classifier), str(out_dir / FILES["text_encoder"]))
    shutil.copyfile(vocab_path, out_dir / FILES["bpe_vocab"])
    manifest = build_manifest(san, variant, tokenizer, out_dir)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def check_model_dir(out_dir: Path) -> List[str]:
    """Re-reads a model folder as a runtime would: checksums, then one small forward of each module.

    Returns the problems found, empty when the folder is sound.
    """
    manifest = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
    problems = [f"{entry['name']}: sha256 differs from the manifest" for entry in manifest["files"].values()
                if sha256(out_dir / entry["name"]) != entry["sha256"]]
    if problems:
        return problems
    san = torch.jit.load(str(out_dir / FILES["san"]), map_location="cpu")
    text_encoder = torch.jit.load(str(out_dir / FILES["text_encoder"]), map_location="cpu")
    tokenizer = SimpleTokenizer(out_dir / FILES["bpe_vocab"])
    with torch.no_grad():
        text = text_encoder(tokenize(tokenizer, ["a photo of a cat."], manifest["text"]["context_length"]))
        mask_logits, mask_embeds = san(torch.zeros(1, 3, 40, 50, dtype=torch.uint8))
        scores, labels = san.postprocess(san.classify(mask_embeds, text), mask_logits, 40, 50, 40, 50)
    dims = manifest["dims"]
    expected = {"text embeddings": (text, (1, dims["embed_dim"])),
                "mask embeddings": (mask_embeds, (1, dims["num_queries"], dims["embed_dim"])),
                "scores": (scores, (1, 1, 40, 50))}
    for what, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape or not torch.isfinite(tensor).all():
            problems.append(f"{what}: shape {tuple(tensor.shape)} (expected {shape}) or non-finite values")
    return problems


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.export", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, type=Path, help="official SAN .pth file")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write (created if missing)")
    parser.add_argument("--variant", default="auto", help="auto (from the tensor shapes), vit_b_16 or vit_l_14_336")
    parser.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB if DEFAULT_VOCAB.exists() else None,
                        help=f"CLIP BPE merges file (default {DEFAULT_VOCAB} when present)")
    args = parser.parse_args(argv)
    if args.vocab is None or not args.vocab.exists():
        parser.error("the CLIP vocabulary bpe_simple_vocab_16e6.txt.gz was not found: pass --vocab FILE")
    try:
        san, variant = load_san(args.checkpoint, args.variant)
        manifest = write_model_dir(san, variant, args.vocab, args.out)
    except (CheckpointError, ValueError) as err:
        print(f"models.export: {err}", file=sys.stderr)
        return 1
    problems = check_model_dir(args.out)
    if problems:
        print("models.export: the written folder fails its check:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print(f"Exported {variant} to {args.out}: " + ", ".join(entry["name"] for entry in manifest["files"].values())
          + f", {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
