"""The `speech-s2s` command line: `main.py` builds the parser and runs a command; each command group
has its own module; `options.py` holds what they share. Building the parser imports no torch."""
