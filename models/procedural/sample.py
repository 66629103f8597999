"""The demo's sample scene: held-out colour–shape pairs only, which the default model's SAN never trained on.

    python3 -m models.procedural.sample --out assets/procedural-scene.png [--size 512]

Writes the scene (RGB PNG) and, beside it, its ground truth (`…-labels.png`, grey: pixel value = index into
SAMPLE_CLASSES) and `…-classes.txt` (SAMPLE_CLASSES, one per line), so that the demo can score its own output.
The scene is placed by hand rather than drawn at random, so that it shows each object whole and apart.
"""
import argparse
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from .world import BACKGROUND, COLOURS, Scene, ShapeObject, World, render, write_png

# (colour, shape, x, y, radius, angle, fill): every pair is held out in the default World.
OBJECTS = (
    ("red", "star", 0.25, 0.27, 0.17, 0.2, "solid"),
    ("blue", "triangle", 0.72, 0.24, 0.17, 0.5, "shaded"),
    ("green", "ring", 0.22, 0.72, 0.16, 0.0, "solid"),
    ("yellow", "cross", 0.52, 0.55, 0.15, 0.35, "striped"),
    ("purple", "square", 0.78, 0.74, 0.15, 0.6, "solid"),
)
SAMPLE_CLASSES = [BACKGROUND] + [f"{colour} {shape}" for colour, shape, *_ in OBJECTS]


def sample_scene() -> Scene:
    scene = Scene(pattern="checker", bg_rgb=((150.0, 146.0, 138.0), (118.0, 124.0, 128.0)), bg_angle=0.0,
                  bg_period=0.125, noise_seed=2023)
    for colour, shape, x, y, radius, angle, fill in OBJECTS:
        scene.objects.append(ShapeObject(colour=colour, shape=shape, x=x, y=y, radius=radius, angle=angle,
                                         rgb=tuple(float(v) for v in COLOURS[colour]), fill=fill, fill_angle=0.8,
                                         fill_period=0.03))
    return scene


def write_sample(out: Path, size: int = 512) -> List[Path]:
    """Writes the scene, its label map and its class list; returns their paths."""
    world = World()
    pairs = [(o.colour, o.shape) for o in sample_scene().objects]
    missing = [pair for pair in pairs if pair not in world.held_out_pairs]
    if missing:
        raise ValueError(f"the sample scene must show held-out pairs only; seen: {missing}")
    image, labels = render(sample_scene(), size, list(range(1, len(OBJECTS) + 1)), 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    label_path = out.with_name(out.stem + "-labels.png")
    classes_path = out.with_name(out.stem + "-classes.txt")
    write_png(out, image)
    write_png(label_path, labels.astype(np.uint8))
    classes_path.write_text("\n".join(SAMPLE_CLASSES) + "\n", encoding="utf-8")
    return [out, label_path, classes_path]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m models.procedural.sample", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="PNG to write, e.g. assets/procedural-scene.png")
    parser.add_argument("--size", type=int, default=512, help="side in pixels (default 512)")
    args = parser.parse_args(argv)
    for path in write_sample(args.out, args.size):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
