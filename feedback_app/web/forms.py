"""The base of every form of the site, and the fields several forms share."""
from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import StringField

from feedback_app.web.csrf import problem


class ChoiceField(StringField):
    """One value out of ``choices`` (value, label) pairs, rendered by the form macros."""

    data: Any  # as every WTForms field's: what ``coerce`` made of the input (one of the choices once valid), or None

    def __init__(self, label, choices=(), missing="请选择一项", coerce=str, radio=True, **kwargs):
        super().__init__(label, **kwargs)
        self.choices = list(choices)
        self.missing = missing
        self.coerce = coerce
        self.radio = radio

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        try:
            self.data = self.coerce(raw) if raw else None
        except ValueError:
            self.data = None

    def pre_validate(self, form):
        if self.data not in {value for value, _label in self.choices}:
            self.errors.append(self.missing)


class Form(FlaskForm):
    """Every form of the site. Besides its fields' rules it fails whenever CSRFProtect refused this
    request (``web.csrf``): a view that runs for a refused request to show its form again as it was
    filled in can then never act on it, whatever the reason for the refusal was."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        return valid and problem() is None
