"""The ``yawlflow`` command: run, validate and draw specs; list the 43 patterns; look after the
cases of a durable store (``cases list|show|resume|cancel``, ``verify``, ``export``); replay a
recorded history (``replay``).

Exit codes (ARCHITECTURE.md §4): 0 the case completed; 1 it failed or was cancelled; 2 bad input
(a bad spec, bad ``--data``, bad arguments or configuration, a missing file), with every located
problem printed to stderr, one per line, never a traceback; 3 the case waits for external work
(``run`` lists the offered items). ``verify`` exits 1 when a chain is broken, ``replay`` when the
current code does not reproduce the history.

``yawlflow --help`` must answer at once, so this module imports only the standard library at its
top; each subcommand imports what it needs (the engine, YAML, orjson) when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn, cast

if TYPE_CHECKING:
    from ._case import Result
    from ._errors import Problem
    from ._postgres import PostgresStore
    from ._spec._model import Spec
    from ._sqlite import SqliteStore

__all__ = (
    "EXIT_BAD_INPUT",
    "EXIT_COMPLETED",
    "EXIT_FAILED",
    "EXIT_WAITING",
    "main",
)

EXIT_COMPLETED = 0
"""The case completed (or, for other commands, all went well)."""
EXIT_FAILED = 1
"""The case failed or was cancelled."""
EXIT_BAD_INPUT = 2
"""Bad input: a bad spec, ``--data``, argument or configuration, or a missing file."""
EXIT_WAITING = 3
"""The case can only go on with external work: ``run`` stopped and listed the offered items."""

STRATEGIES = ("inline", "thread", "process", "ray")
BACKENDS = ("asyncio", "trio")
FORMATS = ("mermaid", "dot", "svg")
EXPORT_FORMATS = ("xes", "history")
CONFIG_ENV = "YAWLFLOW_CONFIG"
CONFIG_FILE = "yawlflow.yaml"

_EPILOG = """\
exit codes:
  0  the case completed (other commands: success)
  1  the case failed or was cancelled (verify: a chain is broken; replay: a difference)
  2  bad input: spec, --data, arguments, configuration or a missing file
  3  the case waits for external work (run lists the offered items)

configuration: --config FILE, else $YAWLFLOW_CONFIG, else ./yawlflow.yaml when present.
docs: docs/cli.md, docs/spec-reference.md
"""


class _BadInput(Exception):
    """Bad input: each line of ``lines`` is printed to stderr, and the exit code is 2."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are raised (so ``main`` returns 2), not exits."""

    def error(self, message: str) -> NoReturn:
        raise _BadInput(f"{self.prog}: error: {message}", f"(see: {self.prog} --help)")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="yawlflow",
        description="yawlflow: run YAWL workflow nets (all 43 control-flow patterns).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="run a case of a spec to its end (or until it waits for external work)",
        description="Run a case of SPEC in a fresh engine and report how it ended.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("spec", metavar="SPEC", help="the spec file (.yaml, .yml or .json)")
    run.add_argument(
        "--data", metavar="JSON|@FILE", help="the case's initial data: a JSON object, or @file.json"
    )
    run.add_argument(
        "--json", action="store_true", help="print one JSON object: case_id, status, data, trace"
    )
    run.add_argument("--seed", type=int, metavar="N", help="run deterministically with this seed")
    run.add_argument(
        "--store", metavar="URL", default="memory://", help="the case store (default: memory://)"
    )
    run.add_argument("--strategy", choices=STRATEGIES, help="the engine's default execution strategy")
    run.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="the async backend (default: asyncio)"
    )
    run.add_argument(
        "--config", metavar="FILE", help=f"the engine configuration (default: ${CONFIG_ENV}, ./{CONFIG_FILE})"
    )

    validate = commands.add_parser(
        "validate",
        help="check specs; print every problem with its file, line and path",
        description="Load, validate and compile each SPEC; print every problem found.",
    )
    validate.add_argument("specs", metavar="SPEC", nargs="+", help="spec files")

    compile_ = commands.add_parser(
        "compile",
        help="compile a spec to a .ywc file that loads fast, memory-mapped",
        description=(
            "Validate and compile SPEC, and write it with its nets' compiled arrays as one .ywc file, "
            "which yawlflow.load and every command read memory-mapped, without validating again."
        ),
        epilog="exit codes: 0 written, 2 bad input (a bad spec, a missing file, an unwritable output)",
    )
    compile_.add_argument("spec", metavar="SPEC", help="the spec file (.yaml, .yml, .json, .ywc or .yawl)")
    compile_.add_argument(
        "-o", "--output", metavar="OUT", help="the file to write (default: SPEC with the suffix .ywc or .yawl)"
    )
    compile_.add_argument(
        "--to", choices=("ywc", "yawl"), default="ywc",
        help="ywc: the compiled, memory-mapped form (default); yawl: a YAWL 4.0 specification",
    )

    show = commands.add_parser(
        "show",
        help="draw a spec (mermaid, dot, or svg through Graphviz)",
        description="Draw SPEC in YAWL notation: Mermaid flowchart, Graphviz DOT, or SVG (needs `dot`).",
    )
    show.add_argument("spec", metavar="SPEC", nargs="?",
                      help="the spec file (with --case: optional, the case's stored spec is drawn)")
    show.add_argument(
        "--format", choices=FORMATS, default="mermaid", help="the output format (default: mermaid)"
    )
    show.add_argument("--net", metavar="NAME", help="draw only this net (default: every net)")
    show.add_argument("--case", metavar="ID",
                      help="overlay this case of --store: its tokens, live items, completed tasks, path taken "
                           "(dot and svg only)")
    show.add_argument("--store", metavar="URL", help="the durable store holding --case (read-only)")

    patterns = commands.add_parser(
        "patterns",
        help="list the 43 workflow control-flow patterns, or run one's catalogue spec",
        description=(
            "The 43 workflow control-flow patterns (Russell et al., 2006): how a spec writes each.\n"
            "`yawlflow patterns run N` runs pattern N's catalogue spec and checks its properties."
        ),
        epilog="exit codes of `patterns run`: 0 every property holds, 1 one does not, 2 bad input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    pattern_commands = patterns.add_subparsers(dest="patterns_command", metavar="[run N]", parser_class=_Parser)
    run_pattern = pattern_commands.add_parser(
        "run",
        help="run pattern N's catalogue spec; print its trace and property checks",
        description=(
            "Run pattern N's catalogue spec deterministically (a seeded engine on a virtual clock), "
            "print its trace and whether each property that defines the pattern holds."
        ),
        epilog="exit codes: 0 every property holds, 1 one does not, 2 bad input (e.g. N outside 1..43)",
    )
    run_pattern.add_argument("number", metavar="N", type=int, help="the pattern's number, 1 to 43")
    run_pattern.add_argument("--seed", type=int, default=0, metavar="S", help="the seed (default: 0)")
    run_pattern.add_argument(
        "--json", action="store_true", help="print one JSON object: pattern, status, trace, properties"
    )
    run_pattern.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="the async backend (default: asyncio)"
    )

    store_help = "the durable store, e.g. sqlite:///cases.db (relative) or sqlite:////var/db/cases.db"
    verify = commands.add_parser(
        "verify",
        help="check the provenance chain of every case in a store (or of one case)",
        description=(
            "Check the hash chain of every case's event log in a durable store (or of CASE): each "
            "record's hash, its link to the one before, the case's head and its snapshot. Reads the "
            "store without its lock, so a running engine's store can be checked."
        ),
        epilog="exit codes: 0 every chain holds, 1 a chain is broken (the first broken record is named), "
        "2 bad input (a bad URL, a missing store, an unknown case)",
    )
    verify.add_argument("case", metavar="CASE", nargs="?", help="check only this case")
    verify.add_argument("--store", metavar="URL", required=True, help=store_help)
    verify.add_argument("--json", action="store_true", help="print one JSON object: ok, cases, records, problems")

    cases = commands.add_parser(
        "cases",
        help="list, show, resume or cancel the cases of a durable store",
        description="Look after the cases of a durable store (sqlite:///path.db).",
        epilog="exit codes: 0 success, 1 a case failed or was cancelled (resume) or the store failed, "
        "2 bad input, 3 a resumed case waits for external work",
    )
    case_commands = cases.add_subparsers(
        dest="cases_command", metavar="{list,show,why,resume,cancel}", parser_class=_Parser
    )
    list_ = case_commands.add_parser(
        "list",
        help="list the cases (sub-cases too), oldest first",
        description="List the cases of a store: id, status, spec, spec version, net, tenant and parent.",
    )
    list_.add_argument("--store", metavar="URL", required=True, help=store_help)
    list_.add_argument("--status", metavar="S", help="only cases with this status (running, completed, ...)")
    list_.add_argument("--tenant", metavar="T", help="only cases of this tenant")
    list_.add_argument("--json", action="store_true", help="print one JSON array")
    show_case = case_commands.add_parser(
        "show",
        help="show one case: its record, its work items' lifecycles and its trace",
        description="Show CASE: its record, the lifecycle of each work item, and its trace.",
    )
    show_case.add_argument("case", metavar="CASE", help="the case's id")
    show_case.add_argument("--store", metavar="URL", required=True, help=store_help)
    show_case.add_argument("--json", action="store_true", help="print one JSON object")
    why = case_commands.add_parser(
        "why",
        help="say what an unfinished case waits for",
        description=(
            "Say what CASE (and its sub-cases) waits for: offered items, handlers running, signals, "
            "timers, joins still waiting for a branch, mutexes, milestones, a suspension."
        ),
        epilog="exit codes: 0 the case waits (or has ended: it says how), 1 the store failed, 2 bad input",
    )
    why.add_argument("case", metavar="CASE", help="the case's id")
    why.add_argument("--store", metavar="URL", required=True, help=store_help)
    why.add_argument("--json", action="store_true", help="print one JSON array of waits")
    resume = case_commands.add_parser(
        "resume",
        help="carry on every unfinished case, until each ends or waits for external work",
        description=(
            "Open the store in an engine (taking its lock), resume every unfinished case (auto items "
            "that were running run again, with the same idempotency key), and wait until each case "
            "ends or only external work could move it on."
        ),
        epilog="exit codes: 0 every resumed case completed (or none was unfinished), 1 one failed or was "
        "cancelled, or the store failed, 2 bad input, 3 one waits for external work",
    )
    resume.add_argument("--store", metavar="URL", required=True, help=store_help)
    resume.add_argument(
        "--config", metavar="FILE", help=f"the engine configuration (default: ${CONFIG_ENV}, ./{CONFIG_FILE})"
    )
    resume.add_argument(
        "--backend", choices=BACKENDS, default="asyncio", help="the async backend (default: asyncio)"
    )
    resume.add_argument("--json", action="store_true", help="print one JSON array: each case's outcome")
    cancel = case_commands.add_parser(
        "cancel",
        help="cancel one unfinished case (and its sub-cases)",
        description="Cancel CASE in the store: every item, timer and sub-case of it is withdrawn.",
    )
    cancel.add_argument("case", metavar="CASE", help="the case's id")
    cancel.add_argument("--store", metavar="URL", required=True, help=store_help)

    export = commands.add_parser(
        "export",
        help="export cases of a store: an XES event log (process mining), or one case's history",
        description=(
            "Write the cases of a durable store as an IEEE 1849-2016 XES event log: one trace per root "
            "case (its sub-cases' events included), one event per trace record, with wall-clock "
            "timestamps. By default every finished root case. --format history writes one case's "
            "history (the events its tree was fed and the records they produced), which `yawlflow "
            "replay` re-runs against the current code. Reads the store without its lock."
        ),
        epilog="exit codes: 0 written, 1 a case could not be read back (the store names the record), "
        "2 bad input (a bad URL, a missing store, an unknown case, an unwritable output)",
    )
    export.add_argument("--store", metavar="URL", required=True, help=store_help)
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, default="xes", help="xes (the default) or history (one case, JSON)"
    )
    export.add_argument(
        "--case", metavar="ID", nargs="+", action="extend", help="only these root cases (default: every finished one)"
    )
    export.add_argument("--status", metavar="S", help="only root cases with this status (completed, running, ...)")
    export.add_argument("-o", "--output", metavar="FILE", help="the file to write (default: stdout)")
    export.add_argument(
        "--timezone", choices=("utc", "local"), default="utc",
        help="the time zone of the XES timestamps, which carry their offset (default: utc)",
    )
    export.add_argument("--with-data", action="store_true", help="XES: add each event's data as JSON (yawlflow:data)")

    replay = commands.add_parser(
        "replay",
        help="re-run a recorded case history against the current code; name the first difference",
        description=(
            "Fold each case of the history LOG (a golden log of tests/golden/, or `yawlflow export "
            "--format history`) through the current net runner and compare the records it produces "
            "with the recorded ones; the first that differs is named (case, event, seq, recorded and "
            "replayed record)."
        ),
        epilog="exit codes: 0 identical, 1 a difference (the first is named), 2 an unreadable history",
    )
    replay.add_argument("log", metavar="LOG", help="the history file (JSON)")
    replay.add_argument(
        "--json", action="store_true", help="print one JSON object: ok, cases, events, difference"
    )

    serve = commands.add_parser(
        "serve",
        help="serve the HTTP API (yawlflow.web) on uvicorn; needs the `web` extra",
        description="Run an engine on --store and serve its HTTP API under /api/v1 (docs/serve.md).",
    )
    serve.add_argument("--store", metavar="URL", default="memory://", help="the case store (default: memory://)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="the port (default: 8000)")
    serve.add_argument(
        "--config", metavar="FILE", help=f"the engine configuration (default: ${CONFIG_ENV}, ./{CONFIG_FILE})"
    )
    serve.add_argument(
        "--keys", metavar="FILE",
        help="the API keys file (default: ./keys.yaml; with none there, on a loopback address, a one-time admin "
             "key of tenant 'default' is made and printed)",
    )
    serve.add_argument("--spec", metavar="SPEC", action="append", default=[], help="a spec every tenant may start")
    serve.add_argument(
        "--rate-limit", metavar="BURST/PER_S", default="60/10",
        help="each key's token bucket: BURST requests at once, refilled at PER_S a second (default: 60/10)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``yawlflow`` command line.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 completed (or success), 1 failed or cancelled, 2 bad input, 3 waiting.

    Raises:
        Exception: only for a bug in yawlflow, which propagates with its traceback. Bad input,
            failed handlers and failed cases are reported and give an exit code instead.
    """
    parser = _build_parser()
    try:
        try:
            args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        except SystemExit as exc:  # --help, or argparse's own exit
            return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
        if args.version:
            from . import __version__

            print(f"yawlflow {__version__}")
            return EXIT_COMPLETED
        if args.command is None:
            parser.print_help(sys.stderr)
            return EXIT_BAD_INPUT
        command = {
            "run": _run,
            "validate": _validate,
            "compile": _compile,
            "show": _show,
            "patterns": _patterns,
            "verify": _verify,
            "cases": _cases,
            "export": _export,
            "replay": _replay,
            "serve": _serve,
        }[args.command]
        return command(args)
    except _BadInput as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `yawlflow patterns | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_COMPLETED
    except KeyboardInterrupt:
        print("yawlflow: interrupted", file=sys.stderr)
        return 130


# -- shared helpers ----------------------------------------------------------------------------


def _problems(problems: Sequence[Problem]) -> _BadInput:
    return _BadInput(*(str(p) for p in problems))


def _load_spec(path: str) -> Spec:
    """Load and compile the spec at ``path``; a bad spec is bad input, listing every problem."""
    from ._compiled import compile_spec
    from ._errors import SpecError
    from ._spec import load

    try:
        spec = load(path)
        compile_spec(spec)  # the compiler's own checks (a flow into a missing place...) too
    except SpecError as exc:
        raise _problems(exc.problems) from None
    return spec


def _read_data(text: str | None) -> dict[str, Any]:
    """``--data``: a JSON object, or ``@file`` holding one."""
    if text is None:
        return {}
    import orjson

    where = "--data"  # a file's messages name the file instead
    raw: str | bytes = text
    if text.startswith("@"):
        where = text[1:]
        try:
            with open(where, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise _BadInput(f"{where}: --data: cannot read the file: {exc.strerror or exc}") from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _BadInput(
            f"{where}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg} "
            """(--data takes a JSON object, e.g. --data '{"amount": 120}', or @file.json)"""
        ) from None
    if not isinstance(data, dict):
        raise _BadInput(
            f"{where}: expected a JSON object, got {_json_type(data)} "
            """(--data takes a JSON object, e.g. --data '{"amount": 120}')"""
        )
    return data


def _json_type(value: object) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# -- configuration -----------------------------------------------------------------------------


def _config_path(explicit: str | None) -> str | None:
    """The configuration file to use: ``--config``, else ``$YAWLFLOW_CONFIG``, else ./yawlflow.yaml."""
    if explicit is not None:
        if not os.path.isfile(explicit):
            raise _BadInput(f"{explicit}: --config: no such file")
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        if not os.path.isfile(from_env):
            raise _BadInput(
                f"{from_env}: ${CONFIG_ENV}: no such file (unset it, or point it at a configuration)"
            )
        return from_env
    return CONFIG_FILE if os.path.isfile(CONFIG_FILE) else None


def _load_config(path: str) -> dict[str, Any]:
    """Read and check a configuration file; every problem is located (file, line, path)."""
    from ._config import read_config
    from ._errors import ConfigError

    try:
        return read_config(path)
    except ConfigError as exc:
        if exc.problems:
            raise _problems(exc.problems) from None
        raise _BadInput(str(exc)) from None


@contextmanager
def _handler_path(config_path: str | None, config: Mapping[str, Any]) -> Iterator[None]:
    """While running: the configuration's folder on ``sys.path``, when it allows handler modules.

    So ``module:function`` handlers in files next to ``yawlflow.yaml`` import.
    """
    allow = (config.get("handlers") or {}).get("allow") or []
    if config_path is None or not allow:
        yield
        return
    folder = os.path.dirname(os.path.abspath(config_path))
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


# -- run ---------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    import importlib.util

    from ._errors import ConfigError, InvalidEventError, SpecError, StoreError

    data = _read_data(args.data)
    config_path = _config_path(args.config)
    config = _load_config(config_path) if config_path is not None else {}
    if args.strategy is not None:
        config["execution"] = {**(config.get("execution") or {}), "strategy": args.strategy}
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        raise _BadInput("--backend trio: trio is not installed: pip install 'yawlflow[trio]'")
    spec = _load_spec(args.spec)
    _check_store_path(args.store, must_exist=False)
    try:
        with _handler_path(config_path, config):
            result = _run_case(
                spec, data, seed=args.seed, store=args.store, config=config, backend=args.backend
            )
    except SpecError as exc:
        raise _problems(exc.problems) from None
    except ConfigError as exc:
        # the engine's own configuration checks say "config...": name the file they came from
        where = f"{config_path}: " if config_path is not None and str(exc).startswith("config") else ""
        raise _BadInput(f"yawlflow: {where}{exc}") from None
    except InvalidEventError as exc:
        raise _BadInput(f"yawlflow: {exc}") from None
    except StoreError as exc:
        print(f"yawlflow: store error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json(result)
    else:
        _write_bytes(_summary(result, spec, store=args.store).encode())
    if result.status == "completed":
        return EXIT_COMPLETED
    if result.status == "waiting":
        return EXIT_WAITING
    return EXIT_FAILED


def _run_case(
    spec: Spec, data: dict[str, Any], *, seed: int | None, store: str, config: dict[str, Any], backend: str
) -> Result:
    import importlib.util
    import signal

    import anyio

    from ._engine import Engine

    async def go() -> Result:
        async with Engine(store=store, seed=seed, config=config) as engine:
            case = await engine.start(spec, data)
            # Until the case ends or only external work (or a signal) could move it on; armed
            # timers are waited for. (The same wait as yf.run's.) SIGTERM ends the wait: leaving
            # the engine then drains running items (execution.drain) and cancels the rest.
            settled: list[Result] = []
            async with anyio.create_task_group() as tg:
                async def on_sigterm() -> None:
                    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                        async for _ in signals:
                            engine.stop()  # nothing new starts from here: then leaving drains
                            print(f"yawlflow: SIGTERM: stopping; running items may finish for "
                                  f"{(engine.execution.drain_ns or 0) / 1e9:g}s (execution.drain)"
                                  + ("; go on later with: yawlflow cases resume --store " + store
                                     if store != "memory://" else ""), file=sys.stderr)
                            tg.cancel_scope.cancel()
                            return

                tg.start_soon(on_sigterm)
                settled.append(await case._settled())
                tg.cancel_scope.cancel()
        return settled[0] if settled else case._result()

    options: dict[str, Any] = {}
    if backend == "asyncio" and importlib.util.find_spec("uvloop") is not None:
        options["use_uvloop"] = True
    with _one_error():
        result: Result = anyio.run(go, backend=backend, backend_options=options)
    return result


def _print_json(result: Result) -> None:
    import msgspec
    import orjson

    payload: dict[str, Any] = {
        "case_id": result.case_id,
        "status": result.status,
        "data": result.data,
        "trace": result.trace,
    }
    if result.error is not None:
        payload["error"] = result.error
    if result.status == "waiting":
        payload["offered"] = msgspec.to_builtins(result.offered)
    try:
        text = orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # an integer beyond 64 bits, which orjson refuses; msgspec writes it
        text = msgspec.json.encode(payload) + b"\n"
    _write_bytes(text)


def _write_bytes(data: bytes) -> None:
    """Write bytes to stdout (through its buffer when it has one: pytest's capture may not)."""
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(data.decode())
    else:
        buffer.write(data)
    sys.stdout.flush()


def _summary(result: Result, spec: Spec | None, store: str = "memory://") -> str:
    """The human summary of ``run``: status, the path of completed tasks, error or offers, data."""
    import orjson

    status = {"waiting": "waiting for external work"}.get(result.status, result.status)
    lines = [f"case {result.case_id}: {status}"]
    path = []
    for record in result.trace:
        if record["event"] == "item.completed" and record["task"] is not None:
            task = str(record["task"])
            root = spec.root if spec is not None else (result.trace[0]["net"] if result.trace else None)
            path.append(task if record["net"] == root else f"{record['net']}.{task}")
    lines.append(f"path: {' -> '.join(path) if path else '(no task completed)'}")
    if result.error is not None:
        lines.append(f"error: {result.error}")
    if result.status == "waiting":
        if result.offered:
            lines.append("offered:")
            for item in result.offered:
                instance = f"[{item.instance}]" if item.instance is not None else ""
                lines.append(f"  item {item.id}: {item.task}{instance} (net {item.net}, case {item.case})")
        else:
            lines.append("offered: none (the case waits for a signal)")
        if not store.startswith("memory:"):
            lines.append(f"stored: `yawlflow cases resume --store {store}` goes on with it later")
    lines.append(f"data: {orjson.dumps(result.data, default=str).decode()}")
    return "\n".join(lines) + "\n"


# -- validate ----------------------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.specs:
        try:
            spec = _load_spec(path)
        except _BadInput as exc:
            bad += 1
            for line in exc.lines:
                print(line, file=sys.stderr)
            continue
        tasks = sum(len(net.tasks) for net in spec.nets)
        nets = len(spec.nets)
        print(
            f"{path}: ok (spec {spec.id!r}: {nets} net{'s' * (nets != 1)}, {tasks} task{'s' * (tasks != 1)})"
        )
    if bad:
        print(
            f"yawlflow: {bad} of {len(args.specs)} spec{'s' * (len(args.specs) != 1)} invalid",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    return EXIT_COMPLETED


# -- compile -----------------------------------------------------------------------------------


def _compile_yawl(spec: Spec, source: str, output: str | None) -> int:
    """``yawlflow compile SPEC --to yawl [-o OUT.yawl]``: write SPEC as a YAWL 4.0 specification."""
    from pathlib import Path

    from ._errors import SpecError
    from ._yawl import write_yawl

    out = output if output is not None else str(Path(source).with_suffix(".yawl"))
    if os.path.isdir(out):
        raise _BadInput(f"{out}: -o: is a directory (name the file to write, e.g. {out}/{spec.id}.yawl)")
    if os.path.exists(out) and os.path.samefile(out, source):
        raise _BadInput(f"{out}: would overwrite SPEC itself; name another file with -o")
    try:
        size = write_yawl(spec, out)
    except SpecError as exc:
        raise _problems(exc.problems) from None
    except OSError as exc:
        raise _BadInput(f"{out}: cannot write the YAWL specification: {exc.strerror or exc}") from None
    print(f"wrote {out}: {size:,} bytes (spec {spec.id!r} as a YAWL 4.0 specification)")
    return EXIT_COMPLETED


def _compile(args: argparse.Namespace) -> int:
    """``yawlflow compile SPEC [-o OUT.ywc]``: validate, compile and write one .ywc file."""
    from pathlib import Path

    from ._errors import SpecError
    from ._ywc import FORMAT_VERSION, write_ywc

    spec = _load_spec(args.spec)
    if args.to == "yawl":
        return _compile_yawl(spec, args.spec, args.output)
    out = args.output if args.output is not None else str(Path(args.spec).with_suffix(".ywc"))
    if os.path.isdir(out):
        raise _BadInput(f"{out}: -o: is a directory (name the file to write, e.g. {out}/{spec.id}.ywc)")
    try:
        size = write_ywc(spec, out)
    except SpecError as exc:
        raise _problems(exc.problems) from None
    except OSError as exc:
        raise _BadInput(f"{out}: cannot write the compiled spec: {exc.strerror or exc}") from None
    tasks = sum(len(net.tasks) for net in spec.nets)
    nets = len(spec.nets)
    print(
        f"wrote {out}: {size:,} bytes (spec {spec.id!r}: {nets} net{'s' * (nets != 1)}, "
        f"{tasks} task{'s' * (tasks != 1)}; .ywc format version {FORMAT_VERSION})"
    )
    return EXIT_COMPLETED


# -- show --------------------------------------------------------------------------------------


def _show(args: argparse.Namespace) -> int:
    """``yawlflow show [SPEC]``: draw a spec in YAWL notation, optionally with a case over it."""
    import shutil
    import subprocess

    from ._show import to_dot, to_mermaid

    overlay = None
    if args.case is not None or args.store is not None:
        if args.case is None or args.store is None:
            raise _BadInput("yawlflow show: --case and --store go together (e.g. yawlflow show --format svg "
                            "--case ID --store sqlite:///cases.db)")
        if args.format == "mermaid":
            raise _BadInput("yawlflow show: --case draws over a net with --format dot or --format svg, not mermaid")
        spec, net, overlay = _show_case(args)
        if args.net is not None and args.net != net:
            raise _BadInput(f"yawlflow show: --net {args.net}: case {args.case!r} runs in net {net!r}")
    elif args.spec is None:
        raise _BadInput("yawlflow show: name a SPEC file, or a stored case with --case ID --store URL",
                        "(see: yawlflow show --help)")
    else:
        spec, net = _load_spec(args.spec), args.net
    try:
        if args.format == "mermaid":
            _write_bytes(to_mermaid(spec, net).encode())
            return EXIT_COMPLETED
        dot_text = to_dot(spec, net, overlay=overlay)
    except ValueError as exc:
        raise _BadInput(f"yawlflow show: --net: {exc}") from None
    if args.format == "dot":
        _write_bytes(dot_text.encode())
        return EXIT_COMPLETED
    dot = shutil.which("dot")
    if dot is None:
        raise _BadInput(
            "yawlflow show --format svg needs Graphviz's dot: install graphviz (apt install graphviz / "
            "brew install graphviz), or use --format dot"
        )
    try:
        done = subprocess.run([dot, "-Tsvg"], input=dot_text.encode(), capture_output=True, check=False,  # noqa: S603
                              timeout=60)
    except subprocess.TimeoutExpired:
        print(f"yawlflow show: {dot} -Tsvg took longer than 60s; render the DOT yourself (--format dot)",
              file=sys.stderr)
        return EXIT_FAILED
    if done.returncode != 0:
        print(f"yawlflow show: dot failed: {done.stderr.decode(errors='replace').strip()}", file=sys.stderr)
        return EXIT_FAILED
    _write_bytes(done.stdout)
    return EXIT_COMPLETED


def _show_case(args: argparse.Namespace) -> tuple[Any, str, Any]:
    """The stored spec, net and overlay of ``args.case`` (read-only), or a located ``_BadInput``."""
    from ._compiled import compile_spec
    from ._errors import StoreError, YawlflowError
    from ._runner import NetRunner
    from ._show import overlay_of
    from ._spec._model import Spec

    with _open_readonly(args.store) as store:
        try:
            record = store.record(args.case)
        except StoreError:
            raise _BadInput(f"yawlflow show: no case {args.case!r} in {args.store} (list them with: "
                            f"yawlflow cases list --store {args.store})") from None
        try:
            spec = store.spec_of(args.case)
            if not isinstance(spec, Spec):
                raise StoreError(f"case {args.case!r}: its stored spec is not a yawlflow spec")
            runner = NetRunner(compile_spec(spec).net(record.net))
            # fold the whole log (not from a snapshot): the trace says which tasks completed
            trace: list[dict[str, Any]] = []
            state = runner.initial_state(_blank_start(record.net)).fresh(record.case)
            for seq, event in enumerate(store.events(args.case)):
                try:
                    trace.extend(runner.handle(state, event).trace)
                except (YawlflowError, KeyError, IndexError, ValueError) as exc:
                    raise StoreError(f"record {seq} does not apply to the case's state ({exc})") from None
        except (YawlflowError, KeyError) as exc:
            raise _BadInput(f"yawlflow show: case {args.case!r}: {exc} (check it with: yawlflow verify --store "
                            f"{args.store} {args.case})") from None
    if args.spec is not None and _load_spec(args.spec).id != spec.id:
        raise _BadInput(f"yawlflow show: {args.spec}: case {args.case!r} runs spec {spec.id!r}, not this one; "
                        "leave SPEC out to draw the stored spec")
    return spec, record.net, overlay_of(runner.net.place_names, state, trace)


# -- patterns ----------------------------------------------------------------------------------


def _patterns(args: argparse.Namespace) -> int:
    if getattr(args, "patterns_command", None) == "run":
        return _pattern_run(args)
    import shutil
    import textwrap

    from .patterns import PATTERNS

    # The catalogue is the source of truth: a pattern is listed as supported because its spec runs
    # and its properties are checked (tests/patterns/test_catalogue.py).
    support = "yes/direct"
    width = max(len(p.name) for p in PATTERNS.values())
    indent = 3 + 2 + width + 2 + len(support) + 2
    # On a terminal the last column wraps under itself; into a pipe each pattern is one line.
    room = shutil.get_terminal_size().columns - indent if sys.stdout.isatty() else 0
    print(f"{'WCP':>3}  {'pattern':<{width}}  {'supported':<{len(support)}}  how yawlflow writes it")
    for p in PATTERNS.values():
        lines = textwrap.wrap(p.construct, room) if room >= 30 else [p.construct]
        print(f"{p.number:>3}  {p.name:<{width}}  {support}  {lines[0]}")
        for more in lines[1:]:
            print(" " * indent + more)
    print(f"\nall {len(PATTERNS)} supported directly; run one with: yawlflow patterns run N [--seed S]")
    return EXIT_COMPLETED


def _pattern_run(args: argparse.Namespace) -> int:
    """``yawlflow patterns run N``: run the catalogue spec, print the trace and the property checks."""
    import importlib.util

    import orjson

    from .patterns import check, get, run_pattern

    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        raise _BadInput("--backend trio: trio is not installed: pip install 'yawlflow[trio]'")
    try:
        pattern = get(args.number)
    except KeyError:
        raise _BadInput(
            f"yawlflow patterns run: no pattern {args.number}: the patterns are numbered 1 to 43 "
            "(list them with: yawlflow patterns)"
        ) from None
    result = run_pattern(pattern.number, seed=args.seed, backend=args.backend)
    verdicts = check(pattern.number, result)
    ok = all(v.ok for v in verdicts)
    if args.json:
        payload = {
            "number": pattern.number,
            "name": pattern.name,
            "seed": args.seed,
            "backend": args.backend,
            "case_id": result.case_id,
            "status": result.status,
            "data": result.data,
            "trace": result.trace,
            "properties": [{"name": v.name, "ok": v.ok, "message": v.message} for v in verdicts],
            "ok": ok,
        }
        _write_bytes(orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE))
        return EXIT_COMPLETED if ok else EXIT_FAILED
    lines = [f"{pattern.title} (seed {args.seed}, {args.backend}): case {result.case_id} {result.status}"]
    if result.error is not None:
        lines.append(f"error: {result.error}")
    lines.append("trace:")
    for record in result.trace:
        case = "" if record["case"] == result.case_id else f"  [{record['case']}]"
        instance = f"[{record['instance']}]" if record["instance"] is not None else ""
        task = f" {record['task']}{instance}" if record["task"] is not None else ""
        item = f" (item {record['item']})" if record["item"] is not None else ""
        data = f"  {orjson.dumps(record['data']).decode()}" if record["data"] else ""
        lines.append(f"  {record['seq']:>3}  {record['event']}{task}{item}{data}{case}")
    lines.append("properties:")
    for v in verdicts:
        lines.append(f"  {'ok  ' if v.ok else 'FAIL'}  {v.name}" + ("" if v.ok else f": {v.message}"))
    held = sum(v.ok for v in verdicts)
    lines.append(f"{held} of {len(verdicts)} properties hold")
    _write_bytes(("\n".join(lines) + "\n").encode())
    return EXIT_COMPLETED if ok else EXIT_FAILED


# -- durable stores: verify, cases ------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    """``serve``: uvicorn runs the app, which owns the engine (SIGTERM: ``engine.stop()``, then drain)."""
    import copy
    import importlib.util
    import signal
    import threading

    from ._errors import ConfigError

    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise _BadInput("serve: starlette and uvicorn are not installed: pip install 'yawlflow[web]'")
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from ._engine import Engine
    from .web import app

    config_path = _config_path(args.config)
    config = _load_config(config_path) if config_path is not None else {}
    specs = [_load_spec(path) for path in args.spec]
    _check_store_path(args.store, must_exist=False)
    rate_limit = _rate_limit(args.rate_limit)
    keys = _serve_keys(args)
    engine = Engine(store=args.store, config=config)
    try:
        web = app(engine, keys=keys, specs=specs, own_engine=True, rate_limit=rate_limit)
    except ConfigError as exc:
        raise _BadInput(str(exc)) from None
    store = args.store

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # SIGTERM (or Ctrl-C): nothing new starts from here, not only once uvicorn has waited
            # for the open requests and the lifespan leaves the engine (which then drains)
            engine.stop()
            print("yawlflow: stopping; running items may finish for "
                  f"{(engine.execution.drain_ns or 0) / 1e9:g}s (execution.drain)"
                  + ("; go on later with: yawlflow cases resume --store " + store if store != "memory://" else ""),
                  file=sys.stderr, flush=True)
            await super().shutdown(sockets)

    # uvicorn's log, with the engine's warnings in it (e.g. the items cancelled when the drain time ran out)
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["yawlflow"] = {"handlers": ["default"], "level": "WARNING", "propagate": False}
    server = Server(uvicorn.Config(web, host=args.host, port=args.port, lifespan="on", log_config=log_config))
    # After its graceful shutdown uvicorn raises the signal that asked for it again, to the handler
    # it found there: the default one would kill the process (-15) after a clean stop. A drained
    # SIGTERM is a success here (exit 0); Ctrl-C's KeyboardInterrupt is caught, as uvicorn.run does.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None) if main_thread else None
    try:
        with _handler_path(config_path, config):
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return EXIT_COMPLETED if server.started else EXIT_FAILED


def _rate_limit(text: str) -> tuple[int, float]:
    """``--rate-limit BURST/PER_S`` as ``(burst, per_second)``."""
    burst, _, rate = text.partition("/")
    try:
        pair = (int(burst), float(rate))
    except ValueError:
        pair = (0, 0.0)
    if pair[0] < 1 or not 0 < pair[1] < float("inf"):
        raise _BadInput(f"serve --rate-limit {text}: expected BURST/PER_S, a whole number >= 1 and a rate > 0 "
                        "(e.g. 60/10: 60 requests at once, 10 more a second)")
    return pair


def _serve_keys(args: argparse.Namespace) -> str | dict[str, Any]:
    """``serve``'s API keys: ``--keys``, else ./keys.yaml, else (on a loopback address only) one
    admin key of tenant ``default`` made now, printed once, and kept nowhere (a first run)."""
    import ipaddress
    import secrets

    from .web import hash_key

    if args.keys is not None:
        if not os.path.isfile(args.keys):
            raise _BadInput(f"{args.keys}: --keys: no such file (docs/serve.md shows its shape)")
        return str(args.keys)
    if os.path.isfile("keys.yaml"):
        return "keys.yaml"
    try:
        loopback = args.host == "localhost" or ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise _BadInput(f"serve --host {args.host}: no keys.yaml here and no --keys: a server others can reach needs "
                        "lasting keys; make a keys file (docs/serve.md shows how) and pass --keys FILE")
    plain = secrets.token_urlsafe(24)
    print(f"yawlflow serve: no keys file, so this run's admin key (tenant 'default') is\n\n    {plain}\n\n"
          f"It lasts until the server stops. Open http://{args.host}:{args.port}/ and log in with it; for lasting "
          "keys, roles and tenants, write keys.yaml (docs/serve.md).", file=sys.stderr, flush=True)
    return {"keys": {"admin": {"sha256": hash_key(plain), "role": "admin", "tenant": "default"}}}


def _check_store_path(url: str, *, must_exist: bool) -> None:
    """A bad ``--store`` URL or path is bad input (exit 2), found before anything is opened."""
    from ._errors import ConfigError
    from ._store import check_store_url

    try:
        scheme = check_store_url(url)
    except ConfigError as exc:
        raise _BadInput(f"--store: {exc}") from None
    if scheme != "sqlite":
        return
    from ._sqlite import _path_of_url

    try:
        path = _path_of_url(url.split("?", 1)[0])
    except ConfigError as exc:
        raise _BadInput(f"--store: {exc}") from None
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise _BadInput(f"{path}: --store: that is a directory; name the store's database file")
    if must_exist and not os.path.exists(path):
        raise _BadInput(
            f"{path}: --store {url}: no such store (check the path: sqlite:///relative.db, sqlite:////absolute.db)"
        )
    if not os.path.isdir(folder):
        raise _BadInput(f"{path}: --store {url}: the folder {folder} does not exist; create it first")


def _open_readonly(url: str) -> SqliteStore | PostgresStore:
    """Open a durable store for reading (no lock, no leases: an engine may be running on it)."""
    from ._errors import ConfigError, StoreError
    from ._store import check_store_url, open_store

    try:
        scheme = check_store_url(url)
    except ConfigError as exc:
        raise _BadInput(f"--store: {exc}") from None
    if scheme == "memory":
        raise _BadInput(
            f"--store {url}: the in-memory store lives only inside one engine and keeps nothing between "
            "commands; give a durable store, e.g. --store sqlite:///cases.db"
        )
    if scheme == "sqlite":
        _check_store_path(url, must_exist=True)
    try:
        store = open_store(url, readonly=True)
    except (ConfigError, StoreError) as exc:
        raise _BadInput(f"yawlflow: {exc}") from None
    return cast("SqliteStore | PostgresStore", store)  # a durable scheme opens one of these


def _verify(args: argparse.Namespace) -> int:
    """``yawlflow verify --store URL [CASE]``: 0 every chain holds, 1 one is broken."""
    import orjson

    from ._errors import StoreError

    with _open_readonly(args.store) as store:
        try:
            problems = store.verify(args.case)
            records = [store.record(args.case)] if args.case is not None else store.records()
            heads = {r.case: store.head(r.case)[0] + 1 for r in records}
        except StoreError as exc:
            raise _BadInput(f"yawlflow verify: {exc}") from None
    n_records = sum(heads.values())
    if args.json:
        payload = {
            "ok": not problems,
            "cases": len(heads),
            "records": n_records,
            "problems": [{"case": p.case, "seq": p.seq, "message": p.message} for p in problems],
        }
        _write_bytes(orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE))
        return EXIT_FAILED if problems else EXIT_COMPLETED
    what = f"case {args.case}" if args.case is not None else f"{len(heads)} case{'s' * (len(heads) != 1)}"
    if not problems:
        print(f"ok: every chain holds ({what}, {n_records} record{'s' * (n_records != 1)})")
        return EXIT_COMPLETED
    for problem in problems:
        print(f"BROKEN {problem}")
    print(f"{len(problems)} broken chain{'s' * (len(problems) != 1)} or snapshot{'s' * (len(problems) != 1)} "
          f"in {what}: the first broken record of each is named above", file=sys.stderr)
    return EXIT_FAILED


def _cases(args: argparse.Namespace) -> int:
    command = getattr(args, "cases_command", None)
    if command is None:
        raise _BadInput(
            "yawlflow cases: name a command: list, show, why, resume or cancel (e.g. yawlflow cases list --store "
            "sqlite:///cases.db)", "(see: yawlflow cases --help)"
        )
    handler = {"list": _cases_list, "show": _cases_show, "why": _cases_why, "resume": _cases_resume,
               "cancel": _cases_cancel}[command]
    return handler(args)


def _cases_list(args: argparse.Namespace) -> int:
    import orjson

    with _open_readonly(args.store) as store:
        records = store.records(status=args.status, tenant=args.tenant)
        versions = {r.case: store.spec_version(r.case)[:12] for r in records}
    if args.json:
        rows = [{"case": r.case, "status": r.status, "spec_id": r.spec_id, "version": versions[r.case],
                 "net": r.net, "tenant": r.tenant, "parent": r.parent} for r in records]
        _write_bytes(orjson.dumps(rows, option=orjson.OPT_APPEND_NEWLINE))
        return EXIT_COMPLETED
    if not records:
        filters = [f"{k} {v}" for k, v in (("status", args.status), ("tenant", args.tenant)) if v is not None]
        print(f"no cases{' with ' + ' and '.join(filters) if filters else ''} in {args.store}")
        return EXIT_COMPLETED
    head = ("CASE", "STATUS", "SPEC", "VERSION", "NET", "TENANT", "PARENT")
    rows_ = [(r.case, r.status, r.spec_id, versions[r.case], r.net, r.tenant or "-", r.parent or "-")
             for r in records]
    widths = [max(len(str(row[i])) for row in (head, *rows_)) for i in range(len(head))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in (head, *rows_)]
    _write_bytes(("\n".join(lines) + "\n").encode())
    return EXIT_COMPLETED


def _cases_why(args: argparse.Namespace) -> int:
    """``yawlflow cases why CASE``: what the case and its running sub-cases wait for."""
    import msgspec
    import orjson

    from ._compiled import compile_spec
    from ._durable import fold_case
    from ._errors import StoreError, YawlflowError
    from ._runner import NetRunner
    from ._spec._model import Spec
    from ._why import Wait, why

    waits: list[Wait] = []
    with _open_readonly(args.store) as store:
        try:
            record = store.record(args.case)
        except StoreError:
            raise _BadInput(f"yawlflow cases why: no case {args.case!r} in {args.store} (list them with: "
                            f"yawlflow cases list --store {args.store})") from None
        try:
            spec = store.spec_of(args.case)
            if not isinstance(spec, Spec):
                raise StoreError(f"case {args.case!r}: its stored spec is not a yawlflow spec")
            compiled = compile_spec(spec)
            status = record.status
            todo = [record] if record.status in ("running", "suspended") else []
            records = store.records() if todo else []
            while todo:
                rec = todo.pop(0)
                runner = NetRunner(compiled.net(rec.net))
                folded = fold_case(store, rec.case, runner, runner.initial_state(_blank_start(rec.net)))
                waits.extend(why(runner, folded.state, folded.timers))
                todo.extend(r for r in records if r.parent == rec.case and r.status in ("running", "suspended"))
        except (YawlflowError, KeyError) as exc:
            print(f"yawlflow cases why: case {args.case!r}: {exc} (check it with: yawlflow verify --store "
                  f"{args.store} {args.case})", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        _write_bytes(orjson.dumps(msgspec.to_builtins(waits), option=orjson.OPT_APPEND_NEWLINE))
        return EXIT_COMPLETED
    if status not in ("running", "suspended"):
        print(f"case {record.case} has ended ({status}): it waits for nothing")
        return EXIT_COMPLETED
    lines = [f"case {record.case} ({status}) waits for:"]
    lines.extend(f"  {w.kind:<10} {w.message}" + (f"  [case {w.case}]" if w.case != record.case else "")
                 for w in waits)
    if not waits:
        lines.append("  nothing it can name (a handler may have finished without its result being stored: "
                     f"resume it with yawlflow cases resume --store {args.store})")
    _write_bytes(("\n".join(lines) + "\n").encode())
    return EXIT_COMPLETED


def _blank_start(net: str) -> Any:
    from ._events import CaseStarted

    return CaseStarted(case="", net=net)


_LIFECYCLE = {
    "item.enabled": "enabled", "item.offered": "offered", "item.started": "started", "item.completed": "completed",
    "item.cancelled": "cancelled", "item.failed": "failed", "item.retried": "retried",
}


def _cases_show(args: argparse.Namespace) -> int:
    """``yawlflow cases show CASE``: the record, each work item's lifecycle, the trace."""
    import msgspec
    import orjson

    from ._compiled import compile_spec
    from ._errors import StoreError, YawlflowError
    from ._runner import NetRunner
    from ._spec._model import Spec

    with _open_readonly(args.store) as store:
        try:
            record = store.record(args.case)
        except StoreError:
            raise _BadInput(f"yawlflow cases show: no case {args.case!r} in {args.store} (list them with: "
                            f"yawlflow cases list --store {args.store})") from None
        try:
            version = store.spec_version(args.case)
            spec = store.spec_of(args.case)
            events = store.events(args.case)
            children = [r for r in store.records() if r.parent == args.case]
        except StoreError as exc:
            print(f"yawlflow: {exc}", file=sys.stderr)
            return EXIT_FAILED
    trace: list[dict[str, Any]] = []
    problem: str | None = None
    if not isinstance(spec, Spec):
        problem = "its stored spec is not a yawlflow spec: the trace cannot be rebuilt"
    else:
        try:
            runner = NetRunner(compile_spec(spec).net(record.net))
            state = None
            for seq, event in enumerate(events):
                if state is None:
                    from ._events import CaseStarted

                    if not isinstance(event, CaseStarted):
                        raise StoreError(f"record 0 is a {type(event).__name__}, not a case_started record")
                    state = runner.initial_state(event)
                try:
                    trace.extend(runner.handle(state, event).trace)
                except YawlflowError as exc:
                    raise StoreError(f"record {seq} does not apply: {exc}") from None
        except (YawlflowError, KeyError) as exc:
            problem = f"the trace stops early: {exc}"
    items: dict[int, dict[str, Any]] = {}
    for rec in trace:
        state_name = _LIFECYCLE.get(str(rec["event"]))
        if state_name is None or rec["item"] is None:
            continue
        entry = items.setdefault(int(rec["item"]), {"id": rec["item"], "task": rec["task"], "instance": rec["instance"],
                                                     "states": []})
        entry["states"].append(state_name)
    if isinstance(spec, Spec):  # a non-critical task's last failure is dead-lettered: the case went on
        with contextlib.suppress(YawlflowError, KeyError):
            net = compile_spec(spec).net(record.net)
            for entry in items.values():
                task_spec = net.tasks[net.task_ids[str(entry["task"])]]
                if entry["states"][-1] == "failed" and not task_spec.critical:
                    entry["states"].append("dead-lettered")
    if args.json:
        payload = {
            "case": record.case, "status": record.status, "spec_id": record.spec_id, "version": version,
            "net": record.net, "tenant": record.tenant, "parent": record.parent,
            "sub_cases": [{"case": c.case, "status": c.status} for c in children],
            "work_items": list(items.values()), "trace": trace,
            "events": msgspec.to_builtins(events), "problem": problem,
        }
        try:
            text = orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            text = msgspec.json.encode(payload) + b"\n"
        _write_bytes(text)
        return EXIT_COMPLETED
    lines = [
        f"case {record.case}: {record.status}",
        f"spec: {record.spec_id} (version {version[:12]}), net {record.net}",
    ]
    if record.tenant is not None:
        lines.append(f"tenant: {record.tenant}")
    if record.parent is not None:
        lines.append(f"parent: {record.parent}")
    for child in children:
        lines.append(f"sub-case: {child.case} ({child.status})")
    lines.append(f"events: {len(events)}")
    lines.append("work items:" if items else "work items: none")
    for entry in items.values():
        instance = f"[{entry['instance']}]" if entry["instance"] is not None else ""
        lines.append(f"  item {entry['id']:>3}  {entry['task']}{instance}: {' -> '.join(entry['states'])}")
    lines.append("trace:")
    for rec in trace:
        instance = f"[{rec['instance']}]" if rec["instance"] is not None else ""
        task = f" {rec['task']}{instance}" if rec["task"] is not None else ""
        item = f" (item {rec['item']})" if rec["item"] is not None else ""
        data = f"  {orjson.dumps(rec['data'], default=str).decode()}" if rec["data"] else ""
        lines.append(f"  {rec['seq']:>3}  {rec['event']}{task}{item}{data}")
    if problem is not None:
        lines.append(f"problem: {problem} (check the chain with: yawlflow verify --store {args.store} {record.case})")
    _write_bytes(("\n".join(lines) + "\n").encode())
    return EXIT_COMPLETED


def _run_engine(url: str, backend: str, config: dict[str, Any], job: Any) -> Any:
    """Run ``await job(engine)`` in an engine on the store ``url``; store errors are exit 1."""
    import importlib.util

    import anyio

    from ._engine import Engine

    async def go() -> Any:
        async with Engine(store=url, config=config) as engine:
            return await job(engine)

    options: dict[str, Any] = {}
    if backend == "asyncio" and importlib.util.find_spec("uvloop") is not None:
        options["use_uvloop"] = True
    with _one_error():
        return anyio.run(go, backend=backend, backend_options=options)


@contextmanager
def _one_error() -> Iterator[None]:
    """Raise the one error a task group wrapped (anyio groups what the engine's body raised)."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = group.exceptions
        while len(errors) == 1 and isinstance(errors[0], BaseExceptionGroup):
            errors = errors[0].exceptions
        if len(errors) == 1 and isinstance(errors[0], Exception):
            raise errors[0] from None
        raise


def _cases_resume(args: argparse.Namespace) -> int:
    """``yawlflow cases resume --store URL``: carry on every unfinished case until it ends or waits."""
    import importlib.util

    import msgspec
    import orjson

    from ._errors import ConfigError, StoreError

    _check_store_path(args.store, must_exist=True)
    config_path = _config_path(args.config)
    config = _load_config(config_path) if config_path is not None else {}
    if args.backend == "trio" and importlib.util.find_spec("trio") is None:
        raise _BadInput("--backend trio: trio is not installed: pip install 'yawlflow[trio]'")

    async def job(engine: Any) -> list[Result]:
        resumed = await engine.resume()
        return [await case._settled() for case in resumed]

    try:
        with _handler_path(config_path, config):
            results: list[Result] = _run_engine(args.store, args.backend, config, job)
    except ConfigError as exc:
        where = f"{config_path}: " if config_path is not None and str(exc).startswith("config") else ""
        raise _BadInput(f"yawlflow: {where}{exc}") from None
    except StoreError as exc:
        print(f"yawlflow: store error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        rows = []
        for r in results:
            row: dict[str, Any] = {"case_id": r.case_id, "status": r.status, "data": r.data, "trace": r.trace}
            if r.error is not None:
                row["error"] = r.error
            if r.status == "waiting":
                row["offered"] = msgspec.to_builtins(r.offered)
            rows.append(row)
        try:
            text = orjson.dumps(rows, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            text = msgspec.json.encode(rows) + b"\n"
        _write_bytes(text)
    elif not results:
        print(f"nothing to resume: no unfinished case in {args.store}")
    else:
        for r in results:
            _write_bytes(_summary(r, None, store=args.store).encode())
    statuses = {r.status for r in results}
    if statuses & {"failed", "cancelled"}:
        return EXIT_FAILED
    if "waiting" in statuses:
        return EXIT_WAITING
    return EXIT_COMPLETED


def _cases_cancel(args: argparse.Namespace) -> int:
    """``yawlflow cases cancel CASE --store URL``: cancel one unfinished case (it is not resumed first)."""
    from ._errors import InvalidEventError, StoreError

    _check_store_path(args.store, must_exist=True)

    async def job(engine: Any) -> str:
        case = engine.case(args.case)  # folded back dormant: nothing it was running starts again
        if case.status != "running":
            raise InvalidEventError(f"case {args.case!r} has already ended ({case.status}): nothing to cancel")
        await case.cancel()
        return str(case.status)

    try:
        status = _run_engine(args.store, "asyncio", {}, job)
    except InvalidEventError as exc:
        raise _BadInput(f"yawlflow cases cancel: {exc}") from None
    except StoreError as exc:
        print(f"yawlflow: store error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"case {args.case}: {status}")
    return EXIT_COMPLETED


# -- export, replay ----------------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    """``yawlflow export --store URL [--format xes|history] [--case ID ...] [--status S] [-o FILE]``."""
    import datetime

    from ._errors import StoreError

    if args.output is not None and os.path.isdir(args.output):
        raise _BadInput(f"{args.output}: -o: is a directory (name the file to write, e.g. {args.output}/cases.xes)")
    if args.format == "history" and len(args.case or ()) != 1:
        raise _BadInput(
            "yawlflow export --format history: name exactly one root case with --case ID (a history is one case "
            f"tree; list them with: yawlflow cases list --store {args.store})"
        )
    from ._xes import root_cases, stored_case

    with _open_readonly(args.store) as store:
        try:
            known = {r.case for r in store.records()}
            missing = [c for c in args.case or () if c not in known]
            if missing:
                raise _BadInput(f"yawlflow export: --case {missing[0]}: no such case in {args.store} (list them "
                                f"with: yawlflow cases list --store {args.store})")
            chosen = root_cases(store, cases=args.case, status=args.status)
            if args.format == "history":
                from ._replay import ReplayError, dump_log, record

                stored = stored_case(store, chosen[0], known=known)
                try:
                    payload = dump_log(record(stored.spec, store, stored.record.case, stored.trace)) + b"\n"
                except ReplayError as exc:
                    print(f"yawlflow export: {exc}", file=sys.stderr)
                    return EXIT_FAILED
                _write_output(args.output, [payload])
                what = f"history of case {stored.record.case}: {stored.events} event{'s' * (stored.events != 1)}"
            else:
                from ._xes import write_xes

                tz = datetime.UTC if args.timezone == "utc" else datetime.datetime.now().astimezone().tzinfo
                assert tz is not None  # noqa: S101 - astimezone() always sets one
                pieces: list[bytes] = []
                summary = write_xes(pieces.append, (stored_case(store, r, known=known) for r in chosen), tz=tz,
                                    include_data=args.with_data)
                _write_output(args.output, pieces)
                what = (f"{summary.traces} trace{'s' * (summary.traces != 1)}, {summary.events} "
                        f"event{'s' * (summary.events != 1)}")
        except StoreError as exc:
            print(f"yawlflow: store error: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.output is not None:
        print(f"wrote {args.output}: {what}", file=sys.stderr)
    if not chosen:
        which = f"root case with status {args.status}" if args.status is not None else "finished root case"
        print(f"yawlflow export: no {which} in {args.store}: the log has no trace", file=sys.stderr)
    return EXIT_COMPLETED


def _write_output(path: str | None, pieces: Sequence[bytes]) -> None:
    """Write ``pieces`` to stdout, or to ``path`` whole or not at all (a temporary file, renamed)."""
    if path is None:
        _write_bytes(b"".join(pieces))
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            for piece in pieces:
                handle.write(piece)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _BadInput(f"{path}: -o: cannot write it: {exc.strerror or exc} (check the folder and its "
                        "permissions)") from None


def _replay(args: argparse.Namespace) -> int:
    """``yawlflow replay LOG [--json]``: 0 the current code reproduces the history, 1 it differs."""
    import msgspec
    import orjson

    from ._errors import YawlflowError
    from ._replay import ReplayError, load_log, replay

    try:
        log = load_log(args.log)
    except ReplayError as exc:
        raise _BadInput(f"yawlflow replay: {exc} (give a history written by `yawlflow export --format history` "
                        "or a golden log of tests/golden/)") from None
    n_cases = len(log.cases)
    n_events = sum(len(c.events) for c in log.cases)
    crash: str | None = None
    try:
        difference = replay(log)
    except ReplayError as exc:
        raise _BadInput(f"yawlflow replay: {args.log}: {exc}") from None
    except (YawlflowError, KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        difference, crash = None, f"{type(exc).__name__}: {exc}"
    what = f"{n_events} event{'s' * (n_events != 1)} of {n_cases} case{'s' * (n_cases != 1)}"
    detail: dict[str, Any] | None = None
    line = ""
    if difference is not None:
        case_log = next((c for c in log.cases if c.case == difference.case), None)
        event = case_log.events[difference.event] if case_log is not None and difference.event < len(
            case_log.events) else None
        kind = type(event).__struct_config__.tag if event is not None else None
        recorded = difference.expected or (difference.got if isinstance(difference.got, dict) else None)
        seq = recorded.get("seq") if recorded is not None else None
        detail = {"case": difference.case, "event": difference.event, "event_type": kind, "record": difference.record,
                  "seq": seq, "expected": difference.expected, "got": difference.got}
        notes = [f"event {difference.event} is {kind}"] if kind is not None else []
        if seq is not None:
            notes.append(f"the record's trace seq is {seq}")
        line = f"{args.log}: different: {difference}" + (f" ({'; '.join(notes)})" if notes else "")
    elif crash is not None:
        detail = {"case": None, "event": None, "event_type": None, "record": None, "seq": None, "expected": None,
                  "got": crash}
        line = f"{args.log}: different: the runner failed replaying it: {crash}"
    if args.json:
        payload = {"ok": detail is None, "cases": n_cases, "events": n_events, "difference": detail}
        try:
            text = orjson.dumps(payload, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            text = msgspec.json.encode(payload) + b"\n"
        _write_bytes(text)
    elif detail is None:
        print(f"replayed {what}: identical")
    else:
        print(line)
        print(f"replayed {what}: the current code differs; the first difference is named above", file=sys.stderr)
    return EXIT_COMPLETED if detail is None else EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover - `python -m yawlflow.cli`
    raise SystemExit(main())
