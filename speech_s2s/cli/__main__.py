"""`python -m speech_s2s.cli ...` (and `torchrun ... -m speech_s2s.cli train ...`): the `speech-s2s` command."""

import sys

from speech_s2s.cli.main import main

if __name__ == "__main__":  # not when a spawned process (serve's decoding processes) imports the parent's main module
    sys.exit(main())
