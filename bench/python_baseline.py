"""The Python side of `npm run bench`: the same san.pt run from PyTorch, FLOP counts, and the machine's matmul rate.

    OPENBLAS_NUM_THREADS=1 python3 bench/python_baseline.py --device cpu --dtype float32 --threads 2

A small server driven by bench/run.js (bench/python.js): one JSON request a line on stdin, one JSON answer a line
on stdout (`{"error": …}` when a request fails), so that the bench can interleave each Python call with the
addon's and a load that drifts on a shared machine weighs on both alike. Requests (`op`):

* `env`: Python, PyTorch (and its CUDA and GPU, if any), the intra-op threads in effect and the OpenBLAS library
  loaded in this process (its path, `openblas_get_config()`, `openblas_get_num_threads()`), read back, not assumed.
* `load`: a model folder's san.pt on the device, in the dtype, and the inputs the addon was given (the uint8 image
  and the class embeddings, as raw files).
* `time`: seconds of each of `repeats` calls of a method on `batch` copies of the image, after `warmup` calls.
  Each call does what the addon's does: host inputs to the device (floating ones cast to the dtype), the method,
  outputs back to host memory as float32; on CUDA the clock is read after `torch.cuda.synchronize()`.
* `flops`: multiply-adds (× 2) of one call of each method, and of the text encoder on one prompt, counted op by op
  as LibTorch dispatches them (below), on a float32 CPU copy: the count depends on neither device nor dtype.
* `eager_load`, `eager_time`, `eager_text`: the same folder's weights in the project's models/san run eagerly (the
  official code's layers, op for op): seconds and minor page faults of the image path, seconds of a cold encoding.
* `matmul`: seconds of one call of the matmul probe with `reps` n × n products on the device, in the dtype, and of
  a call with no product, for the rate.
"""
import argparse
import json
import math
import platform
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.environment import loaded_library, openblas  # noqa: E402
from models.san.model import SanSegmenter  # noqa: E402
from models.san.text import VILD_TEMPLATES, class_embeddings  # noqa: E402
from models.san.tokenizer import SimpleTokenizer  # noqa: E402


# --- environment -------------------------------------------------------------------------------------------------

def environment(device: torch.device) -> Dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "intra_op_threads": torch.get_num_threads(),
        "libtorch_cpu": loaded_library(r"^libtorch_cpu"),
        "openblas": openblas(),
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


# --- FLOP counting -----------------------------------------------------------------------------------------------

def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def _einsum_flops(equation: str, operands: Sequence[torch.Tensor]) -> int:
    """2 · the product of every index's size, for a contraction of two operands (a sum of products per output)."""
    if len(operands) != 2:
        return 0
    inputs = equation.replace(" ", "").split("->")[0].split(",")
    sizes: Dict[str, int] = {}
    for letters, operand in zip(inputs, operands):
        for letter, size in zip(letters, operand.shape):
            sizes[letter] = int(size)
    return 2 * _numel(sizes.values())


def _matmul_flops(name: str, args: Sequence[Any], out: Any) -> int:
    """Multiply-adds × 2 of one matmul-class op; 0 for any other op."""
    if name == "aten.linear":
        return 2 * args[0].numel() * int(args[1].shape[0])
    if name in ("aten.matmul", "aten.mm", "aten.bmm"):
        return 2 * out.numel() * int(args[0].shape[-1])
    if name in ("aten.addmm", "aten.baddbmm"):
        return 2 * out.numel() * int(args[1].shape[-1])
    if name == "aten.einsum":
        return _einsum_flops(args[0], args[1])
    if name in ("aten.conv2d", "aten.convolution", "aten._convolution"):
        weight = args[1]
        return 2 * out.numel() * _numel(weight.shape[1:])
    return 0


class FlopCounter(TorchDispatchMode):
    """Counts matmul-class FLOPs (linear, matmul, mm, bmm, addmm, baddbmm, two-operand einsum, convolution) of
    every op the dispatcher runs, from the shapes of its arguments and result. Ops are seen as TorchScript calls
    them (a `linear` is counted once, not again as the `addmm` it becomes). Other ops are not FLOPs here: their
    output elements are summed apart, as a measure of the memory-bound work."""

    def __init__(self):
        super().__init__()
        self.flops: Counter = Counter()
        self.other_elements = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = str(func.overloadpacket)
        flops = _matmul_flops(name, args, out)
        if flops:
            self.flops[name] += flops
        elif isinstance(out, torch.Tensor):
            self.other_elements += out.numel()
        return out


def count_flops(call: Callable[[], Any]) -> Dict[str, Any]:
    with torch.inference_mode(), FlopCounter() as counter:
        call()
    return {"total": sum(counter.flops.values()), "by_op": dict(counter.flops),
            "other_output_elements": counter.other_elements}


# --- timing ------------------------------------------------------------------------------------------------------

class Placement:
    """Where the addon computes (`device`, `dtype`) and how it moves values, mirrored: inputs go from host memory
    to the device, floating ones cast to `dtype`; outputs come back to host memory, floating ones as float32 (the
    addon's `float32Outputs`). On CUDA, clocks are read only after `torch.cuda.synchronize()`."""

    def __init__(self, device: str, dtype: str):
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)

    def load(self, path: Path) -> torch.jit.ScriptModule:
        module = torch.jit.load(str(path), map_location=self.device).eval()
        return module.to(self.dtype) if self.dtype != torch.float32 else module

    def to_device(self, value: torch.Tensor) -> torch.Tensor:
        if value.is_floating_point():
            return value.to(self.device, self.dtype)
        return value.to(self.device)

    def to_host(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.float().cpu() if value.is_floating_point() else value.cpu()
        if isinstance(value, (list, tuple)):
            return [self.to_host(item) for item in value]
        if isinstance(value, dict):
            return {key: self.to_host(item) for key, item in value.items()}
        return value

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def read_tensor(spec: Dict[str, Any], dtype: torch.dtype) -> torch.Tensor:
    data = bytearray(Path(spec["path"]).read_bytes())
    return torch.frombuffer(data, dtype=dtype).reshape(spec["dims"]).clone()


def method_args(method: str, batch: int, image: torch.Tensor, output_size: List[int],
                embeds: torch.Tensor) -> List[Any]:
    """The host tensors the addon hands over: the image repeated `batch` times, each at the canvas's full size."""
    images = image.unsqueeze(0).expand(batch, -1, -1, -1).contiguous()
    if method == "segment":
        sizes = [list(image.shape[:2])] * batch
        outputs = [output_size] * batch
        return [images, sizes, outputs, embeds, False, False]
    if method == "forward":
        return [images.permute(0, 3, 1, 2).contiguous()]
    raise ValueError(f"unknown method {method}")


def method_call(module: torch.jit.ScriptModule, method: str, args: List[Any],
                placement: Placement) -> Callable[[], Any]:
    """One call as the addon makes it: host inputs to the device, the method, outputs back to the host."""
    run = getattr(module, method)

    def call() -> Any:
        on_device = [placement.to_device(a) if isinstance(a, torch.Tensor) else a for a in args]
        return placement.to_host(run(*on_device))
    return call


def time_call(call: Callable[[], Any], warmup: int, repeats: int, placement: Placement) -> List[float]:
    with torch.inference_mode():
        for _ in range(warmup):
            call()
        samples = []
        for _ in range(repeats):
            placement.synchronize()
            start = time.perf_counter()
            call()
            placement.synchronize()
            samples.append(time.perf_counter() - start)
    return samples


class Baseline:
    """The state between requests: the placement, and the loaded model and inputs."""

    def __init__(self, placement: Placement):
        self.placement = placement
        self.model_dir: Optional[Path] = None
        self.san: Optional[torch.jit.ScriptModule] = None
        self.inputs: Dict[str, Any] = {}
        self.eager: Any = None
        self.eager_segmenter: Any = None

    def env(self, _: Dict[str, Any]) -> Dict[str, Any]:
        return environment(self.placement.device)

    def load(self, request: Dict[str, Any]) -> Dict[str, Any]:
        self.san = None  # the previous model's memory first
        self.model_dir = Path(request["model_dir"])
        self.san = self.placement.load(self.model_dir / "san.pt")
        self.inputs = {"image": read_tensor(request["image"], torch.uint8),
                       "embeds": read_tensor(request["embeds"], torch.float32),
                       "output_size": request["output_size"]}
        return {}

    def args(self, method: str, batch: int) -> List[Any]:
        return method_args(method, batch, self.inputs["image"], self.inputs["output_size"], self.inputs["embeds"])

    def time(self, request: Dict[str, Any]) -> Dict[str, Any]:
        assert self.san is not None, "no model: send a load request first"
        call = method_call(self.san, request["method"], self.args(request["method"], request["batch"]), self.placement)
        return {"seconds": time_call(call, request["warmup"], request["repeats"], self.placement)}

    def flops(self, request: Dict[str, Any]) -> Dict[str, Any]:
        assert self.model_dir is not None, "no model: send a load request first"
        cpu = Placement("cpu", "float32")
        san = cpu.load(self.model_dir / "san.pt")
        answer: Dict[str, Any] = {method: count_flops(method_call(san, method, self.args(method, 1), cpu))
                                  for method in request["methods"]}
        text = cpu.load(self.model_dir / "text_encoder.pt")
        ids = torch.ones(1, request["context_length"], dtype=torch.int64)
        answer["text_prompt"] = count_flops(lambda: text(ids))
        return answer

    def eager_load(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """The folder's weights in the project's models/san, run eagerly: the official code's layers, op for op."""
        from models.reexport import load_folder  # the bench's other requests need no model code
        self.eager = load_folder(Path(request["model_dir"])).to(self.placement.device)
        self.eager_segmenter = SanSegmenter(self.eager)
        return {}

    def eager_time(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """Seconds and minor page faults of each call: uint8 image → scores and labels, as the official inference
        (the network, classification, upsampling and semantic inference over every class, then argmax)."""
        image, embeds = self.inputs["image"], self.inputs["embeds"]
        (height, width), (out_h, out_w) = image.shape[:2], self.inputs["output_size"]
        segmenter = self.eager_segmenter
        seconds, faults = [], []

        def official():
            # The reference chain, whole: not `segment`, whose CPU post-processing in bands is san-node's own.
            images = image.permute(2, 0, 1).unsqueeze(0).to(self.placement.device)
            mask_logits, mask_embeds = segmenter(images)
            class_logits = segmenter.classify(mask_embeds, embeds)
            return segmenter.postprocess(class_logits, mask_logits, height, width, out_h, out_w)

        with torch.inference_mode():
            for i in range(request["warmup"] + request["repeats"]):
                before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
                self.placement.to_host(official())
                if i >= request["warmup"]:
                    seconds.append(time.perf_counter() - start)
                    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return {"seconds": seconds, "minflt": faults}

    def eager_text(self, request: Dict[str, Any]) -> Dict[str, Any]:
        """Seconds of one cold encoding of the classes with every template, as the official code does it (each
        template's prompts padded to the whole context)."""
        tokenizer = SimpleTokenizer(Path(request["model_dir"]) / "bpe_vocab.txt.gz")
        start = time.perf_counter()
        class_embeddings(self.eager.ov_classifier, tokenizer, request["classes"], VILD_TEMPLATES,
                         self.eager.cfg.text.context_length)
        return {"seconds": time.perf_counter() - start}

    def matmul(self, request: Dict[str, Any]) -> Dict[str, Any]:
        probe = torch.jit.load(request["probe"], map_location="cpu")
        like = self.placement.to_device(torch.zeros(1))
        n, reps, repeats = request["n"], request["reps"], request["repeats"]
        return {"seconds": time_call(lambda: probe(like, n, reps).cpu(), 1, repeats, self.placement),
                "base_seconds": time_call(lambda: probe(like, n, 0).cpu(), 1, repeats, self.placement)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--threads", type=int, required=True, help="intra-op threads (torch.set_num_threads)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    baseline = Baseline(Placement(args.device, args.dtype))
    handlers = {"env": baseline.env, "load": baseline.load, "time": baseline.time, "flops": baseline.flops,
                "matmul": baseline.matmul, "eager_load": baseline.eager_load, "eager_time": baseline.eager_time,
                "eager_text": baseline.eager_text}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = handlers[request["op"]](request)
        except Exception as error:  # noqa: BLE001 -- reported to the bench, which stops with it
            answer = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
