"""Re-exports a model folder from its own weights under the current model code, in place.

    python3 -m models.reexport DIR

A folder exported before a change to models/san or models/export.py (a new method signature, a new manifest
capability) keeps its old TorchScript code until it is exported again; this does that without the original
checkpoint. The weights are read back from san.pt and text_encoder.pt; the configuration comes from the folder's
training.json (`train_config.model`) when it has one, else from the preset named by the manifest's variant. The new
files must give the old ones' outputs exactly on a random image and a prompt, or nothing is replaced.
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import torch

from .export import FILES, MANIFEST, check_model_dir, write_model_dir
from .san.config import PRESETS, SanCfg, load_preset
from .san.model import SAN, SanSegmenter
from .san.tokenizer import SimpleTokenizer, tokenize


def folder_cfg(model_dir: Path, variant: str) -> SanCfg:
    training = model_dir / "training.json"
    if training.exists():
        model = json.loads(training.read_text(encoding="utf-8")).get("train_config", {}).get("model")
        if model is not None:
            return SanCfg.from_dict(model)
    if variant in PRESETS:
        return load_preset(variant)
    raise ValueError(f"{model_dir} has no training.json with train_config.model and its variant {variant!r} is not "
                     f"a preset ({', '.join(PRESETS)}): its configuration is unknown")


def load_folder(model_dir: Path) -> SAN:
    """A SAN holding the weights of the folder's san.pt and text_encoder.pt."""
    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    cfg = folder_cfg(model_dir, manifest["variant"])
    # A folder may ship a smaller vocabulary than its preset's (the bench's random models do): its token table says.
    cfg.text.vocab_size = manifest["text"]["vocab_size"]
    san = SAN(cfg).eval()
    image = torch.jit.load(str(model_dir / FILES["san"]), map_location="cpu")
    text = torch.jit.load(str(model_dir / FILES["text_encoder"]), map_location="cpu")
    # SanSegmenter shares the SAN's modules, so loading into it fills the SAN (strictly: every key, no extra).
    SanSegmenter(san).load_state_dict(image.state_dict())
    san.ov_classifier.load_state_dict(text.state_dict())
    return san


@torch.no_grad()
def same_outputs(old_dir: Path, new_dir: Path, manifest: dict) -> List[str]:
    """Where the new folder's modules differ from the old one's on a seeded random image and one prompt."""
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, 3, 96, 128), dtype=torch.uint8, generator=generator)
    tokenizer = SimpleTokenizer(old_dir / FILES["bpe_vocab"])
    ids = tokenize(tokenizer, ["a photo of a red circle."], manifest["text"]["context_length"])
    problems = []
    outputs = {}
    for name, folder in (("old", old_dir), ("new", new_dir)):
        san = torch.jit.load(str(folder / FILES["san"]), map_location="cpu")
        text = torch.jit.load(str(folder / FILES["text_encoder"]), map_location="cpu")
        outputs[name] = (*san(image), text(ids))
    for what, old, new in zip(("mask logits", "mask embeddings", "text embeddings"), outputs["old"], outputs["new"]):
        if not torch.equal(old, new):
            problems.append(f"{what} differ by up to {(old - new).abs().max().item():.3g}")
    return problems


def reexport(model_dir: Path) -> dict:
    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    san = load_folder(model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp)
        new_manifest = write_model_dir(san, manifest["variant"], model_dir / FILES["bpe_vocab"], staged)
        problems = check_model_dir(staged) + same_outputs(model_dir, staged, manifest)
        if problems:
            raise ValueError("the re-exported folder does not match the old one: " + "; ".join(problems))
        # The manifest records the exporting PyTorch; everything else a folder holds (training.json) stays.
        for name in [FILES["san"], FILES["text_encoder"], MANIFEST]:
            shutil.copyfile(staged / name, model_dir / name)
    return new_manifest


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.reexport", description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="model folder (manifest.json, san.pt, text_encoder.pt, bpe_vocab)")
    args = parser.parse_args(argv)
    try:
        manifest = reexport(args.dir)
    except (OSError, ValueError, RuntimeError) as err:
        print(f"models.reexport: {err}", file=sys.stderr)
        return 1
    print(f"Re-exported {args.dir} ({manifest['variant']}) under the current model code")
    return 0


if __name__ == "__main__":
    sys.exit(main())
