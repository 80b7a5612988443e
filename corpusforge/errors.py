"""One exception type for every user-facing failure: the CLI prints it as one line, no traceback."""


class CorpusforgeError(Exception):
    """A problem the user can fix (bad config, bad input set, resume mismatch...)."""

    exit_code = 2

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


class QuarantineLimitError(CorpusforgeError):
    exit_code = 3
