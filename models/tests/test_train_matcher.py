"""The Hungarian matcher: its cost terms by hand, and its assignment against brute force on small cases."""
import itertools
import math

import pytest
import torch

from models.train.matcher import HungarianMatcher, batch_dice, batch_sigmoid_bce, point_sample


def brute_force_min(cost: torch.Tensor) -> float:
    """The least total cost over every way of giving each of K targets its own query (K ≤ Q)."""
    queries, targets = cost.shape
    return min(sum(float(cost[q, t]) for t, q in enumerate(chosen))
               for chosen in itertools.permutations(range(queries), targets))


def random_case(seed: int, queries: int, targets: int, classes: int = 8, size: int = 8):
    generator = torch.Generator().manual_seed(seed)
    class_logits = 3 * torch.randn(1, queries, classes + 1, generator=generator)
    mask_logits = 4 * torch.randn(1, queries, size, size, generator=generator)
    labels = torch.randperm(classes, generator=generator)[:targets]
    masks = torch.rand(targets, 4 * size, 4 * size, generator=generator) > 0.5
    return class_logits, mask_logits, {"labels": labels, "masks": masks}


@pytest.mark.parametrize("seed,queries,targets", [(0, 3, 3), (1, 5, 2), (2, 6, 4), (3, 7, 5), (4, 4, 1), (5, 6, 6)])
def test_assignment_is_the_brute_force_optimum(seed, queries, targets):
    matcher = HungarianMatcher(num_points=200)
    class_logits, mask_logits, target = random_case(seed, queries, targets)
    # The same seed gives the matcher the same random points as the cost matrix computed here.
    cost = matcher.cost_matrix(class_logits[0], mask_logits[0], target, torch.Generator().manual_seed(7))
    (rows, cols), = matcher(class_logits, mask_logits, [target], torch.Generator().manual_seed(7))
    assert len(rows) == targets and sorted(cols.tolist()) == list(range(targets))
    assert rows.tolist() == sorted(set(rows.tolist()))  # queries increasing, each used once
    assert float(cost[rows, cols].sum()) == pytest.approx(brute_force_min(cost), abs=1e-4)


def test_more_targets_than_queries_matches_every_query():
    matcher = HungarianMatcher(num_points=100)
    class_logits, mask_logits, target = random_case(9, queries=3, targets=5)
    cost = matcher.cost_matrix(class_logits[0], mask_logits[0], target, torch.Generator().manual_seed(1))
    (rows, cols), = matcher(class_logits, mask_logits, [target], torch.Generator().manual_seed(1))
    assert rows.tolist() == [0, 1, 2] and len(set(cols.tolist())) == 3
    assert float(cost[rows, cols].sum()) == pytest.approx(brute_force_min(cost.t()), abs=1e-4)


def test_an_image_without_targets_matches_nothing():
    class_logits, mask_logits, _ = random_case(0, 4, 1)
    empty = {"labels": torch.zeros(0, dtype=torch.int64), "masks": torch.zeros(0, 32, 32, dtype=torch.bool)}
    (rows, cols), = HungarianMatcher()(class_logits, mask_logits, [empty])
    assert rows.numel() == 0 and cols.numel() == 0


def test_class_cost_is_minus_the_softmax_probability():
    matcher = HungarianMatcher(cost_class=2.0, cost_mask=0.0, cost_dice=0.0, num_points=10)
    # Query 0 is sure of class 1, query 1 of class 0; the last column is the background.
    class_logits = torch.log(torch.tensor([[[0.1, 0.7, 0.2], [0.6, 0.3, 0.1]]]))
    target = {"labels": torch.tensor([0, 1]), "masks": torch.ones(2, 4, 4, dtype=torch.bool)}
    cost = matcher.cost_matrix(class_logits[0], torch.zeros(2, 4, 4), target)
    assert torch.allclose(cost, torch.tensor([[-0.2, -1.4], [-1.2, -0.6]]))
    (rows, cols), = matcher(class_logits, torch.zeros(1, 2, 4, 4), [target])
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]


def test_mask_costs_by_hand():
    # Two predictions and two targets on three points: BCE and dice of every pair.
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 1.0, 1.0]])
    targets = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    bce = lambda x, t: -(t * math.log(sig(x)) + (1 - t) * math.log(1 - sig(x)))  # noqa: E731
    for i in range(2):
        for j in range(2):
            expected_bce = sum(bce(float(logits[i, k]), float(targets[j, k])) for k in range(3)) / 3
            p = [sig(float(x)) for x in logits[i]]
            t = targets[j].tolist()
            expected_dice = 1 - (2 * sum(a * b for a, b in zip(p, t)) + 1) / (sum(p) + sum(t) + 1)
            assert float(batch_sigmoid_bce(logits, targets)[i, j]) == pytest.approx(expected_bce, rel=1e-5)
            assert float(batch_dice(logits, targets)[i, j]) == pytest.approx(expected_dice, rel=1e-5)


def test_point_sample_reads_normalised_xy_coordinates():
    # A 2×4 map: value = 10·row + column. Pixel centres sit at ((c + 0.5) / 4, (r + 0.5) / 2).
    grid = torch.tensor([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]])[None, None]
    points = torch.tensor([[[0.125, 0.25], [0.875, 0.75], [0.5, 0.5]]])
    assert point_sample(grid, points).tolist() == [[[0.0, 13.0, 6.5]]]


def test_all_zero_costs_are_refused():
    with pytest.raises(ValueError, match="non-zero"):
        HungarianMatcher(0, 0, 0)
