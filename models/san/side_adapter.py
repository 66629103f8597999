"""The side adapter network: a small ViT with mask queries that reads CLIP features and predicts masks and biases.

Its ViT has timm 0.6's parameter names (the checkpoint keys) without class token, final norm or head.
"""
from typing import List, Tuple

import torch
from torch import Tensor, nn

from .config import DecoderCfg, SideAdapterCfg
from .layers import AddFusion, Conv2d, LayerNorm, Linear, attention, resize_grid_embedding
from .mask_decoder import MLPMaskDecoder


class PatchEmbed(nn.Module):
    def __init__(self, width: int, patch_size: int):
        super().__init__()
        self.proj = Conv2d(3, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, image: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        x = self.proj(image)
        return x.flatten(2).transpose(1, 2), (x.shape[2], x.shape[3])


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.num_heads = heads
        self.qkv = Linear(width, 3 * width)
        self.proj = Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(attention(self.qkv(x), self.num_heads))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden, width)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """timm's pre-norm ViT block: LayerNorm eps 1e-6, exact GELU."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = LayerNorm(width, eps=1e-6)
        self.mlp = Mlp(width, int(width * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SideViT(nn.Module):
    """The parts of the side ViT that hold weights: patch embedding, positional embedding and blocks."""

    def __init__(self, cfg: SideAdapterCfg):
        super().__init__()
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, cfg.grid_size ** 2, cfg.width))
        self.patch_embed = PatchEmbed(cfg.width, cfg.patch_size)
        self.blocks = nn.ModuleList([Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.grid_size: Tuple[int, int] = (cfg.grid_size, cfg.grid_size)


class SideAdapterNetwork(nn.Module):
    """Side ViT over [queries, patches] with CLIP features added to the patches at the fusion layers.

    The positional embedding (queries included) is added before every block, not only the first, as in the
    reference. forward returns mask logits (N, Q, h, w) at 1 / patch_size and the attention bias
    (N, heads, Q, h, w), both decoded from the last block; forward_features gives the undecoded tokens of any
    blocks, for training.
    """

    def __init__(self, cfg: SideAdapterCfg, clip_width: int, clip_heads: int, decoder: DecoderCfg):
        super().__init__()
        self.query_embed = nn.Parameter(0.02 * torch.randn(1, cfg.num_queries, cfg.width))
        self.query_pos_embed = nn.Parameter(0.02 * torch.randn(1, cfg.num_queries, cfg.width))
        self.vit_model = SideViT(cfg)
        # Keyed by the side layer they feed; the k-th entry reads the k-th CLIP feature passed to forward.
        self.fusion_layers = nn.ModuleDict({
            f"layer_{side_layer}": AddFusion(clip_width, cfg.width) for _, side_layer in cfg.fusion_map
        })
        self.fusion_side_layers: List[int] = [side_layer for _, side_layer in cfg.fusion_map]
        self.mask_decoder = MLPMaskDecoder(cfg.width, clip_heads, decoder)
        self.num_queries = cfg.num_queries

    def forward(self, image: Tensor, clip_features: List[Tensor], clip_grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
        """image: the padded, normalised (N, 3, H, W); clip_features: (N, 1 + h·w, C) per fusion layer."""
        query, patches = self.forward_features(image, clip_features, clip_grid, [len(self.vit_model.blocks)])[0]
        return self.mask_decoder(query, patches)

    def forward_features(self, image: Tensor, clip_features: List[Tensor], clip_grid: Tuple[int, int],
                         side_layers: List[int]) -> List[Tuple[Tensor, Tensor]]:
        """(queries (N, Q, C), patch map (N, C, h, w)) after each side block in `side_layers` (1-based).

        Inference decodes only the last block; training also decodes earlier ones (deep supervision, blocks 7
        and 8 in the reference), each taken after its fusion and before the positional embedding is re-added.
        """
        vit = self.vit_model
        x, grid = vit.patch_embed(image)
        x = x.float()  # the token stream is float32 whatever the model's dtype (see layers.Linear)
        n, _, width = x.shape
        pos = resize_grid_embedding(vit.pos_embed[0], vit.grid_size, grid)
        pos = torch.cat([self.query_pos_embed[0], pos]).unsqueeze(0)
        x = torch.cat([self.query_embed.to(x.dtype).expand(n, self.num_queries, width), x], dim=1) + pos

        clip_maps = [f[:, 1:].transpose(1, 2).reshape(n, f.shape[-1], clip_grid[0], clip_grid[1])
                     for f in clip_features]
        x = self._fuse(0, x, clip_maps, grid)
        depth = len(vit.blocks)
        features: List[Tuple[Tensor, Tensor]] = []
        for i, block in enumerate(vit.blocks):
            x = self._fuse(i + 1, block(x), clip_maps, grid)
            if i + 1 in side_layers:
                patches = x[:, self.num_queries:].transpose(1, 2).reshape(n, width, grid[0], grid[1])
                features.append((x[:, :self.num_queries], patches))
            if i + 1 < depth:
                x = x + pos
        return features

    def _fuse(self, side_layer: int, x: Tensor, clip_maps: List[Tensor], grid: Tuple[int, int]) -> Tensor:
        for k, fusion in enumerate(self.fusion_layers.values()):
            if self.fusion_side_layers[k] == side_layer:
                q = self.num_queries
                x = torch.cat([x[:, :q], fusion(x[:, q:], clip_maps[k], grid)], dim=1)
        return x
