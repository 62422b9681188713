"""A Flask service whose tests use only the standard library's unittest (no pytest anywhere)."""

from flask import Flask

app = Flask(__name__)


@app.get("/health")
def health():
    return {"status": "ok"}


def add(a: int, b: int) -> int:
    return a + b
