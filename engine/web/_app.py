"""The HTTP API: a Starlette app over an :class:`~yawlflow.Engine`, under ``/api/v1``.

Every route is declared once in :data:`ROUTES` (method, path, role, handler, request body and
responses); the Starlette routes and the OpenAPI 3.1 document are both made from that table, so
the document describes every route. No endpoint evaluates code: specs are data, and case data is
JSON.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .._errors import ConfigError, InvalidEventError, SpecError, StoreError, YawlflowError
from .._hooks import EVENTS, HookEvent
from ._auth import ApiKey, Keys, TokenBucket, load_keys
from ._pages import page_routes

if TYPE_CHECKING:
    from .._case import Case, WorkItem
    from .._engine import Engine
    from .._show import Overlay
    from .._spec._model import Spec

__all__ = ("ROUTES", "ApiRoute", "HttpProblem", "app", "openapi")

PREFIX = "/api/v1"
PROBLEM = "application/problem+json"
MAX_BODY = 4 * 1024 * 1024
ITEM_STATES = ("enabled", "offered", "started", "completed", "cancelled", "failed")
CASE_STATUSES = ("running", "suspended", "completed", "failed", "cancelled")
ANSWERS = 10_000
"""Answers to idempotent POSTs kept to replay (the oldest go first). A repeat whose answer went
still changes nothing: the engine keeps every call's key in the case's log."""
SSE = "text/event-stream"
SSE_BUFFER = 256
"""Wake-ups a stream subscriber may have pending; one more and it is dropped (``event: overflow``)."""
ITEM_EVENTS = ("item.offered", "item.started", "item.completed", "item.cancelled")
_ENDED = ("completed", "failed", "cancelled")


class HttpProblem(Exception):
    """An RFC 9457 problem to answer with.

    Args:
        status: the HTTP status.
        title: a short summary of the kind of problem.
        detail: what went wrong here, and what to do.
        problems: for a bad spec, each located problem.
        headers: extra response headers.
    """

    def __init__(self, status: int, title: str, detail: str, *, problems: list[dict[str, Any]] | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.problems = problems
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The ``application/problem+json`` response."""
        body: dict[str, Any] = {
            "type": f"https://yawlflow.dev/problems/{self.title.lower().replace(' ', '-')}",
            "title": self.title, "status": self.status, "detail": self.detail,
        }
        if self.problems is not None:
            body["problems"] = self.problems
        return Response(orjson.dumps(body), status_code=self.status, media_type=PROBLEM, headers=self.headers)


def _from_error(exc: YawlflowError) -> HttpProblem:
    """The problem a yawlflow error maps to (InvalidEventError 409, SpecError 422, ConfigError 400, StoreError 503)."""
    if isinstance(exc, SpecError):
        return HttpProblem(422, "Invalid spec", f"the spec has {len(exc.problems)} problem(s)",
                           problems=[_problem(p) for p in exc.problems])
    if isinstance(exc, InvalidEventError):
        return HttpProblem(409, "Conflict", str(exc))
    if isinstance(exc, StoreError):
        return HttpProblem(503, "Store unavailable", str(exc), headers={"Retry-After": "5"})
    if isinstance(exc, ConfigError):
        return HttpProblem(400, "Bad request", str(exc))
    return HttpProblem(400, "Bad request", str(exc))


def _problem(p: Any) -> dict[str, Any]:
    return {"source": p.source, "line": p.line, "column": p.column, "path": p.path, "message": p.message,
            "hint": p.hint, "text": str(p)}


@dataclass
class _State:
    """What the app keeps between requests."""

    engine: Engine
    keys: Keys
    limiter: TokenBucket
    specs: dict[str, Spec] = field(default_factory=dict)  # app(specs=...), by id: every tenant's (uploads: the store)
    answers: dict[tuple[str, str, str], tuple[int, bytes]] = field(default_factory=dict)  # idempotent replies
    hub: _Hub | None = None

    def poke(self, case_id: str, tenant: str | None) -> None:
        """Wake the event streams of ``tenant``: something changed in case ``case_id``."""
        if self.hub is not None:
            self.hub.poke(case_id, tenant)


class _Sub:
    """One event-stream subscriber: the ids of the cases that changed since it last looked.

    Plain state (no memory-object stream, no async generator): a client that goes away leaves
    nothing to finalize, and the hub holds subscribers weakly.
    """

    __slots__ = ("__weakref__", "changed", "overflowed", "tenant", "woken")

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.changed: list[str] = []
        self.woken = anyio.Event()
        self.overflowed = False

    def poke(self, case_id: str) -> bool:
        """Note a change; ``False`` once more than ``SSE_BUFFER`` are pending (the reader is too slow)."""
        if len(self.changed) >= SSE_BUFFER:
            self.overflowed = True
            self.woken.set()
            return False
        self.changed.append(case_id)
        self.woken.set()
        return True

    async def wait(self) -> list[str]:
        """The ids of the cases that changed since the last call (waits for one).

        Raises:
            anyio.EndOfStream: the subscriber was dropped for reading too slowly.
        """
        while not self.changed:
            if self.overflowed:
                raise anyio.EndOfStream
            self.woken = anyio.Event()
            await self.woken.wait()
        if self.overflowed:
            raise anyio.EndOfStream
        changed, self.changed = self.changed, []
        return changed


class _Hub:
    """The app's event-stream subscribers, woken by the engine's hooks (added once, on first use)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.subs: weakref.WeakSet[_Sub] = weakref.WeakSet()
        self._hooked = False

    def subscribe(self, tenant: str) -> _Sub:
        if not self._hooked:
            for name in EVENTS:
                if name != "before_case_start":
                    self.engine.hooks.add(name, self._hook)
            self._hooked = True
        sub = _Sub(tenant)
        self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: _Sub) -> None:
        self.subs.discard(sub)

    def _hook(self, event: HookEvent) -> None:
        if event.case is not None:
            self.poke(event.case, event.tenant)

    def poke(self, case_id: str, tenant: str | None) -> None:
        for sub in list(self.subs):
            if sub.tenant == tenant and not sub.poke(case_id):
                self.subs.discard(sub)  # too slow: drop it rather than grow


@dataclass(frozen=True)
class Ctx:
    """One authorised request: the request, its key and the app's state."""

    request: Request
    key: ApiKey
    state: _State
    idempotency_key: str | None

    @property
    def engine(self) -> Engine:
        """The engine."""
        return self.state.engine

    @property
    def tenant(self) -> str:
        """The key's tenant: every query is scoped to it."""
        return self.key.tenant

    def engine_key(self, what: str) -> str | None:
        """The engine ``key=`` for this request's ``Idempotency-Key``, distinct per route and target."""
        if self.idempotency_key is None:
            return None
        return hashlib.sha256(f"{what}\0{self.idempotency_key}".encode()).hexdigest()[:48]

    async def body(self) -> bytes:
        """The request body (over ``MAX_BODY`` bytes: 413)."""
        raw = await self.request.body()
        if len(raw) > MAX_BODY:
            raise HttpProblem(413, "Body too large", f"the body has {len(raw)} bytes; at most {MAX_BODY}")
        return raw

    async def json(self) -> Any:
        """The request body as JSON (empty: ``None``)."""
        raw = await self.body()
        if not raw.strip():
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise HttpProblem(400, "Bad request", f"the body is not valid JSON: {exc}") from None

    def case(self, case_id: str) -> Case:
        """The case ``case_id`` of this key's tenant (another tenant's case is not found: 404)."""
        try:
            case = self.engine.case(case_id)
        except InvalidEventError:
            case = None
        if case is None or case.tenant != self.tenant:
            raise HttpProblem(404, "Not found", f"no case {case_id!r}")
        return case


Handler = Callable[[Ctx], Awaitable[tuple[int, Any]]]


@dataclass(frozen=True)
class ApiRoute:
    """One API route: what the router and the OpenAPI document both read.

    Attributes:
        method: GET or POST.
        path: under ``/api/v1``, with ``{param}`` placeholders.
        role: the weakest role allowed.
        handler: answers ``(status, JSON body)``.
        summary: one line for the document.
        body: the request body's JSON schema (``None``: no body).
        ok: the success status.
        ok_schema: the success body's JSON schema (an event stream's: one event's, see ``_sse_event``).
        ok_type: the success body's media type (``text/event-stream``: the handler answers a stream).
        query: query parameters, name to (schema, description).
        errors: the problem statuses it may answer with.
    """

    method: str
    path: str
    role: str
    handler: Handler
    summary: str
    ok: int = 200
    ok_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    ok_type: str = "application/json"
    body: dict[str, Any] | None = None
    body_types: tuple[str, ...] = ("application/json",)
    query: Mapping[str, tuple[dict[str, Any], str]] = field(default_factory=dict)
    errors: tuple[int, ...] = ()


# -- views ------------------------------------------------------------------------------------------


def _item(item: WorkItem) -> dict[str, Any]:
    return {"id": item.id, "case": item.case, "task": item.task, "net": item.net, "instance": item.instance,
            "state": item.state, "data": item.data, "suspended": item.suspended}


def _case(case: Case, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": case.id, "spec": case.spec_id, "status": case.status, "tenant": case.tenant}
    if full:
        out["data"] = case.data
        out["trace"] = case.trace
        out["work_items"] = [_item(i) for i in case.work_items()]
    return out


def _spec_view(spec: Spec, *, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"id": spec.id, "root": spec.root, "version": spec.version,
                           "nets": [n.name for n in spec.nets]}
    if full:
        from .._spec import to_builtins

        out["spec"] = to_builtins(spec)
    return out


def _int_path(ctx: Ctx, name: str) -> int:
    raw = ctx.request.path_params[name]
    try:
        return int(raw)
    except ValueError:
        raise HttpProblem(404, "Not found", f"no work item {raw!r}") from None


def _object(body: Any, what: str) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise HttpProblem(400, "Bad request", f"{what} must be a JSON object")
    return body


def _data(body: dict[str, Any]) -> dict[str, Any]:
    """The body's ``"data"``: an object, or ``{}`` when left out (``null`` is refused, as documented)."""
    if "data" in body and body["data"] is None:
        raise HttpProblem(400, "Bad request", '"data" must be a JSON object; leave it out for none')
    return _object(body.get("data"), '"data"')


async def _specs_of(ctx: Ctx) -> dict[str, Spec]:
    """The specs the key's tenant may start, by id: those published in the engine's store for it (its
    uploads) or for every tenant, over those the app was started with (``app(specs=...)``)."""
    return {**ctx.state.specs, **await ctx.engine.published(ctx.tenant)}


async def _find_spec(ctx: Ctx, spec_id: str) -> Spec:
    spec = (await _specs_of(ctx)).get(spec_id)
    if spec is None:
        raise HttpProblem(404, "Not found", f"no spec {spec_id!r} (upload it: POST {PREFIX}/specs)")
    return spec


def _find_item(case: Case, item_id: int) -> None:
    for state in (None, "completed", "cancelled", "failed"):
        if any(i.id == item_id for i in case.work_items(state)):
            return
    raise HttpProblem(404, "Not found", f"no work item {item_id} in case {case.id!r}")


# -- handlers ---------------------------------------------------------------------------------------


async def upload_spec(ctx: Ctx) -> tuple[int, Any]:
    """Upload a spec (YAML or JSON): validated and compiled; its problems, located, when it is bad.
    It is kept in the engine's store (published for the key's tenant, replacing its spec of that id),
    so a restarted server still starts cases of it."""
    from .._spec import loads

    raw = await ctx.body()
    ctype = ctx.request.headers.get("content-type", "")
    spec = loads(raw, source="<upload>", format="json" if "json" in ctype else "yaml")
    await ctx.engine.publish(spec, tenant=ctx.tenant)  # compiled first; on disk when it returns
    return 201, _spec_view(spec, full=False)


async def list_specs(ctx: Ctx) -> tuple[int, Any]:
    """The specs this tenant can start: its own and those the server was started with."""
    seen = await _specs_of(ctx)
    return 200, {"specs": [_spec_view(s, full=False) for _, s in sorted(seen.items())]}


async def show_spec(ctx: Ctx) -> tuple[int, Any]:
    """One spec, whole."""
    return 200, _spec_view(await _find_spec(ctx, ctx.request.path_params["spec_id"]), full=True)


async def start_case(ctx: Ctx) -> tuple[int, Any]:
    """Start a case of a spec for the key's tenant."""
    body = _object(await ctx.json(), "the body")
    spec_id = body.get("spec")
    if not isinstance(spec_id, str):
        raise HttpProblem(400, "Bad request", 'the body needs "spec": the id of an uploaded spec')
    data = _data(body)
    spec = await _find_spec(ctx, spec_id)
    case = await ctx.engine.start(spec, data, tenant=ctx.tenant, key=ctx.engine_key("start"))
    ctx.state.poke(case.id, ctx.tenant)
    return 201, _case(case, full=True)


async def list_cases(ctx: Ctx) -> tuple[int, Any]:
    """The tenant's cases (root cases only), oldest first, a page at a time."""
    query = ctx.request.query_params
    status = query.get("status")
    if status is not None and status not in CASE_STATUSES:
        raise HttpProblem(400, "Bad request", f"status must be one of {', '.join(CASE_STATUSES)}")
    limit = _limit(query.get("limit"))
    start = _cursor(query.get("cursor"))
    records = [r for r in await ctx.engine.cases(status=status, tenant=ctx.tenant) if r.parent is None]
    page = records[start:start + limit]
    more = start + limit < len(records)
    return 200, {"cases": [{"id": r.case, "spec": r.spec_id, "status": r.status, "tenant": r.tenant} for r in page],
                 "next_cursor": str(start + limit) if more else None}


def _limit(raw: str | None) -> int:
    if raw is None:
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= 500:
        raise HttpProblem(400, "Bad request", "limit must be an integer from 1 to 500")
    return int(raw)


def _cursor(raw: str | None) -> int:
    if raw is None:
        return 0
    if not raw.isdigit():
        raise HttpProblem(400, "Bad request", "cursor must be a next_cursor from an earlier page")
    return int(raw)


async def show_case(ctx: Ctx) -> tuple[int, Any]:
    """One case: status, data, trace and live work items."""
    return 200, _case(ctx.case(ctx.request.path_params["case_id"]), full=True)


async def cancel_case(ctx: Ctx) -> tuple[int, Any]:
    """Cancel a case (cancelling a finished case changes nothing)."""
    case = ctx.case(ctx.request.path_params["case_id"])
    if case.status in ("running", "suspended"):
        await case.cancel()
    ctx.state.poke(case.id, ctx.tenant)
    return 200, _case(case, full=False)


async def signal_case(ctx: Ctx) -> tuple[int, Any]:
    """Send a signal (with JSON data) to a case."""
    case = ctx.case(ctx.request.path_params["case_id"])
    body = _object(await ctx.json(), "the body")
    name = body.get("signal")
    if not isinstance(name, str) or not name:
        raise HttpProblem(400, "Bad request", 'the body needs "signal": the signal\'s name')
    await case.signal(name, _data(body), key=ctx.engine_key(f"signal/{case.id}"))
    ctx.state.poke(case.id, ctx.tenant)
    return 202, _case(case, full=False)


async def list_items(ctx: Ctx) -> tuple[int, Any]:
    """The work items of the tenant's running cases (live ones, or those in ``state``)."""
    state = ctx.request.query_params.get("state")
    if state is not None and state not in ITEM_STATES:
        raise HttpProblem(400, "Bad request", f"state must be one of {', '.join(ITEM_STATES)}")
    limit = _limit(ctx.request.query_params.get("limit"))
    start = _cursor(ctx.request.query_params.get("cursor"))
    items: list[dict[str, Any]] = []
    for record in await ctx.engine.cases(tenant=ctx.tenant):
        if record.status not in ("running", "suspended") and state in (None, "enabled", "offered", "started"):
            continue
        items.extend(_item(i) for i in ctx.engine.case(record.case).work_items(state))
    page = items[start:start + limit]
    return 200, {"items": page, "next_cursor": str(start + limit) if start + limit < len(items) else None}


def _item_action(name: str) -> Handler:
    async def act(ctx: Ctx) -> tuple[int, Any]:
        case = ctx.case(ctx.request.path_params["case_id"])
        item_id = _int_path(ctx, "item_id")
        _find_item(case, item_id)
        key = ctx.engine_key(f"{name}/{case.id}/{item_id}")
        if name == "start":
            await case.start_item(item_id, key=key)
        elif name == "complete":
            await case.complete(item_id, _object(await ctx.json(), "the body (the item's output)"), key=key)
        else:
            await case.cancel_item(item_id, key=key)
        ctx.state.poke(case.id, ctx.tenant)
        item = next((i for s in (None, "completed", "cancelled") for i in case.work_items(s) if i.id == item_id), None)
        return 200, {"case": _case(case, full=False), "item": _item(item) if item is not None else None}

    act.__doc__ = f"{name.capitalize()} a work item."
    return act


def _sse(event: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data, default=str) + b"\n\n"


def _stream(ctx: Ctx, body: AsyncIterable[bytes]) -> tuple[int, Any]:
    return 200, StreamingResponse(body, media_type=SSE, headers={"Cache-Control": "no-cache",
                                                                 "X-Accel-Buffering": "no"})


def _hub(ctx: Ctx) -> _Hub:
    if ctx.state.hub is None:
        ctx.state.hub = _Hub(ctx.engine)
    return ctx.state.hub


class _Events(abc.ABC):
    """A Server-Sent Events body: an async iterator over chunks, driven by a subscriber.

    A class, not an async generator: a client that hangs up leaves a half-run generator for the
    garbage collector to finalize outside any event loop (trio then warns, and its ``finally``
    may never run); this iterator has nothing to finalize, and the hub holds its subscriber
    weakly.
    """

    def __init__(self, hub: _Hub, sub: _Sub) -> None:
        self.hub = hub
        self.sub = sub
        self.ready: list[bytes] = []
        self.done = False

    def __aiter__(self) -> _Events:
        return self

    async def __anext__(self) -> bytes:
        while not self.ready:
            if self.done:
                self.hub.unsubscribe(self.sub)
                raise StopAsyncIteration
            try:
                await self.fill()
            except anyio.EndOfStream:
                self.ready.append(_sse("overflow", {"detail": "the client read too slowly; reconnect"
                                                              " (with Last-Event-ID for a case stream)"}))
                self.done = True
            except BaseException:
                self.hub.unsubscribe(self.sub)
                raise
        return self.ready.pop(0)

    @abc.abstractmethod
    async def fill(self) -> None:
        """Add the next chunks to ``ready`` (waiting for a change), or set ``done``."""


class _CaseEvents(_Events):
    def __init__(self, hub: _Hub, sub: _Sub, case: Case, after: int) -> None:
        super().__init__(hub, sub)
        self.case = case
        self.sent = after + 1
        self.first = True

    async def fill(self) -> None:
        if not self.first:
            await self.sub.wait()
        self.first = False
        trace = self.case.trace
        self.ready.extend(_sse(str(trace[pos]["event"]), trace[pos], pos) for pos in range(self.sent, len(trace)))
        self.sent = max(self.sent, len(trace))
        if self.case.status in _ENDED:
            self.done = True


class _ItemEvents(_Events):
    def __init__(self, hub: _Hub, sub: _Sub, engine: Engine, tenant: str, marks: dict[str, int]) -> None:
        super().__init__(hub, sub)
        self.engine = engine
        self.tenant = tenant
        self.marks = marks  # root case id -> trace records seen
        self.ready.append(b": subscribed\n\n")

    async def fill(self) -> None:
        for case_id in dict.fromkeys(await self.sub.wait()):
            try:
                case = self.engine.case(case_id)
            except InvalidEventError:
                continue
            root = case._root
            if root.tenant != self.tenant:
                continue
            trace = root.trace
            self.ready.extend(_sse(str(r["event"]), r) for r in trace[self.marks.get(root.id, 0):]
                              if r["event"] in ITEM_EVENTS)
            if root.status in _ENDED:
                self.marks.pop(root.id, None)
            else:
                self.marks[root.id] = len(trace)


async def case_events(ctx: Ctx) -> tuple[int, Any]:
    """The case's trace records as Server-Sent Events (``id:`` the record's position in the trace,
    ``event:`` its event, ``data:`` the record as JSON): those so far (after ``Last-Event-ID`` or
    ``?after=``), then new ones as they happen; the stream ends once the case has ended."""
    case = ctx.case(ctx.request.path_params["case_id"])
    raw = ctx.request.headers.get("last-event-id") or ctx.request.query_params.get("after")
    if raw is None:
        after = -1
    elif raw.isdigit():
        after = int(raw)
    else:
        raise HttpProblem(400, "Bad request", "after (or Last-Event-ID) must be a record's id: an integer from 0")
    hub = _hub(ctx)
    sub = hub.subscribe(ctx.tenant)  # before reading the trace: no change is missed
    return _stream(ctx, _CaseEvents(hub, sub, case, after))


async def item_events(ctx: Ctx) -> tuple[int, Any]:
    """The tenant's work items as they become offered, started, completed or cancelled, as
    Server-Sent Events (``event:`` item.offered, ..., ``data:`` the item's trace record as JSON); the
    stream opens with a ``: subscribed`` comment and never ends by itself."""
    hub = _hub(ctx)
    sub = hub.subscribe(ctx.tenant)
    engine, tenant = ctx.engine, ctx.tenant
    marks: dict[str, int] = {}
    for record in await engine.cases(tenant=tenant):
        if record.parent is None and record.status in ("running", "suspended"):
            marks[record.case] = len(engine.case(record.case).trace)
    return _stream(ctx, _ItemEvents(hub, sub, engine, tenant, marks))


# -- the key, a case's marking, a net's picture (what the worklist page reads) ----------------------

SVG = "image/svg+xml"
_SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
                "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


async def whoami(ctx: Ctx) -> tuple[int, Any]:
    """The key's name, role and tenant: whether a key is known, and what it may do."""
    return 200, {"name": ctx.key.name, "role": ctx.key.role, "tenant": ctx.key.tenant}


def _overlay(case: Case) -> Overlay:
    from .._show import overlay_of

    return overlay_of(case._runner.net.place_names, case._state, case.trace)


async def case_marking(ctx: Ctx) -> tuple[int, Any]:
    """The case's marking: tokens per condition (an implicit one named ``c{from_to}``), its live
    items counted by task and state, and how many items of each task completed."""
    case = ctx.case(ctx.request.path_params["case_id"])
    overlay = _overlay(case)
    return 200, {"case": case.id, "net": case.net, "status": case.status, "tokens": overlay.tokens,
                 "live": overlay.live, "done": overlay.done}


async def spec_picture(ctx: Ctx) -> tuple[int, Any]:
    """The spec's nets drawn as SVG in YAWL notation, as ``yawlflow show --format svg`` draws them;
    with ``?case=ID``, that case over its net: its tokens, live items, completed tasks and the path
    it took. Needs Graphviz's ``dot`` on the server: without it, 503."""
    from .._show import to_dot

    spec_id = ctx.request.path_params["spec_id"]
    case_id = ctx.request.query_params.get("case")
    if case_id is None:
        dot_text = to_dot(await _find_spec(ctx, spec_id))
    else:
        case = ctx.case(case_id)
        if case.spec_id != spec_id:
            raise HttpProblem(404, "Not found", f"case {case_id!r} runs spec {case.spec_id!r}, not {spec_id!r} "
                              f"(its picture: {PREFIX}/specs/{case.spec_id}/picture?case={case_id})")
        dot_text = to_dot(case._spec.spec, case.net, overlay=_overlay(case))
    return 200, Response(await _svg(dot_text), media_type=SVG, headers=_SVG_HEADERS)


async def _svg(dot_text: str) -> bytes:
    """``dot_text`` rendered by Graphviz's ``dot -Tsvg`` (in a child process; the loop runs on)."""
    import shutil

    dot = shutil.which("dot")
    if dot is None:
        raise HttpProblem(503, "Graphviz missing", "drawing a net needs Graphviz's dot on the server: install "
                          "graphviz (apt install graphviz / brew install graphviz), then ask again")
    try:
        with anyio.fail_after(60):
            done = await anyio.run_process([dot, "-Tsvg"], input=dot_text.encode(), check=False)
    except TimeoutError:
        raise HttpProblem(503, "Drawing failed", f"{dot} -Tsvg took longer than 60s") from None
    if done.returncode != 0:
        raise HttpProblem(503, "Drawing failed", f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


# -- the route table --------------------------------------------------------------------------------

_OBJ: dict[str, Any] = {"type": "object"}
_CASE = {"type": "object", "properties": {"id": {"type": "string"}, "spec": {"type": "string"},
                                          "status": {"type": "string"}, "tenant": {"type": ["string", "null"]}}}
_PAGE: dict[str, tuple[dict[str, Any], str]] = {
    "limit": ({"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 50)"),
    "cursor": ({"type": "string"}, "next_cursor of the page before")}


def _sse_event(events: Iterable[str] | None = None) -> dict[str, Any]:
    """The schema of one event of a ``text/event-stream`` body: an object of the event's fields, as
    OpenAPI 3.2 (``itemSchema``) and the media type registry model an event, and as tools read the
    ``schema`` of an event stream in a 3.1 document. ``data`` is JSON: a trace record (``event:
    overflow``: ``{detail}``)."""
    event: dict[str, Any] = {"type": "string"}
    if events is not None:
        event["enum"] = [*events, "overflow"]
    return {"type": "object", "required": ["event", "data"],
            "properties": {"id": {"type": "string", "description": "a case stream's: the record's position in "
                                                                   "the trace (for Last-Event-ID)"},
                           "event": event,
                           "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": _OBJ}}}


ROUTES: tuple[ApiRoute, ...] = (
    ApiRoute("POST", "/specs", "admin", upload_spec, "Upload a spec (YAML or JSON)", ok=201,
             body={"type": "object", "description": "the spec, as in a spec file", "required": ["nets"],
                   "properties": {"yawlflow": {"type": "integer", "description": "the format version: 1"},
                                  "id": {"type": "string"}, "root": {"type": "string"}, "nets": _OBJ}},
             body_types=("application/yaml", "application/json"), errors=(400, 422)),
    ApiRoute("GET", "/specs", "viewer", list_specs, "List the specs"),
    ApiRoute("GET", "/specs/{spec_id}", "viewer", show_spec, "Show a spec", errors=(404,)),
    ApiRoute("POST", "/cases", "operator", start_case, "Start a case", ok=201, ok_schema=_CASE,
             body={"type": "object", "required": ["spec"],
                   "properties": {"spec": {"type": "string"}, "data": _OBJ}}, errors=(400, 404, 409)),
    ApiRoute("GET", "/cases", "viewer", list_cases, "List the tenant's cases",
             query={"status": ({"type": "string", "enum": list(CASE_STATUSES)}, "only cases in this status"),
                    **_PAGE}, errors=(400,)),
    ApiRoute("GET", "/cases/{case_id}", "viewer", show_case, "Show a case (status, data, trace, work items)",
             ok_schema=_CASE, errors=(404,)),
    ApiRoute("POST", "/cases/{case_id}/cancel", "operator", cancel_case, "Cancel a case", errors=(404, 409)),
    ApiRoute("POST", "/cases/{case_id}/signals", "operator", signal_case, "Send a signal to a case", ok=202,
             body={"type": "object", "required": ["signal"],
                   "properties": {"signal": {"type": "string", "minLength": 1}, "data": _OBJ}},
             errors=(400, 404, 409)),
    ApiRoute("GET", "/items", "viewer", list_items, "List the work items of the tenant's cases",
             query={"state": ({"type": "string", "enum": list(ITEM_STATES)}, "only items in this state"), **_PAGE},
             errors=(400,)),
    ApiRoute("GET", "/cases/{case_id}/events", "viewer", case_events,
             "Stream the case's trace records (Server-Sent Events)", ok_type=SSE, ok_schema=_sse_event(),
             query={"after": ({"type": "integer", "minimum": 0}, "only records after this id (or Last-Event-ID)")},
             errors=(400, 404)),
    ApiRoute("GET", "/items/events", "viewer", item_events,
             "Stream the tenant's work item changes (Server-Sent Events)", ok_type=SSE,
             ok_schema=_sse_event(ITEM_EVENTS)),
    ApiRoute("POST", "/cases/{case_id}/items/{item_id}/start", "operator", _item_action("start"),
             "Start a work item", errors=(404, 409)),
    ApiRoute("POST", "/cases/{case_id}/items/{item_id}/complete", "operator", _item_action("complete"),
             "Complete a work item with JSON output", body={"type": "object", "description": "the item's output"},
             errors=(400, 404, 409)),
    ApiRoute("POST", "/cases/{case_id}/items/{item_id}/cancel", "operator", _item_action("cancel"),
             "Cancel (withdraw) a work item", errors=(404, 409)),
    ApiRoute("GET", "/me", "viewer", whoami, "Show the key's name, role and tenant",
             ok_schema={"type": "object", "required": ["name", "role", "tenant"],
                        "properties": {"name": {"type": "string"}, "role": {"type": "string"},
                                       "tenant": {"type": "string"}}}),
    ApiRoute("GET", "/cases/{case_id}/marking", "viewer", case_marking,
             "Show a case's marking (tokens, live items, completed tasks)", errors=(404,)),
    ApiRoute("GET", "/specs/{spec_id}/picture", "viewer", spec_picture,
             "Draw a spec's nets as SVG, optionally with a case over its net", ok_type=SVG,
             ok_schema={"type": "string"},
             query={"case": ({"type": "string"}, "draw this case (of this spec) over its net")}, errors=(404,)),
)


# -- OpenAPI ----------------------------------------------------------------------------------------

_TITLES = {400: "bad request", 401: "no or unknown API key", 403: "the key's role may not do this",
           404: "not found (or another tenant's)", 409: "does not fit the case's state",
           413: "body too large", 422: "invalid spec", 429: "rate limit exceeded",
           503: "store unavailable, shutting down, or (a picture) Graphviz missing"}


_BRACES = str.maketrans("", "", "{}")


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route in :data:`ROUTES`."""
    problem = {"$ref": "#/components/schemas/Problem"}
    paths: dict[str, Any] = {}
    for r in ROUTES:
        params: list[dict[str, Any]] = [
            {"name": p.split("}")[0], "in": "path", "required": True,
             "schema": {"type": "integer"} if p.startswith("item_id") else {"type": "string"}}
            for p in r.path.split("{")[1:]
        ]
        params += [{"name": n, "in": "query", "required": False, "schema": s, "description": d}
                   for n, (s, d) in r.query.items()]
        if r.method == "POST":
            params.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "minLength": 1, "maxLength": 200},
                           "description": "a repeat with the same key returns the first answer and changes nothing"})
        responses: dict[str, Any] = {str(r.ok): {"description": "success",
                                                 "content": {r.ok_type: {"schema": r.ok_schema}}}}
        always = {401, 403, 429, 503} | ({400} if r.method == "POST" else set())  # POST: a bad Idempotency-Key
        if r.body is not None:
            always.add(413)  # a body over MAX_BODY
        for status in sorted({*r.errors, *always}):
            responses[str(status)] = {"description": _TITLES[status], "content": {PROBLEM: {"schema": problem}}}
        op: dict[str, Any] = {
            "operationId": r.method.lower() + "_" + r.path.strip("/").replace("/", "_").translate(_BRACES),
            "summary": r.summary, "description": (r.handler.__doc__ or r.summary).strip(),
            "security": [{"bearer": []}], "x-role": r.role, "parameters": params, "responses": responses,
        }
        if r.body is not None:
            op["requestBody"] = {"required": bool(r.body.get("required")),  # a body with required fields
                                 "content": {t: {"schema": r.body} for t in r.body_types}}
        paths.setdefault(PREFIX + r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "yawlflow", "version": "1", "description": "Start cases, do work items, send signals."},
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Problem": {
                "type": "object", "required": ["type", "title", "status", "detail"],
                "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                               "detail": {"type": "string"},
                               "problems": {"type": "array", "items": {"type": "object"}}}}},
        },
    }


# -- the app ----------------------------------------------------------------------------------------


def _endpoint(route: ApiRoute, state: _State) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            key = _authenticate(request, state)
            allowed, headers = state.limiter.take(key.name)
            if not allowed:
                raise HttpProblem(429, "Too many requests", f"key {key.name!r} is over its rate limit; wait",
                                  headers=headers)
            if not key.may(route.role):
                raise HttpProblem(403, "Forbidden", f"a {key.role} key may not {route.summary.lower()} "
                                  f"(it needs {route.role})")
            idem = request.headers.get("idempotency-key") if route.method == "POST" else None  # a GET is never replayed
            if idem is not None and not 0 < len(idem) <= 200:
                raise HttpProblem(400, "Bad request", "Idempotency-Key must have 1 to 200 characters")
            remembered = (key.tenant, f"{route.method} {request.url.path}", idem) if idem else None
            if remembered is not None and remembered in state.answers:
                status, body = state.answers[remembered]
                return Response(body, status_code=status, media_type="application/json",
                                headers={**headers, "Idempotent-Replayed": "true"})
            ctx = Ctx(request=request, key=key, state=state, idempotency_key=idem)
            try:
                status, payload = await route.handler(ctx)
            except YawlflowError as exc:
                if state.engine._closing and isinstance(exc, ConfigError):  # SIGTERM: ask elsewhere, or later
                    raise HttpProblem(503, "Shutting down", str(exc), headers={"Retry-After": "5"}) from None
                raise _from_error(exc) from None
            if isinstance(payload, Response):  # a stream
                payload.headers.update(headers)
                return payload
            body = orjson.dumps(payload, default=str)
            if remembered is not None:
                state.answers[remembered] = (status, body)
                if len(state.answers) > ANSWERS:  # the oldest goes: a repeat of it reaches the engine,
                    del state.answers[next(iter(state.answers))]  # whose own keys make it a no-op
            return Response(body, status_code=status, media_type="application/json", headers=headers)
        except HttpProblem as problem:
            problem.headers = {**headers, **problem.headers}
            return problem.response()

    return endpoint


def _authenticate(request: Request, state: _State) -> ApiKey:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpProblem(401, "Unauthorized", "send an API key: Authorization: Bearer KEY",
                          headers={"WWW-Authenticate": "Bearer"})
    key = state.keys.get(hashlib.sha256(token.strip().encode()).hexdigest())
    if key is None:
        raise HttpProblem(401, "Unauthorized", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return key


def app(
    engine: Engine,
    *,
    keys: Mapping[str, Any] | str | os.PathLike[str],
    specs: Iterable[Spec] = (),
    own_engine: bool = False,
    rate_limit: tuple[int, float] = (60, 10.0),
    clock: Callable[[], float] | None = None,
    cors_origins: Iterable[str] = (),
) -> Starlette:
    """The yawlflow HTTP API as a Starlette (ASGI) app.

    Args:
        engine: the engine to serve.
        keys: the API keys: a mapping or a ``keys.yaml`` path (see :func:`yawlflow.web.load_keys`).
        specs: specs every tenant may start, kept in memory (given anew at every start). Specs
            uploaded with ``POST /api/v1/specs`` are kept in the engine's store
            (:meth:`~yawlflow.Engine.publish`) and win over these; so do those published there for
            every tenant.
        own_engine: the app enters ``engine`` in its lifespan, resumes the unfinished cases of
            its store (a restarted server carries on where it stopped), and on shutdown calls
            ``engine.stop()`` and leaves it, draining running items; ``False`` (the default): the
            embedder runs the engine (``async with engine:``) around serving the app.
        rate_limit: per key, ``(burst, per_second)`` of its token bucket.
        clock: the rate limiter's clock, seconds (default ``time.monotonic``).
        cors_origins: origins allowed by CORS (default none: CORS off).

    Raises:
        ConfigError: bad keys or rate limit.
    """
    state = _State(engine=engine, keys=load_keys(keys), limiter=TokenBucket(*rate_limit, clock=clock))
    for spec in specs:
        state.specs[spec.id] = spec
    routes = [Route(PREFIX + r.path, _endpoint(r, state), methods=[r.method]) for r in ROUTES]
    document = orjson.dumps(openapi())

    async def openapi_json(request: Request) -> Response:
        return Response(document, media_type="application/json")

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        title = "Method not allowed" if status == 405 else "Not found"
        return HttpProblem(status, title, f"{request.method} {request.url.path}: no such route").response()

    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    routes.extend(page_routes())  # the worklist page: /, /cases/{case_id}, /static/...

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if not own_engine:
            yield
            return
        async with engine:
            try:
                await engine.resume()  # a durable store: the cases a stopped server left carry on
                yield
            finally:
                engine.stop()

    middleware = []
    origins = list(cors_origins)
    if origins:
        middleware.append(Middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                                     allow_headers=["Authorization", "Content-Type", "Idempotency-Key"]))
    return Starlette(routes=routes, lifespan=lifespan, middleware=middleware,
                     exception_handlers={404: not_found, 405: not_found})

