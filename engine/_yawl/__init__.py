"""YAWL interoperability: import ``.yawl`` specification files, export specs as YAWL.

``import_yawl`` reads a file (with its CEL side file, ``x.yawl.cel.yaml``, when there is one)
into a :class:`YawlImport`; ``yawlflow.load("x.yawl")`` returns its ``spec``. ``export_yawl``
writes a spec as YAWL 4.0 XML (``yawlflow compile SPEC --to yawl``). docs/yawl.md describes
the mapping both ways; docs/yawl-compat.md what the YAWL corpus imports and runs.
"""

from ._api import export_yawl as export_yawl
from ._api import import_yawl as import_yawl
from ._api import load_yawl as load_yawl
from ._api import loads_yawl as loads_yawl
from ._api import write_yawl as write_yawl
from ._overrides import Overrides as Overrides
from ._types import Variable as Variable
from ._types import YawlImport as YawlImport

__all__ = (
    "Overrides",
    "Variable",
    "YawlImport",
    "export_yawl",
    "import_yawl",
    "load_yawl",
    "loads_yawl",
    "write_yawl",
)
