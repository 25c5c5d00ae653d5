"""How an exception from a library reads inside this project's one-line error messages."""


def first_line(error: BaseException) -> str:
    """The exception's type and the first line of its text (`ValueError: bad header`), or the type alone."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
