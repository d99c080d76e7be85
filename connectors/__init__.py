"""yawlflow.connectors: the protocol, the registry, resilience (timeout, retry, breaker, bulkhead) and built-ins.

A connector is a class with a ``Config`` (a frozen ``msgspec.Struct``), an async ``call(config,
input, ctx)`` and an async ``health()`` (see :class:`Connector`). A spec names one with
``run: {connector: NAME, config: {...}}``; the name resolves through a :class:`Registry` (explicit
registrations, the built-ins ``python``, ``http`` and ``shell``, then the ``yawlflow.connectors``
entry-point group, loaded on first use). Every call goes through :func:`call_with_resilience`
(usually by way of a :class:`ConnectorHost`): a timeout, retries with exponential backoff and
full jitter, a circuit breaker and a bulkhead, all on the engine's clock.

``yawlflow.connectors.testing`` is the conformance kit a plugin author runs on their connector.

Names are loaded on first use: ``import yawlflow.connectors`` imports neither a plugin nor httpx.
"""

from typing import TYPE_CHECKING

from yawlflow._publish import lazy as _lazy
from yawlflow._publish import publish as _publish

from ._breaker import BreakerState as BreakerState
from ._breaker import CircuitBreaker as CircuitBreaker
from ._bulkhead import Bulkhead as Bulkhead
from ._convert import Seconds as Seconds
from ._errors import BulkheadFullError as BulkheadFullError
from ._errors import CircuitOpenError as CircuitOpenError
from ._errors import ConnectorConfigError as ConnectorConfigError
from ._errors import ConnectorTimeoutError as ConnectorTimeoutError
from ._errors import IncompatiblePluginError as IncompatiblePluginError
from ._errors import PluginError as PluginError
from ._errors import UnknownConnectorError as UnknownConnectorError
from ._errors import is_retryable as is_retryable
from ._host import BreakerListener as BreakerListener
from ._host import ConnectorHost as ConnectorHost
from ._policy import BreakerPolicy as BreakerPolicy
from ._policy import BulkheadPolicy as BulkheadPolicy
from ._policy import HealthPolicy as HealthPolicy
from ._policy import Policy as Policy
from ._policy import RetryPolicy as RetryPolicy
from ._policy import parse_policy as parse_policy
from ._protocol import API_VERSION as API_VERSION
from ._protocol import Connector as Connector
from ._protocol import ConnectorEnv as ConnectorEnv
from ._protocol import Health as Health
from ._protocol import Output as Output
from ._registry import BUILTINS as BUILTINS
from ._registry import GROUP as GROUP
from ._registry import Registry as Registry
from ._registry import connector_class as connector_class
from ._registry import register as register
from ._registry import registry as registry
from ._registry import validate_config as validate_config
from ._resilience import OnRetry as OnRetry
from ._resilience import call_with_resilience as call_with_resilience
from ._retry import backoff_ceiling as backoff_ceiling
from ._retry import backoff_delay as backoff_delay
from ._retry import should_retry as should_retry

if TYPE_CHECKING:
    from ._http import HttpConnector as HttpConnector
    from ._http import HttpStatusError as HttpStatusError
    from ._python import PythonConnector as PythonConnector
    from ._shell import ShellConnector as ShellConnector

__all__ = (
    "API_VERSION",
    "BUILTINS",
    "GROUP",
    "BreakerListener",
    "BreakerPolicy",
    "BreakerState",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadPolicy",
    "CircuitBreaker",
    "CircuitOpenError",
    "Connector",
    "ConnectorConfigError",
    "ConnectorEnv",
    "ConnectorHost",
    "ConnectorTimeoutError",
    "Health",
    "HealthPolicy",
    "HttpConnector",
    "HttpStatusError",
    "IncompatiblePluginError",
    "OnRetry",
    "Output",
    "PluginError",
    "Policy",
    "PythonConnector",
    "Registry",
    "RetryPolicy",
    "Seconds",
    "ShellConnector",
    "UnknownConnectorError",
    "backoff_ceiling",
    "backoff_delay",
    "call_with_resilience",
    "connector_class",
    "is_retryable",
    "parse_policy",
    "register",
    "registry",
    "should_retry",
    "validate_config",
)

# the built-ins load on first use: httpx only when the http connector is asked for
_LAZY = {
    "HttpConnector": "._http",
    "HttpStatusError": "._http",
    "PythonConnector": "._python",
    "ShellConnector": "._shell",
}


__getattr__ = _lazy(__name__, _LAZY, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


_publish(__name__, __all__, globals())
