"""TorchScript exports compute what the eager modules compute (float32, max abs diff <= 1e-5)."""
import torch

from models.san import SAN, SanSegmenter, load_preset

from .conftest import random_images

ATOL = 1e-5


def assert_close(eager, scripted):
    eager = eager if isinstance(eager, tuple) else (eager,)
    scripted = scripted if isinstance(scripted, tuple) else (scripted,)
    assert len(eager) == len(scripted)
    for a, b in zip(eager, scripted):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert (a.double() - b.double()).abs().max().item() <= ATOL


def save_and_load(module, path):
    torch.jit.save(torch.jit.script(module), str(path))
    return torch.jit.load(str(path))


@torch.no_grad()
def test_tiny_every_method(tiny_san, tmp_path):
    eager = SanSegmenter(tiny_san)
    scripted = save_and_load(eager, tmp_path / "san.pt")
    text_eager = tiny_san.ov_classifier
    text_scripted = save_and_load(text_eager, tmp_path / "text.pt")

    images = random_images(2, 72, 100)
    sizes = torch.tensor([[72, 100], [41, 77]])
    ids = torch.randint(1, 766, (3, 77), generator=torch.Generator().manual_seed(0))
    ids[:, 20] = 767  # the end-of-text token, the largest id, is where the embedding is read
    ids[:, 21:] = 0

    assert_close(eager(images), scripted(images))
    assert_close(eager.forward_with_sizes(images, sizes), scripted.forward_with_sizes(images, sizes))
    assert_close(text_eager(ids), text_scripted(ids))
    mask_logits, mask_embeds = eager(images)
    text_embeds = text_eager(ids)
    class_logits = eager.classify(mask_embeds, text_embeds)
    assert_close(class_logits, scripted.classify(mask_embeds, text_embeds))
    assert_close(eager.resize_mask_logits(mask_logits, 72, 100, 33, 47),
                 scripted.resize_mask_logits(mask_logits, 72, 100, 33, 47))
    resized = eager.resize_mask_logits(mask_logits, 72, 100, 33, 47)
    assert_close(eager.semantic_inference(class_logits, resized), scripted.semantic_inference(class_logits, resized))
    assert_close(eager.postprocess(class_logits, mask_logits, 72, 100, 33, 47),
                 scripted.postprocess(class_logits, mask_logits, 72, 100, 33, 47))


@torch.no_grad()
def test_vit_b_16_random_weights(tmp_path):
    torch.manual_seed(0)
    san = SAN(load_preset("vit_b_16")).eval()
    eager = SanSegmenter(san)
    scripted = save_and_load(eager, tmp_path / "san.pt")
    image = random_images(1, 300, 330)  # padded to 320 x 352: side grid 20 x 22, CLIP grid 10 x 11
    mask_logits, mask_embeds = eager(image)
    assert mask_logits.shape == (1, 100, 20, 22) and mask_embeds.shape == (1, 100, 512)
    assert_close((mask_logits, mask_embeds), scripted(image))

    text = save_and_load(san.ov_classifier, tmp_path / "text.pt")
    ids = torch.zeros(4, 77, dtype=torch.long)
    ids[:, 0], ids[:, 1:6], ids[:, 6] = 49406, torch.arange(320, 325), 49407
    assert_close(san.ov_classifier(ids), text(ids))
    class_logits = eager.classify(mask_embeds, san.ov_classifier(ids))
    assert class_logits.shape == (1, 100, 5)
    assert_close(eager.postprocess(class_logits, mask_logits, 300, 330, 150, 165),
                 scripted.postprocess(class_logits, mask_logits, 300, 330, 150, 165))
