"""burned-in text: each image's pixel decision and its reason

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image") as batch_op:
        batch_op.add_column(sa.Column("pixel_flag", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True))
        batch_op.add_column(sa.Column("pixel_redacted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("pixel_gate", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("pixel_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image") as batch_op:
        for column in ("pixel_reason", "pixel_gate", "pixel_redacted", "pixel_flag"):
            batch_op.drop_column(column)
