"""Settings from the environment: database URL, secret key, paths (the only environment reads).

Every entry point (the ``opsflow`` command, ``opsflow serve``, ``create_app``, the bench and
screenshot scripts) reads the settings once, whole, with ``Settings.from_environment()``, and
changes what it must with ``dataclasses.replace``, so no setting is lost on the way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "dev-only-change-me"  # noqa: S105 - development default; deployments set OPSFLOW_SECRET_KEY


def verify_state() -> bool:
    """``OPSFLOW_VERIFY_STATE=1``: compare every incremental state dump with a full dump (tests, debugging)."""
    return os.environ.get("OPSFLOW_VERIFY_STATE") == "1"


def _count(text: str) -> int:
    """A small non-negative number from the environment; anything else is 0."""
    return int(text) if text.isdigit() and len(text) < 3 else 0


def _port(text: str, default: int) -> int:
    """A TCP port from the environment; anything else is the default."""
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else default


def _default_database_url() -> str:
    return f"sqlite:///{PROJECT_ROOT / 'instance' / 'opsflow.sqlite'}"


@dataclass(frozen=True)
class Settings:
    """Everything the engine and the web app need to know about where they run."""

    database_url: str = field(default_factory=_default_database_url)
    secret_key: str = DEV_SECRET_KEY
    processes_dir: Path = PROJECT_ROOT / "processes"
    forms_dir: Path = PROJECT_ROOT / "forms"
    demo_data: Path = PROJECT_ROOT / "engine" / "data" / "demo_department.json"
    demo_case_files: Path = PROJECT_ROOT / "engine" / "data" / "demo_case_files.json"
    https: bool = False  # served over HTTPS: session cookies are then marked Secure
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-For is believed
    # the SMTP server notifications are e-mailed through (no host: the outbox waits)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "opsflow@localhost"
    smtp_starttls: bool = False

    @classmethod
    def from_environment(cls) -> Settings:
        """All the settings: ``OPSFLOW_DATABASE_URL``, ``OPSFLOW_SECRET_KEY``, ``OPSFLOW_HTTPS``
        (1, true or yes), ``OPSFLOW_PROCESSES_DIR``, ``OPSFLOW_FORMS_DIR``, ``OPSFLOW_SMTP_HOST``,
        ``_PORT``, ``_USER``, ``_PASSWORD``, ``_FROM``, ``_STARTTLS``; defaults for the rest."""
        defaults = cls()
        return cls(
            database_url=os.environ.get("OPSFLOW_DATABASE_URL", defaults.database_url),
            secret_key=os.environ.get("OPSFLOW_SECRET_KEY", defaults.secret_key),
            processes_dir=Path(os.environ.get("OPSFLOW_PROCESSES_DIR", defaults.processes_dir)),
            forms_dir=Path(os.environ.get("OPSFLOW_FORMS_DIR", defaults.forms_dir)),
            https=os.environ.get("OPSFLOW_HTTPS", "") in ("1", "true", "yes"),
            trusted_proxies=_count(os.environ.get("OPSFLOW_TRUSTED_PROXIES", "0")),
            smtp_host=os.environ.get("OPSFLOW_SMTP_HOST") or None,
            smtp_port=_port(os.environ.get("OPSFLOW_SMTP_PORT", ""), defaults.smtp_port),
            smtp_user=os.environ.get("OPSFLOW_SMTP_USER") or None,
            smtp_password=os.environ.get("OPSFLOW_SMTP_PASSWORD") or None,
            smtp_from=os.environ.get("OPSFLOW_SMTP_FROM") or defaults.smtp_from,
            smtp_starttls=os.environ.get("OPSFLOW_SMTP_STARTTLS", "") in ("1", "true", "yes"),
        )
