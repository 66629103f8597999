"""Reference fixtures for the native addon's tests, written into a model folder's reference/ directory.

Every exported method is run once by the folder's own TorchScript modules (float32, CPU) on small seeded inputs:

* cases.json: a list of {"name", "module": file name, "method", "inputs": [...], "outputs": [...]} where a tensor
  is {"type": "uint8" | "float32" | "int64" | "int32", "dims": [...], "file": "x.bin"} (raw little-endian data,
  row-major) and an int argument is {"type": "int", "value": n};
* tokenizer.json: [{"text", "ids"}] rows of the reference tokenizer with the folder's vocabulary;
* prompt_ensemble.json: class names, templates and the ensembled (C, D) class embeddings (text.class_embeddings).
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import torch
from torch import Tensor

from .export import FILES, MANIFEST
from .san.text import TEMPLATE_SETS, class_embeddings
from .san.tokenizer import SimpleTokenizer, tokenize

REFERENCE_DIR = "reference"
# Not a multiple of 32, so forward has to pad; the post-processing resizes to OUTPUT_SIZE.
IMAGE_SIZE = (72, 100)
OUTPUT_SIZE = (50, 75)
CLASS_NAMES = ("cat", "road, route", "sky")
PROMPTS = ("a photo of a cat.", "There is a road, route in the scene", "This is a photo of a sky")
# Tokenizer rows: plain prompts, case and spacing, HTML entities, punctuation and digits, non-ASCII letters,
# a special token typed in the text, and a text longer than the context. All are left alone by ftfy, so the rows
# are the same with or without it.
TOKENIZER_TEXTS = (
    "a photo of a cat.",
    "  There IS a   Large\tpottedplant in the scene.  ",
    "tom &amp; jerry &lt;3 &amp;amp;",
    "it's 2023: 4 dogs, 12 cats!!! (and a giraffe?)",
    "café crème brûlée, naïve señor, Straße",
    "日本語のテキスト and emoji 🐱",
    "before <start_of_text> after <end_of_text>",
    " ".join(["wall-brick"] * 40),
)
DTYPE_NAMES = {torch.uint8: "uint8", torch.float32: "float32", torch.int64: "int64", torch.int32: "int32"}
NUMPY_LITTLE_ENDIAN = {torch.uint8: "|u1", torch.float32: "<f4", torch.int64: "<i8", torch.int32: "<i4"}


class _FixtureWriter:
    def __init__(self, directory: Path):
        self.directory = directory
        self.cases: List[Dict[str, Any]] = []

    def tensor(self, tensor: Tensor, file: str) -> Dict[str, Any]:
        tensor = tensor.detach().cpu().contiguous()
        data = tensor.numpy().astype(NUMPY_LITTLE_ENDIAN[tensor.dtype]).tobytes()
        (self.directory / file).write_bytes(data)
        return {"type": DTYPE_NAMES[tensor.dtype], "dims": list(tensor.shape), "file": file}

    def value(self, value: Union[Tensor, int], file: str) -> Dict[str, Any]:
        return self.tensor(value, file) if isinstance(value, Tensor) else {"type": "int", "value": value}

    def add(self, name: str, module: str, method: str, inputs: Sequence[Union[Tensor, int]],
            outputs: Sequence[Tensor]):
        stem = f"{len(self.cases):02d}_{name}"
        self.cases.append({
            "name": name,
            "module": module,
            "method": method,
            "inputs": [self.value(x, f"{stem}.in{i}.bin") for i, x in enumerate(inputs)],
            "outputs": [self.tensor(y, f"{stem}.out{i}.bin") for i, y in enumerate(outputs)],
        })


def write_reference_cases(model_dir: Path, seed: int):
    manifest = json.loads((model_dir / MANIFEST).read_text(encoding="utf-8"))
    san = torch.jit.load(str(model_dir / FILES["san"]), map_location="cpu")
    text_encoder = torch.jit.load(str(model_dir / FILES["text_encoder"]), map_location="cpu")
    tokenizer = SimpleTokenizer(model_dir / FILES["bpe_vocab"])
    context_length = manifest["text"]["context_length"]
    templates = TEMPLATE_SETS[manifest["text"]["template_set"]]
    out = model_dir / REFERENCE_DIR
    out.mkdir(parents=True, exist_ok=True)
    writer = _FixtureWriter(out)
    generator = torch.Generator().manual_seed(seed)
    h, w = IMAGE_SIZE
    out_h, out_w = OUTPUT_SIZE
    san_file, text_file = FILES["san"], FILES["text_encoder"]

    with torch.no_grad():
        image = torch.randint(0, 256, (1, 3, h, w), generator=generator, dtype=torch.uint8)
        mask_logits, mask_embeds = san(image)
        writer.add("forward", san_file, "forward", [image], [mask_logits, mask_embeds])

        # Two images on one canvas: the second is smaller and the noise around it must be ignored.
        canvas = torch.randint(0, 256, (2, 3, h, w), generator=generator, dtype=torch.uint8)
        sizes = torch.tensor([[h, w], [h - 22, w - 37]], dtype=torch.int64)
        writer.add("forward_with_sizes", san_file, "forward_with_sizes", [canvas, sizes],
                   list(san.forward_with_sizes(canvas, sizes)))

        token_ids = tokenize(tokenizer, PROMPTS, context_length)
        writer.add("text_forward", text_file, "forward", [token_ids], [text_encoder(token_ids)])

        text_embeds = class_embeddings(text_encoder, tokenizer, CLASS_NAMES, templates, context_length)
        class_logits = san.classify(mask_embeds, text_embeds)
        writer.add("classify", san_file, "classify", [mask_embeds, text_embeds], [class_logits])

        resized = san.resize_mask_logits(mask_logits, h, w, out_h, out_w)
        writer.add("resize_mask_logits", san_file, "resize_mask_logits", [mask_logits, h, w, out_h, out_w],
                   [resized])
        writer.add("semantic_inference", san_file, "semantic_inference", [class_logits, resized],
                   [san.semantic_inference(class_logits, resized)])
        writer.add("postprocess", san_file, "postprocess", [class_logits, mask_logits, h, w, out_h, out_w],
                   list(san.postprocess(class_logits, mask_logits, h, w, out_h, out_w)))

    _write_json(out / "cases.json", writer.cases)
    rows = tokenize(tokenizer, TOKENIZER_TEXTS, context_length)
    _write_json(out / "tokenizer.json", [{"text": text, "ids": ids} for text, ids in zip(TOKENIZER_TEXTS,
                                                                                         rows.tolist())])
    _write_json(out / "prompt_ensemble.json", {
        "class_names": list(CLASS_NAMES),
        "templates": list(templates),
        "embeddings": writer.tensor(text_embeds, "prompt_ensemble.out0.bin"),
    })


def _write_json(path: Path, data: Any):
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
