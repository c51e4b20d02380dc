"""pull sources: followed Orthanc cursors and series, worklist collections and their rows

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "followcursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("last_change", sa.Integer(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source"),
    )
    op.create_table(
        "followedseries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("orthanc_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("series_uid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("taken_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "orthanc_id", name="uq_followedseries_source_orthanc_id"),
    )
    with op.batch_alter_table("followedseries") as batch_op:
        batch_op.create_index("ix_followedseries_series_uid", ["series_uid"], unique=False)
    op.create_table(
        "collection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("collection") as batch_op:
        batch_op.create_index("ix_collection_created_at", ["created_at"], unique=False)
    op.create_table(
        "collectionrow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("query_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("query_encrypted", sa.Text(), nullable=True),
        sa.Column("query_key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("study_uids", sa.JSON(), nullable=False),
        sa.Column("series_uids", sa.JSON(), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retrieved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["collection_id"], ["collection.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("collectionrow") as batch_op:
        for column in ("collection_id", "query_key", "state", "updated_at"):
            batch_op.create_index(f"ix_collectionrow_{column}", [column], unique=False)


def downgrade() -> None:
    for table in ("collectionrow", "collection", "followedseries", "followcursor"):
        op.drop_table(table)
