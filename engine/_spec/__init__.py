"""Specs: the file format of ARCHITECTURE.md §3, loaded, validated and normalised.

``load`` (a file), ``loads`` (text) and ``from_data`` (plain Python data) all return a frozen
:class:`Spec` or raise one :class:`~yawlflow.SpecError` listing every problem, each with its
file, line, column, element path and fix. ``to_builtins`` is their inverse.
"""

from ._encode import to_builtins as to_builtins
from ._load import MAX_BYTES as MAX_BYTES
from ._load import from_data as from_data
from ._load import load as load
from ._load import loads as loads
from ._model import ConditionSpec as ConditionSpec
from ._model import FlowSpec as FlowSpec
from ._model import InstancesSpec as InstancesSpec
from ._model import JoinSpec as JoinSpec
from ._model import LoopSpec as LoopSpec
from ._model import NetSpec as NetSpec
from ._model import RetrySpec as RetrySpec
from ._model import RunSpec as RunSpec
from ._model import Spec as Spec
from ._model import SplitSpec as SplitSpec
from ._model import TaskSpec as TaskSpec
from ._model import TimerSpec as TimerSpec
from ._model import TriggerSpec as TriggerSpec

__all__ = (
    "MAX_BYTES",
    "ConditionSpec",
    "FlowSpec",
    "InstancesSpec",
    "JoinSpec",
    "LoopSpec",
    "NetSpec",
    "RetrySpec",
    "RunSpec",
    "Spec",
    "SplitSpec",
    "TaskSpec",
    "TimerSpec",
    "TriggerSpec",
    "from_data",
    "load",
    "loads",
    "to_builtins",
)
