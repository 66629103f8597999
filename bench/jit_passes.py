"""Side-by-side timing of san.pt's `segment()` as loaded, frozen, and frozen + optimize_for_inference (oneDNN).

    OPENBLAS_NUM_THREADS=1 python3 bench/jit_passes.py build/bench-models/vit_b_16/san.pt [--size 640]
        [--threads 2] [--repeats 4] [--modes plain,freeze,optimize]

Issue 18, item 6: whether torch.jit.freeze or torch.jit.optimize_for_inference (freeze, then oneDNN layouts for
convolutions and linear layers and their fusions) would speed up the addon if cpp/module_set.cc applied them at
load time. It runs in PyTorch, whose TorchScript executor and passes are LibTorch's own (torch::jit::freeze and
torch::jit::optimize_for_inference are the same C++ functions). Every exported method (`segment`, `classify`, ...)
is preserved, as the addon would have to. The modes' calls are interleaved, so that the load of a shared machine
weighs on each alike; the first two calls of each mode are untimed (the profiling executor specialises on them).
Prints each mode's preparation time, per-call seconds, and its largest score difference from the first mode.
"""
import argparse
import time
from typing import Dict, List

import torch

MODES = ("plain", "freeze", "optimize")


def prepare(path: str, mode: str) -> torch.jit.ScriptModule:
    module = torch.jit.load(path, map_location="cpu").eval()
    exported = [name for name in module._c._method_names() if name != "forward"]
    if mode == "plain":
        return module
    frozen = torch.jit.freeze(module, preserved_attrs=exported)
    return frozen if mode == "freeze" else torch.jit.optimize_for_inference(frozen, other_methods=exported)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("san_pt")
    parser.add_argument("--size", type=int, default=640)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = args.modes.split(",")
    torch.set_num_threads(args.threads)

    modules = {}
    for mode in modes:
        start = time.perf_counter()
        modules[mode] = prepare(args.san_pt, mode)
        print(f"{mode}: prepared in {time.perf_counter() - start:.1f} s", flush=True)
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (1, args.size, args.size, 3), dtype=torch.uint8, generator=generator)
    embed_dim = modules[modes[0]].bg_embed.shape[-1]
    classes = torch.nn.functional.normalize(torch.randn(10, embed_dim, generator=generator), dim=-1)
    sizes = [[args.size, args.size]]

    def segment(mode: str) -> Dict[str, torch.Tensor]:
        return modules[mode].segment(image, sizes, sizes, classes, True, False)[0]

    seconds: Dict[str, List[float]] = {mode: [] for mode in modes}
    with torch.inference_mode():
        outputs = {mode: segment(mode) for mode in modes}
        for mode in modes:
            segment(mode)
        for _ in range(args.repeats):
            for mode in modes:
                start = time.perf_counter()
                segment(mode)
                seconds[mode].append(time.perf_counter() - start)
    first = outputs[modes[0]]
    for mode in modes:
        times = sorted(seconds[mode])
        differ = (outputs[mode]["scores"] - first["scores"]).abs().max().item()
        same_labels = bool((outputs[mode]["labels"] == first["labels"]).all())
        print(f"{mode}: median {times[len(times) // 2]:.2f} s, min {times[0]:.2f} s "
              f"({', '.join(f'{t:.2f}' for t in seconds[mode])}); scores differ from {modes[0]}'s by at most "
              f"{differ:.1e}, labels {'equal' if same_labels else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
