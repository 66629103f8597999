"""The CLIP text tower with SAN's learned background embedding, and the prompt ensembling of class names."""
import math
from typing import Callable, Dict, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .config import TextCfg
from .layers import LayerNorm, clip_blocks
from .tokenizer import SimpleTokenizer, tokenize

# The reference's "vild" set, spelled exactly (the trailing periods are inconsistent in the original too).
VILD_TEMPLATES = (
    "a photo of a {}.",
    "This is a photo of a {}",
    "There is a {} in the scene",
    "There is the {} in the scene",
    "a photo of a {} in the scene",
    "a photo of a small {}.",
    "a photo of a medium {}.",
    "a photo of a large {}.",
    "This is a photo of a small {}.",
    "This is a photo of a medium {}.",
    "This is a photo of a large {}.",
    "There is a small {} in the scene.",
    "There is a medium {} in the scene.",
    "There is a large {} in the scene.",
)
TEMPLATE_SETS: Dict[str, Sequence[str]] = {"vild": VILD_TEMPLATES}


class Transformer(nn.Module):
    def __init__(self, width: int, heads: int, layers: int):
        super().__init__()
        self.resblocks = clip_blocks(width, heads, layers)

    def forward(self, x: Tensor, attn_mask: Tensor) -> Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask)
        return x


class LearnableBgOvClassifier(nn.Module):
    """CLIP's text encoder plus the background embedding that SAN appends as the last class.

    forward(token_ids (B, L ≤ context_length) int64) returns unit embeddings (B, output_dim) taken at the
    end-of-text token (the largest id of each row). The mask is causal, so dropping trailing padding columns
    does not change the result.
    """

    def __init__(self, cfg: TextCfg):
        super().__init__()
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(cfg.context_length, cfg.width))
        self.text_projection = nn.Parameter(cfg.width ** -0.5 * torch.randn(cfg.width, cfg.output_dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.bg_embed = nn.Parameter(cfg.output_dim ** -0.5 * torch.randn(1, cfg.output_dim))
        causal = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", causal)
        self.transformer = Transformer(cfg.width, cfg.heads, cfg.layers)
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.ln_final = LayerNorm(cfg.width)
        self.context_length = cfg.context_length

    def forward(self, token_ids: Tensor) -> Tensor:
        if token_ids.dim() != 2 or token_ids.shape[1] > self.context_length:
            raise ValueError("token_ids must be (B, L) with L <= " + str(self.context_length) + ", got "
                             + str(token_ids.shape))
        length = token_ids.shape[1]
        # The token stream is float32 whatever the model's dtype (see layers.Linear).
        x = self.token_embedding(token_ids).float() + self.positional_embedding[:length]
        x = self.transformer(x, self.attn_mask[:length, :length])
        x = self.ln_final(x)
        eot = x[torch.arange(x.shape[0], device=x.device), token_ids.argmax(dim=-1)]
        return F.normalize((eot.to(self.text_projection.dtype) @ self.text_projection).float(), dim=-1)


@torch.no_grad()
def class_embeddings(encode_text: Callable[[Tensor], Tensor], tokenizer: SimpleTokenizer, class_names: Sequence[str],
                     templates: Sequence[str] = VILD_TEMPLATES, context_length: int = 77) -> Tensor:
    """(C, D) classifier rows: per template encode and normalise, average over templates, normalise again.

    A name with synonyms ("person, individual, someone") is substituted whole, after stripping outer whitespace.

    encode_text maps token ids to embeddings (a LearnableBgOvClassifier or its TorchScript export).
    """
    per_template = []
    for template in templates:
        ids = tokenize(tokenizer, [template.format(name.strip()) for name in class_names], context_length)
        per_template.append(F.normalize(encode_text(ids), dim=-1))
    mean = torch.stack(per_template).mean(dim=0)
    return mean / mean.norm(dim=-1, keepdim=True)
