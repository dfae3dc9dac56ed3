"""search of one and two characters through an index of character pairs

A trigram index (0004) cannot answer a query of one or two characters; those scanned every text.
Now each text of ``submission.body`` and ``reply.body`` is also indexed as its characters and its
overlapping pairs of characters (Latin letters lowercased), each written as the hex of its UTF-8
bytes so that one is one plain ASCII token. A query of one or two characters is then exactly one
token: one term to look up, never a prefix to expand (the hex of one character never equals the hex
of two: UTF-8 is prefix-free). The last character of a text also appears as a "pair" with nothing
after it, which is its own single-character token anyway.

SQLite: contentless FTS5 tables ``submission_bigram`` and ``reply_bigram`` (``detail=none``: only the
rowids, nothing else is needed; ``columnsize=0``), rowid = the row's id, filled by triggers on every
insert, change of the text and delete (a contentless table deletes by being given the old tokens,
computed again from the old text). SQLite's lower() folds ASCII letters only, as its LIKE does.
The pairs are cut per block of 256 characters: substr() on non-ASCII text walks from the start of
the string, and per block that walk stays short for a text of any length.
PostgreSQL: an IMMUTABLE function ``feedback_bigrams(text) -> tsvector`` (lexemes built with
array_to_tsvector, no text parser involved), GIN expression indexes on it for both tables, and
``feedback_bigram_query(q) -> tsquery`` for the query side; lower() there is the one ILIKE uses.

These objects are not in the models: ``feedback_app.search.match.include_name`` keeps them out
of the schema comparison. As with 0004, a later migration that makes SQLite rebuild ``submission`` or
``reply`` drops these triggers with the table and must create them again (``SQLITE_TRIGGERS``; for
``submission``, those of 0009 instead).

Revision ID: 0008
Revises: 0007
"""
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TABLES = ("submission", "reply")  # each indexed as <table>_bigram over <table>.body, rowid = <table>.id
BLOCK = 256


def _series(count: str) -> str:
    """A JSON array of ``count`` zeros: json_each() over it counts 0 .. count-1 (key)."""
    return f"json_each('[' || rtrim(replace(hex(zeroblob({count})), '00', '0,'), ',') || ']')"


def sqlite_bigrams(text: str) -> str:
    """The SQL expression for ``text``'s tokens, space-separated (NULL for an empty text)."""
    return (
        "(SELECT group_concat(hex(lower(substr(b.part, i.key + 1, 2))) || ' ' "
        "|| hex(lower(substr(b.part, i.key + 1, 1))), ' ') "
        f"FROM (SELECT substr({text}, k.key * {BLOCK} + 1, {BLOCK + 1}) AS part "
        f"FROM {_series(f'(length({text}) + {BLOCK - 1}) / {BLOCK}')} AS k) AS b, "
        f"{_series(f'min(length(b.part), {BLOCK})')} AS i)"
    )


def _triggers(table: str) -> dict[str, str]:
    idx = f"{table}_bigram"
    delete_old = (f"INSERT INTO {idx}({idx}, rowid, grams) VALUES ('delete', old.id, "
                  f"{sqlite_bigrams('old.body')});")
    insert_new = f"INSERT INTO {idx}(rowid, grams) VALUES (new.id, {sqlite_bigrams('new.body')});"
    return {
        f"{idx}_insert": f"CREATE TRIGGER {idx}_insert AFTER INSERT ON {table} BEGIN {insert_new} END",
        f"{idx}_update": (f"CREATE TRIGGER {idx}_update AFTER UPDATE OF id, body ON {table} "
                          f"BEGIN {delete_old} {insert_new} END"),
        f"{idx}_delete": f"CREATE TRIGGER {idx}_delete AFTER DELETE ON {table} BEGIN {delete_old} END",
    }


SQLITE_TRIGGERS = {name: ddl for table in TABLES for name, ddl in _triggers(table).items()}

# The pairs of lower($1), each as the hex of its UTF-8 bytes: those that start at an odd position, then
# those at an even one (a lone last character ends one of the two); then every character alone.
# regexp_matches is linear in the length of the text, where substr() per position would be quadratic.
# convert_to() is only STABLE, but a database's encoding never changes: both functions are IMMUTABLE, so
# that one can be indexed and the other is evaluated once, when the query is planned (its selectivity
# estimated). COST 1000 (about a tenth of a millisecond for a text of a few hundred characters): the
# planner then never prefers computing the pairs of every row to reading the index.
PG_FUNCTIONS = {
    "feedback_bigrams": r"""
CREATE FUNCTION feedback_bigrams(text) RETURNS tsvector
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE COST 1000 AS $$
SELECT array_to_tsvector(
    ARRAY(SELECT encode(convert_to(m[1], 'UTF8'), 'hex') FROM regexp_matches(lower($1), '(..?)', 'g') AS m)
    || ARRAY(SELECT encode(convert_to(m[1], 'UTF8'), 'hex')
             FROM regexp_matches(substr(lower($1), 2), '(..?)', 'g') AS m)
    || ARRAY(SELECT encode(convert_to(c, 'UTF8'), 'hex')
             FROM unnest(regexp_split_to_array(lower($1), '')) AS c WHERE c <> ''))
$$""",
    # the tsquery of a query of one or two characters: its one lexeme, '<hex>'
    "feedback_bigram_query": r"""
CREATE FUNCTION feedback_bigram_query(text) RETURNS tsquery
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT (chr(39) || encode(convert_to(lower($1), 'UTF8'), 'hex') || chr(39))::tsquery
$$""",
}
PG_INDEXES = {
    "ix_submission_body_bigram": "submission",
    "ix_reply_body_bigram": "reply",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for table in TABLES:
            idx = f"{table}_bigram"
            op.execute(f"CREATE VIRTUAL TABLE {idx} USING fts5(grams, content='', detail='none', "
                       "columnsize=0, tokenize='unicode61')")
            op.execute(f"INSERT INTO {idx}(rowid, grams) SELECT id, {sqlite_bigrams('body')} FROM {table}")
        for ddl in SQLITE_TRIGGERS.values():
            op.execute(ddl)
    elif dialect == "postgresql":
        for ddl in PG_FUNCTIONS.values():
            op.execute(ddl)
        # room for the entries of a GIN index over a million texts (the default is 64 MB)
        op.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for name, table in PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {table} USING gin (feedback_bigrams(body))")
        for table in TABLES:
            op.execute(f"ANALYZE {table}")  # statistics of the new expression: how many rows a pair matches


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        for table in TABLES:
            op.execute(f"DROP TABLE IF EXISTS {table}_bigram")
    elif dialect == "postgresql":
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        for name in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}(text)")
