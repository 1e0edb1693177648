"""Status ordering and the exit-code arithmetic of the CI gate."""

import pytest

from fraudit.detectors.base import FailOn, Status, exit_code


def test_verdict_is_the_worst_status() -> None:
    assert max([Status.PASS, Status.INCONCLUSIVE, Status.WARN]) is Status.WARN
    assert max([Status.FAIL, Status.WARN]) is Status.FAIL
    assert max([Status.FAIL, Status.ERROR]) is Status.ERROR


@pytest.mark.parametrize(
    ("statuses", "fail_on", "code"),
    [
        ([Status.PASS, Status.PASS], FailOn.FAIL, 0),
        ([Status.PASS, Status.INCONCLUSIVE], FailOn.FAIL, 0),
        ([Status.PASS, Status.WARN], FailOn.FAIL, 0),
        ([Status.PASS, Status.FAIL], FailOn.FAIL, 1),
        ([Status.FAIL, Status.ERROR], FailOn.FAIL, 2),
        ([Status.WARN], FailOn.WARN, 1),
        ([Status.INCONCLUSIVE], FailOn.WARN, 0),
        ([Status.INCONCLUSIVE], FailOn.INCONCLUSIVE, 2),
        ([Status.WARN], FailOn.INCONCLUSIVE, 1),
        ([], FailOn.FAIL, 0),
    ],
)
def test_exit_code(statuses: list[Status], fail_on: FailOn, code: int) -> None:
    assert exit_code(statuses, fail_on=fail_on) == code
