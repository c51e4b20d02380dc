"""projects: each series' arrival, project and projects file version; IGNORED and HELD

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NEW_STATUSES = ("IGNORED", "HELD")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for value in NEW_STATUSES:  # PostgreSQL 12+ takes this inside the migration's transaction
            op.execute(f"ALTER TYPE status ADD VALUE IF NOT EXISTS '{value}'")
    with op.batch_alter_table("series") as batch_op:
        batch_op.add_column(sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=True))
        batch_op.add_column(sa.Column("project", sqlmodel.sql.sqltypes.AutoString(length=40),
                                      nullable=True))
        batch_op.add_column(sa.Column("projects_sha256",
                                      sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.create_index("ix_series_project", ["project"], unique=False)


def downgrade() -> None:
    # PostgreSQL cannot take a value out of an enum type; IGNORED and HELD stay in it unused.
    with op.batch_alter_table("series") as batch_op:
        batch_op.drop_index("ix_series_project")
        batch_op.drop_column("projects_sha256")
        batch_op.drop_column("project")
        batch_op.drop_column("source")
