"""The `faas` CLI and function bundling: find the functions of a file, serialize them into
bundles (docs/BUNDLE.md), store them under CFS `/faas`, list, remove and call them."""

from .bundle import FORMAT, LABEL, Bundle, Limits, build_bundle, load_entrypoint, parse_bundle
from .errors import (
    BundleError,
    DeployerError,
    FunctionNotFoundError,
    NoPublicFunctionsError,
    NotMemberError,
    SerializationError,
    SourceFileError,
    UnreachableError,
)
from .inspect_functions import find_functions, load_source_file, plan_function, unload

__all__ = [
    "Bundle",
    "BundleError",
    "DeployerError",
    "FORMAT",
    "FunctionNotFoundError",
    "LABEL",
    "Limits",
    "NoPublicFunctionsError",
    "NotMemberError",
    "SerializationError",
    "SourceFileError",
    "UnreachableError",
    "build_bundle",
    "find_functions",
    "load_entrypoint",
    "load_source_file",
    "parse_bundle",
    "plan_function",
    "unload",
]
