"""A Flask service on PostgreSQL through psycopg2, which has no Linux wheel: terrarium builds it
from its source distribution against libpq."""
import os

import psycopg2
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/")
def index():
    with psycopg2.connect(os.environ["DATABASE_URL"]) as connection:
        with connection.cursor() as cursor:
            cursor.execute("select 6 * 7, current_setting('server_version_num')")
            answer, server = cursor.fetchone()
    return jsonify(message="hello from psycopg2", answer=answer, server=int(server), libpq=psycopg2.extensions.libpq_version())
