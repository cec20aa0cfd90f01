"""reclab: a Jupyter-first, reproducible experiment lab for recommender systems."""

from reclab.data import Interactions
from reclab.errors import ReclabError

__version__ = "0.1.0"

__all__ = ["Interactions", "ReclabError", "__version__"]
