"""Built-in stages register themselves on import."""

from corpusforge.stages import basic  # noqa: F401
from corpusforge.stages import dedup  # noqa: F401
from corpusforge.stages import dedup_lines  # noqa: F401
from corpusforge.stages import decontaminate  # noqa: F401
from corpusforge.stages import clean  # noqa: F401
from corpusforge.stages import t2s  # noqa: F401
from corpusforge.stages import pangu_rules  # noqa: F401
from corpusforge.stages import sensitive  # noqa: F401
from corpusforge.stages import model_filters  # noqa: F401
from corpusforge.stages import tokenize  # noqa: F401
from corpusforge.stages import perplexity  # noqa: F401
from corpusforge.stages import pii  # noqa: F401
