"""make_tiny writes a small tiny model folder whose reference cases the exported modules reproduce."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from models.export import REPO_ROOT, check_model_dir
from models.make_tiny import make_tiny
from models.san.text import class_embeddings
from models.san.tokenizer import SimpleTokenizer, tokenize

NUMPY_DTYPES = {"uint8": np.uint8, "float32": "<f4", "int64": "<i8", "int32": "<i4"}
TORCH_DTYPES = {"uint8": torch.uint8, "float32": torch.float32, "int64": torch.int64, "int32": torch.int32}
SAN_METHODS = {"forward", "forward_with_sizes", "classify", "resize_mask_logits", "semantic_inference", "postprocess"}


def read_value(directory, entry):
    if entry["type"] == "int":
        return entry["value"]
    data = np.frombuffer((directory / entry["file"]).read_bytes(), dtype=NUMPY_DTYPES[entry["type"]])
    return torch.from_numpy(data.astype(data.dtype.newbyteorder("="))).reshape(entry["dims"])


def test_folder_is_small_and_sound(tiny_dir):
    size = sum(p.stat().st_size for p in tiny_dir.rglob("*") if p.is_file())
    assert size < 4 * 2 ** 20
    assert check_model_dir(tiny_dir) == []


@torch.no_grad()
def test_reference_cases_are_reproduced_by_the_exports(tiny_dir):
    reference = tiny_dir / "reference"
    cases = json.loads((reference / "cases.json").read_text())
    modules = {name: torch.jit.load(str(tiny_dir / name)) for name in ("san.pt", "text_encoder.pt")}
    assert {c["method"] for c in cases if c["module"] == "san.pt"} == SAN_METHODS
    assert {c["method"] for c in cases if c["module"] == "text_encoder.pt"} == {"forward"}
    forward = next(c for c in cases if c["method"] == "forward" and c["module"] == "san.pt")
    assert forward["inputs"][0] == {"type": "uint8", "dims": [1, 3, 72, 100], "file": "00_forward.in0.bin"}

    for case in cases:
        inputs = [read_value(reference, entry) for entry in case["inputs"]]
        outputs = getattr(modules[case["module"]], case["method"])(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        assert len(outputs) == len(case["outputs"]), case["name"]
        for actual, entry in zip(outputs, case["outputs"]):
            expected = read_value(reference, entry)
            assert actual.dtype == TORCH_DTYPES[entry["type"]] and list(actual.shape) == entry["dims"]
            assert (actual.double() - expected.double()).abs().max() <= 1e-6, case["name"]


@torch.no_grad()
def test_tokenizer_and_prompt_fixtures(tiny_dir):
    reference = tiny_dir / "reference"
    tokenizer = SimpleTokenizer(tiny_dir / "bpe_vocab.txt.gz")
    rows = json.loads((reference / "tokenizer.json").read_text())
    assert len(rows) >= 8 and all(len(row["ids"]) == 77 for row in rows)
    assert tokenize(tokenizer, [row["text"] for row in rows]).tolist() == [row["ids"] for row in rows]
    assert rows[-1]["ids"][-1] == tokenizer.eot_token  # the long text is truncated with the end token last

    ensemble = json.loads((reference / "prompt_ensemble.json").read_text())
    text_encoder = torch.jit.load(str(tiny_dir / "text_encoder.pt"))
    expected = class_embeddings(text_encoder, tokenizer, ensemble["class_names"], ensemble["templates"])
    assert torch.equal(read_value(reference, ensemble["embeddings"]), expected)


def test_same_seed_same_model_other_seed_other_model(tiny_dir, tmp_path):
    run = subprocess.run([sys.executable, "-m", "models.make_tiny", "--out", str(tmp_path / "again"), "--seed", "0"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    again = tmp_path / "again" / "reference"
    for path in sorted((tiny_dir / "reference").iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    assert (tmp_path / "again" / "bpe_vocab.txt.gz").read_bytes() == (tiny_dir / "bpe_vocab.txt.gz").read_bytes()

    make_tiny(tmp_path / "other", seed=1)
    first = torch.jit.load(str(tiny_dir / "san.pt")).state_dict()
    other = torch.jit.load(str(tmp_path / "other" / "san.pt")).state_dict()
    assert not torch.equal(first["bg_embed"], other["bg_embed"])


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-5), (torch.bfloat16, 0.1)])
@torch.no_grad()
def test_exports_follow_the_dtype_they_are_cast_to(tiny_dir, dtype, atol):
    """A runtime may cast the modules (bfloat16, or half precision on CUDA): the products run in that dtype, and the
    outputs (mask logits and embeddings, class logits, scores) are float32 whatever it is (mixed precision)."""
    image = torch.randint(0, 256, (1, 3, 72, 100), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ids = tokenize(SimpleTokenizer(tiny_dir / "bpe_vocab.txt.gz"), ["a photo of a cat.", "sky"])
    results = {}
    for run_dtype in (torch.float32, dtype):
        san = torch.jit.load(str(tiny_dir / "san.pt")).to(run_dtype)
        text = torch.jit.load(str(tiny_dir / "text_encoder.pt")).to(run_dtype)
        mask_logits, mask_embeds = san(image)
        class_logits = san.classify(mask_embeds, text(ids))
        scores, labels = san.postprocess(class_logits, mask_logits, 72, 100, 36, 50)
        results[run_dtype] = (mask_logits, mask_embeds, class_logits, scores)
        assert all(t.dtype == torch.float32 for t in results[run_dtype]) and labels.dtype == torch.int64
    for low, high in zip(results[dtype], results[torch.float32]):
        assert (low.double() - high.double()).abs().max() <= atol


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: half precision kernels exist only there")
@torch.no_grad()
def test_exports_run_in_half_precision_on_cuda(tiny_dir):
    san = torch.jit.load(str(tiny_dir / "san.pt"), map_location="cuda").half()
    mask_logits, mask_embeds = san(torch.randint(0, 256, (1, 3, 72, 100), dtype=torch.uint8, device="cuda"))
    assert mask_logits.dtype == torch.float32 and mask_embeds.device.type == "cuda"  # mixed precision
    assert torch.isfinite(mask_logits).all()
