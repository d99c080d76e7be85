"""yawlflow: an embeddable workflow engine that runs YAWL nets and all 43 control-flow patterns.

The public API, re-exported flat. Names are loaded on first use (PEP 562), so ``import yawlflow``
costs almost nothing: numpy, anyio, PyYAML and CEL load only when a spec or an engine needs them.
"""

import logging as _logging
from typing import TYPE_CHECKING

from ._errors import ConfigError as ConfigError
from ._errors import ConnectorError as ConnectorError
from ._errors import InvalidEventError as InvalidEventError
from ._errors import Problem as Problem
from ._errors import SpecError as SpecError
from ._errors import StoreError as StoreError
from ._errors import YawlflowError as YawlflowError
from ._errors import YawlflowInternalError as YawlflowInternalError
from ._publish import lazy as _lazy
from ._publish import publish as _publish

if TYPE_CHECKING:
    from ._case import Case as Case
    from ._case import Result as Result
    from ._case import WorkItem as WorkItem
    from ._clock import Clock as Clock
    from ._clock import SystemClock as SystemClock
    from ._engine import CaseInfo as CaseInfo
    from ._engine import Engine as Engine
    from ._handlers import HandlerRegistry as HandlerRegistry
    from ._handlers import ItemContext as ItemContext
    from ._hooks import HookEvent as HookEvent
    from ._run import run as run
    from ._spec import load as load
    from ._spec import loads as loads
    from ._spec._model import Spec as Spec
    from ._why import Wait as Wait

__version__ = "0.1.0"

__all__ = (
    "Case",
    "CaseInfo",
    "Clock",
    "ConfigError",
    "ConnectorError",
    "Engine",
    "HandlerRegistry",
    "HookEvent",
    "InvalidEventError",
    "ItemContext",
    "Problem",
    "Result",
    "Spec",
    "SpecError",
    "StoreError",
    "SystemClock",
    "Wait",
    "WorkItem",
    "YawlflowError",
    "YawlflowInternalError",
    "__version__",
    "load",
    "loads",
    "run",
)

_LAZY = {
    "Case": "._case",
    "Result": "._case",
    "WorkItem": "._case",
    "Clock": "._clock",
    "SystemClock": "._clock",
    "CaseInfo": "._engine",
    "Engine": "._engine",
    "HandlerRegistry": "._handlers",
    "ItemContext": "._handlers",
    "HookEvent": "._hooks",
    "run": "._run",
    "load": "._spec",
    "loads": "._spec",
    "Spec": "._spec._model",
    "Wait": "._why",
}


__getattr__ = _lazy(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_publish(__name__, __all__, globals())

# A library never configures logging: without this, Python's last-resort handler would print our
# warnings to stderr in programs that configured nothing.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
