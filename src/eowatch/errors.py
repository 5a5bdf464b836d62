"""One exception tree. Every message says what was wrong and how to fix it.

Callers can catch ``EowatchError`` for everything, or the standard base
(``ValueError``, ``OSError``, ``KeyError``) they already handle. ``retryable``
says whether the same work may succeed later (a server that was down, a
database that was locked): job queues retry on it, never on the base class.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "EowatchError",
    "InputError",
    "InputReadError",
    "RemoteReadError",
    "MissingBandError",
    "NoOverlapError",
    "AOIError",
    "UnknownPresetError",
    "ParameterError",
    "PairingError",
    "NoValidDataError",
    "ProductWriteError",
    "ProviderError",
    "NotFoundError",
    "CatalogError",
    "CatalogBusyError",
    "JobTimeoutError",
]


class EowatchError(Exception):
    """Base of every error raised by eowatch."""

    #: Whether retrying the same work later may succeed.
    retryable: ClassVar[bool] = False


class InputError(EowatchError, ValueError):
    """The inputs given by the user cannot be used as they are."""


class InputReadError(EowatchError, OSError):
    """A file or URL could not be opened or read."""


class RemoteReadError(InputReadError):
    """A remote server did not answer in time, was unreachable or failed for now."""

    retryable = True


class MissingBandError(InputError, KeyError):
    """A band the preset needs is not among the inputs."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NoOverlapError(InputError):
    """The two acquisitions (or the AOI and the images) do not overlap."""


class AOIError(InputError):
    """The area of interest is malformed, empty, too large or outside the data."""


class UnknownPresetError(InputError, KeyError):
    """No preset is registered under the given name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ParameterError(InputError):
    """A preset parameter is unknown or has an invalid value."""


class PairingError(InputError):
    """Two acquisitions are not comparable (orbit, pass, polarisation, units)."""


class NoValidDataError(EowatchError):
    """Nothing valid is left to compare (all cloud or nodata)."""


class ProductWriteError(EowatchError, OSError):
    """A product could not be written."""


class ProviderError(EowatchError, OSError):
    """A discovery provider (STAC API, token service, local catalogue) could not be
    reached or answered with an error, after retries."""

    retryable = True


class NotFoundError(EowatchError, LookupError):
    """A collection, item or asset does not exist in the results catalogue."""


class CatalogError(EowatchError):
    """The results catalogue (its database or a product folder) cannot be used as asked."""


class CatalogBusyError(CatalogError):
    """The catalogue's database was locked or unreachable for now."""

    retryable = True


class JobTimeoutError(EowatchError, TimeoutError):
    """A job ran past its wall-clock limit and was stopped."""


class AuthError(EowatchError, PermissionError):
    """No credentials, or credentials that are not valid (unknown, revoked, expired)."""


class ForbiddenError(EowatchError, PermissionError):
    """Valid credentials whose role does not allow the action."""


__all__ += ["AuthError", "ForbiddenError"]
