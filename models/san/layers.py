"""Building blocks shared by the CLIP towers, the side adapter network and its decoder.

Every sequence is batch-first, (N, L, C); the reference runs CLIP sequence-first, which gives the same numbers.
"""
from collections import OrderedDict
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def fused_attention_supported(version: str) -> bool:
    """Whether a PyTorch of this version string ("1.13.0a0", "2.1.2+cu121") has F.scaled_dot_product_attention.

    It arrived in 2.0. A TorchScript export that uses it loads only in LibTorch 2.0 or newer, so the exporting
    PyTorch's own version is what decides.
    """
    release = version.split("+")[0].split(".")
    major = int("".join(c for c in release[0] if c.isdigit()) or 0)
    minor = int("".join(c for c in release[1] if c.isdigit()) or 0) if len(release) > 1 else 0
    return (major, minor) >= (2, 0)


def _split_heads(qkv: Tensor, num_heads: int) -> Tuple[Tensor, Tensor, Tensor]:
    """q, k, v as (N, heads, L, d) from a packed (N, L, 3C) projection laid out q | k | v."""
    n, length, width3 = qkv.shape
    width = width3 // 3
    head_dim = width // num_heads
    # Split before reshaping: indexing one permuted (3, N, heads, L, d) view three times makes autograd scatter
    # each gradient into its own zero-filled copy of the whole projection: a fifth of the attention's fwd+bwd time.
    q, k, v = [t.reshape(n, length, num_heads, head_dim).transpose(1, 2) for t in qkv.split(width, dim=-1)]
    return q, k, v


def _merge_heads(x: Tensor) -> Tensor:
    """(N, heads, L, d) back to (N, L, heads·d)."""
    n, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * head_dim)


def attention_written_out(qkv: Tensor, num_heads: int, attn_mask: Optional[Tensor] = None) -> Tensor:
    """softmax(q·kᵀ/√d + attn_mask)·v from a packed (N, L, 3C) projection laid out q | k | v; returns (N, L, C).

    attn_mask is additive and broadcasts to (N, heads, L, L). Basic operators only, so it exports for every
    LibTorch; this is the exact path the reference cases were written with.
    """
    q, k, v = _split_heads(qkv, num_heads)
    scores = (q.float() * q.shape[-1] ** -0.5) @ k.float().transpose(-2, -1)
    if attn_mask is not None:
        scores = scores + attn_mask
    # softmax in float32 (a no-op for float32 models): bfloat16's 8-bit mantissa is too coarse for it.
    return _merge_heads(scores.float().softmax(dim=-1).to(v.dtype) @ v)


def attention_fused(qkv: Tensor, num_heads: int, attn_mask: Optional[Tensor] = None) -> Tensor:
    """The same as attention_written_out through F.scaled_dot_product_attention (PyTorch 2.0 or newer).

    On CUDA it runs a flash or memory-efficient kernel instead of materialising the (N, heads, L, L) scores; the
    attention-bias and causal masks are additive float masks, which the memory-efficient kernel takes (flash
    takes none). Only compiled where fused_attention_supported: on 1.13 the name below is never looked up.
    """
    q, k, v = _split_heads(qkv, num_heads)
    return _merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask))


# Picked once, at import: TorchScript compiles whichever function `attention` names when a module is scripted, so an
# export from PyTorch >= 2.0 carries the fused operator and one from 1.13 the written-out one.
FUSED_ATTENTION = fused_attention_supported(str(torch.__version__))
attention = attention_fused if FUSED_ATTENTION else attention_written_out


def resize_grid_embedding(embed: Tensor, src: Tuple[int, int], dst: Tuple[int, int]) -> Tensor:
    """Bicubic resize (align_corners False, no antialias) of row-major grid embeddings (src_h·src_w, C) to dst.

    Done in float32 and cast back, so half-precision runtimes need no half bicubic kernel.
    """
    if src[0] == dst[0] and src[1] == dst[1]:
        return embed
    channels = embed.shape[-1]
    grid = embed.float().reshape(1, src[0], src[1], channels).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=[dst[0], dst[1]], mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(dst[0] * dst[1], channels).to(embed.dtype)


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters) computed in float32 and cast back to the input's dtype.

    In a float32 model this is nn.LayerNorm exactly; in a model cast to bfloat16 or float16 the normalisation keeps
    float32's precision while the matrix products around it run in the low precision.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(),
                            self.eps).to(x.dtype)


class Linear(nn.Linear):
    """nn.Linear (same parameters) that casts its input to the weight's dtype: its product runs in the model's
    dtype (bfloat16 in a cast model) while the residual streams around it stay float32. Exactly nn.Linear in a
    float32 model."""

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias)


class Conv2d(nn.Conv2d):
    """nn.Conv2d (same parameters) that casts its input to the weight's dtype, as Linear."""

    def forward(self, x: Tensor) -> Tensor:
        return self._conv_forward(x.to(self.weight.dtype), self.weight, self.bias)


class QuickGELU(nn.Module):
    """OpenAI CLIP's activation, x·σ(1.702x)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


class MultiheadSelfAttention(nn.Module):
    """Self-attention with nn.MultiheadAttention's parameter names (the CLIP checkpoint keys).

    Not nn.MultiheadAttention, whose export differs between PyTorch versions: `attention` decides, by the
    exporting PyTorch's version, between basic operators (LibTorch 1.13) and scaled_dot_product_attention (2.0+).
    """

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.num_heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * width))
        self.out_proj = Linear(width, width)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        qkv = F.linear(x.to(self.in_proj_weight.dtype), self.in_proj_weight, self.in_proj_bias)
        return self.out_proj(attention(qkv, self.num_heads, attn_mask))


class ResidualAttentionBlock(nn.Module):
    """open_clip's pre-norm CLIP block (QuickGELU, LayerNorm eps 1e-5, no layer scale)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.ln_1 = LayerNorm(width)
        self.attn = MultiheadSelfAttention(width, heads)
        self.ln_2 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", Linear(width, hidden)),
            ("gelu", QuickGELU()),
            ("c_proj", Linear(hidden, width)),
        ]))

    def forward(self, x: Tensor, attn_mask: Optional[Tensor] = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask)
        return x + self.mlp(self.ln_2(x))


def clip_blocks(width: int, heads: int, count: int) -> nn.ModuleList:
    return nn.ModuleList([ResidualAttentionBlock(width, heads) for _ in range(count)])


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an (N, C, H, W) map (mean and biased variance over C), as SAN's fusion."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # In float32, as LayerNorm above.
        dtype = x.dtype
        x = x.float()
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return (self.weight.float()[:, None, None] * x + self.bias.float()[:, None, None]).to(dtype)


def conv1x1(in_channels: int, out_channels: int) -> nn.Module:
    return Conv2d(in_channels, out_channels, kernel_size=1)


class MLP(nn.Module):
    """num_layers affine layers with ReLU between them and none after the last; `affine` builds each layer."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
                 affine: Callable[[int, int], nn.Module] = Linear):
        super().__init__()
        dims: List[int] = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList([affine(a, b) for a, b in zip(dims[:-1], dims[1:])])
        self.num_layers = num_layers

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x


class AddFusion(nn.Module):
    """Adds a CLIP feature map to the side network's patch tokens.

    The map goes through a channels-first LayerNorm and a 1×1 conv to the side width, is resized bilinearly to
    the side grid and added token by token; the query tokens are not touched (the caller passes patches only).
    """

    def __init__(self, clip_width: int, side_width: int):
        super().__init__()
        self.input_proj = nn.Sequential(LayerNorm2d(clip_width), conv1x1(clip_width, side_width))
        nn.init.kaiming_uniform_(self.input_proj[1].weight, a=1)  # c2_xavier_fill, as the reference
        nn.init.zeros_(self.input_proj[1].bias)

    def forward(self, patches: Tensor, clip_map: Tensor, grid: Tuple[int, int]) -> Tensor:
        y = F.interpolate(self.input_proj(clip_map), size=[grid[0], grid[1]], mode="bilinear", align_corners=False)
        return patches + y.flatten(2).transpose(1, 2)
