"""A Flask service using Flask-Mail 0.9.1, which PyPI has only as a source distribution."""
from flask import Flask, jsonify
from flask_mail import Mail, Message

app = Flask(__name__)
app.config.update(MAIL_SUPPRESS_SEND=True, MAIL_DEFAULT_SENDER="noreply@example.invalid")
mail = Mail(app)


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/")
def index():
    message = Message("hello", recipients=["someone@example.invalid"], body="hi")
    with mail.record_messages() as outbox:
        mail.send(message)
    return jsonify(message="hello from flask-mail", sent=len(outbox), subject=outbox[0].subject)
