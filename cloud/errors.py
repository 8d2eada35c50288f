"""Turn Azure ML failures into one-line ``CloudError`` messages, and retry transient ones.

This module imports nothing from ``azureml``: it reads exceptions by their attributes and text,
so the REST client and the dry runs can use it without the SDK installed.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from typing import Callable, TypeVar

from lab.errors import LabError

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_CAUSE_CHARS = 240
RETRY_ATTEMPTS = 5
RETRY_BASE_DELAY_S = 2.0
RETRY_MAX_DELAY_S = 60.0
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

# Patterns in the text Azure returns, checked in this order. The first match picks the next step.
_KINDS = (
    (
        "login",
        re.compile(
            r"AADSTS(50173|700082|70043|70008|50078|50076)|refresh token has expired|token.*expired|"
            r"az login|InteractiveBrowserCredential|AuthenticationException|invalid_grant|"
            r"Please run ['\"]?az login",
            re.IGNORECASE,
        ),
    ),
    (
        "permission",
        re.compile(
            r"AuthorizationFailed|does not have authorization|LinkedAuthorizationFailed|Forbidden|"
            r"\b403\b|not authorized|insufficient privileges",
            re.IGNORECASE,
        ),
    ),
    (
        "quota",
        re.compile(
            r"QuotaExceeded|quota|exceeding approved|OperationNotAllowed.*cores|"
            r"ContainerGroupQuotaReached|SkuNotAvailable|capacity",
            re.IGNORECASE,
        ),
    ),
    ("not_found", re.compile(r"NotFound|not found|\b404\b|could not be found|does not exist", re.IGNORECASE)),
)

NEXT_STEPS = {
    "login": "sign in again (`az login` for --auth cli, rerun for --auth interactive, or renew the "
    "service principal secret) and retry",
    "permission": "ask the subscription owner for the Contributor or AzureML Data Scientist role on the "
    "resource group, or use an identity that has it",
    "quota": "request more quota for this VM family or region in the Azure portal (Quotas), "
    "or choose a smaller VM size or fewer nodes",
    "not_found": "check the names in config.json and on the command line",
}


class CloudError(LabError):
    """An Azure ML operation failed; the message names the resource, Azure's cause and the next step."""

    exit_code = 7


def status_code_of(exc: BaseException) -> int | None:
    """Return the HTTP status carried by an SDK or requests exception, if any."""
    for candidate in (exc, getattr(exc, "response", None), getattr(exc, "inner_exception", None)):
        if candidate is None:
            continue
        for attribute in ("status_code", "status"):
            value = getattr(candidate, attribute, None)
            if isinstance(value, int) and 100 <= value <= 599:
                return value
        response = getattr(candidate, "response", None)
        value = getattr(response, "status_code", None)
        if isinstance(value, int):
            return value
    return None


def cause_of(exc: BaseException) -> str:
    """Return Azure's own words for a failure: ``code: message`` when the text carries JSON.

    The result is one line, at most ``MAX_CAUSE_CHARS`` characters.
    """
    text = str(getattr(exc, "message", None) or exc) or exc.__class__.__name__
    code = _json_field(text, "code")
    message = _json_field(text, "message")
    if message:
        cause = f"{code}: {message}" if code and code not in message else message
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        cause = lines[0] if lines else exc.__class__.__name__
        if cause.rstrip(":") == exc.__class__.__name__ and len(lines) > 1:
            cause = lines[1]
    cause = " ".join(cause.split())
    if len(cause) > MAX_CAUSE_CHARS:
        cause = cause[: MAX_CAUSE_CHARS - 3] + "..."
    return cause


def cause_of_details(error) -> str:
    """Return Azure's cause from a run's or service's ``error`` details, a dict or a string.

    Run details nest the document (``{"error": {"code", "message"}}``) or give it flat.
    """
    if isinstance(error, dict):
        inner = error.get("error") if isinstance(error.get("error"), dict) else error
        code, message = inner.get("code"), inner.get("message")
        if message:
            return cause_of(Exception(f"{code}: {message}" if code and code not in message else message))
        return cause_of(Exception(json.dumps(error, default=str))) if error else "no error details returned"
    return cause_of(Exception(str(error))) if error else "no error details returned"


def _json_field(text: str, field: str) -> str | None:
    """Find the innermost ``"field": "value"`` in text that embeds an Azure error document."""
    matches = re.findall(rf'"{field}"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if not matches:
        return None
    value = matches[-1] if field == "code" else matches[0]
    try:
        return json.loads(f'"{value}"')
    except json.JSONDecodeError:
        return value


def classify(exc: BaseException) -> str:
    """Return ``login``, ``permission``, ``quota``, ``not_found``, ``transient`` or ``other``."""
    status = status_code_of(exc)
    text = f"{exc.__class__.__name__} {getattr(exc, 'message', '') or ''} {exc}"
    if status in TRANSIENT_STATUS:
        return "transient"
    if status == 401:
        return "login"
    if status == 403:
        return "permission"
    for kind, pattern in _KINDS:
        if pattern.search(text):
            return kind
    if re.search(r"TooManyRequests|\b429\b|ServiceUnavailable|\b50[234]\b|InternalServerError", text):
        return "transient"
    return "other"


def is_transient(exc: BaseException) -> bool:
    """Tell whether a retry may succeed: throttling (429), server errors (5xx) and timeouts."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    name = exc.__class__.__name__
    if name in {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "ServiceRequestError"}:
        return True
    return classify(exc) == "transient"


def cloud_error(what: str, exc: BaseException, next_step: str | None = None) -> CloudError:
    """Build the one-line error for ``what`` (an action and a resource) failing with ``exc``.

    ``next_step`` overrides the step chosen from the kind of failure.
    """
    kind = classify(exc)
    step = next_step or NEXT_STEPS.get(kind) or "retry later; if it fails again, check the resource in Azure ML studio"
    return CloudError(f"{what} failed: {cause_of(exc)}; {step}")


def with_retry(
    call: Callable[[], T],
    what: str,
    attempts: int = RETRY_ATTEMPTS,
    base_delay_s: float = RETRY_BASE_DELAY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call()``, retrying transient failures with exponential backoff and jitter.

    A non-transient failure is raised at once. After ``attempts`` transient failures the last
    one is raised, so the caller turns it into a ``CloudError``.
    """
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - the SDK raises many unrelated types
            if attempt == attempts or not is_transient(exc):
                raise
            delay = min(RETRY_MAX_DELAY_S, base_delay_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            logger.warning(
                "%s: transient failure (%s), retry %d of %d in %.1f s",
                what, cause_of(exc), attempt, attempts - 1, delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")


def mask_secret(value: str | None, shown: int = 4) -> str:
    """Show the first ``shown`` characters of a key or token and its length, never the whole value."""
    if not value:
        return "(none)"
    if len(value) <= shown * 2:
        return f"{'*' * len(value)} ({len(value)} chars)"
    return f"{value[:shown]}... ({len(value)} chars)"
