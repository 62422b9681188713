from web import app


def test_health():
    assert app.test_client().get("/health").json == {"ok": True}


def test_poetry_dev_group(mocker):
    # pytest-mock comes only from Poetry's dev group (poetry.lock).
    assert mocker.Mock(return_value=1)() == 1
