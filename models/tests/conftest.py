"""Shared fixtures: the ../shared reference material (skipped when absent) and a tiny model built once."""
from pathlib import Path

import pytest
import torch

from models.make_tiny import make_tiny
from models.san import SAN, load_preset

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_REFERENCE = REPO_ROOT.parent / "shared" / "reference"
CLIP_VOCAB = SHARED_REFERENCE / "clip" / "bpe_simple_vocab_16e6.txt.gz"


def shared_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs the reference material in <repo>/../shared")
    return path


@pytest.fixture(scope="session")
def clip_vocab() -> Path:
    return shared_file(CLIP_VOCAB)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A folder written by models.make_tiny (seed 0)."""
    out = tmp_path_factory.mktemp("tiny")
    make_tiny(out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_vocab(tiny_dir) -> Path:
    return tiny_dir / "bpe_vocab.txt.gz"


@pytest.fixture()
def tiny_san() -> SAN:
    torch.manual_seed(0)
    return SAN(load_preset("tiny")).eval()


def random_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=generator, dtype=torch.uint8)
