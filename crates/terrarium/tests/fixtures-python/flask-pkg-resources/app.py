"""A service whose dependency imports pkg_resources without declaring setuptools."""

import aiosql
from flask import Flask, jsonify

app = Flask(__name__)

QUERIES = aiosql.from_str(
    "-- name: get-answer$\nselect 42;\n",
    "sqlite3",
)


@app.get("/health")
def health():
    return jsonify(status="ok", queries=sorted(QUERIES.available_queries))
