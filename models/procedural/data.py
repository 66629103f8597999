"""Procedural scenes as tensors: a pre-rendered pool that is also a models.train dataset, and the per-class
regions of label maps."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from .world import IGNORE, World


def scene_batch(world: World, seed: int, split: str, indices: Sequence[int], size: int,
                held_out_share: float = 0.0) -> Tuple[Tensor, Tensor]:
    """uint8 images (N, 3, size, size) and int64 global class labels (N, size, size) of scenes `indices` of `split`."""
    images, labels = [], []
    for index in indices:
        image, label = world.render(world.scene(seed, split, index, held_out_share=held_out_share), size)
        images.append(image)
        labels.append(label)
    images_t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return images_t, torch.from_numpy(np.stack(labels).astype(np.int64))


class ScenePool:
    """Scenes 0 .. count − 1 of one split, rendered once and kept in memory (~65 KB a scene at 128 pixels).

    As a models.train dataset (`class_names`, `__len__`, `__getitem__` → (uint8 (3, H, W), int64 (H, W))) its
    labels index `class_names`, by default the world's seen classes; pixels of any other class are ignored (255).
    `images` and `labels` (global class ids) hold the whole pool for batched use.
    """

    def __init__(self, world: World, seed: int, split: str, count: int, size: int, held_out_share: float = 0.0,
                 class_ids: Optional[Sequence[int]] = None):
        self.world = world
        self.images, self.labels = scene_batch(world, seed, split, range(count), size, held_out_share)
        ids = list(world.seen_ids if class_ids is None else class_ids)
        self.class_names: List[str] = [world.class_names[i] for i in ids]
        self.remap = torch.full((256,), IGNORE, dtype=torch.long)
        self.remap[torch.tensor(ids)] = torch.arange(len(ids))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> Tuple[Tensor, Tensor]:
        return self.images[index], self.remap[self.labels[index]]


def class_regions(labels: Tensor) -> List[Tuple[Tensor, Tensor]]:
    """Per image: (class ids (K,), boolean masks (K, H, W)) of the classes present, in increasing id order."""
    regions = []
    for label in labels:
        ids = torch.unique(label)
        regions.append((ids, label.unsqueeze(0) == ids.view(-1, 1, 1)))
    return regions


def coverage(masks: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Fraction of each cell of a (grid) partition covered by each mask: (K, H, W) bool → (K, gh, gw) float."""
    return F.adaptive_avg_pool2d(masks.float().unsqueeze(0), list(grid))[0]


def cell_shares(labels: Tensor, grid: Tuple[int, int], num_classes: int) -> Tensor:
    """Share of each class in each cell of a (grid) partition: int64 (N, H, W) ids below num_classes → float
    (N, gh·gw, num_classes), cells row-major. H and W must be multiples of the grid."""
    n, h, w = labels.shape
    if h % grid[0] or w % grid[1]:
        raise ValueError(f"labels of {h}x{w} pixels do not split into a {grid[0]}x{grid[1]} grid")
    cell_h, cell_w = h // grid[0], w // grid[1]
    rows = torch.arange(h, device=labels.device) // cell_h
    cols = torch.arange(w, device=labels.device) // cell_w
    cell = (rows.view(h, 1) * grid[1] + cols.view(1, w)).unsqueeze(0)
    cells = grid[0] * grid[1]
    index = (torch.arange(n, device=labels.device).view(n, 1, 1) * cells + cell) * num_classes + labels
    counts = torch.bincount(index.flatten(), minlength=n * cells * num_classes)
    return counts.view(n, cells, num_classes).float() / (cell_h * cell_w)
