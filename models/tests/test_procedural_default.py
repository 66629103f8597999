"""The committed default model (models/default) and the demo's sample scene (assets/procedural-scene*)."""
import json
from pathlib import Path

import numpy as np
import torch

from models.export import check_model_dir
from models.procedural.evaluate import class_iou, confusion, mean_iou
from models.procedural.sample import SAMPLE_CLASSES, sample_scene, write_sample
from models.procedural.world import World, render
from models.san.text import TEMPLATE_SETS, class_embeddings
from models.san.tokenizer import SimpleTokenizer

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL = REPO_ROOT / "models" / "default"
SAMPLE = REPO_ROOT / "assets" / "procedural-scene.png"
# The committed model's mIoU on the sample scene at model scale is in docs/procedural-world.md; this floor sits
# below it, so that the test fails when a retrained model or a change in the pipeline makes it segment worse.
MIN_SAMPLE_MIOU = 84.0


def test_default_model_folder_is_sound_and_says_how_it_was_trained():
    assert check_model_dir(DEFAULT_MODEL) == []
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    record = json.loads((DEFAULT_MODEL / "training.json").read_text())
    assert manifest["variant"] == "procedural"
    world = World()
    assert record["classes"]["held_out"] == [world.class_names[i] for i in world.held_out_ids]
    assert record["train_config"]["color_jitter"] is False
    assert set(record["evaluation"]) >= {"miou_seen", "miou_held_out", "iou"}
    # The thread count and OpenBLAS build the figures and the exact weights depend on.
    assert record["threads"] == 2 and "USE_OPENMP" in record["openblas"]["config"]


def test_committed_sample_scene_is_what_sample_writes(tmp_path):
    for written in write_sample(tmp_path / SAMPLE.name):
        assert written.read_bytes() == (SAMPLE.parent / written.name).read_bytes(), written.name


def test_default_model_segments_the_held_out_pairs_of_the_sample_scene():
    """The exported TorchScript files, as a runtime uses them, on prompts the model never trained on."""
    manifest = json.loads((DEFAULT_MODEL / "manifest.json").read_text())
    san = torch.jit.load(str(DEFAULT_MODEL / "san.pt"), map_location="cpu")
    text_encoder = torch.jit.load(str(DEFAULT_MODEL / "text_encoder.pt"), map_location="cpu")
    tokenizer = SimpleTokenizer(DEFAULT_MODEL / "bpe_vocab.txt.gz")
    size = manifest["resize"]["short_edge"]
    image, truth = render(sample_scene(), size, list(range(1, len(SAMPLE_CLASSES))), 0)
    with torch.no_grad():
        text = class_embeddings(text_encoder, tokenizer, SAMPLE_CLASSES, TEMPLATE_SETS["vild"],
                                manifest["text"]["context_length"])
        images = torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()
        mask_logits, mask_embeds = san(images)
        _, labels = san.postprocess(san.classify(mask_embeds, text), mask_logits, size, size, size, size)
    ious = class_iou(confusion(labels[0], torch.from_numpy(truth.astype(np.int64)), len(SAMPLE_CLASSES)))
    assert mean_iou(ious, range(len(SAMPLE_CLASSES))) >= MIN_SAMPLE_MIOU, ious
