"""The set-prediction loss SAN trains with (Mask2Former's SetCriterion): class cross-entropy with a weighted
no-object class, and sigmoid BCE plus dice on masks at importance-sampled points, for every supervised side block.
"""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .matcher import HungarianMatcher, Target, point_sample

LossDict = Dict[str, Tensor]


def uncertainty(logits: Tensor) -> Tensor:
    """PointRend's uncertainty of a mask logit: −|logit|, largest where the prediction is least certain."""
    return -logits.abs()


def uncertain_point_coords(mask_logits: Tensor, num_points: int, oversample_ratio: float,
                           importance_sample_ratio: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """(R, num_points, 2) points in [0, 1]² for (R, 1, h, w) logits, detectron2's
    get_uncertain_point_coords_with_randomness: of int(num_points · oversample_ratio) uniform candidates keep the
    int(importance_sample_ratio · num_points) most uncertain, then fill up with fresh uniform points.
    """
    count = mask_logits.shape[0]
    num_sampled = int(num_points * oversample_ratio)
    device = mask_logits.device
    coords = torch.rand(count, num_sampled, 2, device=device, generator=generator)
    scores = uncertainty(point_sample(mask_logits, coords))[:, 0]
    num_uncertain = int(importance_sample_ratio * num_points)
    top = torch.topk(scores, k=num_uncertain, dim=1)[1]
    coords = torch.gather(coords, 1, top[:, :, None].expand(count, num_uncertain, 2))
    num_random = num_points - num_uncertain
    if num_random > 0:
        coords = torch.cat([coords, torch.rand(count, num_random, 2, device=device, generator=generator)], dim=1)
    return coords


def sigmoid_bce_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Σ over masks of the mean BCE-with-logits over points, / num_masks. logits, targets: (R, P)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1).sum() / num_masks


def dice_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
    """Σ over masks of 1 − (2·Σ p·t + 1) / (Σ p + Σ t + 1), p = sigmoid(logits), / num_masks. (R, P) inputs."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


class SetCriterion(nn.Module):
    """Hungarian-matched losses over the outputs of every supervised side block.

    forward(outputs, targets) takes outputs as a list of (mask_logits (N, Q, h, w), class_logits (N, Q, C+1)), the
    last entry the final block, and returns the weighted losses: loss_ce, loss_mask, loss_dice for the last block,
    and loss_ce_0, loss_mask_0, ... for the earlier ones, as the reference names them. Each block is matched on
    its own. `empty_weight` is the checkpoint's criterion.empty_weight: ones, and no_object_weight for the
    background class last.
    """

    def __init__(self, num_classes: int, matcher: HungarianMatcher, class_weight: float = 2.0,
                 mask_weight: float = 5.0, dice_weight: float = 5.0, no_object_weight: float = 0.1,
                 num_points: int = 12544, oversample_ratio: float = 3.0, importance_sample_ratio: float = 0.75):
        super().__init__()
        self.num_classes = num_classes
        self.matcher = matcher
        self.weights = {"loss_ce": class_weight, "loss_mask": mask_weight, "loss_dice": dice_weight}
        empty_weight = torch.ones(num_classes + 1)
        empty_weight[-1] = no_object_weight
        self.register_buffer("empty_weight", empty_weight)
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio

    def loss_labels(self, class_logits: Tensor, targets: List[Target],
                    indices: List[Tuple[Tensor, Tensor]]) -> Tensor:
        """Weighted cross-entropy over C+1 classes; unmatched queries are background (weight no_object_weight)."""
        target_classes = torch.full(class_logits.shape[:2], self.num_classes, dtype=torch.int64,
                                    device=class_logits.device)
        for b, (src, tgt) in enumerate(indices):
            target_classes[b, src.to(class_logits.device)] = targets[b]["labels"].to(class_logits.device)[tgt]
        return F.cross_entropy(class_logits.float().transpose(1, 2), target_classes,
                               self.empty_weight.to(class_logits.device))

    def loss_masks(self, mask_logits: Tensor, targets: List[Target], indices: List[Tuple[Tensor, Tensor]],
                   num_masks: float, generator: Optional[torch.Generator] = None) -> Tuple[Tensor, Tensor]:
        """BCE and dice of matched masks at importance-sampled points; targets are sampled at the same points."""
        device = mask_logits.device
        preds = torch.cat([mask_logits[b, src.to(device)] for b, (src, _) in enumerate(indices)])
        if preds.shape[0] == 0:
            zero = mask_logits.sum() * 0.0
            return zero, zero
        # Target masks may differ in size between images only if the caller padded them differently; sample each.
        gts = [targets[b]["masks"].to(device=device, dtype=torch.float32)[tgt.to(device)]
               for b, (_, tgt) in enumerate(indices)]
        preds = preds.float()[:, None]
        with torch.no_grad():
            coords = uncertain_point_coords(preds, self.num_points, self.oversample_ratio,
                                            self.importance_sample_ratio, generator)
            labels, start = [], 0
            for gt in gts:
                count = gt.shape[0]
                if count:
                    labels.append(point_sample(gt[:, None], coords[start:start + count])[:, 0])
                start += count
            point_labels = torch.cat(labels)
        point_logits = point_sample(preds, coords)[:, 0]
        return sigmoid_bce_loss(point_logits, point_labels, num_masks), dice_loss(point_logits, point_labels,
                                                                                  num_masks)

    def forward(self, outputs: List[Tuple[Tensor, Tensor]], targets: List[Target],
                generator: Optional[torch.Generator] = None) -> LossDict:
        num_masks = max(float(sum(int(t["labels"].numel()) for t in targets)), 1.0)
        losses: LossDict = {}
        last = len(outputs) - 1
        for k, (mask_logits, class_logits) in enumerate(outputs):
            suffix = "" if k == last else f"_{k}"
            indices = self.matcher(class_logits, mask_logits, targets, generator)
            loss_mask, loss_dice = self.loss_masks(mask_logits, targets, indices, num_masks, generator)
            raw = {"loss_ce": self.loss_labels(class_logits, targets, indices), "loss_mask": loss_mask,
                   "loss_dice": loss_dice}
            losses.update({name + suffix: self.weights[name] * value for name, value in raw.items()})
        return losses
