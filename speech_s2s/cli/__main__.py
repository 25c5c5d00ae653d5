"""`python -m speech_s2s.cli ...` (and `torchrun ... -m speech_s2s.cli train ...`): the `speech-s2s` command."""

import sys

from speech_s2s.cli.main import main

sys.exit(main())
