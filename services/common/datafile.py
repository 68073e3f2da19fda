"""Rules, routing and targets kept as TOML data files, validated by pydantic models. Pure.

A file that cannot be used is refused as a whole, with each problem named by its place in the
file and its line: ``routing_table.toml:57 complaint[3].responsible: unknown department 'x'``.
"""

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError

Location = tuple[str | int, ...]
"""Where a value sits in a data file: keys and array indexes, as pydantic reports them."""


class DataFileError(ValueError):
    """A data file cannot be used; the message names the file, the line and the problem."""


class DataFile(BaseModel):
    """A model read from a data file: unknown keys are refused, nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def cross_check(self) -> Sequence[tuple[Location, str]]:
        """Problems between entries (a reference to something not defined, a repeat, …)."""
        return ()

    @classmethod
    def from_toml(cls, text: str, *, source: str = "data file") -> Self:
        try:
            loaded = cls.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as error:
            raise DataFileError(f"{source}: {error}") from error
        except ValidationError as error:
            problems: Sequence[tuple[Location, str]] = [
                (tuple(problem["loc"]), problem["msg"])
                for problem in error.errors(include_input=False)
            ]
        else:
            problems = loaded.cross_check()
            if not problems:
                return loaded
        raise DataFileError(
            "\n".join(
                f"{source}:{line_of(text, location)} {describe(location)}: {message}"
                for location, message in problems
            )
        )

    @classmethod
    def from_file(cls, path: Path) -> Self:
        return cls.from_toml(path.read_text(encoding="utf-8"), source=path.name)


def describe(location: Location) -> str:
    """``("complaint", 2, "responsible")`` → ``complaint[3].responsible`` (entries count from 1)."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            text += f".{part}" if text else part
    return text or "file"


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_-]+|\"[^\"]*\")\s*=")


def line_of(text: str, location: Location) -> int:
    """The line of ``location`` in TOML ``text``: the key's line, else the header of the
    deepest table holding it (an array of tables starts at its first ``[[…]]``), else 1.

    tomllib keeps no positions, so the tables and keys are found again by a line scan; this
    covers the layout our data files use (tables, arrays of tables, one key per line).
    """
    table_path: list[str | int] = []
    array_counts: dict[tuple[str, ...], int] = {}
    best = 1
    best_depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = tuple(name.strip().strip('"') for name in header.group(2).split("."))
            if header.group(1) == "[[":
                index = array_counts.get(names, -1) + 1
                array_counts[names] = index
                table_path = [*names, index]
            else:
                table_path = list(names)
            # A header also opens its parents: [[complaint]] starts the complaint array,
            # [departments.finance] the departments table.
            depth = _matching_depth(table_path, location)
            if depth > best_depth:
                best, best_depth = number, depth
            continue
        key = _KEY.match(line)
        if key:
            path = [*table_path, key.group(1).strip('"')]
            depth = _matching_depth(path, location)
            if depth == len(path) and depth > best_depth:
                best, best_depth = number, depth
    return best


def _matching_depth(path: Sequence[str | int], location: Location) -> int:
    depth = 0
    for mine, theirs in zip(path, location, strict=False):
        if mine != theirs:
            break
        depth += 1
    return depth
