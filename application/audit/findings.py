"""What verification finds: the first place where an export, the store or the live state diverge."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Finding:
    """One divergence, with the log position (and export line) where it shows first."""

    code: str
    message: str
    position: int | None = None
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "position": self.position,
            "line": self.line,
        }

    def describe(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.line is not None:
            where.append(f"line {self.line}")
        prefix = f"at {', '.join(where)}: " if where else ""
        return f"{prefix}{self.message} [{self.code}]"


class VerificationFailedError(Exception):
    """Verification stopped at a finding."""

    def __init__(self, finding: Finding) -> None:
        self.finding = finding
        super().__init__(finding.describe())


def fail(code: str, message: str, position: int | None = None) -> VerificationFailedError:
    """A failure to raise; the verifier adds the line number."""
    return VerificationFailedError(Finding(code, message, position))


def reason_of(error: Exception) -> str:
    """A one-line reason: a validation error's first problem, or the error's message."""
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(error) or type(error).__name__
