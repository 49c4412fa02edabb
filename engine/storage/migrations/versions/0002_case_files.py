"""case files: customers, policies, the archive catalogue and holds, the budget ledger; excluded users on tasks; login lockout; API tokens; attachments and drafts; inbox order; saved filters; the invoice register

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("human_task") as batch:
        batch.add_column(sa.Column("excluded_user_ids", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("sort_due_at", sa.DateTime(timezone=True), nullable=True))
    never = (
        "'9999-12-31 00:00:00'"
        if op.get_bind().dialect.name == "sqlite"
        else "'9999-12-31 00:00:00+00'"
    )
    op.execute(f"UPDATE human_task SET sort_due_at = COALESCE(due_at, {never})")
    with op.batch_alter_table("human_task") as batch:
        batch.alter_column("sort_due_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_index("ix_human_task_open_role")
        batch.drop_index("ix_human_task_open_assignee")
        batch.create_index(
            "ix_human_task_open_role",
            ["status", "candidate_role", "sort_due_at", "assignee_id", "excluded_user_ids"],
            unique=False,
        )
        batch.create_index(
            "ix_human_task_open_assignee", ["status", "assignee_id", "sort_due_at"], unique=False
        )
        batch.create_index(
            "ix_human_task_done", ["completed_by", "status", "completed_at"], unique=False
        )
        batch.create_index("ix_human_task_due", ["status", "sort_due_at"], unique=False)
    with op.batch_alter_table("user") as batch:
        batch.add_column(
            sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "customer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_no", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("id_type", sa.String(length=32), nullable=False),
        sa.Column("id_no", sa.String(length=64), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=True),
        sa.Column("occupation", sa.String(length=128), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("customer_no"),
        sa.UniqueConstraint("id_type", "id_no"),
    )
    op.create_table(
        "policy",
        sa.Column("policy_no", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customer.id"), nullable=False),
        sa.Column("insured_name", sa.String(length=64), nullable=True),
        sa.Column("insurer", sa.String(length=128), nullable=False),
        sa.Column("product_code", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("life", sa.Boolean(), nullable=False),
        sa.Column("term_years", sa.Integer(), nullable=True),
        sa.Column("sum_insured", sa.String(length=24), nullable=True),
        sa.Column("premium", sa.String(length=24), nullable=True),
        sa.Column("effective_date", sa.String(length=10), nullable=True),
        sa.Column("receipt_signed_date", sa.String(length=10), nullable=True),
        sa.Column("seller_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=True),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("policy_no"),
    )
    op.create_index("ix_policy_customer_id", "policy", ["customer_id"])
    op.create_table(
        "archive_item",
        sa.Column("archive_no", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("related_ref", sa.String(length=64), nullable=True),
        sa.Column("retention_until", sa.String(length=10), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("media", sa.String(length=16), nullable=True),
        sa.Column("location", sa.String(length=255), nullable=True),
        sa.Column("filed_by_instance", sa.Integer(), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("destroyed_by_instance", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("archive_no"),
    )
    op.create_index("ix_archive_item_related_ref", "archive_item", ["related_ref"])
    op.create_index("ix_archive_item_retention_until", "archive_item", ["retention_until"])
    op.create_table(
        "archive_hold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("related_ref", sa.String(length=64), nullable=False),
        sa.Column("case_ref", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("placed_by_instance", sa.Integer(), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_archive_hold_related_ref", "archive_hold", ["related_ref"])
    op.create_table(
        "budget_line",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("cost_center", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.String(length=24), nullable=False),
        sa.Column("committed", sa.String(length=24), nullable=False),
        sa.Column("spent", sa.String(length=24), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("year", "cost_center", "category"),
    )
    op.create_table(
        "budget_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_id", sa.Integer(), sa.ForeignKey("budget_line.id"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.String(length=24), nullable=False),
        sa.Column("claim_ref", sa.String(length=128), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_budget_entry_line_id", "budget_entry", ["line_id"])
    op.create_table(
        "invoice_register",
        sa.Column("invoice_no", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("invoice_no"),
    )
    op.create_index("ix_invoice_register_instance_id", "invoice_register", ["instance_id"])
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    op.create_table(
        "attachment",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("human_task.id"), nullable=True),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_index("ix_attachment_task_id", "attachment", ["task_id"])
    op.create_table(
        "attachment_use",
        sa.Column(
            "sha256", sa.String(length=64), sa.ForeignKey("attachment.sha256"), nullable=False
        ),
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("human_task.id"), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "task_id"),
    )
    op.create_table(
        "saved_filter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("query", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name"),
    )
    op.create_table(
        "task_draft",
        sa.Column("task_id", sa.Integer(), sa.ForeignKey("human_task.id"), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("user.id"), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id"),
    )


def downgrade() -> None:
    op.drop_table("task_draft")
    op.drop_table("saved_filter")
    op.drop_table("attachment_use")
    op.drop_table("attachment")
    op.drop_table("api_token")
    op.drop_table("invoice_register")
    op.drop_table("budget_entry")
    op.drop_table("budget_line")
    op.drop_table("archive_hold")
    op.drop_table("archive_item")
    op.drop_table("policy")
    op.drop_table("customer")
    with op.batch_alter_table("human_task") as batch:
        batch.drop_index("ix_human_task_due")
        batch.drop_index("ix_human_task_done")
        batch.drop_index("ix_human_task_open_assignee")
        batch.drop_index("ix_human_task_open_role")
        batch.create_index("ix_human_task_open_role", ["status", "candidate_role"], unique=False)
        batch.create_index("ix_human_task_open_assignee", ["status", "assignee_id"], unique=False)
        batch.drop_column("sort_due_at")
        batch.drop_column("excluded_user_ids")
    with op.batch_alter_table("user") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
