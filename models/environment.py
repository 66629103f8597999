"""What this process really runs on, read back rather than assumed: the libraries it mapped and OpenBLAS's set-up.

Recorded beside benchmark figures and in a trained model's training.json, because speed and (with more than one
thread) the exact numbers depend on which OpenBLAS build is loaded: Debian's pthread one or its OpenMP one.
"""
import ctypes
import re
from pathlib import Path
from typing import Any, Dict


def loaded_library(pattern: str) -> str:
    """Path of the first library mapped into this process whose file name matches `pattern`, or ''."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            path = line.split()[-1]
            if re.search(pattern, Path(path).name):
                return path
    return ""


def openblas() -> Dict[str, Any]:
    """The OpenBLAS in this process: its path, `openblas_get_config()` and `openblas_get_num_threads()`."""
    path = loaded_library(r"^libopenblas")
    info: Dict[str, Any] = {"path": path}
    if path:
        lib = ctypes.CDLL(path)
        lib.openblas_get_config.restype = ctypes.c_char_p
        info["config"] = lib.openblas_get_config().decode()
        info["num_threads"] = lib.openblas_get_num_threads()
    return info
