"""The baseline: the smallest Flask app, served by gunicorn exactly like the real one."""
from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "hello"
