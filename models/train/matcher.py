"""Bipartite matching of predicted masks to ground-truth masks (Mask2Former's HungarianMatcher, as SAN uses it).

The cost of pairing query q with target t is class_weight · (−p_q(class_t)) + mask_weight · BCE + dice_weight · dice,
the two mask terms computed on `num_points` points drawn uniformly at random and shared by every prediction and
target of an image. The assignment minimising the summed cost is scipy's linear_sum_assignment (Debian:
python3-scipy), as in the reference.
"""
from typing import Dict, List, Optional, Tuple

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn
from torch.nn import functional as F

Target = Dict[str, Tensor]  # {"labels": int64 (K,), "masks": (K, H, W) 0/1}


def point_sample(maps: Tensor, coords: Tensor) -> Tensor:
    """Bilinear samples of (N, C, H, W) maps at (N, P, 2) points in [0, 1]², given as (x, y) → (N, C, P).

    detectron2's point_sample: grid_sample with align_corners False, so 0 and 1 are the outer pixel edges and the
    value outside is 0.
    """
    return F.grid_sample(maps, 2.0 * coords.unsqueeze(2) - 1.0, mode="bilinear", align_corners=False).squeeze(3)


def batch_sigmoid_bce(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean BCE-with-logits over points of every prediction (N, P) against every target (M, P) → (N, M)."""
    positive = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    negative = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (positive @ targets.t() + negative @ (1 - targets).t()) / logits.shape[1]


def batch_dice(logits: Tensor, targets: Tensor) -> Tensor:
    """1 − (2·Σ p·t + 1) / (Σ p + Σ t + 1) with p = sigmoid(logits), every prediction against every target → (N, M)."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.t()
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher(nn.Module):
    def __init__(self, cost_class: float = 2.0, cost_mask: float = 5.0, cost_dice: float = 5.0,
                 num_points: int = 12544):
        super().__init__()
        if cost_class == 0 and cost_mask == 0 and cost_dice == 0:
            raise ValueError("At least one of cost_class, cost_mask and cost_dice must be non-zero")
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.num_points = num_points

    def cost_matrix(self, class_logits: Tensor, mask_logits: Tensor, target: Target,
                    generator: Optional[torch.Generator] = None) -> Tensor:
        """(Q, K) matching costs of one image: class_logits (Q, C+1), mask_logits (Q, h, w), K targets."""
        probs = class_logits.float().softmax(-1)
        cost_class = -probs[:, target["labels"]]
        coords = torch.rand(1, self.num_points, 2, device=mask_logits.device, generator=generator)
        target_masks = target["masks"].to(device=mask_logits.device, dtype=torch.float32)
        target_points = point_sample(target_masks[:, None], coords.expand(target_masks.shape[0], -1, -1))[:, 0]
        pred_points = point_sample(mask_logits.float()[:, None], coords.expand(mask_logits.shape[0], -1, -1))[:, 0]
        cost_mask = batch_sigmoid_bce(pred_points, target_points)
        cost_dice = batch_dice(pred_points, target_points)
        return self.cost_class * cost_class + self.cost_mask * cost_mask + self.cost_dice * cost_dice

    @torch.no_grad()
    def forward(self, class_logits: Tensor, mask_logits: Tensor, targets: List[Target],
                generator: Optional[torch.Generator] = None) -> List[Tuple[Tensor, Tensor]]:
        """Per image, (query indices, target indices) of the optimal pairs: min(Q, K) pairs, queries increasing.

        class_logits (N, Q, C+1), mask_logits (N, Q, h, w); targets[i]["masks"] may be at any resolution (points
        are in normalised coordinates). Runs in float32 whatever autocast says.
        """
        indices = []
        with torch.autocast(device_type=mask_logits.device.type, enabled=False):
            for b, target in enumerate(targets):
                if target["labels"].numel() == 0:
                    empty = torch.zeros(0, dtype=torch.int64)
                    indices.append((empty, empty))
                    continue
                cost = self.cost_matrix(class_logits[b], mask_logits[b], target, generator).cpu()
                if not torch.isfinite(cost).all():
                    raise FloatingPointError(f"Matching costs of image {b} in the batch are not finite: the mask or "
                                             "class logits hold NaN or infinity")
                rows, cols = linear_sum_assignment(cost.numpy())
                indices.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return indices
