"""The side network's decoupled head: mask logits and CLIP attention biases from one set of query embeddings."""
from typing import Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import DecoderCfg
from .layers import MLP, conv1x1


class MLPMaskDecoder(nn.Module):
    """Dot products of query embeddings with per-pixel embeddings (masks) and per-head ones (attention bias).

    The attention bias is predicted for a single recognition layer and reused by every CLIP block after it.
    """

    def __init__(self, in_channels: int, num_heads: int, cfg: DecoderCfg):
        super().__init__()
        self.num_heads = num_heads
        self.query_mlp = MLP(in_channels, cfg.mlp_channels, cfg.embed_channels, cfg.mlp_num_layers)
        self.pix_mlp = MLP(in_channels, cfg.mlp_channels, cfg.embed_channels, cfg.mlp_num_layers, conv1x1)
        self.attn_mlp = MLP(in_channels, cfg.mlp_channels, cfg.embed_channels * num_heads, cfg.mlp_num_layers,
                            conv1x1)
        # A learned scale and shift of every bias value.
        self.bias_scaling = nn.Linear(1, 1)

    def forward(self, query: Tensor, x: Tensor) -> Tuple[Tensor, Tensor]:
        """query: (N, Q, C); x: (N, C, h, w). Returns mask logits (N, Q, h, w) and bias (N, heads, Q, h, w)."""
        query = self.query_mlp(query)
        pix = self.pix_mlp(x)
        n, channels, h, w = pix.shape
        # The mask and bias reductions in float32 whatever the model's dtype (no-ops in a float32 model): they are
        # small beside the towers, and bfloat16 would round every logit to 3 digits.
        query = query.float()
        mask_logits = torch.einsum("bqc,bchw->bqhw", query, pix.float())
        attn = self.attn_mlp(x).float().reshape(n, self.num_heads, channels, h, w)
        attn_bias = torch.einsum("bqc,bnchw->bnqhw", query, attn)
        scaling = self.bias_scaling
        attn_bias = F.linear(attn_bias.unsqueeze(-1), scaling.weight.float(), scaling.bias.float()).squeeze(-1)
        return mask_logits, attn_bias
