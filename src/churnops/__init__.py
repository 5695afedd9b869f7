"""churnops: from a customer table to a secure, monitored churn-prediction service."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("churnops")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
