"""``/docs``: Swagger UI served from the assets the ``fastapi-offline`` package ships.

FastAPI's own page loads Swagger UI from a CDN, so it is blank offline or behind a proxy that
blocks the CDN. The page here is FastAPI's, pointed at the same files served by this process.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
ASSETS_DIRECTORY = Path(fastapi_offline.__file__).parent / "static"
"""Swagger UI 5 (it renders OpenAPI 3.1, which FastAPI writes), as the package ships it."""


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and its assets below ``/docs/assets``; no CDN involved."""
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="docs-assets")
    title = f"{app.title} - Swagger UI"
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        )
