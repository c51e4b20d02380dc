"""review gate and learned pixel rules: status REVIEW, sealed before-values of series
under review, region rules proposed from the OCR gate's finds

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TYPE status ADD VALUE IF NOT EXISTS 'REVIEW'")
    op.create_table(
        "revieworiginal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"]),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("image_id"),
    )
    with op.batch_alter_table("revieworiginal") as batch_op:
        batch_op.create_index("ix_revieworiginal_series_id", ["series_id"], unique=False)
    op.create_table(
        "pixelruleproposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("manufacturer", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("model", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("columns", sa.Integer(), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=False),
        sa.Column("covers_text", sa.Boolean(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("images_seen", sa.Integer(), nullable=False),
        sa.Column("last_image_id", sa.Integer(), nullable=True),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("manufacturer", "model", "rows", "columns",
                            name="uq_pixelruleproposal_device"),
    )
    with op.batch_alter_table("pixelruleproposal") as batch_op:
        batch_op.create_index("ix_pixelruleproposal_state", ["state"], unique=False)
        batch_op.create_index("ix_pixelruleproposal_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    # PostgreSQL cannot take a value out of an enum type; REVIEW stays in it unused.
    op.drop_table("pixelruleproposal")
    op.drop_table("revieworiginal")
