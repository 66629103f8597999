"""Official container formats load; a corrupted or mismatched checkpoint gives one clear error."""
import re

import pytest
import torch

from models.san import SAN, SanSegmenter, load_preset
from models.san.checkpoint import CheckpointError, detect_variant, load_san

from .conftest import random_images


@pytest.fixture()
def state_dict(tiny_san):
    # What the official files also carry: the loss buffer, ignored when loading.
    return {"criterion.empty_weight": torch.ones(172), **tiny_san.state_dict()}


def outputs(san):
    with torch.no_grad():
        return SanSegmenter(san)(random_images(1, 40, 50))


@pytest.mark.parametrize("container", ["model", "state_dict", "bare"])
def test_official_containers_load(container, state_dict, tiny_san, tmp_path):
    obj = state_dict if container == "bare" else {container: state_dict, "iteration": 59999}
    torch.save(obj, tmp_path / "ckpt.pth")
    san, variant = load_san(tmp_path / "ckpt.pth")
    assert variant == "tiny"
    for loaded, original in zip(outputs(san), outputs(tiny_san)):
        assert torch.equal(loaded, original)


def test_half_precision_checkpoint_loads_into_float32(state_dict, tmp_path):
    torch.save({"model": {k: v.half() for k, v in state_dict.items()}}, tmp_path / "ckpt.pth")
    san, _ = load_san(tmp_path / "ckpt.pth")
    assert san.clip_rec_head.proj.dtype == torch.float32
    assert torch.allclose(san.clip_rec_head.proj, state_dict["clip_rec_head.proj"].half().float())


@pytest.mark.parametrize("variant", ["vit_b_16", "vit_l_14_336", "tiny"])
def test_variant_is_detected_from_shapes(variant):
    cfg = load_preset(variant)
    clip, side, text = cfg.clip_visual, cfg.side_adapter, cfg.text
    shapes = {  # only the tensors detection reads; building the large models here would take seconds
        "clip_visual_extractor.conv1.weight": (clip.width, 3, clip.patch_size, clip.patch_size),
        "clip_visual_extractor.positional_embedding": (clip.grid_size ** 2 + 1, clip.width),
        "side_adapter_network.vit_model.pos_embed": (1, side.grid_size ** 2, side.width),
        "ov_classifier.token_embedding.weight": (text.vocab_size, text.width),
    }
    assert detect_variant({k: torch.empty(shape) for k, shape in shapes.items()}) == variant


def test_unknown_shapes_are_named(state_dict, tmp_path):
    state_dict["clip_visual_extractor.conv1.weight"] = torch.zeros(64, 3, 8, 8)
    torch.save(state_dict, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"odd\.pth matches no SAN variant\. It has "
                                              r"clip_visual_extractor\.conv1\.weight 64x3x8x8, .*vit_b_16: 768x3x16x16"):
        load_san(tmp_path / "odd.pth")


def test_mismatch_lists_missing_unexpected_and_misshaped_keys(state_dict, tmp_path):
    del state_dict["clip_rec_head.ln_post.bias"]
    del state_dict["ov_classifier.bg_embed"]
    state_dict["side_adapter_network.extra.weight"] = torch.zeros(3)
    state_dict["side_adapter_network.query_embed"] = torch.zeros(1, 7, 48)
    torch.save({"model": state_dict}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as error:
        load_san(tmp_path / "bad.pth")
    assert str(error.value) == (
        f"{tmp_path / 'bad.pth'} (as tiny) does not match the model:\n"
        "  2 missing keys: clip_rec_head.ln_post.bias, ov_classifier.bg_embed\n"
        "  1 unexpected keys: side_adapter_network.extra.weight\n"
        "  1 mis-shaped keys: side_adapter_network.query_embed (1x7x48 in the checkpoint, 1x8x48 in the model)")


def test_explicit_variant_is_checked_against_the_file(state_dict, tmp_path):
    torch.save(state_dict, tmp_path / "tiny.pth")
    with pytest.raises(CheckpointError, match=r"(?s)\(as vit_b_16\) does not match the model:\n  .*mis-shaped keys: "):
        load_san(tmp_path / "tiny.pth", "vit_b_16")
    with pytest.raises(ValueError, match="Unknown SAN variant 'vit_x'"):
        load_san(tmp_path / "tiny.pth", "vit_x")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupted_file_gives_a_clear_error(damage, state_dict, tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(state_dict, path)
    data = path.read_bytes()
    path.write_bytes({"garbage": b"not a checkpoint" * 64, "truncated": data[:len(data) // 2], "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=re.escape(f"Checkpoint {path} cannot be read as a PyTorch file: ")):
        load_san(path)


def test_missing_file_and_foreign_content(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_san(tmp_path / "nope.pth")
    torch.save({"model": {"a": torch.zeros(1), "b": [1, 2]}}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match=r"foreign\.pth is not a state dict: b are not tensors"):
        load_san(tmp_path / "foreign.pth")
    torch.save({"iteration": 5}, tmp_path / "nothing.pth")
    with pytest.raises(CheckpointError, match=r"nothing\.pth is not a state dict: iteration are not tensors"):
        load_san(tmp_path / "nothing.pth")
