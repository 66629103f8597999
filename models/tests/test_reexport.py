"""python3 -m models.reexport brings a folder exported by older code up to the current code, same weights and outputs."""
import json
import shutil
import subprocess
import sys

import torch

from models.export import MANIFEST, REPO_ROOT, CAPABILITIES, check_model_dir

from .conftest import random_images


def test_reexport_keeps_the_weights_and_adds_the_capabilities(tiny_dir, tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_dir, folder)
    # As a folder written before capabilities existed.
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["capabilities"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    before = torch.jit.load(str(folder / "san.pt"))

    run = subprocess.run([sys.executable, "-m", "models.reexport", str(folder)], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert check_model_dir(folder) == []
    assert json.loads((folder / MANIFEST).read_text())["capabilities"] == CAPABILITIES
    after = torch.jit.load(str(folder / "san.pt"))
    image = random_images(1, 64, 64, seed=3)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(before(image), after(image)))
        # The new segment takes sizes as integer lists.
        embeds = torch.nn.functional.normalize(torch.randn(2, 32), dim=-1)
        out = after.segment(image.permute(0, 2, 3, 1).contiguous(), [[64, 64]], [[32, 32]], embeds, False, False)
    assert out[0]["labels"].shape == (32, 32)


def test_reexport_refuses_a_folder_without_a_known_configuration(tiny_dir, tmp_path):
    folder = tmp_path / "unknown"
    shutil.copytree(tiny_dir, folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["variant"] = "homemade"
    (folder / MANIFEST).write_text(json.dumps(manifest))
    run = subprocess.run([sys.executable, "-m", "models.reexport", str(folder)], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1 and "its configuration is unknown" in run.stderr
