"""The HTTP route that serves ``ae_core.store``'s assets: ``/assets/<sha256 prefix>.<ext>``.

An asset's name is the hash of its bytes, so its content never changes: the browser may keep
it for a year without asking again (``immutable``), and a reload that does ask gets a 304
from the ETag. The websocket then carries only the names. The files live in the cache
folder, so any replica sharing it (``deploy/serve.sh``) answers for an asset another made.
"""

from __future__ import annotations

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ae_core import store

from . import warmup

PREFIX = "assets"
CACHE_CONTROL = "public, max-age=31536000, immutable"


def url(name: str) -> str:
    """The asset's URL, relative so that it works under any base path (``/map`` → ``/assets/…``)."""
    return f"{PREFIX}/{name}"


def _etag(name: str) -> str:
    return f'"{name.split(".")[0]}"'


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def serve(request: Request) -> Response:
    name = request.path_params["name"]
    path = store.asset_path(name)
    if path is None:
        return Response("No such asset.", status_code=404, media_type="text/plain")
    headers = {"Cache-Control": CACHE_CONTROL, "ETag": _etag(name)}
    if _matches(request.headers.get("if-none-match", ""), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    # Once this is sent, a page is drawing: TensorFlow may load now (ui/warmup.py).
    return FileResponse(path, headers=headers, media_type=store.ASSET_TYPES[path.suffix[1:]],
                        background=BackgroundTask(warmup.begin))


def route() -> Route:
    return Route(f"/{PREFIX}/{{name}}", serve, methods=["GET", "HEAD"])
