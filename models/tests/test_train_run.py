"""Training runs on the tiny preset: steps lower the loss, checkpoints resume exactly, the result exports and loads."""
import json
import shutil

import pytest
import torch
from PIL import Image

from models import export
from models.san import SAN, SanCfg, load_preset
from models.san.checkpoint import load_san
from models.san.tokenizer import SimpleTokenizer
from models.train import FolderDataset, Trainer, load_train_config, load_trained, read_checkpoint, train
from models.train.__main__ import main as train_main
from models.train.checkpoints import save_checkpoint
from models.train.train import with_overrides

from .conftest import random_images
from .test_train_recipe import write_folder

CLASSES = ["red square", "blue disc", "green field"]


def fixed_batch():
    """Two 64×64 scenes: a red square and a blue rectangle on green; labels 0, 1 and 2 (the background)."""
    images = torch.zeros(2, 3, 64, 64, dtype=torch.uint8)
    images[:, 1] = 180
    labels = torch.full((2, 64, 64), 2, dtype=torch.int64)
    images[0, :, 8:40, 8:40] = torch.tensor([220, 20, 20], dtype=torch.uint8)[:, None, None]
    labels[0, 8:40, 8:40] = 0
    images[1, :, 20:60, 10:50] = torch.tensor([20, 20, 220], dtype=torch.uint8)[:, None, None]
    labels[1, 20:60, 10:50] = 1
    labels[:, :, -4:] = 255
    return images, labels


def fast_config():
    """The tiny preset at lr 1e-3: a random tiny model moves visibly in a few steps."""
    return with_overrides(load_train_config("tiny"), lr=1e-3)


@pytest.fixture()
def trainer(tiny_vocab):
    torch.manual_seed(0)
    return Trainer(SAN(load_preset("tiny")), CLASSES, fast_config(), SimpleTokenizer(tiny_vocab))


def batch_loss(trainer, images, labels):
    with torch.no_grad():
        return float(sum(trainer.losses(images, labels, torch.Generator().manual_seed(123)).values()))


def test_steps_on_a_fixed_batch_lower_the_loss(trainer):
    images, labels = fixed_batch()
    before = batch_loss(trainer, images, labels)
    clip_before = {k: v.clone() for k, v in trainer.san.state_dict().items() if k.startswith("clip_rec_head")}
    records = [trainer.step(images, labels) for _ in range(10)]
    after = batch_loss(trainer, images, labels)
    assert after < 0.95 * before, (before, after)
    assert records[0]["lr"] == 1e-3 and records[-1]["lr"] < records[0]["lr"]  # the poly schedule
    assert set(records[0]) >= {"loss", "loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "grad_norm"}
    # Frozen CLIP weights do not move; the trainable positional embedding and bg_embed do.
    for key, value in clip_before.items():
        assert torch.equal(trainer.san.state_dict()[key], value), key


def test_a_frozen_conv_stem_keeps_its_batchnorm_statistics(tiny_vocab):
    torch.manual_seed(0)
    model = load_preset("tiny").to_dict()
    model["clip_visual"]["stem_channels"] = [8, 16]
    trainer = Trainer(SAN(SanCfg.from_dict(model)), CLASSES, with_overrides(fast_config(), model=model),
                      SimpleTokenizer(tiny_vocab))
    stem = {k: v.clone() for k, v in trainer.san.state_dict().items() if ".conv_stem." in k}
    trainer.step(*fixed_batch())
    for key, value in stem.items():
        assert torch.equal(trainer.san.state_dict()[key], value), key


def test_checkpoint_round_trip_restores_the_whole_state(trainer, tiny_vocab, tmp_path):
    images, labels = fixed_batch()
    for _ in range(3):
        trainer.step(images, labels)
    extra = trainer.state()
    path = save_checkpoint(tmp_path, "model_0000003.pth", trainer.model_state(), extra)
    assert (tmp_path / "last_checkpoint").read_text().strip() == "model_0000003.pth"

    saved = read_checkpoint(path)  # weights_only: plain values and tensors only
    assert saved["iteration"] == 3 and saved["model"]["criterion.empty_weight"].tolist()[-1] == pytest.approx(0.1)
    torch.manual_seed(1)  # different initial weights, replaced by the checkpoint's
    restored = Trainer(SAN(load_preset("tiny")), CLASSES, fast_config(), SimpleTokenizer(tiny_vocab))
    restored.load(saved)
    assert restored.step_count == 3
    for key, value in trainer.san.state_dict().items():
        assert torch.equal(restored.san.state_dict()[key], value), key
    assert restored.optimizer.param_groups[0]["lr"] == trainer.optimizer.param_groups[0]["lr"]
    moments = zip(restored.optimizer.state_dict()["state"].values(), trainer.optimizer.state_dict()["state"].values())
    for a, b in moments:
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["exp_avg_sq"], b["exp_avg_sq"])
    # Both now take the same next step.
    assert restored.step(images, labels)["loss"] == trainer.step(images, labels)["loss"]


def run_config(tmp_path, **overrides):
    cfg = with_overrides(load_train_config("tiny"), steps=6, batch_size=2, checkpoint_period=3, log_period=2,
                         keep_checkpoints=0, **overrides)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(cfg.to_dict()))
    return path


def test_cli_trains_checkpoints_plots_and_exports(tiny_vocab, tmp_path, capsys):
    data = write_folder(tmp_path / "data", count=3, size=(48, 72), classes=("sky", "grass"))
    out = tmp_path / "run"
    code = train_main(["--config", str(run_config(tmp_path)), "--data", str(data), "--out", str(out),
                       "--vocab", str(tiny_vocab), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("Trained 6 steps in") and str(out / "model") in captured.out
    assert "step 6/6 [####################] 100%" in captured.err  # the progress line
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "last_checkpoint", "model_0000003.pth", "model_final.pth", "losses.tsv", "metrics.jsonl", "loss.png",
        "model"])
    rows = (out / "losses.tsv").read_text().splitlines()
    assert rows[0] == "step\tloss\tloss_ce\tloss_mask\tloss_dice" and len(rows) == 7
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [2, 4, 6]
    with Image.open(out / "loss.png") as curve:
        assert curve.format == "PNG" and curve.size == (900, 500)

    # The final checkpoint is an official container: the inference loader reads it, and so does models.export.
    san, variant = load_san(out / "model_final.pth")
    assert variant == "tiny"
    exported = torch.jit.load(str(out / "model" / "san.pt"))
    image = random_images(1, 48, 64)
    with torch.no_grad():
        assert torch.equal(exported(image)[0], san.eval()(image, torch.zeros(0, 32))[0])
    assert export.check_model_dir(out / "model") == []
    assert json.loads((out / "model" / "manifest.json").read_text())["variant"] == "tiny"
    assert export.main(["--checkpoint", str(out / "model_final.pth"), "--out", str(tmp_path / "again"),
                        "--vocab", str(tiny_vocab)]) == 0
    _, checkpoint = load_trained(out / "model_final.pth")
    assert checkpoint["class_names"] == ["sky", "grass"] and checkpoint["iteration"] == 6

    # Resuming from the step-3 checkpoint repeats steps 3..5 exactly: same data order, augmentation, points, state.
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copy(out / "model_0000003.pth", resumed_dir / "model_0000003.pth")
    (resumed_dir / "last_checkpoint").write_text("model_0000003.pth\n")
    cfg = with_overrides(load_train_config("tiny"), steps=6, batch_size=2, checkpoint_period=3, log_period=2,
                         keep_checkpoints=0)
    with open(tmp_path / "log.txt", "w") as log:
        result = train(SAN(load_preset("tiny")), FolderDataset(data), resumed_dir, cfg, tiny_vocab, resume=True,
                       export=False, log=log)
    assert result.steps == 6 and result.model_dir is None
    final = read_checkpoint(resumed_dir / "model_final.pth")["model"]
    for key, value in read_checkpoint(out / "model_final.pth")["model"].items():
        assert torch.equal(final[key], value), key
    assert "Resuming from" in (tmp_path / "log.txt").read_text()


def test_cli_reports_bad_input(tiny_vocab, tmp_path, capsys):
    code = train_main(["--config", "tiny", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"),
                       "--vocab", str(tiny_vocab)])
    assert code == 1
    assert capsys.readouterr().err.startswith(f"models.train: {tmp_path / 'nothing' / 'images'} is not a folder")


def test_forward_train_decodes_each_supervised_block_and_the_last_is_inference(tiny_san):
    images = random_images(2, 64, 64)
    text = torch.nn.functional.normalize(torch.randn(3, 32, generator=torch.Generator().manual_seed(0)), dim=-1)
    with torch.no_grad():
        outputs = tiny_san.forward_train(images, text, [2, 3])
        mask_logits, class_logits = tiny_san(images, text)
    assert [tuple(m.shape) for m, _ in outputs] == [(2, 8, 4, 4)] * 2
    assert [tuple(c.shape) for _, c in outputs] == [(2, 8, 4)] * 2
    assert torch.equal(outputs[1][0], mask_logits) and torch.equal(outputs[1][1], class_logits)
    assert not torch.equal(outputs[0][0], mask_logits)  # block 2's own decoding
