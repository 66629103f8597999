"""python3 -m models.train: trains SAN on an image + label-PNG folder and exports the result.

    python3 -m models.train --config CFG.json --data DIR --out DIR [--images SUBDIR] [--labels SUBDIR]
        [--classes FILE] [--resume] [--steps N] [--batch-size B] [--device cpu|cuda] [--seed S]
        [--init CHECKPOINT.pth] [--vocab FILE] [--variant NAME] [--no-export]
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import torch

from ..export import DEFAULT_VOCAB
from ..san.checkpoint import CheckpointError
from ..san.model import SAN
from .checkpoints import load_init
from .config import TRAIN_PRESETS, load_train_config
from .data import FolderDataset, ImageError
from .train import train, with_overrides


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.train", description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True,
                        help=f"training config JSON file, or a preset: {', '.join(TRAIN_PRESETS)}")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder (default layout: images/, labels/ "
                        "and classes.txt in it)")
    parser.add_argument("--images", default="images", help="image folder, relative to --data (default images)")
    parser.add_argument("--labels", default="labels", help="label PNG folder, relative to --data (default labels)")
    parser.add_argument("--classes", default="classes.txt",
                        help="class names, one per line in label order, relative to --data (default classes.txt)")
    parser.add_argument("--out", required=True, type=Path, help="run folder: checkpoints, losses, loss.png, model/")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last_checkpoint when present")
    parser.add_argument("--steps", type=int, help="total steps (overrides the config's steps)")
    parser.add_argument("--batch-size", type=int, help="images per step (overrides the config's batch_size)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        choices=["cpu", "cuda"], help="default: cuda when available, else cpu")
    parser.add_argument("--seed", type=int, help="overrides the config's seed")
    parser.add_argument("--init", type=Path,
                        help="starting weights: a SAN checkpoint (e.g. san_vit_b_16.pth) or an OpenAI CLIP file")
    parser.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB if DEFAULT_VOCAB.exists() else None,
                        help=f"BPE merges of the text encoder (default {DEFAULT_VOCAB} when present)")
    parser.add_argument("--variant", help="variant written to the model's manifest (default: the config's model)")
    parser.add_argument("--no-export", action="store_true", help="skip writing OUT/model at the end")
    args = parser.parse_args(argv)
    if args.vocab is None or not args.vocab.exists():
        parser.error("the BPE vocabulary was not found: pass --vocab FILE (CLIP's bpe_simple_vocab_16e6.txt.gz "
                     "for the official models)")
    try:
        cfg = with_overrides(load_train_config(args.config), steps=args.steps, batch_size=args.batch_size,
                             seed=args.seed)
        dataset = FolderDataset(args.data, args.images, args.labels, args.classes)
        torch.manual_seed(cfg.seed)
        san = SAN(cfg.san_cfg())
        if args.init is not None:
            if args.resume and (args.out / "last_checkpoint").exists():
                print(f"models.train: resuming, so --init {args.init} is not loaded", file=sys.stderr)
            else:
                print(f"models.train: starting from {load_init(san, args.init)}", file=sys.stderr)
        else:
            print("models.train: no --init: every weight, CLIP's included, starts at random", file=sys.stderr)
        result = train(san, dataset, args.out, cfg, args.vocab, device=args.device, resume=args.resume,
                       variant=args.variant, export=not args.no_export)
    except (CheckpointError, ImageError, ValueError, FloatingPointError) as err:
        print(f"models.train: {err}", file=sys.stderr)
        return 1
    print(f"Trained {result.steps} steps in {result.seconds:.0f} s: {result.checkpoint}"
          + (f", model folder {result.model_dir}" if result.model_dir else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
