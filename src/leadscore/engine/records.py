"""``direct_init``: a faster ``__init__`` for the engine's frozen dataclasses.

The service builds thousands of small immutable records for each batch of events it scores
(events, counted events, contributions, scores, score changes). The ``__init__`` that
``dataclasses`` writes for a frozen class sets every field through ``object.__setattr__``,
which was half to three quarters of building one (perf, issue #3). :func:`direct_init`
writes the same ``__init__`` - the same parameters, order and defaults, a fresh value of
each ``default_factory`` - that sets each field directly: through the slot's own setter
(``slots=True``) or in the instance's ``__dict__``. Everything else (``repr``, equality,
hashing, immutability, pickling, ``dataclasses.replace``) stays the dataclass's own.
Classes with ``__post_init__`` or keyword-only fields are refused (none has one).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T", bound=type)

_MISSING = dataclasses.MISSING


def direct_init(cls: T) -> T:
    """Replace the generated ``__init__`` of the frozen dataclass ``cls`` (see the module)."""
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__}: direct_init is for frozen dataclasses")
    if hasattr(cls, "__post_init__") or any(f.kw_only for f in dataclasses.fields(cls)):
        raise TypeError(f"{cls.__name__}: direct_init knows no __post_init__ nor keyword-only fields")
    slotted = "__slots__" in cls.__dict__
    scope: dict[str, Any] = {"_MISSING": _MISSING}
    params: list[str] = []
    body: list[str] = []
    for index, field in enumerate(f for f in dataclasses.fields(cls) if f.init):
        name = field.name
        if field.default is not _MISSING:
            scope[f"_default_{index}"] = field.default
            params.append(f"{name}=_default_{index}")
        elif field.default_factory is not _MISSING:
            scope[f"_factory_{index}"] = field.default_factory
            params.append(f"{name}=_MISSING")
            body.append(f"if {name} is _MISSING: {name} = _factory_{index}()")
        else:
            params.append(name)
        if slotted:
            scope[f"_set_{index}"] = cls.__dict__[name].__set__
            body.append(f"_set_{index}(self, {name})")
        else:
            body.append(f"fields[{name!r}] = {name}")
    if not slotted:
        body.insert(0, "fields = self.__dict__")
    if not body:
        body.append("pass")
    source = f"def __init__(self, {', '.join(params)}):\n    " + "\n    ".join(body) + "\n"
    exec(source, scope)  # noqa: S102 - our own text, as dataclasses writes its __init__
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
