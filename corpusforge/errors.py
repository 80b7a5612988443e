"""One exception type for every user-facing failure: the CLI prints it as one line, no traceback."""


class CorpusforgeError(Exception):
    """A problem the user can fix (bad config, bad input set, resume mismatch...)."""

    exit_code = 2

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message

    def __reduce__(self):  # a worker's error crosses the process pool whole (default pickling loses `code`)
        return type(self), (self.code, self.message)


class QuarantineLimitError(CorpusforgeError):
    exit_code = 3
