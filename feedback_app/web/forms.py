"""Form fields shared by the public and staff forms."""
from __future__ import annotations

from typing import Any

from wtforms import StringField


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
