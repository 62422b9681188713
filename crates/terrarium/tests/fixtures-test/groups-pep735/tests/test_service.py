from service import app


def test_health():
    assert app.test_client().get("/health").json == {"ok": True}


def test_group_dependency(mocker):
    # pytest-mock comes only from the `test` dependency group (PEP 735).
    assert mocker.sentinel.value is mocker.sentinel.value


def test_source_is_read_only(tmp_path):
    # The source is mounted read-only; /tmp is writable.
    try:
        open("/app/written-by-a-test", "w")
    except OSError:
        pass
    else:
        raise AssertionError("/app is writable")
    (tmp_path / "ok").write_text("ok")
