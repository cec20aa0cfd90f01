"""reclab's benchmark suite: speed, memory and accuracy against peer libraries.

Not part of the test suite. Run with ``make bench`` (which installs the peers, implicit and
scikit-surprise, into their own venv) or ``python -m benchmarks --help``.
"""
