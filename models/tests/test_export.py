"""python3 -m models.export writes a complete, loadable model folder from an official-format checkpoint."""
import json
import subprocess
import sys
import zipfile

import torch

from models.export import FILES, MANIFEST, REPO_ROOT, check_model_dir

from .conftest import random_images
from .test_tokenizer import write_merges


def run_export(*args):
    return subprocess.run([sys.executable, "-m", "models.export", *map(str, args)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300)


def test_export_cli_writes_the_model_folder(tiny_san, tiny_vocab, tmp_path):
    checkpoint = tmp_path / "san_tiny.pth"
    torch.save({"model": {"criterion.empty_weight": torch.ones(172), **tiny_san.state_dict()}, "iteration": 9},
               checkpoint)
    out = tmp_path / "model"
    run = run_export("--checkpoint", checkpoint, "--out", out, "--vocab", tiny_vocab)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"Exported tiny to {out}: san.pt, text_encoder.pt, bpe_vocab.txt.gz, manifest.json"
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES.values(), MANIFEST])
    assert check_model_dir(out) == []

    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["variant"] == "tiny" and manifest["torch_version"] == torch.__version__
    assert manifest["text"]["vocab_size"] == 768 and len(manifest["text"]["templates"]) == 14
    assert abs(manifest["logit_scale"] - tiny_san.ov_classifier.logit_scale.exp().item()) < 1e-6
    assert (out / "bpe_vocab.txt.gz").read_bytes() == tiny_vocab.read_bytes()

    san = torch.jit.load(str(out / "san.pt"))
    image = random_images(1, 50, 70)
    text_embeds = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    with torch.no_grad():
        mask_logits, mask_embeds = san(image)
        for exported, eager in zip((mask_logits, san.classify(mask_embeds, text_embeds)), tiny_san(image, text_embeds)):
            assert torch.equal(exported, eager)


def test_exports_hold_no_device(tiny_dir):
    for name in (FILES["san"], FILES["text_encoder"]):
        with zipfile.ZipFile(tiny_dir / name) as archive:
            code = "".join(archive.read(entry).decode() for entry in archive.namelist() if entry.endswith(".py"))
        assert code and '"cpu"' not in code and '"cuda"' not in code


def test_export_cli_reports_a_bad_checkpoint(tmp_path, tiny_vocab):
    (tmp_path / "broken.pth").write_bytes(b"\x00" * 100)
    run = run_export("--checkpoint", tmp_path / "broken.pth", "--out", tmp_path / "out", "--vocab", tiny_vocab)
    assert run.returncode == 1
    assert run.stderr.startswith(f"models.export: Checkpoint {tmp_path / 'broken.pth'} cannot be read as a PyTorch file")
    assert not (tmp_path / "out").exists()


def test_export_cli_refuses_a_vocabulary_of_another_size(tiny_san, tmp_path):
    torch.save(tiny_san.state_dict(), tmp_path / "san_tiny.pth")
    vocab = write_merges(tmp_path / "small.txt.gz", ["c a", "ca t</w>"])
    run = run_export("--checkpoint", tmp_path / "san_tiny.pth", "--out", tmp_path / "out", "--vocab", vocab)
    assert run.returncode == 1
    assert f"{vocab} gives 516 tokens but the tiny text encoder has 768" in run.stderr


def test_every_manifest_field_is_documented(tiny_dir):
    manifest = json.loads((tiny_dir / MANIFEST).read_text())
    fields = [f"{key}.{sub}" if isinstance(value, dict) else key
              for key, value in manifest.items() for sub in (value if isinstance(value, dict) else [None])]
    docs = (REPO_ROOT / "docs" / "models.md").read_text(encoding="utf-8")
    assert [field for field in fields if f"`{field}`" not in docs] == []
