"""The architecture templates in assets/architectures/ are current: what models.export_architecture writes now."""
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from models.export import FILES, REPO_ROOT
from models.export_architecture import ARCHITECTURE, DEFAULT_OUT, SHIPPED_VARIANTS


MANGLE = re.compile(rb"___torch_mangle_\d+")


def code_files(module_file: Path):
    """The TorchScript source inside a saved module (not its debug pickles, which hold source positions), as sorted
    lines, with the class-name mangling numbers (which count the classes a process scripted before) blanked: the
    order of a class's constants varies from process to process (string hashing), so only the lines are compared,
    not their order."""
    with zipfile.ZipFile(module_file) as archive:
        return sorted(MANGLE.sub(b"___torch_mangle", line)
                      for name in archive.namelist()
                      if name.split("/", 1)[1].startswith("code/") and name.endswith(".py")
                      for line in [name.split("/", 1)[1].encode(), *archive.read(name).splitlines()])


# ViT-L/14's template takes a minute more to write; test/import/import-full.test.ts binds a fresh export's weights
# into it and compares outputs, which fails if it is stale.
def test_committed_templates_are_current(tmp_path):
    """Written in a fresh process, as the committed files were: what TorchScript emits for a module depends on what
    the process compiled before (other tests script other models)."""
    variant = "vit_b_16"
    run = subprocess.run([sys.executable, "-m", "models.export_architecture", "--variant", variant, "--out",
                          str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    committed_dir, fresh_dir = DEFAULT_OUT / variant, tmp_path / variant
    assert (committed_dir / ARCHITECTURE).read_text() == (fresh_dir / ARCHITECTURE).read_text(), (
        f"assets/architectures/{variant} is stale: run python3 -m models.export_architecture")
    for name in (FILES["san"], FILES["text_encoder"]):
        assert code_files(committed_dir / name) == code_files(fresh_dir / name), f"{variant}/{name} is stale"


@pytest.mark.parametrize("variant", SHIPPED_VARIANTS)
def test_templates_hold_shapes_not_weights(variant):
    architecture = json.loads((DEFAULT_OUT / variant / ARCHITECTURE).read_text())
    for name, bindings in architecture["modules"].items():
        path = DEFAULT_OUT / variant / name
        assert path.stat().st_size < 1_000_000
        module = torch.jit.load(str(path))
        tensors = {**dict(module.named_parameters()), **dict(module.named_buffers())}
        assert sorted(tensors) == sorted(bindings)
        for key, tensor in tensors.items():
            assert list(tensor.shape) == bindings[key]["shape"]
            assert tensor.storage().size() == 1 and not tensor.any()


def test_every_checkpoint_key_is_bound_once_with_the_exporters_sharing():
    architecture = json.loads((DEFAULT_OUT / "vit_b_16" / ARCHITECTURE).read_text())
    san, text = architecture["modules"][FILES["san"]], architecture["modules"][FILES["text_encoder"]]
    assert san["bg_embed"]["key"] == text["bg_embed"]["key"] == "ov_classifier.bg_embed"
    assert san["clip_rec_head.proj"]["key"] == "clip_rec_head.proj"
    assert all(entry["key"] == f"ov_classifier.{name}" for name, entry in text.items())
    assert architecture["manifest"]["logit_scale"] is None and architecture["manifest"]["text"]["vocab_size"] == 49408
