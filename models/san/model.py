"""SAN: CLIP, the side adapter network and the open-vocabulary classifier wired together.

`SAN` holds the parts under the official checkpoint's names. `SanSegmenter` is its image side (everything but the
text tower), the module exported to TorchScript: uint8 images in, mask logits and mask embeddings out, plus the
classification and post-processing as methods so that a runtime can keep the whole pipeline on its device.
"""
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .clip_visual import FeatureExtractor, RecWithAttnbiasHead
from .config import SanCfg
from .postprocess import band_labels
from .side_adapter import SideAdapterNetwork
from .text import LearnableBgOvClassifier


class SAN(nn.Module):
    def __init__(self, cfg: SanCfg):
        super().__init__()
        clip, side = cfg.clip_visual, cfg.side_adapter
        fused_clip_layers = [clip_layer for clip_layer, _ in side.fusion_map]
        # The recognition head starts from the extractor's last layer, fused or not.
        output_layers = sorted(set(fused_clip_layers) | {clip.feature_last_layer})
        self.side_adapter_network = SideAdapterNetwork(side, clip.width, clip.heads, cfg.decoder)
        self.clip_visual_extractor = FeatureExtractor(clip, output_layers)
        self.clip_rec_head = RecWithAttnbiasHead(clip, side.num_queries)
        self.ov_classifier = LearnableBgOvClassifier(cfg.text)
        self.cfg = cfg

    def forward(self, images: Tensor, text_embeds: Tensor) -> Tuple[Tensor, Tensor]:
        """uint8 (N, 3, H, W) and unit class embeddings (C, D) → mask logits (N, Q, H', W'), class logits (N, Q, C+1)."""
        segmenter = SanSegmenter(self)
        mask_logits, mask_embeds = segmenter(images)
        return mask_logits, segmenter.classify(mask_embeds, text_embeds)

    def forward_train(self, images: Tensor, text_embeds: Tensor, side_layers: List[int]) -> List[Tuple[Tensor, Tensor]]:
        """The training path: (mask logits, class logits) decoded after each side block in `side_layers` (1-based).

        The reference trains on blocks 7 and 8 (deep supervision): each block's queries give masks and an attention
        bias, and each bias its own recognition pass through the CLIP head. The entry for the last block equals
        forward's output. Not exported; gradients reach the side network, the CLIP positional embedding and bg_embed
        through it.
        """
        segmenter = SanSegmenter(self)
        image = segmenter.preprocess(images, None)
        clip_features, clip_grid = segmenter.encode_clip(image)
        side = self.side_adapter_network
        outputs: List[Tuple[Tensor, Tensor]] = []
        for query, patches in side.forward_features(image, clip_features[:segmenter.num_fusion_layers], clip_grid,
                                                    side_layers):
            mask_logits, attn_bias = side.mask_decoder(query, patches)
            mask_embeds = self.clip_rec_head(clip_features[-1], attn_bias, clip_grid)
            outputs.append((mask_logits, segmenter.classify(mask_embeds, text_embeds)))
        return outputs


class SanSegmenter(nn.Module):
    """The image side of a SAN, sharing its modules and parameters; see docs/models.md for every method."""

    def __init__(self, san: SAN):
        super().__init__()
        cfg = san.cfg
        self.clip_visual_extractor = san.clip_visual_extractor
        self.side_adapter_network = san.side_adapter_network
        self.clip_rec_head = san.clip_rec_head
        self.bg_embed = san.ov_classifier.bg_embed
        self.logit_scale = san.ov_classifier.logit_scale
        # Plain floats, not buffers: a runtime that casts the module to half precision must not round them.
        self.pixel_mean: List[float] = cfg.pixel_mean_255
        self.pixel_std: List[float] = cfg.pixel_std_255
        self.size_divisibility = cfg.size_divisibility
        self.clip_resolution = cfg.clip_resolution
        self.mask_stride = cfg.side_adapter.patch_size
        # Fusion layers read the extractor's outputs in order; the recognition head reads the last one.
        self.num_fusion_layers = len(cfg.side_adapter.fusion_map)
        # On a GPU, without scores asked for, labels are reduced over classes in chunks of at most this many score
        # elements, so that a large vocabulary on a large image does not need all (C, H, W) scores at once.
        self.label_chunk_elements = 1 << 26
        # On a CPU, segment post-processes a band of output rows at a time (postprocess.band_labels), holding at most
        # about this many floats of masks, and as many of scores, at once: 16 MiB each.
        self.band_elements = 1 << 22

    def forward(self, images: Tensor) -> Tuple[Tensor, Tensor]:
        """uint8 RGB (N, 3, H, W) → mask logits (N, Q, Hp/16, Wp/16) and unit mask embeddings (N, Q, D).

        Hp, Wp are H, W rounded up to a multiple of size_divisibility (32).
        """
        return self.encode(self.preprocess(images, None))

    @torch.jit.export
    def forward_with_sizes(self, images: Tensor, image_sizes: Tensor) -> Tuple[Tensor, Tensor]:
        """Like forward for a batch of images of different sizes, each at the top left of the (N, 3, H, W) canvas.

        image_sizes is int64 (N, 2) of (height, width); pixels outside each image are ignored (zero after
        normalisation), so the result is the reference's for a batch padded to the largest image.
        """
        return self.encode(self.preprocess(images, image_sizes))

    def preprocess(self, images: Tensor, image_sizes: Optional[Tensor]) -> Tensor:
        """Normalise in float32, zero what lies outside image_sizes, pad to /32; float32 whatever the model's dtype."""
        if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError("images must be a uint8 tensor (N, 3, H, W), got shape " + str(images.shape))
        n, _, h, w = images.shape
        mean = torch.tensor(self.pixel_mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.pixel_std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
        x = (images.float() - mean) / std
        if image_sizes is not None:
            if image_sizes.dim() != 2 or image_sizes.shape[0] != n or image_sizes.shape[1] != 2:
                raise ValueError("image_sizes must be (N, 2), got " + str(image_sizes.shape))
            sizes = image_sizes.to(images.device)
            rows = torch.arange(h, device=images.device).view(1, h, 1) < sizes[:, 0].view(n, 1, 1)
            cols = torch.arange(w, device=images.device).view(1, 1, w) < sizes[:, 1].view(n, 1, 1)
            x = x.masked_fill((~(rows & cols)).unsqueeze(1), 0.0)
        pad_h = (self.size_divisibility - h % self.size_divisibility) % self.size_divisibility
        pad_w = (self.size_divisibility - w % self.size_divisibility) % self.size_divisibility
        return F.pad(x, [0, pad_w, 0, pad_h], value=0.0)

    def encode(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        """The network on a normalised, padded image: the side network sees it whole, CLIP scaled by clip_resolution."""
        clip_features, clip_grid = self.encode_clip(image)
        mask_logits, attn_bias = self.side_adapter_network(image, clip_features[:self.num_fusion_layers], clip_grid)
        mask_embeds = self.clip_rec_head(clip_features[-1], attn_bias, clip_grid)
        return mask_logits, mask_embeds

    def encode_clip(self, image: Tensor) -> Tuple[List[Tensor], Tuple[int, int]]:
        """CLIP's features of the padded image scaled by clip_resolution: the fused layers, then the last, and its grid."""
        clip_input = F.interpolate(image, scale_factor=self.clip_resolution, mode="bilinear", align_corners=False)
        return self.clip_visual_extractor(clip_input)

    @torch.jit.export
    def classify(self, mask_embeds: Tensor, text_embeds: Tensor) -> Tensor:
        """Mask embeddings (N, Q, D) against class embeddings (C, D) → logits (N, Q, C+1), background last.

        The background embedding is appended, every row L2-normalised and scaled by exp(logit_scale).
        """
        # In float32 whatever the model's dtype, as everything after it: the class scores are this product.
        classifier = F.normalize(torch.cat([text_embeds.float(), self.bg_embed.float()]), dim=-1)
        return torch.einsum("bqc,nc->bqn", mask_embeds.float(), classifier * self.logit_scale.float().exp())

    @torch.jit.export
    def resize_mask_logits(self, mask_logits: Tensor, image_h: int, image_w: int, out_h: int, out_w: int) -> Tensor:
        """(N, Q, h, w) → (N, Q, out_h, out_w): bilinear to the padded size, crop to image_h × image_w, bilinear to out.

        image_h, image_w: the size of the image given to forward; out_h, out_w: usually the original image's.
        """
        padded = [mask_logits.shape[2] * self.mask_stride, mask_logits.shape[3] * self.mask_stride]
        x = F.interpolate(mask_logits, size=padded, mode="bilinear", align_corners=False)
        x = x[:, :, :image_h, :image_w]
        return F.interpolate(x, size=[out_h, out_w], mode="bilinear", align_corners=False)

    @torch.jit.export
    def semantic_inference(self, class_logits: Tensor, mask_logits: Tensor) -> Tensor:
        """Σ_q softmax(class_logits)[q, c] · sigmoid(mask_logits)[q] with the background dropped → (N, C, H, W)."""
        probs = class_logits.softmax(dim=-1)[..., :-1]
        return torch.einsum("bqc,bqhw->bchw", probs, mask_logits.sigmoid())

    @torch.jit.export
    def postprocess(self, class_logits: Tensor, mask_logits: Tensor, image_h: int, image_w: int, out_h: int,
                    out_w: int) -> Tuple[Tensor, Tensor]:
        """resize_mask_logits then semantic_inference → scores (N, C, out_h, out_w) and int64 labels (N, out_h, out_w)."""
        scores = self.semantic_inference(class_logits, self.resize_mask_logits(mask_logits, image_h, image_w,
                                                                               out_h, out_w))
        return scores, scores.argmax(dim=1)

    @torch.jit.export
    def segment(self, images: Tensor, image_sizes: List[List[int]], output_sizes: List[List[int]], text_embeds: Tensor,
                with_scores: bool, with_proposals: bool) -> List[Dict[str, Tensor]]:
        """The whole image pipeline in one call, for a runtime that wants one round trip per batch.

        images: uint8 (N, H, W, 3), channels last as images are decoded, image i at the top left of the canvas;
        image_sizes and output_sizes: N lists [height, width] of each image's size and wanted output size, plain
        integers so that nothing reads device memory back before the outputs (no host sync on a GPU);
        text_embeds: unit class embeddings (C, D). Returns per image {"labels": int16 (out_h, out_w)}, plus "scores" (C, out_h,
        out_w) when with_scores, plus "mask_logits" (Q, Hp/16, Wp/16) and "class_probs" (Q, C+1, background
        last) when with_proposals. The labels are the argmax of the scores, asked for or not, and the scores are
        postprocess's for that image: on a GPU computed as it does; on a CPU a band of output rows at a time
        (postprocess.band_labels), within 1e-6 of the largest (its resizes bit for bit on x86-64, its class mixing
        summed band by band).
        """
        if text_embeds.dim() != 2 or text_embeds.shape[0] < 1 or text_embeds.shape[0] > 32767:
            raise ValueError("text_embeds must be (C, D) with 1 <= C <= 32767, got " + str(text_embeds.shape))
        if images.dim() != 4 or images.shape[3] != 3:
            raise ValueError("images must be (N, H, W, 3), got " + str(images.shape))
        if len(image_sizes) != images.shape[0] or len(output_sizes) != images.shape[0]:
            raise ValueError("image_sizes and output_sizes must have one [height, width] per image, got "
                             + str(len(image_sizes)) + " and " + str(len(output_sizes)) + " for " + str(images.shape[0]))
        for size in image_sizes + output_sizes:
            if len(size) != 2:
                raise ValueError("each size must be [height, width], got " + str(size))
        sizes_on_device = torch.tensor(image_sizes, dtype=torch.int64, device=images.device)  # a copy to the device
        mask_logits, mask_embeds = self.forward_with_sizes(images.permute(0, 3, 1, 2).contiguous(), sizes_on_device)
        # Post-processing in float32 whatever the model's dtype (a no-op for float32 models).
        mask_logits = mask_logits.float()
        class_logits = self.classify(mask_embeds, text_embeds)
        sizes, outputs = image_sizes, output_sizes
        results: List[Dict[str, Tensor]] = []
        for i in range(images.shape[0]):
            image_logits = class_logits[i:i + 1]
            result: Dict[str, Tensor] = {}
            if not images.is_cuda:
                # A band of rows at a time: memory bounded by band_elements, not by the output size.
                scores: Optional[Tensor] = None
                if with_scores:
                    scores = torch.empty(text_embeds.shape[0], outputs[i][0], outputs[i][1], device=images.device)
                    result["scores"] = scores
                result["labels"] = band_labels(image_logits, mask_logits[i:i + 1], self.mask_stride, sizes[i][0],
                                               sizes[i][1], outputs[i][0], outputs[i][1], self.band_elements, scores)
            else:
                # On a GPU whole, as the reference computes it: the memory is there, and one kernel per step is faster.
                masks = self.resize_mask_logits(mask_logits[i:i + 1], sizes[i][0], sizes[i][1], outputs[i][0],
                                                outputs[i][1])
                if with_scores:
                    whole_scores = self.semantic_inference(image_logits, masks)
                    result["scores"] = whole_scores[0]
                    labels = whole_scores.argmax(dim=1)
                else:
                    labels = self.semantic_labels(image_logits, masks)
                result["labels"] = labels[0].to(torch.int16)
            if with_proposals:
                result["mask_logits"] = mask_logits[i]
                result["class_probs"] = image_logits[0].softmax(dim=-1)
            results.append(result)
        return results

    def semantic_labels(self, class_logits: Tensor, mask_logits: Tensor) -> Tensor:
        """argmax over classes of semantic_inference, computed over chunks of classes (first maximum wins)."""
        num_classes = class_logits.shape[-1] - 1
        pixels = mask_logits.shape[0] * mask_logits.shape[2] * mask_logits.shape[3]
        chunk = max(1, self.label_chunk_elements // max(1, pixels))
        if chunk >= num_classes:
            return self.semantic_inference(class_logits, mask_logits).argmax(dim=1)
        probs = class_logits.softmax(dim=-1)[..., :-1]
        masks = mask_logits.sigmoid()
        best = torch.einsum("bqc,bqhw->bchw", probs[..., :chunk], masks).max(dim=1)
        best_scores, labels = best[0], best[1]
        for start in range(chunk, num_classes, chunk):
            scores, indices = torch.einsum("bqc,bqhw->bchw", probs[..., start:start + chunk], masks).max(dim=1)
            better = scores > best_scores
            best_scores = torch.where(better, scores, best_scores)
            labels = torch.where(better, indices + start, labels)
        return labels
