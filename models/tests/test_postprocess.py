"""Banded post-processing (models/san/postprocess.py) gives the reference chain's resizes, scores and labels."""
import platform
import random

import pytest
import torch
from torch.nn import functional as F

from models.san.postprocess import band_labels, linear_taps, resize_rows

# ATen's CPU kernel arithmetic, reproduced: bit for bit on x86-64 (checked there), within rounding elsewhere.
EXACT = platform.machine() in ("x86_64", "AMD64")


def assert_same(ours: torch.Tensor, reference: torch.Tensor) -> None:
    if EXACT:
        assert torch.equal(ours, reference), f"differ by up to {(ours - reference).abs().max().item():.3g}"
    else:
        assert (ours - reference).abs().max() <= 1e-6 * reference.abs().max()


def reference(class_logits, mask_logits, stride, image_h, image_w, out_h, out_w):
    """SanSegmenter.resize_mask_logits → semantic_inference → argmax, whole, as the official code computes them."""
    padded = [mask_logits.shape[2] * stride, mask_logits.shape[3] * stride]
    masks = F.interpolate(mask_logits, size=padded, mode="bilinear", align_corners=False)[:, :, :image_h, :image_w]
    masks = F.interpolate(masks, size=[out_h, out_w], mode="bilinear", align_corners=False)
    scores = torch.einsum("bqc,bqhw->bchw", class_logits.softmax(dim=-1)[..., :-1], masks.sigmoid())[0]
    return masks, scores, scores.argmax(dim=0)


def shapes(count: int, seed: int):
    """(queries, classes, grid h, grid w, image h, image w, out h, out w): the grid is the image's padded /16."""
    rng = random.Random(seed)
    for _ in range(count):
        h, w = rng.randint(1, 10), rng.randint(1, 10)
        image_h, image_w = rng.randint((h - 1) * 16 + 1, h * 16), rng.randint((w - 1) * 16 + 1, w * 16)
        out = [(image_h, image_w), (rng.randint(1, 400), rng.randint(1, 400)), (2 * image_h, image_w // 2 + 1)]
        yield (rng.randint(1, 24), rng.randint(1, 40), h, w, image_h, image_w, *out[rng.randint(0, 2)])


@pytest.mark.parametrize("in_size,out_size", [(40, 640), (640, 1000), (640, 97), (33, 7), (5, 5), (1, 9), (9, 1)])
def test_resize_rows_is_bilinear_interpolate(in_size, out_size):
    x = torch.randn(1, 6, in_size, 13, generator=torch.Generator().manual_seed(in_size * out_size))
    expected = F.interpolate(x, size=[out_size, 29], mode="bilinear", align_corners=False)
    taps = linear_taps(in_size, out_size)
    assert_same(resize_rows(x, *taps, 29), expected)
    # Any subset of the output rows, from only the source rows they read.
    rows = torch.tensor(sorted(random.Random(out_size).sample(range(out_size), (out_size + 1) // 2)))
    assert_same(resize_rows(x, *(tap[rows] for tap in taps), 29), expected[:, :, rows])

    # Into a given output, channels last or not, narrower than the resampled width (the crop to the image).
    for memory_format in (torch.contiguous_format, torch.channels_last):
        out = torch.full((1, 6, out_size, 17), float("nan")).contiguous(memory_format=memory_format)
        assert resize_rows(x, *taps, 29, out) is out
        assert_same(out, expected[:, :, :, :17])


@torch.no_grad()
def test_band_labels_is_the_reference_chain():
    scripted = torch.jit.script(band_labels)
    generator = torch.Generator().manual_seed(0)
    for queries, classes, h, w, image_h, image_w, out_h, out_w in shapes(12, seed=1):
        class_logits = torch.randn(1, queries, classes + 1, generator=generator) * 3
        mask_logits = torch.randn(1, queries, h, w, generator=generator) * 4
        _, expected_scores, expected_labels = reference(class_logits, mask_logits, 16, image_h, image_w, out_h, out_w)
        # From one row and one class at a time to the whole map in one band.
        for band_elements in (1, queries * 16 * w * 3, 1 << 22):
            scores = torch.full((classes, out_h, out_w), float("nan"))
            labels = scripted(class_logits, mask_logits, 16, image_h, image_w, out_h, out_w, band_elements, scores)
            labels_only = scripted(class_logits, mask_logits, 16, image_h, image_w, out_h, out_w, band_elements, None)
            assert labels.dtype == torch.int16 and labels.shape == (out_h, out_w)
            # The labels are the argmax of the scores written, asked for or not (the first maximum, as argmax).
            assert torch.equal(labels, labels_only) and torch.equal(labels.long(), scores.argmax(dim=0))
            # The scores are the reference's up to the order of the class mixing's sums (each band is its own
            # matrix product); the resizes before it are exact (test above).
            assert (scores - expected_scores).abs().max() <= 1e-6 * expected_scores.abs().max()
            top2 = expected_scores.topk(min(2, classes), dim=0).values
            clear = (top2[0] - top2[-1] > 1e-5) if classes > 1 else torch.ones_like(labels, dtype=torch.bool)
            assert torch.equal(labels.long()[clear], expected_labels[clear])
