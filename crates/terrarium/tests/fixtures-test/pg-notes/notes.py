import os

import psycopg
from flask import Flask

app = Flask(__name__)


def connect():
    return psycopg.connect(os.environ["DATABASE_URL"])


@app.post("/notes/<text>")
def add(text):
    with connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (text TEXT)")
        conn.execute("INSERT INTO notes VALUES (%s)", (text,))
    return {"added": text}


@app.get("/notes")
def notes():
    with connect() as conn:
        rows = conn.execute("SELECT text FROM notes ORDER BY text").fetchall()
    return {"notes": [r[0] for r in rows]}


@app.get("/health")
def health():
    return {"ok": True}
