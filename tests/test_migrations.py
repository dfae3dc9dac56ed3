"""The schema at the head revision equals the models."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from feedback_app.core.database import Base, make_engine
from feedback_app.migrations import alembic_config
from feedback_app.search.match import include_name


def test_migrated_schema_equals_models(database_url):
    engine = make_engine(database_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        assert compare_metadata(ctx, Base.metadata) == []
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        assert ctx.get_current_revision() == head
        assert set(inspect(conn).get_table_names()) >= set(Base.metadata.tables)
    engine.dispose()


def test_one_linear_history():
    script = ScriptDirectory.from_config(alembic_config(make_engine("sqlite://")))
    assert len(script.get_heads()) == 1
    assert [r.down_revision for r in script.walk_revisions()][-1] is None
