"""Alembic environment: the engine comes from the application (see feedback_app.migrations)."""
from alembic import context

import feedback_app.core.models  # noqa: F401  (every table on the metadata)
from feedback_app.core.database import Base
from feedback_app.search.match import include_name

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
