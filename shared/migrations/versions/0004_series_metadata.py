"""searchable metadata subset of series sent to a bucket

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seriesmetadata",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("format", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("fallback_reason", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("modality", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("body_part", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("series_description", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("patient_pseudonym", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("study_uid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("series_uid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("slice_thickness", sa.Float(), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["series.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series_id"),
    )
    with op.batch_alter_table("seriesmetadata") as batch_op:
        for column in ("modality", "body_part", "patient_pseudonym", "study_uid", "study_date"):
            batch_op.create_index(f"ix_seriesmetadata_{column}", [column], unique=False)


def downgrade() -> None:
    op.drop_table("seriesmetadata")
