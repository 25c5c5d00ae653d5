"""The encoder (normalisation included) exported to ONNX and run by ONNX Runtime; optional: the
`onnx` extra (`pip install 'speech_s2s[onnx]'`), full context only (no chunked form).

Why: on 100 test-tts utterances, one thread, ONNX Runtime ran the encoder in 0.75x the CPU time
of torch's float LSTM (one oneDNN kernel per layer), and in 0.47x with its own int8 dynamic
quantisation, where torch's int8 LSTM took 0.9x (it runs the gates op by op, frame by frame).
The search stays in torch. An exported file records a fingerprint of the model it came from, and
`OnnxEncoder` refuses to run beside any other model.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path

import torch

from speech_s2s.model.encoder import EncoderOutput
from speech_s2s.model.seq2seq import Seq2Seq

FINGERPRINT_KEY = "speech_s2s_encoder_of"  # ONNX metadata: fingerprint of the model the encoder came from
OUTPUTS = ("memory", "memory_lengths", "ctc_input", "ctc_lengths")


def model_fingerprint(model: Seq2Seq) -> str:
    """sha256 of the normaliser's and encoder's float32 weights and the config."""
    digest = hashlib.sha256(repr(model.config).encode())
    for name, tensor in model.state_dict().items():
        if name.startswith(("normalizer.", "encoder.")):
            digest.update(name.encode())
            digest.update(tensor.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


class _Encode(torch.nn.Module):
    """Raw log-mel and lengths -> the four tensors of `EncoderOutput`: what gets exported."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        encoded = self.model.encode(feats, lengths)
        return tuple(getattr(encoded, name) for name in OUTPUTS)


def export_onnx_encoder(model: Seq2Seq, path: str | Path, int8: bool = False) -> None:
    """Write the model's encoder to an ONNX file; int8: ONNX Runtime's dynamic quantisation of it."""
    import onnx
    from torch.onnx import export

    reduction = model.encoder.reduction
    # Traced on frames a multiple of the reduction, so that every pyramid step pairs frames without
    # padding; `OnnxEncoder` pads its input the same way (padding never changes an utterance's frames).
    feats, lengths = torch.zeros(2, 4 * reduction, model.config.features.n_mels), torch.tensor([4 * reduction, 3 * reduction - 3])
    frames = {"feats": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}, "memory": {0: "batch", 1: "memory_frames"},
              "memory_lengths": {0: "batch"}, "ctc_input": {0: "batch", 1: "ctc_frames"}, "ctc_lengths": {0: "batch"}}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # torch's notices, all expected: the TorchScript-based exporter is deprecated (the newer one
        # needs onnxscript), the tracer sees the odd-frame branch of pair_frames (see above), and the
        # LSTMs' zero initial state is exported for any batch size (the test runs another size).
        warnings.simplefilter("ignore")
        exported = Path(folder) / "encoder.onnx"
        with torch.no_grad():
            export(_Encode(model).eval(), (feats, lengths), str(exported), input_names=["feats", "lengths"], output_names=list(OUTPUTS),
                   dynamic_axes=frames, opset_version=17, dynamo=False)
        if int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            logging.disable(logging.WARNING)  # its advice to pre-process the graph, logged as a warning (measured without)
            try:
                quantize_dynamic(str(exported), str(exported.with_suffix(".int8.onnx")), weight_type=QuantType.QInt8)
            finally:
                logging.disable(logging.NOTSET)
            exported = exported.with_suffix(".int8.onnx")
        graph = onnx.load(str(exported))
        entry = graph.metadata_props.add()
        entry.key, entry.value = FINGERPRINT_KEY, model_fingerprint(model)
        onnx.save(graph, str(path))


class OnnxEncoder:
    """`model.encode` (full context) computed by ONNX Runtime from a file `export_onnx_encoder` wrote for this model."""

    def __init__(self, path: str | Path, model: Seq2Seq, threads: int | None = None):
        import onnxruntime

        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = threads or torch.get_num_threads()
        settings.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime reports a missing or damaged file in several exception types
            raise ValueError(f"{path}: not an ONNX encoder ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
        made_for = self.session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY)
        if made_for != model_fingerprint(model):
            cause = "was exported from another model" if made_for else "was not written by speech-s2s export-onnx"
            raise ValueError(f"{path}: {cause}; export it from this one")
        self.reduction = model.encoder.reduction

    def __call__(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """Raw log-mel [B, T, F] and frame counts [B] -> the encoder output, as `Seq2Seq.encode`."""
        feats = torch.nn.functional.pad(feats, (0, 0, 0, -feats.shape[1] % self.reduction))
        memory, memory_lengths, ctc_input, ctc_lengths = (
            torch.from_numpy(a) for a in self.session.run(list(OUTPUTS), {"feats": feats.numpy(), "lengths": lengths.numpy()})
        )
        return EncoderOutput(memory[:, : int(memory_lengths.max())], memory_lengths, ctc_input[:, : int(ctc_lengths.max())], ctc_lengths)
