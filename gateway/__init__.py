"""The HTTP gateway: REST calls in, function results out."""

from .settings import ConfigError, S3Settings, Settings

__all__ = ["ConfigError", "S3Settings", "Settings"]
