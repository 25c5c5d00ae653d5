"""Each engine of tools/tts speaks every one of its voices; skipped where the engine is not installed.

CI installs espeak-ng (and sox) only, so there the espeak test runs and the others skip; a machine set up for
corpus making (README, "A corpus you can make offline") runs them all.
"""

import os
import random

import numpy as np
import pytest

from tools.tts import ENGINES
from tools.tts.engine import SAMPLE_RATE, gender, speaker_voices

TEXT = "she walked to the village in the rain"  # 8 words: about 2-4 seconds of speech


def voices_to_try(module) -> list[str]:
    """One voice per base voice (espeak has 15 variants of each accent; one is enough here)."""
    seen: dict[str, str] = {}
    for voice in speaker_voices(module):
        seen.setdefault(voice.split("+")[0], voice)
    return list(seen.values())


CASES = [pytest.param(name, voice, id=f"{name}-{voice}")
         for name, module in ENGINES.items() for voice in voices_to_try(module)]


@pytest.mark.parametrize(("engine", "voice"), CASES)
def test_every_voice_speaks_16k_float_audio_of_a_plausible_length(engine, voice):
    module = ENGINES[engine]
    if not module.available():
        if engine == "espeak" and os.environ.get("CI") == "true":  # CI installs espeak-ng: never skip there
            pytest.fail("espeak-ng is not installed")
        pytest.skip(f"{engine} is not installed")
    settings = dict(module.random_settings(voice, random.Random(0)))
    audio = module.synthesize(TEXT, voice, settings)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < len(audio) / SAMPLE_RATE < 8.0
    assert np.all(np.isfinite(audio)) and np.sqrt(np.mean(audio**2)) > 1e-3


@pytest.mark.parametrize("engine", list(ENGINES))
def test_every_engine_describes_its_voices_and_draws_settings_from_the_seed(engine):
    module = ENGINES[engine]
    assert module.ENGINE == engine and module.VOICES
    assert all(v.licence and v.gender in ("M", "F", "M/F") and v.packages for v in module.VOICES)
    for voice in speaker_voices(module):
        assert gender(module, voice) in ("M", "F")
        first = module.random_settings(voice, random.Random(f"x-{voice}"))
        assert first == module.random_settings(voice, random.Random(f"x-{voice}"))
        assert all(isinstance(k, str) and isinstance(v, float) for k, v in first)
    for v in module.VOICES:  # a voice's own gender wins, except espeak's M/F voices, whose variant decides
        if v.gender != "M/F":
            assert gender(module, v.name) == v.gender


@pytest.mark.parametrize("engine", list(ENGINES))
def test_an_utterance_is_the_same_audio_whatever_was_synthesised_before(engine):
    # corpora are rebuilt on new machines, with utterances spread over processes in varying order:
    # piper's noise once came from one onnxruntime session's random stream and changed at every build
    module = ENGINES[engine]
    if not module.available():
        pytest.skip(f"{engine} is not installed")
    voice = voices_to_try(module)[0]
    settings = dict(module.random_settings(voice, random.Random(1)))
    first = module.synthesize(TEXT, voice, settings)
    module.synthesize("a different sentence comes between", voice, settings)
    assert np.array_equal(module.synthesize(TEXT, voice, settings), first)
