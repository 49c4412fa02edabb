"""Alembic environment: runs on the connection engine.storage.db.Database.upgrade() hands over."""

from alembic import context
from sqlalchemy import create_engine

from engine.storage.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # the alembic command line (autogenerate during development)
    url = config.get_main_option("sqlalchemy.url") or "sqlite:///instance/alembic-dev.sqlite"
    with create_engine(url).connect() as own_connection:
        context.configure(connection=own_connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
