"""The reference recipe's numbers: what trains, AdamW groups, poly schedule, gradient clipping, augmentation, data."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from models.san import SAN, load_preset
from models.train import FolderDataset, ImageError, TrainCfg, TrainTransform, load_train_config, make_targets
from models.train.optim import PolySchedule, build_optimizer, clip_gradients, freeze_clip, param_groups
from models.train.data import hsv_to_rgb, rgb_to_hsv, shortest_edge_size
from models.train.train import with_overrides


@pytest.fixture(scope="module")
def vit_b_16():
    torch.manual_seed(0)
    return SAN(load_preset("vit_b_16"))


def test_coco_stuff_preset_is_the_reference_recipe():
    cfg = load_train_config("coco_stuff_vit_b_16")
    assert (cfg.steps, cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.poly_power, cfg.grad_clip) == \
        (60000, 32, 1e-4, 1e-4, 0.9, 0.01)
    assert (cfg.class_weight, cfg.mask_weight, cfg.dice_weight, cfg.no_object_weight) == (2.0, 5.0, 5.0, 0.1)
    assert (cfg.num_points, cfg.oversample_ratio, cfg.importance_sample_ratio) == (12544, 3.0, 0.75)
    assert cfg.side_layers() == [7, 8] and cfg.amp and cfg.clip_frozen_exclude == ["positional_embedding"]
    assert cfg.train_short_edges() == list(range(320, 961, 64)) and (cfg.crop_size, cfg.max_size) == (640, 2560)
    assert (cfg.pad_value, cfg.ignore_label, cfg.color_jitter, cfg.flip) == (128, 255, True, True)
    assert replace(cfg, num_workers=0) == TrainCfg()  # the dataclass defaults are the recipe too
    assert load_train_config("coco_stuff_vit_l_14_336").side_layers() == [7, 8]


def test_bad_configs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="crop_size"):
        TrainCfg(model="tiny", crop_size=48)
    with pytest.raises(ValueError, match="deep_supervision"):
        TrainCfg(model="tiny", deep_supervision=[1, 2])
    with pytest.raises(ValueError, match="Unknown TrainCfg field.*lerning_rate"):
        TrainCfg.from_dict({"lerning_rate": 1})
    with pytest.raises(ValueError, match="does not exist"):
        load_train_config(tmp_path / "none.json")


def test_clip_is_frozen_but_its_visual_positional_embedding(vit_b_16):
    trainable = freeze_clip(vit_b_16)
    assert {name.split(".")[0] for name in trainable} == {"side_adapter_network", "clip_visual_extractor",
                                                          "ov_classifier"}
    assert [n for n in trainable if not n.startswith("side_adapter_network")] == [
        "clip_visual_extractor.positional_embedding", "ov_classifier.bg_embed"]
    # The official ViT-B/16 log's count of trainable parameters.
    assert sum(p.numel() for p in vit_b_16.parameters() if p.requires_grad) == 8_370_866


def test_adamw_groups_have_the_reference_weight_decay(vit_b_16):
    freeze_clip(vit_b_16)
    cfg = load_train_config("coco_stuff_vit_b_16")
    decay = {name: group["weight_decay"] for group in param_groups(vit_b_16, cfg) for name in group["names"]}
    assert all(group["lr"] == 1e-4 for group in param_groups(vit_b_16, cfg))
    no_decay = {"side_adapter_network.query_embed", "side_adapter_network.query_pos_embed",
                "side_adapter_network.vit_model.pos_embed", "clip_visual_extractor.positional_embedding"}
    no_decay |= {n for n in decay if ".norm1." in n or ".norm2." in n}  # torch LayerNorms of the side ViT
    assert {n for n, wd in decay.items() if wd == 0.0} == no_decay
    # SAN's own channels-first LayerNorm in the fusion layers is not a torch norm: it keeps weight decay.
    assert decay["side_adapter_network.fusion_layers.layer_0.input_proj.0.weight"] == 1e-4
    assert decay["ov_classifier.bg_embed"] == 1e-4
    optimizer = build_optimizer(vit_b_16, cfg)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert sum(p.numel() for g in optimizer.param_groups for p in g["params"]) == 8_370_866


def test_poly_schedule_without_warm_up():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([{"params": [param], "lr": 1e-4}])
    schedule = PolySchedule(optimizer, max_steps=100, power=0.9)
    lrs = []
    for _ in range(100):
        lrs.append(optimizer.param_groups[0]["lr"])
        schedule.step()
    assert lrs[0] == 1e-4 and lrs[50] == pytest.approx(1e-4 * 0.5 ** 0.9)
    assert lrs[99] == pytest.approx(1e-4 * 0.01 ** 0.9)
    resumed = PolySchedule(optimizer, max_steps=100, power=0.9)
    resumed.load_state_dict({"step_count": 50})
    assert optimizer.param_groups[0]["lr"] == pytest.approx(lrs[50])


def test_gradients_are_clipped_over_the_whole_model():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    optimizer = torch.optim.AdamW([{"params": [a]}, {"params": [b]}])
    assert clip_gradients(optimizer, 0.01) == pytest.approx(5.0)  # the norm before clipping
    assert torch.allclose(torch.cat([a.grad, b.grad]), torch.tensor([0.006, 0.0, 0.008]))


def test_shortest_edge_resize_as_detectron2():
    assert shortest_edge_size(480, 640, 320, 2560) == (320, 427)
    assert shortest_edge_size(100, 4000, 960, 2560) == (64, 2560)


def colour_coded(h: int, w: int):
    """An image whose colour says its label: class k is the k-th colour; a border of ignore (255) pixels."""
    colours = torch.tensor([[250, 10, 10], [10, 250, 10], [10, 10, 250]], dtype=torch.uint8)
    label = (torch.arange(w).view(1, w) * 3 // w).expand(h, w).clone()
    label[:3], label[:, :3] = 255, 255
    image = colours[label.clamp(max=2)].permute(2, 0, 1) * (label[None] != 255)
    return image, label, colours


def test_augmentation_keeps_image_and_label_aligned():
    cfg = with_overrides(load_train_config("tiny"), color_jitter=False)
    transform = TrainTransform(cfg)
    image, label, colours = colour_coded(50, 90)
    seen_sizes, flipped = set(), 0
    for seed in range(12):
        out_image, out_label = transform(image, label, torch.Generator().manual_seed(seed))
        assert out_image.shape == (3, 64, 64) and out_image.dtype == torch.uint8 and out_label.shape == (64, 64)
        assert set(out_label.unique().tolist()) <= {0, 1, 2, 255}
        padded = (out_image == 128).all(0)
        seen_sizes.add(int((~padded).sum()))
        assert (out_label[padded] == 255).all()  # padding is ignored
        # Away from class borders, each labelled pixel has its class's colour.
        inner = (out_label != 255) & (out_label == out_label.roll(1, 1)) & (out_label == out_label.roll(-1, 1))
        match = (out_image.permute(1, 2, 0)[inner].int() - colours[out_label[inner]].int()).abs().max(-1).values < 40
        assert match.float().mean() > 0.97
        left, right = int(out_label[32, 10]), int(out_label[32, 50])
        flipped += int(255 not in (left, right) and left > right)
    assert len(seen_sizes) > 1  # short sides vary: some crops are smaller than 64² and get padded
    assert flipped > 0  # some samples are mirrored (class 2 on the left)


def test_colour_jitter_changes_colours_only():
    transform = TrainTransform(with_overrides(load_train_config("tiny"), flip=False))
    image, label, _ = colour_coded(64, 64)
    plain = TrainTransform(with_overrides(load_train_config("tiny"), flip=False, color_jitter=False))
    differing = 0
    for seed in range(6):
        jittered, jittered_label = transform(image, label, torch.Generator().manual_seed(seed))
        reference, reference_label = plain(image, label, torch.Generator().manual_seed(seed))
        assert torch.equal(jittered_label, reference_label)  # same resize and crop
        differing += int(not torch.equal(jittered, reference))
    assert differing > 0


def test_hsv_in_opencv_uint8_ranges():
    # OpenCV's COLOR_RGB2HSV for 8-bit images: H in degrees / 2, S and V in 0..255, rounded.
    pixels = torch.tensor([[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 50, 25], [7, 7, 7]], dtype=torch.uint8)
    hsv = rgb_to_hsv(pixels.t().reshape(3, 1, 5))
    assert hsv.reshape(3, 5).t().tolist() == [[0, 255, 255], [60, 255, 255], [120, 255, 255], [10, 191, 100],
                                              [0, 0, 7]]
    image = torch.randint(0, 256, (3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    # Hue is quantised to 2 degrees, so the round trip is exact up to a few levels, as OpenCV's.
    assert (hsv_to_rgb(rgb_to_hsv(image)).int() - image.int()).abs().max() <= 4


def test_targets_are_one_mask_per_present_class():
    labels = torch.tensor([[[0, 0, 255], [2, 2, 255]], [[255, 255, 255], [255, 255, 255]]])
    first, empty = make_targets(labels, num_classes=3)
    assert first["labels"].tolist() == [0, 2]
    assert first["masks"].tolist() == [[[True, True, False], [False, False, False]],
                                       [[False, False, False], [True, True, False]]]
    assert empty["labels"].numel() == 0 and empty["masks"].shape == (0, 2, 3)
    with pytest.raises(ValueError, match=r"label values in \[0, 2\] or 255.*\[7\]"):
        make_targets(torch.tensor([[[7]]]), num_classes=3)


def write_folder(root, count=3, size=(40, 56), classes=("sky", "grass")):
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("".join(name + "\n" for name in classes))
    rng = np.random.default_rng(0)
    for i in range(count):
        # Vertical bands of the classes at random boundaries, and an unlabelled strip on the left.
        bounds = np.sort(rng.integers(8, size[1] - 4, size=len(classes) - 1))
        label = np.broadcast_to(np.searchsorted(bounds, np.arange(size[1]), side="right"), size).astype(np.uint8)
        label[:, :4] = 255
        image = np.stack([label * 90, 255 - label * 90, np.full(size, 60, np.uint8)], axis=-1).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"img{i}.{'jpg' if i % 2 else 'png'}")
        Image.fromarray(label, mode="L").save(root / "labels" / f"img{i}.png")
    return root


def test_folder_dataset_reads_images_and_label_pngs(tmp_path):
    dataset = FolderDataset(write_folder(tmp_path / "set"))
    assert dataset.class_names == ["sky", "grass"] and len(dataset) == 3
    image, label = dataset[1]  # a JPEG
    assert image.shape == (3, 40, 56) and image.dtype == torch.uint8 and label.dtype == torch.int64
    assert set(label.unique().tolist()) == {0, 1, 255}
    # Palette and 16-bit label PNGs give their indices.
    indices = label.numpy().astype(np.uint8)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0] * 128)
    palette.save(tmp_path / "set" / "labels" / "img1.png")
    assert torch.equal(dataset[1][1], label)
    Image.fromarray(indices.astype(np.uint16)).save(tmp_path / "set" / "labels" / "img1.png")
    assert torch.equal(dataset[1][1], label)


def test_folder_dataset_other_layouts_and_errors(tmp_path):
    root = write_folder(tmp_path / "coco")
    (root / "images").rename(root / "train2017")
    (root / "labels").rename(root / "stuffmaps")
    dataset = FolderDataset(root, images="train2017", labels="stuffmaps", classes=["a", "b"])
    assert len(dataset) == 3 and dataset.class_names == ["a", "b"]
    with pytest.raises(ValueError, match="images is not a folder"):
        FolderDataset(root)
    (root / "stuffmaps" / "img2.png").unlink()
    with pytest.raises(ValueError, match=r"lacks the label PNG of 1 image\(s\): img2.png"):
        FolderDataset(root, images="train2017", labels="stuffmaps", classes=["a", "b"])
    Image.new("RGB", (56, 40)).save(root / "stuffmaps" / "img2.png")
    dataset = FolderDataset(root, images="train2017", labels="stuffmaps", classes=["a", "b"])
    with pytest.raises(ImageError, match="single-channel or palette PNG"):
        dataset[2]
    Image.new("L", (10, 10)).save(root / "stuffmaps" / "img2.png")
    with pytest.raises(ImageError, match="is 10x10 but its image is 56x40"):
        dataset[2]
