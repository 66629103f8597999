"""The procedural world: seeded scenes, label maps that agree with what is drawn and captioned, the held-out split,
the seen / held-out mIoU and the demo's sample scene."""
import math
import zlib

import numpy as np
import pytest
import torch

from models.procedural.clip_pretrain import (build_vocab, describes, descriptions, multi_positive_ce,
                                             patch_label_loss, region_slots)
from models.procedural.data import ScenePool, cell_shares, class_regions, coverage
from models.procedural.evaluate import class_iou, confusion, mean_iou
from models.procedural.sample import SAMPLE_CLASSES, write_sample
from models.procedural.world import (BACKGROUND, COLOURS, DEFAULT_HELD_OUT, IGNORE, ShapeObject, World, describe,
                                     render, shape_mask)
from models.san.tokenizer import SimpleTokenizer


def read_plain_png(path) -> np.ndarray:
    """Decodes what world.write_png writes: one IDAT chunk, 8-bit grey or RGB, filter type 0 on every row."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    channels = {0: 1, 2: 3}[data[25]]
    start = data.index(b"IDAT") + 4
    raw = zlib.decompress(data[start:start + int.from_bytes(data[start - 8:start - 4], "big")])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape((height, width, channels) if channels == 3 else (height, width))


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def test_classes_split_into_seen_and_held_out_pairs(world):
    assert len(world.class_names) == len(COLOURS) * 6 + 1 and world.class_names[-1] == BACKGROUND
    held = {world.class_names[i] for i in world.held_out_ids}
    assert held == {f"{c} {s}" for c, s in DEFAULT_HELD_OUT}
    assert not held & {world.class_names[i] for i in world.seen_ids}
    # Every colour and every shape of a held-out pair is still seen in other pairs.
    for colour, shape in DEFAULT_HELD_OUT:
        assert any(c == colour for c, _ in world.seen_pairs) and any(s == shape for _, s in world.seen_pairs)


def test_scenes_are_deterministic_by_seed_split_and_index(world):
    a = world.render(world.scene(7, "train", 3), 64)
    b = world.render(world.scene(7, "train", 3), 64)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], world.render(world.scene(8, "train", 3), 64)[0])
    assert not np.array_equal(a[0], world.render(world.scene(7, "val", 3), 64)[0])


def test_training_scenes_never_show_held_out_pairs(world):
    held = set(world.held_out_ids)
    for index in range(40):
        _, labels = world.render(world.scene(0, "train", index), 48)
        assert not held & set(np.unique(labels).tolist())
    with pytest.raises(ValueError, match="held_out_share"):
        world.scene(0, "train", 0, held_out_share=0.5)
    only_held = [o.name for i in range(10) for o in world.scene(0, "val", i, held_out_share=1.0).objects]
    assert only_held and all(world.class_names.index(name) in held for name in only_held)


def test_label_maps_match_the_objects_drawn(world):
    for index in range(20):
        scene = world.scene(1, "val", index, held_out_share=0.5)
        image, labels = world.render(scene, 96)
        assert image.shape == (96, 96, 3) and image.dtype == np.uint8 and labels.shape == (96, 96)
        present = set(np.unique(labels).tolist())
        named = {world.class_id(o.colour, o.shape) for o in scene.objects}
        assert present - {world.background_id} <= named
        for obj in scene.objects:
            class_id = world.class_id(obj.colour, obj.shape)
            if class_id not in present or obj.fill != "solid":
                continue
            # A solid object's pixels have its named colour (jittered a little), far from the others.
            mean = image[labels == class_id].reshape(-1, 3).mean(axis=0)
            nearest = min(COLOURS, key=lambda name: np.linalg.norm(mean - np.array(COLOURS[name])))
            assert nearest == obj.colour


def test_shape_masks_have_the_expected_areas():
    u, v = np.meshgrid(np.linspace(-1.1, 1.1, 441), np.linspace(-1.1, 1.1, 441))
    cell = (2.2 / 440) ** 2
    assert shape_mask("circle", u, v).sum() * cell == pytest.approx(math.pi, rel=0.02)
    assert shape_mask("square", u, v).sum() * cell == pytest.approx(1.4 ** 2, rel=0.02)
    assert shape_mask("ring", u, v).sum() * cell == pytest.approx(math.pi * (1 - 0.55 ** 2), rel=0.03)
    with pytest.raises(ValueError, match="unknown shape"):
        shape_mask("hexagon", u, v)


def test_render_labels_follow_the_top_object():
    scene = World().scene(0, "val", 0, num_objects=0)
    for colour, x in (("red", 0.45), ("blue", 0.55)):
        scene.objects.append(ShapeObject(colour, "square", x, 0.5, 0.3, 0.0, COLOURS[colour], "solid", 0.0, 0.03))
    image, labels = render(scene, 40, [1, 2], 0)
    assert labels[20, 20] == 2 and tuple(int(v) for v in image[20, 20]) == pytest.approx(COLOURS["blue"], abs=16)
    assert labels[20, 9] == 1 and labels[1, 1] == 0


def test_captions_describe_their_regions(world):
    red_star = world.class_id("red", "star")
    assert describes(world, ("red", "star"), red_star) and describes(world, ("red", None), red_star)
    assert describes(world, (None, "star"), red_star) and not describes(world, ("blue", None), red_star)
    assert not describes(world, (None, None), red_star) and describes(world, (None, None), world.background_id)
    kinds = descriptions(world)
    assert ("red", "star") not in kinds["pair"]  # held out: no caption names it
    assert describe("red", None) == "red object" and describe(None, "star") == "star"
    assert describe(None, None) == BACKGROUND


def test_vocabulary_spells_every_class_name(world, tmp_path):
    tokenizer = SimpleTokenizer(build_vocab(world, tmp_path / "vocab.gz"))
    assert tokenizer.vocab_size == 610
    for word in world.words():
        assert len(tokenizer.encode(word)) == 1  # whole words, so "red star" is "red" then "star"


def test_pool_remaps_labels_to_its_classes(world):
    pool = ScenePool(world, 0, "val", 6, 32, held_out_share=0.5)
    assert pool.class_names == [world.class_names[i] for i in world.seen_ids]
    for index in range(len(pool)):
        image, label = pool[index]
        assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
        held = torch.isin(pool.labels[index], torch.tensor(world.held_out_ids))
        assert (label[held] == IGNORE).all() and (label[~held] < len(pool.class_names)).all()


def test_region_slots_cover_each_class(world):
    labels = ScenePool(world, 0, "train", 4, 64).labels
    ids, allowed = region_slots(labels, (4, 4), 8, 0.3)
    for i in range(4):
        present = torch.unique(labels[i]).tolist()
        assert ids[i, :len(present)].tolist() == present and (ids[i, len(present):] == -1).all()
        assert allowed[i, :len(present)].flatten(1).any(dim=1).all()


def test_cell_shares_are_the_class_coverage_of_each_patch(world):
    labels = ScenePool(world, 0, "train", 3, 64).labels
    shares = cell_shares(labels, (4, 4), len(world.class_names))
    assert shares.shape == (3, 16, len(world.class_names))
    for i, (classes, masks) in enumerate(class_regions(labels)):
        expected = torch.zeros(16, len(world.class_names))
        expected[:, classes] = coverage(masks, (4, 4)).flatten(1).t()
        assert torch.allclose(shares[i], expected)
    with pytest.raises(ValueError, match="do not split into a 3x3 grid"):
        cell_shares(labels, (3, 3), len(world.class_names))


def test_patch_label_loss_by_hand():
    head = torch.nn.Identity()  # the tokens are the logits: 2 patches of a 2 × 1 grid, 3 classes
    tokens = torch.tensor([[[9.0, 9.0, 9.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])  # class token first, unused
    labels = torch.tensor([[[0, 0], [1, 2]]])  # the top patch all class 0, the bottom one half 1, half 2
    top = -torch.log_softmax(tokens[0, 1], 0)[0]
    bottom = -0.5 * torch.log_softmax(tokens[0, 2], 0)[1:].sum()
    assert patch_label_loss(head, tokens, labels, (2, 1)).item() == pytest.approx(((top + bottom) / 2).item())


def test_multi_positive_cross_entropy_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0], [5.0, 5.0, 5.0]])
    positives = torch.tensor([[True, False, False], [False, True, True], [False, False, False]])
    expected = (-torch.log_softmax(logits[0], 0)[0] - 0.5 * torch.log_softmax(logits[1], 0)[1:].sum()) / 2
    assert multi_positive_ce(logits, positives).item() == pytest.approx(expected.item())


def test_miou_follows_detectron2():
    # Classes 0..3; class 3 is only predicted (IoU 0 and counted), class 2 neither labelled nor predicted.
    labels = torch.tensor([0, 0, 0, 1, 1, IGNORE])
    predictions = torch.tensor([0, 0, 1, 1, 3, 2])
    matrix = confusion(predictions, labels, 4)
    assert matrix.sum() == 5
    ious = class_iou(matrix)
    assert ious[0] == pytest.approx(100 * 2 / 3) and ious[1] == pytest.approx(100 / 3)
    assert ious[2] is None and ious[3] == 0
    assert mean_iou(ious, range(4)) == pytest.approx((200 / 3 + 100 / 3 + 0) / 3)
    assert mean_iou(ious, [0]) == pytest.approx(200 / 3)


def test_sample_scene_shows_held_out_pairs_with_matching_labels(tmp_path, world):
    image_path, labels_path, classes_path = write_sample(tmp_path / "scene.png", size=128)
    assert classes_path.read_text().split("\n")[:-1] == SAMPLE_CLASSES
    assert all(world.class_names.index(name) in world.held_out_ids for name in SAMPLE_CLASSES[1:])
    labels = read_plain_png(labels_path)
    assert read_plain_png(image_path).shape == (128, 128, 3)
    assert sorted(np.unique(labels).tolist()) == list(range(len(SAMPLE_CLASSES)))
