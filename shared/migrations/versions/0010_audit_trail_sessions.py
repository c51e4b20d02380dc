"""audit trail and dashboard sessions: who did what, and who is signed in

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auditrecord",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("process", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auditrecord") as batch_op:
        batch_op.create_index("ix_auditrecord_at", ["at"], unique=False)
        batch_op.create_index("ix_auditrecord_actor", ["actor"], unique=False)
        batch_op.create_index("ix_auditrecord_action", ["action"], unique=False)
        batch_op.create_index("ix_auditrecord_series_id", ["series_id"], unique=False)
    op.create_table(
        "websession",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cookie_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("code_verifier", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cookie_sha256"),
    )
    with op.batch_alter_table("websession") as batch_op:
        batch_op.create_index("ix_websession_expires_at", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_table("websession")
    op.drop_table("auditrecord")
