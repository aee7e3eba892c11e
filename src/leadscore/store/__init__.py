"""The store: tables, engines and migrations."""

from leadscore.store import tables_audit as _tables_audit  # noqa: F401 - complete metadata
from leadscore.store import tables_automation as _tables_automation  # noqa: F401 - complete metadata
from leadscore.store import tables_predictive as _tables_predictive  # noqa: F401 - predict: complete metadata
from leadscore.store import tables_rescore as _tables_rescore  # noqa: F401 - complete metadata
