import torch
from conftest import tiny_model_with_mini_features

from speech_s2s.data.batches import collate
from speech_s2s.decoding.options import GREEDY
from speech_s2s.decoding.search import decode_encoded
from speech_s2s.model.encoder import ChunkConfig
from speech_s2s.model.files import load_model
from tools.widen_model import main, widen_encoder


def test_a_widened_encoder_computes_what_the_narrow_one_did():
    model, features = tiny_model_with_mini_features(seed=3)
    model.eval()
    wide = widen_encoder(model, 96, seed=1)
    assert wide.config.encoder.hidden_size == 96 and wide.encoder.output_size == 192
    assert sum(p.numel() for p in wide.parameters()) > 1.5 * sum(p.numel() for p in model.parameters())
    feats, lengths, targets, target_lengths = collate(features, list(range(len(features))))
    with torch.no_grad():
        for chunk in (None, ChunkConfig(16, 8)):
            narrow_out, wide_out = model.encode(feats, lengths, chunk), wide.encode(feats, lengths, chunk)
            torch.testing.assert_close(wide.ctc_log_probs(wide_out), model.ctc_log_probs(narrow_out), atol=1e-5, rtol=0)
        narrow_loss = model.loss(model.encode(feats, lengths), targets, target_lengths)
        wide_loss = wide.loss(wide.encode(feats, lengths), targets, target_lengths)
        torch.testing.assert_close(wide_loss.loss, narrow_loss.loss, atol=1e-5, rtol=0)
        narrow_text = [r.text for r in decode_encoded(model, model.encode(feats, lengths), GREEDY)]
        assert [r.text for r in decode_encoded(wide, wide.encode(feats, lengths), GREEDY)] == narrow_text
    # the new units are alive: one update moves the zero weights that read them
    wide.train()
    wide.loss(wide.encode(feats, lengths), targets, target_lengths).loss.backward()
    new_columns = wide.ctc_head.weight.grad[:, 64:96]
    assert new_columns.abs().sum() > 0 and (wide.ctc_head.weight[:, 64:96] == 0).all()


def test_the_tool_writes_a_loadable_model_and_refuses_to_narrow(tmp_path, capsys):
    from speech_s2s.model.files import save_model

    model, _ = tiny_model_with_mini_features()
    save_model(model, tmp_path / "narrow.safetensors")
    assert main(["--model", str(tmp_path / "narrow.safetensors"), "--encoder-hidden", "80", "--out", str(tmp_path / "wide.safetensors")]) == 0
    assert load_model(tmp_path / "wide.safetensors").config.encoder.hidden_size == 80
    assert main(["--model", str(tmp_path / "narrow.safetensors"), "--encoder-hidden", "32", "--out", str(tmp_path / "x.safetensors")]) == 1
    assert "narrower than the model's 64" in capsys.readouterr().err
