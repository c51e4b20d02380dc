"""encrypted original identity on SeriesIdentifiers

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("seriesidentifiers") as batch_op:
        batch_op.add_column(sa.Column("original_encrypted", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("original_key_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("originals_purged_at",
                                      sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("seriesidentifiers") as batch_op:
        batch_op.drop_column("originals_purged_at")
        batch_op.drop_column("original_key_id")
        batch_op.drop_column("original_encrypted")
