"""Declared source options and their validation, shared by every source kind.

Each source class lists its options once, as :class:`Option` entries with a
type, a default and a check. The same declaration serves three callers: the
source's constructor (which raises one :class:`~edgemon.errors.ConfigError`
for all problems), :func:`edgemon.sources.check_source_options` (which
returns the problems so that a config file is checked in one pass), and the
option tables in ``docs/sources.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgemon.errors import ConfigError

__all__ = [
    "REQUIRED",
    "Option",
    "channel_names",
    "in_range",
    "nonnegative",
    "one_of",
    "positive",
    "raise_problems",
    "validate_options",
]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of an option that has none: leaving it out is a problem.
REQUIRED: Any = _Required()

#: A check returns None for a valid value, or what the value must be ("an integer from 1 to 65535").
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class Option:
    """One option of a source kind.

    Parameters
    ----------
    name : str
        The key in the config table and the constructor's keyword.
    types : tuple of type
        Accepted Python types. ``float`` options also accept ``int``;
        ``bool`` is never accepted for a number.
    default : object
        The value used when the option is absent; :data:`REQUIRED` when it
        must be given.
    check : callable, optional
        Further validation of a value of the right type.
    help : str
        One line for the docs and for "missing option" messages: what the
        option sets and in what unit.
    """

    name: str
    types: tuple[type, ...]
    default: Any = REQUIRED
    check: Check | None = None
    help: str = ""

    @property
    def required(self) -> bool:
        """Whether the option has no default."""
        return self.default is REQUIRED


def validate_options(
    kind: str, declared: Sequence[Option], given: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Check ``given`` against the ``declared`` options of source ``kind``.

    Returns
    -------
    values : dict
        Every declared option, with its default where it was not given.
        Values that failed their check are included as given.
    problems : list of str
        One message per problem, each naming the source kind and the option.
    """
    by_name = {option.name: option for option in declared}
    problems = []
    for name in given:
        if name not in by_name:
            valid = ", ".join(sorted(by_name))
            problems.append(f"{kind} source: unknown option {name!r}; valid options: {valid}")

    values = {}
    for option in declared:
        if option.name not in given or given[option.name] is None:
            if option.required:
                problems.append(
                    f"{kind} source: option {option.name!r} is missing; set it to {option.help}"
                )
            values[option.name] = None if option.required else option.default
            continue
        value = given[option.name]
        values[option.name] = value
        problem = _type_problem(option, value)
        if problem is None and option.check is not None:
            problem = option.check(value)
        if problem is not None:
            problems.append(
                f"{kind} source: option {option.name!r} must be {problem}, got {value!r}"
            )
    return values, problems


def raise_problems(kind: str, problems: Sequence[str]) -> None:
    """Raise one ConfigError listing ``problems``; do nothing when there are none."""
    if not problems:
        return
    if len(problems) == 1:
        raise ConfigError(problems[0])
    listed = "\n".join(f"  - {problem}" for problem in problems)
    raise ConfigError(f"invalid {kind} source options:\n{listed}")


def _type_problem(option: Option, value: Any) -> str | None:
    if isinstance(value, bool) and bool not in option.types:
        return _type_description(option.types)
    accepted = option.types + ((int,) if float in option.types else ())
    if isinstance(value, accepted):
        return None
    return _type_description(option.types)


def _type_description(types: tuple[type, ...]) -> str:
    names = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        tuple: "a list",
        dict: "a table",
    }
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


# Checks ----------------------------------------------------------------------------------------


def positive(value: float) -> str | None:
    """Accept a finite number above 0."""
    if math.isfinite(value) and value > 0:
        return None
    return "a positive number"


def nonnegative(value: float) -> str | None:
    """Accept a finite number of 0 or more."""
    if math.isfinite(value) and value >= 0:
        return None
    return "a number of 0 or more"


def in_range(low: float, high: float, what: str = "an integer") -> Check:
    """Accept ``low <= value <= high``."""

    def check(value: float) -> str | None:
        if low <= value <= high:
            return None
        return f"{what} from {low} to {high}"

    return check


def one_of(choices: Iterable[Any]) -> Check:
    """Accept one of ``choices``."""
    allowed = tuple(choices)

    def check(value: Any) -> str | None:
        if value in allowed:
            return None
        return "one of " + ", ".join(repr(choice) for choice in allowed)

    return check


def channel_names(allowed: Iterable[str] | None = None, max_count: int | None = None) -> Check:
    """Accept a non-empty list of distinct, non-empty channel names, optionally from ``allowed``."""
    allowed_names = tuple(allowed) if allowed is not None else None

    def check(value: Sequence[Any]) -> str | None:
        expected = "a non-empty list of distinct channel names"
        if allowed_names is not None:
            expected += " from " + ", ".join(repr(name) for name in allowed_names)
        if max_count is not None:
            expected += f", at most {max_count}"
        if not value or not all(isinstance(name, str) and name for name in value):
            return expected
        if len(set(value)) != len(value):
            return expected
        if allowed_names is not None and not set(value) <= set(allowed_names):
            return expected
        if max_count is not None and len(value) > max_count:
            return expected
        return None

    return check
