"""series created_at index: the console filters series by the date they arrived

Revision ID: 0013
Revises: 0012
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("series") as batch_op:
        batch_op.create_index("ix_series_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("series") as batch_op:
        batch_op.drop_index("ix_series_created_at")
