"""The scikit-learn parameter protocol, once for every reclab estimator.

:class:`Estimator` gives ``get_params``, ``set_params`` and ``repr`` from the signature of the
subclass's ``__init__``, which stores each keyword argument under its own name and does nothing
else (scikit-learn's contract). Every model (:class:`reclab.models.base.Recommender`) and
:class:`reclab.normalize.BiasNormalizer` inherit it, so tuning and ``clone`` handle them alike.
"""

from __future__ import annotations

import inspect

from reclab.errors import ReclabError

__all__ = ["Estimator"]


class Estimator:
    """``get_params`` / ``set_params`` / ``repr`` from the ``__init__`` signature.

    A subclass's ``__init__`` lists every parameter explicitly (no ``*args`` or ``**kwargs``)
    and stores each one unchanged under its own name; parameters are validated when the
    estimator is fitted, never by ``__init__`` or ``set_params``.
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        names = []
        for name, parameter in signature.parameters.items():
            if name == "self":
                continue
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                raise TypeError(f"{cls.__name__}.__init__ must list its parameters explicitly, "
                                f"not *{name}")
            names.append(name)
        return names

    def get_params(self, deep: bool = True) -> dict:
        """Parameters by name, as passed to ``__init__`` (``deep`` is accepted for scikit-learn
        compatibility; reclab estimators have no nested estimators)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "Estimator":
        """Set parameters by name and return ``self``; unknown names raise ``ReclabError``.

        Parameters are only stored here; they are validated by the next ``fit``.
        """
        valid = self._param_names()
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ReclabError(f"unknown parameter{'s' if len(unknown) > 1 else ''} {unknown} for "
                              f"{type(self).__name__}; valid parameters are {valid}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.get_params().items())
        return f"{type(self).__name__}({args})"
