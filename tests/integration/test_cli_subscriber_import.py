"""`botdesk subscribers import` in-process against a real SQLite home."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.test_cli_subscribers import (  # noqa: F401 (fixtures)
    _restore_home_state,
    run,
    shop_home,
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_reports_each_bad_line_and_what_it_did(
    shop_home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(
        tmp_path,
        "old.csv",
        "chat_id,first_name,tags,started_at\n"
        "11,Ann2,gold,\n"  # already a subscriber: merged
        "14,Cy,,\n"  # unsubscribed: stays unsubscribed
        "21,Dee,new|vip,2025-05-01T10:00:00Z\n"
        "x1,Bad,,\n"
        "22,Eve,,yesterday\n",
    )
    assert (
        run(shop_home, "subscribers", "import", str(path), "--bot", "shop", "--source", "old") == 0
    )
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "old.csv: line 5: bad chat_id 'x1' (expected a Telegram chat id)",
        "old.csv: line 6: bad started_at 'yesterday' (expected ISO 8601)",
    ]
    assert out.strip() == (
        "imported 3 rows from old.csv into shop: 1 new, 2 already subscribers (merged), "
        "0 repeated, 2 skipped"
    )
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "source:old") == 0
    assert capsys.readouterr().out == "1\n"
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "tag:gold") == 0
    assert capsys.readouterr().out == "1\n"
    assert run(shop_home, "subscribers", "count", "--bot", "shop", "-s", "status:unsubscribed") == 0
    assert capsys.readouterr().out == "1\n"  # chat 14 did not come back


def test_import_as_json(
    shop_home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path, "p.jsonl", '{"chat_id": 31, "tags": ["a"]}\n{"chat_id": 31\n')
    args = ("subscribers", "import", str(path), "--bot", "shop", "--source", "crm", "--json")
    assert run(shop_home, *args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 1 and report["skipped"] == 1 and report["verify"] is None
    assert report["problems"][0]["line"] == 2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("none.csv", "chat_id\nabc\n\n", "none.csv: no valid rows (1 skipped)"),
        ("empty.jsonl", "", "empty.jsonl: no valid rows (0 skipped)"),
        ("h.csv", "id,name\n1,a\n", "no chat_id column in the header row"),
    ],
)
def test_unusable_files_are_one_line_and_exit_2(
    shop_home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str | None,
    message: str,
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text, encoding="utf-8")
    code = run(shop_home, "subscribers", "import", str(path), "--bot", "shop", "--source", "x")
    err = capsys.readouterr().err
    assert code == 2
    assert message in err.splitlines()[-1]
    assert "Traceback" not in err
    if name == "none.csv":  # the per-line report, then the one error line
        assert err.splitlines()[0].startswith("none.csv: line 2: bad chat_id")


def test_bad_source_label_and_unknown_bot(
    shop_home: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path, "a.csv", "chat_id\n1\n")
    assert (
        run(shop_home, "subscribers", "import", str(path), "--bot", "shop", "--source", "a b") == 2
    )
    assert "invalid --source 'a b'" in capsys.readouterr().err
    assert run(shop_home, "subscribers", "import", str(path), "--bot", "nope", "--source", "a") == 2
    assert "no bot named 'nope'" in capsys.readouterr().err
