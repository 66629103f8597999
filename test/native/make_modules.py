# SPDX-License-Identifier: Apache-2.0
"""Writes the small TorchScript modules that test the native addon, plus their reference outputs.

    /usr/bin/python3 test/native/make_modules.py --out test-models/native

Everything is seeded and takes a few seconds. `cases.json` has the same form as the SAN exporter's
`reference/cases.json` (one entry per call: module, method, input and output tensors as raw little-endian `.bin`
files), so one jest reader checks both. The modules know nothing about SAN: each one exercises one feature of the
runtime (a dtype, a result shape, argument conversion, a slow call, a failure).
"""
import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

# Tensor type names used by the addon (lib/tensor.ts) and the torch dtype each one maps to.
TENSOR_TYPES = {
    'float32': torch.float32,
    'float64': torch.float64,
    'float16': torch.float16,
    'bfloat16': torch.bfloat16,
    'int8': torch.int8,
    'uint8': torch.uint8,
    'int16': torch.int16,
    'int32': torch.int32,
    'int64': torch.int64,
    'bool': torch.bool,
}
TYPE_OF_DTYPE = {dtype: name for name, dtype in TENSOR_TYPES.items()}


class Identity(nn.Module):
    """Returns its input: the round trip of every tensor type, and an output that aliases an input."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Affine(nn.Module):
    """y = x W^T + b with seeded weights: float32 numbers that must match Python's, and shape/dtype failures."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class Conv(nn.Module):
    """A 3x3 convolution: needs a 3-D or 4-D float input, so it rejects a wrong rank or channel count."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Ops(nn.Module):
    """Several exported methods covering argument and result conversion."""

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, List[Tensor]]:
        return x * 2, x.sum(), [x + 1, x.t()]

    @torch.jit.export
    def as_dict(self, x: Tensor) -> Dict[str, Tensor]:
        return {'double': x * 2, 'negated': -x}

    @torch.jit.export
    def scalars(self, x: Tensor) -> Tuple[int, float, bool, Optional[Tensor]]:
        return x.numel(), float(x.sum()), bool(x.sum() > 0), None

    @torch.jit.export
    def scale(self, x: Tensor, factor: float, offset: int, negate: bool, bias: Optional[Tensor]) -> Tensor:
        y = x * factor + offset
        if negate:
            y = -y
        if bias is not None:
            y = y + bias
        return y

    @torch.jit.export
    def label(self, name: str, count: int) -> str:
        return name + '#' + str(count)

    @torch.jit.export
    def pair(self, xs: Tuple[Tensor, float]) -> Tensor:
        return xs[0] * xs[1]

    @torch.jit.export
    def stack(self, xs: List[Tensor]) -> Tensor:
        return torch.stack(xs)

    @torch.jit.export
    def first_row(self, x: Tensor) -> Tensor:
        return x[0]

    @torch.jit.export
    def fail(self, x: Tensor) -> Tensor:
        if bool(x.sum() > 0):
            raise RuntimeError('positive input refused')
        return x


class Slow(nn.Module):
    """`iters` rounds of a 256x256 matrix product: a call long enough to watch the event loop during it."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(256, 256) / 16)

    def forward(self, x: Tensor, iters: int) -> Tensor:
        for _ in range(iters):
            x = torch.tanh(x @ self.weight)
        return x


def write_tensor(folder: Path, name: str, t: Tensor) -> dict:
    t = t.detach().contiguous().cpu()
    bits = t.view(torch.int16) if t.dtype in (torch.float16, torch.bfloat16) else t
    (folder / name).write_bytes(bits.numpy().tobytes())
    return {'type': TYPE_OF_DTYPE[t.dtype], 'dims': list(t.shape), 'file': name}


def flatten(value) -> List[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in flatten(v)]
    return [t for v in value for t in flatten(v)]


def sample(type_name: str, dims: List[int], gen: torch.Generator) -> Tensor:
    dtype = TENSOR_TYPES[type_name]
    if dtype == torch.bool:
        return torch.rand(dims, generator=gen) > 0.5
    if dtype.is_floating_point:
        return torch.randn(dims, generator=gen).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(info.min, info.max, dims, generator=gen, dtype=torch.int64).to(dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, required=True, help='folder to write (created if missing)')
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)

    modules = {'identity.pt': Identity(), 'affine.pt': Affine(), 'conv.pt': Conv(), 'ops.pt': Ops(), 'slow.pt': Slow()}
    scripted = {}
    for name, module in modules.items():
        scripted[name] = torch.jit.script(module.eval())
        scripted[name].save(str(out / name))
    (out / 'not_torchscript.pt').write_text('this is a text file, not a TorchScript archive\n')

    calls = [(f'{t} round trip', 'identity.pt', 'forward', [sample(t, [2, 3], gen)]) for t in TENSOR_TYPES]
    calls += [
        ('float32 linear layer', 'affine.pt', 'forward', [sample('float32', [5, 4], gen)]),
        ('float32 convolution', 'conv.pt', 'forward', [sample('float32', [1, 3, 8, 8], gen)]),
        ('nested tuple and list, a scalar, a transposed view', 'ops.pt', 'forward', [sample('float32', [2, 3], gen)]),
        ('dict of int32 tensors', 'ops.pt', 'as_dict', [sample('int32', [4], gen)]),
    ]
    cases = []
    with torch.no_grad():
        for index, (name, module, method, inputs) in enumerate(calls):
            outputs = flatten(getattr(scripted[module], method)(*inputs))
            cases.append({
                'name': name,
                'module': module,
                'method': method,
                'inputs': [write_tensor(out, f'case{index}_in{i}.bin', t) for i, t in enumerate(inputs)],
                'outputs': [write_tensor(out, f'case{index}_out{i}.bin', t) for i, t in enumerate(outputs)],
            })
    (out / 'cases.json').write_text(json.dumps(cases, indent=1) + '\n')
    print(f'wrote {len(modules)} modules and {len(cases)} cases to {out}')


if __name__ == '__main__':
    main()
