"""The set criterion: each loss against values computed by hand, point sampling, deep-supervision naming."""
import math

import pytest
import torch

from models.train.criterion import SetCriterion, dice_loss, sigmoid_bce_loss, uncertain_point_coords
from models.train.matcher import HungarianMatcher, point_sample


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def log_softmax(logits, k):
    return logits[k] - math.log(sum(math.exp(v) for v in logits))


def criterion(num_classes: int = 2, num_points: int = 64) -> SetCriterion:
    return SetCriterion(num_classes, HungarianMatcher(num_points=num_points), num_points=num_points)


def test_recipe_defaults():
    c = SetCriterion(171, HungarianMatcher())
    assert c.weights == {"loss_ce": 2.0, "loss_mask": 5.0, "loss_dice": 5.0}
    assert c.empty_weight.tolist() == [1.0] * 171 + [pytest.approx(0.1)]
    assert (c.num_points, c.oversample_ratio, c.importance_sample_ratio) == (12544, 3.0, 0.75)
    m = c.matcher
    assert (m.cost_class, m.cost_mask, m.cost_dice, m.num_points) == (2.0, 5.0, 5.0, 12544)


def test_cross_entropy_weights_the_background_by_0_1():
    # Query 0 matched to class 1; query 1 unmatched, so its target is the background (index 2).
    logits = [[0.5, 1.5, -1.0], [2.0, 0.0, 1.0]]
    targets = [{"labels": torch.tensor([1]), "masks": torch.ones(1, 4, 4, dtype=torch.bool)}]
    indices = [(torch.tensor([0]), torch.tensor([0]))]
    loss = criterion().loss_labels(torch.tensor([logits]), targets, indices)
    expected = -(1.0 * log_softmax(logits[0], 1) + 0.1 * log_softmax(logits[1], 2)) / (1.0 + 0.1)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_bce_and_dice_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.0], [0.5, 0.5, -3.0]])
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    bce = [sum(-(t * math.log(sigmoid(x)) + (1 - t) * math.log(1 - sigmoid(x))) for x, t in zip(row, lab)) / 3
           for row, lab in zip(logits.tolist(), labels.tolist())]
    dice = []
    for row, lab in zip(logits.tolist(), labels.tolist()):
        p = [sigmoid(x) for x in row]
        dice.append(1 - (2 * sum(a * b for a, b in zip(p, lab)) + 1) / (sum(p) + sum(lab) + 1))
    # Summed over masks, divided by the number of target masks in the batch (here 4).
    assert float(sigmoid_bce_loss(logits, labels, 4.0)) == pytest.approx(sum(bce) / 4, rel=1e-6)
    assert float(dice_loss(logits, labels, 4.0)) == pytest.approx(sum(dice) / 4, rel=1e-6)


def test_importance_sampling_keeps_the_most_uncertain_candidates():
    # One mask whose logit grows left to right: the uncertain points (|logit| small) lie near the middle column.
    logits = torch.linspace(-8, 8, 16).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous()
    coords = uncertain_point_coords(logits, num_points=40, oversample_ratio=3, importance_sample_ratio=0.75,
                                    generator=torch.Generator().manual_seed(3))
    assert coords.shape == (1, 40, 2) and coords.min() >= 0 and coords.max() <= 1
    candidates = torch.rand(1, 120, 2, generator=torch.Generator().manual_seed(3))
    certainty = point_sample(logits, candidates)[0, 0].abs()
    kept = point_sample(logits, coords[:, :30])[0, 0].abs()
    # The first 30 = int(0.75 · 40) are the 30 least certain of the 120 = 40 · 3 candidates; 10 random ones follow.
    assert torch.allclose(kept.sort().values, certainty.sort().values[:30])


def test_whole_criterion_by_hand_with_deep_supervision():
    # Mask logits 0 everywhere: every point's BCE is log 2 whatever the target, and with an all-background target
    # mask dice is 1 − 1 / (P / 2 + 1). The class logits decide the match: query 1 is class 0.
    points = 64
    target = {"labels": torch.tensor([0]), "masks": torch.zeros(1, 32, 32, dtype=torch.bool)}
    block7 = [[0.0, 0.0, 3.0], [1.0, 0.0, 0.0]]
    block8 = [[0.0, 1.0, 4.0], [5.0, 0.0, 1.0]]
    outputs = [(torch.zeros(1, 2, 2, 2), torch.tensor([block])) for block in (block7, block8)]
    losses = criterion(num_classes=2, num_points=points)(outputs, [target], torch.Generator().manual_seed(0))
    assert sorted(losses) == sorted(["loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0", "loss_dice_0"])
    for suffix, logits in (("_0", block7), ("", block8)):
        ce = -(log_softmax(logits[1], 0) + 0.1 * log_softmax(logits[0], 2)) / 1.1
        assert float(losses["loss_ce" + suffix]) == pytest.approx(2.0 * ce, rel=1e-5)
        assert float(losses["loss_mask" + suffix]) == pytest.approx(5.0 * math.log(2), rel=1e-5)
        assert float(losses["loss_dice" + suffix]) == pytest.approx(5.0 * (1 - 1 / (points / 2 + 1)), rel=1e-5)


def test_masks_are_normalised_by_the_targets_of_the_whole_batch():
    # Two images with 1 and 2 targets: 3 masks in all, each BCE log 2 → loss_mask = 5 · 3 · log 2 / 3.
    targets = [{"labels": torch.tensor([1]), "masks": torch.ones(1, 32, 32, dtype=torch.bool)},
               {"labels": torch.tensor([0, 1]), "masks": torch.ones(2, 32, 32, dtype=torch.bool)}]
    outputs = [(torch.zeros(2, 3, 2, 2), torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0)))]
    losses = criterion()(outputs, targets)
    assert float(losses["loss_mask"]) == pytest.approx(5.0 * math.log(2), rel=1e-5)


def test_no_targets_gives_zero_mask_losses_that_still_backpropagate():
    masks = torch.zeros(1, 3, 2, 2, requires_grad=True)
    classes = torch.zeros(1, 3, 3, requires_grad=True)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 8, 8, dtype=torch.bool)}
    losses = criterion()([(masks, classes)], [empty])
    assert float(losses["loss_mask"]) == 0 and float(losses["loss_dice"]) == 0
    # Every query is background: the cross-entropy of uniform logits is log 3.
    assert float(losses["loss_ce"]) == pytest.approx(2 * math.log(3), rel=1e-6)
    sum(losses.values()).backward()
    assert masks.grad is not None and classes.grad is not None
