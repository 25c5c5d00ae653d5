"""Run a corpus tool with piper's noise seeded per utterance, as tools/tts/piper.py does today.

The frozen benchmark (test-tts, and dev-bench) is made by the corpus tool of commit 2941059, from git,
whose piper voice shares one onnxruntime session over all its utterances: their noise then depends
on the order the process met them in, and every build gave piper's voices new audio. This wraps
that tool unchanged: each piper utterance gets a new session seeded from its text and settings
(`tools/tts/piper.py`), so the benchmark is the same audio at every build.

    python recipes/campaign/seeded_piper.py TOOL.py [TOOL'S ARGUMENTS...]
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tools.tts import piper as seeded  # noqa: E402  (after the path: the repository's tools/)


def main() -> None:
    from piper import PiperVoice

    unseeded = PiperVoice.synthesize

    def synthesize(self, text, syn_config=None, *args, **kwargs):
        settings = {} if syn_config is None else {name: float(value) for name, value in vars(syn_config).items()
                                                  if isinstance(value, (int, float)) and not isinstance(value, bool)}
        self.session = seeded.session(seeded.utterance_seed(text, "legacy", settings))
        return unseeded(self, text, syn_config, *args, **kwargs)

    PiperVoice.synthesize = synthesize  # the tool's worker processes fork from here and keep it
    tool, *arguments = sys.argv[1:]
    sys.argv = [tool, *arguments]
    runpy.run_path(tool, run_name="__main__")


if __name__ == "__main__":
    main()
