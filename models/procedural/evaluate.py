"""mIoU of a SAN on procedural scenes, on seen and on held-out classes.

The definition is detectron2's SemSegEvaluator (and lib/metrics.ts): a confusion matrix over all labelled pixels,
per-class IoU = TP / (TP + FP + FN), averaged over the classes that occur in the labels or the predictions (a
class only predicted counts as IoU 0). Here the average is taken over two subsets of the world's classes: the seen
ones (seen pairs and background) and the held-out pairs.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from ..san.model import SAN, SanSegmenter
from ..san.text import TEMPLATE_SETS, class_embeddings
from ..san.tokenizer import SimpleTokenizer
from .data import ScenePool
from .world import IGNORE, World


def confusion(predictions: Tensor, labels: Tensor, num_classes: int, ignore: int = IGNORE) -> np.ndarray:
    """(num_classes, num_classes) pixel counts, rows predicted class, columns true class; ignored pixels left out."""
    keep = labels != ignore
    index = predictions[keep].long() * num_classes + labels[keep].long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes).double().numpy()


def class_iou(matrix: np.ndarray) -> List[Optional[float]]:
    """IoU in percent per class; None for a class neither labelled nor predicted."""
    tp = np.diag(matrix)
    predicted, labelled = matrix.sum(axis=1), matrix.sum(axis=0)
    union = predicted + labelled - tp
    return [None if union[c] == 0 else 100.0 * tp[c] / union[c] for c in range(matrix.shape[0])]


def mean_iou(ious: Sequence[Optional[float]], classes: Sequence[int]) -> float:
    values = [ious[c] for c in classes if ious[c] is not None]
    return float(np.mean(values)) if values else float("nan")


@torch.no_grad()
def segment_pool(san: SAN, pool: ScenePool, text_embeds: Tensor, batch: int = 32,
                 device: torch.device = torch.device("cpu")) -> Tensor:
    """Label maps (N, H, W) of every scene of `pool`, indices into the rows of text_embeds."""
    segmenter = SanSegmenter(san).eval()
    size = pool.images.shape[-2:]
    out = []
    for start in range(0, len(pool), batch):
        images = pool.images[start:start + batch].to(device)
        mask_logits, mask_embeds = segmenter(images)
        class_logits = segmenter.classify(mask_embeds, text_embeds.to(device))
        _, labels = segmenter.postprocess(class_logits, mask_logits, size[0], size[1], size[0], size[1])
        out.append(labels.cpu())
    return torch.cat(out)


def evaluate(san: SAN, world: World, pool: ScenePool, tokenizer: SimpleTokenizer,
             device: torch.device = torch.device("cpu")) -> Dict[str, object]:
    """Segments `pool` (whose labels are global class ids) with every class name of the world as the vocabulary.

    Returns mIoU over seen classes, over held-out classes and over all, pixel accuracy, and IoU per class name.
    """
    san.eval()
    templates = TEMPLATE_SETS[san.cfg.template_set]
    text = class_embeddings(lambda ids: san.ov_classifier(ids.to(device)), tokenizer, world.class_names, templates,
                            san.cfg.text.context_length)
    predictions = segment_pool(san, pool, text, device=device)
    matrix = confusion(predictions, pool.labels, len(world.class_names))
    ious = class_iou(matrix)
    return {
        "miou_seen": mean_iou(ious, world.seen_ids),
        "miou_held_out": mean_iou(ious, world.held_out_ids),
        "miou_all": mean_iou(ious, range(len(world.class_names))),
        "pixel_accuracy": float(100.0 * np.trace(matrix) / matrix.sum()),
        "scenes": len(pool),
        "iou": {name: (None if iou is None else round(iou, 2)) for name, iou in zip(world.class_names, ious)},
    }
