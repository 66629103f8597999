"""Text tower and prompt ensembling as the reference: vild templates, per-template normalise, mean, normalise."""
import re

import torch
from torch.nn import functional as F

from models.san.text import VILD_TEMPLATES, class_embeddings
from models.san.tokenizer import SimpleTokenizer, tokenize

from .conftest import SHARED_REFERENCE, shared_file


def test_vild_templates_are_the_spec_ones():
    spec = shared_file(SHARED_REFERENCE / "san-architecture.md").read_text(encoding="utf-8")
    section = spec[spec.index("**14 templates**"):spec.index("An 80-template")]
    assert tuple(re.findall(r"^\s+\d+\. `(.*)`$", section, flags=re.M)) == VILD_TEMPLATES


@torch.no_grad()
def test_class_embeddings_ensemble_the_templates(tiny_san, tiny_vocab):
    tokenizer = SimpleTokenizer(tiny_vocab)
    encoder = tiny_san.ov_classifier
    names = ["cat", " road, route ", "sky"]
    embeds = class_embeddings(encoder, tokenizer, names)

    expected = []
    for name in ["cat", "road, route", "sky"]:  # outer whitespace stripped, synonyms kept in one prompt
        prompts = [template.format(name) for template in VILD_TEMPLATES]
        per_template = F.normalize(encoder(tokenize(tokenizer, prompts)), dim=-1)
        expected.append(F.normalize(per_template.mean(0), dim=-1))
    assert embeds.shape == (3, 32)
    assert torch.allclose(embeds, torch.stack(expected), atol=1e-6)
    assert "a photo of a road, route." in [t.format("road, route") for t in VILD_TEMPLATES]


@torch.no_grad()
def test_text_encoder_reads_the_end_token_and_ignores_padding(tiny_san, tiny_vocab):
    tokenizer = SimpleTokenizer(tiny_vocab)
    encoder = tiny_san.ov_classifier
    ids = tokenize(tokenizer, ["a photo of a cat.", "There is a large pottedplant in the scene."])
    full = encoder(ids)
    assert torch.allclose(full.norm(dim=-1), torch.ones(2))
    ends = ids.argmax(dim=-1)
    trimmed = encoder(ids[:, :int(ends.max()) + 1])  # causal attention: padding after the end token changes nothing
    assert (full - trimmed).abs().max() < 1e-6
    changed = ids.clone()
    changed[0, int(ends[0]) + 1:] = 5  # nor do other tokens there
    assert (encoder(changed)[0] - full[0]).abs().max() < 1e-6
