"""Error translation and retries (cloud.errors), with failures shaped as Azure returns them."""

from __future__ import annotations

import pytest

from cloud import errors
from cloud.errors import CloudError

# Message texts in the form azureml-core 1.61 raises them: a summary line, then Azure's JSON.
QUOTA_TEXT = (
    "ComputeTargetException:\n\tMessage: Received bad response from Resource Provider:\n"
    '{"error": {"code": "QuotaExceeded", "message": "Operation could not be completed as it results in '
    'exceeding approved standardDv2Family Cores quota. Current limit: 4, requested: 8."}}'
)
PERMISSION_TEXT = (
    '{"error": {"code": "AuthorizationFailed", "message": "The client \'lab-sp\' does not have authorization '
    "to perform action 'Microsoft.MachineLearningServices/workspaces/computes/write'.\"}}"
)
EXPIRED_TEXT = (
    "AuthenticationException: AADSTS700082: The refresh token has expired due to inactivity. "
    "Please run 'az login' to setup account."
)


class HttpFailure(Exception):
    """An exception carrying an HTTP status, as msrest and azure-core errors do."""

    def __init__(self, status_code: int, text: str = "failure"):
        super().__init__(text)
        self.status_code = status_code


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (Exception(QUOTA_TEXT), "quota"),
        (Exception(PERMISSION_TEXT), "permission"),
        (Exception(EXPIRED_TEXT), "login"),
        (HttpFailure(429), "transient"),
        (HttpFailure(503), "transient"),
        (HttpFailure(401), "login"),
        (HttpFailure(403), "permission"),
        (Exception("WebserviceNotFound: Webservice with name svc not found in provided workspace"), "not_found"),
        (Exception("something odd"), "other"),
    ],
)
def test_classify_kinds(exc, kind):
    assert errors.classify(exc) == kind


def test_cause_takes_azure_code_and_message():
    cause = errors.cause_of(Exception(QUOTA_TEXT))
    assert cause.startswith("QuotaExceeded: Operation could not be completed")
    assert "\n" not in cause


def test_cause_is_truncated_to_one_short_line():
    cause = errors.cause_of(Exception("x" * 1000 + "\nsecond line"))
    assert len(cause) == errors.MAX_CAUSE_CHARS
    assert cause.endswith("...")


def test_cloud_error_names_resource_cause_and_next_step():
    error = errors.cloud_error("creating cluster automl-cluster (STANDARD_D2_V2)", Exception(QUOTA_TEXT))
    message = str(error)
    assert isinstance(error, CloudError)
    assert message.startswith("creating cluster automl-cluster (STANDARD_D2_V2) failed: QuotaExceeded")
    assert "request more quota" in message
    assert "\n" not in message


def test_cloud_error_for_expired_login_says_sign_in():
    message = str(errors.cloud_error("opening workspace ws", Exception(EXPIRED_TEXT)))
    assert "AADSTS700082" in message
    assert "sign in again" in message


def test_cloud_error_for_permission_names_role():
    message = str(errors.cloud_error("creating cluster c", Exception(PERMISSION_TEXT)))
    assert "AuthorizationFailed" in message
    assert "Contributor" in message


def test_with_retry_retries_transient_then_succeeds():
    calls = []
    delays = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise HttpFailure(429, "TooManyRequests")
        return "ok"

    assert errors.with_retry(flaky, "flaky call", sleep=delays.append) == "ok"
    assert len(calls) == 3
    assert len(delays) == 2
    assert delays[1] > delays[0] * 0.9  # the delay grows (jitter is at most a factor of two)


def test_with_retry_raises_permanent_failure_at_once():
    calls = []

    def denied():
        calls.append(1)
        raise HttpFailure(403, "AuthorizationFailed")

    with pytest.raises(HttpFailure):
        errors.with_retry(denied, "denied call", sleep=lambda s: None)
    assert len(calls) == 1


def test_with_retry_raises_last_transient_failure():
    calls = []

    def down():
        calls.append(1)
        raise HttpFailure(502, "bad gateway")

    with pytest.raises(HttpFailure):
        errors.with_retry(down, "down call", attempts=4, sleep=lambda s: None)
    assert len(calls) == 4


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "(none)"), ("", "(none)"), ("abc", "*** (3 chars)"), ("0123456789abcdef0123456789abcdef", "0123... (32 chars)")],
)
def test_mask_secret(value, expected):
    assert errors.mask_secret(value) == expected
