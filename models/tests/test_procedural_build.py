"""models.procedural.build_default at a toy size: every stage runs and the folder it writes passes its check."""
import json
from pathlib import Path

import torch

from models.export import check_model_dir
from models.procedural.build_default import BuildCfg, build
from models.procedural.clip_pretrain import ClipPretrainCfg
from models.procedural.world import World


def test_build_writes_a_checked_model_folder(tmp_path):
    cfg = BuildCfg(clip_scenes=12, train_scenes=12, val_scenes=4,
                   clip=ClipPretrainCfg(steps=2, batch_scenes=4, warmup=1))
    cfg.san.update(steps=2, batch_size=2, num_points=64, log_period=1)
    record = build(0, tmp_path / "model", torch.device("cpu"), cfg, tmp_path / "work", log=lambda _: None)
    assert check_model_dir(tmp_path / "model") == []
    saved = json.loads((tmp_path / "model" / "training.json").read_text())
    assert saved["evaluation"]["scenes"] == 4 and saved["seed"] == 0
    assert Path(saved["openblas"]["path"]).is_file() and saved["openblas"]["config"].startswith("OpenBLAS")
    assert set(saved["timings"]) == {"render", "clip_pretrain", "clip_eval", "san_train", "evaluate"}
    assert record["classes"]["held_out"] == [f"{c} {s}" for c, s in World().held_out_pairs]
