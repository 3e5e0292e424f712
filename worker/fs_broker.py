"""The embedded default's broker: kombu's file-system transport, with messages written whole.

kombu's own ``_put`` opens the message file under its final name and then writes it, while a
consumer polling the folder (every 0.1 s) may move and read it in between: it reads an empty
file, and the worker dies on ``JSONDecodeError`` (seen about once in six ``newsletter demo``
runs, when the stop messages went out). Here a message is written under a name the consumer
skips (``.<name>.part``: it takes only ``<stamp>_<uuid>.<queue>.msg``) and then renamed into
place, which is atomic on one file system.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu.transport.filesystem.Channel._put takes **kwargs, its base class does not: mypy
    # sees the override break one of them whatever it says
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        part = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(part, "wb") as f:
                f.write(dumps(payload).encode("utf-8"))  # type: ignore[no-untyped-call]
            os.replace(part, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
