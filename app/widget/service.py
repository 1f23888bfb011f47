"""The widget's script as served (bytes, a content digest for its versioned URL) and the
project whose public key the demo page embeds."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select

from app.extensions import db
from app.projects.models import Project

# The widget's source lives at the top of the repository (widget/), outside the package.
DEFAULT_SCRIPT = Path(__file__).resolve().parents[2] / "widget" / "widget.js"
_VERSION = re.compile(rb'const VERSION = "([^"]+)"')


@dataclass(frozen=True)
class Script:
    body: bytes
    digest: str  # the first 16 hex digits of the SHA-256 of body: its versioned URL's ?v=
    version: str  # VERSION inside the script, sent to the intake API as widget_version


def load_script(path: Path = DEFAULT_SCRIPT) -> Script:
    """The script as it is on disk now (read again only when the file changed)."""
    stat = path.stat()
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> Script:
    body = Path(path).read_bytes()
    found = _VERSION.search(body)
    return Script(body=body, digest=hashlib.sha256(body).hexdigest()[:16],
                  version=found.group(1).decode() if found else "unknown")


def demo_project_key() -> str | None:
    """The public key of the first active project (public by design: it ships in pages)."""
    return db.session.scalar(
        select(Project.public_key).where(Project.active.is_(True)).order_by(Project.id).limit(1))
