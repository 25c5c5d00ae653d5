import json

import pytest
import torch
from conftest import tiny_config

from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import decode
from speech_s2s.model.files import (
    ModelFileError,
    average_info,
    average_models,
    format_model_info,
    load_model,
    read_model_info,
    save_model,
)
from speech_s2s.model.seq2seq import Seq2Seq


def _batch(lengths, seed=0):
    generator = torch.Generator().manual_seed(seed)
    waves = [torch.randn(n, generator=generator) * 0.1 for n in lengths]
    return torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), torch.tensor(lengths)


@pytest.mark.parametrize("beam", [1, 3])
def test_padded_batch_decodes_exactly_as_single_utterances(beam):
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config()).eval()
    waves, samples = _batch([16000, 9000, 5000])
    feats, lengths = model.features(waves, samples)
    # Every token CTC-scored: pruned to attention's favourites, this random model's short utterance
    # decodes to nothing, alone and in the batch alike, and the check below would compare empty strings.
    options = DecodingOptions(beam_size=beam, stop_on_ctc_silence=False, ctc_candidates=len(model.vocabulary))
    batch = decode(model, feats, lengths, options)
    for b in range(3):
        alone_feats, alone_lengths = model.features(waves[b : b + 1, : samples[b]], samples[b : b + 1])
        alone = decode(model, alone_feats, alone_lengths, options)[0]
        assert batch[b].tokens == alone.tokens
        assert len(alone.tokens) > 0  # a random model babbles: the comparison is not of two empty strings


def test_checkpoint_round_trip_keeps_config_weights_and_outputs(tmp_path):
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(ctc_weight=0.5))
    model.normalizer.set_stats(torch.full((80,), -3.0), torch.full((80,), 2.0))
    path = tmp_path / "model.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert loaded.config == model.config
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    waves, samples = _batch([8000])
    feats, lengths = model.eval().features(waves, samples)
    assert decode(model, feats, lengths)[0].tokens == decode(loaded, feats, lengths)[0].tokens


def test_pickle_checkpoint_from_elsewhere_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ModelFileError, match="not a safetensors model file"):
        load_model(path)


def test_safetensors_file_without_our_config_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ModelFileError, match="not a speech_s2s model"):
        load_model(path)


def test_half_precision_export_is_half_the_size_and_decodes_the_same(tmp_path):
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config()).eval()
    save_model(model, tmp_path / "full.safetensors")
    save_model(model, tmp_path / "half.safetensors", torch.float16)
    full, half = tmp_path / "full.safetensors", tmp_path / "half.safetensors"
    assert half.stat().st_size < 0.55 * full.stat().st_size
    loaded = load_model(half)
    assert all(t.dtype == torch.float32 for t in loaded.state_dict().values() if t.is_floating_point())
    waves, samples = _batch([12000])
    feats, lengths = model.features(waves, samples)
    assert decode(loaded, feats, lengths)[0].text == decode(model, feats, lengths)[0].text


def test_feature_constants_come_from_the_config_not_the_file(tmp_path):
    """Files before commit 279113c (2026-11-30) stored the Hann window and mel filterbank in float16; the
    rounded window's leakage moved quiet log-mel bins by up to 1.0. Loading recomputes both, so a
    loaded model's features equal a fresh extractor's exactly, and a float16 file stores them in float32."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from speech_s2s.frontend.features import LogMel

    torch.manual_seed(0)
    path = tmp_path / "half.safetensors"
    save_model(Seq2Seq(tiny_config()).eval(), path, torch.float16)
    with safe_open(str(path), "pt") as handle:
        metadata, tensors = handle.metadata(), {name: handle.get_tensor(name) for name in handle.keys()}
    assert tensors["logmel.mel.spectrogram.window"].dtype == torch.float32
    assert tensors["encoder.layers.0.forward_lstm.weight_ih_l0"].dtype == torch.float16
    old = tmp_path / "old-half.safetensors"  # as the older files are: every floating-point tensor rounded
    save_file({name: t.half() if t.is_floating_point() else t for name, t in tensors.items()}, str(old), metadata=metadata)
    waves, samples = _batch([12000, 7000])
    expected, _ = LogMel(tiny_config().features)(waves, samples)
    for file in (path, old):
        model = load_model(file)
        assert torch.equal(model.logmel.mel.spectrogram.window, torch.hann_window(model.config.features.n_fft))
        assert torch.equal(model.features(waves, samples)[0], expected)


def test_average_of_snapshots_is_their_elementwise_mean_and_refuses_another_shape(tmp_path):
    paths = []
    for seed in range(3):
        torch.manual_seed(seed)
        model = Seq2Seq(tiny_config())
        model.normalizer.set_stats(torch.full((80,), -3.0), torch.full((80,), 2.0))
        paths.append(tmp_path / f"epoch{seed}.safetensors")
        save_model(model, paths[-1])
    snapshots = [load_model(p).state_dict() for p in paths]
    averaged = average_models(paths).state_dict()
    for name, tensor in averaged.items():
        expected = sum(s[name].double() for s in snapshots) / 3
        assert torch.allclose(tensor.double(), expected, atol=1e-7), name
    weight = "ctc_head.weight"
    assert not torch.equal(snapshots[0][weight], snapshots[1][weight])  # three different models, not one
    other = tmp_path / "other.safetensors"
    save_model(Seq2Seq(tiny_config(ctc_weight=0.5)), other)
    with pytest.raises(ModelFileError, match=f"{other}: config differs"):
        average_models([paths[0], other])


def test_weighted_average_interpolates_between_two_models_and_refuses_bad_weights(tmp_path):
    paths = []
    for seed in range(2):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"model{seed}.safetensors")
        save_model(Seq2Seq(tiny_config()), paths[-1])
    start, tuned = (load_model(p).state_dict() for p in paths)
    mixed = average_models(paths, [1.0, 3.0]).state_dict()  # normalised: 0.25 start + 0.75 tuned
    for name, tensor in mixed.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor.double(), 0.25 * start[name].double() + 0.75 * tuned[name].double(), atol=1e-7), name
    only_tuned = average_models(paths, [0.0, 1.0]).state_dict()
    assert all(torch.equal(only_tuned[name], tuned[name]) for name in tuned)
    assert average_info(paths, [1.0, 3.0])["average_weights"] == [1.0, 3.0]
    with pytest.raises(ModelFileError, match="1 weights for 2 model files"):
        average_models(paths, [1.0])
    with pytest.raises(ModelFileError, match="each must be >= 0"):
        average_models(paths, [-1.0, 2.0])


def _rewrite(path, config=None, tensors=None, **metadata_changes):
    """Rewrite a saved model with its config JSON, some tensors or other metadata replaced."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    if config is not None:
        metadata["config"] = config if isinstance(config, str) else json.dumps(config)
    metadata.update(metadata_changes)
    save_file({**load_file(str(path)), **(tensors or {})}, str(path), metadata=metadata)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "model.safetensors"
    save_model(Seq2Seq(tiny_config()), path)
    return path


def _config_dict(path):
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return json.loads(handle.metadata()["config"])


def _one_line_error(path, match):
    with pytest.raises(ModelFileError, match=match) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    with pytest.raises(ModelFileError, match=match):
        read_model_info(path)


@pytest.mark.parametrize("change, match", [
    ("{not json", "config metadata is not JSON"),
    ({"encoder": {"bogus": 1}}, r"unknown EncoderConfig fields: \['bogus'\]"),
    ({"decoder": {"attention": {"bogus": 1}}}, r"unknown AttentionConfig fields: \['bogus'\]"),
    ({"encoder": {"hidden_size": "big"}}, "EncoderConfig.hidden_size must be int, not 'big'"),
    ({"encoder": {"hidden_size": 64.5}}, "EncoderConfig.hidden_size must be int, not 64.5"),
    ({"encoder": 3}, "ModelConfig.encoder must be an object"),
    ({"vocabulary": 5}, "ModelConfig.vocabulary must be a list"),
    ({"vocabulary": ["a", "b"]}, "config does not make a model .*vocabulary must start with"),
    ({"encoder": {"ctc_layer": 7}}, "ctc_layer 7 is not one of the 3 encoder layers"),
    ([1, 2], "config is not a JSON object"),
])
def test_broken_config_is_a_one_line_checkpoint_error(saved, change, match):
    def merge(config, change):
        for key, value in change.items():
            config[key] = merge(config[key], value) if isinstance(value, dict) and isinstance(config.get(key), dict) else value
        return config

    _rewrite(saved, config=merge(_config_dict(saved), change) if isinstance(change, dict) else change)
    _one_line_error(saved, match)


def test_weights_of_another_shape_name_the_tensor_and_both_shapes(saved):
    config = _config_dict(saved)
    config["decoder"]["embedding_size"] = 16
    _rewrite(saved, config=config)
    _one_line_error(saved, r"decoder.embedding.weight has shape \[30, 32\] in the file; the config needs \[30, 16\]")


def test_integer_weights_where_floats_belong_are_refused(saved):
    _rewrite(saved, tensors={"ctc_head.weight": torch.zeros(30, 128, dtype=torch.int64)})
    _one_line_error(saved, "ctc_head.weight holds int64 values; floating point expected")


def test_missing_tensor_and_newer_format_are_refused(saved, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(saved), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(saved))
    del tensors["ctc_head.bias"]
    save_file(tensors, str(tmp_path / "short.safetensors"), metadata=metadata)
    _one_line_error(tmp_path / "short.safetensors", "ctc_head.bias is missing")
    _rewrite(saved, format_version="99")
    _one_line_error(saved, "format version 99 is newer than this speech_s2s reads")


def test_model_info_reports_the_file_without_loading_it(tmp_path):
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config())
    model.normalizer.set_stats(torch.linspace(-8.0, -2.0, 80), torch.linspace(1.5, 3.0, 80))
    info = {"data": "train-clean-100", "hours": 100.6, "steps": 4200, "dev": {"wer": 0.25}, "created": "2026-11-29T03:00:00Z"}
    save_model(model, tmp_path / "half.safetensors", torch.float16, info=info)
    report = read_model_info(tmp_path / "half.safetensors")
    assert report.info == info and report.config == model.config and report.vocabulary == model.config.vocabulary
    assert report.parameters == sum(p.numel() for p in model.parameters())
    assert report.dtype == "float16" and report.format_version == 1
    assert report.file_size == (tmp_path / "half.safetensors").stat().st_size
    assert report.feature_mean == pytest.approx((-8.0, -2.0), abs=1e-2) and report.feature_std == pytest.approx((1.5, 3.0), abs=1e-2)
    assert json.loads(json.dumps(report.to_dict()))["info"]["dev"] == {"wer": 0.25}
    text = format_model_info(report)
    assert "stored as float16" in text and "dev.wer: 0.25" in text and "data: train-clean-100" in text
    assert "normalisation mean -8.00..-2.00, std 1.50..3.00" in text

    save_model(Seq2Seq(tiny_config()), tmp_path / "plain.safetensors")
    plain = read_model_info(tmp_path / "plain.safetensors")
    assert plain.info == {} and plain.dtype == "float32" and not plain.normalization_set
    assert "info:          none stored" in format_model_info(plain) and "not set" in format_model_info(plain)


def test_average_info_keeps_the_last_models_info_and_lists_the_files_without_foreign_folders(tmp_path, monkeypatch):
    paths = [tmp_path / f"epoch{i}.safetensors" for i in range(2)]
    for i, path in enumerate(paths):
        save_model(Seq2Seq(tiny_config()), path, info={"steps": 100 * (i + 1)})
    assert average_info(paths) == {"steps": 200, "averaged": ["epoch0.safetensors", "epoch1.safetensors"]}
    monkeypatch.chdir(tmp_path.parent)  # inside the working directory: relative to it
    assert average_info(paths)["averaged"] == [f"{tmp_path.name}/epoch0.safetensors", f"{tmp_path.name}/epoch1.safetensors"]


def test_damaged_info_is_a_checkpoint_error(saved):
    _rewrite(saved, info="{oops")
    _one_line_error(saved, "info metadata is not JSON")


def test_the_input_level_range_travels_in_the_file_through_export_and_average(tmp_path):
    torch.manual_seed(0)
    stated, unstated = tmp_path / "stated.safetensors", tmp_path / "unstated.safetensors"
    model = Seq2Seq(tiny_config())
    model.input_level_db = (-27.0, -15.0)
    save_model(model, stated, torch.float16)
    save_model(Seq2Seq(tiny_config()), unstated)
    assert load_model(stated).input_level_db == (-27.0, -15.0) and load_model(unstated).input_level_db is None
    assert read_model_info(stated).input_level_db == (-27.0, -15.0)
    assert "input level:   -27..-15 dBFS" in format_model_info(read_model_info(stated))
    assert "not stated" in format_model_info(read_model_info(unstated))
    # an anchor that states none, interpolated with a fine-tune that states one, in either order
    assert average_models([unstated, stated]).input_level_db == (-27.0, -15.0)
    assert average_models([stated, unstated]).input_level_db == (-27.0, -15.0)
    other = tmp_path / "other.safetensors"
    model.input_level_db = (-40.0, -30.0)
    save_model(model, other)
    with pytest.raises(ModelFileError, match=rf"{other}: its input level range \(-40.0, -30.0\) differs from \(-27.0, -15.0\)"):
        average_models([stated, other])


@pytest.mark.parametrize("value", ["[-12, -21]", "[-21]", "oops", '["a", "b"]', "[-21, NaN]"])
def test_a_damaged_input_level_range_is_a_checkpoint_error(saved, value):
    _rewrite(saved, input_level_db=value)
    _one_line_error(saved, "input_level_db metadata .* is not a \\[low, high\\] pair of dB levels")
