"""SAN's post-processing one band of output rows at a time: labels and scores without every proposal at full size.

The reference post-processing (SanSegmenter.resize_mask_logits, then semantic_inference, then argmax) upsamples
each proposal's mask logits to the padded image, crops it, resizes it to the output size and mixes the proposals by
class: Q float32 maps at the output size, about 800 bytes an output pixel for 100 proposals, most of it thrown away
when only labels are wanted. `band_labels` computes the same chain for a band of output rows at a time, so its
working memory is set by `band_elements`, not by the output size.

Both bilinear resizes are computed from their taps, the way ATen's CPU kernel computes them: the source position in
double from the float32 scale, the weights rounded to float32, each column pass by F.interpolate itself, and each
output row as the fused a·λ0 + (b·λ1) (addcmul). On the x86-64 CPUs measured this is F.interpolate bit for bit;
models/tests/test_postprocess.py holds it to 1e-6 everywhere.
"""
from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch.nn import functional as F


def linear_taps(in_size: int, out_size: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """Bilinear resampling of one axis (align_corners=False): per output index, its two source indices and weights."""
    if in_size == out_size:
        index = torch.arange(out_size)
        return index, index, torch.ones(out_size), torch.zeros(out_size)
    scale = (torch.tensor(float(in_size), dtype=torch.float32) / out_size).double()
    source = ((torch.arange(out_size, dtype=torch.float64) + 0.5) * scale - 0.5).clamp_min(0.0)
    index0 = source.long()
    index1 = (index0 + 1).clamp_max(in_size - 1)
    lambda1 = (source - index0.double()).float()
    return index0, index1, 1.0 - lambda1, lambda1


def resize_rows(x: Tensor, index0: Tensor, index1: Tensor, lambda0: Tensor, lambda1: Tensor, width: int,
                out: Optional[Tensor] = None) -> Tensor:
    """Some output rows of x (N, C, H, W) resized bilinearly to `width` columns, from their rows' taps.

    Only the source rows the taps name are read: the columns are resampled first, then each pair of rows mixed.
    Written into `out` (N, C, rows, w <= width), in any memory format, when given: its w leftmost columns, which
    crops without a copy.
    """
    rows, position = torch.unique(torch.cat([index0, index1]), sorted=True, return_inverse=True)
    band = x.index_select(2, rows.to(x.device))
    if band.shape[3] != width:
        band = F.interpolate(band, size=[band.shape[2], width], mode="bilinear", align_corners=False)
    count = index0.shape[0]
    if out is None:
        out = torch.empty(band.shape[0], band.shape[1], count, width, dtype=band.dtype, device=band.device)
    band = band[:, :, :, :out.shape[3]]
    if out.is_contiguous(memory_format=torch.channels_last):
        # The source rows in the output's layout too (a few rows: cheap), so every product below runs along memory.
        band = band.contiguous(memory_format=torch.channels_last)
    weight0 = lambda0.to(x.device).view(1, 1, -1, 1)
    weight1 = lambda1.to(x.device).view(1, 1, -1, 1)
    # Each output row's two source rows, as indices into band.
    source0, source1 = position[:count], position[count:]
    # Runs of output rows that read the same pair of source rows: runs of 16 when upsampling 16-fold.
    changes = (source0[1:] != source0[:-1]) | (source1[1:] != source1[:-1])
    starts: List[int] = (changes.nonzero().flatten() + 1).tolist()
    if 4 * len(starts) > count:
        # Short runs (downsampling): gather every output row's pair of source rows at once.
        torch.addcmul(band.index_select(2, source1.to(x.device)) * weight1, band.index_select(2, source0.to(x.device)),
                      weight0, out=out)
        return out
    # Long runs: each run mixes its two source rows by broadcasting, without gathering a copy of every row first.
    sources0: List[int] = source0.tolist()
    sources1: List[int] = source1.tolist()
    for start, end in zip([0] + starts, starts + [count]):
        row0, row1 = sources0[start], sources1[start]
        torch.addcmul(band[:, :, row1:row1 + 1] * weight1[:, :, start:end], band[:, :, row0:row0 + 1],
                      weight0[:, :, start:end], out=out[:, :, start:end])
    return out


def band_labels(class_logits: Tensor, mask_logits: Tensor, mask_stride: int, image_h: int, image_w: int, out_h: int,
                out_w: int, band_elements: int, scores: Optional[Tensor]) -> Tensor:
    """argmax over classes of semantic_inference(class_logits, resize_mask_logits(mask_logits, …)) → int16 (out_h, out_w).

    class_logits (1, Q, C+1) and mask_logits (1, Q, h, w) of one image. Each band of output rows holds its Q masks
    and a chunk of classes' scores at once, each at most `band_elements` floats (one row at the least). When
    `scores` (C, out_h, out_w) is given, every class's scores are written into it; the labels are the argmax of what
    is written there (the first maximum, as argmax), whether it is given or not.
    """
    queries = mask_logits.shape[1]
    num_classes = class_logits.shape[-1] - 1
    padded_h, padded_w = mask_logits.shape[2] * mask_stride, mask_logits.shape[3] * mask_stride
    probs = class_logits.softmax(dim=-1)[0, :, :-1]
    upsample = linear_taps(mask_logits.shape[2], padded_h)
    resize = linear_taps(image_h, out_h)
    same_size = image_h == out_h and image_w == out_w
    # Bands low enough for one chunk of all classes, up to 1024 of them: one product a band is faster than several.
    rows_per_band = max(1, band_elements // (max(queries, min(num_classes, 1024)) * max(out_w, padded_w)))
    classes_per_chunk = max(1, min(num_classes, band_elements // (rows_per_band * out_w)))
    labels = torch.empty(out_h, out_w, dtype=torch.int16, device=mask_logits.device)
    # Each chunk's class probabilities as the (classes, Q, 1, 1) weight of a 1×1 convolution.
    weights = [probs[:, start:start + classes_per_chunk].t().contiguous()[:, :, None, None]
               for start in range(0, num_classes, classes_per_chunk)]
    for top in range(0, out_h, rows_per_band):
        bottom = min(out_h, top + rows_per_band)
        if same_size:
            needed = torch.arange(top, bottom)
        else:
            needed = torch.unique(torch.cat([resize[0][top:bottom], resize[1][top:bottom]]), sorted=True)
        # The masks of these output rows, written channels last, so that oneDNN's convolution below reads and writes
        # them without reordering, and the maximum over classes runs along memory.
        masks = torch.empty(1, queries, bottom - top, out_w, dtype=mask_logits.dtype, device=mask_logits.device,
                            memory_format=torch.channels_last)
        # The padded-size rows these output rows read, cropped to the image: straight into masks at the same size.
        cropped = masks if same_size else torch.empty(1, queries, needed.shape[0], image_w, dtype=mask_logits.dtype,
                                                      device=mask_logits.device)
        resize_rows(mask_logits, upsample[0][needed], upsample[1][needed], upsample[2][needed], upsample[3][needed],
                    padded_w, cropped)
        if not same_size:
            position = torch.searchsorted(needed, torch.cat([resize[0][top:bottom], resize[1][top:bottom]]))
            count = bottom - top
            resize_rows(cropped, position[:count], position[count:], resize[2][top:bottom], resize[3][top:bottom],
                        out_w, masks)
        masks.sigmoid_()
        best = torch.empty(0)
        band = torch.empty(0, dtype=torch.long)
        for start, weight in zip(range(0, num_classes, classes_per_chunk), weights):
            # Σ_q probs[q, c] · masks[q] as a 1×1 convolution: with more than one intra-op thread ATen runs it
            # through oneDNN on every thread, where a matrix product is one OpenBLAS thread (OPENBLAS_NUM_THREADS=1).
            chunk = F.conv2d(masks, weight)[0]
            if scores is not None:
                scores[start:start + chunk.shape[0], top:bottom].copy_(chunk)
            chunk_best, chunk_labels = chunk.max(dim=0)
            if start == 0:
                best, band = chunk_best, chunk_labels
            else:
                better = chunk_best > best
                best = torch.where(better, chunk_best, best)
                band = torch.where(better, chunk_labels + start, band)
        labels[top:bottom].copy_(band)
    return labels
