"""The inference steps behave as the reference describes (docs: ../shared/reference/san-architecture.md)."""
import pytest
import torch
from torch.nn import functional as F

from models.san import SAN, SanCfg, SanSegmenter, load_preset
from models.san.clip_visual import build_attn_mask
from models.san.layers import MultiheadSelfAttention

from .conftest import random_images


def test_attn_mask_layout():
    bias = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(1, 2, 3, 4)  # N=1, heads=2, Q=3, 4 patches
    mask = build_attn_mask(bias)
    assert mask.shape == (1, 2, 8, 8)
    for head in range(2):
        m = mask[0, head]
        expected_sos = torch.full((3, 3), -100.0).fill_diagonal_(0)
        assert torch.equal(m[:3, :3], expected_sos)  # an SOS token sees itself only
        assert torch.equal(m[:3, 3], torch.full((3,), -100.0))  # never the CLS token
        assert torch.equal(m[:3, 4:], bias[0, head])  # patches through the predicted bias
        assert torch.equal(m[3:, :3], torch.full((5, 3), -100.0))  # CLS and patches never see SOS tokens
        assert torch.equal(m[3:, 3:], torch.zeros(5, 5))  # and see each other as in plain CLIP


@torch.no_grad()
def test_sos_tokens_do_not_disturb_clip_and_each_other(tiny_san):
    segmenter = SanSegmenter(tiny_san)
    head = tiny_san.clip_rec_head
    image = segmenter.preprocess(random_images(1, 64, 96), None)
    clip_input = F.interpolate(image, scale_factor=0.5, mode="bilinear", align_corners=False)
    features, grid = tiny_san.clip_visual_extractor(clip_input)
    _, attn_bias = tiny_san.side_adapter_network(image, features[:segmenter.num_fusion_layers], grid)
    tokens = features[-1]

    # CLS and patch tokens come out as plain CLIP blocks make them.
    q = head.num_queries
    pooled = F.adaptive_max_pool2d(attn_bias.flatten(1, 2), list(grid)).reshape(1, 4, q, -1)
    x, plain = torch.cat([tokens[:, :1].expand(1, q, -1), tokens], dim=1), tokens
    for block in head.resblocks:
        x, plain = block(x, build_attn_mask(pooled)), block(plain)
    assert (x[:, q:] - plain).abs().max() < 1e-5

    # A query's embedding depends on its own bias only.
    embeds = head(tokens, attn_bias, grid)
    changed = attn_bias.clone()
    changed[:, :, 1] = torch.randn_like(changed[:, :, 1]) * 10
    other = head(tokens, changed, grid)
    assert (other[:, 1] - embeds[:, 1]).abs().max() > 1e-3
    keep = [i for i in range(q) if i != 1]
    assert (other[:, keep] - embeds[:, keep]).abs().max() < 1e-5
    assert torch.allclose(embeds.norm(dim=-1), torch.ones(1, q))


@torch.no_grad()
def test_preprocess_normalises_then_zero_pads_to_32(tiny_san):
    segmenter = SanSegmenter(tiny_san)
    images = random_images(2, 70, 97)
    x = segmenter.preprocess(images, None)
    assert x.shape == (2, 3, 96, 128) and x.dtype == torch.float32
    mean = torch.tensor([122.7709383, 116.7460125, 104.09373615]).view(1, 3, 1, 1)
    std = torch.tensor([68.5005327, 66.6321579, 70.32316305]).view(1, 3, 1, 1)
    assert torch.allclose(x[:, :, :70, :97], (images.float() - mean) / std, atol=1e-6)
    assert not x[:, :, 70:].any() and not x[:, :, :, 97:].any()


@torch.no_grad()
def test_forward_with_sizes_ignores_the_canvas_outside_each_image(tiny_san):
    segmenter = SanSegmenter(tiny_san)
    images = random_images(2, 72, 100, seed=1)
    full = torch.tensor([[72, 100], [72, 100]])
    for a, b in zip(segmenter.forward_with_sizes(images, full), segmenter(images)):
        assert torch.equal(a, b)

    sizes = torch.tensor([[72, 100], [40, 61]])
    other = images.clone()
    other[1, :, 40:] = 7
    other[1, :, :, 61:] = 200
    first = segmenter.forward_with_sizes(images, sizes)
    second = segmenter.forward_with_sizes(other, sizes)
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=r"image_sizes must be \(N, 2\)"):
        segmenter.forward_with_sizes(images, torch.tensor([72, 100]))
    with pytest.raises(ValueError, match=r"images must be a uint8 tensor \(N, 3, H, W\)"):
        segmenter(images.float())


@pytest.mark.parametrize("clip_resolution, patch_size, width, expected_grid", [
    (0.5, 16, 864, (20, 27)),  # ViT-B/16: 640 x 864 -> 320 x 432 -> 20 x 27
    (0.7, 14, 864, (32, 43)),  # ViT-L/14: 640 x 864 -> 448 x 604 -> 32 x 43, the conv drops the remainder
])
@torch.no_grad()
def test_clip_sees_the_padded_image_scaled(clip_resolution, patch_size, width, expected_grid):
    data = load_preset("tiny").to_dict()
    data["clip_resolution"] = clip_resolution
    data["clip_visual"]["patch_size"] = patch_size
    data["clip_visual"]["image_size"] = 4 * patch_size
    san = SAN(SanCfg.from_dict(data)).eval()
    seen = {}
    san.clip_visual_extractor.register_forward_hook(lambda m, i, out: seen.update(grid=out[1]))
    mask_logits, _ = SanSegmenter(san)(torch.zeros(1, 3, 640, width - 10, dtype=torch.uint8))
    assert seen["grid"] == expected_grid
    assert mask_logits.shape[-2:] == (40, width // 16)


@torch.no_grad()
def test_conv_stem_feeds_conv1_on_the_same_grid_and_never_sees_the_canvas_padding():
    data = load_preset("tiny").to_dict()
    data["clip_visual"]["stem_channels"] = [8, 16]
    san = SAN(SanCfg.from_dict(data)).eval()
    extractor = san.clip_visual_extractor
    assert extractor.conv1.kernel_size == (4, 4) and extractor.conv1.in_channels == 16  # 16-pixel patches in all
    assert any(k.startswith("clip_visual_extractor.conv_stem.") for k in san.state_dict())
    assert not any(".conv_stem." in k for k in SAN(load_preset("tiny")).state_dict())  # plain CLIP: no new keys

    def patch_embedding(x):
        return extractor.conv1(extractor.conv_stem(x))

    image = torch.randn(1, 3, 64, 96)
    alone = patch_embedding(image)
    assert alone.shape[-2:] == (4, 6)
    # Padded bottom and right, as preprocess pads: every 3×3, stride-2 window of an in-image output stops at the
    # image's last pixel, so the stem's output over the image is unchanged.
    on_canvas = patch_embedding(F.pad(image, [0, 32, 0, 32]))
    assert torch.allclose(on_canvas[..., :4, :6], alone, atol=1e-6)


@pytest.mark.parametrize("variant, fused", [("tiny", [0, 2, 3]), ("vit_b_16", [0, 3, 6, 9])])
@torch.no_grad()
def test_fusion_layers_read_the_spec_clip_layers(variant, fused):
    torch.manual_seed(0)
    san = SAN(load_preset(variant)).eval()
    extractor = san.clip_visual_extractor
    layer_outputs = {}
    extractor.ln_pre.register_forward_hook(lambda m, i, out: layer_outputs.update({0: out}))
    for k, block in enumerate(extractor.resblocks, start=1):
        block.register_forward_hook(lambda m, i, out, k=k: layer_outputs.update({k: out}))
    fusion_inputs = {}
    for name, fusion in san.side_adapter_network.fusion_layers.items():
        fusion.register_forward_hook(lambda m, i, out, name=name: fusion_inputs.update({name: i[1]}))
    SanSegmenter(san)(random_images(1, 64, 64))

    assert sorted(fusion_inputs) == [f"layer_{s}" for s in range(len(fused))]
    for side_layer, clip_layer in enumerate(fused):
        tokens = layer_outputs[clip_layer]
        clip_map = fusion_inputs[f"layer_{side_layer}"]
        assert torch.equal(clip_map, tokens[:, 1:].transpose(1, 2).reshape(clip_map.shape))


@torch.no_grad()
def test_classify_and_semantic_inference_formulas(tiny_san):
    segmenter = SanSegmenter(tiny_san)
    generator = torch.Generator().manual_seed(0)
    mask_embeds = F.normalize(torch.randn(2, 8, 32, generator=generator), dim=-1)
    text_embeds = F.normalize(torch.randn(5, 32, generator=generator), dim=-1)
    logits = segmenter.classify(mask_embeds, text_embeds)
    rows = torch.cat([text_embeds, tiny_san.ov_classifier.bg_embed])
    rows = rows / rows.norm(dim=-1, keepdim=True)
    scale = tiny_san.ov_classifier.logit_scale.exp()
    assert torch.allclose(logits, scale * mask_embeds @ rows.T, atol=1e-5)

    mask_logits = torch.randn(2, 8, 3, 4, generator=generator)
    scores = segmenter.semantic_inference(logits, mask_logits)
    probs = logits.softmax(-1)[..., :5]
    expected = (probs[:, :, :, None, None] * mask_logits.sigmoid()[:, :, None]).sum(1)
    assert scores.shape == (2, 5, 3, 4) and torch.allclose(scores, expected, atol=1e-6)


@torch.no_grad()
def test_mask_logits_are_upsampled_to_padded_size_cropped_and_resized(tiny_san):
    segmenter = SanSegmenter(tiny_san)
    mask_logits = torch.randn(1, 8, 6, 8)  # a 72 x 100 image padded to 96 x 128
    resized = segmenter.resize_mask_logits(mask_logits, 72, 100, 144, 200)
    padded = F.interpolate(mask_logits, size=(96, 128), mode="bilinear", align_corners=False)
    expected = F.interpolate(padded[:, :, :72, :100], size=(144, 200), mode="bilinear", align_corners=False)
    assert torch.equal(resized, expected)
    scores, labels = segmenter.postprocess(torch.randn(1, 8, 4), mask_logits, 72, 100, 144, 200)
    assert scores.shape == (1, 3, 144, 200) and labels.dtype == torch.int64
    assert torch.equal(labels, scores.argmax(1))


@torch.no_grad()
def test_attention_equals_nn_multihead_attention_as_open_clip_calls_it():
    torch.manual_seed(0)
    ours = MultiheadSelfAttention(64, 4).eval()
    reference = torch.nn.MultiheadAttention(64, 4).eval()
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, 9, 64)
    mask = torch.randn(2, 4, 9, 9) * 10
    mask[..., :3] = -100.0
    # The reference runs sequence-first with the mask flattened batch-major, then head.
    expected = reference(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), need_weights=False,
                         attn_mask=mask.reshape(8, 9, 9))[0].transpose(0, 1)
    assert (ours(x, mask) - expected).abs().max() < 1e-5
    causal = torch.full((9, 9), float("-inf")).triu_(1)
    expected = reference(x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1), need_weights=False,
                         attn_mask=causal)[0].transpose(0, 1)
    assert (ours(x, causal) - expected).abs().max() < 1e-5


@torch.no_grad()
def test_segment_is_postprocess_per_image_in_one_call(tiny_san):
    segmenter = torch.jit.script(SanSegmenter(tiny_san))
    images = random_images(2, 72, 100)
    sizes = torch.tensor([[72, 100], [50, 63]])
    output_sizes = torch.tensor([[50, 75], [30, 40]])
    text_embeds = F.normalize(torch.randn(300, tiny_san.cfg.clip_visual.output_dim), dim=-1)
    channels_last = images.permute(0, 2, 3, 1).contiguous()
    results = segmenter.segment(channels_last, sizes.tolist(), output_sizes.tolist(), text_embeds, True, True)
    mask_logits, mask_embeds = segmenter.forward_with_sizes(images, sizes)
    class_logits = segmenter.classify(mask_embeds, text_embeds)
    for i, result in enumerate(results):
        (h, w), (out_h, out_w) = sizes[i].tolist(), output_sizes[i].tolist()
        scores, labels = segmenter.postprocess(class_logits[i:i + 1], mask_logits[i:i + 1], h, w, out_h, out_w)
        # On the CPU a band of rows at a time (test_postprocess.py): the class mixing sums in another order.
        assert (result["scores"] - scores[0]).abs().max() <= 1e-6 * scores.abs().max()
        assert result["labels"].dtype == torch.int16
        assert torch.equal(result["labels"].long(), result["scores"].argmax(dim=0))
        assert (result["labels"].long() == labels[0]).float().mean() > 0.999
        assert torch.equal(result["mask_logits"], mask_logits[i])
        assert torch.allclose(result["class_probs"], class_logits[i].softmax(dim=-1))
    # Labels alone, over bands of one row and chunks of 7 classes, are the argmax of the scores.
    segmenter.band_elements = 7 * 75
    labels_only = segmenter.segment(channels_last, sizes.tolist(), output_sizes.tolist(), text_embeds, False, False)
    assert [sorted(r) for r in labels_only] == [["labels"], ["labels"]]
    assert all(torch.equal(a["labels"], b["labels"]) for a, b in zip(labels_only, results))


@torch.no_grad()
def test_semantic_labels_over_class_chunks_is_the_argmax(tiny_san):
    # segment's labels on a GPU: reduced over chunks of classes, the first maximum winning as argmax's does.
    segmenter = SanSegmenter(tiny_san)
    generator = torch.Generator().manual_seed(3)
    class_logits = torch.randn(2, 8, 41, generator=generator) * 3
    masks = torch.randn(2, 8, 30, 20, generator=generator) * 4
    expected = segmenter.semantic_inference(class_logits, masks).argmax(dim=1)
    segmenter.label_chunk_elements = 7 * 2 * 30 * 20
    assert torch.equal(segmenter.semantic_labels(class_logits, masks), expected)
