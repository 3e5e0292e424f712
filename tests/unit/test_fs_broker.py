"""The embedded broker's messages become visible to a consumer only once written whole."""

from __future__ import annotations

import os
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from kombu import Connection

from worker import fs_broker


def channel(folder: Path) -> Any:
    for sub in ("queue", "processed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "store_processed": False,
    }
    conn = Connection("filesystem://", transport=fs_broker.Transport, transport_options=options)
    return conn.channel()


def test_a_message_is_invisible_until_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chan = channel(tmp_path)
    seen_while_writing: list[Any] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        # the moment kombu's own transport exposed: the file is there, the consumer polls
        assert Path(src).read_bytes()  # written whole before it is moved into place
        try:
            seen_while_writing.append(chan._get("newsletter.send"))
        except Empty:
            seen_while_writing.append(None)
        real_replace(src, dst)

    monkeypatch.setattr(fs_broker.os, "replace", replace)
    chan._put("newsletter.send", {"body": "batch 7"})
    assert seen_while_writing == [None]
    assert chan._get("newsletter.send") == {"body": "batch 7"}
    assert not list((tmp_path / "queue").iterdir())  # no part file left behind


def test_queue_names_with_dots_still_route(tmp_path: Path) -> None:
    chan = channel(tmp_path)
    chan._put("newsletter", {"n": 1})
    chan._put("newsletter.send", {"n": 2})
    assert chan._get("newsletter.send") == {"n": 2}
    assert chan._get("newsletter") == {"n": 1}
    with pytest.raises(Empty):
        chan._get("newsletter")
