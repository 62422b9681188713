import sys

import pytest

from app import app


def test_health_names_the_python():
    response = app.test_client().get("/health")
    assert response.json["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_dev_dependency_from_requirements_dev(mocker):
    # pytest-mock comes only from requirements-dev.txt.
    stub = mocker.Mock(return_value=3)
    assert stub() == 3


@pytest.mark.skip(reason="shows up in the skipped column")
def test_skipped():
    raise AssertionError


def test_fails_only_on_3_13():
    assert sys.version_info[:2] != (3, 13), "this test fails on CPython 3.13 only"
