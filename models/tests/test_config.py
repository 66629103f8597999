import json

import pytest

from models.san.config import PRESETS, SanCfg, load_preset


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trips_through_its_json_fields(name, tmp_path):
    cfg = load_preset(name)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert SanCfg.from_json(path) == cfg


def test_presets_follow_the_reference_configs():
    b, l = load_preset("vit_b_16"), load_preset("vit_l_14_336")
    assert (b.clip_visual.width, b.clip_visual.layers, b.clip_visual.patch_size, b.clip_visual.image_size) == \
        (768, 12, 16, 224)
    assert (l.clip_visual.width, l.clip_visual.layers, l.clip_visual.patch_size, l.clip_visual.image_size) == \
        (1024, 24, 14, 336)
    assert b.side_adapter.fusion_map == [[0, 0], [3, 1], [6, 2], [9, 3]]
    assert l.side_adapter.fusion_map == [[0, 0], [6, 1], [12, 2], [18, 3]]
    assert (b.clip_visual.feature_last_layer, l.clip_visual.feature_last_layer) == (9, 18)
    assert (b.clip_resolution, l.clip_resolution) == (0.5, 0.7)
    for cfg in (b, l):
        assert (cfg.size_divisibility, cfg.resize_short_edge, cfg.resize_max_size) == (32, 640, 2560)
        assert cfg.side_adapter.num_queries == 100
        assert [round(v, 4) for v in cfg.pixel_mean_255] == [122.7709, 116.7460, 104.0937]
        assert [round(v, 4) for v in cfg.pixel_std_255] == [68.5005, 66.6322, 70.3232]


@pytest.mark.parametrize("change, message", [
    ({"clip_visual": {"feature_last_layer": 12}}, "feature_last_layer"),
    ({"side_adapter": {"fusion_map": [[3, 0], [0, 1]]}}, "fusion_map must increase"),
    ({"side_adapter": {"fusion_map": [[0, 0], [10, 1]]}}, "fusion_map CLIP layers"),
    ({"side_adapter": {"fusion_map": [[0, 0], [3, 9]]}}, "fusion_map side layers"),
    ({"text": {"output_dim": 768}}, "text.output_dim"),
    ({"decoder": {"channels": 3}}, "Unknown DecoderCfg field"),
    ({"clip_visual": {"stem_channels": [8, 8, 8, 8, 8]}}, "stem_channels"),  # 2^5 does not divide 16
    ({"clip_visual": {"stem_channels": [8, 0]}}, "stem_channels must be positive"),
])
def test_bad_config_names_the_field(change, message):
    data = load_preset("vit_b_16").to_dict()
    for part, fields in change.items():
        data[part].update(fields)
    with pytest.raises(ValueError, match=message):
        SanCfg.from_dict(data)


def test_unknown_preset():
    with pytest.raises(ValueError, match="Unknown SAN variant 'vit_h'; expected one of: vit_b_16, vit_l_14_336, tiny"):
        load_preset("vit_h")
