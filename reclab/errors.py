"""The one error type reclab raises for bad input.

``ReclabError`` subclasses ``ValueError`` so that callers who already catch ``ValueError`` keep
working; its message always names the bad value and what would be right.
"""


class ReclabError(ValueError):
    """Bad input to reclab: a bad value, file, parameter or state, named in the message."""
