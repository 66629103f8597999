"""`attention`: picked by the exporting PyTorch's version; the fused path equals the written-out one.

The fused cases run only on PyTorch >= 2.0 (skipped on Debian's 1.13); scripts/device/run-cuda-suite.sh runs this
file with the GPU machine's PyTorch, where they also run on CUDA in float16 and bfloat16.
"""
import pytest
import torch
import torch.nn.functional as F

from models.san import layers
from models.san.clip_visual import build_attn_mask

FUSED = pytest.mark.skipif(not layers.FUSED_ATTENTION, reason="scaled_dot_product_attention needs PyTorch >= 2.0")
# How far the fused kernels may land from the written-out path: float32 on the CPU differs only in the order of
# the scaling; on CUDA the tolerances are test/helpers/device.ts fixtureTolerance's for each dtype.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-2, torch.bfloat16: 8e-2}


def test_version_decides():
    for version in ["1.13.0a0", "1.13.1+cu117", "1.12.0", "0.4.1"]:
        assert not layers.fused_attention_supported(version), version
    for version in ["2.0.0", "2.1.2+cu121", "2.6.0a0+git1234", "10.0"]:
        assert layers.fused_attention_supported(version), version


def test_this_pytorch_picks_by_its_own_version():
    fused = layers.fused_attention_supported(str(torch.__version__))
    assert layers.FUSED_ATTENTION == fused == hasattr(F, "scaled_dot_product_attention")
    assert layers.attention is (layers.attention_fused if fused else layers.attention_written_out)


def test_export_carries_the_picked_operator():
    graph = str(torch.jit.script(layers.MultiheadSelfAttention(32, 4)).forward.inlined_graph)
    assert ("aten::scaled_dot_product_attention" in graph) == layers.FUSED_ATTENTION
    assert ("aten::softmax" in graph) != layers.FUSED_ATTENTION


@torch.no_grad()
def test_written_out_path_is_the_formula():
    torch.manual_seed(0)
    qkv = torch.randn(2, 7, 3 * 16)
    q, k, v = (t.reshape(2, 7, 4, 4).transpose(1, 2) for t in qkv.split(16, dim=-1))
    mask = torch.randn(2, 4, 7, 7)
    expected = torch.softmax(q @ k.transpose(-2, -1) / 2.0 + mask, dim=-1) @ v
    got = layers.attention_written_out(qkv, 4, mask)
    assert torch.equal(got, layers.attention_written_out(qkv, 4, mask))
    assert (got - expected.transpose(1, 2).reshape(2, 7, 16)).abs().max() < 1e-6


def masks(n: int, heads: int, q: int, patches: int, device: str, dtype: torch.dtype):
    """The masks SAN uses: none, the text tower's causal one, and the attention-bias one of the [SOS] blocks."""
    length = q + 1 + patches
    causal = torch.full((length, length), float("-inf"), device=device, dtype=dtype).triu_(1)
    bias = torch.randn(n, heads, q, patches, device=device, dtype=dtype) * 4
    return {"none": None, "causal": causal, "attn_bias": build_attn_mask(bias)}


def check_fused_equals_written_out(device: str, dtype: torch.dtype, fused_kernels_only: bool = False):
    """Both paths on the same inputs; with fused_kernels_only, the math fallback is off (CUDA), so a masked case
    passes only through a mask-capable fused kernel."""
    torch.manual_seed(0)
    n, heads, head_dim, q, patches = 2, 12, 64, 100, 1600  # ViT-B/16's heads, at 640x640's 40x40 patches
    qkv = torch.randn(n, q + 1 + patches, 3 * heads * head_dim, device=device, dtype=dtype)
    for name, mask in masks(n, heads, q, patches, device, dtype).items():
        reference = layers.attention_written_out(qkv.float(), heads, None if mask is None else mask.float())
        if fused_kernels_only:
            with torch.backends.cuda.sdp_kernel(enable_flash=True, enable_mem_efficient=True, enable_math=False):
                got = layers.attention_fused(qkv, heads, mask)
        else:
            got = layers.attention_fused(qkv, heads, mask)
        error = (got.float() - reference).abs().max().item()
        assert error < TOLERANCE[dtype], f"{device} {dtype} mask {name}: max error {error}"
        print(f"fused vs written-out, {device} {dtype} mask {name}: max |error| {error:.2e}")


@FUSED
@torch.no_grad()
def test_fused_equals_written_out_on_the_cpu():
    check_fused_equals_written_out("cpu", torch.float32)


@FUSED
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@torch.no_grad()
def test_fused_equals_written_out_on_cuda(dtype):
    if dtype == torch.float32:
        torch.backends.cuda.matmul.allow_tf32 = False
    check_fused_equals_written_out("cuda", dtype, fused_kernels_only=dtype != torch.float32)

