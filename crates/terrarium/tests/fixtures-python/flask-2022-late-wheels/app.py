"""A 2022-era Flask service on Flask-SQLAlchemy 2.5 (SQLAlchemy 1.4 runs on greenlet)."""

import greenlet
import sqlalchemy
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)


@app.get("/health")
def health():
    answer = db.session.execute(sqlalchemy.text("select 42")).scalar()
    return jsonify(
        status="ok",
        answer=answer,
        sqlalchemy=sqlalchemy.__version__,
        greenlet=greenlet.__version__,
    )
