"""The test corpus: mail as Chinese citizens' programs and mail servers really write it, built in code.

``CORPUS`` maps a name to a ``Sample``: the raw bytes, what ingestion must make of it, and the facts
the parser must find. Most samples are written byte by byte (charsets, transfer encodings and header
forms chosen exactly); the nested one is built with the ``email`` package.
``python -m tests.mail.corpus DIR`` writes them as .eml files.

The oversized sample is larger than ``OVERSIZE_LIMIT``, the ``mail_max_bytes`` the tests configure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tests.mail.corpus.samples import build_samples

OVERSIZE_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Sample:
    raw: bytes
    expect: str  # "ingested" or "quarantined"
    facts: dict = field(default_factory=dict)


CORPUS: dict[str, Sample] = {name: Sample(*spec) for name, spec in build_samples().items()}
INGESTED = sorted(n for n, s in CORPUS.items() if s.expect == "ingested")
QUARANTINED = sorted(n for n, s in CORPUS.items() if s.expect == "quarantined")


def write_eml(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, sample in CORPUS.items():
        path = directory / f"{name}.eml"
        path.write_bytes(sample.raw)
        paths.append(path)
    return paths
