"""The landing page."""

from __future__ import annotations

from flask import Blueprint, render_template

home = Blueprint("home", __name__)


@home.get("/")
def index() -> str:
    return render_template("home.html")
