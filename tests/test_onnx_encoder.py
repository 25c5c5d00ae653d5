import os

import pytest
import torch
from conftest import tiny_config

from speech_s2s.model.seq2seq import Seq2Seq

# The `test` extra installs both; CI (CI=true) must run these tests, not skip them.
if os.environ.get("CI"):
    import onnx  # noqa: F401
    import onnxruntime  # noqa: F401
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from speech_s2s.model.onnx_encoder import OnnxEncoder, export_onnx_encoder  # noqa: E402


def _model(seed):
    torch.manual_seed(seed)
    model = Seq2Seq(tiny_config()).eval()
    model.normalizer.set_stats(torch.randn(80), torch.rand(80) + 0.5)
    return model


def test_onnx_encoder_equals_the_torch_encoder_on_any_padding(tmp_path):
    """Frame counts that are no multiple of the 8x reduction, and a batch of another size than the export's."""
    model = _model(0)
    export_onnx_encoder(model, tmp_path / "encoder.onnx")
    encoder = OnnxEncoder(tmp_path / "encoder.onnx", model, threads=1)
    lengths = torch.tensor([77, 51, 60])
    feats = torch.randn(3, 77, 80) * (torch.arange(77)[None, :, None] < lengths[:, None, None])
    with torch.no_grad():
        want = model.encode(feats, lengths)
    got = encoder(feats, lengths)
    assert torch.equal(got.memory_lengths, want.memory_lengths) and torch.equal(got.ctc_lengths, want.ctc_lengths)
    for b in range(3):
        torch.testing.assert_close(got.memory[b, : want.memory_lengths[b]], want.memory[b, : want.memory_lengths[b]], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got.ctc_input[b, : want.ctc_lengths[b]], want.ctc_input[b, : want.ctc_lengths[b]], rtol=1e-4, atol=1e-5)


def test_onnx_encoder_refuses_another_models_export(tmp_path):
    export_onnx_encoder(_model(0), tmp_path / "encoder.onnx", int8=True)
    OnnxEncoder(tmp_path / "encoder.onnx", _model(0))
    with pytest.raises(ValueError, match="exported from another model"):
        OnnxEncoder(tmp_path / "encoder.onnx", _model(1))


def test_transcribe_with_the_exported_encoder_writes_what_torch_writes(tmp_path, capsys):
    from speech_s2s.builder import BUNDLED_SAMPLE
    from speech_s2s.cli.main import main

    assert main(["export-onnx", str(tmp_path / "encoder.onnx")]) == 0
    capsys.readouterr()
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--threads", "1"]) == 0
    with_torch = capsys.readouterr().out
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--threads", "1", "--onnx-encoder", str(tmp_path / "encoder.onnx")]) == 0
    assert capsys.readouterr().out == with_torch and "brother" in with_torch
