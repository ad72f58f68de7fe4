"""The system Chromium, launched by Playwright for the browser tests (which skip, saying why, without it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

async_api = pytest.importorskip(
    "playwright.async_api",
    reason="the browser tests need Playwright's Python package (pip install playwright)",
)
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"the browser tests need Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True
    )

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000


@contextlib.asynccontextmanager
async def chromium(profile: Path, **options: Any) -> AsyncIterator[Any]:
    """A Chromium context on a fresh profile (Playwright takes ``--user-data-dir`` this way)."""
    async with async_api.async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=ARGS, **options
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            await context.close()
