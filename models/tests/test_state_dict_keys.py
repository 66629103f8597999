"""The modules' parameter names and shapes are those of the official checkpoints, listed in ../shared."""
import re

import pytest

from models.san import SAN, load_preset
from models.san.checkpoint import IGNORED_KEYS

from .conftest import SHARED_REFERENCE, shared_file

# "key shape" lines; the lists also hold comments and a summary line, which are not entries.
ENTRY = re.compile(r"^(\S+) (\d+(?:x\d+)*|scalar)$")


def reference_lines(file_name):
    lines = shared_file(SHARED_REFERENCE / file_name).read_text(encoding="utf-8").splitlines()
    entries = [m.group(0) for m in map(ENTRY.match, lines) if m]
    return sorted(line for line in entries if line.split()[0] not in IGNORED_KEYS)


@pytest.mark.parametrize("variant, file_name", [
    ("vit_b_16", "san_vit_b_16.state_dict_keys.txt"),
    ("vit_l_14_336", "san_vit_large_14.state_dict_keys.txt"),
])
def test_keys_and_shapes_equal_the_reference_list(variant, file_name):
    expected = reference_lines(file_name)
    state = SAN(load_preset(variant)).state_dict()
    actual = sorted(f"{key} {'x'.join(map(str, value.shape)) or 'scalar'}" for key, value in state.items())
    assert len(expected) == {"vit_b_16": 441, "vit_l_14_336": 585}[variant]
    missing = [line for line in expected if line not in actual]
    extra = [line for line in actual if line not in expected]
    assert not missing and not extra, f"not in the model: {missing[:10]}; not in the reference: {extra[:10]}"
    assert actual == expected
