"""Training data: a dataset interface, image + label-PNG folders, the reference's augmentation and the per-image
targets (class ids and binary masks) the matcher and the losses read.

A dataset is any object with `class_names` (list of str, label value i is class_names[i]), `__len__`, and
`__getitem__(i)` returning (image uint8 (3, H, W) RGB, label int64 (H, W)) where the ignore value (255) marks
pixels of no class. `FolderDataset` reads the COCO-Stuff layout; models/procedural can make one in memory.
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn import functional as F

from .config import TrainCfg

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
LABEL_MODES = ("L", "P", "I;16", "I;16B", "I")  # single-channel PIL modes a label map may use
Sample = Tuple[Tensor, Tensor]  # image uint8 (3, H, W), label int64 (H, W)


class ImageError(ValueError):
    """A file that cannot be read as a training image or label map."""


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), whatever its mode; EXIF orientation is not applied (labels ignore it)."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{path} cannot be read as an image: {err}") from None


def read_label(path: Path) -> np.ndarray:
    """A label PNG as int64 (H, W) class indices: grey values, or palette indices (not colours), 8 or 16 bit."""
    try:
        with Image.open(path) as image:
            if image.mode not in LABEL_MODES:
                raise ImageError(f"{path}: a label map must be a single-channel or palette PNG of class indices, "
                                 f"got PIL mode {image.mode}")
            return np.asarray(image).astype(np.int64)
    except (OSError, SyntaxError) as err:
        raise ImageError(f"{path} cannot be read as a label PNG: {err}") from None


class FolderDataset:
    """Images and label PNGs of the same stem in two folders, and the class names in label order.

    The default layout is root/images/NAME.{jpg,jpeg,png}, root/labels/NAME.png and root/classes.txt (one class per
    line). `images`, `labels` and `classes` name other places, relative to root or absolute: COCO-Stuff as the
    reference prepares it is images="train2017", labels="stuffthingmaps_detectron2/train2017" under datasets/coco,
    with the 171 names of coco_stuff171.txt. Label values index class_names; 255 is no class.
    """

    def __init__(self, root: Union[str, Path], images: Union[str, Path] = "images", labels: Union[str, Path] = "labels",
                 classes: Union[str, Path, Sequence[str]] = "classes.txt"):
        self.root = Path(root)
        images_dir, labels_dir = self.root / images, self.root / labels
        for folder in (images_dir, labels_dir):
            if not folder.is_dir():
                raise ValueError(f"{folder} is not a folder: a training set needs a folder of images and one of "
                                 "label PNGs (see docs/training.md)")
        if isinstance(classes, (str, Path)):
            classes_file = self.root / classes
            if not classes_file.is_file():
                raise ValueError(f"{classes_file} does not exist: write the class names there, one per line, in "
                                 "label order (e.g. assets/classes/coco_stuff171.txt)")
            classes = [line.strip() for line in classes_file.read_text(encoding="utf-8").splitlines()]
            classes = [name for name in classes if name]
        self.class_names: List[str] = list(classes)
        if not self.class_names:
            raise ValueError(f"The training set under {self.root} names no classes")
        self.images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.images:
            raise ValueError(f"{images_dir} holds no .jpg, .jpeg or .png images")
        self.labels = [labels_dir / (p.stem + ".png") for p in self.images]
        missing = [label.name for label in self.labels if not label.is_file()]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise ValueError(f"{labels_dir} lacks the label PNG of {len(missing)} image(s): {shown}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Sample:
        image, label = read_image(self.images[index]), read_label(self.labels[index])
        if image.shape[:2] != label.shape:
            raise ImageError(f"{self.labels[index]} is {label.shape[1]}x{label.shape[0]} but its image is "
                             f"{image.shape[1]}x{image.shape[0]}")
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))), torch.from_numpy(label)


def shortest_edge_size(h: int, w: int, short_edge: int, max_size: int) -> Tuple[int, int]:
    """detectron2's ResizeShortestEdge: short side to short_edge, long side capped at max_size, int(x + 0.5)."""
    scale = short_edge / min(h, w)
    new_h, new_w = (short_edge, scale * w) if h < w else (scale * h, short_edge)
    if max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _coin(generator: torch.Generator) -> bool:
    return bool(torch.randint(0, 2, (), generator=generator))


def rgb_to_hsv(image: Tensor) -> Tensor:
    """uint8 RGB (3, H, W) → float HSV in OpenCV's uint8 ranges: H in [0, 180), S and V in [0, 255], rounded."""
    rgb = image.float()
    v, _ = rgb.max(0)
    low, _ = rgb.min(0)
    delta = v - low
    s = torch.where(v > 0, delta * 255.0 / v.clamp(min=1e-6), torch.zeros_like(v))
    r, g, b = rgb[0], rgb[1], rgb[2]
    safe = delta.clamp(min=1e-6)
    h = torch.where(v == r, 60.0 * (g - b) / safe,
                    torch.where(v == g, 120.0 + 60.0 * (b - r) / safe, 240.0 + 60.0 * (r - g) / safe))
    h = torch.where(delta > 0, h, torch.zeros_like(h)) % 360.0
    return torch.stack([torch.round(h / 2.0) % 180.0, torch.round(s), v])


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Inverse of rgb_to_hsv (OpenCV's uint8 ranges) → uint8 RGB (3, H, W)."""
    h, s, v = hsv[0] * 2.0, hsv[1] / 255.0, hsv[2]
    sector = torch.floor(h / 60.0) % 6
    f = h / 60.0 - torch.floor(h / 60.0)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = torch.zeros((3,) + tuple(h.shape), dtype=torch.float32)
    for k, channels in enumerate(table):
        chosen = sector == k
        for c in range(3):
            out[c] = torch.where(chosen, channels[c], out[c])
    return out.round().clamp(0, 255).to(torch.uint8)


def color_jitter_ssd(image: Tensor, generator: torch.Generator, brightness_delta: float = 32.0,
                     contrast: Tuple[float, float] = (0.5, 1.5), saturation: Tuple[float, float] = (0.5, 1.5),
                     hue_delta: int = 18) -> Tensor:
    """detectron2's ColorAugSSDTransform on a uint8 RGB (3, H, W) image: each of brightness (± delta), contrast
    (× factor), saturation (× factor) and hue (± delta in OpenCV's 0..180 hue) applies with probability 0.5;
    contrast comes first or last with equal odds. Results are clipped and truncated to uint8 after each step.
    """
    def convert(x: Tensor, alpha: float = 1.0, beta: float = 0.0) -> Tensor:
        return (x.float() * alpha + beta).clamp(0, 255).to(torch.uint8)

    def do_contrast(x: Tensor) -> Tensor:
        return convert(x, alpha=_uniform(generator, *contrast)) if _coin(generator) else x

    def do_saturation(x: Tensor) -> Tensor:
        if not _coin(generator):
            return x
        hsv = rgb_to_hsv(x)
        hsv[1] = (hsv[1] * _uniform(generator, *saturation)).clamp(0, 255).floor()
        return hsv_to_rgb(hsv)

    def do_hue(x: Tensor) -> Tensor:
        if not _coin(generator):
            return x
        hsv = rgb_to_hsv(x)
        hsv[0] = (hsv[0] + int(torch.randint(-hue_delta, hue_delta + 1, (), generator=generator))) % 180
        return hsv_to_rgb(hsv)

    if _coin(generator):
        image = convert(image, beta=_uniform(generator, -brightness_delta, brightness_delta))
    if _coin(generator):
        return do_hue(do_saturation(do_contrast(image)))
    return do_contrast(do_hue(do_saturation(image)))


class TrainTransform:
    """MaskFormerSemanticDatasetMapper's training augmentation, in this order: resize the short side to a random
    choice of cfg.train_short_edges() (long side ≤ max_size; image bilinear with antialiasing, label nearest),
    random crop of at most crop_size², SSD colour jitter, horizontal flip (p = 0.5), then padding to
    crop_size² (image pad_value, label ignore_label).
    """

    def __init__(self, cfg: TrainCfg):
        self.short_edges = cfg.train_short_edges()
        self.max_size = cfg.max_size
        self.crop_size = cfg.crop_size
        self.color_jitter = cfg.color_jitter
        self.flip = cfg.flip
        self.ignore_label = cfg.ignore_label
        self.pad_value = cfg.pad_value

    def __call__(self, image: Tensor, label: Tensor, generator: torch.Generator) -> Sample:
        _, h, w = image.shape
        short = self.short_edges[int(torch.randint(0, len(self.short_edges), (), generator=generator))]
        new_h, new_w = shortest_edge_size(h, w, short, self.max_size)
        if (new_h, new_w) != (h, w):
            image = F.interpolate(image[None].float(), size=(new_h, new_w), mode="bilinear", align_corners=False,
                                  antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
            label = F.interpolate(label[None, None].float(), size=(new_h, new_w), mode="nearest-exact")[0, 0].long()
        crop_h, crop_w = min(self.crop_size, new_h), min(self.crop_size, new_w)
        y0 = int(torch.randint(0, new_h - crop_h + 1, (), generator=generator))
        x0 = int(torch.randint(0, new_w - crop_w + 1, (), generator=generator))
        image = image[:, y0:y0 + crop_h, x0:x0 + crop_w]
        label = label[y0:y0 + crop_h, x0:x0 + crop_w]
        if self.color_jitter:
            image = color_jitter_ssd(image, generator)
        if self.flip and _coin(generator):
            image, label = image.flip(-1), label.flip(-1)
        pad = [0, self.crop_size - crop_w, 0, self.crop_size - crop_h]
        image = F.pad(image, pad, value=self.pad_value)
        label = F.pad(label, pad, value=self.ignore_label)
        return image.contiguous(), label.contiguous()


def make_targets(labels: Tensor, num_classes: int, ignore_label: int = 255) -> List[Dict[str, Tensor]]:
    """Per image of (N, H, W) labels: {"labels": the class ids present, increasing, int64 (K,),
    "masks": bool (K, H, W), one per class}. Ignored pixels belong to no mask.
    """
    targets = []
    for label in labels:
        classes = torch.unique(label)
        classes = classes[classes != ignore_label]
        if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= num_classes):
            bad = classes[(classes < 0) | (classes >= num_classes)].tolist()
            raise ValueError(f"Expected label values in [0, {num_classes - 1}] or {ignore_label} (ignore) but "
                             f"received {bad[:10]}; the dataset names {num_classes} classes")
        targets.append({"labels": classes.long(), "masks": label[None] == classes[:, None, None]})
    return targets


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 steps), so nearby inputs give unrelated streams."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state ^ (value & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        state = (state ^ (state >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
    return state >> 1


class TrainSamples(torch.utils.data.Dataset):
    """Sample number g of a run → an augmented (image, label) that depends only on (seed, g).

    Sample g is image perm_e[g mod len] of epoch e = g // len, perm_e a seeded permutation; its augmentation has
    its own generator. A run that resumes at step s asks for g ≥ s · batch_size and sees what it would have seen.
    """

    def __init__(self, dataset, transform: TrainTransform, seed: int):
        self.dataset = dataset
        self.transform = transform
        self.seed = seed
        self._perms: Dict[int, Tensor] = {}

    def __len__(self) -> int:
        return 1 << 62

    def order(self, epoch: int) -> Tensor:
        if epoch not in self._perms:
            generator = torch.Generator().manual_seed(mix_seed(self.seed, epoch))
            self._perms = {epoch: torch.randperm(len(self.dataset), generator=generator)}
        return self._perms[epoch]

    def __getitem__(self, g: int) -> Sample:
        epoch, position = divmod(g, len(self.dataset))
        image, label = self.dataset[int(self.order(epoch)[position])]
        generator = torch.Generator().manual_seed(mix_seed(self.seed, 1 << 40, g))
        return self.transform(image, label.long(), generator)


def collate(samples: List[Sample]) -> Tuple[Tensor, Tensor]:
    return torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])


def train_loader(dataset, cfg: TrainCfg, start_step: int, steps: int, batch_size: int, seed: int):
    """Batches (images uint8 (B, 3, S, S), labels int64 (B, S, S)) for steps start_step .. steps − 1."""
    samples = TrainSamples(dataset, TrainTransform(cfg), seed)
    indices = range(start_step * batch_size, steps * batch_size)
    return torch.utils.data.DataLoader(samples, batch_size=batch_size, sampler=indices, collate_fn=collate,
                                       num_workers=cfg.num_workers, drop_last=False)
