"""Rules, routing and targets kept as TOML data files, validated by pydantic models. Pure."""

import tomllib
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError


class DataFileError(ValueError):
    """A data file cannot be used; the message names the file, the entry and the problem."""


class DataFile(BaseModel):
    """A model read from a data file: unknown keys are refused, nothing changes after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def from_toml(cls, text: str, *, source: str = "data file") -> Self:
        try:
            return cls.model_validate(tomllib.loads(text))
        except tomllib.TOMLDecodeError as error:
            raise DataFileError(f"{source}: {error}") from error
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in problem['loc']) or 'file'}: {problem['msg']}"
                for problem in error.errors(include_input=False)
            )
            raise DataFileError(f"{source}: {problems}") from error
