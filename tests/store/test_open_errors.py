"""A database that cannot be opened stops a command with one line that says which and why
(exit 2), before anything starts: not the driver's traceback from the migrations."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.conftest import _schema_url

from cli_run import run_cli as run
from leadscore.errors import UsageError
from leadscore.store.db import Store
from live import free_port  # nothing listens on it


def test_an_unreachable_postgresql_server_is_one_line_naming_it_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{free_port()}/crm"
    for args in (["keys", "create", "--name", "a", "--scope", "admin", "--db", url],
                 ["serve", "--db", url, "--port", str(free_port())]):
        code, out, err = run(args, capsys)
        assert (code, out) == (2, ""), err
        assert err.startswith(f"error: cannot open the database {url.replace('s3cret', '***')}: connection failed")
        assert "Connection refused" in err and "s3cret" not in err and err.count("\n") == 1
        assert "serving" not in err  # refused before the server starts


def test_a_file_that_is_not_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    assert run(["rescore", "--db", f"sqlite:///{path}"], capsys) == (
        2, "", f"error: cannot open the database sqlite:///{path}: file is not a database\n")
    assert path.read_text() == "these are my notes, not a database\n"  # left as it was


@pytest.mark.postgres
def test_a_search_path_that_names_no_schema_says_to_create_it(
    postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    schema = f"missing_{uuid.uuid4().hex[:8]}"
    url = _schema_url(postgres_url, schema)
    with pytest.raises(UsageError) as caught:
        Store.open(url)
    assert str(caught.value) == (
        f"the database {url} has no schema to create leadscore's tables in: its search_path ({schema}) names "
        f"no schema that exists; create it first (CREATE SCHEMA {schema};) or name another in the URL "
        "(?options=-csearch_path%3Dname)")
    code, _, err = run(["serve", "--db", url, "--port", str(free_port())], capsys)
    assert (code, err) == (2, f"error: {caught.value}\n")
