"""Scoring models compiled to SQL (DuckDB, PostgreSQL, Spark) with SQLGlot.

``compile_model`` is the entry point; :mod:`.compiler` documents the table shape it
reads, :mod:`.dialects` the small table of differences between the engines.
"""

from leadscore.sql.compiler import (
    ModelColumns,
    attribute_column,
    compile_model,
    compile_sql,
    model_columns,
    property_column,
)
from leadscore.sql.dialects import DIALECTS, Dialect, UnsupportedOnEngine, get_dialect
from leadscore.sql.regex import UnsupportedPattern, translate

__all__ = [
    "DIALECTS",
    "Dialect",
    "ModelColumns",
    "UnsupportedOnEngine",
    "UnsupportedPattern",
    "attribute_column",
    "compile_model",
    "compile_sql",
    "get_dialect",
    "model_columns",
    "property_column",
    "translate",
]
