"""Flat config dataclasses read back from the JSON a model file stores in its metadata.

The character LM and the punctuation restorer keep their configs this way; fields a file lacks take
their defaults, and a field of the wrong type is refused by name rather than deep in torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, TypeVar

Config = TypeVar("Config")


def flat_config_from_json(cls: type[Config], text: str) -> Config:
    """`cls` (a dataclass of numbers, strings and tuples of strings) from its JSON object. Raises
    ValueError (JSONDecodeError included) naming the field for anything unusable."""
    values: Any = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError("config is not a JSON object")
    defaults = cls()
    unknown = sorted(set(values) - set(asdict(defaults)))
    if unknown:
        raise ValueError(f"unknown config fields {unknown}")
    for key, value in values.items():
        default = getattr(defaults, key)
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"config field {key!r} must be a list of strings, not {value!r}")
            values[key] = tuple(value)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(default, int) and not isinstance(value, int)):
            raise ValueError(f"config field {key!r} must be {type(default).__name__}, not {value!r}")
    return cls(**values)
