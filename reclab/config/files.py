"""Parameter files and ``--set`` overrides as plain YAML values, before they are typed
(:mod:`reclab.config.schema` types them).

Errors are :class:`~reclab.errors.ReclabError` naming the file (or the ``--set`` override) and,
where one is at fault, the dotted key.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Mapping

import yaml

from reclab.errors import ReclabError

__all__ = ["apply_overrides", "check_expansion", "fail", "overridden_source", "parse_assignments", "read",
           "read_text", "shown"]

# A parameter file has tens of values; YAML aliases can make a 1 KB file stand for billions
# ("billion laughs"): values are counted with each alias expanded, and refused beyond this.
_MAX_VALUES = 100_000
_MAX_MESSAGE = 2000


def fail(source: str, key: str, message: str) -> ReclabError:
    """``ReclabError("<source>: key '<key>' <message>")``, shortened."""
    return ReclabError(_shortened(f"{source}: key {key!r} {message}"))


def _shortened(message: str) -> str:
    """A message of at most about ``_MAX_MESSAGE`` characters (a long value is cut in the middle)."""
    if len(message) <= _MAX_MESSAGE:
        return message
    half = _MAX_MESSAGE // 2
    return f"{message[:half]} [... {len(message) - 2 * half} characters ...] {message[-half:]}"


def overridden_source(source: str, overrides: Mapping | None, given: str = "--set") -> str:
    """How messages name a parameter file read with ``overrides``: ``"<source> with --set
    key=value ..."`` (``source`` alone without them), so that a refused value given with --set is
    not blamed on the file. ``given`` says where the overrides came from, in the user's terms
    (``"--set"`` on the command line, ``"notebook parameters"`` in a stage notebook)."""
    if not overrides:
        return source
    return f"{source} with {given} " + " ".join(f"{key}={shown(value)}" for key, value in overrides.items())


def shown(value) -> str:
    """``value`` as JSON for a message (any value, not only JSON ones), shortened."""
    return _shortened(json.dumps(value, default=str))


def check_expansion(value, source: str) -> None:
    """Refuse a value that contains itself (a YAML anchor used inside its own value) or that
    stands for more than ``_MAX_VALUES`` values once its aliases are expanded.

    Shared nodes are counted once per use but visited once, so this takes time proportional to
    the file, not to the expansion.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise ReclabError(f"{source}: a value contains itself (a YAML anchor used inside its own "
                              f"value, such as '&a [*a]'); write the value out")
        open_nodes.add(key)
        total = 1
        for child in (node.values() if isinstance(node, dict) else node):
            total += size(child)
            if total > _MAX_VALUES:
                raise ReclabError(f"{source}: the values stand for more than {_MAX_VALUES:,} values once "
                                  f"YAML aliases (*name) are expanded; a parameter file needs far fewer "
                                  f"(nested aliases?)")
        open_nodes.discard(key)
        sizes[key] = total
        return total

    try:
        size(value)
    except RecursionError:
        raise ReclabError(f"{source}: values are nested too deeply") from None


def read(path) -> tuple[str, str]:
    """``(text, source)`` of a parameter file; a missing or unreadable file is an error (for a
    relative path, it names the folder it was looked for in: a stage notebook in JupyterLab
    runs in ``notebooks/``, not in the project's folder)."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except FileNotFoundError:
        where = "" if path.is_absolute() else f" in the working folder {Path.cwd()}"
        raise ReclabError(f"parameter file {str(path)!r} not found{where}") from None
    except OSError as error:
        raise ReclabError(f"parameter file {str(path)!r} cannot be read: {error}") from None


class _RepeatedKey(Exception):
    """A key written twice in one YAML mapping: ``(key, first line, second line)``, 1-based."""


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no code in the text is ever run) that refuses a key repeated in one
    mapping. PyYAML keeps the last one, so a section written twice replaces the first whole:
    ``tune: {n_trials: 20}`` appended to a copy of a file would put every other ``tune`` key of
    the copy back to its default, without a word."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":   # "<<: *base", overridden on purpose
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _RepeatedKey(key, seen[key], line)
                seen[key] = line
            except TypeError:   # an unhashable key: the base class says so
                continue
        return super().construct_mapping(node, deep=deep)


def _load(text: str):
    """``yaml.safe_load(text)`` with :class:`_Loader` (what ``yaml.load`` does with a loader)."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_text(text: str, source: str) -> dict:
    """The top-level mapping of YAML ``text`` (safe loading: no code in it is ever run); an
    empty text is ``{}``. A key repeated in one mapping is refused."""
    try:
        raw = _load(text)
    except _RepeatedKey as repeated:
        key, first, second = repeated.args
        raise ReclabError(f"{source}: key {key!r} is written twice in one mapping (lines {first} and "
                          f"{second}); YAML would keep only the second, and every key of the first "
                          f"would be lost: write it once") from None
    except yaml.YAMLError as error:
        raise ReclabError(f"{source}: not valid YAML: {error}") from None
    except RecursionError:
        raise ReclabError(f"{source}: values are nested too deeply") from None
    check_expansion(raw, source)
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise fail(source, "(top level)", f"must be a mapping (key: value lines), got {raw!r} "
                                          f"({type(raw).__name__})")
    for name in raw:
        if not isinstance(name, str):
            raise fail(source, "(top level)", f"has a non-string key {name!r}; keys are names")
    return dict(raw)


def parse_assignments(assignments) -> dict:
    """``["tune.n_trials=5", "k=[5,10]"]`` -> ``{"tune.n_trials": 5, "k": [5, 10]}``.

    The value after the first ``=`` is read as YAML (safe loading), so numbers, lists,
    ``null`` and ``true`` have their YAML types (nothing after ``=`` is null, as ``key:`` in a
    file is); quote a value to keep it a string.
    """
    out = {}
    for assignment in assignments:
        key, equals, text = str(assignment).partition("=")
        key = key.strip()
        if not equals or not key:
            raise ReclabError(f"--set {assignment!r} must look like key=value, for example "
                              f"tune.n_trials=5")
        if key in out:   # the last one won without a word; a file refuses a key written twice
            raise ReclabError(f"--set {key}=... is given twice; give each key once")
        try:
            out[key] = _load(text)   # None for nothing: null, as in a file ('' was refused)
        except _RepeatedKey as repeated:
            raise ReclabError(f"--set {assignment!r}: key {repeated.args[0]!r} is written twice") from None
        except yaml.YAMLError as error:
            raise ReclabError(f"--set {assignment!r}: the value is not valid YAML ({error})") from None
        except RecursionError:
            raise ReclabError(f"--set {assignment!r}: the value is nested too deeply") from None
        check_expansion(out[key], f"--set {assignment!r}")
    return out


def apply_overrides(values: dict, overrides: Mapping, source: str) -> dict:
    """A copy of the nested ``values`` with each ``{dotted key: value}`` of ``overrides`` set."""
    values = copy.deepcopy(values)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        if not all(parts):
            raise ReclabError(f"{source}: key {dotted!r} has an empty part; write dotted keys "
                              f"like tune.n_trials")
        node = values
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ReclabError(f"{source}: key {'.'.join(parts[:depth + 1])!r} is not a section "
                                  f"(its value is {child!r}), so {dotted!r} cannot be set")
            node = child
        node[parts[-1]] = value
    return values
