"""The network alone, side by side in one process, in the ways it can run on a GPU: the project's models/san in
eager PyTorch (the baseline the Hopper targets are set against), its TorchScript export (what the addon runs today),
that export replayed from a CUDA graph, and an AOTInductor package (torch.export, .pt2). Item 3 of the Hopper issue
(a compiled runtime) is chosen by these figures; docs/gpu.md says how.

    python3 scripts/device/network_probe.py --variant vit_b_16 --batch 16 --dtype bfloat16 --side 640 \\
        --device cuda --modes eager,torchscript,cuda_graph,aoti --out probe.json

Every mode runs `forward(images)` (uint8 (N, 3, H, W) on the device -> mask logits and mask embeddings) of one
seeded random-weight model on one seeded batch: the median of `--repeats` timed calls after `--warmup` untimed ones,
the clock read after torch.cuda.synchronize(); images/s; the most GPU memory allocated during the mode
(max_memory_allocated after a reset, the weights included); and the largest difference from eager's outputs. A mode
that fails records its error and the others still run. On the CPU only eager and torchscript run (the dry run of
scripts/device/run-cuda-suite.sh).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.san.config import load_preset  # noqa: E402
from models.san.layers import FUSED_ATTENTION  # noqa: E402
from models.san.model import SAN, SanSegmenter  # noqa: E402

MODES = ("eager", "torchscript", "cuda_graph", "aoti")
Outputs = Tuple[torch.Tensor, torch.Tensor]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(call: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> List[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        call()
        synchronize(device)
        samples.append(time.perf_counter() - start)
    return samples


def cuda_graph(module: Callable[[torch.Tensor], Outputs], images: torch.Tensor) -> Tuple[Callable[[], Any], Outputs]:
    """Captures one call on static inputs; replaying it relaunches every kernel with one launch."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # TorchScript's profiling executor optimises over the first calls: capture the final graph
            module(images)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = module(images)
    return graph.replay, outputs


def aoti(segmenter: SanSegmenter, images: torch.Tensor, work: Path) -> Tuple[Callable[[], Outputs], Dict[str, Any]]:
    started = time.perf_counter()
    exported = torch.export.export(segmenter, (images,))
    package = torch._inductor.aoti_compile_and_package(exported, package_path=str(work / "san.pt2"))
    runner = torch._inductor.aoti_load_package(package)
    return (lambda: runner(images)), {"compile_s": time.perf_counter() - started}


def run_mode(mode: str, segmenter: SanSegmenter, images: torch.Tensor, args: argparse.Namespace,
             work: Path) -> Tuple[Dict[str, Any], Optional[Outputs]]:
    device = images.device
    extra: Dict[str, Any] = {}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    if mode == "eager":
        call: Callable[[], Any] = lambda: segmenter(images)  # noqa: E731
        outputs = None
    elif mode == "torchscript":
        scripted = torch.jit.script(segmenter)  # as models/export.py writes san.pt
        call = lambda: scripted(images)  # noqa: E731
        outputs = None
    elif mode == "cuda_graph":
        call, outputs = cuda_graph(torch.jit.script(segmenter), images)
    else:
        call, extra = aoti(segmenter, images, work)
        outputs = None
    samples = timed(call, device, args.warmup, args.repeats)
    if outputs is None:
        outputs = call()
    median = statistics.median(samples)
    result = {"ms": median * 1e3, "images_per_s": args.batch / median, "n": len(samples), **extra}
    if device.type == "cuda":
        result["peak_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    return result, (outputs[0].float().clone(), outputs[1].float().clone())


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", default="vit_b_16")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "float16", "bfloat16"])
    parser.add_argument("--side", type=int, default=640)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    modes = [m for m in args.modes.split(",") if m]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode} (of {', '.join(MODES)})")

    torch.manual_seed(0)
    san = SAN(load_preset(args.variant)).eval()
    segmenter = SanSegmenter(san).to(device, getattr(torch, args.dtype))
    images = torch.randint(0, 256, (args.batch, 3, args.side, args.side), dtype=torch.uint8, device=device)
    report: Dict[str, Any] = {
        "variant": args.variant, "batch": args.batch, "dtype": args.dtype, "side": args.side,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "fused_attention": FUSED_ATTENTION, "modes": {},
    }
    reference: Optional[Outputs] = None
    # no_grad, not inference_mode: torch.export refuses inference tensors.
    with torch.no_grad(), tempfile.TemporaryDirectory() as work:
        for mode in modes:
            if mode in ("cuda_graph", "aoti") and device.type != "cuda":
                report["modes"][mode] = {"skipped": "needs CUDA"}
                continue
            try:
                result, outputs = run_mode(mode, segmenter, images, args, Path(work))
                if reference is None:
                    reference = outputs
                else:
                    result["max_abs_diff_vs_first"] = [float((a - b).abs().max()) for a, b in zip(outputs, reference)]
                report["modes"][mode] = result
            except Exception as error:  # noqa: BLE001 - one mode's failure is a finding; the others still run
                report["modes"][mode] = {"error": f"{type(error).__name__}: {error}".splitlines()[0][:500],
                                         "trace": traceback.format_exc()[-2000:]}
            print(json.dumps({mode: {k: v for k, v in report["modes"][mode].items() if k != "trace"}}), flush=True)
    eager = report["modes"].get("eager", {}).get("images_per_s")
    if eager:
        report["speedup_vs_eager"] = {mode: r["images_per_s"] / eager for mode, r in report["modes"].items()
                                      if "images_per_s" in r}
        print(json.dumps({"speedup_vs_eager": report["speedup_vs_eager"]}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
