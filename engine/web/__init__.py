"""yawlflow.web: the HTTP API over an engine (``yawlflow serve``, or mounted in an embedder's ASGI app).

Needs the ``web`` extra: ``pip install 'yawlflow[web]'`` (Starlette, uvicorn). See docs/serve.md.
"""

from ._app import ROUTES as ROUTES
from ._app import app as app
from ._app import openapi as openapi
from ._auth import ApiKey as ApiKey
from ._auth import TokenBucket as TokenBucket
from ._auth import hash_key as hash_key
from ._auth import load_keys as load_keys

__all__ = ("ROUTES", "ApiKey", "TokenBucket", "app", "hash_key", "load_keys", "openapi")
