"""Which ``response_format`` a server takes, found out once per server and remembered.

The first request asks with ``json_schema`` (strict), which servers with structured outputs
hold the model to. A server that rejects it (400/422 naming the response format) is asked
again with ``json_object`` and the schema in the prompt, then with plain text, read leniently.
The mode that worked is remembered per base URL and model in Redis for a week (through the
guard), so the probe costs one request per server, not one per track."""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any, Literal

from rap_pipeline.core.api_guard import ApiGuard
from rap_pipeline.defs.analyses.llm.schema import SCHEMA_NAME, strict_schema

log = logging.getLogger(__name__)

ResponseFormat = Literal["auto", "json_schema", "json_object", "text"]
# the order in which modes are tried: the most reliable first
MODES: tuple[str, ...] = ("json_schema", "json_object", "text")
MEMORY_S = 7 * 86_400


def response_format_option(mode: str) -> dict[str, Any]:
    """The request options of a mode (text: no ``response_format`` at all)."""
    if mode == "json_schema":
        schema = {"name": SCHEMA_NAME, "schema": strict_schema(), "strict": True}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    if mode == "json_object":
        return {"response_format": {"type": "json_object"}}
    return {}


class FormatNegotiation:
    """The mode to ask one server and model with: forced, remembered, or being probed."""

    def __init__(self, base_url: str, model: str, forced: ResponseFormat, guard: ApiGuard | None):
        if forced not in ("auto", *MODES):
            raise ValueError(f"response_format is auto or one of {', '.join(MODES)}")
        self.forced = forced
        self.guard = guard
        server = hashlib.sha256(f"{base_url}\x00{model}".encode()).hexdigest()[:16]
        self._key = f"response_format:{server}"
        self._lock = threading.Lock()
        self._mode: str | None = None if forced == "auto" else forced
        self.settled = forced != "auto"  # known to work (forced, remembered or answered)

    @property
    def current(self) -> str | None:
        return self._mode

    def mode(self) -> str:
        """The mode to ask with now."""
        with self._lock:
            if self._mode is None:
                remembered = self.guard.recall(self._key) if self.guard else None
                self.settled = remembered in MODES
                self._mode = remembered if remembered in MODES else MODES[0]
            return self._mode

    def rejected(self, mode: str) -> str | None:
        """The next mode after the server rejected ``mode`` (None: none left, or the mode is
        forced); remembered for every process."""
        with self._lock:
            if self.forced != "auto":
                return None
            if self._mode == mode:
                index = MODES.index(mode) + 1
                if index >= len(MODES):
                    return None
                self._mode = MODES[index]
                log.info("the LLM server rejected %s; asking with %s", mode, self._mode)
                if self.guard is not None:
                    self.guard.remember(self._key, self._mode, MEMORY_S)
            return self._mode

    def answered(self, mode: str) -> None:
        """The server answered under ``mode``: it works, and every process may know it."""
        with self._lock:
            if self.settled and self._mode == mode:
                return
            self.settled = True
        if self.forced == "auto" and self.guard is not None:
            self.guard.remember(self._key, mode, MEMORY_S)
