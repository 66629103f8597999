"""The CLIP ViT as SAN splits it: FeatureExtractor (the first blocks) and RecWithAttnbiasHead (the rest).

FeatureExtractor turns the CLIP input into token sequences at the layers the side network fuses; the
recognition head re-runs the last blocks with [SOS] tokens whose attention is steered by the side network's bias.
"""
from typing import List, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import ClipVisionCfg
from .layers import Conv2d, LayerNorm, clip_blocks, resize_grid_embedding


def conv_stem(channels: List[int]) -> nn.Sequential:
    """Stride-2 3×3 convolutions, each followed by BatchNorm and GELU ("early convolutions", Xiao et al. 2021):
    a ViT trained from scratch on little data learns shapes far faster with them than from linear patches alone.
    The BatchNorm is trained with CLIP and then stays in eval mode, a per-channel affine map, so that the zero
    padding of a canvas reaches only the neighbouring patches, as with the plain patch embedding. No layers (an
    empty Sequential) for CLIP's own checkpoints."""
    layers: List[nn.Module] = []
    for c_in, c_out in zip([3] + channels[:-1], channels):
        layers += [Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                   nn.GELU()]
    return nn.Sequential(*layers)


class FeatureExtractor(nn.Module):
    """conv_stem (usually empty), conv1, class token, resized positional embedding, ln_pre and the first `feature_last_layer` blocks.

    Layer 0 is the sequence after ln_pre and layer k the output of block k. forward returns the (N, 1 + h·w, C)
    sequences of `output_layers` (increasing), and the patch grid (h, w).
    """

    def __init__(self, cfg: ClipVisionCfg, output_layers: List[int]):
        super().__init__()
        scale = cfg.width ** -0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(cfg.width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(cfg.grid_size ** 2 + 1, cfg.width))
        self.conv_stem = conv_stem(cfg.stem_channels)
        kernel = cfg.patch_size // 2 ** len(cfg.stem_channels)
        in_channels = cfg.stem_channels[-1] if cfg.stem_channels else 3
        self.conv1 = Conv2d(in_channels, cfg.width, kernel_size=kernel, stride=kernel, bias=False)
        self.ln_pre = LayerNorm(cfg.width)
        self.resblocks = clip_blocks(cfg.width, cfg.heads, cfg.feature_last_layer)
        self.grid_size: Tuple[int, int] = (cfg.grid_size, cfg.grid_size)
        self.output_layers: List[int] = output_layers

    def forward(self, image: Tensor) -> Tuple[List[Tensor], Tuple[int, int]]:
        # The token stream is float32 whatever the model's dtype; only the products run in it (see layers.Linear).
        x = self.conv1(self.conv_stem(image)).float()
        n, width, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(n, 1, width)
        x = torch.cat([cls, x], dim=1)
        pos = self.positional_embedding.to(x.dtype)
        pos = torch.cat([pos[:1], resize_grid_embedding(pos[1:], self.grid_size, (h, w))])
        x = self.ln_pre(x + pos)

        features: List[Tensor] = []
        if 0 in self.output_layers:
            features.append(x)
        for i, block in enumerate(self.resblocks):
            x = block(x)
            if i + 1 in self.output_layers:
                features.append(x)
        return features, (h, w)


def build_attn_mask(attn_bias: Tensor, blocked: float = -100.0) -> Tensor:
    """Additive mask (N, heads, S, S) over [Q SOS tokens, CLS, h·w patches], S = Q + 1 + h·w.

    attn_bias is the pooled side-network bias (N, heads, Q, h·w). An SOS token attends to itself and, through
    the bias, to the patches; never to the other SOS tokens or to CLS. CLS and patches attend among themselves
    exactly as in plain CLIP and never see an SOS token. Blocked pairs get `blocked`, -100 as in the reference
    (not -inf).
    """
    n, heads, q, patches = attn_bias.shape
    sos_to_sos = attn_bias.new_full((q, q), blocked).fill_diagonal_(0.0).expand(n, heads, q, q)
    sos_to_cls = attn_bias.new_full((n, heads, q, 1), blocked)
    sos_rows = torch.cat([sos_to_sos, sos_to_cls, attn_bias], dim=-1)
    clip_rows = torch.cat([attn_bias.new_full((1 + patches, q), blocked),
                           attn_bias.new_zeros((1 + patches, 1 + patches))], dim=-1)
    return torch.cat([sos_rows, clip_rows.expand(n, heads, 1 + patches, q + 1 + patches)], dim=2)


class RecWithAttnbiasHead(nn.Module):
    """The last CLIP blocks, ln_post and proj, run over [SOS × Q, CLS, patches] with the attention bias.

    The SOS tokens are copies of the class token at the extractor's last layer; the same bias is used in every
    block. Returns unit mask embeddings (N, Q, output_dim).
    """

    def __init__(self, cfg: ClipVisionCfg, num_queries: int):
        super().__init__()
        self.resblocks = clip_blocks(cfg.width, cfg.heads, cfg.layers - cfg.feature_last_layer)
        self.ln_post = LayerNorm(cfg.width)
        self.proj = nn.Parameter(cfg.width ** -0.5 * torch.randn(cfg.width, cfg.output_dim))
        self.num_queries = num_queries
        self.num_heads = cfg.heads

    def forward(self, tokens: Tensor, attn_bias: Tensor, grid: Tuple[int, int]) -> Tensor:
        """tokens: (N, 1 + h·w, C) at the extractor's last layer; attn_bias: (N, heads, Q, H, W) on the side grid."""
        n, heads, q, side_h, side_w = attn_bias.shape
        if heads != self.num_heads or q != self.num_queries:
            raise ValueError("attn_bias must have shape (N, " + str(self.num_heads) + ", "
                             + str(self.num_queries) + ", H, W), got " + str(attn_bias.shape))
        # Max pooling from the side grid to the CLIP grid keeps a patch reachable if any side cell allows it.
        pooled = F.adaptive_max_pool2d(attn_bias.reshape(n, heads * q, side_h, side_w), [grid[0], grid[1]])
        attn_mask = build_attn_mask(pooled.reshape(n, heads, q, grid[0] * grid[1]))

        sos = tokens[:, :1].expand(n, q, tokens.shape[-1])
        x = torch.cat([sos, tokens], dim=1)
        for block in self.resblocks:
            x = block(x, attn_mask)
        x = self.ln_post(x[:, :q]).to(self.proj.dtype) @ self.proj
        return F.normalize(x.float(), dim=-1)  # float32 whatever the model's dtype: classification reads it
