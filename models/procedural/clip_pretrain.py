"""Pre-training of a small CLIP on the regions of procedural scenes: captions contrastively, patch labels densely.

The CLIP is SAN's own and is trained the way SAN uses it: a [SOS] token of the recognition head attends, through
an attention bias, to the CLIP patches of one region of the scene, so that a region embedding is the feature that
SAN's side network later learns to ask for. The regions come from the label maps.

Captions are a random prompt template around a description of a region: its colour and shape ("red circle"),
its colour alone ("red object"), its shape alone ("circle"), or "background". Each step encodes every description
the world's pairs can show, so the loss is CLIP's in both directions with several positives: each region against
the full-pair, colour-only and shape-only captions (one softmax per kind), and each caption against the regions
of the batch that it describes. Beside it, a linear head on the extractor's patch tokens learns each patch's
class (patch_label_loss), which is what makes a ViT this small learn shapes within minutes.

The world passed in decides which pairs CLIP sees: the build gives it the whole world, as CLIP's own
pre-training covers the classes SAN is tested on, or the world with its held-out pairs (then no scene shows one
and no caption names one).
"""
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..make_tiny import learn_merges, write_vocab
from ..san.model import SAN, SanSegmenter
from ..san.text import VILD_TEMPLATES, class_embeddings
from ..san.tokenizer import SimpleTokenizer, tokenize
from .data import ScenePool, cell_shares, class_regions, coverage
from .world import BACKGROUND, World, describe

VOCAB_MERGES = 96  # the world's words and the templates allow 102; vocabulary = 512 + merges + 2 = 610 tokens
Description = Tuple[Optional[str], Optional[str]]  # (colour, shape); None for an attribute left unnamed


@dataclass
class ClipPretrainCfg:
    steps: int = 2000  # optimiser steps
    batch_scenes: int = 32  # scenes per step; each gives one region per class present (2–5)
    lr: float = 1e-3  # peak AdamW learning rate, after a linear warm-up, then cosine decay to 0
    warmup: int = 100  # warm-up steps
    weight_decay: float = 0.05
    min_cover: float = 0.3  # a CLIP patch belongs to a region when the region covers this share of it (or is the
    # region's best-covered patch)
    partial_weight: float = 0.5  # weight of the colour-only and shape-only softmaxes beside the full-pair one
    patch_weight: float = 1.0  # weight of the patch-label loss (see patch_label_loss); 0 turns it off


def build_vocab(world: World, path: Path) -> Path:
    """The world's own BPE vocabulary, learned from its single words and the prompt templates (no class names).

    The world's words are counted 20 times, so that each becomes one token before the merges run out: a class
    name is then a pair of tokens, the same two whether or not that pair was seen in training."""
    write_vocab(learn_merges(list(VILD_TEMPLATES) + 20 * world.words(), VOCAB_MERGES), path)
    return path


def descriptions(world: World) -> Dict[str, List[Description]]:
    """What captions may describe, by kind: seen colour–shape pairs, colours, shapes; background in each kind."""
    background: Description = (None, None)
    return {"pair": list(world.seen_pairs) + [background],
            "colour": [(c, None) for c in world.colours] + [background],
            "shape": [(None, s) for s in world.shapes] + [background]}


def describes(world: World, description: Description, class_id: int) -> bool:
    if class_id == world.background_id:
        return description == (None, None)
    if description == (None, None):
        return False
    colour, shape = world.pairs[class_id]
    return description[0] in (None, colour) and description[1] in (None, shape)


def region_slots(labels: Tensor, grid: Tuple[int, int], num_slots: int,
                 min_cover: float) -> Tuple[Tensor, Tensor]:
    """For each image, its classes' regions on the CLIP grid, padded to num_slots.

    Returns class ids (N, num_slots), -1 for empty slots, and allowed patches (N, num_slots, gh, gw) bool.
    """
    n = labels.shape[0]
    ids = torch.full((n, num_slots), -1, dtype=torch.long)
    allowed = torch.zeros((n, num_slots) + tuple(grid), dtype=torch.bool)
    for i, (classes, masks) in enumerate(class_regions(labels)):
        cover = coverage(masks, grid)
        best = cover.flatten(1).max(dim=1).values.view(-1, 1, 1)
        k = min(len(classes), num_slots)
        ids[i, :k] = classes[:k]
        allowed[i, :k] = ((cover >= min_cover) | (cover >= best))[:k]
    return ids, allowed


def clip_grid(san: SAN, image_size: int) -> Tuple[int, int]:
    side = int(math.floor(image_size * san.cfg.clip_resolution)) // san.cfg.clip_visual.patch_size
    return side, side


def clip_tokens(san: SAN, images: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
    """The feature extractor's last-layer tokens (N, 1 + h·w, C) for uint8 images, and the CLIP grid (h, w)."""
    segmenter = SanSegmenter(san)
    features, grid = segmenter.encode_clip(segmenter.preprocess(images, None))
    return features[-1], grid


def region_embeddings(san: SAN, tokens: Tensor, grid: Tuple[int, int], allowed: Tensor) -> Tensor:
    """Unit region embeddings (N, Q, D): the recognition head's [SOS] token q may look only at allowed[:, q]."""
    if tuple(allowed.shape[2:]) != tuple(grid):
        raise ValueError(f"region grid {tuple(allowed.shape[2:])} differs from the CLIP grid {grid}")
    bias = torch.zeros(allowed.shape, dtype=tokens.dtype, device=allowed.device).masked_fill(~allowed, -100.0)
    bias = bias.unsqueeze(1).expand(-1, san.cfg.clip_visual.heads, -1, -1, -1)
    return san.clip_rec_head(tokens, bias, grid)


def encode_regions(san: SAN, images: Tensor, allowed: Tensor) -> Tensor:
    tokens, grid = clip_tokens(san, images)
    return region_embeddings(san, tokens, grid, allowed)


def patch_label_loss(head: torch.nn.Module, tokens: Tensor, labels: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Cross-entropy of a linear head on every patch token against the class shares of its patch.

    Dense labels for pre-training only ("token labelling"): each patch token must tell which object it belongs
    to, which teaches the extractor to group patches into shapes many times faster than one caption per region
    does. The head is thrown away afterwards; nothing of it is exported."""
    logits = head(tokens[:, 1:])
    targets = cell_shares(labels, grid, logits.shape[-1])
    return -(targets * logits.log_softmax(dim=-1)).sum(dim=-1).mean()


def encode_captions(san: SAN, tokenizer: SimpleTokenizer, captions: Sequence[str], device: torch.device) -> Tensor:
    ids = tokenize(tokenizer, captions, san.cfg.text.context_length)
    length = int((ids != 0).sum(dim=1).max())
    return san.ov_classifier(ids[:, :length].to(device))  # causal attention: trailing padding can be cut


def clip_parameters(san: SAN) -> List[Tensor]:
    params = list(san.clip_visual_extractor.parameters()) + list(san.clip_rec_head.parameters())
    return params + [p for name, p in san.ov_classifier.named_parameters() if name != "bg_embed"]


def lr_at(step: int, steps: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))


def multi_positive_ce(logits: Tensor, positives: Tensor) -> Tensor:
    """Cross-entropy of each row against the uniform distribution over its positives; rows without any are skipped."""
    keep = positives.any(dim=1)
    targets = positives[keep].float()
    targets = targets / targets.sum(dim=1, keepdim=True)
    return -(targets * logits[keep].log_softmax(dim=1)).sum(dim=1).mean()


def augment(images: Tensor, labels: Tensor, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """A random quarter turn and horizontal flip of the whole batch: shapes and colours keep their names."""
    turns = int(torch.randint(0, 4, (), generator=generator))
    images, labels = images.rot90(turns, (2, 3)), labels.rot90(turns, (1, 2))
    if bool(torch.randint(0, 2, (), generator=generator)):
        images, labels = images.flip(3), labels.flip(2)
    return images.contiguous(), labels.contiguous()


def pretrain_clip(san: SAN, world: World, pool: ScenePool, tokenizer: SimpleTokenizer, seed: int,
                  cfg: ClipPretrainCfg, device: torch.device = torch.device("cpu"),
                  log: Callable[[str], None] = print) -> Dict[str, float]:
    """Trains the CLIP towers of `san` in place on the scenes of `pool`; returns timing and the last loss."""
    generator = torch.Generator().manual_seed(seed)
    san.to(device)
    grid = clip_grid(san, pool.images.shape[-1])
    num_slots = san.cfg.side_adapter.num_queries
    kinds = descriptions(world)
    all_descriptions = [d for kind in kinds.values() for d in kind]
    spans, start = [], 0
    for kind in kinds.values():
        spans.append((start, start + len(kind)))
        start += len(kind)
    width = san.cfg.clip_visual.width
    patch_head = torch.nn.Sequential(torch.nn.LayerNorm(width), torch.nn.Linear(width, len(world.class_names)))
    patch_head.to(device)
    params = clip_parameters(san) + list(patch_head.parameters())
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    san.train()
    started, losses = time.monotonic(), []
    for step in range(cfg.steps):
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step, cfg.steps, cfg.lr, cfg.warmup)
        chosen = torch.randint(0, len(pool), (cfg.batch_scenes,), generator=generator)
        images, labels = augment(pool.images[chosen], pool.labels[chosen], generator)
        slot_ids, allowed = region_slots(labels, grid, num_slots, cfg.min_cover)
        used = slot_ids >= 0
        class_ids = slot_ids[used].tolist()
        templates = torch.randint(0, len(VILD_TEMPLATES), (len(all_descriptions),), generator=generator).tolist()
        captions = [VILD_TEMPLATES[t].format(describe(*d)) for t, d in zip(templates, all_descriptions)]

        tokens, _ = clip_tokens(san, images.to(device))
        regions = region_embeddings(san, tokens, grid, allowed.to(device))[used.to(device)]
        texts = encode_captions(san, tokenizer, captions, device)
        scale = san.ov_classifier.logit_scale.clamp(max=math.log(100.0)).exp()
        logits = scale * regions @ texts.t()
        positives = torch.tensor([[describes(world, d, c) for d in all_descriptions] for c in class_ids],
                                 device=device)
        image_to_text = sum((1.0 if k == 0 else cfg.partial_weight) * multi_positive_ce(logits[:, a:b],
                                                                                        positives[:, a:b])
                            for k, (a, b) in enumerate(spans)) / (1 + 2 * cfg.partial_weight)
        text_to_image = multi_positive_ce(logits.t(), positives.t())
        loss = 0.5 * (image_to_text + text_to_image)
        if cfg.patch_weight:
            loss = loss + cfg.patch_weight * patch_label_loss(patch_head, tokens, labels.to(device), grid)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        losses.append(loss.item())
        if step % 50 == 0 or step == cfg.steps - 1:
            log(f"clip step {step + 1:5d}/{cfg.steps} loss {np.mean(losses[-50:]):.4f} "
                f"scale {scale.item():.1f} {time.monotonic() - started:.0f}s")
    san.eval()
    return {"seconds": time.monotonic() - started, "final_loss": float(np.mean(losses[-50:]))}


@torch.no_grad()
def region_accuracy(san: SAN, world: World, pool: ScenePool, tokenizer: SimpleTokenizer,
                    device: torch.device = torch.device("cpu"), min_cover: float = 0.3) -> Dict[str, float]:
    """Zero-shot classification of the ground-truth regions of `pool` among all class names (template ensemble):
    accuracy on seen pairs, held-out pairs and background, and how often an object's predicted pair has the right
    colour and the right shape. CLIP's quality before SAN is trained."""
    san.eval()
    text = class_embeddings(lambda ids: san.ov_classifier(ids.to(device)), tokenizer, world.class_names,
                            VILD_TEMPLATES, san.cfg.text.context_length)
    grid = clip_grid(san, pool.images.shape[-1])
    hits: Dict[str, List[bool]] = {"seen": [], "held_out": [], BACKGROUND: [], "colour": [], "shape": []}
    held_out = set(world.held_out_ids)
    for start in range(0, len(pool), 64):
        images, labels = pool.images[start:start + 64], pool.labels[start:start + 64]
        slot_ids, allowed = region_slots(labels, grid, san.cfg.side_adapter.num_queries, min_cover)
        regions = encode_regions(san, images.to(device), allowed.to(device))
        predicted = (regions @ text.t()).argmax(dim=-1).cpu()
        for truth, guess in zip(slot_ids[slot_ids >= 0].tolist(), predicted[slot_ids >= 0].tolist()):
            kind = BACKGROUND if truth == world.background_id else ("held_out" if truth in held_out else "seen")
            hits[kind].append(truth == guess)
            if kind != BACKGROUND and guess != world.background_id:  # which half of a wrong pair name was wrong
                hits["colour"].append(world.pairs[truth][0] == world.pairs[guess][0])
                hits["shape"].append(world.pairs[truth][1] == world.pairs[guess][1])
    return {kind: float(np.mean(v)) if v else float("nan") for kind, v in hits.items()}
