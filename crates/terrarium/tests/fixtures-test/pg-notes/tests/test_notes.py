import socket

import pytest

from notes import app


def test_notes_round_trip_through_postgres():
    client = app.test_client()
    assert client.post("/notes/hello").json == {"added": "hello"}
    assert "hello" in client.get("/notes").json["notes"]


def test_no_network_but_the_services():
    # The suite's network is internal: PostgreSQL answers, nothing outside does.
    socket.create_connection(("postgres", 5432), timeout=3).close()
    with pytest.raises(OSError):
        socket.create_connection(("1.1.1.1", 80), timeout=3)


@pytest.mark.slow
def test_slow():
    import time

    time.sleep(120)
