"""``python -m tests.mail.corpus DIR``: write the corpus as .eml files into DIR."""
import sys
from pathlib import Path

from tests.mail.corpus import write_eml

for written in write_eml(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-out")):
    print(written)
