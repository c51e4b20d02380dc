"""image content BLAKE3: received files are fingerprinted with BLAKE3; rows written
before keep their SHA-256 in content_sha256

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("image") as batch_op:
        batch_op.add_column(sa.Column("content_blake3", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("image") as batch_op:
        batch_op.drop_column("content_blake3")
