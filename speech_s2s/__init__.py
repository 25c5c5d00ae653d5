"""speech_s2s: a readable Listen-Attend-Spell speech recogniser.

Data flows one way: audio -> features -> encoder -> search (decoder steps) -> text.
"""

__version__ = "0.1.0"
