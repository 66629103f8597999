"""Builds the default model of `npm run demo` from a seed: a SAN that really segments the procedural world.

    bash scripts/build-default-model.sh --seed 0 --out models/default [--device cpu|cuda] [--threads 2]

(the script runs `python3 -m models.procedural.build_default` over Debian's OpenMP build of OpenBLAS).

1. Renders CLIP's pool of scenes (every colour–shape pair, as CLIP's web data covers the classes SAN is later
   tested on), SAN's training pool (seen pairs only) and a pool of validation scenes (half of their objects
   held-out pairs).
2. Pre-trains the small CLIP of models/san/configs/procedural.json on region captions and patch labels
   (clip_pretrain.py).
3. Trains SAN with the reference recipe (models.train: Hungarian matching, set criterion, deep supervision, AdamW,
   poly schedule, CLIP frozen but for its positional embedding) on the seen class names.
4. Measures mIoU on seen and held-out classes (evaluate.py), exports the model folder (models.export's
   write_model_dir, then checked) to --out, with training.json: the recipe, the figures and the timings.

Everything is seeded; on the CPU the result is the same on every run with the same PyTorch, OpenBLAS and thread
count.
docs/procedural-world.md describes the world and the figures reached.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from ..environment import openblas
from ..export import check_model_dir
from ..san.config import CONFIG_DIR, SanCfg
from ..san.model import SAN
from ..san.tokenizer import SimpleTokenizer
from ..train import TrainCfg, train
from .clip_pretrain import ClipPretrainCfg, build_vocab, pretrain_clip, region_accuracy
from .data import ScenePool
from .evaluate import evaluate
from .world import World

VARIANT = "procedural"
SAN_CONFIG = CONFIG_DIR / "procedural.json"
IMAGE_SIZE = 128  # scene side in pixels, the config's resize_short_edge


@dataclass
class BuildCfg:
    clip_scenes: int = 6000  # CLIP's pre-training pool, rendered once
    # CLIP's pool and captions cover every pair, as CLIP's own pre-training covers the classes SAN is tested on;
    # False keeps the held-out pairs from CLIP too, which makes them a test of CLIP's composition of known words.
    clip_sees_held_out: bool = True
    train_scenes: int = 3000  # SAN's training pool, seen pairs only, rendered once
    val_scenes: int = 500  # evaluation scenes, each object a held-out pair with probability val_held_out_share
    val_held_out_share: float = 0.5
    clip: ClipPretrainCfg = field(default_factory=ClipPretrainCfg)
    # SAN training: models.train's recipe with what differs for 128-pixel scenes of a colour world.
    san: Dict[str, Any] = field(default_factory=lambda: {
        "steps": 1600, "batch_size": 16, "lr": 1e-3, "num_points": 4096, "crop_size": IMAGE_SIZE,
        "short_edges": [112, 128, 144, 160], "max_size": 4 * IMAGE_SIZE,
        "color_jitter": False,  # hue and saturation jitter would change the colour a class is named by
        "checkpoint_period": 100000, "log_period": 50,
    })


def train_cfg(build: BuildCfg, san_cfg: SanCfg, seed: int) -> TrainCfg:
    return TrainCfg.from_dict({"model": san_cfg.to_dict(), "seed": seed, **build.san})


def build(seed: int, out: Path, device: torch.device, cfg: BuildCfg, work: Path,
          log=lambda text: print(text, file=sys.stderr, flush=True)) -> Dict[str, Any]:
    wall, cpu = time.monotonic(), time.process_time()
    timings: Dict[str, Dict[str, float]] = {}

    def lap(name: str, since: List[float]):
        now = [time.monotonic(), time.process_time()]
        timings[name] = {"wall_s": round(now[0] - since[0], 1), "cpu_s": round(now[1] - since[1], 1)}
        since[:] = now

    mark = [wall, cpu]
    work.mkdir(parents=True, exist_ok=True)
    world = World()
    vocab = build_vocab(world, work / "bpe_vocab.txt.gz")
    tokenizer = SimpleTokenizer(vocab)
    clip_world = World(held_out=()) if cfg.clip_sees_held_out else world
    clip_pool = ScenePool(clip_world, seed, "clip", cfg.clip_scenes, IMAGE_SIZE)
    pool = ScenePool(world, seed, "train", cfg.train_scenes, IMAGE_SIZE)
    val = ScenePool(world, seed, "val", cfg.val_scenes, IMAGE_SIZE, cfg.val_held_out_share,
                    class_ids=range(len(world.class_names)))
    lap("render", mark)
    log(f"rendered {len(clip_pool)} CLIP, {len(pool)} SAN training and {len(val)} validation scenes in "
        f"{timings['render']['wall_s']} s")

    san_cfg = SanCfg.from_json(SAN_CONFIG)
    torch.manual_seed(seed)
    san = SAN(san_cfg)
    pretrain_clip(san, clip_world, clip_pool, tokenizer, seed, cfg.clip, device, log)
    lap("clip_pretrain", mark)
    clip_accuracy = region_accuracy(san, world, val, tokenizer, device)
    log("CLIP zero-shot region accuracy: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in clip_accuracy.items()))
    lap("clip_eval", mark)

    tcfg = train_cfg(cfg, san_cfg, seed)
    result = train(san, pool, work / "run", tcfg, vocab, device=device, variant=VARIANT, export=True)
    lap("san_train", mark)
    figures = evaluate(san.to(device), world, val, tokenizer, device)  # the export moved it to the CPU
    log(f"mIoU seen {figures['miou_seen']:.1f}, held-out {figures['miou_held_out']:.1f}, all "
        f"{figures['miou_all']:.1f}, pixel accuracy {figures['pixel_accuracy']:.1f}")
    lap("evaluate", mark)

    out.mkdir(parents=True, exist_ok=True)
    for item in result.model_dir.iterdir():
        shutil.copyfile(item, out / item.name)
    problems = check_model_dir(out)
    if problems:
        raise RuntimeError(f"{out} fails its check: " + "; ".join(problems))
    record = {
        "seed": seed,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "openblas": openblas(),
        "torch_version": torch.__version__,
        "classes": {"all": world.class_names, "seen": [world.class_names[i] for i in world.seen_ids],
                    "held_out": [world.class_names[i] for i in world.held_out_ids]},
        "build": asdict(cfg),
        "train_config": tcfg.to_dict(),
        "clip_region_accuracy": clip_accuracy,
        "evaluation": figures,
        "final_loss": result.losses[-1] if result.losses else None,
        "timings": timings,
        "total": {"wall_s": round(time.monotonic() - wall, 1), "cpu_s": round(time.process_time() - cpu, 1)},
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {out}: {record['total']['wall_s']} s wall, {record['total']['cpu_s']} s CPU")
    return record


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.procedural.build_default",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seeds the world, the weights, the data order (default 0)")
    parser.add_argument("--out", required=True, type=Path, help="model folder to write (created if missing)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default cpu")
    # Two threads, the committed model's: results depend on the count. They pay only with an OpenBLAS built for
    # OpenMP, whose threads are LibTorch's own pool (scripts/build-default-model.sh says by how much).
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads (default 2); results depend on it")
    parser.add_argument("--work", type=Path, help="keep the run folder (checkpoints, losses, loss.png) here")
    parser.add_argument("--config", type=Path, help="JSON overriding BuildCfg fields (train_scenes, clip, san, ...)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.threads > 1 and "USE_OPENMP" not in openblas().get("config", ""):
        print(f"warning: {args.threads} threads over an OpenBLAS not built for OpenMP gain little; "
              "scripts/build-default-model.sh loads Debian's OpenMP one", file=sys.stderr)
    cfg = BuildCfg()
    if args.config is not None:
        overrides = json.loads(args.config.read_text(encoding="utf-8"))
        cfg.clip = ClipPretrainCfg(**{**asdict(cfg.clip), **overrides.pop("clip", {})})
        cfg.san = {**cfg.san, **overrides.pop("san", {})}
        cfg = BuildCfg(**{**{k: getattr(cfg, k) for k in asdict(cfg)}, **overrides})
    if args.work is not None:
        build(args.seed, args.out, torch.device(args.device), cfg, args.work)
    else:
        with tempfile.TemporaryDirectory() as work:
            build(args.seed, args.out, torch.device(args.device), cfg, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
