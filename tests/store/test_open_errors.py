"""A database that cannot be opened stops a command with one line that says which and why
(exit 2), before anything starts: not the driver's traceback from the migrations."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest
from tests.conftest import _schema_url

from leadscore.cli import main
from leadscore.errors import UsageError
from leadscore.store.db import Store


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens on it once closed


def test_an_unreachable_postgresql_server_is_one_line_naming_it_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{_closed_port()}/crm"
    for args in (["keys", "create", "--name", "a", "--scope", "admin", "--db", url],
                 ["serve", "--db", url, "--port", str(_closed_port())]):
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
    code, _, err = run(["serve", "--db", url, "--port", str(_closed_port())], capsys)
    assert (code, err) == (2, f"error: {caught.value}\n")
