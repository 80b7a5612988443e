"""Built-in stages register themselves on import."""

from corpusforge.stages import basic  # noqa: F401
from corpusforge.stages import dedup  # noqa: F401
