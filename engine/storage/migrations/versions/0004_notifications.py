"""notifications (in-app and the e-mail outbox), each user's choices, reminders given; users' e-mail and language

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 03:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("email", sa.String(length=255), nullable=True))
    op.add_column(
        "user", sa.Column("language", sa.String(length=8), server_default="zh", nullable=False)
    )
    # the demo department's people get their demo addresses (sales1@opsflow.example)
    op.execute("UPDATE \"user\" SET email = username || '@opsflow.example' WHERE email IS NULL")
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("process_instance.id"), nullable=True),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("human_task.id"), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shown", sa.Boolean(), nullable=False),
        sa.Column("email_status", sa.String(length=16), nullable=True),
        sa.Column("email_attempts", sa.Integer(), nullable=False),
        sa.Column("email_next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notification_user", "notification", ["user_id", "shown", "read_at", "id"])
    op.create_index("ix_notification_outbox", "notification", ["email_status", "email_next_at"])
    op.create_table(
        "notification_preference",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("in_app", sa.Boolean(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind"),
    )
    op.create_table(
        "task_reminder",
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("human_task.id"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "kind"),
    )


def downgrade() -> None:
    op.drop_table("task_reminder")
    op.drop_table("notification_preference")
    op.drop_index("ix_notification_outbox", table_name="notification")
    op.drop_index("ix_notification_user", table_name="notification")
    op.drop_table("notification")
    op.drop_column("user", "language")
    op.drop_column("user", "email")
