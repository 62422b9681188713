from __future__ import annotations

import pytest
from fake_points import FakePoints
from fastapi.testclient import TestClient

from rewards.main import app, get_points
from rewards.points import PointsClient


@pytest.fixture
def points() -> FakePoints:
    return FakePoints(balances={"alice": 20, "bob": 3})


@pytest.fixture
def client(points, monkeypatch):
    monkeypatch.setenv("POINTS_URL", "http://points.test:8000")
    fake = PointsClient(
        "http://points.test:8000", retries=2, backoff=0, transport=points.transport()
    )
    app.dependency_overrides[get_points] = lambda: fake
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.dependency_overrides.clear()
