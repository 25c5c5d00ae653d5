"""speech_s2s: a readable Listen-Attend-Spell speech recogniser.

Data flows one way: audio -> frontend (features) -> model (encoder) -> decoding (search, LMs) -> text.

The Python API, in the shape faster-whisper users know::

    import speech_s2s

    recognizer = speech_s2s.load()                      # the bundled model and LMs, beam 16; load(beam_size=1): greedy
                                                        # load("my.safetensors", lm="my-lm.safetensors", word_lm="words.safetensors")
    segments, info = recognizer.transcribe("talk.flac")  # a path, "-" or a 16 kHz mono float32 array
    print(info.duration)
    for segment in segments:                             # a generator: decoding happens as you iterate
        print(f"[{segment.start:.2f} -> {segment.end:.2f}] {segment.text}")
        for word in segment.words:
            print(word.word, word.start, word.end)

    for result in recognizer.transcribe_files(speech_s2s.inputs(["a.flac", "recordings/"])):
        print(result.id, result.text if isinstance(result, speech_s2s.FileTranscript) else result.error)

Nothing heavy is imported until it is used, so `import speech_s2s` and `speech-s2s --help` are quick.
"""

import os

# OpenMP threads that spin while they wait collapse throughput ~10x when another process is busy
# on the machine; passive waiting costs nothing measurable on a quiet one. This must be set before
# torch loads OpenMP, and a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# oneDNN caches a compiled kernel per input shape, up to 1024 of them; speech comes in every length,
# so that cache only grows (measured: +100 MB over an hour of audio) and rarely hits. 16 keeps
# memory flat and was faster too (16.8 vs 23.2 CPU s for 320 segments).
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

__version__ = "0.1.0"

_API = {
    "load": ("speech_s2s.builder", "load"),
    "Recognizer": ("speech_s2s.transcribe", "Recognizer"),
    "TranscribeOptions": ("speech_s2s.transcribe", "TranscribeOptions"),
    "RecognizerConfig": ("speech_s2s.builder", "RecognizerConfig"),
    "build_recognizer": ("speech_s2s.builder", "build_recognizer"),
    "AudioInfo": ("speech_s2s.transcribe", "AudioInfo"),
    "Segment": ("speech_s2s.transcribe", "Segment"),
    "FileTranscript": ("speech_s2s.transcribe", "FileTranscript"),
    "FailedFile": ("speech_s2s.transcribe", "FailedFile"),
    "Word": ("speech_s2s.decoding.alignment", "Word"),
    "DecodingOptions": ("speech_s2s.decoding.options", "DecodingOptions"),
    "SegmenterConfig": ("speech_s2s.frontend.vad", "SegmenterConfig"),
    "inputs": ("speech_s2s.input_files", "inputs"),
    "AudioError": ("speech_s2s.frontend.audio", "AudioError"),
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name not in _API:
        raise AttributeError(f"module 'speech_s2s' has no attribute {name!r}")
    import importlib

    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
