"""The database: the SQLAlchemy models, the migrations, and the reads and writes per aggregate."""
