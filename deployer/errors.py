"""The deployer's error tree: every failure the `faas` CLI reports, with a message for humans."""

from __future__ import annotations

__all__ = [
    "BundleError",
    "DeployerError",
    "FunctionNotFoundError",
    "NoPublicFunctionsError",
    "NotMemberError",
    "SerializationError",
    "SourceFileError",
    "UnreachableError",
]


class DeployerError(Exception):
    """Root of every deployer error; `str(error)` is the message the CLI prints."""

    exit_code = 1


class SourceFileError(DeployerError):
    """The function file is missing, unreadable, has a syntax error, or fails on import."""


class NoPublicFunctionsError(DeployerError):
    """The file defines no public top-level function (or none of the names asked for)."""


class SerializationError(DeployerError):
    """A function (or an object it needs) cannot be serialized."""


class BundleError(DeployerError):
    """Stored bytes under `/faas` are neither a bundle nor a Python source file."""


class FunctionNotFoundError(DeployerError):
    """No function (or no revision with that version) is deployed under that name."""


class UnreachableError(DeployerError):
    """The Colonies server or the S3 store cannot be reached (the message names the URL)."""


class NotMemberError(DeployerError):
    """The configured private key is not a member of the colony."""
