"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from engine.storage.db import MIGRATIONS_DIR, Database
from engine.storage.models import Base


def test_the_migrated_schema_matches_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_the_login_migration_keeps_the_users_and_who_they_report_to(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                'INSERT INTO "user" (id, username, display_name, password_hash, active, manager_id)'
                " VALUES (1, 'dm1', 'DM', 'x', 1, NULL), (2, 'ddm1', 'DDM', 'x', 1, 1)"
            )
        )
    db.upgrade()
    with db.engine.connect() as connection:
        rows = connection.execute(text('SELECT id, manager_id FROM "user" ORDER BY id')).all()
    assert [tuple(row) for row in rows] == [(1, None), (2, 1)]
    db.dispose()
