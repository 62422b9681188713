"""A 2021 service whose pins need a Python older than every maintained one."""

import platform

import greenlet
from flask import Flask, jsonify

app = Flask(__name__)


def _switch():
    """Run a greenlet to prove its compiled module works, not only imports."""
    child = greenlet.greenlet(lambda: greenlet.getcurrent().parent.switch("switched"))
    return child.switch()


@app.get("/health")
def health():
    return jsonify(
        status="ok",
        python=platform.python_version(),
        greenlet=greenlet.__version__,
        switch=_switch(),
    )
