"""Hospitals: `province` becomes a short lowercase code; the name it held moves to `province_name`.

A Department of Health oversees the hospitals whose `province` is its own (server/policy/scope.py).
The demo hospitals, and any hospital whose province was written as one of the demo provinces'
names, get that province's code; every other hospital gets none, so that no Department of
Health sees it until an admin sets it (the admin screen says so).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Code by the names the province was written with so far (the demo's, and without diacritics).
CODES = {
    "Hà Nội": "hanoi",
    "Ha Noi": "hanoi",
    "Hanoi": "hanoi",
    "Quảng Ninh": "quangninh",
    "Quang Ninh": "quangninh",
}
DEMO = {
    "hanoi": ["xanhpon", "bavi-dgh", "bavi-ttyt", "tyt-tanlinh", "tyt-batrai", "soyte-hanoi"],
    "quangninh": ["qn-dkt", "ttyt-tienyen", "ttyt-vandon", "soyte-quangninh"],
}


def upgrade() -> None:
    with op.batch_alter_table("hospitals") as batch:
        batch.add_column(sa.Column("province_name", sa.String(100), nullable=True))
    op.execute("UPDATE hospitals SET province_name = province")
    with op.batch_alter_table("hospitals") as batch:
        batch.alter_column("province", existing_type=sa.String(100), nullable=True)
    hospitals = sa.table("hospitals", sa.column("id", sa.String), sa.column("province", sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, province_name FROM hospitals")).all()
    demo = {hospital_id: code for code, ids in DEMO.items() for hospital_id in ids}
    for hospital_id, name in rows:
        code = demo.get(hospital_id) or CODES.get((name or "").strip())
        connection.execute(hospitals.update().where(hospitals.c.id == hospital_id).values(province=code))
    # Only codes are left now, so the column can shrink to their size.
    with op.batch_alter_table("hospitals") as batch:
        batch.alter_column("province", existing_type=sa.String(100), type_=sa.String(32), existing_nullable=True)


def downgrade() -> None:
    op.execute("UPDATE hospitals SET province = COALESCE(province_name, province, '')")
    with op.batch_alter_table("hospitals") as batch:
        batch.alter_column("province", existing_type=sa.String(32), type_=sa.String(100), nullable=False)
        batch.drop_column("province_name")
