"""staged deliveries: the parts of a series gathered by several SCP processes

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("series_uid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("last_arrival", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("handed_over_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery", name="uq_staged_delivery_delivery"),
    )
    with op.batch_alter_table("staged_delivery") as batch_op:
        batch_op.create_index("ix_staged_delivery_series_uid", ["series_uid"], unique=False)


def downgrade() -> None:
    op.drop_table("staged_delivery")
