"""The SQLite implementation of the store: connection threads, migrations, SQL, backup."""
