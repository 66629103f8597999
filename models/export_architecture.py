"""Writes the architecture templates that `san-seg import` binds official weights into, without Python.

    python3 -m models.export_architecture [--variant vit_b_16 --variant vit_l_14_336] [--out assets/architectures]

For each variant, OUT/<variant>/ holds:

* san.pt and text_encoder.pt: the modules models.export scripts (SanSegmenter and the text tower), with every
  parameter and buffer replaced by a placeholder: one zero expanded to the real shape (stride 0), so a file holds
  the code and the shapes but no weights (a few MB at most);
* architecture.json: for each module file, each state-dict entry's checkpoint key, shape and dtype (found by tensor
  identity, so it is exactly the sharing that models.export relies on: the segmenter's `bg_embed` is the
  checkpoint's `ov_classifier.bg_embed`); the shapes that identify the variant (models.san.checkpoint's); the
  checkpoint keys that are not bound; and the manifest models.export writes, with the weight-dependent fields
  (torch_version, files' sha256, logit_scale) left null for the importer to fill.

Re-run it whenever models/san or models/export.py changes; test_export_architecture checks the committed templates.
"""
import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch import Tensor, nn

from .export import FILES, REPO_ROOT, build_manifest
from .san.checkpoint import IGNORED_KEYS, _signature
from .san.config import load_preset
from .san.model import SAN, SanSegmenter
from .san.tokenizer import SimpleTokenizer

ARCHITECTURE = "architecture.json"
FORMAT_VERSION = 1
DEFAULT_OUT = REPO_ROOT / "assets" / "architectures"
DEFAULT_VOCAB = REPO_ROOT / "assets" / "clip" / "bpe_simple_vocab_16e6.txt.gz"
SHIPPED_VARIANTS = ("vit_b_16", "vit_l_14_336")
DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.float64: "float64"}


def placeholder(tensor: Tensor) -> Tensor:
    """One zero of `tensor`'s dtype seen as its shape: torch.jit.save stores a one-element storage."""
    return torch.zeros((), dtype=tensor.dtype).expand(tensor.shape)


def bindings(module: nn.Module, checkpoint_keys: Dict[int, str]) -> Dict[str, Dict[str, Any]]:
    """Each state-dict entry of `module` → the checkpoint key of the same tensor, its shape and dtype."""
    entries = {}
    for name, tensor in module.state_dict(keep_vars=True).items():
        if id(tensor) not in checkpoint_keys:
            raise ValueError(f"{name} of the exported {type(module).__name__} is no tensor of the SAN state dict")
        entries[name] = {"key": checkpoint_keys[id(tensor)], "shape": list(tensor.shape),
                         "dtype": DTYPE_NAMES[tensor.dtype]}
    return entries


def write_architecture(variant: str, vocab_path: Path, out_dir: Path) -> Dict[str, Any]:
    """Scripts `variant`'s two modules with placeholder weights into out_dir and writes architecture.json."""
    san = SAN(load_preset(variant)).eval()
    state = san.state_dict(keep_vars=True)
    checkpoint_keys = {id(tensor): key for key, tensor in state.items()}
    scripted = {FILES["san"]: torch.jit.script(SanSegmenter(san)),
                FILES["text_encoder"]: torch.jit.script(san.ov_classifier)}
    modules = {name: bindings(module, checkpoint_keys) for name, module in scripted.items()}
    bound = {entry["key"] for entries in modules.values() for entry in entries.values()}
    unbound = sorted(set(state) - bound)
    if unbound:
        raise ValueError(f"{variant}: checkpoint keys that no exported module uses: {', '.join(unbound)}")
    with torch.no_grad():
        for tensor in state.values():
            tensor.data = placeholder(tensor)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # build_manifest reads the files it lists; the weight-dependent fields are blanked below.
        staging = Path(tmp)
        for name, module in scripted.items():
            torch.jit.save(module, str(staging / name))
        shutil.copyfile(vocab_path, staging / FILES["bpe_vocab"])
        manifest = build_manifest(san, variant, SimpleTokenizer(vocab_path), staging)
        for name in scripted:
            shutil.copyfile(staging / name, out_dir / name)
    manifest["torch_version"] = None
    manifest["logit_scale"] = None
    for entry in manifest["files"].values():
        entry["sha256"] = None
    architecture = {
        "format_version": FORMAT_VERSION,
        "variant": variant,
        "signature": {key: list(shape) for key, shape in _signature(san.cfg).items()},
        "ignored_keys": list(IGNORED_KEYS),
        "logit_scale_key": checkpoint_keys[id(san.ov_classifier.logit_scale)],
        "modules": modules,
        "manifest": manifest,
    }
    (out_dir / ARCHITECTURE).write_text(json.dumps(architecture, indent=1) + "\n", encoding="utf-8")
    return architecture


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.export_architecture", description=__doc__.split("\n")[0])
    parser.add_argument("--variant", action="append", help=f"preset to write (repeatable; default: "
                                                           f"{', '.join(SHIPPED_VARIANTS)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"parent folder (default {DEFAULT_OUT})")
    parser.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB,
                        help=f"the BPE merges the text tower reads (default {DEFAULT_VOCAB})")
    args = parser.parse_args(argv)
    for variant in args.variant or SHIPPED_VARIANTS:
        write_architecture(variant, args.vocab, args.out / variant)
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted((args.out / variant).iterdir()))
        print(f"Wrote {args.out / variant}: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
